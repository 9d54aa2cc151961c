#include "sys/sys.hpp"

#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>

#include "sys/fault.hpp"

namespace daemonkit::sys {

namespace {

// True (with errno set) when the fault plan says this call fails; always
// false in a build without the seam.
bool fails(fault::Call call, const char* path, int fd) noexcept {
  const int e = fault::injected(call, path, fd);
  if (e == 0) return false;
  errno = e;
  return true;
}

}  // namespace

int open(const char* path, int flags, mode_t mode) noexcept {
  return fails(fault::Call::open, path, -1) ? -1 : ::open(path, flags, mode);
}

ssize_t write(int fd, const void* buf, size_t len) noexcept {
  return fails(fault::Call::write, nullptr, fd) ? -1 : ::write(fd, buf, len);
}

ssize_t pwrite(int fd, const void* buf, size_t len, off_t offset) noexcept {
  return fails(fault::Call::pwrite, nullptr, fd) ? -1 : ::pwrite(fd, buf, len, offset);
}

int ftruncate(int fd, off_t length) noexcept {
  return fails(fault::Call::ftruncate, nullptr, fd) ? -1 : ::ftruncate(fd, length);
}

pid_t fork() noexcept {
  return fails(fault::Call::fork, nullptr, -1) ? -1 : ::fork();
}

pid_t fork_to_exec(int (*child)(void*), void* arg) noexcept {
  if (fails(fault::Call::fork, nullptr, -1)) return -1;
#if defined(__SANITIZE_ADDRESS__)
  pid_t pid = ::fork();
  if (pid == 0) _exit(child(arg));
  return pid;
#else
  // The caller is suspended until the child has executed (or exited), so
  // the stack is free again when clone returns.
  constexpr size_t kStackSize = size_t{256} << 10;
  void* stack = ::mmap(nullptr, kStackSize, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) return -1;
  pid_t pid =
      ::clone(child, static_cast<char*>(stack) + kStackSize, CLONE_VM | CLONE_VFORK | SIGCHLD, arg);
  const int saved = errno;
  ::munmap(stack, kStackSize);
  errno = saved;
  return pid;
#endif
}

#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
namespace {

// clone3 whose child starts on a stack of its own (CLONE_VM|CLONE_VFORK, as
// fork_to_exec): it begins with the parent's registers but that stack, so
// it must never return into a C frame. It calls child(arg) and exits from
// here, as glibc's clone does; the parent goes on at "1:" with the pid or
// -errno in rax.
long clone3_on_stack(struct clone_args* args, int (*child)(void*), void* arg) noexcept {
  long ret = 0;
  register int (*fn)(void*) __asm__("r12") = child;
  register void* fn_arg __asm__("r13") = arg;
  __asm__ volatile(
      "syscall\n\t"
      "test %%rax, %%rax\n\t"
      "jnz 1f\n\t"
      "xor %%ebp, %%ebp\n\t"
      "mov %%r13, %%rdi\n\t"
      "call *%%r12\n\t"
      "mov %%eax, %%edi\n\t"
      "mov $60, %%eax\n\t"  // SYS_exit
      "syscall\n\t"
      "hlt\n\t"
      "1:\n\t"
      : "=a"(ret)
      : "a"(static_cast<long>(SYS_clone3)), "D"(args), "S"(sizeof *args), "r"(fn), "r"(fn_arg)
      : "rcx", "r11", "memory");
  return ret;
}

}  // namespace
#endif

pid_t fork_into_cgroup(int (*child)(void*), void* arg, int cgroup_dir) noexcept {
  if (fails(fault::Call::fork, nullptr, -1)) return -1;
  struct clone_args args {};
  args.flags = CLONE_INTO_CGROUP;
  args.exit_signal = SIGCHLD;
  args.cgroup = static_cast<__u64>(static_cast<unsigned>(cgroup_dir));
#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
  // As fork_to_exec: no page tables to copy, the caller waits for the exec.
  constexpr size_t kStackSize = size_t{256} << 10;
  void* stack = ::mmap(nullptr, kStackSize, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) return -1;
  args.flags |= CLONE_VM | CLONE_VFORK;
  args.stack = reinterpret_cast<__u64>(stack);
  args.stack_size = kStackSize;
  const long r = clone3_on_stack(&args, child, arg);
  ::munmap(stack, kStackSize);
  if (r < 0) {
    errno = static_cast<int>(-r);
    return -1;
  }
  return static_cast<pid_t>(r);
#else
  const long pid = ::syscall(SYS_clone3, &args, sizeof args);
  if (pid == 0) _exit(child(arg));
  return static_cast<pid_t>(pid);
#endif
}

int socket(int domain, int type, int protocol) noexcept {
  return fails(fault::Call::socket, nullptr, -1) ? -1 : ::socket(domain, type, protocol);
}

int socketpair(int domain, int type, int protocol, int sv[2]) noexcept {
  return fails(fault::Call::socketpair, nullptr, -1) ? -1
                                                     : ::socketpair(domain, type, protocol, sv);
}

// The seam for kernels without pidfds (before 5.3): a build with
// DAEMONKIT_SIMULATE_NO_PIDFD answers ENOSYS as such a kernel does, so the
// fallback paths run under the whole integration suite.
int pidfd_open(pid_t pid) noexcept {
#ifdef DAEMONKIT_SIMULATE_NO_PIDFD
  (void)pid;
  errno = ENOSYS;
  return -1;
#else
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0U));
#endif
}

