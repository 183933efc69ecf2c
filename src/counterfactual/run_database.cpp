// A counterfactual run in the results database: its identity, its row started or resumed, the
// batches still to explain, and the summary read back from its rows
// (counterfactual/counterfactual_run.hpp).
#include <algorithm>
#include <system_error>

#include <fmt/format.h>
#include <torch/torch.h>

#include "counterfactual/counterfactual_run.hpp"
#include "linkstyle/atomic_file.hpp"
#include "linkstyle/errors.hpp"
#include "linkstyle/models.hpp"
#include "quantile.hpp"
#include "sweep/run_identity.hpp"

namespace linkstyle::counterfactual_run {

namespace fs = std::filesystem;
using nlohmann::json;

json identity_of(const StudyConfig& study, const CounterfactualModels& models, const fs::path& linking_file,
                 const std::string& origin, std::optional<int64_t> source, int64_t target,
                 const std::vector<fs::path>& images, const Samples& samples) {
  const auto& k = study.counterfactual;
  json identity = {
      {"classifier", file_fingerprint(models.classifier.file())},
      {"generator", file_fingerprint(models.generator.file())},
      {"linking", file_fingerprint(linking_file)},
      {"segmenter", study.segmenter.empty() ? "" : file_fingerprint(study.segmenter)},
      {"judge", study.judge.empty() ? "" : file_fingerprint(study.judge)},
      {"origin", origin},
      {"source", source ? json(*source) : json(nullptr)},
      {"target", target},
      {"settings",
       {{"method", k.method}, {"samples", k.samples}, {"seed", k.seed}, {"shift_seed", k.shift_seed},
        {"step_size", k.step_size}, {"adam_step_size", k.adam_step_size}, {"source_weight", k.source_weight},
        {"cosine_weight", k.cosine_weight}, {"sparsity_weight", k.sparsity_weight}, {"max_steps", k.max_steps},
        {"check_interval", k.check_interval}, {"batch_size", k.batch_size}, {"path_points", k.path_points},
        {"path_end", k.path_end}, {"top_units", k.top_units}, {"realism_neighbours", k.realism_neighbours},
        {"realism_references", k.realism_references}, {"realism_quantile", k.realism_quantile}}},
      {"pairs", {{"psi", study.pairs.psi}, {"filter", study.pairs.filter}, {"batch_size", study.pairs.batch_size}}}};
  // Named only when not the paper's, so that runs stored before the setting existed still resume.
  if (k.start != "uniform") identity["settings"]["start"] = k.start;
  if (k.method == "realistic") {
    identity["settings"]["margin"] = k.margin;
    identity["settings"]["proximity_weight"] = k.proximity_weight;
    identity["settings"]["realism_weight"] = k.realism_weight;
  }
  json files = json::array();
  for (const auto& image : images) files.push_back({{"file", image.string()}, {"fingerprint", file_fingerprint(image)}});
  identity["images"] = files;
  // The samples themselves (another device or thread count may keep others): a resumed run
  // explains the same ones.
  identity["samples"] = {{"features", tensor_fingerprint(samples.features)}, {"latent_ids", samples.latent_id}};
  return identity;
}

std::set<int64_t> start_or_resume_run(ResultsDatabase& results, const CounterfactualSummary& summary,
                                      const std::string& identity, bool images, std::optional<int64_t> source,
                                      int64_t target, bool fresh) {
  const auto stored = results.counterfactual_run_identity(summary.run);
  if (stored && *stored != identity && !fresh)
    throw Error(results.file(), fmt::format("holds counterfactuals {} made with other settings, models or images; "
                                            "pass --fresh to replace them",
                                            summary.run));
  const bool new_run = !stored || *stored != identity;
  if (new_run)
    results.start_counterfactual_run({summary.run, summary.method, images ? "images" : "generated",
                                      source.value_or(-1), target, summary.source_name, summary.target_name, identity,
                                      (fs::path("counterfactuals") / summary.run).string()});
  auto done = results.counterfactual_samples(summary.run);
  // A run with nothing committed keeps no files of an earlier one (the rows go first).
  if (done.empty()) {
    std::error_code ignored;
    fs::remove_all(summary.folder, ignored);
  }
  ensure_writable_directory(summary.folder);
  return done;
}

std::vector<std::vector<int64_t>> batches_to_explain(int64_t samples, int64_t batch_size,
                                                     const std::set<int64_t>& done) {
  std::vector<std::vector<int64_t>> batches;
  for (int64_t first = 0; first < samples; first += batch_size) {
    std::vector<int64_t> ids;
    for (int64_t id = first; id < std::min(samples, first + batch_size); ++id)
      if (!done.count(id)) ids.push_back(id);
    if (!ids.empty()) batches.push_back(std::move(ids));
  }
  return batches;
}

void summarise_run(CounterfactualSummary& summary, ResultsDatabase& results, const RunContext& context) {
  std::vector<double> steps;
  for (const auto& [succeeded, taken] : results.counterfactual_outcomes(summary.run)) {
    summary.samples += 1;
    if (succeeded) summary.successes += 1, steps.push_back(double(taken));
  }
  summary.success_rate = summary.samples ? double(summary.successes) / double(summary.samples) : 0.0;
  summary.median_steps = quantile(steps, 0.5);
  summary.p90_steps = quantile(steps, 0.9);
  summary.relevant_units = results.counterfactual_relevant_units(summary.run, 20);
  if (context.geometry) {
    summary.realism = run_realism(context, summary.folder);
    results.write_counterfactual_run_realism(summary.run, summary.realism);
  }
}

}  // namespace linkstyle::counterfactual_run
