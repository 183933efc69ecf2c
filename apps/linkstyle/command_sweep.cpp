#include <filesystem>

#include <fmt/format.h>

#include "commands.hpp"
#include "linkstyle/atomic_file.hpp"
#include "linkstyle/errors.hpp"
#include "linkstyle/probe.hpp"
#include "linkstyle/results_database.hpp"
#include "linkstyle/study_linking.hpp"
#include "linkstyle/sweep.hpp"

namespace linkstyle::cli {

namespace fs = std::filesystem;

namespace {

void register_sweep_command(CLI::App& app, GlobalOptions& global) {
  struct Options {
    std::string folder = ".";
    std::vector<int64_t> units, strip_units;
    int64_t steps = 0, samples_per_class = 0, batch_size = 0;
    std::string parts;
  };
  auto options = std::make_shared<Options>();
  auto* command = app.add_subcommand(
      "sweep",
      "sweep every unit (or --units) through its range, re-encode and measure the images -> sweeps/results.sqlite");
  add_study_option(*command, options->folder);
  map_setting(
      global, "sweep.units",
      command->add_option("--units", options->units, "units to sweep (default: sweep.units of study.toml, empty = all)")
          ->delimiter(','));
  auto* steps = command->add_option("--steps", options->steps, "values per unit (default: sweep.steps)");
  map_setting(global, "sweep.steps", steps);
  auto* samples_per_class = command->add_option("--samples-per-class", options->samples_per_class,
                                                "tuning samples per class (default: sweep.samples_per_class)");
  map_setting(global, "sweep.samples_per_class", samples_per_class);
  auto* batch_size =
      command->add_option("--batch-size", options->batch_size, "images per forward call (default: sweep.batch_size)");
  map_setting(global, "sweep.batch_size", batch_size);
  map_setting(global, "sweep.parts",
              command->add_option("--parts", options->parts, "auto, segmenter, kmeans or none (default: sweep.parts)"));
  map_setting(global, "run.strip_units",
              command->add_option("--strip-units", options->strip_units, "also write strip PNGs of these units")
                  ->delimiter(','));
  command->callback([options, &global, steps, samples_per_class, batch_size]() {
    const auto job = join_launched_job(global);
    auto [study, classifier, generator] = load_study_models(options->folder, global);
    auto& s = study.sweep;
    if (!options->units.empty()) s.units = options->units;
    // A flag given overrides study.toml, whatever its value (0 is checked, not ignored).
    if (steps->count()) s.steps = options->steps;
    if (samples_per_class->count()) s.samples_per_class = options->samples_per_class;
    if (batch_size->count()) s.batch_size = options->batch_size;
    if (!options->parts.empty()) s.parts = options->parts;
    check_study_settings(study);
    const auto network = load_study_linking(study, classifier, generator);
    SweepRunOptions run;
    run.strip_units = options->strip_units;
    // Ctrl-C stops after the chunk being written; the same command resumes.
    stop_on_interrupt_signals();
    run.stop_requested = interrupt_requested;
    run.job = job.get();
    const auto summary = run_sweep(study, classifier, generator, network, run);
    if (job && !job->is_coordinator()) return;
    if (job) job->finish();
    print_warnings(summary.warnings);
    print_summary(
        global, summary.to_json(),
        fmt::format("sweep: {} units ({} resumed), {} images at {:.0f}/s; {} expressible, {} with a significant "
                    "concept; parts from {}; results in {}",
                    summary.units, summary.units_resumed, summary.images, summary.images_per_second,
                    summary.expressible, summary.labelled, summary.part_source, summary.database.string()), job.get());
  });
}

void register_export_command(CLI::App& app, GlobalOptions& global) {
  struct Options {
    std::string folder = ".";
    std::vector<std::string> tables;
    std::string output;
  };
  auto options = std::make_shared<Options>();
  auto* command = app.add_subcommand("export", "write tables of the sweep results as CSV");
  add_study_option(*command, options->folder);
  command->add_option("tables", options->tables,
                      "tables (units, steps, part_metrics, motion, part_changes, selectivity, null_directions, "
                      "null_changes, parts, samples, probe, concept_top_units, counterfactual_runs, counterfactuals, "
                      "counterfactual_paths, counterfactual_units, counterfactual_parts, "
                      "counterfactual_relevant_units, counterfactual_summary; default: units)");
  command->add_option("-o,--output", options->output, "output folder (default: <study>/sweeps/csv)");
  command->callback([options, &global]() {
    const auto study = load_study(options->folder);
    const fs::path folder = options->output.empty() ? study.sweeps_folder() / "csv" : fs::path(options->output);
    const auto tables = options->tables.empty() ? std::vector<std::string>{"units"} : options->tables;
    const auto written = export_results_tables(study.results_database(), tables, folder);
    print_summary(global, written, fmt::format("export: {} table(s) -> {}", tables.size(), folder.string()));
  });
}

void register_probe_command(CLI::App& app, GlobalOptions& global) {
  auto settings = std::make_shared<ProbeSettings>();
  auto folder = std::make_shared<std::string>(".");
  auto* command = app.add_subcommand(
      "probe",
      "shapes world: probe every unit against the rendered factors, score the sweep labels against it and trace "
      "the ground truth link by link (measurement, generator, sweep)");
  add_study_option(*command, *folder);
  map_setting(
      global, "probe.images",
      command->add_option("--images", settings->images, "rendered images for the probe")->capture_default_str());
  command->add_option("--seed", settings->seed, "their seed")->capture_default_str();
  map_setting(
      global, "probe.top",
      command
          ->add_option("--top", settings->top, "score only the top N expressible units by cycle correlation (0: all)")
          ->capture_default_str());
  command->callback([settings, folder, &global]() {
    auto [study, classifier, generator] = load_study_models(*folder, global);
    const auto probe = run_probe(study, classifier, generator, *settings);
    auto summary = probe.report;
    summary["file"] = probe.file.string();
    print_summary(global, summary, probe.summary_line());
  });
}

}  // namespace

void register_sweep(CLI::App& app, GlobalOptions& global) {
  register_sweep_command(app, global);
  register_export_command(app, global);
  register_probe_command(app, global);
}

}  // namespace linkstyle::cli
