// The benchmark's results as a Markdown page and an SVG plot.
#pragma once

#include <string>
#include <vector>

#include "measure.hpp"
#include "tools.hpp"

namespace bench {

struct Results {
  std::string taken;    // date, machine, kernel
  std::string command;  // how to take them again
  Settings settings;
  std::vector<Tool> tools;  // the floor first
  std::vector<Figures> figures;
  std::vector<Tool> inits;
  std::vector<InitFigures> init_figures;
  std::vector<std::string> skipped;  // tools not installed, with the reason
};

// The tables, the targets and the notes, as Markdown. `plot` is the SVG's
// path relative to the page.
std::string markdown(const Results& results, const std::string& plot);

// Ratios to the floor, one bar per tool and measurement, on a log scale.
std::string svg(const Results& results);

}  // namespace bench
