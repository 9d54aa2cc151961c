#include "daemonkit/app.hpp"

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "daemonkit/commands.hpp"
#include "daemonkit/control.hpp"
#include "daemonkit/detach.hpp"
#include "daemonkit/notify.hpp"
#include "daemonkit/parse.hpp"
#include "daemonkit/pidfile.hpp"
#include "daemonkit/text.hpp"

namespace daemonkit {

namespace {

struct CommandInfo {
  std::string_view name;
  Invocation::Command command;
  std::string_view help;
};

constexpr CommandInfo kCommands[] = {
    {"start", Invocation::Command::start,
     "start the daemon in the background; returns once it is ready"},
    {"stop", Invocation::Command::stop,
     "stop the daemon: SIGTERM, SIGKILL after --timeout; waits until it is gone"},
    {"restart", Invocation::Command::restart, "stop the daemon if it runs, then start it"},
    {"status", Invocation::Command::status,
     "exit 0 if running, 1 if dead with its pidfile left, 3 if not running, 4 if unknown"},
    {"reload", Invocation::Command::reload,
     "send SIGHUP: reopen the log file and reload; exit 7 if not running"},
    {"run", Invocation::Command::run,
     "run in the foreground (for systemd and containers), logging to standard error"},
};

// The one place the App prints: an outcome's lines, each flushed at once
// (a daemon forked next must not inherit them unwritten).
int print(const Outcome& outcome) {
  for (const auto& line : outcome.lines) {
    std::FILE* to = line.stream == Line::Stream::out ? stdout : stderr;
    std::fwrite(line.text.data(), 1, line.text.size(), to);
    std::fputc('\n', to);
    std::fflush(to);
  }
  return outcome.exit_code;
}

std::filesystem::path under_runtime_dir(std::string_view name, const char* root_dir) {
  if (::geteuid() == 0) return std::filesystem::path(root_dir) / name;
  const char* xdg = std::getenv("XDG_RUNTIME_DIR");
  if (xdg != nullptr && xdg[0] == '/') return std::filesystem::path(xdg) / name;
  return {};
}

}  // namespace

std::filesystem::path runtime_path(std::string_view name) {
  return under_runtime_dir(name, "/run");
}

std::filesystem::path log_path(std::string_view name) {
  return under_runtime_dir(name, "/var/log");
}

void Context::ready() {
  if (ready_) return;
  ready_ = true;
  if (daemon_ != nullptr) {
    daemon_->ready();
    return;
  }
  auto sent = notify("READY=1\nMAINPID=" + std::to_string(::getpid()));
  if (!sent) log_.warning("cannot tell the service manager we are ready: ", sent.error().message());
}

App::App(std::string name, Body body) : name_(std::move(name)), body_(std::move(body)) {}

App& App::summary(std::string text) {
  summary_ = std::move(text);
  return *this;
}
App& App::version(std::string text) {
  version_ = std::move(text);
  return *this;
}
App& App::option(AppOption opt) {
  options_.push_back(std::move(opt));
  return *this;
}
App& App::default_pidfile(std::filesystem::path path) {
  default_pidfile_ = std::move(path);
  return *this;
}
App& App::default_log(std::filesystem::path path) {
  default_log_ = std::move(path);
  return *this;
}

std::string App::usage() const {
  std::string u = "Usage: " + name_ + " start|stop|restart|status|reload|run [--pidfile PATH]";
  u += " [--log PATH] [--timeout SECONDS] [--json]";
  for (const auto& o : options_) u += " [" + o.name + " " + o.metavar + "]";
  return u;
}

Result<Invocation> App::parse(const std::vector<std::string_view>& args) const {
  Invocation inv;
  bool have_command = false;
  bool help = false;
  bool version = false;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (arg.size() < 2 || arg[0] != '-') {
      if (have_command) return fail(usage_error("unexpected argument '" + std::string(arg) + "'"));
      bool known = false;
      for (const auto& c : kCommands)
        if (c.name == arg) {
          inv.command = c.command;
          known = true;
        }
      if (!known) return fail(usage_error("unknown command '" + std::string(arg) + "'"));
      have_command = true;
      continue;
    }
    if (arg == "-h" || arg == "--help") {
      help = true;
      continue;
    }
    if (arg == "--version") {
      version = true;
      continue;
    }
    if (arg == "--json") {
      inv.json = true;
      continue;
    }
    // --name VALUE or --name=VALUE
    std::string_view name = arg;
    std::optional<std::string_view> value;
    if (auto eq = arg.find('='); eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    }
    auto take_value = [&]() -> Result<std::string_view> {
      if (value) return *value;
      if (i + 1 >= args.size())
        return fail(usage_error("option '" + std::string(name) + "' needs a value"));
      return args[++i];
    };
    auto nonempty = [&](std::string_view v) -> Result<std::string_view> {
      if (v.empty())
        return fail(usage_error("option '" + std::string(name) + "' needs a non-empty value"));
      return v;
    };
    if (name == "--pidfile" || name == "--log") {
      auto v = take_value();
      if (!v) return fail(std::move(v).error());
      auto ok = nonempty(*v);
      if (!ok) return fail(std::move(ok).error());
      (name == "--pidfile" ? inv.pidfile : inv.log) = std::filesystem::path(*v);
      continue;
    }
    if (name == "--timeout") {
      auto v = take_value();
      if (!v) return fail(std::move(v).error());
      auto t = parse_seconds(*v, "--timeout");
      if (!t) return fail(std::move(t).error());
      inv.timeout = *t;
      continue;
    }
    const AppOption* opt = nullptr;
    for (const auto& o : options_)
      if (o.name == name) opt = &o;
    if (opt == nullptr) return fail(usage_error("unknown option '" + std::string(name) + "'"));
    auto v = take_value();
    if (!v) return fail(std::move(v).error());
    auto applied = opt->apply(*v);
    if (!applied) return fail(std::move(applied).error());
  }
  if (inv.json && !help && !version && inv.command != Invocation::Command::status)
    return fail(usage_error("option '--json' applies to status only"));
  if (help) {
    inv.command = Invocation::Command::help;
  } else if (version) {
    inv.command = Invocation::Command::version;
  } else if (!have_command) {
    return fail(usage_error("no command given"));
  }
  return inv;
}

