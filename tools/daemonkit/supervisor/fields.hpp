// tools/daemonkit/supervisor/fields.hpp: the one text format of the
// supervisor's files and hand-over: "key=value" lines.
//
// A value is escaped ("\\", "\n", and "\xHH" for every other control byte),
// so that a newline or a control byte in a path, an argument or a STATUS=
// text can never forge a key. The record (state_file.hpp) and the
// configuration handed to the supervisor program (config.hpp) use it.
#pragma once

#include <charconv>
#include <string>
#include <string_view>

namespace dkcli::fields {

// Appends "key=<escaped value>\n".
void put(std::string& out, std::string_view key, std::string_view value);

// Calls `each(key, value)` for every line "key=value" of `text`, values
// unescaped; lines without '=' are skipped. A malformed escape is kept as
// it stands.
template <class F>
void for_each(std::string_view text, F&& each);

std::string unescape(std::string_view in);

// A whole decimal number that fits `T`; false (and `value` untouched)
// otherwise.
template <class T>
bool number(std::string_view text, T& value) {
  T v{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return false;
  value = v;
  return true;
}

template <class F>
void for_each(std::string_view text, F&& each) {
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    const size_t eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    each(line.substr(0, eq), unescape(line.substr(eq + 1)));
  }
}

}  // namespace dkcli::fields
