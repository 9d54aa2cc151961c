#include "daemonkit/fd.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "sys/sys.hpp"

namespace daemonkit {

void UniqueFd::reset(int fd) noexcept {
  if (fd_ >= 0) ::close(fd_);  // Linux releases the fd even on EINTR: never retry
  fd_ = fd;
}

std::string read_head(const std::filesystem::path& path, size_t limit) {
  std::string text;
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  char buf[4096];
  for (ssize_t n; fd && text.size() < limit && (n = ::read(fd.get(), buf, sizeof buf)) > 0;)
    text.append(buf, static_cast<size_t>(n));
  if (text.size() > limit) text.resize(limit);
  return text;
}

Result<void> replace_file(const std::filesystem::path& path, std::string_view content,
                          mode_t mode) {
  const std::filesystem::path dir = path.parent_path().empty() ? "." : path.parent_path();
  std::string tmp;
  int fd = -1;
  for (int attempt = 0; attempt < 16 && fd < 0; ++attempt) {
    unsigned long long nonce = 0;
    if (::getrandom(&nonce, sizeof nonce, 0) != static_cast<ssize_t>(sizeof nonce))
      return fail(Error::from_errno(errno, "getrandom", ""));
    char name[40];
    std::snprintf(name, sizeof name, ".daemonkit-tmp.%016llx", nonce);
    tmp = (dir / name).string();
    fd = sys::retry_eintr([&] {
      return sys::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    });
    if (fd < 0 && errno != EEXIST) return fail(Error::from_errno(errno, "create a file in", dir));
  }
  if (fd < 0) return fail(Error::from_errno(EEXIST, "create a file in", dir));
  UniqueFd file(fd);
  auto undo = [&](int e, const char* op) {
    ::unlink(tmp.c_str());
    return fail(Error::from_errno(e, op, path));
  };
  if (::fchmod(file.get(), mode) < 0) return undo(errno, "chmod");
  if (sys::write_all(file.get(), content.data(), content.size()) < 0) return undo(errno, "write");
  if (::close(file.release()) < 0) return undo(errno, "write");
  if (::rename(tmp.c_str(), path.c_str()) < 0) return undo(errno, "replace");
  return {};
}

std::optional<ProcStat> read_proc_stat(pid_t pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  UniqueFd fd(::open(path, O_RDONLY | O_CLOEXEC));
  if (!fd) return std::nullopt;
  char buf[1024];
  ssize_t n = sys::retry_eintr([&] { return ::read(fd.get(), buf, sizeof buf - 1); });
  if (n <= 0) return std::nullopt;
  buf[n] = '\0';
  // The command name (field 2) may hold spaces and ')': skip to the last ')'.
  const char* p = std::strrchr(buf, ')');
  ProcStat st;
  int ppid = 0, pgrp = 0;
  if (p == nullptr || std::sscanf(p + 1, " %c %d %d", &st.state, &ppid, &pgrp) != 3)
    return std::nullopt;
  st.ppid = ppid;
  st.pgrp = pgrp;
  p += 2;  // field 3
  for (int field = 3; field < 22 && p != nullptr; ++field) {
    p = std::strchr(p, ' ');
    if (p != nullptr) ++p;
  }
  if (p != nullptr) st.start_ticks = std::strtoull(p, nullptr, 10);
  return st;
}

Result<Pidfd> Pidfd::open(pid_t pid) {
  int fd = sys::pidfd_open(pid);
  if (fd < 0 && errno == ENOSYS) {
    // No pidfds: a pid-only handle, if the process exists now.
    if (::kill(pid, 0) < 0 && errno == ESRCH)
      return fail(Error::from_errno(ESRCH, "open a handle to", "pid " + std::to_string(pid)));
    return Pidfd(UniqueFd(), pid);
  }
  if (fd < 0) return fail(Error::from_errno(errno, "pidfd_open", "pid " + std::to_string(pid)));
  return Pidfd(UniqueFd(fd), pid);
}

Result<bool> Pidfd::send_signal(int signo) const {
  int rc = fd_ ? sys::pidfd_send_signal(fd_.get(), signo) : ::kill(pid_, signo);
  if (rc == 0) return true;
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
  union sigval sv {};
  sv.sival_int = value;
  int rc = fd_ ? sys::pidfd_send_signal(fd_.get(), signo, &info) : ::sigqueue(pid_, signo, sv);
  if (rc == 0) return true;
  if (errno == ESRCH) return false;
  return fail(Error::from_errno(errno, "send signal to", "pid " + std::to_string(pid_)));
}

bool Pidfd::has_exited() const {
  if (fd_) {
    struct pollfd p {
      fd_.get(), POLLIN, 0
    };
    return sys::retry_eintr([&] { return ::poll(&p, 1, 0); }) > 0;
  }
  // No pidfd. Our own child: look without reaping.
  siginfo_t info;
  std::memset(&info, 0, sizeof info);
  if (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) == 0)
    return info.si_pid == pid_;
  // Someone else's: gone, or a zombie waiting for its parent.
  auto st = read_proc_stat(pid_);
  return !st || st->state == 'Z' || st->state == 'X';
}

