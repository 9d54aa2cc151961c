// The commands layer both front ends share: the status renderers (the same
// bytes as the hand-built outputs they replaced, escaping done once), the
// outcomes of stop, reload, reopen and signal, errors, and run's lock.
#include "daemonkit/commands.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "support.hpp"

using daemonkit::Line;
using daemonkit::Outcome;
using daemonkit::ProcessReport;
using daemonkit::RequestResult;
using daemonkit::RunState;
using daemonkit::StatusReport;
using daemonkit::StopResult;
using daemonkit::Voice;
using namespace std::chrono_literals;

namespace {

// ---- a small strict JSON reader, independent of the library ----

struct Json {
  enum class Type { null, boolean, number, string, array, object } type = Type::null;
  std::string text;  // string: the decoded UTF-8; number: as written
  std::vector<Json> items;
  std::vector<std::pair<std::string, Json>> members;  // in order

  [[nodiscard]] const Json* get(const std::string& key) const {
    for (const auto& [k, v] : members)
      if (k == key) return &v;
    return nullptr;
  }
  [[nodiscard]] std::vector<std::string> keys() const {
    std::vector<std::string> out;
    for (const auto& m : members) out.push_back(m.first);
    return out;
  }
  [[nodiscard]] std::vector<std::string> strings() const {
    std::vector<std::string> out;
    for (const auto& i : items) out.push_back(i.text);
    return out;
  }
};

void append_utf8(std::string& out, unsigned cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

// RFC 8259, plus: the text must be well-formed UTF-8 without raw control
// characters (that is checked apart, see is_terminal_safe_utf8). Returns
// nullopt on any error.
class JsonReader {
 public:
  explicit JsonReader(std::string_view s) : s_(s) {}
  std::optional<Json> document() {
    auto v = value();
    ws();
    if (!v || i_ != s_.size()) return std::nullopt;
    return v;
  }

 private:
  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\t' || s_[i_] == '\r'))
      ++i_;
  }
  bool eat(char c) {
    ws();
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  std::optional<Json> value() {
    ws();
    if (i_ >= s_.size()) return std::nullopt;
    Json j;
    const char c = s_[i_];
    if (c == '{') {
      ++i_;
      j.type = Json::Type::object;
      if (eat('}')) return j;
      do {
        ws();
        auto k = string();
        if (!k || !eat(':')) return std::nullopt;
        auto v = value();
        if (!v) return std::nullopt;
        j.members.emplace_back(*k, std::move(*v));
      } while (eat(','));
      if (!eat('}')) return std::nullopt;
      return j;
    }
    if (c == '[') {
      ++i_;
      j.type = Json::Type::array;
      if (eat(']')) return j;
      do {
        auto v = value();
        if (!v) return std::nullopt;
        j.items.push_back(std::move(*v));
      } while (eat(','));
      if (!eat(']')) return std::nullopt;
      return j;
    }
    if (c == '"') {
      auto t = string();
      if (!t) return std::nullopt;
      j.type = Json::Type::string;
      j.text = *t;
      return j;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
      const size_t start = i_;
      if (s_[i_] == '-') ++i_;
      if (i_ >= s_.size() || s_[i_] < '0' || s_[i_] > '9') return std::nullopt;
      if (s_[i_] == '0' && i_ + 1 < s_.size() && s_[i_ + 1] >= '0' && s_[i_ + 1] <= '9')
        return std::nullopt;
      while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
      j.type = Json::Type::number;
      j.text = std::string(s_.substr(start, i_ - start));
      return j;
    }
    for (std::string_view word : {"true", "false", "null"})
      if (s_.substr(i_, word.size()) == word) {
        i_ += word.size();
        j.type = word == "null" ? Json::Type::null : Json::Type::boolean;
        j.text = std::string(word);
        return j;
      }
    return std::nullopt;
  }
  std::optional<std::string> string() {
    if (i_ >= s_.size() || s_[i_] != '"') return std::nullopt;
    ++i_;
    std::string out;
    while (i_ < s_.size()) {
      const auto c = static_cast<unsigned char>(s_[i_++]);
      if (c == '"') return out;
      if (c < 0x20) return std::nullopt;  // raw control characters are not JSON
      if (c != '\\') {
        out += static_cast<char>(c);
        continue;
      }
      if (i_ >= s_.size()) return std::nullopt;
      const char e = s_[i_++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out += e;
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          if (i_ + 4 > s_.size()) return std::nullopt;
          unsigned cp = 0;
          for (int k = 0; k < 4; ++k) {
            const char h = s_[i_++];
            cp <<= 4;
            if (h >= '0' && h <= '9')
              cp |= static_cast<unsigned>(h - '0');
            else if (h >= 'a' && h <= 'f')
              cp |= static_cast<unsigned>(h - 'a' + 10);
            else if (h >= 'A' && h <= 'F')
              cp |= static_cast<unsigned>(h - 'A' + 10);
            else
              return std::nullopt;
          }
          if (cp >= 0xd800 && cp <= 0xdfff) return std::nullopt;  // not produced here
          append_utf8(out, cp);
          break;
        }
        default:
          return std::nullopt;
      }
    }
    return std::nullopt;
  }

  std::string_view s_;
  size_t i_ = 0;
};

// Well-formed UTF-8 with no C0 control but '\n' (when `newlines`), no DEL,
// no C1 control: nothing a terminal acts on.
bool is_terminal_safe_utf8(std::string_view text, bool newlines) {
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      if ((c < 0x20 && !(newlines && c == '\n')) || c == 0x7f) return false;
      ++i;
      continue;
    }
    const size_t n = c >= 0xc2 && c <= 0xdf   ? 2
                     : c >= 0xe0 && c <= 0xef ? 3
                     : c >= 0xf0 && c <= 0xf4 ? 4
                                              : 0;
    if (n == 0 || i + n > text.size()) return false;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(text[i + k]) & 0xc0) != 0x80) return false;
    if (c == 0xc2 && static_cast<unsigned char>(text[i + 1]) <= 0x9f) return false;  // C1
    i += n;
  }
  return true;
}

