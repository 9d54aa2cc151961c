// daemonkit/parse.hpp: parsers for command-line values from outside.
//
// Each is strict (no locale, no whitespace, no silent truncation) and returns
// a usage error (ErrorKind::usage) whose message names the option (`what`)
// and the offending text.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "daemonkit/result.hpp"

namespace daemonkit {

// "SECONDS": a non-negative decimal number of seconds ("5", "0.25"), at most
// one year, with at most millisecond precision.
Result<std::chrono::milliseconds> parse_seconds(std::string_view text, std::string_view what);

// The inverse, for messages: "30", "1.5", "0.25".
std::string format_seconds(std::chrono::milliseconds d);

// A decimal integer in [min, max].
Result<long long> parse_integer(std::string_view text, std::string_view what, long long min,
                                long long max);

// "OCTAL": a file mode creation mask, 1 to 4 octal digits, at most 0777.
Result<mode_t> parse_umask(std::string_view text, std::string_view what);

// A signal: "TERM", "SIGTERM", "term", "15", "RTMIN+2"; 1 to SIGRTMAX.
Result<int> parse_signal(std::string_view text, std::string_view what);
// "SIGTERM" for 15, "SIGRTMIN+2", or "signal 99".
std::string signal_name(int signo);

// "NAME=VALUE": NAME is a portable variable name ([A-Za-z_][A-Za-z0-9_]*).
Result<std::pair<std::string, std::string>> parse_assignment(std::string_view text,
                                                             std::string_view what);

// "SIZE": bytes, with an optional K, M or G suffix in units of 1024; > 0.
Result<std::uint64_t> parse_size(std::string_view text, std::string_view what);

// "STATUS[,STATUS...]": exit statuses 0 to 255.
Result<std::vector<int>> parse_status_list(std::string_view text, std::string_view what);

// "NAME=SOFT[:HARD]": a resource limit. NAME is as, core, cpu, data, fsize,
// memlock, nofile, nproc, rss or stack; a value is a number or "infinity"
// (RLIM_INFINITY); HARD defaults to SOFT; SOFT may not exceed HARD.
struct ResourceLimit {
  int resource = 0;  // RLIMIT_*
  std::string name;
  std::uint64_t soft = 0;
  std::uint64_t hard = 0;
};
Result<ResourceLimit> parse_limit(std::string_view text, std::string_view what);

}  // namespace daemonkit