Voice App::voice() const {
  Voice v;
  v.program = name_;
  v.daemon_name = name_;
  v.human_uptime = false;
  v.log_without_tail = false;
  return v;
}

Outcome App::report(const Error& error, std::string_view action) const {
  return error_outcome(error, action, voice(), usage());
}

std::string App::help() const {
  std::string h = usage() + "\n";
  if (!summary_.empty()) h += "\n" + summary_ + "\n";
  h += "\nCommands:\n";
  for (const auto& c : kCommands) {
    h += "  " + std::string(c.name);
    h.append(10 - c.name.size(), ' ');
    h += std::string(c.help) + "\n";
  }
  h += "\nOptions:\n";
  auto row = [&](std::string left, const std::string& right) {
    left = "  " + left;
    if (left.size() < 24)
      left.append(24 - left.size(), ' ');
    else
      left += "  ";
    h += left + right + "\n";
  };
  row("--pidfile PATH",
      "the pidfile, locked by the daemon while it runs" +
          (default_pidfile_.empty() ? std::string(" (required)")
                                    : " (default " + default_pidfile_.string() + "; run: none)"));
  row("--log PATH",
      "append log lines to PATH" +
          (default_log_.empty() ? std::string()
                                : " (default " + default_log_.string() + "; run: standard error)"));
  row("--timeout SECONDS", "stop, restart: wait this long before SIGKILL (default 10)");
  row("--json", "status: print the same as one JSON object, for scripts");
  for (const auto& o : options_) row(o.name + " " + o.metavar, o.help);
  row("-h, --help", "show this help and exit");
  row("--version", "show the version and exit");
  h += "\nExit status (LSB): 0 success, 1 failure (status: dead, pidfile remains), 2 usage,\n"
       "3 not running (status), 4 insufficient privilege or status unknown, 7 reload of a\n"
       "daemon that is not running.\n";
  return h;
}

