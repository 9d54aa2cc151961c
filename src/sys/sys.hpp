// src/sys/sys.hpp: the only place that knows raw syscalls' quirks.
//
// Everything declared here is async-signal-safe (no allocation, no locks, no
// stdio) unless its comment says otherwise, so the code between fork and exec
// (src/detach/child.cpp) may call it. Functions return -1 and leave errno set,
// like the syscalls they wrap, unless documented otherwise.
#pragma once

#include <signal.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <cerrno>
#include <cstddef>

namespace daemonkit::sys {

// Repeats `call` while it fails with EINTR.
template <class F>
auto retry_eintr(F call) {
  for (;;) {
    auto r = call();
    if (!(r == -1 && errno == EINTR)) return r;
  }
}

// The syscalls whose failures decide how a start ends: opening and writing
// the pidfile and the logs, fork, sockets. They are the plain calls, except
// in a build with the fault-injection seam (src/sys/fault.hpp), where tests
// can make chosen calls fail with a chosen errno. Library code makes these
// calls through here.
int open(const char* path, int flags, mode_t mode = 0) noexcept;
ssize_t write(int fd, const void* buf, size_t len) noexcept;
ssize_t pwrite(int fd, const void* buf, size_t len, off_t offset) noexcept;
int ftruncate(int fd, off_t length) noexcept;
pid_t fork() noexcept;
// Runs `child(arg)` in a new process that shares the caller's memory until it
// executes a program or exits, while the caller waits (vfork's semantics,
// with a stack of its own): no page tables to copy and no copy-on-write
// faults afterwards, which is most of what starting a payload costs. The
// child must only execute or _exit, must not return into the caller's
// frames, and must write no memory of the caller's that the caller relies
// on. Returns the child's pid, or -1 with errno. (Under AddressSanitizer,
// whose shadow memory the two would share, it is a plain fork.)
pid_t fork_to_exec(int (*child)(void*), void* arg) noexcept;
// Like fork_to_exec, but the child is born in the cgroup whose directory is
// open at `cgroup_dir` (clone3 with CLONE_INTO_CGROUP, Linux 5.7): nothing
// to migrate, which costs a writer's RCU grace period, and nothing it runs
// exists outside the cgroup even for a moment. On x86-64 the child runs on
// a stack of its own in our memory until it executes, as with fork_to_exec
// (a few lines of assembly start it there); elsewhere, and under
// AddressSanitizer, it is a fork. -1 with ENOSYS,
// E2BIG or EINVAL where the kernel cannot: then use fork_to_exec and join
// the cgroup from the child.
pid_t fork_into_cgroup(int (*child)(void*), void* arg, int cgroup_dir) noexcept;
int socket(int domain, int type, int protocol) noexcept;
int socketpair(int domain, int type, int protocol, int sv[2]) noexcept;

int pidfd_open(pid_t pid) noexcept;
int pidfd_send_signal(int pidfd, int signo, siginfo_t* info = nullptr) noexcept;

// Closes every descriptor >= `first` except `keep` (which may be -1).
// Uses close_range(2); falls back to closing up to the descriptor limit on
// kernels without it. Never fails.
void close_from(int first, int keep) noexcept;

// Writes all of `buf` (retrying short writes and EINTR). Returns 0 or -1.
int write_all(int fd, const void* buf, size_t len) noexcept;

// Formats `value` in decimal into `buf` (at least 21 bytes); returns length.
size_t format_decimal(char* buf, long long value) noexcept;

// Resets every signal's disposition to SIG_DFL (those that can be caught).
void reset_signal_dispositions() noexcept;

// --- pidfile primitives (async-signal-safe) -------------------------------

// Result of acquire_pidfile: `fd` >= 0 when the lock was taken; otherwise
// `err` is an errno value, or 0 with `holder` > 0 (or -1 when the kernel
// cannot tell) when another process holds the lock.
struct PidfileLock {
  int fd = -1;
  int err = 0;
  pid_t holder = 0;
  const char* what = "";         // the failing step, for messages
  const char* detail = nullptr;  // set when the cause is not errno's text
};

// Why an O_NOFOLLOW open of a pidfile failed with ELOOP: `path` itself is a
// symbolic link (then this text, else nullptr: a loop in the directories
// above it, which errno's own text describes).
const char* refused_symlink(const char* path) noexcept;

// Opens (creating it 0644 if needed) the pidfile at absolute `path` with
// O_NOFOLLOW|O_CLOEXEC on a descriptor >= 3, requires a regular file with one
// link, takes a POSIX write lock without waiting, and makes sure `path` still
// names the locked inode (a daemon exiting may unlink it under us: then it
// starts over). A file it created is removed again if locking fails. A
// holder that the file does not name (yet) is waited for, up to a second,
// until it writes its pid or lets go. Takes an flock(2) lock as well, for
// tools that test with flock. The lock covers `length` bytes from 0 (0: the
// whole file); see kSupervisorLockLength.
PidfileLock acquire_pidfile(const char* path, off_t length = 0) noexcept;

// The length of a supervisor's pidfile lock. The kernel reports a holder's
// lock range with F_GETLK, so the range itself says, from the very moment
// the lock is taken, that the holder is a supervisor (no file to write, no
// window in which it looks like something else). Any query from offset 0
// still sees the lock.
inline constexpr off_t kSupervisorLockLength = off_t{1} << 62;

// Replaces the content of the locked pidfile `fd` with "<pid>\n".
int write_pidfile(int fd, pid_t pid) noexcept;

// Unlinks `path` if it still names the same inode as `fd` (which the caller
// holds locked), then closes `fd`. Returns 0 or -1 with errno.
int unlink_pidfile(const char* path, int fd) noexcept;

// The pid a pidfile's content names ("<digits>\n" within 16 bytes, in
// [2, 4194304]), or 0.
pid_t read_pidfile_pid(int fd) noexcept;

// Moves `fd` to a descriptor >= 3 (close-on-exec) if it is 0, 1 or 2,
// closing the original. Returns the descriptor, or -1 with errno.
int move_above_stdio(int fd) noexcept;

// Who holds a conflicting POSIX lock on `fd`: 0 for nobody, the holder's pid,
// or -1 when the lock is held by a process this pid namespace cannot see.
// Returns -2 with errno on failure. With `length`, also the length of the
// holder's lock (0: to the end of the file), or -1 when it is a read lock
// (daemons hold write locks; anyone who can read a file can take a read
// lock, of any length).
pid_t lock_holder(int fd, off_t* length = nullptr) noexcept;

}  // namespace daemonkit::sys
