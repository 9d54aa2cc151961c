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

double ms_since(std::int64_t start) {
  return static_cast<double>(now_ns() - start) / 1e6;
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

std::optional<Daemon> wait_up(Children& children, const Tool& tool, const Slot& slot,
                              pid_t old_payload = 0) {
  std::int64_t deadline = now_ns() + std::chrono::nanoseconds(kUpLimit).count();
  for (;;) {
    auto daemon = probe_up(tool, slot);
    if (daemon && daemon->payload != old_payload) return daemon;
    if (now_ns() > deadline) return std::nullopt;
    children.pump(kPoll);
  }
}

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

// Kills whatever is left of a daemon the benchmark started (its processes
// are the benchmark's children, as it is their subreaper) and removes its
// files, so the next run starts from nothing.
void clean_up(Children& children, const Slot& slot) {
  auto pid = read_pid(slot.pidfile);
  if (pid && parent_of(*pid) == getpid()) {
    auto processes = handles(tree_of(*pid));
    for (const auto& process : processes) process.kill();
    wait_exited(children, processes, kGoneLimit);
  }
  children.reap_all();
  std::error_code ignored;
  for (const auto& path : {slot.pidfile, slot.lockfile, slot.log})
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
  std::int64_t start = now_ns();
  if (!run_command(children, tool.start(slot), errors, samples)) return std::nullopt;
  double returned = ms_since(start);
  if (auto daemon = probe_up(tool, slot)) {
    samples.ms.push_back(returned);
    return daemon;
  }
  ++samples.early;
  auto daemon = wait_up(children, tool, slot);
  if (!daemon) {
    fail(samples, "not up 10 s after start returned");
    return std::nullopt;
  }
  samples.ms.push_back(ms_since(start));
  return daemon;
}

// Stops a daemon; `samples` gets the time until all its processes exited.
bool timed_stop(Children& children, const Tool& tool, const Slot& slot, const Daemon& daemon,
                const std::string& errors, Samples& samples, Reaping reaping) {
  auto processes = handles(daemon.tree);
  children.set_reaping(reaping);
  std::int64_t start = now_ns();
  bool stopped = run_command(children, tool.stop(slot), errors, samples);
  double returned = ms_since(start);
  bool gone = stopped && wait_exited(children, processes, 0ms);
  if (gone) {
    samples.ms.push_back(returned);
  } else if (stopped) {
    ++samples.early;
    gone = wait_exited(children, processes, kGoneLimit);
    if (gone)
      samples.ms.push_back(ms_since(start));
    else
      fail(samples, "still running 20 s after stop returned");
  }
  children.set_reaping(Reaping::prompt);
  children.reap_all();
  return gone;
}

}  // namespace

void measure_start_stop(Children& children, const std::vector<Tool>& tools,
                        const Settings& settings, std::vector<Figures>& figures) {
  for (int run = 0; run < settings.runs; ++run) {
    for (std::size_t i = 0; i < tools.size(); ++i) {
      Slot slot = make_slot(settings.dir, "latency");
      std::string errors = errors_of(settings, tools[i]);
      if (auto daemon = timed_start(children, tools[i], slot, errors, figures[i].start))
        timed_stop(children, tools[i], slot, *daemon, errors, figures[i].stop, Reaping::prompt);
      clean_up(children, slot);
    }
    for (std::size_t i = 0; i < tools.size(); ++i) {
      Slot slot = make_slot(settings.dir, "latency");
      std::string errors = errors_of(settings, tools[i]);
      Samples unused;
      if (auto daemon = timed_start(children, tools[i], slot, errors, unused))
        timed_stop(children, tools[i], slot, *daemon, errors, figures[i].stop_slow_reaper,
                   Reaping::slow);
      else
        fail(figures[i].stop_slow_reaper, "start failed: " + unused.why);
      clean_up(children, slot);
    }
  }
}

