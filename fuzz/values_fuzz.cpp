// Fuzz target: every parser of a single value from outside. The first byte
// picks the parser; the rest is the input. Each parser must return a value
// or a usage error, never crash, hang or read out of bounds.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "daemonkit/notify.hpp"
#include "daemonkit/parse.hpp"
#include "daemonkit/pidfile.hpp"
#include "detach/report.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 12) {
    case 0:
      (void)daemonkit::parse_pid(text, 4194304);
      break;
    case 1:
      (void)daemonkit::parse_seconds(text, "--timeout");
      break;
    case 2:
      (void)daemonkit::parse_umask(text, "--umask");
      break;
    case 3:
      if (auto s = daemonkit::parse_signal(text, "--signal")) (void)daemonkit::signal_name(*s);
      break;
    case 4:
      (void)daemonkit::parse_assignment(text, "--env");
      break;
    case 5:
      (void)daemonkit::parse_size(text, "--log-max-size");
      break;
    case 6:
      (void)daemonkit::parse_status_list(text, "--no-respawn-on");
      break;
    case 7:
      (void)daemonkit::parse_limit(text, "--limit");
      break;
    case 8:
      (void)daemonkit::parse_integer(text, "--nice", -20, 19);
      break;
    case 9:
      (void)daemonkit::parse_notify(text);
      break;
    case 10:
      if (auto r = daemonkit::detail::decode_report(
              std::span(reinterpret_cast<const std::byte*>(data + 1), size - 1)))
        (void)daemonkit::detail::error_from(*r).message();
      break;
    default:
      (void)daemonkit::format_seconds(
          std::chrono::milliseconds(static_cast<long long>(size) * 997));
      break;
  }
  return 0;
}
