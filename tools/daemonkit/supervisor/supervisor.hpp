// tools/daemonkit/supervisor/supervisor.hpp: the process between the
// daemon's pidfile and the payload.
//
// It holds the pidfile's lock (so the kernel's answer to "who runs?" is
// always the supervisor, alive exactly as long as the daemon), starts the
// payload in a process group (and, where it may, a cgroup) of its own with
// SIGKILL as its parent-death signal, records it beside the pidfile
// (state_file.hpp), ends what a killed predecessor left (leftovers.hpp),
// captures and rotates its output, listens for sd_notify messages,
// respawns it with backoff, passes signals on, and sweeps the payload's
// group with SIGKILL once the payload is gone, so nothing it forked outlives
// the daemon. One poll loop; no timer is armed unless something is pending,
// so an idle supervisor never wakes up.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "daemonkit/detach.hpp"
#include "daemonkit/pidfile.hpp"
#include "daemonkit/signals.hpp"
#include "options.hpp"
#include "supervisor/state_file.hpp"

namespace dkcli {

// Everything resolved before supervising (paths absolute, program found).
struct Plan {
  Options options;
  std::filesystem::path program;
  std::optional<daemonkit::Credentials> credentials;
  std::vector<std::string> env;  // the payload's environment, before notify variables
  bool foreground = false;       // `run`
  std::string outer_notify;      // `run`: the $NOTIFY_SOCKET we report to, if any
};

// Supervises until the daemon ends. `daemon` is the detach() channel
// (nullptr under `run`); `pidfile` the locked pidfile, if any. Returns the
// process's exit code (under `run`, the payload's status).
int supervise(const Plan& plan, daemonkit::SignalHub& hub, daemonkit::Daemon* daemon,
              std::optional<daemonkit::LockedPidfile>& pidfile);

}  // namespace dkcli
