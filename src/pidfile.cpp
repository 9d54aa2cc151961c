#include "daemonkit/pidfile.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <string>

#include "sys/sys.hpp"

namespace daemonkit {

namespace {

// Longest pidfile we read: a pid has at most 7 digits (pid_max <= 2^22);
// anything much longer is not a pidfile and is not read in full.
constexpr size_t kMaxPidfileBytes = 64;

Result<std::string> read_prefix(int fd, const std::string& path) {
  std::string text(kMaxPidfileBytes + 1, '\0');
  size_t got = 0;
  while (got < text.size()) {
    ssize_t n = ::pread(fd, text.data() + got, text.size() - got, static_cast<off_t>(got));
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(Error::from_errno(errno, "read", path));
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  text.resize(got);
  return text;
}

}  // namespace

pid_t pid_max() {
  constexpr pid_t kKernelLimit = 4194304;  // PID_MAX_LIMIT on 64-bit
  UniqueFd fd(::open("/proc/sys/kernel/pid_max", O_RDONLY | O_CLOEXEC));
  if (!fd) return kKernelLimit;
  char buf[32];
  ssize_t n = sys::retry_eintr([&] { return ::read(fd.get(), buf, sizeof buf); });
  if (n <= 0) return kKernelLimit;
  pid_t value = 0;
  auto [end, ec] = std::from_chars(buf, buf + n, value);
  if (ec != std::errc() || value <= 1 || value > kKernelLimit) return kKernelLimit;
  return value;
}

std::optional<pid_t> parse_pid(std::string_view text, pid_t max_pid) {
  if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  if (text.empty() || text.size() > 10) return std::nullopt;
  for (char c : text)
    if (c < '0' || c > '9') return std::nullopt;
  long long value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  if (value <= 1 || value > max_pid) return std::nullopt;
  return static_cast<pid_t>(value);
}

namespace {

Result<PidfileInfo> inspect_once(const std::filesystem::path& path) {
  PidfileInfo info;
  // O_NONBLOCK: a FIFO planted at the path must not hang us.
  UniqueFd fd(sys::retry_eintr([&] {
    return sys::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  }));
  if (!fd) {
    const int e = errno;
    if (e == ENOENT) return info;
    if (const char* why = e == ELOOP ? sys::refused_symlink(path.c_str()) : nullptr)
      return fail(Error::because("open", path, why));
    return fail(Error::from_errno(e, "open", path));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) < 0) return fail(Error::from_errno(errno, "stat", path));
  if (!S_ISREG(st.st_mode)) return fail(Error::because("read", path, "not a regular file"));

  auto text = read_prefix(fd.get(), path);
  if (!text) return fail(std::move(text).error());
  if (text->size() <= kMaxPidfileBytes) info.recorded = parse_pid(*text, pid_max());

