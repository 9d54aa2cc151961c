#include "daemonkit/text.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

using daemonkit::escape_text;
using daemonkit::json_string;
using namespace std::string_literals;

namespace {

// The code points of `text` if it is well-formed UTF-8, found another way
// than the library does: decode by the lead byte's bit pattern, then refuse
// overlong forms, surrogates and code points past U+10FFFF.
std::optional<std::vector<char32_t>> decode_utf8(std::string_view text) {
  std::vector<char32_t> out;
  for (size_t i = 0; i < text.size();) {
    const auto b = static_cast<unsigned char>(text[i]);
    size_t n = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > text.size()) return std::nullopt;
    char32_t cp = n == 1 ? b : b & (0xffU >> (n + 1));
    for (size_t k = 1; k < n; ++k) {
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

// What escape_text promises a terminal: well-formed UTF-8 without C0, DEL
// or C1 controls.
void expect_safe_for_a_terminal(const std::string& shown, std::string_view from) {
  auto code_points = decode_utf8(shown);
  ASSERT_TRUE(code_points) << "ill-formed UTF-8 from " << testing::PrintToString(from);
  for (char32_t cp : *code_points)
    EXPECT_FALSE(cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
        << "control U+" << std::hex << static_cast<unsigned>(cp) << " from "
        << testing::PrintToString(from);
}

// Undoes escape_text as bash's $'...' does.
std::string unescape(std::string_view shown) {
  std::string out;
  for (size_t i = 0; i < shown.size(); ++i) {
    if (shown[i] != '\\') {
      out += shown[i];
      continue;
    }
    const char c = shown.at(++i);
    const std::string_view simple = "abtnvfr", meant = "\a\b\t\n\v\f\r";
    if (c == '\\') {
      out += '\\';
    } else if (auto at = simple.find(c); at != std::string_view::npos) {
      out += meant[at];
    } else if (c == 'x') {
      out += static_cast<char>(std::stoi(std::string(shown.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      ADD_FAILURE() << "unknown escape \\" << c;
    }
  }
  return out;
}

}  // namespace

TEST(EscapeText, WellFormedTextPassesUntouched) {
  for (const std::string text :
       {"plain text, with spaces", "caf\u00e9", "\u65e5\u672c", "\U0001F600",
        "\u00a0 after the C1 range", "\ud7ff\ue000\ufffd\U0010FFFF", ""})
    EXPECT_EQ(escape_text(text), text);
}

TEST(EscapeText, ControlCharactersBecomeCEscapes) {
  EXPECT_EQ(escape_text("a\tb"), "a\\tb");
  EXPECT_EQ(escape_text("line\r"), "line\\r");
  EXPECT_EQ(escape_text("\a\b\n\v\f"), "\\a\\b\\n\\v\\f");
  EXPECT_EQ(escape_text("\x1b]0;owned\a\x1b[2J"), "\\x1b]0;owned\\a\\x1b[2J");
  EXPECT_EQ(escape_text("\x01\x1f"), "\\x01\\x1f");
  EXPECT_EQ(escape_text("nul\0here"s), "nul\\x00here");
  EXPECT_EQ(escape_text("del\x7f"), "del\\x7f");
}

TEST(EscapeText, C1ControlsShowTheirBytesLikeALoneC1Byte) {
  // U+009B (CSI) well encoded, and the byte 0x9b alone, which a terminal in
  // 8-bit mode takes for CSI too: both escaped, each byte as it was.
  EXPECT_EQ(escape_text("\u009b2J"), "\\xc2\\x9b2J");
  EXPECT_EQ(escape_text("\u0080\u009f"), "\\xc2\\x80\\xc2\\x9f");
  EXPECT_EQ(escape_text("\x9b"
                        "2J"),
            "\\x9b2J");
}

TEST(EscapeText, BackslashIsEscapedSoThatEscapesAreUnambiguous) {
  EXPECT_EQ(escape_text("C:\\dir"), "C:\\\\dir");
  EXPECT_NE(escape_text("\\x1b"), escape_text("\x1b"));
}

TEST(EscapeText, EachByteOfIllFormedUtf8BecomesHex) {
  struct Case {
    std::string in, out;
  };
  const Case cases[] = {
      {"\x80", "\\x80"},  // stray continuation byte
      {"a\xbf"
       "b",
       "a\\xbfb"},
      {"\xff\xfe", "\\xff\\xfe"},                    // never in UTF-8
      {"\xc0\x80", "\\xc0\\x80"},                    // overlong NUL
      {"\xc1\xbf", "\\xc1\\xbf"},                    // overlong U+007F
      {"\xe0\x80\xaf", "\\xe0\\x80\\xaf"},           // overlong '/'
      {"\xf0\x80\x80\xaf", "\\xf0\\x80\\x80\\xaf"},  // overlong '/'
      {"\xed\xa0\x80", "\\xed\\xa0\\x80"},           // surrogate U+D800
      {"\xed\xbf\xbf", "\\xed\\xbf\\xbf"},           // surrogate U+DFFF
      {"\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80"},  // U+110000
      {"\xf5\x80\x80\x80", "\\xf5\\x80\\x80\\x80"},  // past U+10FFFF
      {"\xe6\x97", "\\xe6\\x97"},                    // cut short at the end
      {"\xe6\x97x", "\\xe6\\x97x"},                  // cut short by a letter
      {"\xf0\x9f\x98 ok", "\\xf0\\x9f\\x98 ok"},     // 3 of 4 bytes
      {"\xc3\xc3\xa9", "\\xc3\u00e9"},               // a lead byte, then a whole
      {"\xff\u65e5", "\\xff\u65e5"},                 // the next character is kept
  };
  for (const auto& c : cases) {
    EXPECT_EQ(escape_text(c.in), c.out) << testing::PrintToString(c.in);
    expect_safe_for_a_terminal(escape_text(c.in), c.in);
  }
}

TEST(EscapeText, EveryShortByteStringIsSafeAndCanBeRecovered) {
  std::vector<std::string> inputs;
  for (int a = 0; a < 256; ++a) {
    inputs.push_back(std::string(1, static_cast<char>(a)));
    for (int b = 0; b < 256; ++b) inputs.push_back({static_cast<char>(a), static_cast<char>(b)});
  }
  // Three and four bytes: every lead byte with the edges of each range.
  const unsigned char edges[] = {0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc2, 0xff};
  for (int lead = 0xc0; lead < 256; ++lead)
    for (unsigned char b : edges)
      for (unsigned char c : edges)
        for (unsigned char d : edges)
          inputs.push_back({static_cast<char>(lead), static_cast<char>(b), static_cast<char>(c),
                            static_cast<char>(d)});
  for (const auto& in : inputs) {
    const std::string shown = escape_text(in);
    expect_safe_for_a_terminal(shown, in);
    ASSERT_EQ(unescape(shown), in);
    const auto code_points = decode_utf8(in);
    if (code_points && std::none_of(code_points->begin(), code_points->end(), [](char32_t cp) {
          return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == '\\';
        }))
      EXPECT_EQ(shown, in) << "well-formed text without controls is left as it is";
  }
}

TEST(JsonString, QuotesAndEscapes) {
  EXPECT_EQ(json_string(""), "\"\"");
  EXPECT_EQ(json_string("say \"hi\" \\ bye"), R"("say \"hi\" \\ bye")");
  EXPECT_EQ(json_string("\t\r\n\b\f"), R"("\t\r\n\b\f")");
  EXPECT_EQ(json_string("\x01\x1b[2J\x1f"), R"("\u0001\u001b[2J\u001f")");
  EXPECT_EQ(json_string("nul\0"s), R"("nul\u0000")");
}

TEST(JsonString, DelAndC1ControlsAreEscapedToo) {
  EXPECT_EQ(json_string("\x7f"), R"("\u007f")");
  EXPECT_EQ(json_string("\u0080\u009b\u009f"), R"("\u0080\u009b\u009f")");
  EXPECT_EQ(json_string("\u00a0"), "\"\u00a0\"");
}

TEST(JsonString, WellFormedTextPassesUntouched) {
  EXPECT_EQ(json_string("caf\u00e9 \u65e5\u672c \U0001F600 \U0010FFFF"),
            "\"caf\u00e9 \u65e5\u672c \U0001F600 \U0010FFFF\"");
}

TEST(JsonString, IllFormedUtf8BecomesOneReplacementCharacterPerMaximalSubpart) {
  // As Python's bytes.decode("utf-8", "replace") and browsers do.
  EXPECT_EQ(json_string("a\x9b"
                        "b"),
            R"("a\ufffdb")");
  EXPECT_EQ(json_string("\xff\xfe"), R"("\ufffd\ufffd")");
  EXPECT_EQ(json_string("\xc0\x80"), R"("\ufffd\ufffd")");                      // overlong
  EXPECT_EQ(json_string("\xe0\x80\xaf"), R"("\ufffd\ufffd\ufffd")");            // overlong
  EXPECT_EQ(json_string("\xed\xa0\x80"), R"("\ufffd\ufffd\ufffd")");            // surrogate
  EXPECT_EQ(json_string("\xf4\x90\x80\x80"), R"("\ufffd\ufffd\ufffd\ufffd")");  // > U+10FFFF
  EXPECT_EQ(json_string("\xe6\x97"), R"("\ufffd")");                            // cut short
  EXPECT_EQ(json_string("\xf0\x9f\x98!"), R"("\ufffd!")");                      // cut short
  EXPECT_EQ(json_string("\xe6\x97\xe6\x97\xa5"), "\"\\ufffd\u65e5\"");
}

TEST(JsonString, EveryShortByteStringGivesWellFormedUtf8) {
  for (int a = 0; a < 256; ++a)
    for (int b = -1; b < 256; ++b) {
      std::string in(1, static_cast<char>(a));
      if (b >= 0) in += static_cast<char>(b);
      const std::string json = json_string(in);
      ASSERT_TRUE(decode_utf8(json)) << testing::PrintToString(in);
      ASSERT_GE(json.size(), 2U);
      EXPECT_EQ(json.front(), '"');
      EXPECT_EQ(json.back(), '"');
      for (size_t i = 1; i + 1 < json.size(); ++i) {
        const auto c = static_cast<unsigned char>(json[i]);
        ASSERT_FALSE(c < 0x20 || c == 0x7f) << testing::PrintToString(in);
        if (c == '\\')
          ++i;  // an escape's second character
        else
          ASSERT_NE(c, '"') << testing::PrintToString(in);
      }
    }
}