// ---- reports as the two front ends fill them ----

Voice app_voice() {
  Voice v;
  v.program = "heartbeat";
  v.daemon_name = "heartbeat";
  v.human_uptime = false;
  v.log_without_tail = false;
  return v;
}

Voice tool_voice() {
  Voice v;
  v.program = "daemonkit";
  return v;
}

StatusReport app_running() {
  StatusReport r;
  r.run_state = RunState::running;
  r.state = "running";
  r.exit_code = 0;
  r.pid = 4242;
  r.pidfile = "/run/hb.pid";
  r.payload = ProcessReport{4242, 125s, 2196};
  r.command = {"/usr/bin/heartbeat", "start", "--log", "/var/log/hb.log"};
  r.log = "/var/log/hb.log";
  r.log_tail = {"Daemon started with pid 4242", "Daemon Alive! Tue Nov 24 22:00:50 2026"};
  return r;
}

StatusReport tool_running() {
  StatusReport r;
  r.run_state = RunState::running;
  r.state = "running";
  r.exit_code = 0;
  r.pid = 100;
  r.pidfile = "/run/web.pid";
  r.supervisor = ProcessReport{100, 3725s, 3144};
  r.payload = ProcessReport{101, 61s, 2940};
  r.command = {"/usr/bin/web", "--port", "8080"};
  r.restarts = 2;
  r.payload_status = "serving 3 clients";
  r.log = "/var/log/web.log";
  return r;
}

StatusReport tool_restarting() {
  StatusReport r;
  r.run_state = RunState::running;
  r.state = "restarting";
  r.exit_code = 150;
  r.pid = 100;
  r.supervisor = ProcessReport{100, 59s, 3000};
  r.command = {"/bin/sh", "-c", "exit 3"};
  r.restarts = 3;
  r.restart = StatusReport::Restart{"exited with 3", 1500ms};
  r.log = "/var/log/web.log";
  r.log_tail = {"again"};
  return r;
}