int App::main(int argc, char** argv) {
  std::vector<std::string_view> args(argv + (argc > 0 ? 1 : 0), argv + argc);
  auto inv = parse(args);
  if (!inv) return print(report(inv.error(), "parse the command line"));

  if (inv->command == Invocation::Command::help) {
    std::string h = help();
    h.pop_back();  // print() ends the text with its newline
    return print(Outcome().out(std::move(h)));
  }
  if (inv->command == Invocation::Command::version)
    return print(Outcome().out(name_ + " " + version_));

  if (inv->command != Invocation::Command::run) {
    if (inv->pidfile.empty()) inv->pidfile = default_pidfile_;
    if (inv->pidfile.empty())
      return print(report(usage_error("no --pidfile given, and no default (as a user, set "
                                      "$XDG_RUNTIME_DIR)"),
                          ""));
  }
  // `status` without --log shows the log the running daemon writes, which
  // its own command line names (see App::status); the default is a guess.
  inv->log_given = !inv->log.empty();
  if (inv->log.empty() && inv->command != Invocation::Command::run) inv->log = default_log_;
  inv->pidfile = absolute_path(inv->pidfile);
  inv->log = absolute_path(inv->log);

  switch (inv->command) {
    case Invocation::Command::start:
      return print(start(*inv));
    case Invocation::Command::stop:
      return print(stop(*inv, false));
    case Invocation::Command::restart: {
      // What stop says is said before the start, which takes a while.
      const int rc = print(stop(*inv, true));
      return rc != 0 ? rc : print(start(*inv));
    }
    case Invocation::Command::status:
      return print(status(*inv));
    case Invocation::Command::reload:
      return print(reload(*inv));
    case Invocation::Command::run:
      return print(run_foreground(*inv));
    default:
      return 0;
  }
}

Outcome App::start(const Invocation& inv) {
  if (inv.log.empty())
    return report(usage_error("no --log given, and no default (as a user, set "
                              "$XDG_RUNTIME_DIR)"),
                  "");
  // A running daemon is an answer we can give without forking.
  if (auto st = query_status(inv.pidfile); st && st->state == RunState::running)
    return Outcome().out(name_ + " is already running (pid " + std::to_string(st->pid) + ")");
  DetachOptions options;
  options.pidfile = inv.pidfile;
  options.keep_signals_blocked = true;
  auto started = detach(options, [&](Daemon& d) { return daemon_main(d, inv.log); });
  if (!started) return report(started.error(), "start");
  Outcome o;
  if (started->how == Started::How::already_running)
    o.out(name_ + " is already running (" +
          (started->pid > 0 ? "pid " + std::to_string(started->pid)
                            : std::string("the pidfile is locked by another process")) +
          ")");
  return o;
}

int App::daemon_main(Daemon& daemon, const std::filesystem::path& log) {
  // Signals are still blocked (keep_signals_blocked): install the handlers,
  // then let whatever arrived meanwhile through.
  auto hub = SignalHub::install();
  if (!hub) {
    daemon.fail(hub.error());
    return 1;
  }
  unblock_all_signals();

  auto sink = FileSink::open(log);
  if (!sink) {
    daemon.fail(sink.error());
    return 1;
  }
  Logger logger(std::move(*sink));
  (*hub)->on_reload([&logger] {
    if (auto r = logger.reopen(); !r) logger.error("cannot reopen the log: ", r.error().message());
  });
  Context ctx(**hub, logger, &daemon);
  int rc = body_(ctx);
  if (daemon.reported() && daemon.pidfile()) {
    if (auto r = daemon.pidfile()->remove(); !r)
      logger.error("cannot remove the pidfile: ", r.error().message());
  }
  return rc;
}

