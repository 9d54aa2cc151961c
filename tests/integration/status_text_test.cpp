// What `status` shows of the payload's own text (its command line, its
// STATUS= line, its log): never a control character that reaches the
// terminal, never invalid JSON, never the NULs a retitled payload pads with.
#include <unistd.h>

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "fixture.hpp"

using namespace dktest;

namespace {

class StatusText : public DaemonkitTest {
 protected:
  // Starts the daemon; returns the payload's pid (0 if none).
  pid_t start(const std::vector<std::string>& options, const std::vector<std::string>& program) {
    auto r = start_daemon(options, program);
    EXPECT_EQ(r.exit_code, 0) << r.describe();
    const pid_t supervisor = pid_in(pidfile);
    if (r.exit_code != 0 || supervisor <= 1) return 0;
    auto kids = children_of(supervisor);
    return kids.empty() ? 0 : kids[0];
  }
};

bool have_python() {
  return ::access("/usr/bin/python3", X_OK) == 0;
}

// Python's verdict on `json`: "ok" when it is UTF-8 (strictly decoded) and
// valid JSON whose "command" is `command`, each argument decoded as UTF-8
// with U+FFFD for what is not; otherwise what is wrong.
std::string python_check(const TempDir& d, const std::string& json,
                         const std::vector<std::string>& command) {
  write_file(d / "status.json", json);
  std::vector<std::string> argv = {"/usr/bin/python3", "-c", R"(
import json, os, sys
try:
    j = json.loads(open(sys.argv[1], 'rb').read().decode('utf-8'))
except ValueError as e:
    sys.exit('invalid: %s' % e)
want = [os.fsencode(a).decode('utf-8', 'replace') for a in sys.argv[2:]]
if j.get('command') != want:
    sys.exit('command %r, not %r' % (j.get('command'), want))
print('ok')
)",
                                   d / "status.json"};
  argv.insert(argv.end(), command.begin(), command.end());
  auto r = run(argv);
  return r.exit_code == 0 ? "ok" : r.out + r.err;
}

// Where the first thing a terminal could act on is: a C0 control but the
// newline, DEL, a C1 control, or a byte that is not part of a UTF-8
// sequence (0x9b alone is CSI to a terminal in 8-bit mode); npos if none.
size_t find_terminal_control(const std::string& text) {
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      if ((c < 0x20 && c != '\n') || c == 0x7f) return i;
      ++i;
      continue;
    }
    const size_t n = c >= 0xc2 && c <= 0xdf   ? 2
                     : c >= 0xe0 && c <= 0xef ? 3
                     : c >= 0xf0 && c <= 0xf4 ? 4
                                              : 0;
    if (n == 0 || i + n > text.size()) return i;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(text[i + k]) & 0xc0) != 0x80) return i;
    if (c == 0xc2 && static_cast<unsigned char>(text[i + 1]) <= 0x9f) return i;  // C1
    i += n;
  }
  return std::string::npos;
}

// A tab, a carriage return, an escape sequence, the C1 control CSI, a byte
// that is not UTF-8 and a backslash: in an argument, in the log, in STATUS=.
const std::string kOdd = "tab\there cr\rhere esc\x1b[2J c1\u009b bad\xff end\\";
const std::string kOddShown = "tab\\there cr\\rhere esc\\x1b[2J c1\\xc2\\x9b bad\\xff end\\\\";
const std::string kOddJson = "tab\\there cr\\rhere esc\\u001b[2J c1\\u009b bad\\ufffd end\\\\";

