// Fuzz target: whole command lines of daemonkit (NUL-separated arguments).
// The parser must accept or reject with a usage error, and its --help text
// must be producible for whatever command it recognised.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "options.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> args;
  for (size_t start = 0; start <= input.size();) {
    size_t end = input.find('\0', start);
    if (end == std::string::npos) end = input.size();
    args.emplace_back(input.data() + start, end - start);
    start = end + 1;
  }
  auto parsed = dkcli::parse_command_line(args);
  if (parsed)
    (void)dkcli::help(parsed->command);
  else
    (void)parsed.error().message();
  return 0;
}
