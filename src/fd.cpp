#include "daemonkit/fd.hpp"

#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "sys/sys.hpp"

namespace daemonkit {

void UniqueFd::reset(int fd) noexcept {
  if (fd_ >= 0) ::close(fd_);  // Linux releases the fd even on EINTR: never retry
  fd_ = fd;
}

Result<Pidfd> Pidfd::open(pid_t pid) {
  int fd = sys::pidfd_open(pid);
  if (fd < 0) return fail(Error::from_errno(errno, "pidfd_open", "pid " + std::to_string(pid)));
  return Pidfd(UniqueFd(fd), pid);
}

Result<bool> Pidfd::send_signal(int signo) const {
  if (sys::pidfd_send_signal(fd_.get(), signo) == 0) return true;
  if (errno == ESRCH) return false;
  return fail(Error::from_errno(errno, "send signal to", "pid " + std::to_string(pid_)));
}

Result<bool> Pidfd::send_queued(int signo, int value) const {
  siginfo_t info;
  std::memset(&info, 0, sizeof info);
  info.si_signo = signo;
  info.si_code = SI_QUEUE;
  info.si_pid = ::getpid();
  info.si_uid = ::getuid();
  info.si_value.sival_int = value;
  if (sys::pidfd_send_signal(fd_.get(), signo, &info) == 0) return true;
  if (errno == ESRCH) return false;
  return fail(Error::from_errno(errno, "send signal to", "pid " + std::to_string(pid_)));
}

bool Pidfd::has_exited() const {
  struct pollfd p {
    fd_.get(), POLLIN, 0
  };
  return sys::retry_eintr([&] { return ::poll(&p, 1, 0); }) > 0;
}

Result<bool> Pidfd::wait_for_exit(std::chrono::milliseconds timeout) const {
  using clock = std::chrono::steady_clock;
  const auto deadline = clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - clock::now());
    if (left.count() < 0) left = std::chrono::milliseconds(0);
    struct pollfd p {
      fd_.get(), POLLIN, 0
    };
    int n = ::poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 1LL << 30)));
    if (n > 0) return true;
    if (n == 0) {
      if (clock::now() >= deadline) return false;
      continue;  // woke a little early
    }
    if (errno != EINTR)
      return fail(Error::from_errno(errno, "wait for exit of", "pid " + std::to_string(pid_)));
  }
}

}  // namespace daemonkit
