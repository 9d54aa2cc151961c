#include "report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <optional>
#include <sstream>

namespace bench {

namespace {

struct Stat {
  double median = 0;
  double min = 0;
  double max = 0;
};

std::optional<Stat> stat_of(std::vector<double> values) {
  if (values.empty()) return std::nullopt;
  std::sort(values.begin(), values.end());
  std::size_t n = values.size();
  double median = n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
  return Stat{median, values.front(), values.back()};
}

[[gnu::format(printf, 1, 2)]] std::string print(const char* format, ...) {
  char text[512];
  va_list args;
  va_start(args, format);
  // clang-analyzer 14 loses track of va_start here (a false positive).
  std::vsnprintf(text, sizeof text, format, args);  // NOLINT(clang-analyzer-valist.Uninitialized)
  va_end(args);
  return text;
}

std::string duration(double ms) {
  if (ms >= 1000) return print("%.2f s", ms / 1000);
  if (ms >= 100) return print("%.0f ms", ms);
  if (ms >= 10) return print("%.1f ms", ms);
  return print("%.2f ms", ms);
}

// `ms` without its unit, in the unit and precision duration() gives `like`.
std::string bare(double ms, double like) {
  if (like >= 1000) return print("%.2f", ms / 1000);
  if (like >= 100) return print("%.0f", ms);
  if (like >= 10) return print("%.1f", ms);
  return print("%.2f", ms);
}

std::string ratio(double value, double floor) {
  if (floor <= 0) return "";
  return print("%.2f×", value / floor);
}

// "2.41 ms (2.30–2.90) · 1.04×", with failures when there were any.
std::string cell(const Samples& samples, const Samples* floor) {
  std::string text;
  if (auto stat = stat_of(samples.ms)) {
    text = duration(stat->median) + " (" + bare(stat->min, stat->median) + "–" +
           bare(stat->max, stat->median) + ")";
    if (floor != nullptr)
      if (auto base = stat_of(floor->ms))
        text += " · **" + ratio(stat->median, base->median) + "**";
  } else {
    text = "—";
  }
  if (samples.failed > 0) text += print(" (%d failed)", samples.failed);
  return text;
}

std::string share(int count, int of) {
  return count == 0 ? "no" : print("%d of %d", count, of);
}

std::string xml_escaped(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '&')
      out += "&amp;";
    else if (c == '<')
      out += "&lt;";
    else if (c == '>')
      out += "&gt;";
    else
      out += c;
  }
  return out;
}

std::string kib(long value) {
  return print("%ld KiB", value);
}

std::optional<double> median(const Samples& samples) {
  auto stat = stat_of(samples.ms);
  return stat ? std::optional<double>(stat->median) : std::nullopt;
}

const Tool* find(const std::vector<Tool>& tools, const std::string& name, std::size_t* index) {
  for (std::size_t i = 0; i < tools.size(); ++i)
    if (tools[i].name == name) {
      *index = i;
      return &tools[i];
    }
  return nullptr;
}

void target(std::ostringstream& out, const std::string& what, const std::string& figure,
            std::optional<bool> met) {
  out << "| " << what << " | " << figure << " | "
      << (met ? (*met ? "met" : "**missed**") : "not measured") << " |\n";
}

}  // namespace

