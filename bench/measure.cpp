#include "measure.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

namespace bench {

namespace {

using namespace std::chrono_literals;

constexpr auto kCommandLimit = 30s;
constexpr auto kUpLimit = 10s;
constexpr auto kGoneLimit = 20s;
constexpr auto kPoll = 20us;

double ms_between(std::int64_t start, std::int64_t end) {
  return static_cast<double>(end - start) / 1e6;
}

// A daemon as the kernel shows it: the pidfile names a live process that
// holds the lock (for tools that lock), and the payload runs in its tree.
struct Daemon {
  pid_t pid = 0;
  pid_t payload = 0;
  std::vector<pid_t> tree;
};

std::optional<Daemon> probe_up(const Tool& tool, const Slot& slot) {
  auto pid = read_pid(slot.pidfile);
  if (!pid || !alive(*pid)) return std::nullopt;
  if (tool.lock == Lock::pidfile && lock_holder(slot.pidfile) != pid) return std::nullopt;
  auto tree = tree_of(*pid);
  for (pid_t process : tree)
    if (alive(process) && exe_of(process) == tool.payload) return Daemon{*pid, process, tree};
  return std::nullopt;
}

// Polls until the daemon is up (with a payload other than `old_payload`);
// `seen` gets the time the successful probe began, so the probe's own cost
// is not counted against the tool.
std::optional<Daemon> wait_up(Children& children, const Tool& tool, const Slot& slot,
                              pid_t old_payload = 0, std::int64_t* seen = nullptr) {
  std::int64_t deadline = now_ns() + std::chrono::nanoseconds(kUpLimit).count();
  for (;;) {
    std::int64_t probed = now_ns();
    auto daemon = probe_up(tool, slot);
    if (daemon && daemon->payload != old_payload) {
      if (seen != nullptr) *seen = probed;
      return daemon;
    }
    if (probed > deadline) return std::nullopt;
    children.pump(kPoll);
  }
}

// Handles on `pids`, a tree listed from /proc: a process counts only while
// its parent is still the one listed, so a pid reused after a reap is never
// taken for it.
std::vector<Pidfd> handles(const std::vector<pid_t>& pids) {
  std::vector<Pidfd> result;
  result.reserve(pids.size());
  for (pid_t pid : pids) result.emplace_back(pid);
  return result;
}

std::string last_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::string last;
  while (std::getline(in, line))
    if (!line.empty()) last = line;
  return last;
}

std::string describe(int status) {
  if (WIFEXITED(status)) return "exited with " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("killed by ") + sigabbrev_np(WTERMSIG(status));
  return "stopped";
}

void fail(Samples& samples, const std::string& why) {
  ++samples.failed;
  if (samples.why.empty()) samples.why = why;
}

// Runs one command of a tool to its end; false (with the cause recorded)
// when it did not end, or ended with a non-zero status.
bool run_command(Children& children, const Argv& argv, const std::string& errors,
                 Samples& samples) {
  pid_t pid = children.spawn(argv, errors);
  auto status = children.wait(pid, kCommandLimit);
  if (!status) {
    fail(samples, argv[0] + " " + argv[1] + " did not return within 30 s");
    return false;
  }
  if (!WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
    fail(samples, argv[0] + " " + argv[1] + " " + describe(*status) + ": " + last_line(errors));
    return false;
  }
  return true;
}

// Kills the process tree below `pid`, a child of the benchmark (so its pid
// cannot be reused before the benchmark reaps it). Each descendant is taken
// only while its parent is the one it was listed under, so a pid reused
// between listing and opening is never signalled.
void kill_tree(Children& children, pid_t pid) {
  std::vector<Pidfd> processes;
  processes.emplace_back(pid);
  for (std::size_t next = 0; next < processes.size(); ++next) {
    pid_t parent = processes[next].pid();
    for (pid_t child : children_of(parent)) {
      Pidfd handle(child);
      if (handle.valid() && parent_of(child) == parent) processes.push_back(std::move(handle));
    }
  }
  for (const auto& process : processes) process.kill();
  wait_exited(children, processes, kGoneLimit);
}

// Kills whatever is left of a daemon the benchmark started (its processes
// are the benchmark's children, as it is their subreaper) and removes its
// files, so the next run starts from nothing.
void clean_up(Children& children, const Slot& slot) {
  auto pid = read_pid(slot.pidfile);
  if (pid && parent_of(*pid) == getpid()) kill_tree(children, *pid);
  children.reap_all();
  std::error_code ignored;
  for (const auto& path : {slot.pidfile, slot.pidfile + ".state", slot.lockfile, slot.log})
    std::filesystem::remove(path, ignored);
}

std::string errors_of(const Settings& settings, const Tool& tool) {
  std::string name = tool.name;
  for (char& c : name)
    if (c == ' ' || c == '/' || c == '(' || c == ')') c = '_';
  return settings.dir + "/" + name + ".err";
}

// Starts a daemon; `samples` gets the time until it was really up.
std::optional<Daemon> timed_start(Children& children, const Tool& tool, const Slot& slot,
                                  const std::string& errors, Samples& samples) {
  ++samples.attempts;
  std::int64_t start = now_ns();
  if (!run_command(children, tool.start(slot), errors, samples)) return std::nullopt;
  std::int64_t returned = now_ns();
  if (auto daemon = probe_up(tool, slot)) {
    samples.ms.push_back(ms_between(start, returned));
    return daemon;
  }
  ++samples.early;
  std::int64_t seen = 0;
  auto daemon = wait_up(children, tool, slot, 0, &seen);
  if (!daemon) {
    fail(samples, "not up 10 s after start returned");
    return std::nullopt;
  }
  samples.ms.push_back(ms_between(start, seen));
  return daemon;
}

// Stops a daemon; `samples` gets the time until all its processes exited.
bool timed_stop(Children& children, const Tool& tool, const Slot& slot, const Daemon& daemon,
                const std::string& errors, Samples& samples, Reaping reaping) {
  ++samples.attempts;
  auto processes = handles(daemon.tree);
  children.set_reaping(reaping);
  std::int64_t start = now_ns();
  bool stopped = run_command(children, tool.stop(slot), errors, samples);
  std::int64_t returned = now_ns();
  bool gone = stopped && wait_exited(children, processes, 0ms);
  if (gone) {
    samples.ms.push_back(ms_between(start, returned));
  } else if (stopped) {
    ++samples.early;
    gone = wait_exited(children, processes, kGoneLimit);
    if (gone)
      samples.ms.push_back(ms_between(start, now_ns()));
    else
      fail(samples, "still running 20 s after stop returned");
  }
  children.set_reaping(Reaping::prompt);
  children.reap_all();
  return gone;
}

// The tools in the order of this run: each run starts one further along, so
// none always follows the same one.
std::vector<std::size_t> turn(std::size_t count, int run) {
  std::vector<std::size_t> order;
  for (std::size_t k = 0; k < count; ++k)
    order.push_back((k + static_cast<std::size_t>(run)) % count);
  return order;
}

}  // namespace