TEST_F(StatusText, ControlCharactersAndInvalidUtf8AreEscapedInTextAndValidInJson) {
  const std::string log = dir / "out.log";
  const std::vector<std::string> command = {payload_path("notifier"), "say=" + kOdd, "",
                                            "send=STATUS=" + kOdd + "|READY=1", "hang"};
  const pid_t payload = start({"--stdout", log, "--notify"}, command);
  ASSERT_GT(payload, 1);
  ASSERT_TRUE(eventually([&] { return read_file(log).find(kOdd) != std::string::npos; }))
      << read_file(log);

  auto r = dk({"status", "--pidfile", pidfile});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(find_terminal_control(r.out), std::string::npos) << r.describe();
  EXPECT_NE(r.out.find("): " + kOddShown + "\n"), std::string::npos) << "STATUS=\n" << r.out;
  EXPECT_NE(r.out.find("  payload: pid " + std::to_string(payload) + ": " + command[0] +
                       " say=" + kOddShown + "  send=STATUS=" + kOddShown + "|READY=1 hang\n"),
            std::string::npos)
      << "the command, with its empty argument\n"
      << r.out;
  EXPECT_NE(r.out.find("\n    " + kOddShown + "\n"), std::string::npos) << "the log\n" << r.out;

  auto j = dk({"status", "--pidfile", pidfile, "--json"});
  EXPECT_EQ(j.exit_code, 0) << j.describe();
  EXPECT_EQ(find_terminal_control(j.out), std::string::npos) << j.describe();
  EXPECT_NE(j.out.find("\"command\":[\"" + command[0] + "\",\"say=" + kOddJson +
                       "\",\"\",\"send=STATUS=" + kOddJson + "|READY=1\",\"hang\"]"),
            std::string::npos)
      << j.out;
  EXPECT_NE(j.out.find("\"status\":\"" + kOddJson + "\""), std::string::npos) << j.out;
  EXPECT_NE(j.out.find(",\"" + kOddJson + "\"]"), std::string::npos) << "the log\n" << j.out;
  if (!have_python()) GTEST_SKIP() << "no /usr/bin/python3: the JSON was not parsed";
  EXPECT_EQ(python_check(dir, j.out, command), "ok") << j.out;
}

// redis, nginx and postgres retitle themselves: the title over argv[0], the
// rest of the arguments' space NULs, which once showed as dozens of empty
// arguments (trailing spaces, and "" elements in --json).
TEST_F(StatusText, ARetitledPayloadsCommandHasNoPaddingAsEmptyArguments) {
  const std::string title = "redis-server *:6379";
  const pid_t payload =
      start({"--notify"}, {payload_path("notifier"), "retitle=" + title,
                           "mark=" + std::string(60, 'x'), "send=READY=1", "hang"});
  ASSERT_GT(payload, 1);
  const std::string cmdline = read_file("/proc/" + std::to_string(payload) + "/cmdline");
  ASSERT_GT(cmdline.size(), title.size() + 60) << "the payload pads its title as redis does";
  ASSERT_EQ(cmdline.find_first_not_of('\0', title.size()), std::string::npos);

  // What status shows is the command the payload was started with (the
  // contract), whatever it made of its own command line since.
  const std::vector<std::string> started = {payload_path("notifier"), "retitle=" + title,
                                            "mark=" + std::string(60, 'x'), "send=READY=1", "hang"};
  std::string line, array;
  for (const auto& a : started) {
    line += (line.empty() ? "" : " ") + a;
    array += (array.empty() ? "\"" : ",\"") + a + "\"";
  }
  auto r = dk({"status", "--pidfile", pidfile});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_NE(r.out.find("  payload: pid " + std::to_string(payload) + ": " + line + "\n"),
            std::string::npos)
      << r.out;
  auto j = dk({"status", "--pidfile", pidfile, "--json"});
  EXPECT_EQ(j.exit_code, 0) << j.describe();
  EXPECT_NE(j.out.find("\"command\":[" + array + "]"), std::string::npos) << j.out;
  EXPECT_EQ(j.out.find("\"\""), std::string::npos) << j.out;
  if (!have_python()) GTEST_SKIP() << "no /usr/bin/python3: the JSON was not parsed";
  EXPECT_EQ(python_check(dir, j.out, started), "ok") << j.out;
}

}  // namespace
