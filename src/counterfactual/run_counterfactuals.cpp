// A study's counterfactual runs: the run named, its context prepared and its batches explained
// over the ranks of a job, written and committed in order (counterfactual.hpp).
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <optional>
#include <set>
#include <system_error>

#include <fmt/format.h>
#include <torch/torch.h>

#include "counterfactual/counterfactual_run.hpp"
#include "linkstyle/atomic_file.hpp"
#include "linkstyle/counterfactual.hpp"
#include "linkstyle/distributed.hpp"
#include "linkstyle/errors.hpp"
#include "linkstyle/generation.hpp"
#include "linkstyle/pairs.hpp"
#include "linkstyle/progress.hpp"
#include "linkstyle/results_database.hpp"
#include "linkstyle/study_lock.hpp"

namespace linkstyle {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

using counterfactual_run::generator_class_of;
using counterfactual_run::RunContext;
using counterfactual_run::Samples;

// A class's part of a run name: its letters and digits in lower case, each run of other
// characters as one '-' ("class<index>" when nothing is left).
std::string file_name_part(const std::string& name, int64_t index) {
  std::string text;
  for (const char c : name) {
    if (std::isalnum(static_cast<unsigned char>(c)))
      text += char(std::tolower(static_cast<unsigned char>(c)));
    else if (!text.empty() && text.back() != '-')
      text += '-';
  }
  while (!text.empty() && text.back() == '-') text.pop_back();
  return text.empty() ? fmt::format("class{}", index) : text;
}

// Whether the study's pairs are complete and hold pairs of the classifier class `target`.
bool target_has_pairs(const StudyConfig& study, int64_t target) {
  if (!fs::exists(study.pairs_folder() / "manifest.json")) return false;
  const auto manifest = PairsManifest::load(study.pairs_folder());
  if (!manifest.complete) return false;
  for (const auto& c : manifest.classes)
    if (c.classifier_class == target && c.accepted > 0) return true;
  return false;
}

// The judge's index of a class name (case-insensitive); Error naming the judge when it lacks it.
int64_t judge_class_of(const Classifier& judge, const std::string& name) {
  try {
    return resolve_classifier_class(judge, name, "models.judge");
  } catch (const SettingError&) {
    throw Error(judge.file(), fmt::format("has no class '{}': a judge must know the classifier's classes", name));
  }
}

// The request's target and source (when given) among the classifier's classes: SettingError when
// they are the same, or when generated samples have no source.
std::pair<int64_t, std::optional<int64_t>> request_classes(const Classifier& classifier,
                                                           const CounterfactualRequest& request) {
  if (classifier.num_classes() < 2) throw Error(classifier.file(), "the head gives fewer than 2 classes: nothing to cross");
  const int64_t target = resolve_classifier_class(classifier, request.to, "counterfactual.to");
  std::optional<int64_t> source;
  if (!request.from.empty()) source = resolve_classifier_class(classifier, request.from, "counterfactual.from");
  if (source && *source == target)
    throw SettingError("counterfactual.to", fmt::format("is the source class {} too: a counterfactual crosses to "
                                                        "another class",
                                                        classifier.class_name(target)));
  const bool images = !request.images.empty();
  if (!images && !source) throw SettingError("counterfactual.from", "is needed for generated samples (or give images)");
  return {target, source};
}

// The run's name ("<from>-to-<to>-<method>[-<start>-start]"), folder and database.
void name_run(CounterfactualSummary& summary, const StudyConfig& study, const Classifier& classifier,
              std::optional<int64_t> source, int64_t target, bool images) {
  const auto& settings = study.counterfactual;
  summary.method = settings.method;
  summary.source_name = source ? classifier.class_name(*source) : "images";
  summary.target_name = classifier.class_name(target);
  summary.run = fmt::format("{}-to-{}-{}{}", source && !images ? file_name_part(summary.source_name, *source) : "images",
                            file_name_part(summary.target_name, target), settings.method,
                            settings.start == "uniform" || settings.method == "realistic"
                                ? ""
                                : "-" + settings.start + "-start");
  summary.folder = study.counterfactuals_folder() / summary.run;
  summary.database = study.results_database();
}

// The study's judge, when it has one, and the references' images in its features.
void load_judge(RunContext& context, std::optional<Classifier>& judge) {
  const auto& study = context.study;
  const auto& models = context.models;
  const auto& settings = context.settings;
  const Classifier& classifier = models.classifier;
  if (!study.judge.empty()) {
    judge = Classifier::load(study.judge, classifier.device());
    context.judge = &*judge;
    context.judge_target = judge_class_of(*judge, classifier.class_name(context.target));
    if (context.geometry) {
      std::vector<torch::Tensor> reference;
      const auto& latents = context.geometry->reference_latents;
      for (int64_t first = 0; first < latents.size(0); first += settings.batch_size) {
        const auto part = latents.slice(0, first, std::min(latents.size(0), first + settings.batch_size));
        reference.push_back(
            encode_images(*judge, render_latents(models.generator, part.to(models.generator.device()))).to(torch::kCPU));
      }
      context.judge_reference =
          RealismReference::of(torch::cat(reference), settings.realism_neighbours, settings.realism_quantile);
    }
  }
}

// What every batch sees: the path's alphas, the segmenter, the panels' side, the target's
// geometry, the judge and the exact counterfactuals' class; all checked before anything is written.
void prepare_context(RunContext& context, const Samples& samples, bool images, std::optional<Classifier>& judge) {
  const auto& study = context.study;
  const auto& models = context.models;
  const auto& settings = context.settings;
  const Classifier& classifier = models.classifier;
  const int64_t target = context.target;
  const auto alphas = torch::linspace(0.0, settings.path_end, settings.path_points, torch::kDouble);
  for (int64_t k = 0; k < settings.path_points; ++k) context.alphas.push_back(alphas[k].item<double>());
  if (!study.segmenter.empty() && !images) context.parts = load_segmenter_parts(study.segmenter, classifier.device());
  context.side = int(std::clamp<int64_t>(models.generator.resolution(), 64, 256));
  // The target's pairs measure every counterfactual's realism (and give realistic its geometry).
  const bool realistic = settings.method == "realistic";
  if (realistic || target_has_pairs(study, target))
    context.geometry = class_geometry(study, classifier, target, realistic);
  if (realistic)
    for (const int64_t from : std::set<int64_t>(samples.source.begin(), samples.source.end()))
      context.geometry->terms_for(from, target);  // every source has pairs, before anything is written
  load_judge(context, judge);
  if (!images && knows_sample_factors(models.generator))
    context.exact_class = generator_class_of(study, models.generator, target, false);
}

// Adds a batch's image checks and times to the run's.
void add_checks_and_times(ShiftOptimisation& totals, const ShiftOptimisation& batch) {
  totals.checks += batch.checks;
  totals.seconds += batch.seconds;
  totals.check_seconds += batch.check_seconds;
}

// The grid of the run's first 8 samples (grid.png in its folder).
void write_run_grid(const fs::path& folder, int64_t samples) {
  std::vector<fs::path> grid_rows;
  for (int64_t id = 0; id < std::min<int64_t>(samples, 8); ++id)
    grid_rows.push_back(folder / fmt::format("sample-{:05d}", id));
  counterfactual_run::write_grid(folder / "grid.png", grid_rows);
}

}  // namespace

