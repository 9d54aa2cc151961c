// src/sys/fault.cpp: the fault plan of a DAEMONKIT_FAULT_INJECTION build
// (see fault.hpp). Compiled to nothing otherwise.
#include "sys/fault.hpp"

#ifdef DAEMONKIT_FAULT_INJECTION

#include <limits.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <string_view>

#include "sys/sys.hpp"

namespace daemonkit::sys::fault {

namespace {

constexpr size_t kMaxRules = 8;
constexpr size_t kMaxMatch = 256;

struct Rule {
  Call call = Call::open;
  char match[kMaxMatch] = {};  // empty: every call
  int error = 0;
  unsigned first = 1;  // the first matching call that fails, from 1
  unsigned every = 1;  // then every how many
  unsigned count = 0;  // how many fail in all; 0: no limit
  std::atomic<unsigned> seen{0};
};

// Filled before main, read-only afterwards (but for the counters).
Rule g_rules[kMaxRules];
size_t g_rule_count = 0;

struct CallName {
  std::string_view name;
  Call call;
};
constexpr CallName kCalls[] = {
    {"open", Call::open},
    {"write", Call::write},
    {"pwrite", Call::pwrite},
    {"ftruncate", Call::ftruncate},
    {"fork", Call::fork},
    {"socket", Call::socket},
    {"socketpair", Call::socketpair},
};

struct ErrnoName {
  std::string_view name;
  int value;
};
constexpr ErrnoName kErrnos[] = {
    {"EINTR", EINTR},   {"EACCES", EACCES}, {"EPERM", EPERM},   {"EMFILE", EMFILE},
    {"ENFILE", ENFILE}, {"ENOSPC", ENOSPC}, {"EDQUOT", EDQUOT}, {"EAGAIN", EAGAIN},
    {"ENOMEM", ENOMEM}, {"EIO", EIO},       {"EROFS", EROFS},   {"ENOENT", ENOENT},
};

bool parse_number(std::string_view text, unsigned& out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return !text.empty() && ec == std::errc() && end == text.data() + text.size();
}

// CALL[:MATCH]=ERRNO[@NTH][%EVERY][*COUNT], suffixes in any order.
bool parse_rule(std::string_view text, Rule& rule) {
  const size_t eq = text.rfind('=');
  if (eq == std::string_view::npos) return false;
  std::string_view target = text.substr(0, eq);
  std::string_view effect = text.substr(eq + 1);

  const size_t colon = target.find(':');
  const std::string_view call = target.substr(0, colon);
  bool known = false;
  for (const auto& c : kCalls)
    if (c.name == call) {
      rule.call = c.call;
      known = true;
    }
  if (!known) return false;
  if (colon != std::string_view::npos) {
    const std::string_view match = target.substr(colon + 1);
    if (match.empty() || match.size() >= kMaxMatch) return false;
    match.copy(rule.match, match.size());
    rule.match[match.size()] = '\0';
  }

  for (size_t mark; (mark = effect.find_last_of("@%*")) != std::string_view::npos;) {
    unsigned value = 0;
    if (!parse_number(effect.substr(mark + 1), value) || value == 0) return false;
    (effect[mark] == '@' ? rule.first : effect[mark] == '%' ? rule.every : rule.count) = value;
    effect = effect.substr(0, mark);
  }
  for (const auto& e : kErrnos)
    if (e.name == effect) rule.error = e.value;
  if (rule.error == 0) {
    unsigned number = 0;
    if (!parse_number(effect, number) || number == 0 || number > 4095) return false;
    rule.error = static_cast<int>(number);
  }
  return true;
}

[[noreturn]] void refuse(std::string_view rule) {
  constexpr std::string_view kWhat = "DAEMONKIT_FAULTS: cannot use the rule '";
  constexpr std::string_view kHow = "' (CALL[:MATCH]=ERRNO[@NTH][%EVERY][*COUNT], at most 8)\n";
  (void)write_all(2, kWhat.data(), kWhat.size());
  (void)write_all(2, rule.data(), rule.size());
  (void)write_all(2, kHow.data(), kHow.size());
  _exit(2);
}

// Before main: single-threaded, and before any fork.
[[gnu::constructor]] void load_plan() {
  const char* env = std::getenv("DAEMONKIT_FAULTS");
  if (env == nullptr) return;
  std::string_view rest = env;
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    const std::string_view text = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    if (text.empty()) continue;
    if (g_rule_count == kMaxRules || !parse_rule(text, g_rules[g_rule_count])) refuse(text);
    ++g_rule_count;
  }
}

bool contains(const char* haystack, const char* needle) {
  for (; *haystack != '\0'; ++haystack) {
    size_t i = 0;
    while (needle[i] != '\0' && haystack[i] == needle[i]) ++i;
    if (needle[i] == '\0') return true;
  }
  return false;
}

// The path `fd` refers to, into `buf`; nullptr if unknown.
const char* path_of(int fd, char* buf, size_t size) {
  char link[32] = "/proc/self/fd/";
  format_decimal(link + 14, fd);
  const int saved = errno;
  const ssize_t n = ::readlink(link, buf, size - 1);
  errno = saved;
  if (n <= 0) return nullptr;
  buf[n] = '\0';
  return buf;
}

}  // namespace

int injected(Call call, const char* path, int fd) noexcept {
  char buf[PATH_MAX];
  bool looked_up = false;
  for (size_t i = 0; i < g_rule_count; ++i) {
    Rule& rule = g_rules[i];
    if (rule.call != call) continue;
    if (rule.match[0] != '\0') {
      if (path == nullptr && fd >= 0 && !looked_up) {
        path = path_of(fd, buf, sizeof buf);
        looked_up = true;
      }
      if (path == nullptr || !contains(path, rule.match)) continue;
    }
    const unsigned n = rule.seen.fetch_add(1, std::memory_order_relaxed) + 1;
    if (n < rule.first || (n - rule.first) % rule.every != 0) continue;
    if (rule.count != 0 && (n - rule.first) / rule.every >= rule.count) continue;
    return rule.error;
  }
  return 0;
}

}  // namespace daemonkit::sys::fault

#endif  // DAEMONKIT_FAULT_INJECTION
