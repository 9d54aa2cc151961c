#include "daemonkit/notify.hpp"

#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "daemonkit/fd.hpp"
#include "sys/sys.hpp"

namespace daemonkit {

namespace {
// From Linux 6.5's <asm-generic/socket.h>, which Debian 12's headers predate.
constexpr int kSoPassPidfd = 76;
constexpr int kScmPidfd = 0x04;
}  // namespace

Result<void> notify_to(std::string_view address, std::string_view state) {
  const std::string addr(address);
  struct sockaddr_un sa {};
  sa.sun_family = AF_UNIX;
  if (address.empty() || address.size() >= sizeof sa.sun_path ||
      (address[0] != '/' && address[0] != '@'))
    return fail(Error::because("notify", addr, "not a usable socket address"));
  std::memcpy(sa.sun_path, address.data(), address.size());
  if (address[0] == '@') sa.sun_path[0] = '\0';
  auto len = static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + address.size() +
                                    (address[0] == '@' ? 0 : 1));
  UniqueFd fd(sys::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) return fail(Error::from_errno(errno, "socket", addr));
  ssize_t n = sys::retry_eintr([&] {
    return ::sendto(fd.get(), state.data(), state.size(), MSG_NOSIGNAL,
                    reinterpret_cast<const struct sockaddr*>(&sa), len);
  });
  if (n < 0) return fail(Error::from_errno(errno, "notify", addr));
  return {};
}

NotifyMessage parse_notify(std::string_view datagram) {
  NotifyMessage m;
  while (!datagram.empty()) {
    size_t nl = datagram.find('\n');
    std::string_view line = datagram.substr(0, nl);
    datagram = nl == std::string_view::npos ? std::string_view() : datagram.substr(nl + 1);
    if (line == "READY=1")
      m.ready = true;
    else if (line == "RELOADING=1")
      m.reloading = true;
    else if (line == "STOPPING=1")
      m.stopping = true;
    else if (line == "WATCHDOG=1")
      m.watchdog = true;
    else if (line.substr(0, 7) == "STATUS=")
      m.status = std::string(line.substr(7));
  }
  return m;
}

Result<NotifyListener> NotifyListener::open() {
  unsigned char random[12];
  if (::getrandom(random, sizeof random, 0) != static_cast<ssize_t>(sizeof random))
    return fail(Error::from_errno(errno, "getrandom", ""));
  std::string name = "@daemonkit-notify/";
  static constexpr char kHex[] = "0123456789abcdef";
  for (unsigned char c : random) {
    name += kHex[c >> 4];
    name += kHex[c & 15];
  }
  return open_at(name);
}

Result<NotifyListener> NotifyListener::open_at(const std::string& address) {
  struct sockaddr_un sa {};
  sa.sun_family = AF_UNIX;
  if (address.empty() || address.size() >= sizeof sa.sun_path)
    return fail(Error::because("bind", address, "not a usable socket address"));
  UniqueFd fd(sys::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return fail(Error::from_errno(errno, "socket", address));
  std::memcpy(sa.sun_path, address.data(), address.size());
  if (address[0] == '@') sa.sun_path[0] = '\0';
  auto len = static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + address.size() +
                                    (address[0] == '@' ? 0 : 1));
  if (::bind(fd.get(), reinterpret_cast<const struct sockaddr*>(&sa), len) < 0)
    return fail(Error::from_errno(errno, "bind", address));
  int on = 1;
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_PASSCRED, &on, sizeof on) < 0)
    return fail(Error::from_errno(errno, "setsockopt SO_PASSCRED", address));
#ifndef DAEMONKIT_SIMULATE_NO_PIDFD
  // And a pidfd of the sender with each datagram, where the kernel can
  // (6.5 and later); before, this fails with ENOPROTOOPT and the pid alone
  // names the sender.
  (void)::setsockopt(fd.get(), SOL_SOCKET, kSoPassPidfd, &on, sizeof on);
#endif
  return NotifyListener(std::move(fd), address);
}

Result<std::optional<NotifyListener::Datagram>> NotifyListener::receive() {
  char buf[4096];
  union {
    struct cmsghdr align;
    char bytes[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int))];
  } control{};
  struct iovec iov {
    buf, sizeof buf - 1
  };
  struct msghdr msg {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.bytes;
  msg.msg_controllen = sizeof control.bytes;
  ssize_t n = sys::retry_eintr([&] { return ::recvmsg(fd_.get(), &msg, MSG_CMSG_CLOEXEC); });
  if (n < 0) {
    if (errno == EAGAIN) return std::optional<Datagram>();
    return fail(Error::from_errno(errno, "receive from", address_));
  }
  Datagram d;
  UniqueFd pidfd;
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS &&
        c->cmsg_len == CMSG_LEN(sizeof(struct ucred))) {
      struct ucred cred {};
      std::memcpy(&cred, CMSG_DATA(c), sizeof cred);
      d.sender = cred.pid;
      d.uid = cred.uid;
    } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == kScmPidfd &&
               c->cmsg_len == CMSG_LEN(sizeof(int))) {
      int fd = -1;
      std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
      pidfd.reset(fd);
    } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      // Descriptors sent along (FDSTORE) are not kept: close them.
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int fd = -1;
        std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
        UniqueFd discard(fd);
      }
    }
  }
  if (pidfd && d.sender > 0) d.handle.emplace(Pidfd::adopt(std::move(pidfd), d.sender));
  d.text.assign(buf, static_cast<size_t>(n));
  return std::optional<Datagram>(std::move(d));
}

Result<bool> notify(std::string_view state) {
  const char* addr = std::getenv("NOTIFY_SOCKET");
  if (addr == nullptr || *addr == '\0') return false;
  auto sent = notify_to(addr, state);
  if (!sent) return fail(std::move(sent).error());
  return true;
}

}  // namespace daemonkit