Result<bool> Pidfd::wait_for_exit(std::chrono::milliseconds timeout) const {
  using clock = std::chrono::steady_clock;
  const auto deadline = clock::now() + timeout;
  if (!fd_) {
    // No pidfd (a kernel before 5.3): nothing else reports another
    // process's exit as an event, and for our own child waitid blocks
    // without a timeout, while SIGCHLD belongs to the caller (a handler or
    // signalfd of ours would take it away). So look every 2 ms. Callers use
    // this path only for a process that is about to exit (after SIGKILL, or
    // once it let go of its pidfile lock); stop waits on that lock instead.
    while (!has_exited()) {
      if (clock::now() >= deadline) return false;
      ::usleep(2000);
    }
    return true;
  }
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

EntryWatch EntryWatch::open(const std::filesystem::path& path) {
  const std::filesystem::path dir = path.parent_path().empty() ? "." : path.parent_path();
  std::string name = path.filename().string();
  UniqueFd inotify(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  // The events of a file inside the directory, and the directory's own end
  // (then the name is watched no more: ticks from there on).
  constexpr uint32_t kMask = IN_CREATE | IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM |
                             IN_MOVED_TO | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;
  if (inotify && ::inotify_add_watch(inotify.get(), dir.c_str(), kMask) < 0) inotify.reset();
  return EntryWatch(std::move(inotify), std::move(name));
}

bool EntryWatch::drain() {
  alignas(struct inotify_event) char buf[4096];
  bool hit = false;
  for (;;) {
    const ssize_t n = sys::retry_eintr([&] { return ::read(inotify_.get(), buf, sizeof buf); });
    if (n <= 0) return hit;  // EAGAIN: all read
    for (ssize_t at = 0; at + static_cast<ssize_t>(sizeof(struct inotify_event)) <= n;) {
      struct inotify_event e;
      std::memcpy(&e, buf + at, sizeof e);
      const char* name = buf + at + sizeof e;
      at += static_cast<ssize_t>(sizeof e + e.len);
      if ((e.mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF)) != 0) {
        // The directory was removed or moved: the name is no longer there
        // to watch. Look at short intervals from now on.
        inotify_.reset();
        return true;
      }
      if ((e.mask & IN_Q_OVERFLOW) != 0 || (e.len > 0 && name == name_)) hit = true;
    }
  }
}

Result<EntryWatch::Wake> EntryWatch::wait_until(std::chrono::steady_clock::time_point deadline,
                                                const Pidfd* process) {
  using clock = std::chrono::steady_clock;
  // Without inotify the name's changes, and without a pidfd the process's
  // exit (it need not be our child), come as no event: then look every
  // 20 ms, which is as good as it gets there.
  constexpr std::chrono::milliseconds kTick(20);
  const bool exit_unseen = process != nullptr && process->fd() < 0;
  for (;;) {
    if (exit_unseen && process->has_exited()) return Wake::exited;
    const auto now = clock::now();
    if (now >= deadline) return Wake::deadline;
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - now);
    if (!inotify_ || exit_unseen) left = std::min(left, kTick);
    // poll skips a negative descriptor.
    struct pollfd fds[2] = {{inotify_.get(), POLLIN, 0},
                            {process != nullptr ? process->fd() : -1, POLLIN, 0}};
    const int n = ::poll(fds, 2, static_cast<int>(std::min<long long>(left.count(), 1LL << 30)));
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(Error::from_errno(errno, "wait for a change of", name_));
    }
    if (fds[1].revents != 0) return Wake::exited;
    if (fds[0].revents != 0 && drain()) return Wake::changed;
    if (n == 0 && !inotify_) return Wake::changed;  // a tick: look again
  }
}

}  // namespace daemonkit