void measure_restarts(Children& children, const std::vector<Tool>& tools, const Settings& settings,
                      std::vector<Figures>& figures) {
  for (int cycle = 0; cycle < settings.cycles; ++cycle) {
    for (std::size_t i = 0; i < tools.size(); ++i) {
      const Tool& tool = tools[i];
      Figures& figure = figures[i];
      ++figure.cycles;
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
      if (!restarted) {
        fail(figure.restart, "restart: " + scratch.why);
      } else if (!(second = wait_up(children, tool, slot, first->payload))) {
        fail(figure.restart, "no new payload up 10 s after restart");
      } else if (!old_payload.exited()) {
        fail(figure.restart, "two payloads ran at once after restart");
      } else {
        figure.restart.ms.push_back(ms_since(start));
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
    for (std::size_t i = 0; i < tools.size(); ++i) {
      const Tool& tool = tools[i];
      Figures& figure = figures[i];
      std::string errors = errors_of(settings, tool);
      std::vector<Slot> slots;
      slots.reserve(static_cast<std::size_t>(settings.many));
      for (int n = 0; n < settings.many; ++n)
        slots.push_back(make_slot(settings.dir, "many" + std::to_string(n)));
      bool ok = true;
      std::int64_t start = now_ns();
      for (const auto& slot : slots)
        if (!(ok = run_command(children, tool.start(slot), errors, figure.many_start))) break;
      std::vector<Pidfd> processes;
      long kept_pss = 0;
      bool kept_any = false;
      for (std::size_t n = 0; ok && n < slots.size(); ++n) {
        auto daemon = wait_up(children, tool, slots[n]);
        if (!daemon) {
          fail(figure.many_start, "daemon " + std::to_string(n) + " not up");
          ok = false;
        } else {
          for (pid_t pid : daemon->tree) {
            processes.emplace_back(pid);
            if (pid != daemon->payload && run == 0)
              kept_pss += memory_of(pid).value_or(Memory{}).pss_kib;
          }
          kept_any = kept_any || daemon->tree.size() > 1;
        }
      }
      if (ok && run == 0 && kept_any) figure.many_kept_pss_kib = kept_pss / settings.many;
      if (ok) {
        figure.many_start.ms.push_back(ms_since(start));
        start = now_ns();
        for (const auto& slot : slots)
          if (!(ok = run_command(children, tool.stop(slot), errors, figure.many_stop))) break;
        if (ok && wait_exited(children, processes, kGoneLimit))
          figure.many_stop.ms.push_back(ms_since(start));
        else if (ok)
          fail(figure.many_stop, "daemons still running 20 s after the last stop");
      }
      for (const auto& slot : slots) clean_up(children, slot);
    }
  }
}

namespace {

struct Init {
  pid_t command = 0;  // unshare
  pid_t init = 0;     // pid 1 of the namespace, as the host sees it
};

// The namespace's pid 1 is unshare's child once it runs `init_binary` with
// the payload as its own child.
std::optional<Init> wait_init(Children& children, pid_t command, const std::string& init_binary,
                              const std::string& payload) {
  std::int64_t deadline = now_ns() + std::chrono::nanoseconds(kUpLimit).count();
  while (now_ns() < deadline) {
    for (pid_t init : children_of(command))
      if (exe_of(init) == init_binary)
        for (pid_t child : children_of(init))
          if (exe_of(child) == payload) return Init{command, init};
    children.pump(kPoll);
  }
  return std::nullopt;
}

long sum_switches(const std::vector<pid_t>& pids) {
  long total = 0;
  for (pid_t pid : pids) total += context_switches(pid).value_or(0);
  return total;
}

}  // namespace

void measure_idle(Children& children, const std::vector<Tool>& tools,
                  const std::vector<Tool>& inits, const Programs& programs,
                  const Settings& settings, std::vector<Figures>& figures,
                  std::vector<InitFigures>& init_figures) {
  std::vector<std::optional<Daemon>> daemons(tools.size());
  std::vector<Slot> slots;
  for (std::size_t i = 0; i < tools.size(); ++i) {
    slots.push_back(make_slot(settings.dir, "idle" + std::to_string(i)));
    Samples scratch;
    daemons[i] = timed_start(children, tools[i], slots[i], errors_of(settings, tools[i]), scratch);
    if (!daemons[i]) fail(figures[i].start, "idle: " + scratch.why);
  }
  std::vector<std::optional<Init>> started(inits.size());
  for (std::size_t i = 0; i < inits.size(); ++i) {
    Argv argv = inits[i].start(Slot{});
    argv.push_back(programs.idle);
    pid_t command = children.spawn(argv, errors_of(settings, inits[i]));
    started[i] = wait_init(children, command, inits[i].binary, programs.idle);
    if (!started[i]) fail(init_figures[i].reap, "no init with the payload as its child");
  }
  // Let start-up settle (lazy page faults, the first timers) before reading.
  std::int64_t rest_until = now_ns() + 1'000'000'000;
  while (now_ns() < rest_until) children.pump(std::chrono::nanoseconds(rest_until - now_ns()));

  std::vector<std::vector<pid_t>> kept(tools.size());
  for (std::size_t i = 0; i < tools.size(); ++i) {
    if (!daemons[i]) continue;
    Memory total;
    for (pid_t pid : daemons[i]->tree) {
      if (pid == daemons[i]->payload) continue;
      kept[i].push_back(pid);
      if (auto memory = memory_of(pid)) {
        total.pss_kib += memory->pss_kib;
        total.rss_kib += memory->rss_kib;
      }
    }
    figures[i].kept = static_cast<int>(kept[i].size());
    figures[i].kept_memory = total;
    figures[i].payload_memory = memory_of(daemons[i]->payload);
  }
  for (std::size_t i = 0; i < inits.size(); ++i)
    if (started[i]) init_figures[i].memory = memory_of(started[i]->init);

  std::vector<long> before(tools.size());
  std::vector<long> payload_before(tools.size());
  std::vector<long> init_before(inits.size());
  for (std::size_t i = 0; i < tools.size(); ++i)
    if (daemons[i]) {
      before[i] = sum_switches(kept[i]);
      payload_before[i] = sum_switches({daemons[i]->payload});
    }
  for (std::size_t i = 0; i < inits.size(); ++i)
    if (started[i]) init_before[i] = sum_switches({started[i]->init});
  std::int64_t idle_until = now_ns() + std::int64_t{settings.idle_seconds} * 1'000'000'000;
  while (now_ns() < idle_until) children.pump(std::chrono::nanoseconds(idle_until - now_ns()));
  for (std::size_t i = 0; i < tools.size(); ++i)
    if (daemons[i]) {
      figures[i].kept_wakeups = sum_switches(kept[i]) - before[i];
      figures[i].payload_wakeups = sum_switches({daemons[i]->payload}) - payload_before[i];
    }
  for (std::size_t i = 0; i < inits.size(); ++i)
    if (started[i]) init_figures[i].wakeups = sum_switches({started[i]->init}) - init_before[i];

  for (std::size_t i = 0; i < tools.size(); ++i) {
    Samples scratch;
    if (daemons[i])
      timed_stop(children, tools[i], slots[i], *daemons[i], errors_of(settings, tools[i]), scratch,
                 Reaping::prompt);
    clean_up(children, slots[i]);
  }
  for (std::size_t i = 0; i < inits.size(); ++i) {
    if (!started[i]) continue;
    Pidfd init(started[i]->init);
    init.signal(SIGTERM);
    auto status = children.wait(started[i]->command, kCommandLimit);
    init_figures[i].exit = status ? describe(*status) : "did not end within 30 s of SIGTERM";
    if (!status) init.kill();
  }
}

void measure_reaping(Children& children, const std::vector<Tool>& inits, const Programs& programs,
                     const Settings& settings, std::vector<InitFigures>& figures) {
  std::string out = settings.dir + "/orphans.out";
  for (int run = 0; run < settings.runs; ++run) {
    for (std::size_t i = 0; i < inits.size(); ++i) {
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