StatusReport tool_dead() {
  StatusReport r;
  r.run_state = RunState::dead_pidfile_remains;
  r.state = "dead";
  r.exit_code = 1;
  r.pid = 100;
  r.command = {"/bin/sh", "-c", "echo bye; exit 78"};
  r.restarts = 0;
  r.ended = "exited with 78";
  r.log = "/var/log/web.log";
  r.log_tail = {"bye", "daemonkit: exited with 78"};
  return r;
}

StatusReport unknown() {
  StatusReport r;
  r.state = "unknown";
  r.exit_code = 4;
  r.error = "read '/run/x.pid': not a regular file";
  return r;
}

// Text that came from a payload: a tab, a carriage return, a newline, an
// escape sequence, the C1 control CSI, a quote, a byte that is not UTF-8, a
// backslash.
const std::string kOdd = "tab\there cr\rnl\nesc\x1b[2J c1\u009b q\"uote bad\xff end\\";
const std::string kOddText =
    "tab\\there cr\\rnl\\nesc\\x1b[2J c1\\xc2\\x9b q\"uote bad\\xff end\\\\";
const std::string kOddJson =
    "tab\\there cr\\rnl\\nesc\\u001b[2J c1\\u009b q\\\"uote bad\\ufffd end\\\\";
// What a JSON reader gets back: the text, each invalid byte as U+FFFD.
const std::string kOddDecoded = "tab\there cr\rnl\nesc\x1b[2J c1\u009b q\"uote bad\ufffd end\\";

StatusReport odd(StatusReport r) {
  r.command = {"/usr/bin/" + kOdd, kOdd, "", "last"};
  r.payload_status = kOdd;
  r.log = "/var/log/" + kOdd;
  r.log_tail = {kOdd, "plain"};
  if (r.restart) r.restart->last_exit = kOdd;
  if (!r.ended.empty()) r.ended = kOdd;
  return r;
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    const size_t end = text.find('\n', start);
    if (end == std::string::npos) {
      out.push_back(text.substr(start) + "<no newline>");
      break;
    }
    out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

}  // namespace

// ---- the same bytes as before ----

TEST(StatusText, AnAppsRunningDaemonReadsAsBefore) {
  EXPECT_EQ(daemonkit::status_text(app_running(), app_voice()),
            "heartbeat is running (pid 4242)\n"
            "  command: /usr/bin/heartbeat start --log /var/log/hb.log\n"
            "  uptime:  125 s\n"
            "  memory:  2196 KiB resident\n"
            "  log:     /var/log/hb.log\n"
            "    Daemon started with pid 4242\n"
            "    Daemon Alive! Tue Nov 24 22:00:50 2026\n");
}

TEST(StatusJson, AnAppsRunningDaemonReadsAsBefore) {
  EXPECT_EQ(
      daemonkit::status_json(app_running()),
      R"({"state":"running","exit_code":0,"pid":4242,)"
      R"("command":["/usr/bin/heartbeat","start","--log","/var/log/hb.log"],)"
      R"("uptime_seconds":125,"rss_kib":2196,"log":"/var/log/hb.log",)"
      R"("log_tail":["Daemon started with pid 4242","Daemon Alive! Tue Nov 24 22:00:50 2026"]})");
}

TEST(StatusText, AnAppsDeadDaemonNamesItsPidfileAndShowsTheLogOnlyWithLines) {
  StatusReport r;
  r.run_state = RunState::dead_pidfile_remains;
  r.state = "dead";
  r.exit_code = 1;
  r.pid = 77;
  r.pidfile = "/run/hb.pid";
  r.log = "/var/log/hb.log";
  EXPECT_EQ(daemonkit::status_text(r, app_voice()),
            "heartbeat is dead (pid 77), but its pidfile /run/hb.pid remains\n");
  EXPECT_EQ(daemonkit::status_json(r),
            R"({"state":"dead","exit_code":1,"pid":77,"log":"/var/log/hb.log","log_tail":[]})");
  r.log_tail = {"last words"};
  EXPECT_EQ(daemonkit::status_text(r, app_voice()),
            "heartbeat is dead (pid 77), but its pidfile /run/hb.pid remains\n"
            "  log:     /var/log/hb.log\n"
            "    last words\n");
}

