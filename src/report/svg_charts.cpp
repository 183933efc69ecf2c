#include "svg_charts.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include <fmt/format.h>

#include "html.hpp"

namespace linkstyle::report {
namespace {

constexpr int kLeft = 56, kRight = 12, kTop = 26, kBottom = 40;

struct Range {
  double low = std::numeric_limits<double>::infinity(), high = -std::numeric_limits<double>::infinity();
  void add(double v) {
    if (!std::isfinite(v)) return;
    low = std::min(low, v);
    high = std::max(high, v);
  }
  bool empty() const { return !(low <= high); }
  void pad() {
    if (empty()) low = 0, high = 1;
    if (high - low < 1e-12) low -= 0.5, high += 0.5;
    const double margin = 0.04 * (high - low);
    low -= margin, high += margin;
  }
};

// About five round tick values in [low, high].
std::vector<double> ticks(double low, double high) {
  const double raw = (high - low) / 5.0;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double step = magnitude;
  for (double factor : {1.0, 2.0, 5.0, 10.0})
    if (magnitude * factor >= raw) {
      step = magnitude * factor;
      break;
    }
  std::vector<double> out;
  for (double v = std::ceil(low / step) * step; v <= high + 1e-9 * step; v += step) out.push_back(std::abs(v) < 1e-12 * step ? 0.0 : v);
  return out;
}

std::string open_svg(const ChartFrame& frame) {
  return fmt::format(
      "<svg class=\"chart\" viewBox=\"0 0 {0} {1}\" width=\"{0}\" height=\"{1}\" "
      "role=\"img\" aria-label=\"{2}\"><title>{2}</title>"
      "<text x=\"{3}\" y=\"16\" class=\"chart-title\">{2}</text>",
      frame.width, frame.height, escape_html(frame.title), kLeft);
}

}  // namespace

std::string class_colour(int64_t index) {
  static const char* palette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                  "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  return palette[((index % 10) + 10) % 10];
}

std::string xy_chart(const ChartFrame& frame, const std::vector<ChartSeries>& series) {
  Range xr, yr;
  for (const auto& s : series)
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i)
      if (std::isfinite(s.x[i]) && std::isfinite(s.y[i])) xr.add(s.x[i]), yr.add(s.y[i]);
  std::string svg = open_svg(frame);
  const double plot_w = frame.width - kLeft - kRight, plot_h = frame.height - kTop - kBottom;
  if (xr.empty()) {
    svg += fmt::format("<text x=\"{}\" y=\"{}\" class=\"chart-empty\">no data</text></svg>", kLeft + 10, kTop + plot_h / 2);
    return svg;
  }
  if (frame.diagonal) {
    const double low = std::min(xr.low, yr.low), high = std::max(xr.high, yr.high);
    xr.low = yr.low = low, xr.high = yr.high = high;
  }
  xr.pad(), yr.pad();
  auto px = [&](double x) { return kLeft + (x - xr.low) / (xr.high - xr.low) * plot_w; };
  auto py = [&](double y) { return kTop + plot_h - (y - yr.low) / (yr.high - yr.low) * plot_h; };
  svg += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" class=\"plot-area\"/>", kLeft, kTop, plot_w, plot_h);
  for (double t : ticks(xr.low, xr.high))
    svg += fmt::format("<line x1=\"{0:.1f}\" x2=\"{0:.1f}\" y1=\"{1}\" y2=\"{2}\" class=\"grid\"/>"
                       "<text x=\"{0:.1f}\" y=\"{3}\" class=\"tick\" text-anchor=\"middle\">{4}</text>",
                       px(t), kTop, kTop + plot_h, kTop + plot_h + 14, format_number(t, 3));
  for (double t : ticks(yr.low, yr.high))
    svg += fmt::format("<line x1=\"{0}\" x2=\"{1}\" y1=\"{2:.1f}\" y2=\"{2:.1f}\" class=\"grid\"/>"
                       "<text x=\"{3}\" y=\"{4:.1f}\" class=\"tick\" text-anchor=\"end\">{5}</text>",
                       kLeft, kLeft + plot_w, py(t), kLeft - 4, py(t) + 4, format_number(t, 3));
  if (frame.diagonal)
    svg += fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" class=\"diagonal\"/>", px(xr.low),
                       py(xr.low), px(xr.high), py(xr.high));
  int legend_row = 0;
  for (const auto& s : series) {
    const auto colour = escape_html(s.colour);
    const size_t n = std::min(s.x.size(), s.y.size());
    if (s.points) {
      svg += fmt::format("<g fill=\"{}\" fill-opacity=\"0.55\">", colour);
      for (size_t i = 0; i < n; ++i)
        if (std::isfinite(s.x[i]) && std::isfinite(s.y[i]))
          svg += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"2\"/>", px(s.x[i]), py(s.y[i]));
      svg += "</g>";
    } else {
      std::string points;
      for (size_t i = 0; i < n; ++i)
        if (std::isfinite(s.x[i]) && std::isfinite(s.y[i])) points += fmt::format("{:.1f},{:.1f} ", px(s.x[i]), py(s.y[i]));
      svg += fmt::format("<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.6\"/>", points, colour);
    }
    if (!s.name.empty() && legend_row < 10) {
      const double y = kTop + 12 + 13 * legend_row++;
      svg += fmt::format("<rect x=\"{}\" y=\"{:.1f}\" width=\"9\" height=\"9\" fill=\"{}\"/>"
                         "<text x=\"{}\" y=\"{:.1f}\" class=\"legend\">{}</text>",
                         kLeft + plot_w - 110, y - 8, colour, kLeft + plot_w - 97, y, escape_html(s.name));
    }
  }
  svg += fmt::format("<text x=\"{}\" y=\"{}\" class=\"axis-label\" text-anchor=\"middle\">{}</text>", kLeft + plot_w / 2,
                     frame.height - 6, escape_html(frame.x_label));
  svg += fmt::format("<text transform=\"translate(13 {}) rotate(-90)\" class=\"axis-label\" text-anchor=\"middle\">{}</text>",
                     kTop + plot_h / 2, escape_html(frame.y_label));
  return svg + "</svg>";
}