std::string markdown(const Results& results, const std::string& plot) {
  const auto& tools = results.tools;
  const auto& figures = results.figures;
  const Settings& settings = results.settings;
  const Figures& floor = figures.front();
  std::ostringstream out;

  out << "Taken " << results.taken << ", by `" << results.command << "`. Medians of "
      << settings.runs
      << " runs unless said otherwise, the tools taken in turn (each run starting one further "
         "along), min–max in brackets; **×** is the ratio to the floor's median.\n\n";

  out << "#### Start and stop\n\n"
      << "*start*: from running the command until the pidfile names a live process that holds "
         "the lock (for tools that lock) with the payload running in it. *stop*: until every "
         "process of the daemon has exited. *slow reaper*: the daemon's orphans are reaped on "
         "the ticks of a clock that runs once a second whatever the benchmark does, as by a "
         "pid 1 that reaps only now and then (this machine's does); a tool that waits for the "
         "pid to vanish waits for the tick. *restart*: "
      << settings.cycles
      << " cycles of start, restart (for tools without one, and for the floor: stop, then "
         "start), stop; a cycle fails unless each command succeeds, a new payload comes up, the "
         "old one is gone by the time the new one is seen, and stop leaves nothing running. The "
         "restart time runs until the new payload is seen up.\n\n"
      << "| tool | start | returned before up | stop | returned before gone | stop, slow reaper "
         "| restart | failed cycles |\n"
      << "|---|---|---|---|---|---|---|---|\n";
  for (std::size_t i = 0; i < tools.size(); ++i) {
    const Figures& f = figures[i];
    const Samples* base = i == 0 ? nullptr : &floor.start;
    out << "| " << tools[i].name << " | " << cell(f.start, base) << " | "
        << share(f.start.early, f.start.attempts) << " | "
        << cell(f.stop, i == 0 ? nullptr : &floor.stop) << " | "
        << share(f.stop.early, f.stop.attempts) << " | "
        << cell(f.stop_slow_reaper, i == 0 ? nullptr : &floor.stop_slow_reaper) << " | "
        << cell(f.restart, i == 0 ? nullptr : &floor.restart) << " | "
        << print("%d of %d", f.restart.failed, f.cycles) << " |\n";
  }

  out << "\n#### " << settings.many << " daemons\n\n"
      << "Started one after the other until the last start returned and all are seen up, "
         "then stopped one after the other until all are gone; medians of "
      << settings.many_runs
      << " runs. The last column: PSS per daemon of the processes kept besides the payload, "
         "with all of them running (they share their program's pages).\n\n"
      << "| tool | start all | stop all | PSS kept per daemon |\n|---|---|---|---|\n";
  for (std::size_t i = 0; i < tools.size(); ++i)
    out << "| " << tools[i].name << " | "
        << cell(figures[i].many_start, i == 0 ? nullptr : &floor.many_start) << " | "
        << cell(figures[i].many_stop, i == 0 ? nullptr : &floor.many_stop) << " | "
        << (figures[i].many_kept_pss_kib ? kib(*figures[i].many_kept_pss_kib) : "—") << " |\n";

  out << "\n#### At rest\n\n"
      << "One daemon, one sample. Memory of the processes each tool keeps besides the payload, "
         "read with that tool's daemon alone after a second of rest (from "
         "`/proc/PID/smaps_rollup`: PSS shares each page among the processes that map it, so it "
         "depends on what else runs; USS counts the pages only they hold). Then one daemon of "
         "every tool at once, and the context switches of all their processes over "
      << settings.idle_seconds
      << " s. The payload is `bench/idle.c`, a bare pause() program, so its PSS, read at the "
         "same moment, is what any resident process costs on this machine. heartbeat is its "
         "own payload; here it runs with `--interval 3600`, so what it wakes for is "
         "overhead.\n\n"
      << "| tool | processes kept | their PSS | their USS | their RSS | their wakeups | "
         "payload's PSS | payload's RSS | payload's wakeups "
         "|\n|---|---|---|---|---|---|---|---|---|\n";
  for (std::size_t i = 0; i < tools.size(); ++i) {
    const Figures& f = figures[i];
    auto memory = [&](const std::optional<Memory>& m, long Memory::*field) {
      return m ? kib((*m).*field) : std::string("—");
    };
    auto count = [](const std::optional<long>& n) {
      return n ? std::to_string(*n) : std::string("—");
    };
    bool any = f.kept > 0;
    out << "| " << tools[i].name << " | " << f.kept << " | "
        << (any ? memory(f.kept_memory, &Memory::pss_kib) : "—") << " | "
        << (any ? memory(f.kept_memory, &Memory::uss_kib) : "—") << " | "
        << (any ? memory(f.kept_memory, &Memory::rss_kib) : "—") << " | "
        << (any ? count(f.kept_wakeups) : "—") << " | "
        << memory(f.payload_memory, &Memory::pss_kib) << " | "
        << memory(f.payload_memory, &Memory::rss_kib) << " | " << count(f.payload_wakeups)
        << " |\n";
  }

  const auto& inits = results.inits;
  const auto& init_figures = results.init_figures;
  out << "\n#### As pid 1 of a container\n\n"
      << "Each init as pid 1 of a new pid namespace (`unshare --pid --fork --kill-child "
         "--mount-proc`) with an idle payload: its memory after a second of rest, alone; its "
         "context switches over "
      << settings.idle_seconds << " s beside the daemons above; then the time from the moment "
      << settings.orphans
      << " orphans are released (the payload `bench/orphans.c` makes them, lets them all exit "
         "at once and watches) until init has reaped the last, medians of "
      << settings.runs << " runs; × is the ratio to tini.\n\n"
      << "| init | PSS | USS | RSS | wakeups | reap " << settings.orphans
      << " orphans | on SIGTERM |\n|---|---|---|---|---|---|---|\n";
  std::size_t tini = 0;
  const Tool* has_tini = find(inits, "tini", &tini);
  for (std::size_t i = 0; i < inits.size(); ++i) {
    const InitFigures& f = init_figures[i];
    out << "| " << inits[i].name << " | " << (f.memory ? kib(f.memory->pss_kib) : "—") << " | "
        << (f.memory ? kib(f.memory->uss_kib) : "—") << " | "
        << (f.memory ? kib(f.memory->rss_kib) : "—") << " | "
        << (f.wakeups ? std::to_string(*f.wakeups) : "—") << " | "
        << cell(f.reap, has_tini && i != tini ? &init_figures[tini].reap : nullptr) << " | "
        << (f.exit.empty() ? "—" : f.exit) << " |\n";
  }

  out << "\n#### Targets\n\n| target | figure | |\n|---|---|---|\n";
  std::size_t dk = 0;
  std::size_t hb = 0;
  bool has_dk = find(tools, "daemonkit", &dk) != nullptr;
  bool has_hb = find(tools, "heartbeat", &hb) != nullptr;
  auto versus = [&](const Samples& ours, const Samples& base, double limit, const char* what) {
    auto a = median(ours);
    auto b = median(base);
    if (!a || !b) {
      target(out, what, "—", std::nullopt);
      return;
    }
    target(out, print("%s ≤ %.2f× floor (the aim: 1.10×)", what, limit),
           duration(*a) + " vs " + duration(*b) + ": " + ratio(*a, *b), *a <= limit * *b);
  };
  if (has_dk) {
    const Figures& f = figures[dk];
    versus(f.start, floor.start, 1.5, "daemonkit start");
    versus(f.stop, floor.stop, 1.5, "daemonkit stop");
    target(out, "restart cycles fail 0 times", print("%d of %d", f.restart.failed, f.cycles),
           f.restart.failed == 0);
    // The payload is bench/idle.c, a bare pause() program, measured at the
    // same moment: what any resident process costs here.
    if (f.kept_memory && f.payload_memory)
      target(out, "supervisor PSS ≤ 1.5× a bare pause() program's (the payload's)",
             print("%ld vs %ld KiB: %.2f×", f.kept_memory->pss_kib, f.payload_memory->pss_kib,
                   static_cast<double>(f.kept_memory->pss_kib) /
                       static_cast<double>(std::max(1L, f.payload_memory->pss_kib))),
             2 * f.kept_memory->pss_kib <= 3 * f.payload_memory->pss_kib);
    if (f.kept_wakeups)
      target(out, "supervisor wakes 0 times at rest", std::to_string(*f.kept_wakeups),
             *f.kept_wakeups == 0);
    std::string start_many = "daemonkit start of " + std::to_string(settings.many);
    std::string stop_many = "daemonkit stop of " + std::to_string(settings.many);
    versus(f.many_start, floor.many_start, 1.5, start_many.c_str());
    versus(f.many_stop, floor.many_stop, 1.5, stop_many.c_str());
  }
  if (has_hb && figures[hb].payload_memory)
    target(out, "heartbeat RSS ≤ 1.5 MiB", kib(figures[hb].payload_memory->rss_kib),
           figures[hb].payload_memory->rss_kib <= 1536);
  std::size_t run = 0;
  std::size_t dumb = 0;
  if (find(inits, "daemonkit run", &run) && has_tini && find(inits, "dumb-init", &dumb)) {
    const auto& ours = init_figures[run];
    const auto& a = init_figures[tini];
    const auto& b = init_figures[dumb];
    if (ours.memory && a.memory && b.memory)
      target(out, "`run` as pid 1: PSS ≤ tini's and dumb-init's",
             print("%ld vs %ld and %ld KiB", ours.memory->pss_kib, a.memory->pss_kib,
                   b.memory->pss_kib),
             ours.memory->pss_kib <= std::min(a.memory->pss_kib, b.memory->pss_kib));
    if (ours.wakeups)
      target(out, "`run` as pid 1 wakes 0 times at rest", std::to_string(*ours.wakeups),
             *ours.wakeups == 0);
    auto x = median(ours.reap);
    auto y = median(a.reap);
    if (x && y)
      target(out, "`run` as pid 1 reaps as fast as tini",
             duration(*x) + " vs " + duration(*y) + ": " + ratio(*x, *y), *x <= *y * 1.1);
  }

  out << "\n#### The tools\n\n";
  for (const auto& tool : tools)
    out << "- **" << tool.name << "**" << (tool.note.empty() ? "" : ": " + tool.note) << "\n";
  for (const auto& skipped : results.skipped) out << "- skipped: " << skipped << "\n";
  bool any_failure = false;
  for (std::size_t i = 0; i < tools.size(); ++i) {
    const Figures& f = figures[i];
    for (const Samples* s :
         {&f.start, &f.stop, &f.stop_slow_reaper, &f.restart, &f.many_start, &f.many_stop, &f.rest})
      if (!s->why.empty()) {
        if (!any_failure) out << "\nFirst failures seen:\n\n";
        any_failure = true;
        out << "- " << tools[i].name << ": " << s->why << "\n";
      }
  }
  for (std::size_t i = 0; i < inits.size(); ++i)
    for (const Samples* s : {&init_figures[i].reap, &init_figures[i].rest})
      if (!s->why.empty()) {
        if (!any_failure) out << "\nFirst failures seen:\n\n";
        any_failure = true;
        out << "- " << inits[i].name << ": " << s->why << "\n";
      }
  out << "\n![Ratios to the floor](" << plot << ")\n";
  return out.str();
}

