#include "daemonkit/commands.hpp"

#include <unistd.h>

#include <utility>
#include <variant>

#include "daemonkit/parse.hpp"
#include "daemonkit/text.hpp"

namespace daemonkit {

namespace {

// An error without an operation (a usage error, a locked pidfile) is a
// sentence of its own; the others read "op 'subject': cause".
std::string error_text(const Error& e) {
  return e.op.empty() ? e.detail : e.message();
}

// What an answer says of the daemon: "heartbeat is not running" (an App,
// which names it) or "not running" (the tool, whose answers start with
// "daemonkit: " or name no one).
std::string subject(const Voice& voice) {
  return voice.daemon_name.empty() ? std::string() : voice.daemon_name + " is ";
}

// An answer on standard output: "heartbeat is not running", "daemonkit:
// not running".
std::string answer(const Voice& voice, std::string_view text) {
  return (voice.daemon_name.empty() ? voice.program + ": " : subject(voice)) + std::string(text);
}

std::string uptime_text(std::chrono::seconds d, const Voice& voice) {
  return voice.human_uptime ? human_duration(d) : std::to_string(d.count()) + " s";
}

std::string json_array(const std::vector<std::string>& items) {
  std::string j = "[";
  for (size_t i = 0; i < items.size(); ++i) j += (i ? "," : "") + json_string(items[i]);
  return j + "]";
}

std::string text_command(const std::vector<std::string>& command) {
  std::string cmd;
  for (const auto& a : command) cmd += (cmd.empty() ? "" : " ") + escape_text(a);
  return cmd;
}

std::string kib(std::uint64_t rss_kib) {
  return std::to_string(rss_kib) + " KiB resident";
}

}  // namespace

Outcome& Outcome::out(std::string text) {
  lines.push_back({Line::Stream::out, std::move(text)});
  return *this;
}

Outcome& Outcome::err(std::string text) {
  lines.push_back({Line::Stream::err, std::move(text)});
  return *this;
}

Error usage_error(std::string text) {
  Error e;
  e.detail = std::move(text);
  e.kind = ErrorKind::usage;
  return e;
}

Outcome error_outcome(const Error& error, std::string_view action, const Voice& voice,
                      std::string_view usage) {
  Outcome o;
  if (error.kind == ErrorKind::usage) {
    o.exit_code = static_cast<int>(ExitCode::usage);
    o.err(voice.program + ": " + error_text(error));
    o.err(std::string(usage));
    return o;
  }
  o.exit_code = static_cast<int>(exit_code_for(error));
  o.err(voice.program + ": cannot " + std::string(action) + ": " + error_text(error));
  return o;
}

// ---- status ----

StatusReport daemon_status(const std::filesystem::path& pidfile) {
  StatusReport r;
  r.pidfile = pidfile;
  auto st = query_status(pidfile);
  if (!st) {
    r.state = "unknown";
    r.error = st.error().message();
    r.exit_code = static_cast<int>(ExitCode::privilege);
    return r;
  }
  r.run_state = st->state;
  r.exit_code = static_cast<int>(exit_code_for(st->state));
  r.pid = st->pid;
  switch (st->state) {
    case RunState::running: {
      r.state = "running";
      auto info = read_process_info(st->pid);
      r.payload = ProcessReport{st->pid, info.uptime, info.rss_kib};
      r.command = std::move(info.command);
      break;
    }
    case RunState::dead_pidfile_remains:
      r.state = "dead";
      break;
    case RunState::not_running:
      r.state = "not running";
      break;
  }
  return r;
}

std::string status_json(const StatusReport& r) {
  std::string j = "{\"state\":" + json_string(r.state);
  if (!r.run_state)
    return j + ",\"error\":" + json_string(r.error) +
           ",\"exit_code\":" + std::to_string(r.exit_code) + "}";
  j += ",\"exit_code\":" + std::to_string(r.exit_code) + ",\"pid\":" + std::to_string(r.pid);
  if (r.supervisor)
    j += ",\"supervisor_uptime_seconds\":" + std::to_string(r.supervisor->uptime.count()) +
         ",\"supervisor_rss_kib\":" + std::to_string(r.supervisor->rss_kib);
  const bool own_program = r.payload && !r.supervisor;
  if (own_program) {
    j += ",\"command\":" + json_array(r.command);
  } else if (r.payload) {
    j += ",\"payload_pid\":" + std::to_string(r.payload->pid);
  }
  if (r.payload)
    j += ",\"uptime_seconds\":" + std::to_string(r.payload->uptime.count()) +
         ",\"rss_kib\":" + std::to_string(r.payload->rss_kib);
  if (r.orphan_pid != 0) j += ",\"orphan_pid\":" + std::to_string(r.orphan_pid);
  if (!own_program && !r.command.empty()) j += ",\"command\":" + json_array(r.command);
  if (r.restarts) j += ",\"restarts\":" + std::to_string(*r.restarts);
  if (r.restart)
    j += ",\"last_exit\":" + json_string(r.restart->last_exit) +
         ",\"next_start_in_ms\":" + std::to_string(r.restart->next_start_in.count());
  if (!r.payload_status.empty()) j += ",\"status\":" + json_string(r.payload_status);
  if (!r.ended.empty()) j += ",\"ended\":" + json_string(r.ended);
  if (!r.log.empty())
    j += ",\"log\":" + json_string(r.log) + ",\"log_tail\":" + json_array(r.log_tail);
  return j + "}";
}

std::string status_text(const StatusReport& r, const Voice& voice) {
  if (!r.run_state) return {};
  std::string t;
  auto line = [&t](const std::string& text) { t += text + "\n"; };
  const std::string pid = std::to_string(r.pid);
  if (*r.run_state == RunState::not_running && r.orphan_pid == 0) {
    line(subject(voice) + "not running");
    return t;
  }
  if (r.restart) {
    line(subject(voice) + "restarting (pid " + pid +
         "): " + escape_text(r.command.empty() ? "the payload" : r.command[0]) + " " +
         escape_text(r.restart->last_exit) + "; restart " +
         std::to_string(r.restarts.value_or(0) + 1) + " in " +
         format_seconds(r.restart->next_start_in) + " s");
  } else if (*r.run_state == RunState::running) {
    line(subject(voice) + r.state + " (pid " + pid + ")" +
         (r.payload_status.empty() ? "" : ": " + escape_text(r.payload_status)));
  } else if (r.ended.empty()) {
    line(subject(voice) + "dead (pid " + pid + "), but its pidfile " + r.pidfile.string() +
         " remains");
  } else {
    line(subject(voice) + "dead (pid " + pid + "), pidfile remains: " + escape_text(r.ended));
  }
  if (r.payload) {
    if (r.supervisor)
      line("  payload: pid " + std::to_string(r.payload->pid) + ": " + text_command(r.command));
    else
      line("  command: " + text_command(r.command));
    line("  uptime:  " + uptime_text(r.payload->uptime, voice));
    line("  memory:  " + kib(r.payload->rss_kib));
  }
  if (r.supervisor)
    line("  supervisor: pid " + std::to_string(r.supervisor->pid) + ", up " +
         uptime_text(r.supervisor->uptime, voice) + ", " + kib(r.supervisor->rss_kib));
  if (r.restarts && *r.restarts != 0) line("  restarts: " + std::to_string(*r.restarts));
  if (!r.log.empty() && (voice.log_without_tail || !r.log_tail.empty())) {
    line("  log:     " + escape_text(r.log));
    for (const auto& l : r.log_tail) line("    " + escape_text(l));
  }
  return t;
}

Outcome status_outcome(const StatusReport& report, bool json, const Voice& voice) {
  Outcome o;
  o.exit_code = report.exit_code;
  if (json) o.out(status_json(report));
  if (!report.run_state) {
    o.err(voice.program + ": status unknown: " + report.error);
    return o;
  }
  if (json) return o;
  const std::string text = status_text(report, voice);
  for (size_t start = 0; start < text.size();) {
    const size_t end = text.find('\n', start);
    o.out(text.substr(start, end - start));
    start = end + 1;
  }
  return o;
}

std::string human_duration(std::chrono::seconds d) {
  long long s = d.count();
  if (s < 60) return std::to_string(s) + " s";
  if (s < 3600) return std::to_string(s / 60) + " min " + std::to_string(s % 60) + " s";
  if (s < 86400) return std::to_string(s / 3600) + " h " + std::to_string(s % 3600 / 60) + " min";
  return std::to_string(s / 86400) + " days " + std::to_string(s % 86400 / 3600) + " h";
}

// ---- stop, reload, reopen, signal ----

Outcome stop_outcome(const StopResult& result, std::chrono::milliseconds timeout,
                     bool quiet_if_not_running, const Voice& voice) {
  Outcome o;
  const std::string me = voice.program + ": ";
  for (const auto& note : result.notes) o.err(me + note);
  switch (result.outcome) {
    case StopResult::Outcome::not_running:
      if (!quiet_if_not_running) o.out(answer(voice, "not running"));
      break;
    case StopResult::Outcome::killed:
      // A daemon that is its own program got SIGTERM itself; a supervised
      // one passed its stop signal on and was given `timeout`.
      o.err(me + "pid " + std::to_string(result.pid) +
            (voice.daemon_name.empty() ? " did not stop within " + format_seconds(timeout) + " s"
                                       : std::string(" ignored SIGTERM")) +
            "; killed it with SIGKILL");
      break;
    case StopResult::Outcome::stopped:
      break;
  }
  if (result.cleanup_error) o.err(me + "warning: " + result.cleanup_error->message());
  return o;
}

Outcome reload_outcome(const RequestResult& result, const Voice& voice) {
  Outcome o;
  switch (result.outcome) {
    case RequestResult::Outcome::done:
      break;
    case RequestResult::Outcome::not_running:
      o.exit_code = static_cast<int>(ExitCode::reload_not_running);
      o.err(voice.program + ": cannot reload: not running");
      break;
    case RequestResult::Outcome::failed:
      o.exit_code = static_cast<int>(ExitCode::failure);
      o.err(voice.program + ": reload failed: " + result.why);
      break;
  }
  return o;
}

Outcome reopen_outcome(pid_t signalled, const Voice& voice) {
  Outcome o;
  if (signalled == 0) {
    o.exit_code = static_cast<int>(ExitCode::reload_not_running);
    o.err(voice.program + ": cannot reopen: not running");
  }
  return o;
}

Outcome signal_outcome(const RequestResult& result, const Voice& voice) {
  Outcome o;
  switch (result.outcome) {
    case RequestResult::Outcome::done:
      break;
    case RequestResult::Outcome::not_running:
      o.exit_code = static_cast<int>(ExitCode::reload_not_running);
      o.err(voice.program + ": cannot signal: not running" +
            (result.why.empty() ? "" : " (" + result.why + ")"));
      break;
    case RequestResult::Outcome::failed:
      o.exit_code = static_cast<int>(ExitCode::failure);
      o.err(voice.program + ": cannot signal: " + result.why);
      break;
  }
  return o;
}

// ---- run ----

Result<LockedPidfile> lock_pidfile_for_run(const std::filesystem::path& path, bool supervisor) {
  auto acquired = LockedPidfile::acquire(path, supervisor);
  if (!acquired) return fail(std::move(acquired).error());
  if (auto* taken = std::get_if<LockedPidfile::Taken>(&*acquired)) {
    Error e;
    e.detail = path.string() + " is locked by " +
               (taken->holder > 0 ? "pid " + std::to_string(taken->holder)
                                  : std::string("another process"));
    return fail(std::move(e));
  }
  LockedPidfile pidfile = std::move(std::get<LockedPidfile>(*acquired));
  if (auto w = pidfile.write_pid(::getpid()); !w) {
    (void)pidfile.remove();
    return fail(std::move(w).error());
  }
  return pidfile;
}

}  // namespace daemonkit
