// write_study_report: checks the settings, reads what the study's stages wrote, renders the strips,
// writes every page (src/report/pages/) into a staging folder and moves it into place.
#include <chrono>

#include <fmt/format.h>

#include "linkstyle/atomic_file.hpp"
#include "linkstyle/errors.hpp"
#include "linkstyle/report.hpp"
#include "linkstyle/study_linking.hpp"
#include "report_assets.hpp"
#include "report_data.hpp"
#include "report_pages.hpp"

namespace linkstyle {
namespace fs = std::filesystem;
using json = nlohmann::json;
using report::ReportContext;
using report::ReportFolder;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

void check_report_settings(const ReportSettings& settings) {
  if (settings.strip_samples < 0)
    throw SettingError("report.strip_samples", fmt::format("must be 0 or more, got {}", settings.strip_samples));
  if (settings.batch_size < 1)
    throw SettingError("report.batch_size", fmt::format("must be at least 1, got {}", settings.batch_size));
  if (settings.panel_side < 0) throw SettingError("report.panel_side", fmt::format("must be 0 or more, got {}", settings.panel_side));
  if (settings.panel_side > 1024) throw SettingError("report.panel_side", "must be at most 1024 pixels");
}

// The probe's ground truth (sweeps/ground_truth.json) when the study has one: the shapes world's page.
json read_ground_truth(const StudyConfig& study, ReportContext& context) {
  const auto truth_file = study.sweeps_folder() / "ground_truth.json";
  json truth;
  if (fs::exists(truth_file)) {
    truth = json::parse(read_file(truth_file), nullptr, false);
    if (truth.is_discarded() || !truth.is_object()) throw Error(truth_file, "is not valid JSON");
    context.shapes_world = true;
  }
  return truth;
}

// Every page and asset of the report, into the staging folder.
void write_pages(ReportContext& context, const json& truth) {
  auto& out = context.out;
  out.write("assets/report.css", report::report_stylesheet());
  out.write("assets/gallery.js", report::gallery_script());
  out.write("index.html",
            context.network
                ? report::overview_page(context)
                : context.page("Overview", report::note("No fit yet: run `linkstyle pairs` and `linkstyle fit`."), 0, "Overview"));
  out.write("reconstructions.html", report::reconstructions_page(context));
  out.write("units.html", report::units_page(context));
  if (context.sweep)
    for (const auto& u : context.sweep->units)
      out.write(fs::path("units") / report::unit_page_name(u.unit), report::unit_page(context, u));
  out.write("concepts.html", report::concepts_page(context));
  if (context.sweep && !context.sweep->counterfactuals.empty())
    out.write("counterfactuals.html", report::counterfactuals_page(context));
  if (context.shapes_world) out.write("shapes-world.html", report::shapes_world_page(context, truth));
}

}  // namespace

json ReportSummary::to_json() const {
  return {{"folder", folder.string()}, {"index", index.string()}, {"pages", pages},   {"units", units},
          {"strips", strips},          {"files", files},          {"bytes", bytes},   {"seconds", seconds},
          {"strip_seconds", strip_seconds}};
}

ReportSummary write_study_report(const StudyConfig& study, const Classifier& classifier, const Generator& generator,
                                 const ReportSettings& settings) {
  const auto start = Clock::now();
  check_report_settings(settings);
  ReportFolder out(study);
  ReportContext context{study, classifier, generator, settings, out, {}, {}, {}, false, false, {}};
  context.sweep = report::read_sweep_data(study, settings.counterfactual_samples);
  const json truth = read_ground_truth(study, context);
  if (fs::exists(study.linking_file())) context.network = load_study_linking(study, classifier, generator);

  ReportSummary summary;
  std::vector<int64_t> units;
  if (context.sweep)
    for (const auto& u : context.sweep->units) units.push_back(u.unit), context.unit_pages.insert(u.unit);
  if (context.network && !units.empty()) {
    const auto strips_start = Clock::now();
    summary.strips = report::render_strips(context, units);
    summary.strip_seconds = seconds_since(strips_start);
  }
  write_pages(context, truth);
  out.commit();

  summary.folder = out.folder();
  summary.index = out.folder() / "index.html";
  summary.pages = out.pages();
  summary.files = out.files();
  summary.units = static_cast<int64_t>(units.size());
  summary.bytes = out.bytes();
  summary.seconds = seconds_since(start);
  return summary;
}

}  // namespace linkstyle
