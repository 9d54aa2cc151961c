// tools/daemonkit/supervisor/loop.hpp: the process between the daemon's
// pidfile and the payload, and the one place it waits.
//
// It holds the pidfile's lock (so the kernel's answer to "who runs?" is
// always the supervisor, alive exactly as long as the daemon), starts the
// payload in a process group (and, where it may, a cgroup) of its own with
// SIGKILL as its parent-death signal, records it beside the pidfile
// (state_file.hpp), ends what a killed predecessor left (leftovers.hpp),
// captures and rotates its output, listens for sd_notify messages, and
// sweeps the payload's group with SIGKILL once the payload is gone, so
// nothing it forked outlives the daemon.
//
// What to do is the core's to decide (core.hpp): the loop only turns
// signals, exits, notifications and deadlines into its events and carries
// out the actions it returns. One poll(); no timer is armed unless the core
// names a deadline, so an idle supervisor never wakes up.
#pragma once

#include <optional>

#include "daemonkit/detach.hpp"
#include "daemonkit/pidfile.hpp"
#include "daemonkit/signals.hpp"
#include "supervisor/config.hpp"

namespace dkcli {

// Installs the handlers of every signal a supervisor handles (TERM, INT,
// HUP, CHLD and its own): before it takes the pidfile (`run`), or while
// they are still blocked (`start`, in the detached process).
daemonkit::Result<std::unique_ptr<daemonkit::SignalHub>> install_supervisor_signals();

// Supervises until the daemon ends. `caller` is the detach() channel
// (nullptr under `run`); `pidfile` the locked pidfile, if any. Returns the
// process's exit code (under `run`, the payload's status).
int supervise(const SupervisorConfig& config, daemonkit::SignalHub& hub, daemonkit::Daemon* caller,
              std::optional<daemonkit::LockedPidfile>& pidfile);

}  // namespace dkcli
