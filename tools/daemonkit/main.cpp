// daemonkit: run any program as a well-behaved daemon.
//
// This file turns the command line into actions and exit codes; the
// supervisor (supervisor/) is what runs between the pidfile and the payload.
#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "daemonkit/control.hpp"
#include "daemonkit/detach.hpp"
#include "daemonkit/output.hpp"
#include "daemonkit/pidfile.hpp"
#include "daemonkit/signals.hpp"
#include "daemonkit/spawn.hpp"
#include "daemonkit/text.hpp"
#include "options.hpp"
#include "supervisor/leftovers.hpp"
#include "supervisor/state_file.hpp"
#include "supervisor/supervisor.hpp"

extern char** environ;

namespace {

using daemonkit::Error;
using daemonkit::ErrorKind;
using daemonkit::ExitCode;
using dkcli::Command;
using dkcli::DaemonRecord;
using dkcli::Options;

void say(std::FILE* to, const std::string& line) {
  std::fprintf(to, "%s\n", line.c_str());
  std::fflush(to);
}

int code(ExitCode c) {
  return static_cast<int>(c);
}

// The supervisor's signals, besides TERM, INT, HUP and CHLD.
auto install_supervisor_signals() {
  return daemonkit::SignalHub::install(
      {SIGQUIT, SIGUSR1, SIGUSR2, daemonkit::reload_request_signal(),
       daemonkit::reopen_request_signal(), daemonkit::signal_request_signal()});
}

int report(const Error& e, std::string_view action, Command c) {
  if (e.kind == ErrorKind::usage) {
    say(stderr, "daemonkit: " + (e.op.empty() ? e.detail : e.message()));
    say(stderr, dkcli::usage(c));
    return code(ExitCode::usage);
  }
  say(stderr, "daemonkit: cannot " + std::string(action) + ": " + e.message());
  return code(daemonkit::exit_code_for(e));
}

// Everything that can be checked before forking is checked here, so that
// most mistakes are reported by the command itself, with the right code.
daemonkit::Result<dkcli::Plan> make_plan(Options o, bool foreground) {
  dkcli::Plan plan;
  plan.foreground = foreground;
  o.pidfile = daemonkit::absolute_path(o.pidfile);
  for (auto* p : {&o.stdout_path, &o.stderr_path, &o.stdin_path})
    if (*p) **p = daemonkit::absolute_path(**p);
  if (o.chroot) o.chroot = daemonkit::absolute_path(*o.chroot);
  if (o.chdir && !o.chroot) o.chdir = daemonkit::absolute_path(*o.chdir);
  if ((o.user || o.chroot) && ::geteuid() != 0)
    return daemonkit::fail(Error::because(o.user ? "use --user" : "use --chroot", "", "needs root",
                                          ErrorKind::privilege));
  if (o.user) {
    auto c = daemonkit::lookup_credentials(*o.user);
    if (!c) return daemonkit::fail(std::move(c).error());
    plan.credentials = std::move(*c);
  }
  // The payload's environment.
  if (!o.clear_env)
    for (char** e = environ; *e != nullptr; ++e) plan.env.emplace_back(*e);
  for (const auto& assignment : o.env) {
    const std::string prefix = assignment.first + "=";
    std::erase_if(plan.env, [&](const std::string& e) { return e.rfind(prefix, 0) == 0; });
    plan.env.push_back(prefix + assignment.second);
  }
  // PROGRAM, searched in the payload's PATH (or a sane default).
  std::string path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (const auto& e : plan.env)
    if (e.rfind("PATH=", 0) == 0) path = e.substr(5);
  auto program =
      daemonkit::find_program(o.program[0], path, o.chroot ? *o.chroot : std::filesystem::path());
  if (!program) return daemonkit::fail(std::move(program).error());
  plan.program = *program;
  if (foreground) {
    if (const char* n = std::getenv("NOTIFY_SOCKET"); n != nullptr) plan.outer_notify = n;
  }
  plan.options = std::move(o);
  return plan;
}

// What a start finds when another daemon holds the pidfile.
enum class Holder { ready, ended, still_starting };

// A supervisor records "running" once its payload is up (with --notify,
// once READY=1 came), so holding the lock is not yet "up" while another
// start waits for it. Waits for that daemon's outcome, up to `deadline`:
// ready, or ended before it was (the lock is free again), or still
// starting. A holder that is not a supervisor (its lock says so) is up once
// it holds the lock.
Holder await_holder(const std::filesystem::path& pidfile, const daemonkit::DaemonStatus& st,
                    std::chrono::steady_clock::time_point deadline) {
  using clock = std::chrono::steady_clock;
  if (!st.supervisor && !st.older_supervisor) return Holder::ready;
  auto handle = daemonkit::Pidfd::open(st.pid);
  if (!handle) return Holder::ended;
  // The supervisor replaces its record (renamed into place) at each change
  // of phase, and its pidfd reports its end: wait for either, then look
  // again. Watched before the first look, so no change falls in between.
  auto watch = daemonkit::EntryWatch::open(dkcli::state_path(pidfile));
  // A supervisor records itself right after it took the lock; a record
  // still missing after a second was deleted from outside: the daemon's
  // lock is then all there is to go by.
  const auto no_record_until = clock::now() + std::chrono::seconds(1);
  for (;;) {
    auto record = dkcli::read_record(pidfile);
    if (record && record->supervisor == st.pid && record->phase != DaemonRecord::Phase::starting)
      return Holder::ready;
    // (A supervisor of an older daemonkit writes its record only once up.)
    const bool unrecorded = (!record || record->supervisor != st.pid) && !st.older_supervisor;
    const auto now = clock::now();
    if (unrecorded && now >= no_record_until) return Holder::ready;
    if (now >= deadline) return Holder::still_starting;
    auto woke =
        watch.wait_until(unrecorded ? std::min(deadline, no_record_until) : deadline, &*handle);
    if (woke && *woke == daemonkit::EntryWatch::Wake::exited) return Holder::ended;
    // Else a change or a deadline (or a failed poll: only ENOMEM, passing):
    // look again.
  }
}

using Outcome = std::function<std::optional<int>(const daemonkit::DaemonStatus&)>;
std::optional<int> start_once(const dkcli::Plan& plan, const Outcome& outcome);

int start(const Options& o) {
  auto plan = make_plan(o, false);
  if (!plan) return report(plan.error(), "start", Command::start);
  const auto deadline =
      std::chrono::steady_clock::now() + plan->options.ready_timeout + std::chrono::seconds(1);
  // Another daemon holds the pidfile: success once it is up; a try of our
  // own once it ends before that (nullopt).
  auto outcome = [&](const daemonkit::DaemonStatus& holder_status) -> std::optional<int> {
    const pid_t holder = holder_status.pid;
    switch (await_holder(plan->options.pidfile, holder_status, deadline)) {
      case Holder::ready:
        say(stdout, "daemonkit: already running (pid " + std::to_string(holder) + ")");
        return 0;
      case Holder::still_starting:
        say(stderr, "daemonkit: cannot start: pid " + std::to_string(holder) +
                        " holds the pidfile but was not up within the readiness timeout");
        return code(ExitCode::failure);
      case Holder::ended:
        break;
    }
    return std::nullopt;
  };
  for (;;) {
    auto st = daemonkit::query_status(plan->options.pidfile);
    if (st && st->state == daemonkit::RunState::running) {
      if (auto exit_code = outcome(*st)) return *exit_code;
      continue;
    }
    if (auto exit_code = start_once(*plan, outcome)) return *exit_code;
  }
}

// One try at detaching: the exit code, or nullopt when another start's
// daemon took the pidfile first and ended before it was up.
std::optional<int> start_once(const dkcli::Plan& plan, const Outcome& outcome) {
  daemonkit::DetachOptions d;
  d.pidfile = plan.options.pidfile;
  d.keep_signals_blocked = true;
  d.supervisor = true;
  // The supervisor enforces --ready-timeout itself and cleans up; this is
  // only a backstop in case it cannot.
  d.ready_timeout = plan.options.ready_timeout + std::chrono::seconds(10);
  auto started = daemonkit::detach(d, [&](daemonkit::Daemon& daemon) {
    auto hub = install_supervisor_signals();
    if (!hub) {
      daemon.fail(hub.error());
      return 1;
    }
    daemonkit::unblock_all_signals();
    return dkcli::supervise(plan, **hub, &daemon, daemon.pidfile());
  });
  if (!started) return report(started.error(), "start", Command::start);
  if (started->how == daemonkit::Started::How::already_running) {
    if (started->pid > 0) {
      auto st = daemonkit::query_status(plan.options.pidfile);
      if (st && st->state == daemonkit::RunState::running && st->pid == started->pid)
        return outcome(*st);
      return std::nullopt;  // gone meanwhile: try again
    }
    say(stdout, "daemonkit: already running (the pidfile is locked by another process)");
  }
  return 0;
}

int run(const Options& o) {
  auto hub = install_supervisor_signals();
  if (!hub) return report(hub.error(), "run", Command::run);
  auto plan = make_plan(o, true);
  if (!plan) return report(plan.error(), "run", Command::run);
  std::optional<daemonkit::LockedPidfile> pidfile;
  if (!plan->options.pidfile.empty()) {
    auto acquired = daemonkit::LockedPidfile::acquire(plan->options.pidfile, true);
    if (!acquired) return report(acquired.error(), "run", Command::run);
    if (auto* taken = std::get_if<daemonkit::LockedPidfile::Taken>(&*acquired)) {
      say(stderr, "daemonkit: cannot run: " + plan->options.pidfile.string() + " is locked by " +
                      (taken->holder > 0 ? "pid " + std::to_string(taken->holder)
                                         : std::string("another process")));
      return code(ExitCode::failure);
    }
    pidfile.emplace(std::move(std::get<daemonkit::LockedPidfile>(*acquired)));
    if (auto w = pidfile->write_pid(::getpid()); !w) {
      (void)pidfile->remove();
      return report(w.error(), "run", Command::run);
    }
  }
  return dkcli::supervise(*plan, **hub, nullptr, pidfile);
}

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
// them, says so (on standard error and in the daemon's log), and removes
// the record. No lock is taken: a start meanwhile ends the same processes
// before its payload runs, and then holds the pidfile, which is not removed
// while locked. Returns whether anything was left.
bool stop_leftovers(const Options& o) {
  auto record = dkcli::read_record(o.pidfile);
  if (!record) return false;
  DaemonRecord r = *record;
  if (o.stop_signal) r.stop_signal = *o.stop_signal;
  const auto lines = dkcli::end_leftovers(r, o.timeout);
  for (const auto& l : lines) say(stderr, "daemonkit: " + l);
  if (!lines.empty()) tell_daemon_log(r, lines);
  // Only the record we acted on: a new supervisor may have written its own.
  if (auto now = dkcli::read_record(o.pidfile); now && now->supervisor == r.supervisor)
    dkcli::remove_record(o.pidfile);
  return !lines.empty();
}

int stop(const Options& o, bool quiet) {
  daemonkit::StopOptions s;
  s.signal = o.stop_signal.value_or(0);
  s.timeout = o.timeout;
  auto st = daemonkit::query_status(o.pidfile);
  if (!st) return report(st.error(), "stop", Command::stop);
  if (st->state != daemonkit::RunState::running && stop_leftovers(o)) {
    if (auto removed = daemonkit::remove_stale_pidfile(o.pidfile); !removed)
      say(stderr, "daemonkit: warning: " + removed.error().message());
    return 0;
  }
  auto stopped = daemonkit::stop_daemon(o.pidfile, s);
  if (!stopped) return report(stopped.error(), "stop", Command::stop);
  std::error_code ec;
  if (!std::filesystem::exists(o.pidfile, ec)) dkcli::remove_record(o.pidfile);
  for (const auto& note : stopped->notes) say(stderr, "daemonkit: " + note);
  switch (stopped->outcome) {
    case daemonkit::StopResult::Outcome::not_running:
      if (!quiet) say(stdout, "daemonkit: not running");
      break;
    case daemonkit::StopResult::Outcome::killed:
      say(stderr, "daemonkit: pid " + std::to_string(stopped->pid) + " did not stop within " +
                      daemonkit::format_seconds(o.timeout) + " s; killed it with SIGKILL");
      break;
    case daemonkit::StopResult::Outcome::stopped:
      break;
  }
  if (stopped->cleanup_error)
    say(stderr, "daemonkit: warning: " + stopped->cleanup_error->message());
  return 0;
}

int reopen(const Options& o) {
  auto pid = daemonkit::reopen_daemon(o.pidfile);
  if (!pid) return report(pid.error(), "reopen", o.command);
  if (*pid == 0) {
    say(stderr, "daemonkit: cannot reopen: not running");
    return code(ExitCode::reload_not_running);
  }
  return 0;
}

int reload(const Options& o) {
  auto r = daemonkit::reload_daemon(o.pidfile, o.timeout);
  if (!r) return report(r.error(), "reload", o.command);
  switch (r->outcome) {
    case daemonkit::RequestResult::Outcome::done:
      return 0;
    case daemonkit::RequestResult::Outcome::not_running:
      say(stderr, "daemonkit: cannot reload: not running");
      return code(ExitCode::reload_not_running);
    case daemonkit::RequestResult::Outcome::failed:
      break;
  }
  say(stderr, "daemonkit: reload failed: " + r->why);
  return code(ExitCode::failure);
}

int send_signal(const Options& o) {
  auto r = daemonkit::signal_payload(o.pidfile, *o.stop_signal, o.group, o.timeout);
  if (!r) return report(r.error(), "signal", o.command);
  switch (r->outcome) {
    case daemonkit::RequestResult::Outcome::done:
      return 0;
    case daemonkit::RequestResult::Outcome::not_running:
      say(stderr,
          "daemonkit: cannot signal: not running" + (r->why.empty() ? "" : " (" + r->why + ")"));
      return code(ExitCode::reload_not_running);
    case daemonkit::RequestResult::Outcome::failed:
      break;
  }
  say(stderr, "daemonkit: cannot signal: " + r->why);
  return code(ExitCode::failure);
}

std::string human_duration(std::chrono::seconds d) {
  long long s = d.count();
  if (s < 60) return std::to_string(s) + " s";
  if (s < 3600) return std::to_string(s / 60) + " min " + std::to_string(s % 60) + " s";
  if (s < 86400) return std::to_string(s / 3600) + " h " + std::to_string(s % 3600 / 60) + " min";
  return std::to_string(s / 86400) + " days " + std::to_string(s % 86400 / 3600) + " h";
}

int status(const Options& o) {
  auto st = daemonkit::query_status(o.pidfile);
  if (!st) {
    if (o.json)
      say(stdout, "{\"state\":\"unknown\",\"error\":" +
                      daemonkit::json_string(st.error().message()) + ",\"exit_code\":4}");
    say(stderr, "daemonkit: status unknown: " + st.error().message());
    return code(ExitCode::privilege);
  }
  // The record is believed only as far as the processes it names match:
  // the supervisor must be the lock holder, the payload its child.
  auto record = dkcli::read_record(o.pidfile);
  const bool running = st->state == daemonkit::RunState::running;
  if (record && running && record->supervisor != st->pid) record.reset();
  pid_t payload = 0;
  if (running && record && record->payload > 0)
    for (pid_t c : daemonkit::child_processes(st->pid))
      if (c == record->payload) payload = c;
  const bool restarting =
      running && record && record->phase == DaemonRecord::Phase::restarting && payload == 0;
  // A payload that outlived its killed supervisor.
  std::optional<dkcli::Orphan> orphan;
  if (!running && record) orphan = dkcli::find_orphan(*record);
  const auto info = payload ? daemonkit::read_process_info(payload) : daemonkit::ProcessInfo{};
  const auto sup = running ? daemonkit::read_process_info(st->pid) : daemonkit::ProcessInfo{};
  const std::string log = record ? record->log : "";
  const auto tail = log.empty() ? std::vector<std::string>{}
                                : daemonkit::tail_lines(log, 5, output_owner(record));
  int rc = code(daemonkit::exit_code_for(st->state));
  std::string name = st->state == daemonkit::RunState::running                ? "running"
                     : st->state == daemonkit::RunState::dead_pidfile_remains ? "dead"
                                                                              : "not running";
  if (restarting) {
    rc = code(ExitCode::restarting);
    name = "restarting";
  } else if (running && payload == 0 && record && record->phase == DaemonRecord::Phase::starting) {
    name = "starting";  // no payload yet (a predecessor's is being ended)
  }
  const std::vector<std::string> command =
      record && !record->command.empty() ? record->command : info.command;
  long long next_in_ms = 0;
  if (restarting && record->next_start_ms > 0) {
    const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    next_in_ms = std::max<long long>(0, record->next_start_ms - now);
  }
  std::string ended;
  if (st->state == daemonkit::RunState::dead_pidfile_remains)
    ended = record && !record->ended.empty() ? record->ended : "the daemon died";
  if (orphan)
    ended = "its supervisor was killed; its payload " + std::to_string(orphan->process.pid()) +
            " (" + orphan->name + ") still runs (daemonkit stop ends it)";

  if (o.json) {
    std::string j = "{\"state\":" + daemonkit::json_string(name) +
                    ",\"exit_code\":" + std::to_string(rc) + ",\"pid\":" + std::to_string(st->pid);
    if (running)
      j += ",\"supervisor_uptime_seconds\":" + std::to_string(sup.uptime.count()) +
           ",\"supervisor_rss_kib\":" + std::to_string(sup.rss_kib);
    if (payload)
      j += ",\"payload_pid\":" + std::to_string(payload) +
           ",\"uptime_seconds\":" + std::to_string(info.uptime.count()) +
           ",\"rss_kib\":" + std::to_string(info.rss_kib);
    if (orphan) j += ",\"orphan_pid\":" + std::to_string(orphan->process.pid());
    if (!command.empty() && (payload || record)) {
      j += ",\"command\":[";
      for (size_t i = 0; i < command.size(); ++i)
        j += (i ? "," : "") + daemonkit::json_string(command[i]);
      j += "]";
    }
    if (record) j += ",\"restarts\":" + std::to_string(record->restarts);
    if (restarting)
      j += ",\"last_exit\":" + daemonkit::json_string(record->last_exit) +
           ",\"next_start_in_ms\":" + std::to_string(next_in_ms);
    if (record && !record->status.empty())
      j += ",\"status\":" + daemonkit::json_string(record->status);
    if (!ended.empty()) j += ",\"ended\":" + daemonkit::json_string(ended);
    if (!log.empty()) {
      j += ",\"log\":" + daemonkit::json_string(log) + ",\"log_tail\":[";
      for (size_t i = 0; i < tail.size(); ++i)
        j += (i ? "," : "") + daemonkit::json_string(tail[i]);
      j += "]";
    }
    say(stdout, j + "}");
    return rc;
  }

  if (st->state == daemonkit::RunState::not_running && !orphan) {
    say(stdout, "not running");
    return rc;
  }
  if (restarting) {
    say(stdout, "restarting (pid " + std::to_string(st->pid) +
                    "): " + daemonkit::escape_text(command.empty() ? "the payload" : command[0]) +
                    " " + daemonkit::escape_text(record->last_exit) + "; restart " +
                    std::to_string(record->restarts + 1) + " in " +
                    daemonkit::format_seconds(std::chrono::milliseconds(next_in_ms)) + " s");
  } else if (running) {
    std::string line = name + " (pid " + std::to_string(st->pid) + ")";
    if (record && !record->status.empty()) line += ": " + daemonkit::escape_text(record->status);
    say(stdout, line);
  } else {
    say(stdout, "dead (pid " + std::to_string(st->pid) +
                    "), pidfile remains: " + daemonkit::escape_text(ended));
  }
  if (payload) {
    std::string cmd;
    for (const auto& a : command) cmd += (cmd.empty() ? "" : " ") + daemonkit::escape_text(a);
    say(stdout, "  payload: pid " + std::to_string(payload) + ": " + cmd);
    say(stdout, "  uptime:  " + human_duration(info.uptime));
    say(stdout, "  memory:  " + std::to_string(info.rss_kib) + " KiB resident");
  }
  if (running)
    say(stdout, "  supervisor: pid " + std::to_string(st->pid) + ", up " +
                    human_duration(sup.uptime) + ", " + std::to_string(sup.rss_kib) +
                    " KiB resident");
  if (record && record->restarts != 0)
    say(stdout, "  restarts: " + std::to_string(record->restarts));
  if (!log.empty()) {
    say(stdout, "  log:     " + daemonkit::escape_text(log));
    for (const auto& line : tail) say(stdout, "    " + daemonkit::escape_text(line));
  }
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string_view> args(argv + (argc > 0 ? 1 : 0), argv + argc);
  auto parsed = dkcli::parse_command_line(args);
  if (!parsed) {
    Command c = Command::none;
    if (!args.empty())
      for (Command k : {Command::start, Command::run, Command::stop, Command::restart,
                        Command::reload, Command::reopen, Command::status, Command::signal})
        if (args[0] == dkcli::command_name(k)) c = k;
    return report(parsed.error(), "", c);
  }
  Options& o = *parsed;
  if (o.help) {
    std::fputs(dkcli::help(o.command).c_str(), stdout);
    return 0;
  }
  if (o.version) {
    say(stdout, "daemonkit " DAEMONKIT_VERSION);
    return 0;
  }
  o.pidfile = daemonkit::absolute_path(o.pidfile);
  switch (o.command) {
    case Command::start:
      return start(o);
    case Command::run:
      return run(o);
    case Command::stop:
      return stop(o, false);
    case Command::restart: {
      // Check the new command line before stopping the old daemon.
      auto plan = make_plan(o, false);
      if (!plan) return report(plan.error(), "restart", Command::restart);
      int rc = stop(o, true);
      return rc != 0 ? rc : start(o);
    }
    case Command::reload:
      return reload(o);
    case Command::reopen:
      return reopen(o);
    case Command::status:
      return status(o);
    case Command::signal:
      return send_signal(o);
    case Command::none:
      break;
  }
  return code(ExitCode::usage);
}
