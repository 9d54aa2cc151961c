// daemonkit/pidfile.hpp: the pidfile, whose lock says whether a daemon runs.
//
// A pidfile holds one decimal pid and a newline. The daemon holds a POSIX
// write lock (fcntl F_SETLK) on it for its whole life, so the kernel both
// releases the lock when the daemon dies, even by SIGKILL, and can name the
// holder (F_GETLK). The number in the file is only a hint: nothing here ever
// signals a pid read from a file.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string_view>
#include <variant>

#include "daemonkit/fd.hpp"
#include "daemonkit/result.hpp"

namespace daemonkit {

// The largest pid the kernel hands out (/proc/sys/kernel/pid_max), or the
// kernel's upper bound 4194304 when that file cannot be read.
pid_t pid_max();

// Parses pidfile text: decimal digits, optionally followed by one newline,
// nothing else. Accepts only pids in [2, max_pid]: 0, 1, negative numbers,
// signs, spaces, garbage and overlong numbers give nullopt.
std::optional<pid_t> parse_pid(std::string_view text, pid_t max_pid);

// What a pidfile says when inspected from outside.
struct PidfileInfo {
  enum class Lock { no_file, unlocked, locked };
  Lock lock = Lock::no_file;
  // With Lock::locked: the holder as the kernel reports it, or 0 when the
  // holder lives in a pid namespace we cannot see.
  pid_t holder = 0;
  // The pid written in the file, when it is a valid pid.
  std::optional<pid_t> recorded;
  // With Lock::locked: the holder locked it as a supervisor (daemonkit's,
  // between the pidfile and a payload), which understands requests
  // (control.hpp) that would kill any other daemon. Told by the lock itself,
  // so it holds from the instant the lock is taken.
  bool supervisor = false;
  // With Lock::locked: a supervisor of a daemonkit from before that mark (it
  // locks the whole file, and is named "daemonkit"), still running after an
  // upgrade: it understands reopen and reload requests, nothing newer.
  bool older_supervisor = false;
};

// Reads the pidfile at `path` without creating, locking or following a
// symbolic link. A missing file is an answer (no_file); an unreadable one, a
// symbolic link, or a non-regular file is an error. A locked file that does
// not (yet) name its holder is looked at again, as the kernel reports
// changes to it, for up to a second, since a daemon writes its pid right
// after locking.
Result<PidfileInfo> inspect_pidfile(const std::filesystem::path& path);

// The process that holds a pidfile's lock, confirmed: the file names it, the
// handle was opened first, and the kernel still named that pid as the lock
// holder afterwards while the process was alive, so a reused pid can never be
// signalled. nullopt when nothing holds the lock; an error when the holder is
// not the pid the file names.
struct LockHolder {
  Pidfd process;
  bool supervisor = false;        // see PidfileInfo::supervisor
  bool older_supervisor = false;  // see PidfileInfo::older_supervisor
};
Result<std::optional<LockHolder>> open_lock_holder(const std::filesystem::path& path);

// Waits until nobody holds a lock on the file open at `fd` (its holder has
// exited: the kernel drops a POSIX lock with its owner), or `timeout`
// passes; returns whether it was released. For kernels without pidfds: a
// helper process blocks in F_SETLKW and its exit wakes us, so there is still
// no sleep-and-retry loop.
Result<bool> wait_for_lock_release(int fd, std::chrono::milliseconds timeout);

// Removes the pidfile at `path` if nothing holds its lock and it holds a
// valid pid (a file with other content is not ours to delete). Returns
// whether it removed it. Missing files are fine.
Result<bool> remove_stale_pidfile(const std::filesystem::path& path);

// A pidfile this process has created and locked: proof that it is the one
// daemon for that path.
class LockedPidfile {
 public:
  struct Taken {
    pid_t holder;  // the process that holds the lock (0 if not visible)
  };

  // Creates or opens `path` (O_NOFOLLOW, O_CLOEXEC, a regular file with a
  // single link) and locks it without waiting for the lock (a holder that
  // the file does not name yet is given up to a second to write its pid).
  // Already locked by another process is an answer, not an error. Does not
  // write the pid. With
  // `supervisor`, the lock marks its holder as one (PidfileInfo::supervisor).
  static Result<std::variant<LockedPidfile, Taken>> acquire(std::filesystem::path path,
                                                            bool supervisor = false);

  // Adopts a descriptor locked by the async-signal-safe primitive in the
  // detach code.
  LockedPidfile(std::filesystem::path path, UniqueFd fd)
      : path_(std::move(path)), fd_(std::move(fd)) {}
  LockedPidfile(LockedPidfile&&) noexcept = default;
  LockedPidfile& operator=(LockedPidfile&&) noexcept = default;
  // Closing the descriptor releases the lock; the file stays (a later start
  // overwrites it).
  ~LockedPidfile() = default;

  // Writes "<pid>\n", replacing the content.
  Result<void> write_pid(pid_t pid);
  // Unlinks the file (if the path still names it) and releases the lock.
  Result<void> remove();

  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
  [[nodiscard]] int fd() const noexcept { return fd_.get(); }

 private:
  std::filesystem::path path_;
  UniqueFd fd_;
};

}  // namespace daemonkit
