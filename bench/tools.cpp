#include "tools.hpp"

namespace bench {

Slot make_slot(const std::string& dir, const std::string& name) {
  return {name, dir + "/" + name + ".pid", dir + "/" + name + ".lock", dir + "/" + name + ".log"};
}

namespace {

const std::string kStartStopDaemon = "/usr/sbin/start-stop-daemon";

// How Debian's init scripts stop a daemon with start-stop-daemon: TERM, wait
// up to 10 s for the pid to vanish, then KILL.
Argv stop_with_start_stop_daemon(const Slot& slot) {
  return {kStartStopDaemon, "--stop",  "--quiet",        "--pidfile",
          slot.pidfile,     "--retry", "TERM/10/KILL/5", "--remove-pidfile"};
}

}  // namespace

std::vector<Tool> daemonizers(const Programs& programs, bool quiet_heartbeat) {
  const std::string& idle = programs.idle;
  std::string interval = quiet_heartbeat ? "3600" : "5";
  std::vector<Tool> tools;

  tools.push_back({"floor",
                   programs.floor,
                   idle,
                   Lock::pidfile,
                   true,
                   "bench/floor.c: double fork, exec reported on a pipe, locked pidfile; "
                   "stop by pidfd",
                   [=](const Slot& s) {
                     return Argv{programs.floor, "start", s.pidfile, idle};
                   },
                   [=](const Slot& s) {
                     return Argv{programs.floor, "stop", s.pidfile};
                   },
                   {}});

  tools.push_back({"daemonkit", programs.daemonkit, idle, Lock::pidfile, false, "",
                   [=](const Slot& s) {
                     return Argv{programs.daemonkit, "start", "--pidfile", s.pidfile, "--", idle};
                   },
                   [=](const Slot& s) {
                     return Argv{programs.daemonkit, "stop", "--pidfile", s.pidfile};
                   },
                   [=](const Slot& s) {
                     return Argv{programs.daemonkit, "restart", "--pidfile", s.pidfile, "--", idle};
                   }});

  tools.push_back({"daemonkit --respawn", programs.daemonkit, idle, Lock::pidfile, false, "",
                   [=](const Slot& s) {
                     return Argv{programs.daemonkit, "start", "--respawn", "--pidfile",
                                 s.pidfile,          "--",    idle};
                   },
                   [=](const Slot& s) {
                     return Argv{programs.daemonkit, "stop", "--pidfile", s.pidfile};
                   },
                   [=](const Slot& s) {
                     return Argv{programs.daemonkit, "restart", "--respawn", "--pidfile",
                                 s.pidfile,          "--",      idle};
                   }});

  tools.push_back(
      {"heartbeat", programs.heartbeat, programs.heartbeat, Lock::pidfile, false,
       "the library's example daemon; its own process is the payload",
       [=](const Slot& s) {
         return Argv{programs.heartbeat, "start", "--pidfile", s.pidfile, "--log", s.log,
                     "--interval",       interval};
       },
       [=](const Slot& s) {
         return Argv{programs.heartbeat, "stop", "--pidfile", s.pidfile};
       },
       [=](const Slot& s) {
         return Argv{programs.heartbeat, "restart", "--pidfile", s.pidfile, "--log", s.log,
                     "--interval",       interval};
       }});

  tools.push_back({"start-stop-daemon",
                   kStartStopDaemon,
                   idle,
                   Lock::none,
                   false,
                   "--background --make-pidfile; stop --retry TERM/10/KILL/5",
                   [=](const Slot& s) {
                     return Argv{kStartStopDaemon, "--start",        "--quiet",
                                 "--background",   "--make-pidfile", "--pidfile",
                                 s.pidfile,        "--exec",         idle};
                   },
                   stop_with_start_stop_daemon,
                   {}});

  tools.push_back({"daemonize",
                   "/usr/bin/daemonize",
                   idle,
                   Lock::none,
                   false,
                   "-p PIDFILE -l LOCKFILE (an flock the start checks, not the pidfile); "
                   "it has no stop: start-stop-daemon's, as above",
                   [=](const Slot& s) {
                     return Argv{"/usr/bin/daemonize", "-p", s.pidfile, "-l", s.lockfile, idle};
                   },
                   stop_with_start_stop_daemon,
                   {}});

  // libslack's daemon names its pidfile DIR/NAME.pid, like the slot.
  auto libslack = [](const Slot& s) {
    std::string dir = s.pidfile.substr(0, s.pidfile.rfind('/'));
    return Argv{"/usr/bin/daemon", "--respawn", "--name=" + s.name, "--pidfiles=" + dir};
  };
  // Its --restart restarts the client only with --respawn; without, it ends
  // the daemon.
  tools.push_back({"daemon (libslack) --respawn", "/usr/bin/daemon", idle, Lock::pidfile, false,
                   "--respawn --name --pidfiles; --stop; --restart",
                   [=](const Slot& s) {
                     Argv argv = libslack(s);
                     argv.insert(argv.end(), {"--", idle});
                     return argv;
                   },
                   [=](const Slot& s) {
                     Argv argv = libslack(s);
                     argv.emplace_back("--stop");
                     return argv;
                   },
                   [=](const Slot& s) {
                     Argv argv = libslack(s);
                     argv.emplace_back("--restart");
                     return argv;
                   }});
  return tools;
}

std::vector<Tool> inits(const Programs& programs) {
  auto in_namespace = [](Argv init) {
    // --kill-child: when unshare dies, so does the namespace's init.
    Argv argv{"/usr/bin/unshare", "--pid", "--fork", "--kill-child", "--mount-proc", "--"};
    argv.insert(argv.end(), init.begin(), init.end());
    return argv;
  };
  std::vector<Tool> tools;
  tools.push_back({"daemonkit run",
                   programs.daemonkit,
                   "",
                   Lock::none,
                   false,
                   "",
                   [=](const Slot&) {
                     return in_namespace({programs.daemonkit, "run", "--"});
                   },
                   {},
                   {}});
  tools.push_back({"tini",
                   "/usr/bin/tini",
                   "",
                   Lock::none,
                   false,
                   "",
                   [=](const Slot&) {
                     return in_namespace({"/usr/bin/tini", "--"});
                   },
                   {},
                   {}});
  tools.push_back({"dumb-init",
                   "/usr/bin/dumb-init",
                   "",
                   Lock::none,
                   false,
                   "",
                   [=](const Slot&) { return in_namespace({"/usr/bin/dumb-init"}); },
                   {},
                   {}});
  return tools;
}

}  // namespace bench
