// heartbeat: the classic test daemon, built on daemonkit.
//
//   heartbeat start|stop|restart|status|reload|run
//             [--pidfile PATH] [--log PATH] [--interval SECONDS]
//
// After `start` its log holds "Daemon started with pid N", then every
// --interval seconds "Daemon Alive! <ctime>". Everything a daemon must get
// right (detaching, the locked pidfile, signals, log reopening, LSB exit
// codes) is daemonkit's job; this file is only what the daemon does.
#include <unistd.h>

#include <ctime>
#include <string>

#include "daemonkit/app.hpp"
#include "daemonkit/parse.hpp"

namespace {

// ctime(3) without its trailing newline, e.g. "Tue Nov 24 22:00:50 2026".
std::string now_as_ctime() {
  std::time_t now = std::time(nullptr);
  char buf[32] = "";
  if (::ctime_r(&now, buf) == nullptr) return "?";
  std::string text(buf);
  if (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  std::chrono::milliseconds interval = std::chrono::seconds(5);

  // The daemon itself. It runs after `start` has detached it (or in the
  // foreground under `run`) and returns when asked to stop.
  auto heartbeat = [&](daemonkit::Context& ctx) {
    ctx.log().info("Daemon started with pid ", ::getpid());
    // `start` returns in the caller now, so the line above is in the log.
    ctx.ready();
    // Beat on a fixed schedule; wait_until returns false on SIGTERM/SIGINT.
    auto next = daemonkit::SignalHub::Clock::now();
    while (ctx.wait_until(next += interval)) ctx.log().info("Daemon Alive! ", now_as_ctime());
    return 0;
  };

  daemonkit::App app("heartbeat", heartbeat);
  app.summary("The classic test daemon: logs \"Daemon Alive! <time>\" every --interval seconds.")
      .version(DAEMONKIT_VERSION)
      .default_pidfile(daemonkit::runtime_path("heartbeat.pid"))
      .default_log(daemonkit::log_path("heartbeat.log"))
      .option({"--interval", "SECONDS", "seconds between two log lines (default 5)",
               [&](std::string_view value) -> daemonkit::Result<void> {
                 auto parsed = daemonkit::parse_seconds(value, "--interval");
                 if (!parsed) return std::move(parsed).error();
                 if (parsed->count() == 0)
                   return daemonkit::Error::because("parse --interval", std::string(value),
                                                    "must be greater than 0",
                                                    daemonkit::ErrorKind::usage);
                 interval = *parsed;
                 return {};
               }});
  return app.main(argc, argv);
}
