#include "daemonkit/error.hpp"

#include <cerrno>
#include <cstring>

namespace daemonkit {

Error Error::from_errno(int code, std::string op, std::string subject) {
  Error e;
  e.code = code;
  e.op = std::move(op);
  e.subject = std::move(subject);
  e.kind = (code == EACCES || code == EPERM) ? ErrorKind::privilege : ErrorKind::failure;
  return e;
}

Error Error::because(std::string op, std::string subject, std::string detail, ErrorKind kind) {
  Error e;
  e.op = std::move(op);
  e.subject = std::move(subject);
  e.detail = std::move(detail);
  e.kind = kind;
  return e;
}

void append_errno_text(std::string& out, int code) {
  char buf[128];
  // GNU strerror_r returns a pointer that may or may not be `buf`.
  out += ::strerror_r(code, buf, sizeof buf);
}

std::string Error::message() const {
  std::string out = op;
  if (!subject.empty()) {
    out += " '";
    out += subject;
    out += '\'';
  }
  if (code != 0 || !detail.empty()) out += ": ";
  if (!detail.empty()) {
    out += detail;
    if (code != 0) out += " (";
  }
  if (code != 0) append_errno_text(out, code);
  if (!detail.empty() && code != 0) out += ')';
  return out;
}

}  // namespace daemonkit