TEST(StatusText, NotRunningIsOneLineInEitherVoice) {
  StatusReport r;
  r.run_state = RunState::not_running;
  r.log = "/var/log/hb.log";
  r.log_tail = {"old line"};
  EXPECT_EQ(daemonkit::status_text(r, app_voice()), "heartbeat is not running\n");
  EXPECT_EQ(daemonkit::status_text(r, tool_voice()), "not running\n");
  EXPECT_EQ(daemonkit::status_json(r),
            R"({"state":"not running","exit_code":3,"pid":0,"log":"/var/log/hb.log",)"
            R"("log_tail":["old line"]})");
}

TEST(StatusText, AToolsRunningDaemonReadsAsBefore) {
  EXPECT_EQ(daemonkit::status_text(tool_running(), tool_voice()),
            "running (pid 100): serving 3 clients\n"
            "  payload: pid 101: /usr/bin/web --port 8080\n"
            "  uptime:  1 min 1 s\n"
            "  memory:  2940 KiB resident\n"
            "  supervisor: pid 100, up 1 h 2 min, 3144 KiB resident\n"
            "  restarts: 2\n"
            "  log:     /var/log/web.log\n");
}

TEST(StatusJson, AToolsRunningDaemonReadsAsBefore) {
  EXPECT_EQ(daemonkit::status_json(tool_running()),
            R"({"state":"running","exit_code":0,"pid":100,"supervisor_uptime_seconds":3725,)"
            R"("supervisor_rss_kib":3144,"payload_pid":101,"uptime_seconds":61,"rss_kib":2940,)"
            R"("command":["/usr/bin/web","--port","8080"],"restarts":2,)"
            R"("status":"serving 3 clients","log":"/var/log/web.log","log_tail":[]})");
}

TEST(StatusText, RestartingSaysHowTheLastPayloadEndedAndWhenTheNextStarts) {
  EXPECT_EQ(daemonkit::status_text(tool_restarting(), tool_voice()),
            "restarting (pid 100): /bin/sh exited with 3; restart 4 in 1.5 s\n"
            "  supervisor: pid 100, up 59 s, 3000 KiB resident\n"
            "  restarts: 3\n"
            "  log:     /var/log/web.log\n"
            "    again\n");
  EXPECT_EQ(daemonkit::status_json(tool_restarting()),
            R"({"state":"restarting","exit_code":150,"pid":100,"supervisor_uptime_seconds":59,)"
            R"("supervisor_rss_kib":3000,"command":["/bin/sh","-c","exit 3"],"restarts":3,)"
            R"("last_exit":"exited with 3","next_start_in_ms":1500,"log":"/var/log/web.log",)"
            R"("log_tail":["again"]})");
}

TEST(StatusText, ADeadSupervisedDaemonSaysWhyItEnded) {
  EXPECT_EQ(daemonkit::status_text(tool_dead(), tool_voice()),
            "dead (pid 100), pidfile remains: exited with 78\n"
            "  log:     /var/log/web.log\n"
            "    bye\n"
            "    daemonkit: exited with 78\n");
  EXPECT_EQ(daemonkit::status_json(tool_dead()),
            R"({"state":"dead","exit_code":1,"pid":100,)"
            R"("command":["/bin/sh","-c","echo bye; exit 78"],"restarts":0,)"
            R"("ended":"exited with 78","log":"/var/log/web.log",)"
            R"("log_tail":["bye","daemonkit: exited with 78"]})");
}

