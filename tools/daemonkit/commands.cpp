#include "commands.hpp"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "daemonkit/control.hpp"
#include "daemonkit/output.hpp"
#include "daemonkit/spawn.hpp"
#include "supervisor/leftovers.hpp"
#include "supervisor/state_file.hpp"

namespace dkcli {

using daemonkit::Outcome;
using daemonkit::RunState;

namespace {

// Who owns the daemon's output files: the uid and gid the supervisor
// records with --user. Root's `status` reads them as that user (and its
// groups), never with root's power over files that user can replace.
// nullopt: read as the caller (no user in the record, or the caller is not
// root and so has no power to lend).
std::optional<daemonkit::Credentials> output_owner(const std::optional<DaemonRecord>& record) {
  if (!record || !record->uid || ::geteuid() != 0) return std::nullopt;
  daemonkit::Credentials c;
  c.uid = *record->uid;
  c.gid = record->gid.value_or(*record->uid);
  c.user = std::to_string(c.uid);
  if (const struct passwd* pw = ::getpwuid(c.uid))
    if (auto named =
            daemonkit::lookup_credentials(std::string(pw->pw_name) + ":" + std::to_string(c.gid)))
      return std::move(*named);
  return c;  // no such user any more: its ids, no supplementary groups
}

// Appends `lines` to the daemon's captured log (as its user: the file is
// that user's to replace) or sends them to its syslog tag; best effort.
void tell_daemon_log(const DaemonRecord& record, const std::vector<std::string>& lines) {
  if (!record.syslog.empty()) {
    if (auto w = daemonkit::SyslogWriter::open(record.syslog))
      for (const auto& l : lines)
        (void)w->send(daemonkit::Level::warning, ::getpid(), "daemonkit: " + l);
    return;
  }
  if (record.log.empty()) return;
  auto f = daemonkit::OutputFile::open(record.log, std::nullopt, output_owner(record));
  if (!f) return;
  for (const auto& l : lines) (void)f->write("daemonkit: " + l + "\n");
}

// The lock is free, but the payload of a supervisor that was killed may
// still run, or its group or cgroup: its record says who they are. Ends
// them, says so in the daemon's log, and removes the record. No lock is
// taken: a start meanwhile ends the same processes before its payload
// runs, and then holds the pidfile, which is not removed while locked.
// Returns the lines that tell what was left (none: nothing was).
std::vector<std::string> stop_leftovers(const Options& o) {
  auto record = dkcli::read_record(o.pidfile);
  if (!record) return {};
  DaemonRecord r = *record;
  if (o.stop_signal) r.stop_signal = *o.stop_signal;
  auto lines = dkcli::end_leftovers(r, o.timeout);
  if (!lines.empty()) tell_daemon_log(r, lines);
  // Only the record we acted on: a new supervisor may have written its own.
  if (auto now = dkcli::read_record(o.pidfile); now && now->supervisor == r.supervisor)
    dkcli::remove_record(o.pidfile);
  return lines;
}

}  // namespace

daemonkit::Voice voice() {
  daemonkit::Voice v;
  v.program = "daemonkit";
  v.human_uptime = true;
  v.log_without_tail = true;
  return v;
}

Outcome report_error(const daemonkit::Error& error, std::string_view action, Command command) {
  return daemonkit::error_outcome(error, action, voice(), usage(command));
}

daemonkit::StatusReport status_report(const std::filesystem::path& pidfile) {
  daemonkit::StatusReport r = daemonkit::daemon_status(pidfile);
  if (!r.run_state) return r;
  const bool running = *r.run_state == RunState::running;
  // The lock holder is a supervisor: what daemon_status saw of it as the
  // daemon's program is the supervisor's; the payload is its child.
  r.supervisor = std::exchange(r.payload, std::nullopt);
  r.command.clear();
  // The record is believed only as far as the processes it names match:
  // the supervisor must be the lock holder, the payload its child.
  auto record = running ? dkcli::read_record_of(pidfile, r.pid) : dkcli::read_record(pidfile);
  pid_t payload = 0;
  if (running && record && record->payload > 0)
    for (pid_t c : daemonkit::child_processes(r.pid))
      if (c == record->payload) payload = c;
  const bool restarting =
      running && record && record->phase == DaemonRecord::Phase::restarting && payload == 0;
  // A payload that outlived its killed supervisor.
  std::optional<dkcli::Orphan> orphan;
  if (!running && record) orphan = dkcli::find_orphan(*record);
  auto info = payload ? daemonkit::read_process_info(payload) : daemonkit::ProcessInfo{};
  if (payload) r.payload = daemonkit::ProcessReport{payload, info.uptime, info.rss_kib};
  if (record) {
    r.log = record->log;
    r.restarts = record->restarts;
    r.payload_status = record->status;
    // The command the payload was started with, whatever it made of its own
    // command line since.
    r.command = !record->command.empty() ? record->command : std::move(info.command);
  } else {
    r.command = std::move(info.command);
  }
  if (!r.log.empty()) r.log_tail = daemonkit::tail_lines(r.log, 5, output_owner(record));
  if (restarting) {
    r.exit_code = static_cast<int>(daemonkit::ExitCode::restarting);
    r.state = "restarting";
    long long next_in_ms = 0;
    if (record->next_start_ms > 0) {
      const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
      next_in_ms = std::max<long long>(0, record->next_start_ms - now);
    }
    r.restart =
        daemonkit::StatusReport::Restart{record->last_exit, std::chrono::milliseconds(next_in_ms)};
  } else if (running && payload == 0 && record && record->phase == DaemonRecord::Phase::starting) {
    r.state = "starting";  // no payload yet (a predecessor's is being ended)
  }
  if (*r.run_state == RunState::dead_pidfile_remains)
    r.ended = record && !record->ended.empty() ? record->ended : "the daemon died";
  if (orphan) {
    r.orphan_pid = orphan->process.pid();
    r.ended = "its supervisor was killed; its payload " + std::to_string(r.orphan_pid) + " (" +
              orphan->name + ") still runs (daemonkit stop ends it)";
  }
  return r;
}

Outcome status(const Options& o) {
  return daemonkit::status_outcome(status_report(o.pidfile), o.json, voice());
}

Outcome stop(const Options& o, bool quiet) {
  daemonkit::StopOptions s;
  s.signal = o.stop_signal.value_or(0);
  s.timeout = o.timeout;
  auto st = daemonkit::query_status(o.pidfile);
  if (!st) return report_error(st.error(), "stop", Command::stop);
  if (st->state != RunState::running) {
    if (auto left = stop_leftovers(o); !left.empty()) {
      Outcome out;
      for (const auto& l : left) out.err("daemonkit: " + l);
      if (auto removed = daemonkit::remove_stale_pidfile(o.pidfile); !removed)
        out.err("daemonkit: warning: " + removed.error().message());
      return out;
    }
  }
  auto stopped = daemonkit::stop_daemon(o.pidfile, s);
  if (!stopped) return report_error(stopped.error(), "stop", Command::stop);
  std::error_code ec;
  if (!std::filesystem::exists(o.pidfile, ec)) dkcli::remove_record(o.pidfile);
  return daemonkit::stop_outcome(*stopped, o.timeout, quiet, voice());
}

Outcome reopen(const Options& o) {
  auto pid = daemonkit::reopen_daemon(o.pidfile);
  if (!pid) return report_error(pid.error(), "reopen", o.command);
  return daemonkit::reopen_outcome(*pid, voice());
}

Outcome reload(const Options& o) {
  auto r = daemonkit::reload_daemon(o.pidfile, o.timeout);
  if (!r) return report_error(r.error(), "reload", o.command);
  return daemonkit::reload_outcome(*r, voice());
}

Outcome send_signal(const Options& o) {
  auto r = daemonkit::signal_payload(o.pidfile, *o.stop_signal, o.group, o.timeout);
  if (!r) return report_error(r.error(), "signal", o.command);
  return daemonkit::signal_outcome(*r, voice());
}

}  // namespace dkcli
