// daemonkit/detach.hpp: turning the calling process into a daemon, honestly.
//
// detach() performs the classic sequence: fork; in the child setsid and fork
// again (so the daemon is not a session leader and can never reacquire a
// controlling terminal); then, in the daemon: default dispositions and an
// empty signal mask, chdir, umask, every inherited descriptor closed, the
// pidfile created and locked and the pid written, standard streams opened
// from the configured paths, and the optional user switch. Every step that
// fails is reported back to the original process over a close-on-exec
// socket, which is why detach() returns only when the daemon has said
// `ready`, `already running (pid N)` or `failed: <step>: <cause>`.
//
// Preconditions: call it before starting threads (as with fork(2) in
// general). The steps between fork and the daemon (src/detach/child.cpp) are
// async-signal-safe; only the small setup that hands over to the body
// allocates, which is safe because the process is single-threaded.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "daemonkit/fd.hpp"
#include "daemonkit/pidfile.hpp"
#include "daemonkit/result.hpp"

namespace daemonkit {

// A user and its groups, resolved before forking (the lookups are not
// async-signal-safe).
struct Credentials {
  std::string user;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups, as initgroups would set
};

// Resolves "USER" or "USER:GROUP" (names or numeric ids). USER alone takes
// the user's primary group and supplementary groups; with GROUP that group
// is the primary one. Unknown names are usage errors.
Result<Credentials> lookup_credentials(std::string_view spec);

// `p` made absolute from the current working directory (a daemon works in
// "/", so every relative path the user gave must be resolved before it
// detaches). Empty and absolute paths are returned unchanged.
std::filesystem::path absolute_path(const std::filesystem::path& p);

struct DetachOptions {
  std::filesystem::path pidfile;  // empty: no pidfile
  std::filesystem::path stdin_path = "/dev/null";
  std::filesystem::path stdout_path = "/dev/null";  // opened for appending
  std::filesystem::path stderr_path = "/dev/null";  // opened for appending
  std::filesystem::path working_directory = "/";
  mode_t umask = 022;
  std::optional<Credentials> credentials;
  // How long the caller waits for `ready` before it kills the daemon.
  std::chrono::milliseconds ready_timeout = std::chrono::seconds(30);
  // Leave every signal blocked when the body starts, so that the body can
  // install its handlers before any signal is delivered (it then unblocks).
  bool keep_signals_blocked = false;
  // The daemon is a supervisor that stands between the pidfile and a
  // payload: its lock says so (PidfileInfo::supervisor), so commands send it
  // requests instead of plain signals from the moment it holds the lock.
  bool supervisor = false;
};

// The daemon's side of detach(): lets the body report to the caller.
class Daemon {
 public:
  // Tells the original process that the daemon is up; detach() returns
  // there. Only the first report counts.
  void ready();
  // Removes the pidfile, then tells the original process that starting
  // failed; detach() returns the error there. The body should then return
  // non-zero.
  void fail(const Error& error);
  [[nodiscard]] bool reported() const noexcept { return !channel_.valid(); }

  // The locked pidfile, when one was configured.
  std::optional<LockedPidfile>& pidfile() noexcept { return pidfile_; }

  Daemon(UniqueFd channel, std::optional<LockedPidfile> pidfile)
      : channel_(std::move(channel)), pidfile_(std::move(pidfile)) {}

 private:
  UniqueFd channel_;
  std::optional<LockedPidfile> pidfile_;
};

struct Started {
  enum class How { started, already_running };
  How how = How::started;
  pid_t pid = 0;  // the daemon, or the process already holding the pidfile
};

// In the original process: returns once the daemon reported ready, or once
// it reported "already running" or a failure and has exited, or once it
// missed `ready_timeout` (it is then killed and its pidfile removed). In the
// daemon: runs `body` and exits with its return value; never returns there.
// A body that returns or throws without calling ready() or fail() makes
// detach() fail ("exited before it was ready", "uncaught exception").
Result<Started> detach(const DetachOptions& options, const std::function<int(Daemon&)>& body);

}  // namespace daemonkit
