// stubborn: a daemon that ignores SIGTERM, to test that stop escalates.
//   stubborn PIDFILE
// Detaches with the library, holds PIDFILE's lock, and sleeps until killed.
#include <signal.h>
#include <unistd.h>

#include <cstdio>

#include "daemonkit/detach.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: stubborn PIDFILE\n");
    return 2;
  }
  daemonkit::DetachOptions options;
  options.pidfile = argv[1];
  auto started = daemonkit::detach(options, [](daemonkit::Daemon& d) {
    ::signal(SIGTERM, SIG_IGN);
    d.ready();
    for (;;) ::pause();
    return 0;
  });
  if (!started) {
    std::fprintf(stderr, "stubborn: %s\n", started.error().message().c_str());
    return 1;
  }
  return 0;
}
