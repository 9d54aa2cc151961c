// tools/daemonkit/supervisor/leftovers.hpp: what a supervisor that was
// killed (SIGKILL, the OOM killer) left running, found through its record.
//
// The payload's parent-death signal usually takes it along, but the kernel
// clears that signal when the payload changes its credentials or executes a
// setuid program, and what the payload forked never had it. The record
// beside the pidfile names the payload by pid and start time (a reused pid
// cannot match both) and its cgroup, if it had one: enough to find all of
// it again, and to end it before anything else runs in its place.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "daemonkit/fd.hpp"
#include "supervisor/state_file.hpp"

namespace dkcli {

// The payload `record` names, if that very process still runs (start time
// checked after its handle was opened). The caller has made sure that no
// supervisor holds the pidfile any more (the lock is free, or its own).
struct Orphan {
  daemonkit::Pidfd process;
  std::string name;  // /proc/PID/comm
};
std::optional<Orphan> find_orphan(const DaemonRecord& record);

// Ends what `record` left running: the payload and what it started get the
// record's stop signal and SIGCONT, SIGKILL after `timeout`; then whatever
// is left of its process group and its cgroup, which is removed. Returns the
// lines to tell (in the payload's log and to whoever asked), none when
// nothing was left.
std::vector<std::string> end_leftovers(const DaemonRecord& record,
                                       std::chrono::milliseconds timeout);

}  // namespace dkcli
