// daemonkit/app.hpp: the front door, the modern form of the classic Daemon
// class.
//
//   int run(daemonkit::Context& ctx) {
//     ctx.log().info("started");
//     ctx.ready();                                  // start returns now
//     while (ctx.wait_for(std::chrono::seconds(5)))  // false once stopped
//       ctx.log().info("alive");
//     return 0;
//   }
//   int main(int argc, char** argv) {
//     return daemonkit::App("mydaemon", run).main(argc, argv);
//   }
//
// App::main implements `start|stop|restart|status|reload|run` with
// `--pidfile`, `--log`, `--timeout`, `--help`, `--version` and the options
// the program adds, and returns the LSB exit code. `start` returns only when
// the daemon called ready() (or failed, printing one line naming the cause);
// `run` stays in the foreground, logs to standard error and tells systemd
// about readiness when $NOTIFY_SOCKET is set.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "daemonkit/log.hpp"
#include "daemonkit/result.hpp"
#include "daemonkit/signals.hpp"

namespace daemonkit {

class Daemon;
struct Outcome;
struct Voice;

// What the daemon's code gets: stop token, readiness, waiting, logging.
class Context {
 public:
  // Requested when SIGTERM or SIGINT arrives (handled during the waits).
  [[nodiscard]] std::stop_token stop_token() const noexcept { return signals_.stop_token(); }
  [[nodiscard]] bool stop_requested() const noexcept { return signals_.stop_requested(); }
  // The daemon is up: `start` returns success in the caller; under `run`,
  // "READY=1" goes to $NOTIFY_SOCKET if set. Later calls do nothing.
  void ready();
  // Sleeps until `deadline` while handling signals. Returns false as soon as
  // a stop is requested (at once if it already was).
  bool wait_until(SignalHub::Clock::time_point deadline) { return signals_.wait_until(deadline); }
  template <class Rep, class Period>
  bool wait_for(std::chrono::duration<Rep, Period> d) {
    return signals_.wait_for(d);
  }
  Logger& log() noexcept { return log_; }
  // Runs on SIGHUP, after the log file was reopened.
  void on_reload(std::function<void()> callback) { signals_.on_reload(std::move(callback)); }
  SignalHub& signals() noexcept { return signals_; }
  // True under `run`, false in a detached daemon.
  [[nodiscard]] bool foreground() const noexcept { return daemon_ == nullptr; }

  Context(SignalHub& signals, Logger& log, Daemon* daemon)
      : signals_(signals), log_(log), daemon_(daemon) {}

 private:
  SignalHub& signals_;
  Logger& log_;
  Daemon* daemon_;
  bool ready_ = false;
};

// One option the program adds to the command line.
struct AppOption {
  std::string name;     // "--interval"
  std::string metavar;  // "SECONDS"
  std::string help;     // one line
  // Validates and stores the value; return a usage error to reject it.
  std::function<Result<void>(std::string_view value)> apply;
};

// The parsed command line.
struct Invocation {
  enum class Command { start, stop, restart, status, reload, run, help, version };
  Command command = Command::help;
  std::filesystem::path pidfile;  // empty: not given
  std::filesystem::path log;      // empty: not given (then the default)
  bool log_given = false;         // --log was on the command line
  std::chrono::milliseconds timeout = std::chrono::seconds(10);
  bool json = false;  // status --json
};

class App {
 public:
  using Body = std::function<int(Context&)>;

  App(std::string name, Body body);

  App& summary(std::string text);
  App& version(std::string text);
  App& option(AppOption opt);
  // Used when --pidfile / --log are not given (see runtime_path()).
  App& default_pidfile(std::filesystem::path path);
  App& default_log(std::filesystem::path path);

  // Parses argv[1..]. Usage errors name the offending argument.
  Result<Invocation> parse(const std::vector<std::string_view>& args) const;
  // Runs the whole program; returns the exit code for main().
  int main(int argc, char** argv);
  [[nodiscard]] std::string usage() const;

 private:
  // Each command answers with the lines to print and the exit code
  // (commands.hpp); main() prints them.
  Outcome start(const Invocation& inv);
  Outcome stop(const Invocation& inv, bool quiet_if_not_running);
  Outcome status(const Invocation& inv);
  Outcome reload(const Invocation& inv);
  Outcome run_foreground(const Invocation& inv);
  int daemon_main(Daemon& daemon, const std::filesystem::path& log);
  [[nodiscard]] Outcome report(const Error& error, std::string_view action) const;
  [[nodiscard]] Voice voice() const;
  [[nodiscard]] std::string help() const;

  std::string name_;
  Body body_;
  std::string summary_;
  std::string version_ = "0";
  std::vector<AppOption> options_;
  std::filesystem::path default_pidfile_;
  std::filesystem::path default_log_;
};

// Where a program's runtime file belongs when the user gives none:
// /run/NAME as root, $XDG_RUNTIME_DIR/NAME otherwise; empty when neither
// applies (never a world-writable directory such as /tmp).
std::filesystem::path runtime_path(std::string_view name);
// Where a log belongs by default: /var/log/NAME as root,
// $XDG_RUNTIME_DIR/NAME otherwise; empty when neither applies.
std::filesystem::path log_path(std::string_view name);

}  // namespace daemonkit
