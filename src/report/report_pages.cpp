#include "report_pages.hpp"

#include <fmt/format.h>

#include "html.hpp"

namespace linkstyle::report {

std::string ReportContext::unit_link(int64_t unit) const {
  if (!unit_pages.count(unit)) return std::to_string(unit);
  return fmt::format("<a href=\"units/{}\">{}</a>", unit_page_name(unit), unit);
}

std::string ReportContext::page(const std::string& title, const std::string& body, int depth,
                                const std::string& active) const {
  return report::report_page(title, body, depth, active, sweep && !sweep->counterfactuals.empty(), shapes_world);
}

std::string ReportContext::class_name(int64_t k) const { return classifier.class_name(k); }

std::string unit_page_name(int64_t unit) { return fmt::format("unit-{:05d}.html", unit); }
std::string strip_name(int64_t unit, int64_t sample) { return fmt::format("unit-{:05d}-sample-{:03d}.png", unit, sample); }

std::string strip_src(int64_t unit, int64_t sample, int depth) {
  return fmt::format("{}images/strips/{}", depth ? "../" : "", strip_name(unit, sample));
}

int64_t concept_sample(const ReportContext& context, const std::string& concept_name) {
  if (context.strip_samples.empty()) return 0;
  // The concept's part: the longest part name that begins "<part> <measure>".
  const std::map<int64_t, double>* areas = nullptr;
  size_t longest = 0;
  for (const auto& [part, part_areas] : context.sweep->part_area)
    if (concept_name.rfind(part + " ", 0) == 0 && part.size() > longest) areas = &part_areas, longest = part.size();
  int64_t best = context.strip_samples.front();
  double best_area = 0;
  if (areas)
    for (int64_t sample : context.strip_samples) {
      const auto found = areas->find(sample);
      if (found != areas->end() && found->second > best_area) best = sample, best_area = found->second;
    }
  return best;
}

std::string note(const std::string& text) { return "<p class=\"note\">" + escape_html(text) + "</p>"; }

std::string table_row(const std::vector<std::string>& cells, bool header) {
  std::string row = "<tr>";
  for (const auto& cell : cells) row += header ? "<th>" + cell + "</th>" : "<td>" + cell + "</td>";
  return row + "</tr>";
}

}  // namespace linkstyle::report
