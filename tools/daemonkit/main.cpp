// daemonkit: run any program as a well-behaved daemon.
//
// This file turns the command line into actions and exit codes, and prints
// what the commands answer: start and run are here; the commands that act
// on a running daemon (commands.cpp) return what to print. The supervisor
// (supervisor/) is what runs between the pidfile and the payload.
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

#include "commands.hpp"
#include "daemonkit/control.hpp"
#include "daemonkit/detach.hpp"
#include "daemonkit/pidfile.hpp"
#include "daemonkit/signals.hpp"
#include "daemonkit/spawn.hpp"
#include "options.hpp"
#include "supervisor/config.hpp"
#include "supervisor/loop.hpp"
#include "supervisor/state_file.hpp"

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

// Prints what a command answered (commands.hpp); returns its exit code.
int print(const daemonkit::Outcome& outcome) {
  for (const auto& line : outcome.lines)
    say(line.stream == daemonkit::Line::Stream::out ? stdout : stderr, line.text);
  return outcome.exit_code;
}

int code(ExitCode c) {
  return static_cast<int>(c);
}

int report(const Error& e, std::string_view action, Command c) {
  return print(dkcli::report_error(e, action, c));
}

// Everything that can be checked before forking is checked here, so that
// most mistakes are reported by the command itself, with the right code;
// the supervisor gets the outcome, resolved once (supervisor/config.hpp).
daemonkit::Result<dkcli::SupervisorConfig> resolve(const Options& o, bool foreground) {
  dkcli::SupervisorConfig c;
  c.foreground = foreground;
  c.pidfile = o.pidfile;  // made absolute in main(), for every command
  if ((o.user || o.chroot) && ::geteuid() != 0)
    return daemonkit::fail(Error::because(o.user ? "use --user" : "use --chroot", "", "needs root",
                                          ErrorKind::privilege));
  if (o.user) {
    auto creds = daemonkit::lookup_credentials(*o.user);
    if (!creds) return daemonkit::fail(std::move(creds).error());
    c.credentials = std::move(*creds);
  }
  // The payload's environment.
  if (!o.clear_env)
    for (char** e = environ; *e != nullptr; ++e) c.env.emplace_back(*e);
  for (const auto& assignment : o.env) {
    const std::string prefix = assignment.first + "=";
    std::erase_if(c.env, [&](const std::string& e) { return e.rfind(prefix, 0) == 0; });
    c.env.push_back(prefix + assignment.second);
  }
  if (o.chroot) c.chroot = daemonkit::absolute_path(*o.chroot);
  // PROGRAM, searched in the payload's PATH (or a sane default).
  std::string path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (const auto& e : c.env)
    if (e.rfind("PATH=", 0) == 0) path = e.substr(5);
  auto program = daemonkit::find_program(o.program[0], path, c.chroot.value_or(""));
  if (!program) return daemonkit::fail(std::move(program).error());
  c.program = *program;
  c.argv = o.program;
  // --chdir is taken inside the new root with --chroot.
  if (o.chdir) c.working_directory = o.chroot ? *o.chdir : daemonkit::absolute_path(*o.chdir);
  c.umask = o.umask.value_or(022);
  c.nice = o.nice;
  c.limits = o.limits;
  c.oom_score_adj = o.oom_score_adj;
  c.no_new_privs = o.no_new_privs;
  // Streams: --stderr follows --stdout into one pipe, except under `run`,
  // where both default to run's own.
  if (o.stdin_path) c.stdin_path = daemonkit::absolute_path(*o.stdin_path);
  if (o.stdout_path) c.stdout_path = daemonkit::absolute_path(*o.stdout_path);
  if (o.stderr_path) c.stderr_path = daemonkit::absolute_path(*o.stderr_path);
  if (c.stdout_path && (c.stderr_path ? *c.stderr_path == *c.stdout_path : !foreground)) {
    c.stderr_path.reset();
    c.stderr_to_stdout = true;
  }
  if (o.log_max_size)
    c.rotation = daemonkit::OutputFile::Rotation{*o.log_max_size, o.log_keep_or_default()};
  c.syslog_tag = o.syslog_tag;
  c.notify = o.notify;
  c.ready_timeout = o.ready_timeout;
  if (o.ready_after && o.ready_after->count() > 0) c.ready_after = o.ready_after;
  c.watchdog = o.watchdog;
  c.reload_notify = o.reload_notify;
  c.respawn = o.respawn;
  c.max_restarts = o.max_restarts;
  c.no_respawn_on = o.no_respawn_on;
  c.stop_signal = o.payload_stop_signal;
  c.stop_timeout = o.timeout;
  if (foreground)
    if (const char* n = std::getenv("NOTIFY_SOCKET"); n != nullptr) c.outer_notify = n;
  return c;
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
    auto record = dkcli::read_record_of(pidfile, st.pid);
    if (record && record->phase != DaemonRecord::Phase::starting) return Holder::ready;
    // (A supervisor of an older daemonkit writes its record only once up.)
    const bool unrecorded = !record && !st.older_supervisor;
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
std::optional<int> start_once(const dkcli::SupervisorConfig& config, const Outcome& outcome);

int start(const Options& o) {
  auto config = resolve(o, false);
  if (!config) return report(config.error(), "start", Command::start);
  const auto deadline = std::chrono::steady_clock::now() + config->start_wait();
  // Another daemon holds the pidfile: success once it is up; a try of our
  // own once it ends before that (nullopt).
  auto outcome = [&](const daemonkit::DaemonStatus& holder_status) -> std::optional<int> {
    const pid_t holder = holder_status.pid;
    switch (await_holder(config->pidfile, holder_status, deadline)) {
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
    auto st = daemonkit::query_status(config->pidfile);
    if (st && st->state == daemonkit::RunState::running) {
      if (auto exit_code = outcome(*st)) return *exit_code;
      continue;
    }
    if (auto exit_code = start_once(*config, outcome)) return *exit_code;
  }
}

// One try at detaching: the exit code, or nullopt when another start's
// daemon took the pidfile first and ended before it was up.
std::optional<int> start_once(const dkcli::SupervisorConfig& config, const Outcome& outcome) {
  daemonkit::DetachOptions d;
  d.pidfile = config.pidfile;
  d.keep_signals_blocked = true;
  d.supervisor = true;
  // The supervisor enforces --ready-timeout itself and cleans up; this is
  // only a backstop in case it cannot.
  d.ready_timeout = config.start_wait();
  auto started = daemonkit::detach(d, [&](daemonkit::Daemon& daemon) {
    // Signals stay blocked (keep_signals_blocked) until the handlers are
    // installed.
    auto hub = dkcli::install_supervisor_signals();
    if (!hub) {
      daemon.fail(hub.error());
      return 1;
    }
    daemonkit::unblock_all_signals();
    return dkcli::supervise(config, **hub, &daemon, daemon.pidfile());
  });
  if (!started) return report(started.error(), "start", Command::start);
  if (started->how == daemonkit::Started::How::already_running) {
    if (started->pid > 0) {
      auto st = daemonkit::query_status(config.pidfile);
      if (st && st->state == daemonkit::RunState::running && st->pid == started->pid)
        return outcome(*st);
      return std::nullopt;  // gone meanwhile: try again
    }
    say(stdout, "daemonkit: already running (the pidfile is locked by another process)");
  }
  return 0;
}

int run(const Options& o) {
  // Handlers first: a SIGTERM that arrives once the pidfile is locked must
  // end in a clean stop, not in a pidfile left behind.
  auto hub = dkcli::install_supervisor_signals();
  if (!hub) return report(hub.error(), "run", Command::run);
  auto config = resolve(o, true);
  if (!config) return report(config.error(), "run", Command::run);
  std::optional<daemonkit::LockedPidfile> pidfile;
  if (!config->pidfile.empty()) {
    auto locked = daemonkit::lock_pidfile_for_run(config->pidfile, true);
    if (!locked) return report(locked.error(), "run", Command::run);
    pidfile.emplace(std::move(*locked));
  }
  return dkcli::supervise(*config, **hub, nullptr, pidfile);
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
      return print(dkcli::stop(o, false));
    case Command::restart: {
      // Check the new command line before stopping the old daemon.
      auto config = resolve(o, false);
      if (!config) return report(config.error(), "restart", Command::restart);
      int rc = print(dkcli::stop(o, true));
      return rc != 0 ? rc : start(o);
    }
    case Command::reload:
      return print(dkcli::reload(o));
    case Command::reopen:
      return print(dkcli::reopen(o));
    case Command::status:
      return print(dkcli::status(o));
    case Command::signal:
      return print(dkcli::send_signal(o));
    case Command::none:
      break;
  }
  return code(ExitCode::usage);
}
