// report/report_pages.hpp
//
// WHAT THIS REPRESENTS
//   What the report's pages share: the context every page reads (the study, its models and
//   settings, the sweep's data, the staging folder), the file names of unit pages and strips, small
//   HTML pieces, and one function per page returning its whole HTML (src/report/pages/).
// REQUIRES
//   A context made by write_study_report; unit_page, concepts_page and counterfactuals_page need
//   its sweep data, overview_page its linking network.
// ENSURES
//   Every string from a model, a file or a setting is escaped in the pages; pages that show images
//   copy them into the staging folder (context.out) as they go.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "linkstyle/linking.hpp"
#include "linkstyle/models.hpp"
#include "linkstyle/report.hpp"
#include "linkstyle/study.hpp"
#include "report_data.hpp"
#include "report_folder.hpp"

namespace linkstyle::report {

struct ReportContext {
  const StudyConfig& study;
  const Classifier& classifier;
  const Generator& generator;
  const ReportSettings& settings;
  ReportFolder& out;
  std::optional<report::SweepData> sweep;
  std::optional<LinkingNetwork> network;
  std::vector<int64_t> strip_samples;  // tuning samples shown in the strips (the first: the gallery's)
  bool strips_rendered = false;
  bool shapes_world = false;
  std::set<int64_t> unit_pages;  // units with a page (the swept ones)

  // The unit's number, linked to its page when it has one (from a page at the report's top).
  std::string unit_link(int64_t unit) const;

  std::string page(const std::string& title, const std::string& body, int depth, const std::string& active) const;
  std::string class_name(int64_t k) const;
};

std::string unit_page_name(int64_t unit);                 // unit-UUUUU.html
std::string strip_name(int64_t unit, int64_t sample);     // unit-UUUUU-sample-SSS.png
// The strip's address from a page at `depth` (0: the report's top, 1: units/).
std::string strip_src(int64_t unit, int64_t sample, int depth);

// The strip sample that shows a concept's (or label's) part best: the largest mean area of the part at the
// sweep's first step (the first strip sample when none shows it).
int64_t concept_sample(const ReportContext& context, const std::string& concept_name);

std::string note(const std::string& text);  // an escaped remark in a <p class="note">
// A table row of cells (HTML already escaped), <th> when `header`.
std::string table_row(const std::vector<std::string>& cells, bool header = false);

// Chooses context.strip_samples and writes the strip PNGs of `units` into images/strips (the
// generator renders each unit's sweep); the number of strips written.
int64_t render_strips(ReportContext& context, const std::vector<int64_t>& units);

std::string overview_page(ReportContext& context);
std::string reconstructions_page(ReportContext& context);
std::string units_page(ReportContext& context);
std::string unit_page(const ReportContext& context, const report::UnitRow& u);
std::string concepts_page(const ReportContext& context);
std::string counterfactuals_page(ReportContext& context);
std::string shapes_world_page(const ReportContext& context, const nlohmann::json& truth);

}  // namespace linkstyle::report
