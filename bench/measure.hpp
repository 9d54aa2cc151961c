// The measurements, each taking every tool in turn (A B C A B C ...), so a
// disturbance on the machine spreads over all tools instead of one.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "children.hpp"
#include "probe.hpp"
#include "tools.hpp"

namespace bench {

struct Samples {
  std::vector<double> ms;  // one value per successful run
  int attempts = 0;        // runs tried
  int early = 0;           // the command returned before the state it promises
  int failed = 0;          // the run did not reach that state at all
  std::string why;         // the first failure's cause
};

struct Figures {
  Samples start, stop, stop_slow_reaper;
  int cycles = 0;
  Samples restart;  // failed counts the failed cycles
  Samples many_start, many_stop;
  Samples rest;  // failures of the at-rest measurement
  int kept = 0;  // processes kept besides the payload
  std::optional<Memory> kept_memory;
  std::optional<Memory> payload_memory;
  std::optional<long> kept_wakeups;
  std::optional<long> payload_wakeups;
  std::optional<long> many_kept_pss_kib;  // per daemon, with `many` running
};

struct Settings {
  int runs = 20;
  int cycles = 50;
  int many = 100;
  int many_runs = 20;
  int idle_seconds = 10;
  int orphans = 1000;
  std::string dir;  // a private directory for pidfiles and logs
};

// a) and b): start until up, stop until gone, with prompt and slow reaping.
void measure_start_stop(Children& children, const std::vector<Tool>& tools,
                        const Settings& settings, std::vector<Figures>& figures);

// c): start, restart, stop cycles.
void measure_restarts(Children& children, const std::vector<Tool>& tools, const Settings& settings,
                      std::vector<Figures>& figures);

// f): `many` daemons started one after the other, then stopped.
void measure_many(Children& children, const std::vector<Tool>& tools, const Settings& settings,
                  std::vector<Figures>& figures);

struct InitFigures {
  Samples reap;  // milliseconds to reap the orphans
  Samples rest;  // failures of the at-rest measurement
  std::optional<Memory> memory;
  std::optional<long> wakeups;
  std::string exit;  // how the init ended on SIGTERM
};

// d) and e), for the daemonizers and the inits: memory after a second of
// rest, each tool alone (PSS depends on who else maps the same pages); then
// all of them at once for context switches over `idle_seconds`.
void measure_idle(Children& children, const std::vector<Tool>& tools,
                  const std::vector<Tool>& inits, const Programs& programs,
                  const Settings& settings, std::vector<Figures>& figures,
                  std::vector<InitFigures>& init_figures);

// Issue 9's pid-1 row: time for each init to reap `orphans` orphans.
void measure_reaping(Children& children, const std::vector<Tool>& inits, const Programs& programs,
                     const Settings& settings, std::vector<InitFigures>& figures);

}  // namespace bench
