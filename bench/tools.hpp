// The tools the benchmark compares, and how each is asked to start, stop and
// restart a daemon.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace bench {

using Argv = std::vector<std::string>;

// Where one daemon of the benchmark keeps its files.
struct Slot {
  std::string name;      // unique among the daemons alive at once
  std::string pidfile;   // DIR/NAME.pid
  std::string lockfile;  // DIR/NAME.lock, for tools that lock apart
  std::string log;       // DIR/NAME.log
};
Slot make_slot(const std::string& dir, const std::string& name);

// Whether the daemon holds a POSIX lock on its pidfile, which "up" then
// requires.
enum class Lock { none, pidfile };

struct Tool {
  std::string name;
  std::string binary;   // absent binary: the tool is skipped, with the reason
  std::string payload;  // the executable the daemon runs (canonical path)
  Lock lock = Lock::none;
  bool is_floor = false;
  std::string note;  // how it is driven, when that needs saying
  std::function<Argv(const Slot&)> start;
  std::function<Argv(const Slot&)> stop;
  std::function<Argv(const Slot&)> restart;  // empty: stop, then start
};

struct Programs {
  std::string daemonkit;
  std::string heartbeat;
  std::string floor;
  std::string idle;
  std::string orphans;
};

// The daemonizers, the floor first. `quiet_heartbeat`: a heartbeat interval
// long enough that an idle measurement sees only overhead.
std::vector<Tool> daemonizers(const Programs& programs, bool quiet_heartbeat);

// The inits compared as pid 1 of a pid namespace: `daemonkit run`, tini,
// dumb-init. `start` gives the whole command line, namespace included, with
// the payload's argv appended by the caller.
std::vector<Tool> inits(const Programs& programs);

}  // namespace bench