int pidfd_send_signal(int pidfd, int signo, siginfo_t* info) noexcept {
#ifdef DAEMONKIT_SIMULATE_NO_PIDFD
  (void)pidfd;
  (void)signo;
  (void)info;
  errno = ENOSYS;
  return -1;
#else
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, signo, info, 0U));
#endif
}

namespace {

void close_range_slow(unsigned first, unsigned last) noexcept {
  struct rlimit rl {};
  unsigned limit = 65536;
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < limit)
    limit = static_cast<unsigned>(rl.rlim_cur);
  for (unsigned fd = first; fd <= last && fd < limit; ++fd) ::close(static_cast<int>(fd));
}

void close_span(unsigned first, unsigned last) noexcept {
  if (first > last) return;
  if (::syscall(SYS_close_range, first, last, 0U) == 0) return;
  close_range_slow(first, last);  // ENOSYS: kernel before 5.9
}

}  // namespace

void close_from(int first, int keep) noexcept {
  const auto f = static_cast<unsigned>(first);
  constexpr unsigned kMax = ~0U;
  if (keep < first) {
    close_span(f, kMax);
    return;
  }
  const auto k = static_cast<unsigned>(keep);
  if (k > f) close_span(f, k - 1);
  if (k < kMax) close_span(k + 1, kMax);
}

int write_all(int fd, const void* buf, size_t len) noexcept {
  const char* p = static_cast<const char*>(buf);
  while (len > 0) {
    ssize_t n = sys::write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += n;
    len -= static_cast<size_t>(n);
  }
  return 0;
}

