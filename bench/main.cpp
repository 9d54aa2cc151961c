// daemonkit-bench: daemonkit side by side with the reference daemonizers,
// the inits of containers, and a floor of its own. scripts/bench.sh runs it
// and writes docs/bench.md, docs/bench.svg and the README's table.
#include <signal.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>

#include "children.hpp"
#include "measure.hpp"
#include "report.hpp"
#include "tools.hpp"

namespace fs = std::filesystem;

namespace {

constexpr const char* kUsage = R"(usage: daemonkit-bench --build DIR [OPTIONS]

Measures daemonkit beside start-stop-daemon, daemonize, libslack daemon, tini,
dumb-init and a floor program, and prints a Markdown report.

  --build DIR        the build directory holding daemonkit, heartbeat and bench/
  --out DIR          also write DIR/bench.md and DIR/bench.svg
  --readme FILE      replace FILE's lines between <!-- bench:begin --> and
                     <!-- bench:end --> with the report
  --command TEXT     how the report says the figures were taken
  --runs N           runs of each latency measurement (default 20)
  --cycles N         start/restart/stop cycles (default 50)
  --many N           daemons in the many-daemons measurement (default 100)
  --many-runs N      runs of the many-daemons measurement (default 20)
  --idle-seconds N   length of the at-rest window (default 10)
  --orphans N        orphans reaped by each init (default 1000)
  --only NAME,...    just these tools (and the floor), by their names in the report
  --quick            a smoke run: 3 runs, 3 cycles, 10 daemons, 2 s at rest
                     (options after it override these)
)";

int positive(const char* text, const char* option) {
  char* end = nullptr;
  long value = std::strtol(text, &end, 10);
  if (*end != '\0' || value <= 0 || value > 1'000'000)
    throw std::invalid_argument(std::string(option) + ": not a positive number: " + text);
  return static_cast<int>(value);
}

std::string first_line(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key, 0) == 0) {
      std::size_t colon = line.find(':');
      std::size_t equal = line.find('=');
      std::size_t at = colon != std::string::npos ? colon : equal;
      std::string value = at == std::string::npos ? line : line.substr(at + 1);
      value.erase(0, value.find_first_not_of(" \t\""));
      while (!value.empty() && value.back() == '"') value.pop_back();
      return value;
    }
  return "unknown";
}

std::string machine() {
  utsname name{};
  uname(&name);
  std::time_t now = std::time(nullptr);
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%d", std::gmtime(&now));
  std::ostringstream out;
  out << date << " on " << first_line("/proc/cpuinfo", "model name") << ", "
      << sysconf(_SC_NPROCESSORS_ONLN) << " cores, Linux " << name.release << ", "
      << first_line("/etc/os-release", "PRETTY_NAME");
  return out.str();
}

void write_file(const fs::path& path, const std::string& text) {
  fs::path temporary = path;
  temporary += ".new";
  {
    std::ofstream out(temporary);
    out << text;
    if (!out.flush()) throw std::runtime_error("cannot write " + temporary.string());
  }
  fs::rename(temporary, path);
}

void replace_between_markers(const fs::path& readme, const std::string& text) {
  std::ifstream in(readme);
  if (!in) throw std::runtime_error("cannot read " + readme.string());
  std::stringstream whole;
  whole << in.rdbuf();
  std::string content = whole.str();
  const std::string begin = "<!-- bench:begin -->\n";
  const std::string end = "<!-- bench:end -->";
  std::size_t from = content.find(begin);
  std::size_t to = content.find(end);
  if (from == std::string::npos || to == std::string::npos || to < from)
    throw std::runtime_error(readme.string() + " has no <!-- bench:begin/end --> markers");
  content.replace(from + begin.size(), to - from - begin.size(), text);
  write_file(readme, content);
}

