// Charts as inline SVG written by the report itself (no chart library, no script): lines or
// points over numeric axes, bars with an interval, and small multiples of such bars. Every label
// is escaped.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace linkstyle::report {

struct ChartFrame {
  std::string title, x_label, y_label;
  int width = 440, height = 290;
  bool diagonal = false;  // draw y = x (predicted against true, set against re-encoded)
};

struct ChartSeries {
  std::string name;  // in the legend when not empty
  std::vector<double> x, y;
  std::string colour = "#1f77b4";
  bool points = false;  // circles instead of a line
};

// Non-finite points are skipped; an empty chart says "no data".
std::string xy_chart(const ChartFrame& frame, const std::vector<ChartSeries>& series);

struct ChartBar {
  std::string label;
  double value = 0;
  double low = 0, high = 0;  // an interval drawn behind the bar (the null's spread); NaN: none
};

// One panel of bar_panels: a title (a measure) and bars, each on the row named by its label.
struct BarPanel {
  std::string title;
  std::vector<ChartBar> bars;
};

// Small multiples in one SVG: a panel of horizontal bars from zero per entry of `panels` (each on
// its own scale, the intervals as grey bands), `columns` panels to a row of the grid, sharing the
// rows: their labels are written once, left of each row of panels, and `x_label` once under the
// grid. Every bar's value is its <title>; bars whose label is not a row are left out. Styles come
// from the stylesheet's classes; coordinates have one decimal at most.
std::string bar_panels(const std::string& title, const std::vector<std::string>& rows,
                       const std::vector<BarPanel>& panels, const std::string& x_label, int columns = 4);

// A colour per class index (a fixed palette of 10, then repeated).
std::string class_colour(int64_t index);

}  // namespace linkstyle::report