Outcome App::run_foreground(const Invocation& inv) {
  // Handlers first: a SIGTERM that arrives once the pidfile is locked must
  // end in a clean stop, not in a pidfile left behind.
  auto hub = SignalHub::install();
  if (!hub) return report(hub.error(), "run");
  std::optional<LockedPidfile> pidfile;
  if (!inv.pidfile.empty()) {
    auto locked = lock_pidfile_for_run(inv.pidfile);
    if (!locked) return report(locked.error(), "run");
    pidfile.emplace(std::move(*locked));
  }
  Logger logger;
  if (!inv.log.empty()) {
    auto sink = FileSink::open(inv.log);
    if (!sink) {
      if (pidfile) (void)pidfile->remove();
      return report(sink.error(), "run");
    }
    logger.set_sink(std::move(*sink));
  }
  (*hub)->on_reload([&logger] {
    if (auto r = logger.reopen(); !r) logger.error("cannot reopen the log: ", r.error().message());
  });
  Context ctx(**hub, logger, nullptr);
  Outcome o;
  o.exit_code = body_(ctx);
  (void)notify("STOPPING=1");
  if (pidfile) {
    if (auto r = pidfile->remove(); !r)
      logger.error("cannot remove the pidfile: ", r.error().message());
  }
  return o;
}

Outcome App::stop(const Invocation& inv, bool quiet_if_not_running) {
  StopOptions options;
  options.timeout = inv.timeout;
  // The daemon is the process itself, with no supervisor to sweep a group:
  // SIGKILL follows as soon as the timeout has passed.
  options.kill_grace = std::chrono::milliseconds(0);
  auto stopped = stop_daemon(inv.pidfile, options);
  if (!stopped) return report(stopped.error(), "stop");
  return stop_outcome(*stopped, inv.timeout, quiet_if_not_running, voice());
}

namespace {

// The log a running daemon writes: the `--log` of its command line, found
// among its open files (it may have been relative to a directory we do not
// know); `fallback` when it has none or it cannot be found.
std::filesystem::path log_of(pid_t pid, const std::vector<std::string>& command,
                             const std::filesystem::path& fallback) {
  std::string named;
  for (size_t i = 0; i < command.size(); ++i) {
    const std::string& arg = command[i];
    if (arg == "--log" && i + 1 < command.size()) named = command[i + 1];
    if (arg.rfind("--log=", 0) == 0) named = arg.substr(6);
  }
  if (named.empty()) return fallback;
  const std::filesystem::path want = std::filesystem::path(named).lexically_normal();
  std::error_code ec;
  const std::string fds = "/proc/" + std::to_string(pid) + "/fd";
  for (const auto& fd : std::filesystem::directory_iterator(fds, ec)) {
    std::error_code link_ec;
    auto target = std::filesystem::read_symlink(fd.path(), link_ec);
    if (link_ec || !target.is_absolute()) continue;
    if (want.is_absolute() ? target == want : target.string().ends_with("/" + want.string()))
      return target;
  }
  return want.is_absolute() ? want : fallback;
}

}  // namespace

Outcome App::status(const Invocation& inv) {
  StatusReport report = daemon_status(inv.pidfile);
  if (report.run_state) {
    std::filesystem::path log = inv.log;
    if (report.payload && !inv.log_given) log = log_of(report.pid, report.command, inv.log);
    report.log = log.string();
    if (!log.empty()) report.log_tail = tail_lines(log, 5);
  }
  return status_outcome(report, inv.json, voice());
}

Outcome App::reload(const Invocation& inv) {
  auto pid = signal_daemon(inv.pidfile, SIGHUP);
  if (!pid) return report(pid.error(), "reload");
  RequestResult sent;
  sent.pid = *pid;
  sent.outcome = *pid == 0 ? RequestResult::Outcome::not_running : RequestResult::Outcome::done;
  return reload_outcome(sent, voice());
}

}  // namespace daemonkit
