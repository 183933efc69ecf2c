// Charts as inline SVG written by the report itself (no chart library, no script): lines or
// points over numeric axes, and bars with an interval. Every label is escaped.
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

// Horizontal bars from zero, one per row, with their interval as a grey band.
std::string bar_chart(const ChartFrame& frame, const std::vector<ChartBar>& bars);

// A colour per class index (a fixed palette of 10, then repeated).
std::string class_colour(int64_t index);

}  // namespace linkstyle::report
