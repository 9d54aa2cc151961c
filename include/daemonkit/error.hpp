// daemonkit/error.hpp: one error value for the whole library.
//
// An Error says which call failed (`op`), on what (`subject`: a path or a
// pid, may be empty) and why (`code`: an errno value, or 0 when the cause is
// in `detail`). It prints as one line, for example
//   open '/run/app.pid': Permission denied
// `kind` is a coarse classification that tools map to exit codes in exactly
// one place; the library itself never prints and never exits.
#pragma once

#include <string>
#include <string_view>

namespace daemonkit {

enum class ErrorKind {
  failure,        // generic failure (LSB 1)
  usage,          // invalid arguments (LSB 2)
  privilege,      // insufficient privilege (LSB 4)
  not_installed,  // program missing or not executable (LSB 5)
};

struct Error {
  int code = 0;         // errno, or 0
  std::string op;       // the failing operation, e.g. "open", "lock pidfile"
  std::string subject;  // path or pid the operation was about, may be empty
  std::string detail;   // extra text used when `code` is 0 (or to refine it)
  ErrorKind kind = ErrorKind::failure;

  // Builds an error from errno-style `code`; the kind follows from the code
  // (EACCES/EPERM are privilege errors, everything else a failure).
  static Error from_errno(int code, std::string op, std::string subject = {});
  // Builds an error whose cause is a sentence rather than an errno.
  static Error because(std::string op, std::string subject, std::string detail,
                       ErrorKind kind = ErrorKind::failure);

  // One line without trailing newline: "op 'subject': cause".
  [[nodiscard]] std::string message() const;
};

// Appends `code`'s strerror text to `out` (thread-safe, no allocation beyond
// the string's own).
void append_errno_text(std::string& out, int code);

}  // namespace daemonkit
