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

// Prints what a command answered (commands.hpp); returns its exit code.
int print(const daemonkit::Outcome& outcome) {
  for (const auto& line : outcome.lines)
    say(line.stream == daemonkit::Line::Stream::out ? stdout : stderr, line.text);
  return outcome.exit_code;
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
  return print(dkcli::report_error(e, action, c));
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
  if (!st.supervisor && !st.older_supervisor) return Holder::ready;
  auto handle = daemonkit::Pidfd::open(st.pid);
  if (!handle) return Holder::ended;
  // A supervisor records itself right after it took the lock; a record
  // still missing after a second was deleted from outside: the daemon's
  // lock is then all there is to go by.
  const auto no_record_until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  for (;;) {
    auto record = dkcli::read_record(pidfile);
    if (record && record->supervisor == st.pid && record->phase != DaemonRecord::Phase::starting)
      return Holder::ready;
    // (A supervisor of an older daemonkit writes its record only once up.)
    if ((!record || record->supervisor != st.pid) && !st.older_supervisor &&
        std::chrono::steady_clock::now() >= no_record_until)
      return Holder::ready;
    if (std::chrono::steady_clock::now() >= deadline) return Holder::still_starting;
    // Wakes at once when the holder ends; looks at the record again every
    // 20 ms meanwhile (a rare wait: two starts at once).
    auto ended = handle->wait_for_exit(std::chrono::milliseconds(20));
    if (ended && *ended) return Holder::ended;
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
    auto locked = daemonkit::lock_pidfile_for_run(plan->options.pidfile, true);
    if (!locked) return report(locked.error(), "run", Command::run);
    pidfile.emplace(std::move(*locked));
  }
  return dkcli::supervise(*plan, **hub, nullptr, pidfile);
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
      auto plan = make_plan(o, false);
      if (!plan) return report(plan.error(), "restart", Command::restart);
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
