// The shapes world's page: what `linkstyle probe` measured against the world's ground truth
// (sweeps/ground_truth.json): the labels' agreement, the planted units, profile identification and
// the chain from the world's factors to the sweeps.
#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "report/html.hpp"
#include "report/report_pages.hpp"

namespace linkstyle::report {
using json = nlohmann::json;

namespace {

std::string json_cell(const json& value) {
  if (value.is_number_float()) return format_number(value.get<double>(), 4);
  if (value.is_string()) return escape_html(value.get<std::string>());
  if (value.is_array()) {
    std::string out;
    for (const auto& v : value) out += (out.empty() ? "" : ", ") + json_cell(v);
    return out;
  }
  if (value.is_object()) {
    std::string out;
    for (const auto& [key, v] : value.items()) out += (out.empty() ? "" : "; ") + escape_html(key) + " " + json_cell(v);
    return out;
  }
  return escape_html(value.dump());
}

// A table of an array of objects: one column per key of the first object.
std::string json_table(const ReportContext& context, const json& rows, size_t limit = 1000) {
  if (!rows.is_array() || rows.empty() || !rows[0].is_object()) return "";
  std::vector<std::string> keys, header;
  for (const auto& [key, value] : rows[0].items()) keys.push_back(key), header.push_back(escape_html(key));
  std::string out = "<table>" + table_row(header, true);
  for (size_t i = 0; i < std::min(limit, rows.size()); ++i) {
    std::vector<std::string> cells;
    for (const auto& key : keys) {
      const auto& value = rows[i].contains(key) ? rows[i][key] : json();
      cells.push_back(key == "unit" && value.is_number_integer()
                          ? context.unit_link(value.get<int64_t>())
                          : json_cell(value));
    }
    out += table_row(cells);
  }
  return out + "</table>";
}

// The probe's chain, as `linkstyle probe` prints it: each link's correlation, * when its
// Bonferroni-corrected p is under 0.05.
std::string chain_table(const json& chain) {
  if (!chain.is_array()) return "";
  const auto link = [](const json& entry, const char* key) -> std::string {
    if (!entry.contains(key) || !entry[key].is_object()) return "";
    const auto& m = entry[key];
    const double r = m.value("correlation", NAN), p = m.value("p_bonferroni", NAN);
    return fmt::format("{}{}", std::isfinite(r) ? fmt::format("{:+.2f}", r) : "n/a", p < 0.05 ? "*" : "");
  };
  std::string out = "<table>" + table_row({"factor", "measured as", "measurement", "generator", "sweep", "end to end",
                                           "reliability (rendered / generated / sweep)"},
                                          true);
  for (const auto& entry : chain) {
    if (!entry.is_object()) continue;
    out += table_row({escape_html(entry.value("factor", std::string())), escape_html(entry.value("measured_as", std::string())),
                      link(entry, "measurement"), link(entry, "generator"), link(entry, "sweep"), link(entry, "end_to_end"),
                      link(entry, "rendered_reliability") + " / " + link(entry, "generated_reliability") + " / " +
                          link(entry, "sweep_reliability")});
  }
  return out + "</table><p class=\"note\">Correlations over units; * Bonferroni-corrected p &lt; 0.05.</p>";
}

// One row per planted unit: its factor, and what each rule named (the set by its size and its
// strongest concepts, as a set can hold dozens).
std::string planted_units_table(const json& units) {
  constexpr size_t kSetShown = 3;
  std::string out = "<table>" + table_row({"unit", "planted factor", "label", "agrees", "top concept", "agrees",
                                           "significant concepts", "any agrees"},
                                          true);
  const auto yes = [](const json& row, const char* key) { return row.value(key, false) ? "yes" : "no"; };
  for (const auto& u : units) {
    const auto set = u.value("concept_set", json::array());
    std::string shown;
    for (size_t i = 0; i < std::min(kSetShown, set.size()); ++i) shown += (i ? ", " : "") + json_cell(set[i]);
    if (set.size() > kSetShown) shown += fmt::format(", ... ({} in all)", set.size());
    const auto label = u.value("label", std::string());
    out += table_row({json_cell(u.value("unit", json())), json_cell(u.value("target", json())),
                      label.empty() ? "none" : escape_html(label), yes(u, "label_agrees"),
                      json_cell(u.value("top", json())), yes(u, "top_agrees"), set.empty() ? "none" : shown,
                      yes(u, "set_agrees")});
  }
  return out + "</table>";
}

}  // namespace

std::string shapes_world_page(const ReportContext& context, const json& truth) {
  std::string body;
  body += "<p>The shapes world knows what made each image. <code>linkstyle probe</code> checks the sweep's labels and "
          "measures against it: the chain from the world's factors to what the classifier's units encode, to what "
          "their sweeps change.</p>";
  body += "<table>" + table_row({"labelled units", "agreeing", "agreement", "chance", "p"}, true);
  body += table_row({json_cell(truth.value("units", json())), json_cell(truth.value("agreeing", json())),
                     json_cell(truth.value("agreement", json())), json_cell(truth.value("chance", json())),
                     json_cell(truth.value("p_value", json()))});
  body += "</table>";
  if (truth.contains("planted") && truth["planted"].is_object()) {
    const auto& planted = truth["planted"];
    body += "<h2>Planted units</h2><p>Units the classifier was trained to make equal to known factors: does each "
            "one's sweep name its factor? Label: its significant concept with the largest |z|; top: its concept with "
            "the largest |z|; set: any of its significant concepts.</p><table>" +
            table_row({"rule", "agreeing", "named", "recall", "precision", "chance", "p"}, true);
    for (const char* rule : {"label", "top", "set"}) {
      if (!planted.contains(rule) || !planted[rule].is_object()) continue;
      const auto& r = planted[rule];
      body += table_row({rule, json_cell(r.value("agreeing", json())), json_cell(r.value("named", json())),
                         json_cell(r.value("recall", json())), json_cell(r.value("precision", json())),
                         json_cell(r.value("chance", json())), json_cell(r.value("p_value", json()))});
    }
    body += "</table>";
    if (planted.contains("units") && planted["units"].is_array()) body += planted_units_table(planted["units"]);
  }
  if (truth.contains("profile") && truth["profile"].is_object()) {
    body += "<h2>Profile identification</h2><p>Does each unit's measured concept profile (its sweep's change of "
            "every measured factor's concept) rank its own predicted profile first among all units'? Predicted "
            "from the partial effects (an isolated sweep) and from the within-class correlations (a conditional "
            "sweep); this study's sweep is " +
            escape_html(truth.value("sweep_direction", std::string("isolated"))) + ".</p><table>" +
            table_row({"prediction", "units", "top-1", "chance", "p", "top-10", "chance", "p", "median rank", "chance",
                       "p"},
                      true);
    for (const char* prediction : {"partial", "encoding"}) {
      if (!truth["profile"].contains(prediction)) continue;
      const auto& x = truth["profile"][prediction];
      std::vector<std::string> row = {prediction};
      for (const char* key : {"units", "top1", "chance_top1", "p_top1", "top10", "chance_top10", "p_top10",
                              "median_rank", "chance_median_rank", "p_median_rank"})
        row.push_back(json_cell(x.value(key, json())));
      body += table_row(row);
    }
    body += "</table>";
  }
  if (truth.contains("chain")) body += "<h2>The chain, factor by factor</h2>" + chain_table(truth["chain"]);
  if (truth.contains("factor_signal")) body += "<h2>Factor signal</h2>" + json_table(context, truth["factor_signal"]);
  if (truth.contains("per_unit")) body += "<h2>Labelled units against the probe</h2>" + json_table(context, truth["per_unit"]);
  return context.page("Shapes world", body, 0, "Shapes world");
}

}  // namespace linkstyle::report
