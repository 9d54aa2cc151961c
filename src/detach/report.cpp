#include "detach/report.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "sys/sys.hpp"

namespace daemonkit::detail {

namespace {

template <size_t N>
void copy_text(char (&dst)[N], const char* src) noexcept {
  if (src == nullptr) return;
  size_t i = 0;
  for (; i + 1 < N && src[i] != '\0'; ++i) dst[i] = src[i];
  dst[i] = '\0';
}

template <size_t N>
bool terminated(const char (&text)[N]) {
  return std::memchr(text, '\0', N) != nullptr;
}

}  // namespace

Report make_report(Report::Kind kind, pid_t pid) noexcept {
  Report r;
  r.kind = kind;
  r.pid = pid;
  return r;
}

Report make_failure(const char* op, const char* subject, int code, const char* detail,
                    ErrorKind kind) noexcept {
  Report r;
  r.kind = Report::Kind::failed;
  r.code = code;
  r.error_kind = static_cast<std::uint8_t>(kind);
  copy_text(r.op, op);
  copy_text(r.subject, subject);
  copy_text(r.detail, detail);
  return r;
}

int send_report(int fd, const Report& report, int passed_fd) noexcept {
  struct iovec iov {
    const_cast<Report*>(&report), sizeof report
  };
  union {
    struct cmsghdr align;
    char bytes[CMSG_SPACE(sizeof(int))];
  } control{};
  struct msghdr msg {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (passed_fd >= 0) {
    msg.msg_control = control.bytes;
    msg.msg_controllen = sizeof control.bytes;
    struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &passed_fd, sizeof passed_fd);
  }
  ssize_t n = sys::retry_eintr([&] { return ::sendmsg(fd, &msg, MSG_NOSIGNAL); });
  return n == static_cast<ssize_t>(sizeof report) ? 0 : -1;
}

ssize_t receive_report(int fd, std::span<std::byte> buf, int* passed) {
  struct iovec iov {
    buf.data(), buf.size()
  };
  union {
    struct cmsghdr align;
    char bytes[CMSG_SPACE(sizeof(int))];
  } control{};
  struct msghdr msg {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.bytes;
  msg.msg_controllen = sizeof control.bytes;
  ssize_t n = sys::retry_eintr([&] { return ::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC); });
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); n >= 0 && c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
        c->cmsg_len == CMSG_LEN(sizeof(int))) {
      int received = -1;
      std::memcpy(&received, CMSG_DATA(c), sizeof received);
      if (*passed >= 0) ::close(*passed);
      *passed = received;
    }
  }
  return n;
}

std::optional<Report> decode_report(std::span<const std::byte> bytes) {
  if (bytes.size() != sizeof(Report)) return std::nullopt;
  Report r;
  std::memcpy(&r, bytes.data(), sizeof r);
  if (r.magic != Report::kMagic) return std::nullopt;
  auto kind = static_cast<unsigned>(r.kind);
  if (kind < static_cast<unsigned>(Report::Kind::forked) ||
      kind > static_cast<unsigned>(Report::Kind::failed))
    return std::nullopt;
  if (r.error_kind > static_cast<std::uint8_t>(ErrorKind::not_installed)) return std::nullopt;
  if (!terminated(r.op) || !terminated(r.subject) || !terminated(r.detail)) return std::nullopt;
  if (r.pid < 0) return std::nullopt;
  if ((r.kind == Report::Kind::forked || r.kind == Report::Kind::ready) && r.pid == 0)
    return std::nullopt;
  return r;
}

Error error_from(const Report& report) {
  Error e;
  e.code = report.code;
  e.op = report.op;
  e.subject = report.subject;
  e.detail = report.detail;
  e.kind = static_cast<ErrorKind>(report.error_kind);
  return e;
}

}  // namespace daemonkit::detail