void measure_start_stop(Children& children, const std::vector<Tool>& tools,
                        const Settings& settings, std::vector<Figures>& figures) {
  for (int run = 0; run < settings.runs; ++run) {
    for (std::size_t i : turn(tools.size(), run)) {
      Slot slot = make_slot(settings.dir, "latency");
      std::string errors = errors_of(settings, tools[i]);
      if (auto daemon = timed_start(children, tools[i], slot, errors, figures[i].start)) {
        timed_stop(children, tools[i], slot, *daemon, errors, figures[i].stop, Reaping::prompt);
      } else {
        ++figures[i].stop.attempts;
        fail(figures[i].stop, "start failed: " + figures[i].start.why);
      }
      clean_up(children, slot);
    }
    for (std::size_t i : turn(tools.size(), run)) {
      Slot slot = make_slot(settings.dir, "latency");
      std::string errors = errors_of(settings, tools[i]);
      Samples unused;
      if (auto daemon = timed_start(children, tools[i], slot, errors, unused)) {
        timed_stop(children, tools[i], slot, *daemon, errors, figures[i].stop_slow_reaper,
                   Reaping::slow);
      } else {
        ++figures[i].stop_slow_reaper.attempts;
        fail(figures[i].stop_slow_reaper, "start failed: " + unused.why);
      }
      clean_up(children, slot);
    }
  }
}