TEST(StatusText, AnOrphanIsShownAsADeadDaemonWhosePayloadStillRuns) {
  StatusReport r;
  r.run_state = RunState::not_running;
  r.orphan_pid = 555;
  r.command = {"/bin/sleep", "100"};
  r.restarts = 0;
  r.ended =
      "its supervisor was killed; its payload 555 (sleep) still runs (daemonkit stop ends it)";
  EXPECT_EQ(daemonkit::status_text(r, tool_voice()),
            "dead (pid 0), pidfile remains: its supervisor was killed; its payload 555 (sleep) "
            "still runs (daemonkit stop ends it)\n");
  EXPECT_EQ(daemonkit::status_json(r),
            R"({"state":"not running","exit_code":3,"pid":0,"orphan_pid":555,)"
            R"("command":["/bin/sleep","100"],"restarts":0,"ended":"its supervisor was killed; )"
            R"j(its payload 555 (sleep) still runs (daemonkit stop ends it)"})j");
}

TEST(StatusOutcome, UnknownPrintsTheJsonOnStdoutAndTheErrorOnStderr) {
  const Outcome json = daemonkit::status_outcome(unknown(), true, tool_voice());
  EXPECT_EQ(json.exit_code, 4);
  EXPECT_EQ(
      json.lines,
      (std::vector<Line>{
          {Line::Stream::out,
           R"({"state":"unknown","error":"read '/run/x.pid': not a regular file","exit_code":4})"},
          {Line::Stream::err,
           "daemonkit: status unknown: read '/run/x.pid': not a regular file"}}));
  const Outcome text = daemonkit::status_outcome(unknown(), false, app_voice());
  EXPECT_EQ(text.exit_code, 4);
  EXPECT_EQ(text.lines, (std::vector<Line>{{Line::Stream::err,
                                            "heartbeat: status unknown: read '/run/x.pid': not "
                                            "a regular file"}}));
  EXPECT_EQ(daemonkit::status_text(unknown(), tool_voice()), "");
}

TEST(StatusOutcome, TextIsOneStdoutLineEachWithTheReportsExitCode) {
  const Outcome o = daemonkit::status_outcome(tool_restarting(), false, tool_voice());
  EXPECT_EQ(o.exit_code, 150);
  std::string joined;
  for (const auto& l : o.lines) {
    EXPECT_EQ(l.stream, Line::Stream::out);
    joined += l.text + "\n";
  }
  EXPECT_EQ(joined, daemonkit::status_text(tool_restarting(), tool_voice()));
}

TEST(HumanDuration, GrowsUnitsWithTheDuration) {
  EXPECT_EQ(daemonkit::human_duration(0s), "0 s");
  EXPECT_EQ(daemonkit::human_duration(59s), "59 s");
  EXPECT_EQ(daemonkit::human_duration(60s), "1 min 0 s");
  EXPECT_EQ(daemonkit::human_duration(3599s), "59 min 59 s");
  EXPECT_EQ(daemonkit::human_duration(3600s), "1 h 0 min");
  EXPECT_EQ(daemonkit::human_duration(86399s), "23 h 59 min");
  EXPECT_EQ(daemonkit::human_duration(90000s), "1 days 1 h");
}

// ---- escaping, once, in the renderers ----

