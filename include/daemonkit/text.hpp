// daemonkit/text.hpp: text that came from another process (a command line,
// a log line, a STATUS= notification), made safe to show.
//
// Such text is any bytes: a payload can put an escape sequence that retitles
// or clears the administrator's terminal into its own argv, and invalid
// UTF-8 into anything. Both functions take any bytes and never fail.
#pragma once

#include <string>
#include <string_view>

namespace daemonkit {

// The text for a terminal: well-formed UTF-8 passes through, except
//   - the C0 controls U+0000-U+001F, DEL and the C1 controls U+0080-U+009F,
//     which become C escapes: \a \b \t \n \v \f \r for 7-13, \xHH for the
//     others (ESC is \x1b). A C1 control shows as the two bytes that encode
//     it (U+009B, CSI, is \xc2\x9b);
//   - a backslash, which becomes \\ (so the text "\x1b" and an ESC differ);
//   - each byte that is not part of well-formed UTF-8 (a stray continuation
//     byte, an overlong form, a surrogate, a code point past U+10FFFF, a
//     sequence cut short), which becomes \xHH.
// So every \xHH stands for one byte of the original, and the result, put
// between bash's $'...', gives the original bytes back. It holds no byte
// below 0x20, no DEL and no C1 control, and is well-formed UTF-8.
std::string escape_text(std::string_view text);

// The JSON string literal for `text`, quotes included, and well-formed
// UTF-8 whatever `text` holds: `"` and `\` are escaped, the C0 controls as
// \b \t \n \f \r or \u00XX, DEL and the C1 controls as \u007f-\u009f (so the
// JSON, printed, cannot drive a terminal either), and each maximal ill-formed
// subsequence (as Unicode defines it, as Python's and browsers' decoders
// replace it) as \ufffd, the replacement character.
std::string json_string(std::string_view text);

}  // namespace daemonkit