void measure_restarts(Children& children, const std::vector<Tool>& tools, const Settings& settings,
                      std::vector<Figures>& figures) {
  for (int cycle = 0; cycle < settings.cycles; ++cycle) {
    for (std::size_t i : turn(tools.size(), cycle)) {
      const Tool& tool = tools[i];
      Figures& figure = figures[i];
      ++figure.cycles;
      ++figure.restart.attempts;
      Slot slot = make_slot(settings.dir, "cycle");
      std::string errors = errors_of(settings, tool);
      Samples scratch;
      auto first = timed_start(children, tool, slot, errors, scratch);
      if (!first) {
        fail(figure.restart, "start: " + scratch.why);
        clean_up(children, slot);
        continue;
      }
      Pidfd old_payload(first->payload);
      std::int64_t start = now_ns();
      bool restarted = tool.restart ? run_command(children, tool.restart(slot), errors, scratch)
                                    : run_command(children, tool.stop(slot), errors, scratch) &&
                                          run_command(children, tool.start(slot), errors, scratch);
      std::optional<Daemon> second;
      std::int64_t seen = 0;
      if (!restarted) {
        fail(figure.restart, "restart: " + scratch.why);
      } else if (!(second = wait_up(children, tool, slot, first->payload, &seen))) {
        fail(figure.restart, "no new payload up 10 s after restart");
      } else if (!old_payload.exited()) {
        fail(figure.restart, "the old payload still ran when the new one was up");
      } else {
        figure.restart.ms.push_back(ms_between(start, seen));
        if (!timed_stop(children, tool, slot, *second, errors, scratch, Reaping::prompt))
          fail(figure.restart, "stop: " + scratch.why);
      }
      clean_up(children, slot);
    }
  }
}

void measure_many(Children& children, const std::vector<Tool>& tools, const Settings& settings,
                  std::vector<Figures>& figures) {
  for (int run = 0; run < settings.many_runs; ++run) {
    for (std::size_t i : turn(tools.size(), run)) {
      const Tool& tool = tools[i];
      Figures& figure = figures[i];
      ++figure.many_start.attempts;
      std::string errors = errors_of(settings, tool);
      std::vector<Slot> slots;
      slots.reserve(static_cast<std::size_t>(settings.many));
      for (int n = 0; n < settings.many; ++n)
        slots.push_back(make_slot(settings.dir, "many" + std::to_string(n)));
      bool ok = true;
      std::int64_t start = now_ns();
      for (const auto& slot : slots)
        if (!(ok = run_command(children, tool.start(slot), errors, figure.many_start))) break;
      // Up when the last start returned, or when the last daemon was seen up.
      std::int64_t up = now_ns();
      std::vector<Daemon> daemons;
      for (std::size_t n = 0; ok && n < slots.size(); ++n) {
        std::optional<Daemon> daemon = probe_up(tool, slots[n]);
        if (!daemon) {
          std::int64_t seen = 0;
          daemon = wait_up(children, tool, slots[n], 0, &seen);
          up = std::max(up, seen);
        }
        if (!daemon) {
          fail(figure.many_start, "daemon " + std::to_string(n) + " not up");
          ok = false;
        } else {
          daemons.push_back(std::move(*daemon));
        }
      }
      if (ok) {
        figure.many_start.ms.push_back(ms_between(start, up));
        long kept_pss = 0;
        bool kept_any = false;
        std::vector<Pidfd> processes;
        for (const auto& daemon : daemons)
          for (pid_t pid : daemon.tree) {
            processes.emplace_back(pid);
            if (pid != daemon.payload && run == 0) {
              kept_pss += memory_of(pid).value_or(Memory{}).pss_kib;
              kept_any = true;
            }
          }
        if (kept_any) figure.many_kept_pss_kib = kept_pss / settings.many;
        ++figure.many_stop.attempts;
        start = now_ns();
        for (const auto& slot : slots)
          if (!(ok = run_command(children, tool.stop(slot), errors, figure.many_stop))) break;
        if (ok && wait_exited(children, processes, kGoneLimit))
          figure.many_stop.ms.push_back(ms_between(start, now_ns()));
        else if (ok)
          fail(figure.many_stop, "daemons still running 20 s after the last stop");
      }
      for (const auto& slot : slots) clean_up(children, slot);
    }
  }
}

