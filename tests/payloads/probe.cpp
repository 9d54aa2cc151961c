// probe: exercises detach() paths that heartbeat never takes.
//   probe MODE PIDFILE [ARG]
// MODE:
//   never-ready  ARG=timeout seconds: the body never reports; start must
//                time out, kill it and remove the pidfile
//   exit-early   the body returns without reporting
//   fail         the body reports a failure of its own
//   as-user      ARG=USER[:GROUP]: switch credentials, then ready
//   stdio        ARG=directory: stdout/stderr/stdin files in it, then ready
// Prints the caller's outcome on stdout ("started PID" / "failed: MESSAGE").
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "daemonkit/detach.hpp"
#include "daemonkit/parse.hpp"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: probe MODE PIDFILE [ARG]\n");
    return 2;
  }
  const std::string mode = argv[1];
  const std::string arg = argc > 3 ? argv[3] : "";
  daemonkit::DetachOptions options;
  options.pidfile = argv[2];
  if (mode == "never-ready") {
    auto t = daemonkit::parse_seconds(arg, "timeout");
    if (!t) return 2;
    options.ready_timeout = *t;
  } else if (mode == "as-user") {
    auto creds = daemonkit::lookup_credentials(arg);
    if (!creds) {
      std::printf("failed: %s\n", creds.error().message().c_str());
      return 2;
    }
    options.credentials = *creds;
  } else if (mode == "stdio") {
    options.stdin_path = arg + "/in";
    options.stdout_path = arg + "/out";
    options.stderr_path = arg + "/err";
  }
  auto started = daemonkit::detach(options, [&](daemonkit::Daemon& d) -> int {
    if (mode == "exit-early") return 3;
    if (mode == "fail") {
      d.fail(daemonkit::Error::from_errno(EADDRINUSE, "bind", "127.0.0.1:1"));
      return 1;
    }
    if (mode == "stdio") {
      std::printf("to stdout\n");
      std::fflush(stdout);
      std::fprintf(stderr, "to stderr\n");
    }
    if (mode != "never-ready") d.ready();
    for (;;) ::pause();
  });
  if (!started) {
    std::printf("failed: %s\n", started.error().message().c_str());
    return 1;
  }
  std::printf("started %d\n", static_cast<int>(started->pid));
  return 0;
}
