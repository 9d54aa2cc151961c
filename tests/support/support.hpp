// tests/support: what every daemon test needs. A private temporary directory,
// a command runner, /proc readers and a guard that kills (by pid, through a
// pidfd) whatever a test started, even after a failed assertion.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace dktest {

using namespace std::chrono_literals;

// A fresh private directory, removed with its content at the end.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }
  [[nodiscard]] std::string operator/(const std::string& name) const {
    return (path_ / name).string();
  }

 private:
  std::filesystem::path path_;
};

struct CommandResult {
  int exit_code = -1;  // -1 when killed by a signal
  int term_signal = 0;
  std::string out;
  std::string err;
  [[nodiscard]] std::string describe() const;  // for assertion messages
};

struct RunOptions {
  std::optional<std::string> stdin_path;  // default: /dev/null
  int stdin_fd = -1;         // overrides stdin_path; also made the ctty if `new_session`
  bool new_session = false;  // setsid() (and TIOCSCTTY on stdin_fd if a tty)
  std::chrono::milliseconds timeout = 30s;
  std::vector<std::string> extra_env;  // NAME=VALUE added
  std::optional<std::string> cwd;      // default: the test's own
  std::vector<int> close_fds;          // standard descriptors to close in the child
  std::vector<int> ignore_signals;     // set to SIG_IGN in the child (kept across exec)
};

// Runs argv[0] (a path) and collects its output; kills it on timeout.
CommandResult run(const std::vector<std::string>& argv, const RunOptions& options = {});

// Path of a built binary, passed by CMake.
std::string heartbeat_path();
std::string daemonkit_path();
std::string payload_path(const std::string& name);

struct ProcStat {
  char state = '?';
  pid_t ppid = 0;
  pid_t pgrp = 0;
  pid_t session = 0;
  int tty_nr = 0;
};
std::optional<ProcStat> read_stat(pid_t pid);
// /proc/PID/status as key -> value.
std::map<std::string, std::string> read_status(pid_t pid);
// fd number -> readlink target.
std::map<int, std::string> fd_targets(pid_t pid);
std::string read_file(const std::filesystem::path& path);
void write_file(const std::filesystem::path& path, const std::string& content);
// True if the process exists and is not a zombie.
bool alive(pid_t pid);

// Polls `condition` every few milliseconds until true or `timeout`.
bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 10s);

// Holds a pidfd for a process a test started; kills and reaps it when
// destroyed unless it is already gone. Never kills by name.
class ProcessGuard {
 public:
  ProcessGuard() = default;
  explicit ProcessGuard(pid_t pid);
  ProcessGuard(ProcessGuard&& other) noexcept;
  ProcessGuard& operator=(ProcessGuard&& other) noexcept;
  ~ProcessGuard();
  [[nodiscard]] pid_t pid() const { return pid_; }
  // Whether the process has exited (zombie or reaped), per the pidfd.
  [[nodiscard]] bool exited() const;
  bool wait_exit(std::chrono::milliseconds timeout) const;
  // Kills it now (SIGKILL) and waits for it.
  void kill_now();

 private:
  pid_t pid_ = 0;
  int pidfd_ = -1;
};

// Live processes whose command line mentions `needle` (e.g. a test's
// private directory): what a test left running.
std::vector<pid_t> processes_mentioning(const std::string& needle);

// Who holds a POSIX lock on the file, asked of the kernel directly (F_GETLK):
// the holder's pid, 0 for nobody, -1 when the file cannot be opened.
pid_t lock_holder(const std::string& path);
// The number a pidfile holds (0 for none).
pid_t pid_in(const std::string& pidfile);
// The children of `pid` (its main thread's), from /proc.
std::vector<pid_t> children_of(pid_t pid);
// `options` with ASAN_OPTIONS/UBSAN_OPTIONS log_path pointing into `dir`:
// daemons' stderr is /dev/null, so sanitizer reports go to files there
// (named "sanitizer.PID"), which a test's TearDown turns into failures.
RunOptions with_sanitizer_logs(const std::filesystem::path& dir, RunOptions options);
// Fails the current test for every sanitizer report file in `dir`.
void expect_no_sanitizer_reports(const std::filesystem::path& dir);

// A datagram socket bound at `path` (close-on-exec), or -1.
int bind_datagram_socket(const std::string& path);

// A pseudo-terminal pair (master with O_CLOEXEC, slave without a
// controlling-terminal claim); both closed on destruction.
struct Pty {
  int master = -1;
  int slave = -1;
  Pty();
  ~Pty();
  Pty(const Pty&) = delete;
  Pty& operator=(const Pty&) = delete;
};

// Starts argv (argv[0] a path) as a child of ours, leading a process group
// of its own, with exactly the pid `want` (which must be free): by clone3()
// with set_tid (needs CAP_SYS_ADMIN over our pid namespace), else by setting
// /proc/sys/kernel/ns_last_pid before a fork, else by forking until the pid
// counter comes round (only where pid_max makes that a matter of seconds).
// Returns the pid, or 0 with the reason in `why`.
pid_t start_with_pid(pid_t want, const std::vector<std::string>& argv, std::string& why);

// Reaps every exited child (the test process is a child subreaper, so
// orphaned daemons end up as our children).
void reap_children();

}  // namespace dktest