namespace {

// One init in its own pid namespace: unshare (--kill-child), the benchmark's
// child, and the namespace's pid 1 below it, held by a pidfd.
struct Init {
  pid_t command = 0;
  Pidfd init;
};

// The namespace's pid 1 is unshare's child once it runs `init_binary` with
// the payload as its own child.
std::optional<Init> wait_init(Children& children, pid_t command, const std::string& init_binary,
                              const std::string& payload) {
  std::int64_t deadline = now_ns() + std::chrono::nanoseconds(kUpLimit).count();
  while (now_ns() < deadline) {
    for (pid_t init : children_of(command)) {
      Pidfd handle(init);
      if (!handle.valid() || parent_of(init) != command || exe_of(init) != init_binary) continue;
      for (pid_t child : children_of(init))
        if (exe_of(child) == payload) return Init{command, std::move(handle)};
    }
    children.pump(kPoll);
  }
  return std::nullopt;
}

// Ends an init: SIGTERM, which it passes to its payload; unshare reports how
// the init ended. Killed (with everything in the namespace) when it takes
// longer than the command limit.
std::string end_init(Children& children, Init& init) {
  init.init.signal(SIGTERM);
  auto status = children.wait(init.command, kCommandLimit);
  return status ? describe(*status) : "did not end within 30 s of SIGTERM";
}

std::vector<pid_t> kept_processes(const Daemon& daemon) {
  std::vector<pid_t> kept;
  for (pid_t pid : tree_of(daemon.pid))
    if (pid != daemon.payload) kept.push_back(pid);
  return kept;
}

std::optional<long> sum_switches(const std::vector<pid_t>& pids) {
  long total = 0;
  for (pid_t pid : pids) {
    auto switches = context_switches(pid);
    if (!switches) return std::nullopt;
    total += *switches;
  }
  return total;
}

std::optional<Memory> sum_memory(const std::vector<pid_t>& pids) {
  Memory total;
  for (pid_t pid : pids) {
    auto memory = memory_of(pid);
    if (!memory) return std::nullopt;
    total.pss_kib += memory->pss_kib;
    total.rss_kib += memory->rss_kib;
    total.uss_kib += memory->uss_kib;
  }
  return total;
}

void rest(Children& children, std::chrono::seconds length) {
  std::int64_t until = now_ns() + std::chrono::nanoseconds(length).count();
  while (now_ns() < until) children.pump(std::chrono::nanoseconds(until - now_ns()));
}

std::optional<Init> start_init(Children& children, const Tool& init, const Programs& programs,
                               const std::string& errors, Samples& failures) {
  ++failures.attempts;
  Argv argv = init.start(Slot{});
  argv.push_back(programs.idle);
  pid_t command = children.spawn(argv, errors);
  auto started = wait_init(children, command, init.binary, programs.idle);
  if (!started) {
    fail(failures, "no init with the payload as its child: " + last_line(errors));
    ::kill(command, SIGKILL);  // unshare's --kill-child takes its init along
    children.wait(command, kCommandLimit);
  }
  return started;
}

}  // namespace

