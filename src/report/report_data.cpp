#include "report_data.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "../quantile.hpp"
#include "linkstyle/results_database.hpp"

namespace linkstyle::report {
namespace fs = std::filesystem;
namespace {

void read_units(ResultsDatabase& results, SweepData& data) {
  for (const auto& row : results.unit_rows()) {
    UnitRow u;
    u.unit = row.unit;
    u.range_min = row.range_min, u.range_max = row.range_max;
    u.gain = row.gain, u.correlation = row.correlation;
    u.specificity = row.specificity, u.logit_change = row.logit_change;
    u.class_flip_rate = row.class_flip_rate;
    u.expressible = row.expressible;
    u.label = row.label;
    u.label_part = row.label_part;
    u.label_measure = row.label_measure;
    u.label_z = row.label_z;
    u.significant_concepts = row.significant_concepts;
    u.label_confidence = row.label_confidence;
    data.units.push_back(std::move(u));
  }
  std::map<int64_t, size_t> index;
  for (size_t i = 0; i < data.units.size(); ++i) index[data.units[i].unit] = i;
  if (results.has_table("selectivity")) {
    for (const auto& concept_row : results.significant_concepts()) {
      auto found = index.find(concept_row.unit);
      if (found == index.end()) continue;
      data.units[found->second].concepts.push_back(
          {concept_row.part_name, concept_row.measure, concept_row.z, concept_row.change});
    }
  }
}

void read_curves(ResultsDatabase& results, SweepData& data) {
  for (const auto& row : results.sweep_steps()) {
    auto& curves = data.curves[row.unit];
    const int64_t sample = row.sample, step = row.step;
    if (step >= static_cast<int64_t>(curves.values.size())) curves.values.resize(step + 1, NAN);
    curves.values[step] = row.value;
    auto& activation = curves.activation[sample];
    auto& logit = curves.class_logit[sample];
    if (step >= static_cast<int64_t>(activation.size())) activation.resize(step + 1, NAN), logit.resize(step + 1, NAN);
    activation[step] = row.activation;
    logit[step] = row.class_logit;
  }
}

void read_part_changes(ResultsDatabase& results, SweepData& data) {
  std::map<std::pair<std::string, std::string>, std::vector<double>> null_values;
  if (results.has_table("null_changes"))
    for (const auto& row : results.null_part_changes()) null_values[{row.part_name, row.measure}].push_back(row.change);
  std::map<std::pair<std::string, std::string>, std::pair<double, double>> null_interval;
  for (const auto& [key, values] : null_values) null_interval[key] = {quantile(values, 0.025), quantile(values, 0.975)};
  for (const auto& row : results.unit_part_changes()) {
    PartChange change{row.part_name, row.measure, row.change, NAN, NAN};
    auto interval = null_interval.find({change.part, change.measure});
    if (interval != null_interval.end()) change.null_low = interval->second.first, change.null_high = interval->second.second;
    data.part_changes[row.unit].push_back(std::move(change));
  }
}

CounterfactualSample shown_sample(ResultsDatabase& results, const std::string& run,
                                  const CounterfactualSampleRow& row) {
  CounterfactualSample s;
  s.sample = row.sample;
  s.success = row.success;
  s.steps = row.steps, s.units_90 = row.units_90;
  s.target_probability = row.target_probability, s.crossing_alpha = row.crossing_alpha;
  s.image = row.image, s.path_image = row.path_image;
  s.realism = row.realism, s.margin = row.margin;
  s.judge_class = row.judge_class, s.judge_target_probability = row.judge_target_probability;
  for (const auto& point : results.counterfactual_path(run, s.sample))
    s.alphas.push_back(point.alpha), s.target_probabilities.push_back(point.target_probability);
  return s;
}

void read_counterfactuals(ResultsDatabase& results, SweepData& data, int64_t shown_samples) {
  for (const auto& summary : results.counterfactual_run_summaries()) {
    CounterfactualRunData run;
    run.run = summary.run, run.method = summary.method, run.origin = summary.origin;
    run.source_name = summary.source_name, run.target_name = summary.target_name;
    run.folder = summary.folder;
    run.samples = summary.samples, run.successes = summary.successes;
    run.target_class = summary.target_class, run.judge_successes = summary.judge_successes;
    run.realism_space = summary.realism_space;
    run.frechet_distance = summary.frechet_distance;
    run.reference_frechet_distance = summary.reference_frechet_distance;
    run.median_realism = quantile(results.successful_counterfactual_realism(run.run), 0.5);
    data.counterfactuals.push_back(std::move(run));
  }
  for (auto& run : data.counterfactuals) {
    for (const auto& row : results.counterfactual_sample_rows(run.run, shown_samples))
      run.shown.push_back(shown_sample(results, run.run, row));
    for (const auto& unit : results.counterfactual_relevant_units(run.run, 10))
      run.relevant_units.push_back({unit.unit, unit.samples, unit.share, unit.label, unit.concepts});
  }
}

}  // namespace

std::optional<SweepData> read_sweep_data(const StudyConfig& study, int64_t counterfactual_samples) {
  if (!fs::exists(study.results_database())) return std::nullopt;
  ResultsDatabase results(study.results_database(), ResultsDatabase::Mode::read_only);
  SweepData data;
  if (results.has_table("parts")) data.part_names = results.part_names();
  if (results.has_table("units")) read_units(results, data);
  if (results.has_table("steps")) read_curves(results, data);
  if (results.has_table("part_changes")) read_part_changes(results, data);
  if (results.has_table("samples")) data.sample_classes = results.sample_generator_classes();
  if (results.has_table("part_metrics"))
    for (const auto& area : results.first_step_part_areas())
      data.part_area[area.part_name][area.sample] = area.mean_area;
  if (results.has_table("concept_top_units"))
    for (const auto& top : results.concept_top_units())
      data.concept_top_units[top.part_name + " " + top.measure].emplace_back(top.unit, top.z);
  if (results.has_table("counterfactual_runs")) read_counterfactuals(results, data, counterfactual_samples);
  return data;
}

}  // namespace linkstyle::report