  off_t length = 0;
  pid_t holder = sys::lock_holder(fd.get(), &length);
  if (holder == -2) return fail(Error::from_errno(errno, "query lock on", path));
  info.supervisor = holder != 0 && length == sys::kSupervisorLockLength;
  if (holder > 0 && length == 0)
    info.older_supervisor =
        read_head("/proc/" + std::to_string(holder) + "/comm", 64) == "daemonkit\n";
  if (holder == 0) {
    info.lock = PidfileInfo::Lock::unlocked;
  } else {
    info.lock = PidfileInfo::Lock::locked;
    info.holder = holder > 0 ? holder : 0;
  }
  return info;
}

bool names_its_holder(const PidfileInfo& info) {
  return info.lock != PidfileInfo::Lock::locked || info.holder == 0 || info.recorded == info.holder;
}

}  // namespace

Result<PidfileInfo> inspect_pidfile(const std::filesystem::path& path) {
  auto info = inspect_once(path);
  if (!info || names_its_holder(*info)) return info;
  // A lock holder that the file does not name is, for a few microseconds, a
  // daemon that has locked but not yet written its pid, or a `stop` (or a
  // losing `start`) that has the lock for a moment. Each ends in a change
  // the kernel reports: the pid written, the file removed or replaced, or
  // the holder's descriptor closed after writing, which releases its lock.
  // Watch for those (our own looks only read, which does not wake us), and
  // look again after each, for up to a second: a lock let go of with F_UNLCK
  // alone, or a read lock taken by anyone who can read the file, comes with
  // no event, and is then reported as it is.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  auto watch = EntryWatch::open(path);
  for (;;) {
    info = inspect_once(path);  // again, now that changes wake us
    if (!info || names_its_holder(*info) || std::chrono::steady_clock::now() >= deadline)
      return info;
    if (auto woke = watch.wait_until(deadline); !woke) return fail(std::move(woke).error());
  }
}
Result<std::optional<LockHolder>> open_lock_holder(const std::filesystem::path& path) {
  // Open the pidfd first, then confirm the lock is still held by that pid
  // and the process is still alive; the other order lets a reused pid be
  // signalled. If the process was alive after the second look, it had that
  // pid all along, so it is the holder the kernel named.
  for (int attempt = 0; attempt < 10; ++attempt) {
    auto before = inspect_pidfile(path);
    if (!before) return fail(std::move(before).error());
    if (before->lock != PidfileInfo::Lock::locked) return std::optional<LockHolder>();
    if (before->holder == 0)
      return fail(
          Error::because("identify the lock holder of", path, "it runs in another pid namespace"));
    auto pidfd = Pidfd::open(before->holder);
    if (!pidfd) {
      if (pidfd.error().code == ESRCH) continue;  // it just exited
      return fail(std::move(pidfd).error());
    }
    auto after = inspect_pidfile(path);
    if (!after) return fail(std::move(after).error());
    if (after->lock == PidfileInfo::Lock::locked && after->holder == before->holder &&
        !pidfd->has_exited())
      return std::optional<LockHolder>(
          LockHolder{std::move(*pidfd), after->supervisor, after->older_supervisor});
  }
  return fail(
      Error::because("identify the lock holder of", path, "the lock changed hands too often"));
}

Result<bool> wait_for_lock_release(int fd, std::chrono::milliseconds timeout) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) < 0) return fail(Error::from_errno(errno, "pipe2", ""));
  UniqueFd done(p[0]);
  UniqueFd done_write(p[1]);
  pid_t helper = sys::fork();
  if (helper < 0) return fail(Error::from_errno(errno, "fork", ""));
  if (helper == 0) {
    // Async-signal-safe only. Our lock (a read lock, POSIX, so it dies with
    // us) is granted once the holder's write lock is gone; exiting closes
    // the pipe's write end, which wakes the parent.
    struct flock fl {};
    fl.l_type = F_RDLCK;
    fl.l_whence = SEEK_SET;
    while (::fcntl(fd, F_SETLKW, &fl) < 0 && errno == EINTR) {
    }
    _exit(0);
  }
  done_write.reset();
  struct pollfd w {
    done.get(), POLLIN, 0
  };
  int n = sys::retry_eintr([&] {
    return ::poll(&w, 1, static_cast<int>(std::min<long long>(timeout.count(), 1 << 30)));
  });
  const bool released = n > 0;
  if (!released) ::kill(helper, SIGKILL);  // our own child: the pid is still ours
  (void)sys::retry_eintr([&] { return ::waitpid(helper, nullptr, 0); });
  return released;
}

Result<bool> remove_stale_pidfile(const std::filesystem::path& path) {
  UniqueFd fd(sys::retry_eintr([&] {
    return sys::open(path.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  }));
  if (!fd) {
    if (errno == ENOENT) return false;
    return fail(Error::from_errno(errno, "open", path));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) < 0) return fail(Error::from_errno(errno, "stat", path));
  if (!S_ISREG(st.st_mode)) return false;
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  if (::fcntl(fd.get(), F_SETLK, &fl) < 0) {
    if (errno == EAGAIN || errno == EACCES) return false;  // a daemon holds it
    return fail(Error::from_errno(errno, "lock", path));
  }
  auto text = read_prefix(fd.get(), path);
  if (!text) return fail(std::move(text).error());
  if (text->size() > kMaxPidfileBytes || !parse_pid(*text, pid_max())) return false;
  if (sys::unlink_pidfile(path.c_str(), fd.release()) < 0)
    return fail(Error::from_errno(errno, "remove", path));
  return true;
}

Result<std::variant<LockedPidfile, LockedPidfile::Taken>> LockedPidfile::acquire(
    std::filesystem::path path, bool supervisor) {
  sys::PidfileLock lock =
      sys::acquire_pidfile(path.c_str(), supervisor ? sys::kSupervisorLockLength : 0);
  if (lock.fd >= 0) return {LockedPidfile(std::move(path), UniqueFd(lock.fd))};
  if (lock.err == 0) return {Taken{lock.holder > 0 ? lock.holder : 0}};
  if (lock.detail != nullptr) return fail(Error::because(lock.what, path, lock.detail));
  return fail(Error::from_errno(lock.err, lock.what, path));
}

Result<void> LockedPidfile::write_pid(pid_t pid) {
  if (sys::write_pidfile(fd_.get(), pid) < 0) return fail(Error::from_errno(errno, "write", path_));
  return {};
}

Result<void> LockedPidfile::remove() {
  if (!fd_) return {};
  if (sys::unlink_pidfile(path_.c_str(), fd_.release()) < 0)
    return fail(Error::from_errno(errno, "remove", path_));
  return {};
}

}  // namespace daemonkit
