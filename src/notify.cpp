#include "daemonkit/notify.hpp"

#include <sys/socket.h>
#include <sys/un.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "daemonkit/fd.hpp"
#include "sys/sys.hpp"

namespace daemonkit {

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
  UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) return fail(Error::from_errno(errno, "socket", addr));
  ssize_t n = sys::retry_eintr([&] {
    return ::sendto(fd.get(), state.data(), state.size(), MSG_NOSIGNAL,
                    reinterpret_cast<const struct sockaddr*>(&sa), len);
  });
  if (n < 0) return fail(Error::from_errno(errno, "notify", addr));
  return {};
}

Result<bool> notify(std::string_view state) {
  const char* addr = std::getenv("NOTIFY_SOCKET");
  if (addr == nullptr || *addr == '\0') return false;
  auto sent = notify_to(addr, state);
  if (!sent) return fail(std::move(sent).error());
  return true;
}

}  // namespace daemonkit
