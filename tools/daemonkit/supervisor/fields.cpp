#include "supervisor/fields.hpp"

namespace dkcli::fields {

namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

void put(std::string& out, std::string_view key, std::string_view value) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += key;
  out += '=';
  for (char ch : value) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += ch;
    }
  }
  out += '\n';
}

std::string unescape(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '\\' || i + 1 >= in.size()) {
      out += in[i];
      continue;
    }
    const char e = in[i + 1];
    if (e == '\\') {
      out += '\\';
      ++i;
    } else if (e == 'n') {
      out += '\n';
      ++i;
    } else if (e == 'x' && i + 3 < in.size() && hex_digit(in[i + 2]) >= 0 &&
               hex_digit(in[i + 3]) >= 0) {
      out += static_cast<char>(hex_digit(in[i + 2]) * 16 + hex_digit(in[i + 3]));
      i += 3;
    } else {
      out += in[i];
    }
  }
  return out;
}

}  // namespace dkcli::fields
