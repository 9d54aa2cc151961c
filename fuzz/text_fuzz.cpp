// Fuzz target: escape_text and json_string, which show a daemon's own bytes
// (its command line, its log, its STATUS= line) to an administrator. For
// any input, escape_text's output must be well-formed UTF-8 without a C0
// control, DEL or a C1 control, and give the input back when unescaped as
// bash's $'...' does; json_string's must be well-formed UTF-8, one quoted
// JSON string without a raw C0, DEL or C1 control. A broken promise aborts.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemonkit/text.hpp"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

// The code points of `text`, or nullopt if it is not well-formed UTF-8.
// Decoded another way than the library does: by the lead byte's bit
// pattern, then overlong forms, surrogates and code points past U+10FFFF
// are refused.
std::optional<std::vector<char32_t>> decode_utf8(std::string_view text) {
  std::vector<char32_t> out;
  for (std::size_t i = 0; i < text.size();) {
    const auto b = static_cast<unsigned char>(text[i]);
    std::size_t n = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > text.size()) return std::nullopt;
    char32_t cp = n == 1 ? b : b & (0xffU >> (n + 1));
    for (std::size_t k = 1; k < n; ++k) {
      const auto c = static_cast<unsigned char>(text[i + k]);
      if ((c >> 6) != 2) return std::nullopt;
      cp = (cp << 6) | (c & 0x3fU);
    }
    const char32_t least[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < least[n] || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) return std::nullopt;
    out.push_back(cp);
    i += n;
  }
  return out;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// bash's $'...' for the escapes escape_text writes; nullopt for any other.
std::optional<std::string> unescape(std::string_view shown) {
  std::string out;
  for (std::size_t i = 0; i < shown.size(); ++i) {
    if (shown[i] != '\\') {
      out += shown[i];
      continue;
    }
    if (++i == shown.size()) return std::nullopt;
    const std::string_view simple = "\\abtnvfr", meant = "\\\a\b\t\n\v\f\r";
    if (auto at = simple.find(shown[i]); at != std::string_view::npos) {
      out += meant[at];
    } else if (shown[i] == 'x' && i + 2 < shown.size() && hex_digit(shown[i + 1]) >= 0 &&
               hex_digit(shown[i + 2]) >= 0) {
      out += static_cast<char>(hex_digit(shown[i + 1]) * 16 + hex_digit(shown[i + 2]));
      i += 2;
    } else {
      return std::nullopt;
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  const std::string shown = daemonkit::escape_text(text);
  const auto shown_code_points = decode_utf8(shown);
  check(shown_code_points.has_value());
  for (char32_t cp : *shown_code_points) check(cp >= 0x20 && (cp < 0x7f || cp > 0x9f));
  check(unescape(shown) == std::string(text));

  const std::string json = daemonkit::json_string(text);
  const auto json_code_points = decode_utf8(json);
  check(json_code_points.has_value());
  for (char32_t cp : *json_code_points) check(cp >= 0x20 && (cp < 0x7f || cp > 0x9f));
  check(json.size() >= 2 && json.front() == '"' && json.back() == '"');
  for (std::size_t i = 1; i + 1 < json.size(); ++i) {
    const auto c = static_cast<unsigned char>(json[i]);
    check(c >= 0x20 && c != 0x7f && c != '"');
    if (c == '\\') {
      ++i;
      check(i + 1 < json.size());  // the closing quote is not escaped
      check(std::string_view("\"\\/bfnrtu").find(json[i]) != std::string_view::npos);
    }
  }
  return 0;
}
