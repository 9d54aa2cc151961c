// tools/daemonkit/commands.hpp: the commands that act on a running daemon
// (status, stop, reload, reopen, signal), on the library's commands layer
// (daemonkit/commands.hpp) and the supervisor's record beside the pidfile.
//
// Each returns what to print and the exit code; main.cpp prints it. They
// may act (signal, end a killed supervisor's leftovers, write a line into
// the daemon's own log) but never write to standard output or error.
#pragma once

#include <filesystem>
#include <string_view>

#include "daemonkit/commands.hpp"
#include "options.hpp"

namespace dkcli {

// How the daemonkit tool words its answers ("daemonkit: not running",
// "running (pid 7)", uptimes as "2 min 5 s").
daemonkit::Voice voice();

// An error as the tool reports it: "daemonkit: cannot ACTION: MESSAGE", or
// a usage error followed by the synopsis of `command`.
daemonkit::Outcome report_error(const daemonkit::Error& error, std::string_view action,
                                Command command);

// What `status` knows of the daemon at `pidfile`: the lock, the supervisor
// (the lock holder) and its payload, as far as the supervisor's record
// still matches the processes it names, a payload that outlived a killed
// supervisor, the captured log's last lines (read as the daemon's --user).
daemonkit::StatusReport status_report(const std::filesystem::path& pidfile);

daemonkit::Outcome status(const Options& o);
// `quiet`: say nothing when nothing runs (restart).
daemonkit::Outcome stop(const Options& o, bool quiet);
daemonkit::Outcome reload(const Options& o);
daemonkit::Outcome reopen(const Options& o);
daemonkit::Outcome send_signal(const Options& o);

}  // namespace dkcli
