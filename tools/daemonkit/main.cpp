// daemonkit: run any program as a well-behaved daemon.
//
// This file turns the command line into actions and exit codes; the
// supervisor (supervisor/) is what runs between the pidfile and the payload.
#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "daemonkit/control.hpp"
#include "daemonkit/detach.hpp"
#include "daemonkit/pidfile.hpp"
#include "daemonkit/signals.hpp"
#include "daemonkit/spawn.hpp"
#include "options.hpp"
#include "supervisor/supervisor.hpp"

extern char** environ;

namespace {

using daemonkit::Error;
using daemonkit::ErrorKind;
using daemonkit::ExitCode;
using dkcli::Command;
using dkcli::Options;

void say(std::FILE* to, const std::string& line) {
  std::fprintf(to, "%s\n", line.c_str());
  std::fflush(to);
}

int code(ExitCode c) {
  return static_cast<int>(c);
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

// Prints only printable text from the state file (it is the daemon's).
std::string printable(std::string s) {
  for (char& c : s)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  return s;
}

std::map<std::string, std::string> read_state(const std::filesystem::path& pidfile) {
  std::map<std::string, std::string> m;
  const std::string text = daemonkit::read_head(dkcli::state_path(pidfile), size_t{64} << 10);
  for (size_t start = 0; start < text.size() && m.size() < 32;) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + start, end - start);
    auto eq = line.find('=');
    if (eq != std::string_view::npos)
      m[std::string(line.substr(0, eq))] = printable(std::string(line.substr(eq + 1, 512)));
    start = end + 1;
  }
  return m;
}

// What a start finds when another daemon holds the pidfile.
enum class Holder { ready, ended, still_starting };

// A supervisor writes its state file once its payload is up (with --notify,
// once READY=1 came), so "running" is not yet "up" while another start
// waits for it. Waits for that daemon's outcome, up to `deadline`: ready,
// or ended before it was (the lock is free again), or still starting. A
// holder that is not a daemonkit supervisor counts as ready.
Holder await_holder(const std::filesystem::path& pidfile, pid_t pid,
                    std::chrono::steady_clock::time_point deadline) {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  const auto theirs = std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/exe", ec);
  if (ec || self != theirs) return Holder::ready;
  auto handle = daemonkit::Pidfd::open(pid);
  if (!handle) return Holder::ended;
  for (;;) {
    if (read_state(pidfile)["pid"] == std::to_string(pid)) return Holder::ready;
    if (std::chrono::steady_clock::now() >= deadline) return Holder::still_starting;
    // Wakes at once when the holder ends; looks at the state file again
    // every 20 ms meanwhile (a rare wait: two starts at once).
    auto ended = handle->wait_for_exit(std::chrono::milliseconds(20));
    if (ended && *ended) return Holder::ended;
  }
}

std::optional<int> start_once(const dkcli::Plan& plan,
                              const std::function<std::optional<int>(pid_t)>& outcome);

int start(const Options& o) {
  auto plan = make_plan(o, false);
  if (!plan) return report(plan.error(), "start", Command::start);
  const auto deadline =
      std::chrono::steady_clock::now() + plan->options.ready_timeout + std::chrono::seconds(1);
  // Another daemon holds the pidfile: success once it is up; a try of our
  // own once it ends before that (nullopt).
  auto outcome = [&](pid_t holder) -> std::optional<int> {
    switch (await_holder(plan->options.pidfile, holder, deadline)) {
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
      if (auto exit_code = outcome(st->pid)) return *exit_code;
      continue;
    }
    if (auto exit_code = start_once(*plan, outcome)) return *exit_code;
  }
}

// One try at detaching: the exit code, or nullopt when another start's
// daemon took the pidfile first and ended before it was up.
std::optional<int> start_once(const dkcli::Plan& plan,
                              const std::function<std::optional<int>(pid_t)>& outcome) {
  daemonkit::DetachOptions d;
  d.pidfile = plan.options.pidfile;
  d.keep_signals_blocked = true;
  // The supervisor enforces --ready-timeout itself and cleans up; this is
  // only a backstop in case it cannot.
  d.ready_timeout = plan.options.ready_timeout + std::chrono::seconds(10);
  auto started = daemonkit::detach(d, [&](daemonkit::Daemon& daemon) {
    auto hub = daemonkit::SignalHub::install({SIGQUIT, SIGUSR1, SIGUSR2,
                                              daemonkit::reload_request_signal(),
                                              daemonkit::reopen_request_signal()});
    if (!hub) {
      daemon.fail(hub.error());
      return 1;
    }
    daemonkit::unblock_all_signals();
    return dkcli::supervise(plan, **hub, &daemon, daemon.pidfile());
  });
  if (!started) return report(started.error(), "start", Command::start);
  if (started->how == daemonkit::Started::How::already_running) {
    if (started->pid > 0) return outcome(started->pid);
    say(stdout, "daemonkit: already running (the pidfile is locked by another process)");
  }
  return 0;
}