TEST(StatusJson, IsValidUtf8JsonWhateverThePayloadsTextHolds) {
  for (const StatusReport& base : {app_running(), tool_running(), tool_restarting(), tool_dead()}) {
    const StatusReport r = odd(base);
    const std::string j = daemonkit::status_json(r);
    SCOPED_TRACE(j);
    EXPECT_TRUE(is_terminal_safe_utf8(j, false));
    auto doc = JsonReader(j).document();
    ASSERT_TRUE(doc) << "not JSON";
    ASSERT_EQ(doc->type, Json::Type::object);
    ASSERT_NE(doc->get("command"), nullptr);
    EXPECT_EQ(doc->get("command")->strings(),
              (std::vector<std::string>{"/usr/bin/" + kOddDecoded, kOddDecoded, "", "last"}));
    ASSERT_NE(doc->get("log"), nullptr);
    EXPECT_EQ(doc->get("log")->text, "/var/log/" + kOddDecoded);
    ASSERT_NE(doc->get("log_tail"), nullptr);
    EXPECT_EQ(doc->get("log_tail")->strings(), (std::vector<std::string>{kOddDecoded, "plain"}));
    if (const Json* status = doc->get("status")) {
      EXPECT_EQ(status->text, kOddDecoded);
    }
    if (r.restart) {
      ASSERT_NE(doc->get("last_exit"), nullptr);
      EXPECT_EQ(doc->get("last_exit")->text, kOddDecoded);
    }
    if (!r.ended.empty()) {
      ASSERT_NE(doc->get("ended"), nullptr);
      EXPECT_EQ(doc->get("ended")->text, kOddDecoded);
    }
    // Each key once.
    auto keys = doc->keys();
    std::sort(keys.begin(), keys.end());
    EXPECT_EQ(std::adjacent_find(keys.begin(), keys.end()), keys.end());
  }
  EXPECT_NE(daemonkit::status_json(odd(tool_running())).find("\"status\":\"" + kOddJson + "\""),
            std::string::npos);
}

TEST(StatusJson, TheErrorOfAnUnknownStatusIsEscapedToo) {
  StatusReport r = unknown();
  r.error = "read '/run/" + kOdd + "': denied";
  const std::string j = daemonkit::status_json(r);
  EXPECT_TRUE(is_terminal_safe_utf8(j, false)) << j;
  auto doc = JsonReader(j).document();
  ASSERT_TRUE(doc) << j;
  EXPECT_EQ(doc->get("error")->text, "read '/run/" + kOddDecoded + "': denied");
  EXPECT_EQ(doc->keys(), (std::vector<std::string>{"state", "error", "exit_code"}));
}

TEST(StatusText, ShowsThePayloadsTextWithCEscapesAndNothingATerminalActsOn) {
  const StatusReport running = odd(tool_running());
  const std::string t = daemonkit::status_text(running, tool_voice());
  SCOPED_TRACE(t);
  EXPECT_TRUE(is_terminal_safe_utf8(t, true));
  const auto lines = split_lines(t);
  ASSERT_EQ(lines.size(), 9U) << "a newline in the payload's text starts no line of its own";
  EXPECT_EQ(lines[0], "running (pid 100): " + kOddText);
  EXPECT_EQ(lines[1], "  payload: pid 101: /usr/bin/" + kOddText + " " + kOddText + "  last");
  EXPECT_EQ(lines[6], "  log:     /var/log/" + kOddText);
  EXPECT_EQ(lines[7], "    " + kOddText);
  EXPECT_EQ(lines[8], "    plain");

  const std::string a = daemonkit::status_text(odd(app_running()), app_voice());
  EXPECT_TRUE(is_terminal_safe_utf8(a, true)) << a;
  EXPECT_NE(a.find("\n  command: /usr/bin/" + kOddText + " " + kOddText + "  last\n"),
            std::string::npos)
      << a;

  const std::string r = daemonkit::status_text(odd(tool_restarting()), tool_voice());
  EXPECT_TRUE(is_terminal_safe_utf8(r, true)) << r;
  EXPECT_EQ(split_lines(r)[0],
            "restarting (pid 100): /usr/bin/" + kOddText + " " + kOddText + "; restart 4 in 1.5 s");

  const std::string d = daemonkit::status_text(odd(tool_dead()), tool_voice());
  EXPECT_TRUE(is_terminal_safe_utf8(d, true)) << d;
  EXPECT_EQ(split_lines(d)[0], "dead (pid 100), pidfile remains: " + kOddText);
}

// ---- stop, reload, reopen, signal ----

