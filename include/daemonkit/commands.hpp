// daemonkit/commands.hpp: the commands layer both front ends share, the
// library's App (examples/heartbeat) and the daemonkit tool.
//
// It owns what a command reports and how that reads: the status report and
// its two renderings (text for a terminal, one JSON object for scripts),
// the lines and exit code that stop, reload, reopen and signal answer with,
// the one line an error or a usage error prints, and the pidfile lock that
// `run` takes. Everything here returns values; nothing prints. A front end
// only writes an Outcome's lines to the stream each names and exits with its
// code.
//
// Text that came from another process (a command line, a STATUS= line, a log
// line, why a payload ended) is escaped here and only here: with
// escape_text() in text, with json_string() in JSON (see text.hpp).
//
// The two front ends word some answers differently, and users' scripts read
// both as they are: a Voice says which wording a front end speaks. What
// differs because the daemons differ (a supervisor and its payload, or a
// program that is its own daemon) follows from the report itself.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemonkit/control.hpp"
#include "daemonkit/error.hpp"
#include "daemonkit/pidfile.hpp"
#include "daemonkit/result.hpp"

namespace daemonkit {

// One line for a front end to print (without its newline), and where.
struct Line {
  enum class Stream { out, err };
  Stream stream = Stream::out;
  std::string text;

  friend bool operator==(const Line&, const Line&) = default;
};

// What a command ends with: the lines to print, in order, and the exit code.
struct Outcome {
  int exit_code = 0;
  std::vector<Line> lines;

  Outcome& out(std::string text);  // adds a line for standard output
  Outcome& err(std::string text);  // adds a line for standard error
};

// How a front end words its answers.
struct Voice {
  // Starts every line on standard error: "daemonkit: cannot stop: ...".
  std::string program;
  // Set when the daemon is this program itself (an App): answers name it,
  // "heartbeat is not running", "heartbeat is running (pid 7)". Empty for
  // the tool, which runs any program and names only itself: "daemonkit: not
  // running", "running (pid 7)".
  std::string daemon_name;
  // Uptimes as "2 min 5 s" (true) or as seconds, "125 s".
  bool human_uptime = true;
  // status shows "  log:     PATH" even when no line of it could be read
  // (true), or only together with its last lines.
  bool log_without_tail = true;
};

// A usage error (ErrorKind::usage, exit 2): `text` is the whole message.
Error usage_error(std::string text);

// The one line an error prints on standard error, "PROGRAM: cannot ACTION:
// MESSAGE", with exit_code_for(error). A usage error prints "PROGRAM:
// MESSAGE" and then `usage` (the synopsis), exit 2. An error without an
// operation (a usage error, a locked pidfile) reads as its detail alone.
Outcome error_outcome(const Error& error, std::string_view action, const Voice& voice,
                      std::string_view usage);

// ---- status ----

// What /proc says of one process of the daemon.
struct ProcessReport {
  pid_t pid = 0;
  std::chrono::seconds uptime{0};
  std::uint64_t rss_kib = 0;
};

// Everything `status` reports, in either front end. Text that came from
// other processes is kept as it came (raw bytes); the renderers escape it.
struct StatusReport {
  // What the pidfile's lock says; nullopt when that could not be found out
  // (state "unknown", `error` says why).
  std::optional<RunState> run_state;
  // The state's name as shown: "running", "dead", "not running", "unknown";
  // the tool adds "starting" and "restarting".
  std::string state = "not running";
  int exit_code = static_cast<int>(ExitCode::not_running);
  // The lock holder while it runs; the pid the file names when dead.
  pid_t pid = 0;
  std::filesystem::path pidfile;
  std::string error;  // state "unknown": why

