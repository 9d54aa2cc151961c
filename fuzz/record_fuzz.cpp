// Fuzz target: the supervisor's record (PIDFILE.state). decode_record takes
// any text; whatever it accepts must encode to a record that decodes to the
// same values (so no value can turn into a key), one line per key.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "supervisor/state_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  auto record = dkcli::decode_record(input);
  if (!record) return 0;
  const std::string text = dkcli::encode_record(*record);
  for (char c : text)
    if (c != '\n' && (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)) std::abort();
  auto again = dkcli::decode_record(text);
  if (!again || again->command != record->command || again->status != record->status ||
      again->log != record->log || again->ended != record->ended ||
      again->cgroup != record->cgroup || again->last_exit != record->last_exit ||
      again->payload != record->payload || again->supervisor != record->supervisor ||
      again->phase != record->phase || dkcli::encode_record(*again) != text)
    std::abort();
  return 0;
}