TEST(StopOutcome, NotRunningIsAnAnswerOnStdoutUnlessQuiet) {
  StopResult r;
  r.outcome = StopResult::Outcome::not_running;
  auto app = daemonkit::stop_outcome(r, 10s, false, app_voice());
  EXPECT_EQ(app.exit_code, 0);
  EXPECT_EQ(app.lines, (std::vector<Line>{{Line::Stream::out, "heartbeat is not running"}}));
  auto tool = daemonkit::stop_outcome(r, 10s, false, tool_voice());
  EXPECT_EQ(tool.lines, (std::vector<Line>{{Line::Stream::out, "daemonkit: not running"}}));
  EXPECT_TRUE(daemonkit::stop_outcome(r, 10s, true, tool_voice()).lines.empty());
}

TEST(StopOutcome, ASigkillIsToldOnStderrAfterTheSupervisorsNotes) {
  StopResult r;
  r.outcome = StopResult::Outcome::killed;
  r.pid = 321;
  r.notes = {"payload (pid 322) did not exit within 1.5 s after SIGTERM; sent SIGKILL"};
  r.cleanup_error = daemonkit::Error::from_errno(EACCES, "remove", "/run/web.pid");
  auto tool = daemonkit::stop_outcome(r, 1500ms, false, tool_voice());
  EXPECT_EQ(tool.exit_code, 0) << "the daemon is stopped";
  EXPECT_EQ(
      tool.lines,
      (std::vector<Line>{
          {Line::Stream::err,
           "daemonkit: payload (pid 322) did not exit within 1.5 s after SIGTERM; sent "
           "SIGKILL"},
          {Line::Stream::err,
           "daemonkit: pid 321 did not stop within 1.5 s; killed it with SIGKILL"},
          {Line::Stream::err, "daemonkit: warning: remove '/run/web.pid': Permission denied"}}));
  r.notes.clear();
  r.cleanup_error.reset();
  auto app = daemonkit::stop_outcome(r, 1500ms, false, app_voice());
  EXPECT_EQ(app.lines, (std::vector<Line>{{Line::Stream::err,
                                           "heartbeat: pid 321 ignored SIGTERM; killed it with "
                                           "SIGKILL"}}));
}

TEST(RequestOutcomes, NotRunningExitsSevenAndFailuresOne) {
  RequestResult r;
  r.outcome = RequestResult::Outcome::done;
  EXPECT_EQ(daemonkit::reload_outcome(r, tool_voice()).exit_code, 0);
  EXPECT_TRUE(daemonkit::reload_outcome(r, tool_voice()).lines.empty());
  EXPECT_EQ(daemonkit::signal_outcome(r, tool_voice()).exit_code, 0);

  r.outcome = RequestResult::Outcome::not_running;
  r.why = "/bin/sh waits to be respawned";
  auto reload = daemonkit::reload_outcome(r, app_voice());
  EXPECT_EQ(reload.exit_code, 7);
  EXPECT_EQ(reload.lines,
            (std::vector<Line>{{Line::Stream::err, "heartbeat: cannot reload: not running"}}));
  auto signal = daemonkit::signal_outcome(r, tool_voice());
  EXPECT_EQ(signal.exit_code, 7);
  EXPECT_EQ(signal.lines, (std::vector<Line>{{Line::Stream::err,
                                              "daemonkit: cannot signal: not running (/bin/sh "
                                              "waits to be respawned)"}}));

  r.outcome = RequestResult::Outcome::failed;
  r.why = "no confirmation within 10 s";
  EXPECT_EQ(daemonkit::reload_outcome(r, tool_voice()).lines,
            (std::vector<Line>{
                {Line::Stream::err, "daemonkit: reload failed: no confirmation within 10 s"}}));
  EXPECT_EQ(daemonkit::reload_outcome(r, tool_voice()).exit_code, 1);
  EXPECT_EQ(daemonkit::signal_outcome(r, tool_voice()).lines,
            (std::vector<Line>{
                {Line::Stream::err, "daemonkit: cannot signal: no confirmation within 10 s"}}));

  EXPECT_EQ(daemonkit::reopen_outcome(0, tool_voice()).exit_code, 7);
  EXPECT_EQ(daemonkit::reopen_outcome(0, tool_voice()).lines,
            (std::vector<Line>{{Line::Stream::err, "daemonkit: cannot reopen: not running"}}));
  EXPECT_EQ(daemonkit::reopen_outcome(1234, tool_voice()).exit_code, 0);
  EXPECT_TRUE(daemonkit::reopen_outcome(1234, tool_voice()).lines.empty());
}

