// daemonkit/fd.hpp: owning file descriptors and process handles.
//
// UniqueFd closes its descriptor when destroyed (close errors other than the
// descriptor being invalid cannot be acted upon and are ignored, as in
// systemd's safe_close). Pidfd is a UniqueFd that refers to a process: unlike a
// pid it can never name a different process later, so every signal daemonkit
// sends goes through one.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "daemonkit/result.hpp"

namespace daemonkit {

class UniqueFd {
 public:
  UniqueFd() noexcept = default;
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(std::exchange(other.fd_, -1));
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  [[nodiscard]] int get() const noexcept { return fd_; }
  [[nodiscard]] bool valid() const noexcept { return fd_ >= 0; }
  explicit operator bool() const noexcept { return valid(); }
  // Gives up ownership without closing.
  [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }
  // Closes the current descriptor (if any) and takes `fd`.
  void reset(int fd = -1) noexcept;

 private:
  int fd_ = -1;
};

// The fields of /proc/PID/stat that daemonkit uses. nullopt when the process
// does not exist (any more) or the file cannot be parsed.
struct ProcStat {
  char state = '?';  // R, S, D, Z, X, ...
  pid_t ppid = 0;
  pid_t pgrp = 0;
  unsigned long long start_ticks = 0;  // field 22: start time after boot, clock ticks
};
std::optional<ProcStat> read_proc_stat(pid_t pid);

// Up to `limit` bytes from the start of the file at `path`; "" when it
// cannot be read (for small files such as /proc entries and state files).
std::string read_head(const std::filesystem::path& path, size_t limit);

// Replaces the file at `path` with `content` at once: written to a new
// temporary file in the same directory (".daemonkit-tmp.<random>", a name
// that fits whatever `path`'s is), given `mode`, then renamed over `path`.
// A reader sees the old file or the new one, whole. Errors name the step
// and the path; the temporary file never stays.
Result<void> replace_file(const std::filesystem::path& path, std::string_view content, mode_t mode);

// A process handle (pidfd). Operations report ESRCH-style outcomes as values.
//
// On kernels without pidfds (ENOSYS, before Linux 5.3) a handle holds only
// the pid: signals go through kill(2)/sigqueue(3), a child's exit is seen
// with waitid(WNOWAIT), and fd() is -1 (callers then wait another way; see
// wait_for_lock_release in pidfile.hpp).
class Pidfd {
 public:
  // Opens a handle to the process that has `pid` now. "No such process" is an
  // error with code ESRCH.
  static Result<Pidfd> open(pid_t pid);
  // Takes ownership of a pidfd obtained elsewhere (e.g. received over a
  // socket) for the process `pid`.
  static Pidfd adopt(UniqueFd fd, pid_t pid) { return Pidfd(std::move(fd), pid); }

  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  // The pidfd, or -1 on a kernel without pidfds.
  [[nodiscard]] int fd() const noexcept { return fd_.get(); }

  // Sends `signo` to exactly this process. Returns false (not an error) when
  // the process has already exited.
  Result<bool> send_signal(int signo) const;
  // The same, as a queued signal (si_code SI_QUEUE) carrying `value`.
  Result<bool> send_queued(int signo, int value) const;
  // True once the process has exited (it may still be an unreaped zombie:
  // its locks and descriptors are released by then).
  [[nodiscard]] bool has_exited() const;
  // Waits until the process exits or `timeout` passes; returns whether it
  // exited. Wakes the instant the kernel reports the exit: no polling loop.
  Result<bool> wait_for_exit(std::chrono::milliseconds timeout) const;

 private:
  Pidfd(UniqueFd fd, pid_t pid) : fd_(std::move(fd)), pid_(pid) {}
  UniqueFd fd_;
  pid_t pid_ = 0;
};

// Wakes a wait for a file that others replace (see replace_file), write or
// remove. It watches a name in a directory (inotify on the directory), so
// the file need not exist yet and a file renamed over the name is seen.
// What wakes it, for that name only: a file created, written (modified, or
// closed after writing), renamed to or away from it, removed, or changed in
// its attributes or links. Opening, reading and closing a file that was only
// read do not, so the waiter may look at the file between waits.
//
// As with a condition variable, a wake means "look again", not what changed.
// Changes made before open() are not reported: look at the file after
// open(), then wait. Where inotify cannot be used (its limits reached, a
// directory that cannot be read), the wait wakes every few milliseconds
// instead, which precise() tells.
class EntryWatch {
 public:
  // Starts watching the name `path` ends in, in its directory. Never fails.
  static EntryWatch open(const std::filesystem::path& path);

  enum class Wake {
    changed,   // the entry may have changed: look again
    exited,    // the process given to wait_until has exited
    deadline,  // the deadline passed
  };
  // Waits until the entry may have changed, `process` (when given) has
  // exited, or `deadline` passes. Errors are poll's.
  Result<Wake> wait_until(std::chrono::steady_clock::time_point deadline,
                          const Pidfd* process = nullptr);
  // Whether changes are reported by the kernel (else wait_until wakes at
  // short intervals).
  [[nodiscard]] bool precise() const noexcept { return inotify_.valid(); }

 private:
  EntryWatch(UniqueFd inotify, std::string name)
      : inotify_(std::move(inotify)), name_(std::move(name)) {}
  // Reads what the kernel queued; true when it concerns the name.
  bool drain();
  UniqueFd inotify_;
  std::string name_;
};

}  // namespace daemonkit