int64_t resolve_classifier_class(const Classifier& classifier, const std::string& text, const std::string& setting) {
  const auto lower = [](std::string value) {
    for (auto& c : value) c = char(std::tolower(static_cast<unsigned char>(c)));
    return value;
  };
  for (int64_t k = 0; k < classifier.num_classes(); ++k)
    if (lower(classifier.class_name(k)) == lower(text)) return k;
  if (!text.empty() && text.find_first_not_of("0123456789") == std::string::npos && text.size() < 12) {
    const int64_t k = std::stoll(text);
    if (k < classifier.num_classes()) return k;
  }
  std::string known;
  for (int64_t k = 0; k < std::min<int64_t>(classifier.num_classes(), 12); ++k)
    known += fmt::format("{}{} {}", k ? ", " : "", k, classifier.class_name(k));
  if (classifier.num_classes() > 12) known += fmt::format(", ... ({} classes)", classifier.num_classes());
  throw SettingError(setting, fmt::format("'{}' is not a class of {} (classes: {})", text,
                                          classifier.file().string(), known));
}

json CounterfactualSummary::to_json() const {
  json units = json::array();
  for (const auto& u : relevant_units)
    units.push_back(
        {{"unit", u.unit}, {"samples", u.samples}, {"share", u.share}, {"label", u.label}, {"concepts", u.concepts}});
  return {{"run", run},
          {"folder", folder.string()},
          {"database", database.string()},
          {"method", method},
          {"from", source_name},
          {"to", target_name},
          {"samples", samples},
          {"resumed", resumed},
          {"successes", successes},
          {"success_rate", success_rate},
          {"median_steps", std::isfinite(median_steps) ? json(median_steps) : json(nullptr)},
          {"p90_steps", std::isfinite(p90_steps) ? json(p90_steps) : json(nullptr)},
          {"seconds", seconds},
          {"seconds_per_counterfactual", seconds_per_counterfactual},
          {"check_share", check_share},
          {"realism",
           {{"space", realism.space},
            {"samples", realism.samples},
            {"frechet_distance", std::isfinite(realism.frechet_distance) ? json(realism.frechet_distance) : json(nullptr)},
            {"reference_frechet_distance", std::isfinite(realism.reference_frechet_distance)
                                               ? json(realism.reference_frechet_distance)
                                               : json(nullptr)}}},
          {"relevant_units", units}};
}