TEST(ErrorOutcome, AUsageErrorIsItsTextThenTheSynopsisExitTwo) {
  auto o = daemonkit::error_outcome(daemonkit::usage_error("unknown option '--x'"), "start",
                                    tool_voice(), "Usage: daemonkit start ...");
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_EQ(o.lines, (std::vector<Line>{{Line::Stream::err, "daemonkit: unknown option '--x'"},
                                        {Line::Stream::err, "Usage: daemonkit start ..."}}));
  // A parser's usage error names its operation.
  auto parsed =
      daemonkit::error_outcome(daemonkit::Error::because("parse --timeout", "x", "not a number",
                                                         daemonkit::ErrorKind::usage),
                               "", app_voice(), "Usage: heartbeat ...");
  EXPECT_EQ(parsed.lines[0].text, "heartbeat: parse --timeout 'x': not a number");
}

TEST(ErrorOutcome, OtherErrorsSayWhatCouldNotBeDoneWithTheirExitCode) {
  auto o = daemonkit::error_outcome(daemonkit::Error::from_errno(EACCES, "open", "/run/x.pid"),
                                    "stop", app_voice(), "unused");
  EXPECT_EQ(o.exit_code, 4);
  EXPECT_EQ(o.lines, (std::vector<Line>{{Line::Stream::err,
                                         "heartbeat: cannot stop: open '/run/x.pid': Permission "
                                         "denied"}}));
}

// ---- run's lock ----

TEST(LockPidfileForRun, WritesOurPid) {
  dktest::TempDir dir;
  const std::string path = dir / "run.pid";
  auto locked = daemonkit::lock_pidfile_for_run(path);
  ASSERT_TRUE(locked) << locked.error().message();
  EXPECT_EQ(dktest::read_file(path), std::to_string(::getpid()) + "\n");
  EXPECT_EQ(locked->path(), path);
}

TEST(LockPidfileForRun, ALockedPidfileIsAnErrorNamingItsHolder) {
  dktest::TempDir dir;
  const std::string path = dir / "run.pid";
  int hold[2];
  ASSERT_EQ(::pipe(hold), 0);
  int locked_pipe[2];
  ASSERT_EQ(::pipe(locked_pipe), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(hold[1]);
    auto mine = daemonkit::lock_pidfile_for_run(path);
    const char ok = mine ? 'y' : 'n';
    (void)!::write(locked_pipe[1], &ok, 1);
    char c;
    (void)!::read(hold[0], &c, 1);
    _exit(0);
  }
  ::close(hold[0]);
  char ok = 0;
  ASSERT_EQ(::read(locked_pipe[0], &ok, 1), 1);
  EXPECT_EQ(ok, 'y');

  auto second = daemonkit::lock_pidfile_for_run(path, true);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().kind, daemonkit::ErrorKind::failure);
  auto o = daemonkit::error_outcome(second.error(), "run", tool_voice(), "unused");
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_EQ(
      o.lines,
      (std::vector<Line>{{Line::Stream::err, "daemonkit: cannot run: " + path +
                                                 " is locked by pid " + std::to_string(child)}}));
  EXPECT_EQ(dktest::read_file(path), std::to_string(child) + "\n") << "the holder's pid stays";

  ::close(hold[1]);
  ::close(locked_pipe[0]);
  ::close(locked_pipe[1]);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
}