int run(const Options& o) {
  auto hub =
      daemonkit::SignalHub::install({SIGQUIT, SIGUSR1, SIGUSR2, daemonkit::reload_request_signal(),
                                     daemonkit::reopen_request_signal()});
  if (!hub) return report(hub.error(), "run", Command::run);
  auto plan = make_plan(o, true);
  if (!plan) return report(plan.error(), "run", Command::run);
  std::optional<daemonkit::LockedPidfile> pidfile;
  if (!plan->options.pidfile.empty()) {
    auto acquired = daemonkit::LockedPidfile::acquire(plan->options.pidfile);
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

int stop(const Options& o, bool quiet) {
  daemonkit::StopOptions s;
  s.signal = o.stop_signal;
  s.timeout = o.timeout;
  auto stopped = daemonkit::stop_daemon(o.pidfile, s);
  if (!stopped) return report(stopped.error(), "stop", Command::stop);
  std::error_code ec;
  if (!std::filesystem::exists(o.pidfile, ec))
    std::filesystem::remove(dkcli::state_path(o.pidfile), ec);
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
  // daemonkit's supervisor (it keeps a state file) has a request of its own;
  // any other daemon reopens its files on SIGHUP.
  std::error_code ec;
  const bool supervised = std::filesystem::exists(dkcli::state_path(o.pidfile), ec);
  auto pid = supervised ? daemonkit::signal_daemon(o.pidfile, daemonkit::reopen_request_signal(), 0)
                        : daemonkit::signal_daemon(o.pidfile, SIGHUP);
  if (!pid) return report(pid.error(), "reopen", o.command);
  if (*pid == 0) {
    say(stderr, "daemonkit: cannot reopen: not running");
    return code(ExitCode::reload_not_running);
  }
  return 0;
}

int reload(const Options& o) {
  // A daemonkit supervisor (it keeps a state file) always answers a reload
  // request: at once, or with --reload-notify once the payload confirmed.
  std::error_code ec;
  const bool supervised = std::filesystem::exists(dkcli::state_path(o.pidfile), ec);
  auto r = daemonkit::reload_daemon(o.pidfile, supervised, o.timeout);
  if (!r) return report(r.error(), "reload", o.command);
  switch (r->outcome) {
    case daemonkit::ReloadResult::Outcome::done:
      return 0;
    case daemonkit::ReloadResult::Outcome::not_running:
      say(stderr, "daemonkit: cannot reload: not running");
      return code(ExitCode::reload_not_running);
    case daemonkit::ReloadResult::Outcome::failed:
      break;
  }
  say(stderr, "daemonkit: reload failed: " + r->why);
  return code(ExitCode::failure);
}

std::string human_duration(std::chrono::seconds d) {
  long long s = d.count();
  if (s < 60) return std::to_string(s) + " s";
  if (s < 3600) return std::to_string(s / 60) + " min " + std::to_string(s % 60) + " s";
  if (s < 86400) return std::to_string(s / 3600) + " h " + std::to_string(s % 3600 / 60) + " min";
  return std::to_string(s / 86400) + " days " + std::to_string(s % 86400 / 3600) + " h";
}

// Who owns the daemon's output files: the `user=UID:GID` the supervisor
// records with --user. Root's `status` reads them as that user (and its
// groups), never with root's power over files that user can replace.
// nullopt: read as the caller (no such record, or the caller is not root
// and so has no power to lend); false in `valid` when the record is garbage.
std::optional<daemonkit::Credentials> output_owner(const std::string& field, bool& valid) {
  valid = true;
  if (field.empty() || ::geteuid() != 0) return std::nullopt;
  unsigned long uid = 0, gid = 0;
  char rest = 0;
  if (std::sscanf(field.c_str(), "%lu:%lu%c", &uid, &gid, &rest) != 2) {
    valid = false;
    return std::nullopt;
  }
  daemonkit::Credentials c;
  c.uid = static_cast<uid_t>(uid);
  c.gid = static_cast<gid_t>(gid);
  c.user = std::to_string(uid);
  if (const struct passwd* pw = ::getpwuid(c.uid))
    if (auto named =
            daemonkit::lookup_credentials(std::string(pw->pw_name) + ":" + std::to_string(gid)))
      return std::move(*named);
  return c;  // no such user any more: its ids, no supplementary groups
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
  auto state = read_state(o.pidfile);
  const int rc = code(daemonkit::exit_code_for(st->state));
  // The payload: named by the state file, and only believed while it is a
  // child of the running supervisor.
  pid_t payload = 0;
  if (st->state == daemonkit::RunState::running && state.count("payload")) {
    pid_t p = static_cast<pid_t>(std::atol(state["payload"].c_str()));
    for (pid_t c : daemonkit::child_processes(st->pid))
      if (c == p) payload = p;
  }
  const auto info = payload ? daemonkit::read_process_info(payload) : daemonkit::ProcessInfo{};
  const auto sup = st->state == daemonkit::RunState::running ? daemonkit::read_process_info(st->pid)
                                                             : daemonkit::ProcessInfo{};
  const std::string log = state.count("log") ? state["log"] : "";
  bool owner_known = true;
  const auto owner = output_owner(state.count("user") ? state["user"] : "", owner_known);
  const auto tail = log.empty() || !owner_known ? std::vector<std::string>{}
                                                : daemonkit::tail_lines(log, 5, owner);
  const char* names[] = {"running", "dead", "not running"};
  const std::string name = names[static_cast<int>(st->state)];

  if (o.json) {
    std::string j = "{\"state\":" + daemonkit::json_string(name) +
                    ",\"exit_code\":" + std::to_string(rc) + ",\"pid\":" + std::to_string(st->pid);
    if (payload) {
      j += ",\"payload_pid\":" + std::to_string(payload) + ",\"command\":[";
      for (size_t i = 0; i < info.command.size(); ++i)
        j += (i ? "," : "") + daemonkit::json_string(info.command[i]);
      j += "],\"uptime_seconds\":" + std::to_string(sup.uptime.count()) +
           ",\"rss_kib\":" + std::to_string(info.rss_kib) +
           ",\"supervisor_rss_kib\":" + std::to_string(sup.rss_kib);
    }
    if (state.count("restarts"))
      j += ",\"restarts\":" + std::to_string(std::atol(state["restarts"].c_str()));
    if (state.count("status")) j += ",\"status\":" + daemonkit::json_string(state["status"]);
    if (state.count("ended")) j += ",\"ended\":" + daemonkit::json_string(state["ended"]);
    if (!log.empty()) {
      j += ",\"log\":" + daemonkit::json_string(log) + ",\"log_tail\":[";
      for (size_t i = 0; i < tail.size(); ++i)
        j += (i ? "," : "") + daemonkit::json_string(printable(tail[i]));
      j += "]";
    }
    say(stdout, j + "}");
    return rc;
  }

  switch (st->state) {
    case daemonkit::RunState::running: {
      std::string line = "running (pid " + std::to_string(st->pid) + ")";
      if (state.count("status")) line += ": " + state["status"];
      say(stdout, line);
      break;
    }
    case daemonkit::RunState::dead_pidfile_remains: {
      std::string why = state.count("ended") ? state["ended"] : "the daemon died";
      say(stdout, "dead (pid " + std::to_string(st->pid) + "), pidfile remains: " + why);
      break;
    }
    case daemonkit::RunState::not_running:
      say(stdout, "not running");
      return rc;
  }
  if (payload) {
    std::string cmd;
    for (const auto& a : info.command) cmd += (cmd.empty() ? "" : " ") + printable(a);
    say(stdout, "  payload: pid " + std::to_string(payload) + ": " + cmd);
    say(stdout, "  uptime:  " + human_duration(sup.uptime));
    say(stdout, "  memory:  " + std::to_string(info.rss_kib) + " KiB resident (supervisor " +
                    std::to_string(sup.rss_kib) + " KiB)");
  }
  if (state.count("restarts") && state["restarts"] != "0")
    say(stdout, "  restarts: " + state["restarts"]);
  if (!log.empty()) {
    say(stdout, "  log:     " + log);
    for (const auto& line : tail) say(stdout, "    " + printable(line));
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
                        Command::reload, Command::reopen, Command::status})
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
    case Command::none:
      break;
  }
  return code(ExitCode::usage);
}
