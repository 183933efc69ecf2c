// The units page: a gallery of every swept unit (its strip, label and strongest concepts), filtered
// and sorted in the browser by assets/gallery.js from the units' data in the page.
#include <algorithm>
#include <cmath>
#include <set>

#include <fmt/format.h>

#include "linkstyle/label_confidence.hpp"
#include "report/html.hpp"
#include "report/report_pages.hpp"

namespace linkstyle::report {
using json = nlohmann::json;

namespace {

bool reliable_label(const report::UnitRow& u) { return is_reliable_label(u.label, u.label_confidence); }

json gallery_json(const ReportContext& context) {
  json units = json::array();
  for (const auto& u : context.sweep->units) {
    json concepts = json::array();
    for (size_t i = 0; i < std::min<size_t>(24, u.concepts.size()); ++i)
      concepts.push_back({{"part", u.concepts[i].part}, {"measure", u.concepts[i].measure}, {"z", u.concepts[i].z}});
    units.push_back({{"unit", u.unit},
                     {"label", u.label},
                     {"part", u.label_part},
                     {"measure", u.label_measure},
                     {"expressible", u.expressible},
                     {"gain", std::isfinite(u.gain) ? json(u.gain) : json()},
                     {"correlation", std::isfinite(u.correlation) ? json(u.correlation) : json()},
                     {"label_z", std::isfinite(u.label_z) ? json(u.label_z) : json()},
                     {"confidence", std::isfinite(u.label_confidence) ? json(u.label_confidence) : json()},
                     {"reliable", reliable_label(u)},
                     {"concepts", concepts},
                     {"strip", context.strips_rendered && !context.strip_samples.empty()
                                   ? json(strip_src(u.unit, concept_sample(context, u.label), 0))
                                   : json()}});
  }
  return units;
}

}  // namespace

std::string units_page(ReportContext& context) {
  std::string body;
  if (!context.sweep || context.sweep->units.empty()) {
    body += note("No sweep yet: run `linkstyle sweep`.");
    return context.page("Units", body, 0, "Units");
  }
  std::set<std::string> parts(context.sweep->part_names.begin(), context.sweep->part_names.end());
  std::set<std::string> measures;
  for (const auto& u : context.sweep->units)
    for (const auto& c : u.concepts) measures.insert(c.measure);
  std::string part_options = "<option value=\"\">any part</option>", measure_options = "<option value=\"\">any measure</option>";
  for (const auto& p : parts) part_options += fmt::format("<option>{}</option>", escape_html(p));
  for (const auto& m : measures) measure_options += fmt::format("<option>{}</option>", escape_html(m));
  body += fmt::format(
      "<p>Every swept unit: its sweep strip (the unit set from its minimum to its maximum over the tuning samples, "
      "on the sample where its label's part is largest; unlabelled units on the sample of class {}), its label and "
      "strongest significant concepts. Filter and sort; click a unit for its page.</p>"
      "<form id=\"filters\" class=\"filters\" onsubmit=\"return false\">"
      "<label>label <input id=\"filter-label\" type=\"search\" placeholder=\"e.g. roof, area +\"></label>"
      "<label>expressible <select id=\"filter-expressible\"><option value=\"\">any</option><option value=\"yes\">yes</option>"
      "<option value=\"no\">no</option></select></label>"
      "<label>labels <select id=\"filter-reliable\"><option value=\"\">any</option><option value=\"yes\">reliable "
      "only</option></select></label>"
      "<label>concept part <select id=\"filter-part\">{}</select></label>"
      "<label>concept measure <select id=\"filter-measure\">{}</select></label>"
      "<label>sort <select id=\"sort\"><option value=\"unit\">unit</option><option value=\"correlation\">cycle correlation"
      "</option><option value=\"gain\">gain</option><option value=\"label_z\">label |z|</option>"
      "<option value=\"confidence\">label confidence</option></select></label>"
      "<span id=\"gallery-count\"></span></form>"
      "<div id=\"gallery\" class=\"cards\"></div><p><button id=\"show-more\" type=\"button\">show more</button></p>"
      "<script type=\"application/json\" id=\"units-data\">{}</script>"
      "<script src=\"assets/gallery.js\"></script>",
      context.strip_samples.empty() ? "?" : escape_html(context.class_name(context.sweep->sample_classes.count(context.strip_samples.front()) ? context.sweep->sample_classes.at(context.strip_samples.front()) : 0)),
      part_options, measure_options, report::script_json(gallery_json(context)));
  return context.page("Units", body, 0, "Units");
}

}  // namespace linkstyle::report