namespace {

// bar_panels' geometry: a row's height, a panel's plot width, the gap between panels, the room
// above a panel (its title) and below it (tick labels), and between rows of panels.
constexpr int kPanelRow = 14, kPanelWidth = 200, kPanelGap = 16;
constexpr int kPanelTitle = 20, kPanelTicks = 16, kPanelSpacing = 10;

// A coordinate with one decimal at most: 12, 12.5, -3.1 (never "-0" or "12.0").
std::string coordinate(double v) {
  auto text = fmt::format("{:.1f}", v);
  if (text.size() > 2 && text.compare(text.size() - 2, 2, ".0") == 0) text.resize(text.size() - 2);
  return text == "-0" ? "0" : text;
}

// One panel at (left, top), drawn in its own coordinates: x = 0 at the value 0, y = 0 at the top
// of its first row.
std::string bar_panel(const BarPanel& panel, const std::map<std::string, size_t>& row_of, size_t rows, double left,
                      double top) {
  Range range;
  range.add(0.0);
  for (const auto& b : panel.bars) range.add(b.value), range.add(b.low), range.add(b.high);
  range.pad();
  const double zero = (0.0 - range.low) / (range.high - range.low) * kPanelWidth;
  auto px = [&](double v) { return (v - range.low) / (range.high - range.low) * kPanelWidth - zero; };
  const double height = kPanelRow * static_cast<double>(std::max<size_t>(1, rows));
  std::string svg = fmt::format("<g transform=\"translate({} {})\">", coordinate(left + zero), coordinate(top));
  svg += fmt::format("<text x=\"{}\" y=\"-8\" class=\"chart-title\">{}</text>", coordinate(-zero),
                     escape_html(panel.title));
  std::string grid, labels;
  for (double t : ticks(range.low, range.high)) {
    grid += fmt::format("M{} 0v{}", coordinate(px(t)), coordinate(height));
    labels += fmt::format("<text x=\"{}\">{}</text>", coordinate(px(t)), format_number(t, 3));
  }
  svg += fmt::format("<path d=\"{}\" class=\"grid\"/><g transform=\"translate(0 {})\" class=\"tick-labels\">{}</g>",
                     grid, coordinate(height + 12), labels);
  std::string bands, bars;
  for (const auto& b : panel.bars) {
    const auto row = row_of.find(b.label);
    if (row == row_of.end()) continue;
    const double y = kPanelRow * static_cast<double>(row->second);
    if (std::isfinite(b.low) && std::isfinite(b.high))  // a stroke as wide as the band (.null-bands)
      bands += fmt::format("M{} {}h{}", coordinate(px(b.low)), coordinate(y + kPanelRow / 2.0),
                           coordinate(std::max(1.0, px(b.high) - px(b.low))));
    if (!std::isfinite(b.value)) continue;
    const double v = px(b.value);
    bars += fmt::format("<rect{} y=\"{}\" width=\"{}\" height=\"{}\" class=\"{}\"><title>{}: {}</title></rect>",
                        v < 0 ? fmt::format(" x=\"{}\"", coordinate(v)) : "", coordinate(y + 4),
                        coordinate(std::max(1.0, std::abs(v))), kPanelRow - 8, b.value >= 0 ? "bar-up" : "bar-down",
                        escape_html(b.label), format_number(b.value, 4));
  }
  if (!bands.empty()) svg += fmt::format("<path d=\"{}\" class=\"null-bands\"/>", bands);
  return svg + bars + fmt::format("<path d=\"M0 0v{}\" class=\"axis\"/></g>", coordinate(height));
}

}  // namespace

