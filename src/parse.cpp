#include "daemonkit/parse.hpp"

#include <sys/resource.h>

#include <cctype>
#include <charconv>
#include <csignal>
#include <cstring>
#include <optional>
#include <string>

namespace daemonkit {

namespace {

Failure bad(std::string_view what, std::string_view text, const std::string& why) {
  return fail(
      Error::because("parse " + std::string(what), std::string(text), why, ErrorKind::usage));
}

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

// Unsigned decimal without sign or spaces; nullopt on overflow or garbage.
std::optional<std::uint64_t> parse_unsigned(std::string_view s) {
  if (!all_digits(s)) return std::nullopt;
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

struct SignalEntry {
  const char* name;
  int number;
};

constexpr SignalEntry kSignals[] = {
    {"HUP", SIGHUP},       {"INT", SIGINT},   {"QUIT", SIGQUIT},     {"ILL", SIGILL},
    {"TRAP", SIGTRAP},     {"ABRT", SIGABRT}, {"IOT", SIGIOT},       {"BUS", SIGBUS},
    {"FPE", SIGFPE},       {"KILL", SIGKILL}, {"USR1", SIGUSR1},     {"SEGV", SIGSEGV},
    {"USR2", SIGUSR2},     {"PIPE", SIGPIPE}, {"ALRM", SIGALRM},     {"TERM", SIGTERM},
    {"STKFLT", SIGSTKFLT}, {"CHLD", SIGCHLD}, {"CONT", SIGCONT},     {"STOP", SIGSTOP},
    {"TSTP", SIGTSTP},     {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},     {"URG", SIGURG},
    {"XCPU", SIGXCPU},     {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF},
    {"WINCH", SIGWINCH},   {"IO", SIGIO},     {"POLL", SIGPOLL},     {"PWR", SIGPWR},
    {"SYS", SIGSYS},
};

struct LimitEntry {
  const char* name;
  int resource;
};

constexpr LimitEntry kLimits[] = {
    {"as", RLIMIT_AS},         {"core", RLIMIT_CORE},   {"cpu", RLIMIT_CPU},
    {"data", RLIMIT_DATA},     {"fsize", RLIMIT_FSIZE}, {"memlock", RLIMIT_MEMLOCK},
    {"nofile", RLIMIT_NOFILE}, {"nproc", RLIMIT_NPROC}, {"rss", RLIMIT_RSS},
    {"stack", RLIMIT_STACK},
};

}  // namespace

Result<std::chrono::milliseconds> parse_seconds(std::string_view text, std::string_view what) {
  // Digits, optionally a dot and up to three more digits: exact, no locale,
  // no exponent, no "inf"/"nan".
  size_t dot = text.find('.');
  std::string_view whole = text.substr(0, dot);
  std::string_view frac = dot == std::string_view::npos ? "" : text.substr(dot + 1);
  if ((whole.empty() && frac.empty()) || (!whole.empty() && !all_digits(whole)) ||
      (!frac.empty() && !all_digits(frac)))
    return bad(what, text, "expected a number of seconds");
  if (dot != std::string_view::npos && frac.empty())
    return bad(what, text, "expected digits after '.'");
  if (frac.size() > 3) return bad(what, text, "at most millisecond precision");
  constexpr long long kMaxSeconds = 366LL * 24 * 3600;
  long long seconds = 0;
  for (char c : whole) {
    seconds = seconds * 10 + (c - '0');
    if (seconds > kMaxSeconds) return bad(what, text, "too large (at most one year)");
  }
  long long ms = 0;
  for (size_t i = 0; i < 3; ++i) ms = ms * 10 + (i < frac.size() ? frac[i] - '0' : 0);
  return std::chrono::milliseconds(seconds * 1000 + ms);
}

std::string format_seconds(std::chrono::milliseconds d) {
  std::string s = std::to_string(d.count() / 1000);
  long long ms = d.count() % 1000;
  if (ms != 0) {
    std::string frac = std::to_string(1000 + ms).substr(1);
    while (frac.back() == '0') frac.pop_back();
    s += "." + frac;
  }
  return s;
}

Result<long long> parse_integer(std::string_view text, std::string_view what, long long min,
                                long long max) {
  std::string_view digits = text;
  if (!digits.empty() && digits[0] == '-') digits.remove_prefix(1);
  long long v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (!all_digits(digits) || ec == std::errc::invalid_argument || end != text.data() + text.size())
    return bad(what, text, "expected a whole number");
  if (ec == std::errc::result_out_of_range || v < min || v > max)
    return bad(what, text,
               "expected a number from " + std::to_string(min) + " to " + std::to_string(max));
  return v;
}

Result<mode_t> parse_umask(std::string_view text, std::string_view what) {
  if (text.empty() || text.size() > 4) return bad(what, text, "expected an octal mask such as 022");
  unsigned v = 0;
  for (char c : text) {
    if (c < '0' || c > '7') return bad(what, text, "expected an octal mask such as 022");
    v = v * 8 + static_cast<unsigned>(c - '0');
  }
  if (v > 0777) return bad(what, text, "a mask is at most 0777");
  return static_cast<mode_t>(v);
}

Result<int> parse_signal(std::string_view text, std::string_view what) {
  if (all_digits(text)) {
    auto n = parse_unsigned(text);
    if (!n || *n < 1 || *n > static_cast<std::uint64_t>(SIGRTMAX))
      return bad(what, text, "no such signal");
    return static_cast<int>(*n);
  }
  std::string upper;
  for (char c : text) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  std::string_view name = upper;
  if (name.substr(0, 3) == "SIG") name.remove_prefix(3);
  for (const auto& s : kSignals)
    if (name == s.name) return s.number;
  for (std::string_view base : {"RTMIN", "RTMAX"}) {
    if (name.substr(0, base.size()) != base) continue;
    std::string_view rest = name.substr(base.size());
    int origin = base == "RTMIN" ? SIGRTMIN : SIGRTMAX;
    if (rest.empty()) return origin;
    if (rest.size() < 2 || (rest[0] != '+' && rest[0] != '-')) break;
    auto off = parse_unsigned(rest.substr(1));
    if (!off) break;
    long long n = origin + (rest[0] == '+' ? 1 : -1) * static_cast<long long>(*off);
    if (n < SIGRTMIN || n > SIGRTMAX) return bad(what, text, "no such signal");
    return static_cast<int>(n);
  }
  return bad(what, text, "no such signal");
}

std::string signal_name(int signo) {
  for (const auto& s : kSignals)
    if (s.number == signo && std::strcmp(s.name, "IOT") != 0 && std::strcmp(s.name, "POLL") != 0)
      return std::string("SIG") + s.name;
  if (signo == SIGRTMIN) return "SIGRTMIN";
  if (signo > SIGRTMIN && signo <= SIGRTMAX) return "SIGRTMIN+" + std::to_string(signo - SIGRTMIN);
  return "signal " + std::to_string(signo);
}

Result<std::pair<std::string, std::string>> parse_assignment(std::string_view text,
                                                             std::string_view what) {
  size_t eq = text.find('=');
  if (eq == std::string_view::npos || eq == 0) return bad(what, text, "expected NAME=VALUE");
  std::string_view name = text.substr(0, eq);
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return bad(what, text, "a variable name is letters, digits and '_'");
  }
  return std::pair<std::string, std::string>(std::string(name), std::string(text.substr(eq + 1)));
}

Result<std::uint64_t> parse_size(std::string_view text, std::string_view what) {
  std::uint64_t unit = 1;
  std::string_view digits = text;
  if (!text.empty()) {
    switch (text.back()) {
      case 'K':
      case 'k':
        unit = 1ULL << 10;
        break;
      case 'M':
      case 'm':
        unit = 1ULL << 20;
        break;
      case 'G':
      case 'g':
        unit = 1ULL << 30;
        break;
      default:
        break;
    }
    if (unit != 1) digits.remove_suffix(1);
  }
  auto n = parse_unsigned(digits);
  if (!n) return bad(what, text, "expected a size such as 512K, 10M or 1G");
  if (*n == 0) return bad(what, text, "a size must be greater than 0");
  if (*n > (1ULL << 50) / unit) return bad(what, text, "too large");
  return *n * unit;
}

Result<std::vector<int>> parse_status_list(std::string_view text, std::string_view what) {
  std::vector<int> out;
  size_t start = 0;
  for (;;) {
    size_t comma = text.find(',', start);
    std::string_view item =
        text.substr(start, comma == std::string_view::npos ? comma : comma - start);
    auto n = parse_unsigned(item);
    if (!n || *n > 255) return bad(what, text, "expected exit statuses 0-255 separated by commas");
    out.push_back(static_cast<int>(*n));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

Result<ResourceLimit> parse_limit(std::string_view text, std::string_view what) {
  size_t eq = text.find('=');
  if (eq == std::string_view::npos) return bad(what, text, "expected NAME=SOFT[:HARD]");
  std::string_view name = text.substr(0, eq);
  ResourceLimit limit;
  bool known = false;
  for (const auto& l : kLimits)
    if (name == l.name) {
      limit.resource = l.resource;
      limit.name = l.name;
      known = true;
    }
  if (!known)
    return bad(what, text,
               "unknown limit (as, core, cpu, data, fsize, memlock, nofile, nproc, rss, stack)");
  std::string_view values = text.substr(eq + 1);
  size_t colon = values.find(':');
  std::string_view soft = values.substr(0, colon);
  std::string_view hard = colon == std::string_view::npos ? soft : values.substr(colon + 1);
  auto value = [](std::string_view v) -> std::optional<std::uint64_t> {
    if (v == "infinity" || v == "unlimited") return static_cast<std::uint64_t>(RLIM_INFINITY);
    auto n = parse_unsigned(v);
    if (n && *n == static_cast<std::uint64_t>(RLIM_INFINITY)) return std::nullopt;
    return n;
  };
  auto s = value(soft);
  auto h = value(hard);
  if (!s || !h) return bad(what, text, "a limit value is a number or 'infinity'");
  if (*s > *h) return bad(what, text, "the soft limit exceeds the hard limit");
  limit.soft = *s;
  limit.hard = *h;
  return limit;
}

}  // namespace daemonkit
