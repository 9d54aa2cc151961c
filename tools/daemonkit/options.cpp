#include "options.hpp"

#include <array>

#include "daemonkit/commands.hpp"

namespace dkcli {

using daemonkit::Error;
using daemonkit::ErrorKind;
using daemonkit::fail;
using daemonkit::Result;
using daemonkit::usage_error;

namespace {

constexpr unsigned bit(Command c) {
  return 1U << static_cast<unsigned>(c);
}
constexpr unsigned kStartLike = bit(Command::start) | bit(Command::run) | bit(Command::restart);
constexpr unsigned kPidfile = kStartLike | bit(Command::stop) | bit(Command::reload) |
                              bit(Command::reopen) | bit(Command::status) | bit(Command::signal);

struct Spec {
  std::string_view name;
  std::string_view metavar;  // empty for flags
  unsigned commands;
  std::string_view help;
  // Stores the value; a usage error rejects it.
  Result<void> (*apply)(Options&, std::string_view);
};

Result<void> ok() {
  return {};
}

template <class T>
Result<void> store(Result<T> r, auto&& into) {
  if (!r) return fail(std::move(r).error());
  into(std::move(*r));
  return {};
}

const std::array<Spec, 33> kSpecs = {{
    {"--pidfile", "PATH", kPidfile & ~bit(Command::run),
     "the pidfile, locked by the daemon for its whole life (required)",
     [](Options& o, std::string_view v) {
       o.pidfile = std::filesystem::path(v);
       return ok();
     }},
    {"--pidfile", "PATH", bit(Command::run),
     "the pidfile, locked by the daemon for its whole life (optional)",
     [](Options& o, std::string_view v) {
       o.pidfile = std::filesystem::path(v);
       return ok();
     }},
    {"--stdout", "PATH", kStartLike,
     "append the payload's standard output to PATH (default /dev/null; run: its own)",
     [](Options& o, std::string_view v) {
       o.stdout_path = std::filesystem::path(v);
       return ok();
     }},
    {"--stderr", "PATH", kStartLike,
     "append the payload's standard error to PATH (default: same as --stdout; run: its own)",
     [](Options& o, std::string_view v) {
       o.stderr_path = std::filesystem::path(v);
       return ok();
     }},
    {"--stdin", "PATH", kStartLike,
     "the payload's standard input (default /dev/null; run: its own)",
     [](Options& o, std::string_view v) {
       o.stdin_path = std::filesystem::path(v);
       return ok();
     }},
    {"--log-max-size", "SIZE", kStartLike,
     "rotate --stdout/--stderr files past SIZE (K, M, G: units of 1024): PATH -> PATH.1 ...",
     [](Options& o, std::string_view v) {
       return store(daemonkit::parse_size(v, "--log-max-size"),
                    [&](std::uint64_t x) { o.log_max_size = x; });
     }},
    {"--log-keep", "N", kStartLike, "with --log-max-size: rotated files to keep (default 5)",
     [](Options& o, std::string_view v) {
       return store(daemonkit::parse_integer(v, "--log-keep", 0, 1000),
                    [&](long long x) { o.log_keep = static_cast<unsigned>(x); });
     }},
    {"--syslog", "TAG", kStartLike,
     "send the payload's stdout (info) and stderr (err) to syslog as TAG, facility daemon",
     [](Options& o, std::string_view v) -> Result<void> {
       if (v.empty() || v.find_first_of(" \t\n[]:") != std::string_view::npos)
         return fail(Error::because("parse --syslog", std::string(v),
                                    "a tag is a non-empty word without spaces, ':' or brackets",
                                    ErrorKind::usage));
       o.syslog_tag = std::string(v);
       return ok();
     }},
    {"--chdir", "DIR", kStartLike, "working directory of the payload (default /)",
     [](Options& o, std::string_view v) {
       o.chdir = std::filesystem::path(v);
       return ok();
     }},
    {"--umask", "OCTAL", kStartLike, "file mode creation mask of the payload (default 022)",
     [](Options& o, std::string_view v) {
       return store(daemonkit::parse_umask(v, "--umask"), [&](mode_t m) { o.umask = m; });
     }},
    {"--user", "USER[:GROUP]", kStartLike,
     "run the payload as that user and its groups (root only)",
     [](Options& o, std::string_view v) {
       o.user = std::string(v);
       return ok();
     }},
    {"--env", "NAME=VALUE", kStartLike, "add or replace a variable (repeatable)",
     [](Options& o, std::string_view v) {
       return store(daemonkit::parse_assignment(v, "--env"),
                    [&](std::pair<std::string, std::string> a) { o.env.push_back(std::move(a)); });
     }},
    {"--clear-env", "", kStartLike, "start the payload from an empty environment (plus --env)",
     [](Options& o, std::string_view) {
       o.clear_env = true;
       return ok();
     }},
    {"--notify", "", kStartLike,
     "the payload reports readiness with sd_notify (READY=1 on $NOTIFY_SOCKET)",
     [](Options& o, std::string_view) {
       o.notify = true;
       return ok();
     }},
    {"--ready-timeout", "SECONDS", kStartLike, "how long start waits for readiness (default 30)",
     [](Options& o, std::string_view v) -> Result<void> {
       auto t = daemonkit::parse_seconds(v, "--ready-timeout");
       if (!t) return fail(std::move(t).error());
       if (t->count() == 0)
         return fail(Error::because("parse --ready-timeout", std::string(v),
                                    "must be greater than 0", ErrorKind::usage));
       o.ready_timeout = *t;
       return ok();
     }},
    {"--ready-after", "SECONDS", kStartLike,
     "start returns only once the payload has run this long (not with --notify)",
     [](Options& o, std::string_view v) -> Result<void> {
       auto t = daemonkit::parse_seconds(v, "--ready-after");
       if (!t) return fail(std::move(t).error());
       o.ready_after = *t;
       return ok();
     }},
    {"--stop-signal", "NAME", kStartLike,
     "the signal stop, restart and run (on TERM) send the payload's group first (default TERM)",
     [](Options& o, std::string_view v) {
       return store(daemonkit::parse_signal(v, "--stop-signal"),
                    [&](int s) { o.payload_stop_signal = s; });
     }},
    {"--respawn", "", kStartLike, "restart the payload when it dies, with growing delays",
     [](Options& o, std::string_view) {
       o.respawn = true;
       return ok();
     }},
    {"--max-restarts", "N", kStartLike,
     "with --respawn: give up after N quick restarts in a row (runs under 60 s)",
     [](Options& o, std::string_view v) {
       return store(daemonkit::parse_integer(v, "--max-restarts", 0, 1000000),
                    [&](long long x) { o.max_restarts = static_cast<unsigned>(x); });
     }},
    {"--no-respawn-on", "STATUS[,STATUS...]", kStartLike,
     "with --respawn: exit statuses after which the payload is not restarted",
     [](Options& o, std::string_view v) {
       return store(daemonkit::parse_status_list(v, "--no-respawn-on"),
                    [&](std::vector<int> l) { o.no_respawn_on = std::move(l); });
     }},
    {"--watchdog", "SECONDS", kStartLike,
     "with --notify: the payload must send WATCHDOG=1 this often, or is aborted",
     [](Options& o, std::string_view v) -> Result<void> {
       auto t = daemonkit::parse_seconds(v, "--watchdog");
       if (!t) return fail(std::move(t).error());
       if (t->count() == 0)
         return fail(Error::because("parse --watchdog", std::string(v), "must be greater than 0",
                                    ErrorKind::usage));
       o.watchdog = *t;
       return ok();
     }},
    {"--reload-notify", "", kStartLike,
     "with --notify: the payload confirms reloads with RELOADING=1, then READY=1",
     [](Options& o, std::string_view) {
       o.reload_notify = true;
       return ok();
     }},
    {"--nice", "N", kStartLike, "scheduling niceness of the payload (absolute, -20 to 19)",
     [](Options& o, std::string_view v) {
       return store(daemonkit::parse_integer(v, "--nice", -20, 19),
                    [&](long long x) { o.nice = static_cast<int>(x); });
     }},
    {"--limit", "NAME=SOFT[:HARD]", kStartLike,
     "a resource limit (as, core, cpu, data, fsize, memlock, nofile, nproc, rss, stack)",
     [](Options& o, std::string_view v) {
       return store(daemonkit::parse_limit(v, "--limit"),
                    [&](daemonkit::ResourceLimit l) { o.limits.push_back(std::move(l)); });
     }},
    {"--oom-score-adj", "N", kStartLike, "the payload's OOM score adjustment (-1000 to 1000)",
     [](Options& o, std::string_view v) {
       return store(daemonkit::parse_integer(v, "--oom-score-adj", -1000, 1000),
                    [&](long long x) { o.oom_score_adj = static_cast<int>(x); });
     }},
    {"--no-new-privs", "", kStartLike, "the payload and its descendants can never gain privileges",
     [](Options& o, std::string_view) {
       o.no_new_privs = true;
       return ok();
     }},
    {"--chroot", "DIR", kStartLike, "the payload's root directory (root only)",
     [](Options& o, std::string_view v) {
       o.chroot = std::filesystem::path(v);
       return ok();
     }},
    {"--timeout", "SECONDS",
     bit(Command::run) | bit(Command::stop) | bit(Command::restart) | bit(Command::reload),
     "stop, restart, run: SIGKILL after this long; reload: wait this long (default 10)",
     [](Options& o, std::string_view v) {
       return store(daemonkit::parse_seconds(v, "--timeout"),
                    [&](std::chrono::milliseconds t) { o.timeout = t; });
     }},
    {"--signal", "NAME", bit(Command::stop),
     "the signal sent first to the payload's group, this once (default: its --stop-signal)",
     [](Options& o, std::string_view v) {
       return store(daemonkit::parse_signal(v, "--signal"), [&](int s) { o.stop_signal = s; });
     }},
    {"--signal", "NAME", bit(Command::signal), "the signal to send (required)",
     [](Options& o, std::string_view v) {
       return store(daemonkit::parse_signal(v, "--signal"), [&](int s) { o.stop_signal = s; });
     }},
    {"--group", "", bit(Command::signal), "send it to the payload's whole process group",
     [](Options& o, std::string_view) {
       o.group = true;
       return ok();
     }},
    {"--json", "", bit(Command::status), "print the same as one JSON object, for scripts",
     [](Options& o, std::string_view) {
       o.json = true;
       return ok();
     }},
    {"--help", "", ~0U, "show help and exit",
     [](Options& o, std::string_view) {
       o.help = true;
       return ok();
     }},
}};

struct CommandInfo {
  Command command;
  std::string_view name;
  std::string_view synopsis;
  std::string_view help;
};

constexpr std::array<CommandInfo, 8> kCommands = {{
    {Command::start, "start", "start --pidfile PATH [START OPTIONS] -- PROGRAM [ARG...]",
     "Start PROGRAM as a daemon under a supervisor that holds the pidfile's lock. Returns only\n"
     "once the payload was executed (with --notify: once it sent READY=1); on failure prints\n"
     "one line naming the cause and leaves no process and no pidfile behind."},
    {Command::run, "run",
     "run [--pidfile PATH] [START OPTIONS] [--timeout SECONDS] -- PROGRAM [ARG...]",
     "Supervise PROGRAM in the foreground (systemd units, containers). Exits with the payload's\n"
     "status (128+N if killed by signal N). TERM and INT go to the payload's process group\n"
     "(SIGKILL follows after --timeout); HUP (which also reopens --stdout/--stderr), QUIT,\n"
     "USR1 and USR2 go to the payload. Readiness goes on to an outer $NOTIFY_SOCKET."},
    {Command::stop, "stop", "stop --pidfile PATH [--timeout SECONDS] [--signal NAME]",
     "Signal the payload's process group (the daemon's --stop-signal, TERM by default), wait\n"
     "until the daemon is gone, SIGKILL whatever the payload started after --timeout (and say\n"
     "so), remove the pidfile. A payload that outlived a killed supervisor is found and\n"
     "stopped too. A daemon that does not run is not an error."},
    {Command::restart, "restart",
     "restart --pidfile PATH [START OPTIONS] [--timeout SECONDS] -- PROGRAM [ARG...]",
     "Stop (the daemon's --stop-signal, SIGKILL after --timeout), then start."},
    {Command::reload, "reload", "reload --pidfile PATH [--timeout SECONDS]",
     "Send SIGHUP: the supervisor reopens --stdout/--stderr and passes SIGHUP on. With\n"
     "--reload-notify, waits until the payload confirmed. Exit 7 if not running."},
    {Command::reopen, "reopen", "reopen --pidfile PATH",
     "Reopen the --stdout/--stderr files and signal nothing else (for logrotate's\n"
     "postrotate). Exit 7 if not running."},
    {Command::status, "status", "status --pidfile PATH [--json]",
     "Exit 0 while a payload runs, 150 while the supervisor waits to respawn it, 1 if dead\n"
     "with the pidfile left (and why), 3 if not running, 4 if unknown. Also prints the\n"
     "payload's command, uptime, memory, last STATUS= line, restart count and the last\n"
     "lines of its log."},
    {Command::signal, "signal", "signal --pidfile PATH --signal NAME [--group]",
     "Send NAME to the running payload (with --group, to its process group), never to its\n"
     "supervisor. Exit 7 when no payload runs (also while one waits to be respawned)."},
}};

}  // namespace

std::string_view command_name(Command c) {
  for (const auto& info : kCommands)
    if (info.command == c) return info.name;
  return "";
}

std::string usage(Command c) {
  std::string u = "Usage: daemonkit ";
  for (const auto& info : kCommands)
    if (info.command == c) return u + std::string(info.synopsis);
  return u + "start|run|stop|restart|reload|reopen|status|signal [OPTIONS] [-- PROGRAM [ARG...]]";
}

std::string help(Command c) {
  std::string h = usage(c) + "\n\n";
  if (c == Command::none) {
    h += "Run any program as a well-behaved daemon: detached, supervised, with a locked pidfile,\n"
         "readiness, respawn, log capture and rotation, and LSB exit codes.\n\nCommands:\n";
    for (const auto& info : kCommands) {
      std::string line = "  " + std::string(info.synopsis);
      h += line + "\n";
    }
    h += "  --help | --version\n";
    h += "\n'daemonkit COMMAND --help' describes a command and its options.\n";
  } else {
    for (const auto& info : kCommands)
      if (info.command == c) h += std::string(info.help) + "\n";
    h += "\nOptions:\n";
    for (const auto& s : kSpecs) {
      if ((s.commands & bit(c)) == 0) continue;
      std::string left = "  " + std::string(s.name);
      if (!s.metavar.empty()) left += " " + std::string(s.metavar);
      if (left.size() < 30)
        left.append(30 - left.size(), ' ');
      else
        left += "\n" + std::string(30, ' ');
      h += left + std::string(s.help) + "\n";
    }
  }
  h += "\nExit status (LSB): 0 success (also start of a running daemon, stop of a stopped one;\n"
       "status: running), 1 failure (status: dead, pidfile remains), 2 usage, 3 not running\n"
       "(status), 4 insufficient privilege (status: unknown), 5 program not installed,\n"
       "7 reload/reopen/signal of a daemon that is not running; status: 150 restarting.\n";
  return h;
}

Result<Options> parse_command_line(const std::vector<std::string_view>& args) {
  Options o;
  size_t i = 0;
  if (args.empty()) return fail(usage_error("no command given"));
  if (args[0] == "--help" || args[0] == "-h" || args[0] == "--version") {
    if (args.size() > 1)
      return fail(usage_error("unexpected argument '" + std::string(args[1]) + "'"));
    (args[0] == "--version" ? o.version : o.help) = true;
    return o;
  }
  for (const auto& info : kCommands)
    if (args[0] == info.name) o.command = info.command;
  if (o.command == Command::none) {
    if (!args[0].empty() && args[0][0] == '-')
      return fail(usage_error("expected a command before '" + std::string(args[0]) + "'"));
    return fail(usage_error("unknown command '" + std::string(args[0]) + "'"));
  }
  const std::string cmd(command_name(o.command));
  std::vector<std::string> seen;
  for (i = 1; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (arg == "--") {
      ++i;
      break;
    }
    if (arg == "-h") arg = "--help";
    if (arg.size() < 2 || arg[0] != '-') break;  // PROGRAM
    std::string_view name = arg;
    std::optional<std::string_view> value;
    if (auto eq = arg.find('='); eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    }
    // An option may mean a little different things to different commands:
    // the entry for this command, if any.
    const Spec* spec = nullptr;
    bool known = false;
    for (const auto& s : kSpecs) {
      if (s.name != name) continue;
      known = true;
      if ((s.commands & bit(o.command)) != 0) spec = &s;
    }
    if (!known) return fail(usage_error("unknown option '" + std::string(name) + "'"));
    if (spec == nullptr)
      return fail(usage_error("option '" + std::string(name) + "' does not apply to " + cmd));
    if (spec->metavar.empty()) {
      if (value) return fail(usage_error("option '" + std::string(name) + "' takes no value"));
    } else if (!value) {
      if (i + 1 >= args.size())
        return fail(usage_error("option '" + std::string(name) + "' needs a value " +
                                std::string(spec->metavar)));
      value = args[++i];
    }
    if (!spec->metavar.empty() && value->empty())
      return fail(usage_error("option '" + std::string(name) + "' needs a non-empty value"));
    if (auto r = spec->apply(o, value.value_or("")); !r) return fail(std::move(r).error());
    seen.emplace_back(name);
  }
  for (; i < args.size(); ++i) o.program.emplace_back(args[i]);
  if (o.help) return o;

  auto given = [&](std::string_view n) {
    for (const auto& s : seen)
      if (s == n) return true;
    return false;
  };
  const bool start_like = (bit(o.command) & kStartLike) != 0;
  if (start_like && o.program.empty())
    return fail(usage_error(cmd + " needs a PROGRAM to run (after --)"));
  if (!start_like && !o.program.empty())
    return fail(usage_error("unexpected argument '" + o.program[0] + "'"));
  if (o.command != Command::run && o.pidfile.empty())
    return fail(usage_error(cmd + " needs --pidfile PATH"));
  if (given("--watchdog") && !o.notify) return fail(usage_error("--watchdog needs --notify"));
  if (o.reload_notify && !o.notify) return fail(usage_error("--reload-notify needs --notify"));
  if (given("--max-restarts") && !o.respawn)
    return fail(usage_error("--max-restarts needs --respawn"));
  if (given("--no-respawn-on") && !o.respawn)
    return fail(usage_error("--no-respawn-on needs --respawn"));
  if (given("--log-keep") && !given("--log-max-size"))
    return fail(usage_error("--log-keep needs --log-max-size"));
  if (given("--ready-after") && o.notify)
    return fail(usage_error("--ready-after cannot be combined with --notify (READY=1 says it)"));
  if (o.command == Command::signal && !given("--signal"))
    return fail(usage_error("signal needs --signal NAME"));
  if (o.syslog_tag && (o.stdout_path || o.stderr_path || o.log_max_size))
    return fail(
        usage_error("--syslog cannot be combined with --stdout, --stderr or --log-max-size"));
  return o;
}

}  // namespace dkcli
