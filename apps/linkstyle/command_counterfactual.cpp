#include <filesystem>

#include <fmt/format.h>

#include "commands.hpp"
#include "linkstyle/counterfactual.hpp"
#include "linkstyle/errors.hpp"
#include "linkstyle/study_linking.hpp"

namespace linkstyle::cli {

namespace {

struct CounterfactualOptions {
  std::string folder = ".";
  std::string from, to, method, start, judge;
  std::vector<std::string> images;
  int64_t samples = 0, max_steps = 0, check_interval = 0, batch_size = 0;
  double step_size = 0, sparsity_weight = 0, margin = 0;
  bool fresh = false;
};

// The numeric flags, whose presence (not their value) decides whether they override study.toml.
struct NumericFlags {
  CLI::Option *samples, *margin, *step_size, *sparsity, *max_steps, *check_interval, *batch_size;
};

NumericFlags add_counterfactual_flags(CLI::App& command, CounterfactualOptions& options, GlobalOptions& global) {
  add_study_option(command, options.folder);
  map_setting(global, "counterfactual.from",
              command.add_option("--from", options.from,
                                 "source class (name or index): generated samples of it, or the class the --image "
                                 "files are explained from (default: each image's own class)"));
  map_setting(global, "counterfactual.to",
              command.add_option("--to", options.to, "target class (name or index)")->required());
  command.add_option("--image", options.images, "explain these image files instead of generated samples");
  NumericFlags flags{};
  flags.samples = command.add_option("--samples", options.samples,
                                     "generated samples of the source class (default: counterfactual.samples)");
  map_setting(global, "counterfactual.samples", flags.samples);
  map_setting(global, "counterfactual.method",
              command.add_option("--method", options.method,
                                 "paper (gradient descent), adam, sparse or realistic (default: counterfactual.method)"));
  flags.margin = command.add_option("--margin", options.margin,
                                    "realistic: the logit margin of the stop rule (default: counterfactual.margin)");
  map_setting(global, "counterfactual.margin", flags.margin);
  map_setting(global, "models.judge",
              command.add_option("--judge", options.judge,
                                 "a second classifier trained apart that judges the counterfactuals (default: "
                                 "models.judge)"));
  map_setting(global, "counterfactual.start",
              command.add_option("--start", options.start,
                                 "initial shift: uniform (the paper's, U[0, 1)) or zero (default: counterfactual.start)"));
  flags.step_size = command.add_option("--step-size", options.step_size,
                                       "gradient step of paper and sparse (default: counterfactual.step_size)");
  map_setting(global, "counterfactual.step_size", flags.step_size);
  flags.sparsity = command.add_option("--sparsity-weight", options.sparsity_weight,
                                      "L1 weight of sparse (default: counterfactual.sparsity_weight)");
  map_setting(global, "counterfactual.sparsity_weight", flags.sparsity);
  flags.max_steps =
      command.add_option("--max-steps", options.max_steps, "give up after this many steps (default: 2000)");
  map_setting(global, "counterfactual.max_steps", flags.max_steps);
  flags.check_interval = command.add_option("--check-interval", options.check_interval,
                                            "classify the image every this many steps (default: 1)");
  map_setting(global, "counterfactual.check_interval", flags.check_interval);
  flags.batch_size = command.add_option("--batch-size", options.batch_size,
                                        "samples optimised together (default: counterfactual.batch_size)");
  map_setting(global, "counterfactual.batch_size", flags.batch_size);
  command.add_flag("--fresh", options.fresh, "replace a stored run of the same name made with other settings");
  return flags;
}

// A flag given overrides study.toml, whatever its value (0 is checked, not ignored).
void apply_counterfactual_flags(const CounterfactualOptions& options, const NumericFlags& flags, StudyConfig& study) {
  auto& k = study.counterfactual;
  if (!options.method.empty()) k.method = options.method;
  if (!options.start.empty()) k.start = options.start;
  if (flags.samples->count()) k.samples = options.samples;
  if (flags.step_size->count()) k.step_size = options.step_size;
  if (flags.sparsity->count()) k.sparsity_weight = options.sparsity_weight;
  if (flags.max_steps->count()) k.max_steps = options.max_steps;
  if (flags.check_interval->count()) k.check_interval = options.check_interval;
  if (flags.batch_size->count()) k.batch_size = options.batch_size;
  if (flags.margin->count()) k.margin = options.margin;
  if (!options.judge.empty()) {
    if (!std::filesystem::exists(options.judge)) throw Error(options.judge, "no such judge file");
    study.judge = std::filesystem::absolute(options.judge);
  }
}

std::string summary_line(const CounterfactualSummary& summary) {
  std::string units;
  for (size_t i = 0; i < std::min<size_t>(summary.relevant_units.size(), 5); ++i) {
    const auto& u = summary.relevant_units[i];
    units += fmt::format("{}{} ({}/{}{})", i ? ", " : "", u.unit, u.samples, summary.samples,
                         u.label.empty() || u.label == "none" ? "" : ", " + u.label);
  }
  return fmt::format("counterfactual {}: {}/{} reach {} ({} resumed), median {} steps, {:.2f} s each; top "
                     "units {}; -> {}",
                     summary.run, summary.successes, summary.samples, summary.target_name, summary.resumed,
                     summary.median_steps, summary.seconds_per_counterfactual, units, summary.folder.string());
}

}  // namespace

void register_counterfactual(CLI::App& app, GlobalOptions& global) {
  auto options = std::make_shared<CounterfactualOptions>();
  auto* command = app.add_subcommand(
      "counterfactual",
      "shift features until the classifier decides for --to, see the image G(L(relu(r - s))) and the units that "
      "carry the shift -> counterfactuals/<run>/ and sweeps/results.sqlite");
  const NumericFlags flags = add_counterfactual_flags(*command, *options, global);
  command->callback([=, &global]() {
    const auto job = join_launched_job(global);
    auto [study, classifier, generator] = load_study_models(options->folder, global);
    apply_counterfactual_flags(*options, flags, study);
    check_study_settings(study);
    const auto network = load_study_linking(study, classifier, generator);
    CounterfactualRequest request{options->from, options->to, {}, options->fresh};
    for (const auto& image : options->images) request.images.emplace_back(image);
    CounterfactualRunOptions run;
    // Ctrl-C stops after the batch being written; the same command resumes.
    stop_on_interrupt_signals();
    run.stop_requested = interrupt_requested;
    run.job = job.get();
    const auto summary = run_counterfactuals(study, {classifier, generator, network}, study.linking_file(), request, run);
    if (job && !job->is_coordinator()) return;
    if (job) job->finish();
    print_summary(global, summary.to_json(), summary_line(summary), job.get());
  });
}

}  // namespace linkstyle::cli
