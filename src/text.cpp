#include "daemonkit/text.hpp"

#include <cstddef>

namespace daemonkit {

namespace {

// One step of decoding: a code point and the bytes it took, or (valid
// false) the length of the maximal ill-formed subsequence at that place:
// the longest start of a well-formed sequence, at least one byte. The
// well-formed sequences are those of the Unicode Standard's Table 3-7: the
// second byte's range depends on the first, which is what rules out
// overlong forms (lead bytes C0 and C1, E0 80-9F, F0 80-8F), surrogates
// (ED A0-BF) and code points past U+10FFFF (F4 90-BF, F5-FF).
struct Step {
  char32_t code = 0;
  std::size_t length = 1;
  bool valid = false;
};

Step decode(std::string_view text, std::size_t at) {
  const auto lead = static_cast<unsigned char>(text[at]);
  if (lead < 0x80) return {lead, 1, true};
  std::size_t need = 0;                   // continuation bytes
  unsigned char low = 0x80, high = 0xbf;  // the second byte's range
  if (lead >= 0xc2 && lead <= 0xdf) {
    need = 1;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    need = 2;
    if (lead == 0xe0) low = 0xa0;
    if (lead == 0xed) high = 0x9f;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    need = 3;
    if (lead == 0xf0) low = 0x90;
    if (lead == 0xf4) high = 0x8f;
  } else {
    return {};  // 80-C1, F5-FF never start a sequence
  }
  char32_t code = lead & (0x3fU >> need);
  for (std::size_t i = 1; i <= need; ++i) {
    if (at + i >= text.size()) return {0, i, false};
    const auto c = static_cast<unsigned char>(text[at + i]);
    if (c < (i == 1 ? low : 0x80) || c > (i == 1 ? high : 0xbf)) return {0, i, false};
    code = (code << 6) | (c & 0x3fU);
  }
  return {code, need + 1, true};
}

bool is_control(char32_t code) {
  return code < 0x20 || (code >= 0x7f && code <= 0x9f);
}

constexpr char kHex[] = "0123456789abcdef";

void append_hex_byte(std::string& out, const char* prefix, unsigned char byte) {
  out += prefix;
  out += kHex[byte >> 4];
  out += kHex[byte & 0xf];
}

}  // namespace

std::string escape_text(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t at = 0; at < text.size();) {
    const Step s = decode(text, at);
    if (!s.valid || is_control(s.code)) {
      // Byte by byte: an ill-formed sequence, or a control character (one
      // byte, or two for C1).
      for (std::size_t i = 0; i < s.length; ++i) {
        const auto byte = static_cast<unsigned char>(text[at + i]);
        constexpr std::string_view kShort = "abtnvfr";  // \a (7) to \r (13)
        if (s.valid && byte >= 7 && byte <= 13) {
          out += '\\';
          out += kShort[static_cast<std::size_t>(byte - 7)];
        } else {
          append_hex_byte(out, "\\x", byte);
        }
      }
    } else if (s.code == '\\') {
      out += "\\\\";
    } else {
      out.append(text.substr(at, s.length));
    }
    at += s.length;
  }
  return out;
}

std::string json_string(std::string_view text) {
  std::string out = "\"";
  out.reserve(text.size() + 2);
  for (std::size_t at = 0; at < text.size();) {
    const Step s = decode(text, at);
    if (!s.valid) {
      out += "\\ufffd";
    } else if (s.code == '"') {
      out += "\\\"";
    } else if (s.code == '\\') {
      out += "\\\\";
    } else if (s.code == '\b') {
      out += "\\b";
    } else if (s.code == '\t') {
      out += "\\t";
    } else if (s.code == '\n') {
      out += "\\n";
    } else if (s.code == '\f') {
      out += "\\f";
    } else if (s.code == '\r') {
      out += "\\r";
    } else if (is_control(s.code)) {
      append_hex_byte(out, "\\u00", static_cast<unsigned char>(s.code));
    } else {
      out.append(text.substr(at, s.length));
    }
    at += s.length;
  }
  return out + "\"";
}

}  // namespace daemonkit
