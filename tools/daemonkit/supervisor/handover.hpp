// tools/daemonkit/supervisor/handover.hpp: how the command becomes the
// supervisor.
//
// The resident supervisor is a program of its own, daemonkit-supervise,
// built from this folder and the library alone: it carries nothing only
// the command line needs (parsing, help, status, user lookup), so what it
// keeps resident is what supervising takes. The command resolves the
// configuration, detaches (`start`) or takes the pidfile (`run`), and then
// executes it in the same process, handing over the configuration (in a
// sealed memfd) and the two descriptors it holds: the detach() channel to
// report on, and the locked pidfile (a record lock survives execve).
// Signals stay blocked across the exec until the supervisor has its
// handlers. Its argv is the command's own, so that `ps` and `pgrep -f`
// show what was asked for; the descriptors' numbers come in
//
//   DAEMONKIT_SUPERVISE=CONFIG,CHANNEL,PIDFILE   (-1 for none)
//
// which the supervisor takes out of its environment at once.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "daemonkit/detach.hpp"
#include "daemonkit/pidfile.hpp"
#include "daemonkit/result.hpp"
#include "supervisor/config.hpp"

namespace dkcli {

inline constexpr const char* kSuperviseVariable = "DAEMONKIT_SUPERVISE";

// The command's side. The supervisor program: installed in libexec
// (DAEMONKIT_SUPERVISOR_RELATIVE from the command's own directory, or
// where it was configured to be installed), or beside the command (a
// build tree). An error names where it was looked for.
daemonkit::Result<std::filesystem::path> find_supervisor_program();

// Executes `program` with the configuration, `channel` (or -1) and
// `pidfile` (or -1) handed over; returns only why it could not.
daemonkit::Error exec_supervisor(const std::filesystem::path& program,
                                 const SupervisorConfig& config, int channel, int pidfile,
                                 const std::vector<std::string>& args);

// The supervisor's side: what was handed over.
struct Handover {
  SupervisorConfig config;
  std::optional<daemonkit::Daemon> caller;  // under `start`
  std::optional<daemonkit::LockedPidfile> pidfile;
};
// Takes the descriptors first (so that a failure to read the configuration
// still reaches the caller and removes the pidfile), then the
// configuration. On failure the error has been reported (to the caller, or
// on standard error under `run`) and the pidfile removed; the exit code is
// returned.
std::variant<Handover, int> take_over();

}  // namespace dkcli
