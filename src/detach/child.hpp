// src/detach/child.hpp: the plan the forked children follow.
//
// Everything the children need is computed before fork and stored here as
// plain pointers and numbers, so that they never allocate.
#pragma once

#include <sys/types.h>

#include <cstddef>

namespace daemonkit::detail {

struct ChildPlan {
  const char* pidfile = nullptr;  // absolute, or nullptr for none
  const char* stdin_path = nullptr;
  const char* stdout_path = nullptr;
  const char* stderr_path = nullptr;
  const char* working_directory = nullptr;
  mode_t umask = 022;
  bool switch_user = false;
  uid_t uid = 0;
  gid_t gid = 0;
  const gid_t* groups = nullptr;
  size_t group_count = 0;
  const char* user = "";  // for messages
  int report_fd = -1;
  bool keep_signals_blocked = false;
  bool supervisor_lock = false;  // lock the pidfile as a supervisor (sys::kSupervisorLockLength)
};

struct DaemonFds {
  int report = -1;   // the report channel (moved above 0-2)
  int pidfile = -1;  // the locked pidfile, or -1 when the plan has none
};

// Runs in the first child, right after fork. Becomes a new session, forks
// the daemon and exits; returns only in the daemon, after every step of the
// plan succeeded. A failing step is reported over the report channel and the
// process exits. Async-signal-safe.
DaemonFds become_daemon(const ChildPlan& plan) noexcept;

}  // namespace daemonkit::detail