size_t format_decimal(char* buf, long long value) noexcept {
  char tmp[24];
  size_t n = 0;
  bool negative = value < 0;
  unsigned long long v = negative ? 0ULL - static_cast<unsigned long long>(value)
                                  : static_cast<unsigned long long>(value);
  do {
    tmp[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  size_t len = 0;
  if (negative) buf[len++] = '-';
  while (n > 0) buf[len++] = tmp[--n];
  buf[len] = '\0';
  return len;
}

void reset_signal_dispositions() noexcept {
  struct sigaction sa {};
  sa.sa_handler = SIG_DFL;
  sigemptyset(&sa.sa_mask);
  for (int s = 1; s < NSIG; ++s) {
    if (s == SIGKILL || s == SIGSTOP) continue;
    ::sigaction(s, &sa, nullptr);  // EINVAL for glibc-reserved signals: fine
  }
}

pid_t lock_holder(int fd, off_t* length) noexcept {
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  if (retry_eintr([&] { return ::fcntl(fd, F_GETLK, &fl); }) < 0) return -2;
  if (fl.l_type == F_UNLCK) return 0;
  if (length != nullptr) *length = fl.l_type == F_WRLCK ? fl.l_len : -1;
  return fl.l_pid > 0 ? fl.l_pid : -1;
}

pid_t read_pidfile_pid(int fd) noexcept {
  char buf[16] = {};
  ssize_t n = retry_eintr([&] { return ::pread(fd, buf, sizeof buf, 0); });
  if (n <= 0) return 0;
  long long v = 0;
  ssize_t i = 0;
  for (; i < n && buf[i] >= '0' && buf[i] <= '9'; ++i) v = v * 10 + (buf[i] - '0');
  if (i == 0 || i > 10 || (i < n && buf[i] != '\n')) return 0;
  return v > 1 && v <= 4194304 ? static_cast<pid_t>(v) : 0;
}

int move_above_stdio(int fd) noexcept {
  if (fd < 0 || fd > 2) return fd;
  int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  int saved = errno;
  ::close(fd);
  errno = saved;
  return moved;
}

namespace {

bool same_file(const char* path, const struct stat& st) noexcept {
  struct stat now {};
  return ::lstat(path, &now) == 0 && now.st_dev == st.st_dev && now.st_ino == st.st_ino;
}

long long monotonic_ms() noexcept {
  struct timespec ts {};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<long long>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000L;
}

// The pidfile `fd` (opened at `path`, inode `st`) is locked by `holder`
// while it names `recorded`, someone else. Waits until that changes
// (returns true) or `give_up_at` (monotonic_ms) passes (false).
//
// Each way out is a change the kernel reports on the inode: the holder
// writes its pid (IN_MODIFY), the file is removed or replaced (IN_ATTRIB:
// its link count), or the holder closes its descriptor after writing,
// which releases its lock (IN_CLOSE_WRITE). Our own descriptor stays open
// meanwhile and we only read, so nothing of ours wakes us (the close of our
// O_RDWR descriptor would: contending starts would wake each other in
// turn). A lock let go of with F_UNLCK alone comes with no event, and
// F_SETLKW, which would wait for it, has no timeout: the deadline bounds
// that. Without inotify (its limits reached) we look every 10 ms.
bool await_change_of_holder(const char* path, int fd, const struct stat& st, pid_t holder,
                            pid_t recorded, long long give_up_at) noexcept {
  int watch = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  constexpr uint32_t kMask =
      IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_DELETE_SELF | IN_MOVE_SELF | IN_DONT_FOLLOW;
  if (watch >= 0 && ::inotify_add_watch(watch, path, kMask) < 0) {
    ::close(watch);
    watch = -1;
  }
  bool changed = false;
  for (;;) {
    // Looked at after the watch was set up: a change before it is not missed.
    if (!same_file(path, st) || lock_holder(fd) != holder || read_pidfile_pid(fd) != recorded) {
      changed = true;
      break;
    }
    const long long left = give_up_at - monotonic_ms();
    if (left <= 0) break;
    if (watch < 0) {
      struct timespec ts {
        0, 10L * 1000 * 1000
      };
      ::nanosleep(&ts, nullptr);
      continue;
    }
    struct pollfd p {
      watch, POLLIN, 0
    };
    if (::poll(&p, 1, static_cast<int>(left < (1 << 30) ? left : (1 << 30))) > 0) {
      alignas(struct inotify_event) char events[1024];
      while (::read(watch, events, sizeof events) > 0) {
      }
    }
  }
  if (watch >= 0) ::close(watch);
  return changed;
}

// Closes `fd` and, if this call created the file, unlinks it again, so a
// failed attempt leaves nothing behind.
void give_up(const char* path, int fd, bool created, const struct stat* st) noexcept {
  int saved = errno;
  if (created && st != nullptr && same_file(path, *st)) ::unlink(path);
  ::close(fd);
  errno = saved;
}

}  // namespace

const char* refused_symlink(const char* path) noexcept {
  struct stat st {};
  if (::lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
    return "is a symbolic link, refusing to follow it";
  return nullptr;
}

PidfileLock acquire_pidfile(const char* path, off_t length) noexcept {
  // A daemon that is exiting unlinks its pidfile while it still holds the
  // lock; if we opened the old inode just before that, our lock would guard a
  // file nobody can find. Checking that the path still names the locked inode
  // closes that gap. A holder that the file does not name yet is either a
  // daemon between locking and writing its pid, or a `stop` removing a stale
  // file: both last microseconds, so wait for what ends them (for up to a
  // second: see await_change_of_holder), then look again.
  long long give_up_at = -1;
  for (int attempt = 0; attempt < 1000; ++attempt) {
    PidfileLock r;
    bool created = false;
    int fd = retry_eintr(
        [&] { return sys::open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK); });
    if (fd < 0 && errno == ENOENT) {
      fd = retry_eintr([&] {
        return sys::open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0644);
      });
      if (fd < 0 && errno == EEXIST) continue;  // created by someone else meanwhile
      created = fd >= 0;
    }
    if (fd < 0) {
      r.err = errno;
      r.what = "open";
      if (r.err == ELOOP) r.detail = refused_symlink(path);
      return r;
    }
    // Never hold the lock on 0-2: redirecting a standard stream would close
    // it, and closing any descriptor of the file drops a POSIX lock.
    fd = move_above_stdio(fd);
    if (fd < 0) {
      r.err = errno;
      r.what = "open";
      return r;
    }
    struct stat st {};
    if (::fstat(fd, &st) < 0) {
      r.err = errno;
      r.what = "stat";
      give_up(path, fd, false, nullptr);
      return r;
    }
    if (!S_ISREG(st.st_mode)) {
      r.err = EINVAL;
      r.what = "use as pidfile";
      r.detail = "not a regular file";
      give_up(path, fd, false, nullptr);
      return r;
    }
    if (st.st_nlink > 1) {
      // A hard link planted by someone else would make us truncate their file.
      r.err = EMLINK;
      r.what = "use as pidfile";
      r.detail = "it has several hard links";
      give_up(path, fd, false, nullptr);
      return r;
    }
    struct flock fl {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_len = length;
    if (::fcntl(fd, F_SETLK, &fl) < 0) {
      int e = errno;
      if (e == EAGAIN || e == EACCES) {
        pid_t holder = lock_holder(fd);
        bool current = same_file(path, st);
        pid_t recorded = read_pidfile_pid(fd);
        if (holder > 0 && holder != recorded && current) {
          if (give_up_at < 0) give_up_at = monotonic_ms() + 1000;
          const bool changed = await_change_of_holder(path, fd, st, holder, recorded, give_up_at);
          ::close(fd);
          if (changed) continue;
          r.holder = holder;
          return r;
        }
        ::close(fd);
        if (holder == 0 || !current) continue;  // released, or the holder is leaving
        r.holder = holder < 0 ? -1 : holder;
        return r;
      }
      errno = e;
      give_up(path, fd, created, &st);
      r.err = e;
      r.what = "lock";
      return r;
    }
    if (same_file(path, st)) {
      // Also an flock(2) lock on the same file, so that tools which test
      // with flock (flock(1), Python's fcntl.flock) see it held too; someone
      // else's flock means the pidfile is taken.
      if (::flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        ::close(fd);
        if (e == EWOULDBLOCK) {
          r.holder = -1;  // not ours to name: flock keeps no owner pid
          return r;
        }
        r.err = e;
        r.what = "lock";
        return r;
      }
      // Clear O_NONBLOCK (it was only there so a FIFO planted at the path
      // cannot block the open).
      int flags = ::fcntl(fd, F_GETFL);
      if (flags >= 0) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
      r.fd = fd;
      return r;
    }
    ::close(fd);  // unlinked or replaced since we opened it
  }
  PidfileLock r;
  r.err = EAGAIN;
  r.what = "lock";
  r.detail = "the lock kept changing hands";
  return r;
}

int write_pidfile(int fd, pid_t pid) noexcept {
  char buf[24];
  size_t len = format_decimal(buf, pid);
  buf[len++] = '\n';
  if (retry_eintr([&] { return sys::ftruncate(fd, 0); }) < 0) return -1;
  size_t done = 0;
  while (done < len) {
    ssize_t n = sys::pwrite(fd, buf + done, len - done, static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    done += static_cast<size_t>(n);
  }
  return 0;
}

int unlink_pidfile(const char* path, int fd) noexcept {
  struct stat mine {};
  struct stat now {};
  int rc = 0;
  if (::fstat(fd, &mine) == 0 && ::lstat(path, &now) == 0 && mine.st_dev == now.st_dev &&
      mine.st_ino == now.st_ino) {
    if (::unlink(path) < 0 && errno != ENOENT) rc = -1;
  }
  int saved = errno;
  ::close(fd);
  errno = saved;
  return rc;
}

}  // namespace daemonkit::sys