CounterfactualSummary run_counterfactuals(const StudyConfig& study, const CounterfactualModels& models,
                                          const fs::path& linking_file, const CounterfactualRequest& request,
                                          const CounterfactualRunOptions& options) {
  using namespace counterfactual_run;
  const auto start = std::chrono::steady_clock::now();
  check_study_settings(study);
  const auto& settings = study.counterfactual;
  const Classifier& classifier = models.classifier;
  const auto [target, source] = request_classes(classifier, request);
  const bool images = !request.images.empty();

  // Everything is read and checked before anything of the run is written.
  const Samples samples = images ? image_samples(models, request.images, source, target)
                                 : generated_samples(study, models, *source);
  CounterfactualSummary summary;
  name_run(summary, study, classifier, source, target, images);
  const std::string identity =
      identity_of(study, models, linking_file, images ? "images" : "generated", source, target, request.images, samples)
          .dump();

  RunContext context{study, models, settings, target, summary.run, summary.folder, {}, nullptr, 64, {}, nullptr, -1, {}, -1};
  std::optional<Classifier> judge;
  prepare_context(context, samples, images, judge);
  // A batch of sample ids -> the batch explained, on whichever rank takes it.
  const DistributedJob::Compute explain = [&](Message& item) {
    return batch_message(explain_batch(context, samples, item.take_ints()));
  };
  DistributedJob* job = options.job;
  if (job && !job->is_coordinator()) {
    job->serve(explain);
    return {};
  }

  ensure_writable_directory(study.results_database().parent_path());
  // One writer of the results database at a time: sweeps, probes and counterfactuals.
  const StudyLock lock(study.folder, "sweeps");
  ResultsDatabase results(study.results_database(), ResultsDatabase::Mode::create_or_open);
  const auto done = start_or_resume_run(results, summary, identity, images, source, target, request.fresh);

  summary.resumed = int64_t(done.size());
  ProgressBar progress(fmt::format("counterfactual {}", summary.run), samples.size());
  progress.set(summary.resumed);
  const auto batches = batches_to_explain(samples.size(), settings.batch_size, done);
  ShiftOptimisation totals;
  int64_t explained = 0;
  const auto record = [&](int64_t, Message& message) {
    const ExplainedBatch batch = take_batch(message);
    write_batch(context, batch);
    results.write_counterfactuals(summary.run, context.alphas, batch.records);
    add_checks_and_times(totals, batch.optimisation);
    explained += int64_t(batch.records.size());
    progress.set(summary.resumed + explained);
    if (explained < samples.size() - summary.resumed) stop_if_requested(options.stop_requested, "counterfactual");
  };
  try {
    run_items_in_order(
        job, int64_t(batches.size()), [&](int64_t k) { return Message().put(batches[size_t(k)]); }, explain,
        record);
  } catch (const Error&) {
    // Nothing of a run that committed nothing stays behind (a NaN loss, a full disk, a lost rank).
    if (done.empty() && explained == 0) {
      results.remove_counterfactual_run(summary.run);
      std::error_code ignored;
      fs::remove_all(summary.folder, ignored);
    }
    throw;
  }
  if (job) job->finish();
  progress.finish();

  write_run_grid(summary.folder, samples.size());

  summarise_run(summary, results, context);
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  summary.seconds_per_counterfactual = explained ? summary.seconds / double(explained) : 0.0;
  summary.check_share = totals.seconds > 0 ? totals.check_seconds / totals.seconds : 0.0;
  return summary;
}

}  // namespace linkstyle
