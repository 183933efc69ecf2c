#include <fmt/format.h>

#include "commands.hpp"
#include "linkstyle/report.hpp"

namespace linkstyle::cli {

void register_report(CLI::App& app, GlobalOptions& global) {
  struct Options {
    std::string folder = ".";
    ReportSettings settings;
  };
  auto options = std::make_shared<Options>();
  auto* command = app.add_subcommand(
      "report", "write the study's HTML report (overview, reconstructions, units, concepts, counterfactuals, shapes "
                "world) -> report/index.html, opens from disk");
  add_study_option(*command, options->folder);
  map_setting(global, "report.strip_samples",
              command->add_option("--strip-samples", options->settings.strip_samples,
                                  "strips per unit, of tuning samples of different classes (0: one per class, at most 6)")
                  ->capture_default_str());
  map_setting(global, "report.panel_side",
              command->add_option("--panel-size", options->settings.panel_side, "pixels per step in the strips (0: the generator's resolution, at most 128)")
                  ->capture_default_str());
  command
      ->add_option("--counterfactual-samples", options->settings.counterfactual_samples,
                   "samples shown per counterfactual run")
      ->capture_default_str();
  command->callback([=, &global]() {
    const auto [study, classifier, generator] = load_study_models(options->folder, global);
    const auto summary = write_study_report(study, classifier, generator, options->settings);
    print_summary(global, summary.to_json(),
                  fmt::format("report: {} pages, {} units, {} strips, {:.1f} MB in {:.1f} s -> {}", summary.pages,
                              summary.units, summary.strips, double(summary.bytes) / 1e6, summary.seconds,
                              summary.index.string()));
  });
}

}  // namespace linkstyle::cli
