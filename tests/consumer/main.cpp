// A consumer of the installed library: parses a pid, formats an error, and
// asks the kernel whether a (missing) pidfile's daemon runs.
#include <daemonkit/daemonkit.hpp>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  auto pid = daemonkit::parse_pid("1234\n", daemonkit::pid_max());
  auto status = daemonkit::query_status(argv[1]);
  if (!pid || *pid != 1234 || !status || status->state != daemonkit::RunState::not_running)
    return 1;
  std::printf("consumer ok: %s\n",
              daemonkit::Error::from_errno(2, "open", argv[1]).message().c_str());
  return 0;
}