// Kills whatever the benchmark started and left behind. Only its own
// children are signalled (a child's pid stays its own until it is reaped);
// what they leave comes back to it as their subreaper, round after round.
void kill_leftovers() {
  for (int round = 0; round < 100; ++round) {
    auto children = bench::children_of(getpid());
    if (children.empty()) return;
    for (pid_t pid : children) kill(pid, SIGKILL);
    for (pid_t pid : children) waitpid(pid, nullptr, 0);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string work_dir;  // removed on the way out, whatever happens
  try {
    bench::Settings settings;
    std::string build;
    std::string out;
    std::string readme;
    std::string command = "daemonkit-bench";
    std::string only;  // ",name,name,": just these tools and the floor
    for (int i = 1; i < argc; ++i) {
      std::string arg = argv[i];
      auto value = [&]() -> const char* {
        if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
        return argv[++i];
      };
      if (arg == "--build")
        build = value();
      else if (arg == "--out")
        out = value();
      else if (arg == "--readme")
        readme = value();
      else if (arg == "--command")
        command = value();
      else if (arg == "--only")
        only = "," + std::string(value()) + ",";
      else if (arg == "--runs")
        settings.runs = positive(value(), "--runs");
      else if (arg == "--cycles")
        settings.cycles = positive(value(), "--cycles");
      else if (arg == "--many")
        settings.many = positive(value(), "--many");
      else if (arg == "--many-runs")
        settings.many_runs = positive(value(), "--many-runs");
      else if (arg == "--idle-seconds")
        settings.idle_seconds = positive(value(), "--idle-seconds");
      else if (arg == "--orphans")
        settings.orphans = positive(value(), "--orphans");
      else if (arg == "--quick") {
        settings.runs = 3;
        settings.cycles = 3;
        settings.many = 10;
        settings.many_runs = 2;
        settings.idle_seconds = 2;
        settings.orphans = 100;
      } else if (arg == "--help" || arg == "-h") {
        std::cout << kUsage;
        return 0;
      } else {
        throw std::invalid_argument("unknown argument: " + arg);
      }
    }
    if (build.empty()) throw std::invalid_argument("--build DIR is required");

    fs::path bin = fs::canonical(build);
    bench::Programs programs{(bin / "daemonkit").string(), (bin / "heartbeat").string(),
                             (bin / "bench/floor").string(), (bin / "bench/idle").string(),
                             (bin / "bench/orphans").string()};
    for (const auto& path :
         {programs.daemonkit, programs.heartbeat, programs.floor, programs.idle, programs.orphans})
      if (access(path.c_str(), X_OK) != 0)
        throw std::runtime_error(path + ": " + std::strerror(errno) + " (build it first)");

    auto wanted = [&](const bench::Tool& tool) {
      return only.empty() || tool.is_floor || only.find("," + tool.name + ",") != std::string::npos;
    };
    bench::Results results;
    results.command = command;
    for (auto& tool : bench::daemonizers(programs, false)) {
      if (!wanted(tool)) continue;
      if (access(tool.binary.c_str(), X_OK) == 0)
        results.tools.push_back(std::move(tool));
      else
        results.skipped.push_back(tool.name + ": " + tool.binary + " is not installed");
    }
    // The same tools, with heartbeat quiet for the at-rest measurement.
    std::vector<bench::Tool> quiet;
    for (const auto& tool : results.tools)
      for (auto& candidate : bench::daemonizers(programs, true))
        if (candidate.name == tool.name) quiet.push_back(std::move(candidate));
    for (auto& tool : bench::inits(programs)) {
      if (!wanted(tool)) continue;
      if (access(tool.binary.c_str(), X_OK) == 0)
        results.inits.push_back(std::move(tool));
      else
        results.skipped.push_back(tool.name + ": " + tool.binary + " is not installed");
    }

    // Pidfiles belong in /run (a tmpfs), so the daemons' files go there when
    // it is writable, unless TMPDIR says otherwise.
    const char* tmp = std::getenv("TMPDIR");
    std::string base = tmp != nullptr ? tmp : access("/run", W_OK) == 0 ? "/run" : "/tmp";
    std::string pattern = base + "/daemonkit-bench.XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr)
      throw std::runtime_error("mkdtemp " + pattern + ": " + std::strerror(errno));
    settings.dir = pattern;
    work_dir = pattern;
    results.settings = settings;
    results.figures.resize(results.tools.size());
    results.init_figures.resize(results.inits.size());
    results.taken = machine();

    // What the payloads must not inherit from a service manager above us.
    for (const char* name : {"NOTIFY_SOCKET", "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES",
                             "WATCHDOG_USEC", "WATCHDOG_PID"})
      unsetenv(name);
    bench::Children children;
    auto step = [](const char* what) { std::cerr << "daemonkit-bench: " << what << "\n"; };
    step("start and stop");
    bench::measure_start_stop(children, results.tools, settings, results.figures);
    step("restart cycles");
    bench::measure_restarts(children, results.tools, settings, results.figures);
    step("many daemons");
    bench::measure_many(children, results.tools, settings, results.figures);
    step("at rest");
    bench::measure_idle(children, quiet, results.inits, programs, settings, results.figures,
                        results.init_figures);
    step("orphans reaped by pid 1");
    bench::measure_reaping(children, results.inits, programs, settings, results.init_figures);
    kill_leftovers();
    children.reap_all();
    fs::remove_all(settings.dir);

    std::string report = bench::markdown(results, out.empty() ? "bench.svg" : "docs/bench.svg");
    if (!out.empty()) {
      write_file(fs::path(out) / "bench.md",
                 "# Benchmarks\n\n" + bench::markdown(results, "bench.svg"));
      write_file(fs::path(out) / "bench.svg", bench::svg(results));
    }
    if (!readme.empty()) replace_between_markers(readme, report);
    std::cout << report;
    return 0;
  } catch (const std::invalid_argument& error) {
    std::cerr << "daemonkit-bench: " << error.what() << "\n" << kUsage;
    return 2;
  } catch (const std::exception& error) {
    kill_leftovers();
    if (!work_dir.empty()) {
      std::error_code ignored;
      fs::remove_all(work_dir, ignored);
    }
    std::cerr << "daemonkit-bench: " << error.what() << "\n";
    return 1;
  }
}