void measure_idle(Children& children, const std::vector<Tool>& tools,
                  const std::vector<Tool>& inits, const Programs& programs,
                  const Settings& settings, std::vector<Figures>& figures,
                  std::vector<InitFigures>& init_figures) {
  // Memory, one tool at a time.
  for (std::size_t i = 0; i < tools.size(); ++i) {
    Slot slot = make_slot(settings.dir, "memory");
    std::string errors = errors_of(settings, tools[i]);
    ++figures[i].rest.attempts;
    Samples scratch;
    if (auto daemon = timed_start(children, tools[i], slot, errors, scratch)) {
      rest(children, 1s);
      auto kept = kept_processes(*daemon);
      figures[i].kept = static_cast<int>(kept.size());
      figures[i].kept_memory = sum_memory(kept);
      figures[i].payload_memory = memory_of(daemon->payload);
      if (!timed_stop(children, tools[i], slot, *daemon, errors, scratch, Reaping::prompt))
        fail(figures[i].rest, "stop: " + scratch.why);
    } else {
      fail(figures[i].rest, "start: " + scratch.why);
    }
    clean_up(children, slot);
  }
  for (std::size_t i = 0; i < inits.size(); ++i) {
    std::string errors = errors_of(settings, inits[i]);
    if (auto init = start_init(children, inits[i], programs, errors, init_figures[i].rest)) {
      rest(children, 1s);
      init_figures[i].memory = memory_of(init->init.pid());
      end_init(children, *init);
    }
  }

  // Wakeups, all at once.
  std::vector<std::optional<Daemon>> daemons(tools.size());
  std::vector<Slot> slots;
  for (std::size_t i = 0; i < tools.size(); ++i) {
    slots.push_back(make_slot(settings.dir, "idle" + std::to_string(i)));
    Samples scratch;
    daemons[i] = timed_start(children, tools[i], slots[i], errors_of(settings, tools[i]), scratch);
    if (!daemons[i]) fail(figures[i].rest, "idle: " + scratch.why);
  }
  std::vector<std::optional<Init>> started(inits.size());
  for (std::size_t i = 0; i < inits.size(); ++i)
    started[i] = start_init(children, inits[i], programs, errors_of(settings, inits[i]),
                            init_figures[i].rest);
  // Let start-up settle (lazy page faults, first timers) before counting.
  rest(children, 1s);
  std::vector<std::vector<pid_t>> kept(tools.size());
  std::vector<std::optional<long>> before(tools.size());
  std::vector<std::optional<long>> payload_before(tools.size());
  std::vector<std::optional<long>> init_before(inits.size());
  for (std::size_t i = 0; i < tools.size(); ++i)
    if (daemons[i]) {
      kept[i] = kept_processes(*daemons[i]);
      before[i] = sum_switches(kept[i]);
      payload_before[i] = context_switches(daemons[i]->payload);
    }
  for (std::size_t i = 0; i < inits.size(); ++i)
    if (started[i]) init_before[i] = context_switches(started[i]->init.pid());
  rest(children, std::chrono::seconds(settings.idle_seconds));
  auto difference = [](std::optional<long> after, std::optional<long> start) {
    return after && start ? std::optional<long>(*after - *start) : std::nullopt;
  };
  for (std::size_t i = 0; i < tools.size(); ++i)
    if (daemons[i]) {
      figures[i].kept_wakeups = difference(sum_switches(kept[i]), before[i]);
      figures[i].payload_wakeups =
          difference(context_switches(daemons[i]->payload), payload_before[i]);
      if (!figures[i].kept_wakeups || !figures[i].payload_wakeups)
        fail(figures[i].rest, "a process of the daemon ended while at rest");
    }
  for (std::size_t i = 0; i < inits.size(); ++i)
    if (started[i]) {
      init_figures[i].wakeups =
          difference(context_switches(started[i]->init.pid()), init_before[i]);
      if (!init_figures[i].wakeups) fail(init_figures[i].rest, "the init ended while at rest");
    }

  for (std::size_t i = 0; i < tools.size(); ++i) {
    Samples scratch;
    if (daemons[i] && !timed_stop(children, tools[i], slots[i], *daemons[i],
                                  errors_of(settings, tools[i]), scratch, Reaping::prompt))
      fail(figures[i].rest, "stop: " + scratch.why);
    clean_up(children, slots[i]);
  }
  for (std::size_t i = 0; i < inits.size(); ++i)
    if (started[i]) init_figures[i].exit = end_init(children, *started[i]);
}

void measure_reaping(Children& children, const std::vector<Tool>& inits, const Programs& programs,
                     const Settings& settings, std::vector<InitFigures>& figures) {
  std::string out = settings.dir + "/orphans.out";
  for (int run = 0; run < settings.runs; ++run) {
    for (std::size_t i : turn(inits.size(), run)) {
      ++figures[i].reap.attempts;
      std::error_code ignored;
      std::filesystem::remove(out, ignored);
      Argv argv = inits[i].start(Slot{});
      argv.insert(argv.end(), {programs.orphans, std::to_string(settings.orphans)});
      std::string errors = errors_of(settings, inits[i]);
      pid_t command = children.spawn(argv, errors, out);
      auto status = children.wait(command, 60s);
      std::ifstream result(out);
      double microseconds = -1;
      if (!status || !WIFEXITED(*status) || WEXITSTATUS(*status) != 0 || !(result >> microseconds))
        fail(figures[i].reap,
             status ? describe(*status) + ": " + last_line(errors) : "did not end within 60 s");
      else
        figures[i].reap.ms.push_back(microseconds / 1000);
    }
  }
}

}  // namespace bench