std::string bar_panels(const std::string& title, const std::vector<std::string>& rows,
                       const std::vector<BarPanel>& panels, const std::string& x_label, int columns) {
  std::map<std::string, size_t> row_of;
  size_t longest = 1;
  for (const auto& label : rows) row_of.emplace(label, row_of.size()), longest = std::max(longest, label.size());
  const size_t per_row = static_cast<size_t>(std::max(1, columns));
  const size_t shown_columns = std::max<size_t>(1, std::min(per_row, panels.size()));
  const size_t grid_rows = std::max<size_t>(1, (panels.size() + per_row - 1) / per_row);
  const int label_width = std::clamp(static_cast<int>(6 * longest) + 10, 40, 160);
  const int panel_height = kPanelTitle + kPanelRow * static_cast<int>(std::max<size_t>(1, rows.size())) + kPanelTicks;
  const int grid_width = static_cast<int>(shown_columns) * (kPanelWidth + kPanelGap);
  const int width = label_width + grid_width;
  const int height = static_cast<int>(grid_rows) * (panel_height + kPanelSpacing) + 16;
  std::string svg = fmt::format("<svg class=\"chart bar-panels\" viewBox=\"0 0 {0} {1}\" width=\"{0}\" height=\"{1}\" "
                                "role=\"img\" aria-label=\"{2}\"><title>{2}</title>",
                                width, height, escape_html(title));
  for (size_t r = 0; r < grid_rows; ++r) {
    const int top = static_cast<int>(r) * (panel_height + kPanelSpacing) + kPanelTitle;
    svg += fmt::format("<g transform=\"translate({} {})\" class=\"row-labels\">", label_width - 6, top);
    for (size_t i = 0; i < rows.size(); ++i)
      svg += fmt::format("<text y=\"{}\">{}</text>", kPanelRow * static_cast<int>(i) + 10, escape_html(rows[i]));
    svg += "</g>";
    for (size_t c = 0; c < per_row && r * per_row + c < panels.size(); ++c)
      svg += bar_panel(panels[r * per_row + c], row_of, rows.size(),
                       label_width + static_cast<int>(c) * (kPanelWidth + kPanelGap), top);
  }
  svg += fmt::format("<text x=\"{}\" y=\"{}\" class=\"axis-label centred\">{}</text>",
                     label_width + (grid_width - kPanelGap) / 2, height - 6, escape_html(x_label));
  return svg + "</svg>";
}

}  // namespace linkstyle::report
