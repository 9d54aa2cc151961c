// daemonkit/notify.hpp: the sd_notify protocol, client side.
//
// A service manager that wants to hear about readiness sets $NOTIFY_SOCKET
// to a datagram socket path ("@name" for the abstract namespace). notify()
// sends one datagram such as "READY=1" or "STATUS=serving\nREADY=1" there.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

#include "daemonkit/fd.hpp"
#include "daemonkit/result.hpp"

namespace daemonkit {

// Sends `state` to $NOTIFY_SOCKET. Returns false (not an error) when the
// variable is unset, i.e. nobody is listening.
Result<bool> notify(std::string_view state);

// Sends `state` to the socket at `address` (a path, or "@name").
Result<void> notify_to(std::string_view address, std::string_view state);

// What one datagram says. Unknown assignments are ignored, as systemd does.
struct NotifyMessage {
  bool ready = false;                 // READY=1
  bool reloading = false;             // RELOADING=1
  bool stopping = false;              // STOPPING=1
  bool watchdog = false;              // WATCHDOG=1
  std::optional<std::string> status;  // STATUS=...
};
NotifyMessage parse_notify(std::string_view datagram);

// The service manager's side: a private datagram socket in the abstract
// namespace (nothing on disk to clean up or to attack), with SO_PASSCRED so
// each datagram says which process sent it.
class NotifyListener {
 public:
  static Result<NotifyListener> open();
  // The same at a chosen address ("@name" or a path).
  static Result<NotifyListener> open_at(const std::string& address);

  // "@daemonkit-notify/<random>", for $NOTIFY_SOCKET.
  [[nodiscard]] const std::string& address() const noexcept { return address_; }
  [[nodiscard]] int fd() const noexcept { return fd_.get(); }

  struct Datagram {
    pid_t sender = 0;                    // the sending process (SCM_CREDENTIALS)
    uid_t uid = static_cast<uid_t>(-1);  // its real user id, as the kernel saw it
    // A pidfd of exactly that process (SCM_PIDFD, Linux 6.5 and later):
    // unlike `sender`, it cannot come to mean another process once the
    // sender exits and its pid is reused. Empty on older kernels.
    std::optional<Pidfd> handle;
    std::string text;
  };
  // One pending datagram, or nullopt when none is waiting.
  Result<std::optional<Datagram>> receive();

 private:
  NotifyListener(UniqueFd fd, std::string address)
      : fd_(std::move(fd)), address_(std::move(address)) {}
  UniqueFd fd_;
  std::string address_;
};

}  // namespace daemonkit
