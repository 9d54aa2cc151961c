#include "daemonkit/parse.hpp"

#include <string>

namespace daemonkit {

Result<std::chrono::milliseconds> parse_seconds(std::string_view text, std::string_view what) {
  auto bad = [&](const char* why) {
    return fail(
        Error::because("parse " + std::string(what), std::string(text), why, ErrorKind::usage));
  };
  // Digits, optionally a dot and up to three more digits: exact, no locale,
  // no exponent, no "inf"/"nan".
  size_t dot = text.find('.');
  std::string_view whole = text.substr(0, dot);
  std::string_view frac = dot == std::string_view::npos ? "" : text.substr(dot + 1);
  if (whole.empty() && frac.empty()) return bad("expected a number of seconds");
  if (dot != std::string_view::npos && frac.empty()) return bad("expected digits after '.'");
  for (char c : whole)
    if (c < '0' || c > '9') return bad("expected a number of seconds");
  for (char c : frac)
    if (c < '0' || c > '9') return bad("expected a number of seconds");
  if (frac.size() > 3) return bad("at most millisecond precision");
  constexpr long long kMaxSeconds = 366LL * 24 * 3600;
  long long seconds = 0;
  for (char c : whole) {
    seconds = seconds * 10 + (c - '0');
    if (seconds > kMaxSeconds) return bad("too large (at most one year)");
  }
  long long ms = 0;
  for (size_t i = 0; i < 3; ++i) ms = ms * 10 + (i < frac.size() ? frac[i] - '0' : 0);
  return std::chrono::milliseconds(seconds * 1000 + ms);
}

}  // namespace daemonkit
