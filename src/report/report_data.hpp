// What the report reads from a study: the sweep's results database, fit.json, the
// reconstructions, the counterfactual runs and ground_truth.json, as plain structures.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "linkstyle/study.hpp"

namespace linkstyle::report {

struct UnitConcept {
  std::string part, measure;
  double z = 0, change = 0;
};

struct UnitRow {
  int64_t unit = 0;
  double range_min = 0, range_max = 0, gain = 0, correlation = 0, specificity = 0, logit_change = 0;
  double class_flip_rate = 0, label_z = 0;
  double label_confidence = 0;  // NaN without a label (label_confidence.hpp)
  bool expressible = false;
  std::string label, label_part, label_measure;
  int64_t significant_concepts = 0;
  std::vector<UnitConcept> concepts;  // significant, by decreasing |z|
};

struct SweepCurves {  // one unit's steps, per tuning sample
  std::vector<double> values;                     // [T]
  std::map<int64_t, std::vector<double>> activation, class_logit;  // sample -> [T]
};

struct PartChange {
  std::string part, measure;
  double change = 0, null_low = 0, null_high = 0;  // the null's 2.5% and 97.5% quantiles
};

struct CounterfactualSample {
  int64_t sample = 0;
  bool success = false;
  int64_t steps = 0, units_90 = 0;
  double target_probability = 0, crossing_alpha = 0;
  double realism = 0, margin = 0;            // NaN when not measured
  int64_t judge_class = -1;                  // -1 without a judge
  double judge_target_probability = 0;
  std::string image, path_image;       // relative to the run's folder
  std::vector<double> alphas, target_probabilities;
};

struct RelevantUnitRow {
  int64_t unit = 0, samples = 0;
  double share = 0;
  std::string label, concepts;
};

struct CounterfactualRunData {
  std::string run, method, origin, source_name, target_name;
  std::filesystem::path folder;
  int64_t samples = 0, successes = 0;
  int64_t target_class = 0, judge_successes = -1;  // -1 without a judge
  double median_realism = 0;                       // over the successes; NaN when not measured
  std::string realism_space;                       // "judge" or "classifier" ("" when not measured)
  double frechet_distance = 0, reference_frechet_distance = 0;
  std::vector<CounterfactualSample> shown;
  std::vector<RelevantUnitRow> relevant_units;
};

struct SweepData {
  std::vector<std::string> part_names;
  std::vector<UnitRow> units;                   // by unit
  std::map<int64_t, SweepCurves> curves;        // by unit
  std::map<int64_t, std::vector<PartChange>> part_changes;  // by unit
  std::map<int64_t, int64_t> sample_classes;    // tuning sample -> generator class
  std::map<std::string, std::map<int64_t, double>> part_area;  // part -> tuning sample -> mean area at step 0
  std::map<std::string, std::vector<std::pair<int64_t, double>>> concept_top_units;  // "part measure" -> (unit, z)
  std::vector<CounterfactualRunData> counterfactuals;
};

// Reads the sweep's tables (and the counterfactual runs) from the study's results database;
// nullopt when the study has no database.
std::optional<SweepData> read_sweep_data(const StudyConfig& study, int64_t counterfactual_samples);

}  // namespace linkstyle::report
