// tools/daemonkit/supervisor/state_file.hpp: the record a supervisor keeps
// beside its pidfile (PIDFILE.state), and the one owner of its format.
//
// The supervisor rewrites it at each change of phase; `status`, `start`,
// `stop` and `signal` read it. It lives in the pidfile's directory, which
// only root (or the daemon's owner) may write: what it says is trusted as
// far as the process it names still matches (pid and start time), never
// further. Every value is encoded (a newline or a control byte in a path,
// a command or a STATUS= text cannot forge a key), and the file is replaced
// atomically, so a reader sees the old record or the new one, whole.
#pragma once

#include <sys/types.h>

#include <csignal>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemonkit/detach.hpp"
#include "daemonkit/pidfile.hpp"
#include "daemonkit/result.hpp"

namespace dkcli {

struct DaemonRecord {
  enum class Phase {
    starting,    // the payload runs, not yet ready
    running,     // the payload is up (start returned)
    restarting,  // no payload: waiting to respawn it
    ended,       // the supervisor ended; `ended` says why
  };
  Phase phase = Phase::starting;
  pid_t supervisor = 0;
  // The payload now (or, when ended, none). Its start time, in clock ticks
  // after boot (/proc/PID/stat field 22), makes the pair an identity that a
  // reused pid cannot match.
  pid_t payload = 0;
  unsigned long long payload_start_ticks = 0;
  std::vector<std::string> command;  // as the payload was started
  unsigned restarts = 0;
  std::string status;        // the payload's last STATUS=
  std::string log;           // the captured-output file, if any
  std::string syslog;        // or the --syslog tag
  std::optional<uid_t> uid;  // --user: whose power the supervisor uses on the log
  std::optional<gid_t> gid;
  int stop_signal = SIGTERM;
  std::string cgroup;              // the payload's own cgroup (v2), when it has one
  std::string last_exit;           // restarting: how the last payload ended
  std::int64_t next_start_ms = 0;  // restarting: when (Unix time, ms) it starts again
  std::string ended;               // ended: why ("exited with 78", "gave up after ...")
};

std::string_view phase_name(DaemonRecord::Phase phase);

// PIDFILE.state, or a shortened name when that would pass NAME_MAX.
std::filesystem::path state_path(const std::filesystem::path& pidfile);

// The record as text, and back. decode_record accepts any input (it is
// fuzzed): unknown keys are skipped, a record without a valid supervisor
// pid is nullopt.
std::string encode_record(const DaemonRecord& record);
std::optional<DaemonRecord> decode_record(std::string_view text);

// Replaces the record beside `pidfile` atomically (a temporary file in the
// same directory, renamed over it). Errors name the path and the cause.
daemonkit::Result<void> write_record(const std::filesystem::path& pidfile,
                                     const DaemonRecord& record);
// The record beside `pidfile`; nullopt when there is none or it is unreadable.
std::optional<DaemonRecord> read_record(const std::filesystem::path& pidfile);
// The record of the supervisor `holder`, which holds the pidfile's lock:
// believed only when that is the supervisor it names (nullopt otherwise:
// missing, or left by another, older one).
std::optional<DaemonRecord> read_record_of(const std::filesystem::path& pidfile, pid_t holder);
// Removes it (a missing one is fine).
void remove_record(const std::filesystem::path& pidfile);

// A supervisor's two files, owned together: the pidfile it holds locked
// (held by the detach() channel under `start`, by `run` itself otherwise)
// and the record beside it. Every change to either goes through here.
class DaemonFiles {
 public:
  // `pidfile` empty: `run` without one; then nothing is written.
  DaemonFiles(std::filesystem::path pidfile, std::optional<daemonkit::LockedPidfile>& lock)
      : pidfile_(std::move(pidfile)), lock_(lock) {}

  [[nodiscard]] bool enabled() const noexcept { return !pidfile_.empty(); }
  // The record a predecessor left (ours once we wrote one).
  [[nodiscard]] std::optional<DaemonRecord> previous() const;
  daemonkit::Result<void> save(const DaemonRecord& record) const;
  // The daemon ended cleanly: the pidfile and the record go, the lock with
  // them.
  daemonkit::Result<void> remove();
  // The daemon ended otherwise: the record (in phase ended) says why; the
  // pidfile stays, unlocked, for `status`.
  daemonkit::Result<void> leave(DaemonRecord ended);
  // It never came up: the caller (the detach() channel, under `start`) is
  // told after the pidfile is gone; nothing is left.
  void fail_start(daemonkit::Daemon* caller, const daemonkit::Error& error);

 private:
  std::filesystem::path pidfile_;
  std::optional<daemonkit::LockedPidfile>& lock_;
};

}  // namespace dkcli