std::string svg(const Results& results) {
  struct Metric {
    std::string title;
    const Samples Figures::*samples;
  };
  const std::string many = std::to_string(results.settings.many);
  const Metric metrics[] = {
      {"start", &Figures::start},
      {"stop", &Figures::stop},
      {"stop, slow reaper", &Figures::stop_slow_reaper},
      {"restart", &Figures::restart},
      {"start " + many, &Figures::many_start},
      {"stop " + many, &Figures::many_stop},
  };
  const char* colors[] = {"#555555", "#1f6feb", "#6ea8fe", "#2da44e",
                          "#d1242f", "#bf8700", "#8250df", "#999999"};
  const auto& tools = results.tools;
  const auto& figures = results.figures;

  double top = 1;
  for (const auto& metric : metrics)
    if (auto base = median(figures.front().*metric.samples))
      for (const auto& f : figures)
        if (auto value = median(f.*metric.samples)) top = std::max(top, *value / *base);
  double decades = std::ceil(std::log10(top * 1.5));
  double low = std::log10(0.5);
  double high = std::max(1.0, decades);
  const double left = 200;
  const double width = 600;
  auto x_of = [&](double r) {
    return left + (std::log10(std::max(r, 0.5)) - low) / (high - low) * width;
  };
  const double bar = 14;
  const double group = 24 + bar * static_cast<double>(tools.size() - 1) + 8;
  const double height = 60 + group * static_cast<double>(std::size(metrics)) + 20;

  std::ostringstream out;
  out << print(R"(<svg xmlns="http://www.w3.org/2000/svg" width="900" height="%.0f" )", height)
      << R"(font-family="sans-serif" font-size="12">)"
      << "\n"
      << R"(<rect width="100%" height="100%" fill="white"/>)"
      << "\n"
      << R"(<text x="10" y="20" font-size="15" font-weight="bold">)"
      << "Time as a multiple of the floor's (log scale; left of 1× is faster)</text>\n"
      << R"(<text x="10" y="38" fill="#555">)" << xml_escaped(results.taken) << "</text>\n";
  for (double tick : {0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0}) {
    if (std::log10(tick) > high + 1e-9) break;
    double x = x_of(tick);
    out << print(R"(<line x1="%.1f" y1="50" x2="%.1f" y2="%.0f" stroke="%s" %s/>)", x, x,
                 height - 15, tick == 1.0 ? "#333" : "#ddd",
                 tick == 1.0 ? R"(stroke-dasharray="4 3")" : "")
        << "\n"
        << print(R"(<text x="%.1f" y="%.0f" text-anchor="middle" fill="#555">%g×</text>)", x,
                 height - 3, tick)
        << "\n";
  }
  double y = 60;
  for (const auto& metric : metrics) {
    out << print(R"(<text x="10" y="%.0f" font-weight="bold">%s</text>)", y + 12,
                 metric.title.c_str())
        << "\n";
    y += 18;
    auto base = median(figures.front().*metric.samples);
    for (std::size_t i = 1; i < tools.size(); ++i) {
      out << print(R"(<text x="%.0f" y="%.0f" text-anchor="end">%s</text>)", left - 8, y + bar - 3,
                   xml_escaped(tools[i].name).c_str())
          << "\n";
      auto value = median(figures[i].*metric.samples);
      if (base && value) {
        // Bars grow from 1×: to the right when slower than the floor, to
        // the left when faster.
        double r = *value / *base;
        double from = std::min(x_of(1.0), x_of(r));
        double to = std::max(x_of(1.0), x_of(r));
        out << print(R"(<rect x="%.1f" y="%.0f" width="%.1f" height="%.0f" fill="%s"/>)", from,
                     y + 1, std::max(1.0, to - from), bar - 2, colors[i % std::size(colors)])
            << "\n"
            << print(R"(<text x="%.1f" y="%.0f">%.2f× (%s)</text>)", to + 4, y + bar - 3, r,
                     duration(*value).c_str())
            << "\n";
      } else {
        out << print(R"(<text x="%.0f" y="%.0f" fill="#999">no figure</text>)", left + 4,
                     y + bar - 3)
            << "\n";
      }
      y += bar;
    }
    y += 14;
  }
  out << "</svg>\n";
  return out.str();
}

}  // namespace bench
