// A unit's page: its figures and label, its sweep strips, the cycle and class-logit curves, the
// change of every part's measure against the null (one small-multiples chart), and its significant
// concepts.
#include <algorithm>
#include <cmath>
#include <map>

#include <fmt/format.h>

#include "linkstyle/label_confidence.hpp"
#include "report/html.hpp"
#include "report/report_pages.hpp"
#include "report/svg_charts.hpp"

namespace linkstyle::report {

namespace {

// The unit's figures and label, then its strips, one per strip sample.
std::string unit_figures_and_strips(const ReportContext& context, const report::UnitRow& u) {
  const auto& sweep = *context.sweep;
  std::string body;
  body += fmt::format("<p class=\"unit-label\">label: <b>{}</b> · {} · gain {} · cycle correlation {} · specificity {} · "
                      "logit change {} · class flips {}</p>",
                      escape_html(describe_label(u.label, u.label_confidence)),
                      u.expressible ? "expressible" : "not expressible", format_number(u.gain), format_number(u.correlation),
                      format_number(u.specificity), format_number(u.logit_change), format_number(u.class_flip_rate));
  body += fmt::format("<h2>Sweeps</h2><p>The unit set to {} values from {} to {}, one row per tuning sample.</p>",
                      context.study.sweep.steps, format_number(u.range_min), format_number(u.range_max));
  if (context.strips_rendered)
    for (int64_t sample : context.strip_samples) {
      const auto c = sweep.sample_classes.count(sample) ? sweep.sample_classes.at(sample) : -1;
      body += fmt::format("<figure class=\"strip\"><img src=\"{}\" alt=\"unit {} sample {}\"><figcaption>sample {} (class "
                          "{})</figcaption></figure>",
                          strip_src(u.unit, sample, 1), u.unit, sample, sample,
                          escape_html(c >= 0 ? context.generator.class_name(c) : "?"));
    }
  return body;
}

// The cycle (re-encoded against set value) and the class logit along the sweep, one line per sample.
std::string sweep_curves(const ReportContext& context, const report::UnitRow& u) {
  const auto& sweep = *context.sweep;
  std::string body;
  body += "<div class=\"charts\">";
  const auto curves = sweep.curves.find(u.unit);
  if (curves != sweep.curves.end()) {
    std::vector<ChartSeries> cycle, logits;
    for (const auto& [sample, activation] : curves->second.activation) {
      const auto c = sweep.sample_classes.count(sample) ? sweep.sample_classes.at(sample) : 0;
      cycle.push_back({"", curves->second.values, activation, report::class_colour(c), false});
      logits.push_back({"", curves->second.values, curves->second.class_logit.at(sample), report::class_colour(c), false});
    }
    ChartFrame frame{"Cycle: re-encoded r'_i against the set value v", "set value v", "re-encoded r'_i"};
    frame.diagonal = true;
    body += report::xy_chart(frame, cycle);
    body += report::xy_chart({"Class logit along the sweep (each sample's class)", "set value v", "logit"}, logits);
  }
  body += "</div>";
  return body;
}

// The change of every part's measure over the sweep against the null's spread: one panel per
// measure (each on its own scale) over the parts, parts without a value left out.
std::string part_measures(const ReportContext& context, const report::UnitRow& u) {
  const auto& sweep = *context.sweep;
  std::string body;
  const auto changes = sweep.part_changes.find(u.unit);
  if (changes != sweep.part_changes.end()) {
    std::vector<std::string> parts;  // in the order of their first value
    std::map<std::string, std::vector<ChartBar>> by_measure;
    for (const auto& c : changes->second)
      if (std::isfinite(c.change)) {
        by_measure[c.measure].push_back({c.part, c.change, c.null_low, c.null_high});
        if (std::find(parts.begin(), parts.end(), c.part) == parts.end()) parts.push_back(c.part);
      }
    body += "<h2>Part measures</h2><p>Mean change of each part's measure from the sweep's start to its end; grey: "
            "the central 95% of the same change along random directions (the null).</p><div class=\"charts\">";
    std::vector<BarPanel> panels;
    for (auto& [measure, bars] : by_measure) panels.push_back({measure, std::move(bars)});
    if (!panels.empty())
      body += report::bar_panels("Change of each part's measure over the sweep", parts, panels, "change over the sweep");
    body += "</div>";
  }
  return body;
}

}  // namespace

std::string unit_page(const ReportContext& context, const report::UnitRow& u) {
  std::string body = unit_figures_and_strips(context, u);
  body += sweep_curves(context, u);
  body += part_measures(context, u);
  if (!u.concepts.empty()) {
    body += "<h2>Significant concepts</h2><table>" + table_row({"part", "measure", "z", "change"}, true);
    for (const auto& c : u.concepts)
      body += table_row({escape_html(c.part), escape_html(c.measure), format_number(c.z), format_number(c.change)});
    body += "</table>";
  }
  body += "<p><a href=\"../units.html\">all units</a></p>";
  return context.page(fmt::format("Unit {}", u.unit), body, 1, "Units");
}

}  // namespace linkstyle::report