  // The daemon's processes. A daemon that is its own program (an App) has
  // only `payload`: the lock holder itself, while it runs. A supervised
  // daemon has `supervisor` (the lock holder) while it runs, and `payload`
  // while one runs under it.
  std::optional<ProcessReport> supervisor;
  std::optional<ProcessReport> payload;
  // The command the payload was started with (empty: unknown, not shown).
  std::vector<std::string> command;
  // A payload that outlived its killed supervisor (0: none).
  pid_t orphan_pid = 0;
  // How often the payload was restarted, when the supervisor recorded it.
  std::optional<unsigned> restarts;
  // The payload's last STATUS= text.
  std::string payload_status;
  // While a supervisor waits to start its payload again.
  struct Restart {
    std::string last_exit;  // how the last payload ended: "exited with 1"
    std::chrono::milliseconds next_start_in{0};
  };
  std::optional<Restart> restart;
  // Why a dead daemon ended ("exited with 78"); empty: no one recorded it.
  std::string ended;
  // The daemon's log file and its last lines.
  std::string log;
  std::vector<std::string> log_tail;
};

// The part every daemon has: what the pidfile's lock says (state, exit
// code, pid; "unknown" with the error when the pidfile cannot be inspected)
// and, while it runs, what /proc says of the lock holder as the daemon's
// own program (`payload`, `command`). Whoever knows more (a supervisor's
// record, the log) adds it.
StatusReport daemon_status(const std::filesystem::path& pidfile);

// The report as one JSON object on one line (no newline): valid UTF-8, the
// command as an array of its arguments. Keys, in this order, as they apply:
// state, exit_code, pid (state "unknown": state, error, exit_code only);
// supervisor_uptime_seconds, supervisor_rss_kib; for a daemon that is its
// own program: command, uptime_seconds, rss_kib; for a supervised one:
// payload_pid, uptime_seconds, rss_kib, orphan_pid, command; then restarts,
// last_exit, next_start_in_ms, status, ended, log, log_tail.
std::string status_json(const StatusReport& report);

// The report for a terminal, one '\n'-ended line each: the state first
// ("running (pid 7)", "heartbeat is running (pid 7)"), then indented
// details. Empty for state "unknown" (its error goes to standard error).
std::string status_text(const StatusReport& report, const Voice& voice);

// `status`: the JSON or the text on standard output (and for state
// "unknown" "PROGRAM: status unknown: ERROR" on standard error), with the
// report's exit code.
Outcome status_outcome(const StatusReport& report, bool json, const Voice& voice);

// "2 min 5 s", "3 h 4 min", "2 days 1 h".
std::string human_duration(std::chrono::seconds d);

// ---- stop, reload, reopen, signal ----

// `stop`'s answer: the supervisor's notes, "not running" on standard output
// (unless `quiet_if_not_running`, for restart), a SIGKILL it took, a
// pidfile it could not remove; exit 0 (the daemon is stopped). `timeout` is
// the one stop waited before SIGKILL.
Outcome stop_outcome(const StopResult& result, std::chrono::milliseconds timeout,
                     bool quiet_if_not_running, const Voice& voice);

// `reload`: 0 when done; exit 7 "cannot reload: not running"; exit 1
// "reload failed: WHY".
Outcome reload_outcome(const RequestResult& result, const Voice& voice);
// `reopen`, from the pid signalled (0: nothing runs, exit 7).
Outcome reopen_outcome(pid_t signalled, const Voice& voice);
// `signal`: 0 when sent; exit 7 when no payload runs (and why, if the
// supervisor said); exit 1 naming the cause.
Outcome signal_outcome(const RequestResult& result, const Voice& voice);

// ---- run ----

// `run`'s pidfile: created and locked without waiting (with `supervisor`,
// as a supervisor's lock, see LockedPidfile::acquire), and this process's
// pid written. Locked by another process is an error (ErrorKind::failure)
// whose message names the holder: "PATH is locked by pid N" ("by another
// process" when its pid cannot be seen). When the pid cannot be written,
// the file is removed again.
Result<LockedPidfile> lock_pidfile_for_run(const std::filesystem::path& path,
                                           bool supervisor = false);

}  // namespace daemonkit
