// daemonkit/control.hpp: the LSB init-script actions, from the pidfile alone.
//
// Every action asks the pidfile's lock who runs (see pidfile.hpp) and signals
// only through a pidfd of the confirmed lock holder: a pidfile holding
// garbage, -1, 0, 1 or the pid of an unrelated process is "not running" and
// nothing is signalled. stop() waits on the pidfd, so it returns the instant
// the daemon has exited, however slowly init reaps it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemonkit/detach.hpp"
#include "daemonkit/error.hpp"
#include "daemonkit/result.hpp"
#include "daemonkit/text.hpp"  // json_string, escape_text: for what status shows

namespace daemonkit {

// LSB exit codes (init-script actions and status).
enum class ExitCode : int {
  success = 0,
  failure = 1,             // status: dead, but the pidfile remains
  usage = 2,               // invalid or excess arguments
  not_running = 3,         // status only
  privilege = 4,           // status: unknown
  not_installed = 5,       // program missing or not executable
  reload_not_running = 7,  // reload of a daemon that is not running
  restarting = 150         // status: a supervisor waits to respawn its payload
};

enum class RunState {
  running,               // a process holds the pidfile's lock
  dead_pidfile_remains,  // unlocked pidfile holding a valid pid
  not_running,           // no pidfile, or one that holds no valid pid
};

struct DaemonStatus {
  RunState state = RunState::not_running;
  pid_t pid = 0;                  // the lock holder when running; the recorded pid when dead
  bool supervisor = false;        // running: the holder is a supervisor (PidfileInfo)
  bool older_supervisor = false;  // running: one of an older daemonkit (PidfileInfo)
};

Result<DaemonStatus> query_status(const std::filesystem::path& pidfile);

// Requests carried by queued signals (sigqueue values). daemonkit's
// supervisor acts on them; any other daemon just sees the signal.
struct StopRequest {
  int signal = SIGTERM;  // what the payload's process group gets; 0: its own stop signal
  std::chrono::milliseconds timeout = std::chrono::seconds(10);  // before SIGKILL
};
// The value sent with SIGTERM; timeouts are kept in 100 ms units, up to 58 h.
int encode_stop_request(const StopRequest& request);
// nullopt unless (code, value) came from encode_stop_request via SI_QUEUE.
std::optional<StopRequest> decode_stop_request(int code, int value);
// Requests to daemonkit's supervisor travel on realtime signals, which the
// kernel queues one by one (SIGHUP would merge concurrent ones). Only a
// supervisor gets them: other daemons would die of an unhandled one.
// `reopen`: reopen the output files and signal nothing else.
int reopen_request_signal();  // SIGRTMIN+2
// A confirmed reload: reload_request_signal() queued with a request id. The
// supervisor passes SIGHUP on and answers each request with one datagram to
// reply_address(sender, id): "ok", or "failed: <why>".
int reload_request_signal();  // SIGRTMIN+1
int make_request_id();        // a fresh random id, 1 to 2^23 - 1
// Where a supervisor answers the requests of process `requester`. A stop
// (id 0) gets lines worth telling its caller ("note: ..."), not an answer.
std::string reply_address(pid_t requester, int id);
// `signal`: signal_request_signal() queued with encode_signal_request(); the
// supervisor sends `signo` to its payload (or the payload's group) and
// answers "ok", or "failed: <why>" when no payload runs.
int signal_request_signal();  // SIGRTMIN+3
struct SignalRequest {
  int signo = 0;
  bool group = false;
  int id = 0;  // from make_request_id()
};
int encode_signal_request(const SignalRequest& request);
std::optional<SignalRequest> decode_signal_request(int code, int value);

struct StopOptions {
  // Passed on to a supervisor's payload group; 0: the daemon's own stop
  // signal (daemonkit's --stop-signal). Any other daemon gets SIGTERM.
  int signal = 0;
  // How long to wait after `signal` before sending SIGKILL.
  std::chrono::milliseconds timeout = std::chrono::seconds(10);
  // Extra time a supervisor gets, past `timeout`, to SIGKILL its payload's
  // process group itself and exit, before it is SIGKILLed.
  std::chrono::milliseconds kill_grace = std::chrono::seconds(2);
  // How long to wait after SIGKILL before giving up.
  std::chrono::milliseconds kill_timeout = std::chrono::seconds(5);
};

struct StopResult {
  enum class Outcome { stopped, killed, not_running };
  Outcome outcome = Outcome::not_running;
  pid_t pid = 0;
  // The daemon is gone, but its leftover pidfile could not be removed.
  std::optional<Error> cleanup_error;
  // What a supervisor told the stopping process meanwhile (for example that
  // it had to SIGKILL its payload), one line each.
  std::vector<std::string> notes;
};

// Sends SIGTERM to the lock holder, queued with encode_stop_request(signal,
// timeout) so that a supervisor passes `signal` on to its payload's process
// group, then SIGCONT (a stopped holder must run to act); waits until the
// holder has exited, escalating to SIGKILL after timeout + kill_grace, and
// removes the pidfile if it was left behind. A supervisor's notes arrive on
// reply_address(getpid(), 0), which is listened on meanwhile.
// A daemon that survives SIGKILL too is an error.
Result<StopResult> stop_daemon(const std::filesystem::path& pidfile, const StopOptions& options);

// Sends `signo` to the lock holder (queued with `value`, if given). Returns
// its pid, or 0 when nothing runs.
Result<pid_t> signal_daemon(const std::filesystem::path& pidfile, int signo,
                            std::optional<int> value = std::nullopt);

struct RequestResult {
  enum class Outcome { done, not_running, failed };
  Outcome outcome = Outcome::not_running;
  pid_t pid = 0;
  std::string why;  // with failed; with not_running from a supervisor
};
using ReloadResult = RequestResult;

// Sends SIGHUP to the lock holder. When the holder is a supervisor, sends a
// reload request instead and waits up to `timeout` for the answer: a
// refusal, the daemon's death, or silence are `failed` with the reason. Only
// the lock holder's answer counts.
Result<RequestResult> reload_daemon(const std::filesystem::path& pidfile,
                                    std::chrono::milliseconds timeout);

// `reopen`: a supervisor gets reopen_request_signal() and signals nothing
// else; any other daemon gets SIGHUP (what daemons reopen their logs on).
// Decided by the lock (PidfileInfo::supervisor), never by files beside it.
// Returns the holder's pid, or 0 when nothing runs.
Result<pid_t> reopen_daemon(const std::filesystem::path& pidfile);

// Sends `signo` to the daemon's payload (with `group`, to its process
// group), never to a supervisor: a supervisor is asked to do it and answers
// within `timeout`; it reports not_running while no payload runs (waiting to
// respawn). A daemon without a supervisor is its own payload.
Result<RequestResult> signal_payload(const std::filesystem::path& pidfile, int signo, bool group,
                                     std::chrono::milliseconds timeout);

// What /proc says about a process, for `status`. Fields it cannot read stay
// empty or zero.
struct ProcessInfo {
  std::vector<std::string> command;  // /proc/PID/cmdline, without NUL padding
  std::chrono::seconds uptime{0};    // since the process started
  std::uint64_t rss_kib = 0;         // VmRSS
};
ProcessInfo read_process_info(pid_t pid);

// The last `count` lines of the regular file at `path` (reads at most its
// last 64 KiB), opened as the user `as` when given (a daemon's output file,
// in a directory that user may control: then only what that user could
// read is read). Never follows a symbolic link at `path`; anything else
// than a regular file, or a file that cannot be read, gives no lines.
std::vector<std::string> tail_lines(const std::filesystem::path& path, size_t count,
                                    const std::optional<Credentials>& as = std::nullopt);

// The one place that maps errors and states to exit codes.
ExitCode exit_code_for(const Error& error);
ExitCode exit_code_for(RunState state);

}  // namespace daemonkit
