// tools/daemonkit/supervisor/config.hpp: what a supervisor is told, resolved
// once.
//
// The command line (main.cpp) resolves its options into this once: paths
// made absolute, the program found, the user looked up, the payload's
// environment built, defaults applied (--stderr following --stdout, the
// log's rotation). The supervisor reads nothing else: no command-line
// option reaches it. Plain data, so the core's tests build one by hand.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemonkit/detach.hpp"
#include "daemonkit/output.hpp"
#include "daemonkit/parse.hpp"

namespace dkcli {

struct SupervisorConfig {
  // The daemon.
  std::filesystem::path pidfile;  // absolute; empty under `run` without --pidfile
  bool foreground = false;        // `run`: no detaching, the caller's streams
  std::string outer_notify;       // `run`: the $NOTIFY_SOCKET we report to, if any

  // The payload.
  std::filesystem::path program;  // found (inside the chroot, with --chroot)
  std::vector<std::string> argv;  // as given; argv[0] names it in messages
  std::vector<std::string> env;   // before the notify variables are added
  std::optional<daemonkit::Credentials> credentials;
  std::optional<std::filesystem::path> chroot;
  std::filesystem::path working_directory = "/";
  mode_t umask = 022;
  std::optional<int> nice;
  std::vector<daemonkit::ResourceLimit> limits;
  std::optional<int> oom_score_adj;
  bool no_new_privs = false;

  // Its streams. Unset stdout/stderr: /dev/null when detached, the
  // supervisor's own under `run`; stderr_to_stdout shares stdout's pipe.
  std::optional<std::filesystem::path> stdin_path;
  std::optional<std::filesystem::path> stdout_path;
  std::optional<std::filesystem::path> stderr_path;
  bool stderr_to_stdout = false;
  std::optional<daemonkit::OutputFile::Rotation> rotation;
  std::optional<std::string> syslog_tag;

  // Readiness.
  bool notify = false;
  std::chrono::milliseconds ready_timeout = std::chrono::seconds(30);
  std::optional<std::chrono::milliseconds> ready_after;  // > 0 when set
  std::optional<std::chrono::milliseconds> watchdog;
  bool reload_notify = false;

  // Respawning.
  bool respawn = false;
  std::optional<unsigned> max_restarts;
  std::vector<int> no_respawn_on;

  // Stopping: the daemon's own stop signal, and how long a stop that
  // arrives as a plain signal (not from `daemonkit stop`) waits for SIGKILL.
  int stop_signal = SIGTERM;
  std::chrono::milliseconds stop_timeout = std::chrono::seconds(10);

  // How long anyone waits for this daemon to come up, once: the payload's
  // readiness window, plus the supervisor's own work around it (ending
  // what a killed predecessor left takes up to stop_timeout; sweeping a
  // payload that missed the window, a few seconds). `start` waits that long
  // for a concurrent start's daemon, and detach() uses it as a backstop
  // that never cuts the supervisor's own clean-up short.
  [[nodiscard]] std::chrono::milliseconds start_wait() const {
    const auto window = notify ? ready_timeout : ready_after.value_or(std::chrono::milliseconds(0));
    return window + stop_timeout + std::chrono::seconds(10);
  }

  // The name messages give the payload.
  [[nodiscard]] const std::string& name() const { return argv.front(); }
  // The file that captures what the payload writes (the record names it).
  [[nodiscard]] std::string log_path() const {
    if (stdout_path) return stdout_path->string();
    return stderr_path ? stderr_path->string() : std::string();
  }
};

}  // namespace dkcli
