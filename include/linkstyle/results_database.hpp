// linkstyle/results_database.hpp
//
// WHAT THIS REPRESENTS
//   A study's results database (sweeps/results.sqlite, schema in docs/sweeps.md), and the only
//   code in linkstyle that speaks SQL to it: the schema, typed writers for each stage's rows
//   (a sweep's chunks, its verdicts, the ground-truth probe) and typed readers for the stages
//   that come after (selectivity, strips, ground truth, export, the report and the explorer).
// REQUIRES
//   create_or_open: a path in a writable folder; open_existing, read_only: a file that exists.
// ENSURES
//   The file carries linkstyle's application id and schema version (SQLite's application_id and
//   user_version); a database of another version, an older linkstyle or another program is
//   refused with an error that names the file and says what to do. read_only opens the file as it
//   is (no version check, no migration) and refuses every write: its readers see the tables the
//   file has (has_table says which). Every writer commits its rows in one transaction: a killed
//   process leaves whole chunks only. Errors name the file.
#pragma once

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "linkstyle/part_measures.hpp"

namespace linkstyle {

class Database;

// One unit's cycle and classifier statistics over its sweeps (the units table).
struct UnitCycleRow {
  int64_t unit = 0;
  double range_min = 0, range_max = 0;
  double gain = 0, correlation = 0, off_unit_correlation_p99 = 0, specificity = 0;
  double logit_change = 0, class_flip_rate = 0;
};

// The rows of a chunk of swept units, ordered (unit, sample, step) like its images.
struct UnitChunkRows {
  std::vector<UnitCycleRow> units;  // [U]
  int64_t samples = 0, steps = 0;
  torch::Tensor values;        // [U, T] float64: the unit's value at each step
  torch::Tensor activation;    // [U, S, T] float64: r'_u re-encoded
  torch::Tensor other_change;  // [U, S, T] float64: mean |r'_j - r'_j(step 0)| over the other units
  torch::Tensor class_logit;   // [U, S, T] float64: the sample's classifier class logit
  torch::Tensor top_class;     // [U, S, T] int64
  const std::vector<std::vector<PartMeasures>>* parts = nullptr;  // [U*S*T] per image
  std::vector<std::vector<std::vector<PartMotion>>> motion;       // [U][S]
  torch::Tensor change_mean, change_count;                        // [U, P, M] float64 / int64
};

// The rows of a chunk of null directions.
struct NullChunkRows {
  std::vector<int64_t> directions, bins;
  std::vector<double> norms;
  torch::Tensor change_mean, change_count;  // [directions, P, M]
};

// One tested concept of a unit (the selectivity table).
struct ConceptScore {
  int64_t part = 0;
  std::string measure;
  // change: NaN when undefined; p: from the null's fitted tail; q: Benjamini-Hochberg (selectivity.hpp)
  double change = 0, z = 0, p = 0, p_empirical = 0, q = 0;
  bool significant = false;
};

// A unit's selectivity verdict (the units table's verdict columns and its selectivity rows).
struct UnitVerdict {
  int64_t unit = 0;
  bool expressible = false;
  int64_t significant_concepts = 0;
  std::string label = "none";             // "part measure +|-" or "none"
  std::string label_part, label_measure;  // empty (NULL) when none
  double label_z = 0;
  // The label's evidence and confidence (label_confidence.hpp); NaN when there is no label.
  double label_sample_agreement = NAN, label_margin = NAN, label_confidence = NAN;
  std::vector<ConceptScore> concepts;
};

// A unit's cycle figures as the verdict needs them (missing when not swept, NaN when undefined).
struct UnitCycleFigures {
  double gain = 0, correlation = 0, specificity = 0;
  bool defined = false;
};

// A swept unit's verdict as the units table holds it.
struct UnitLabel {
  int64_t unit = 0;
  bool expressible = false;
  std::string label;              // "part measure +|-", "none", or "" before the verdicts
  double label_confidence = NAN;  // NaN when NULL (no label)
};

// An expressible unit with a label (units.label_part / label_measure).
struct LabelledUnit {
  int64_t unit = 0;
  std::string part, measure;
};

// A counterfactual run (the counterfactual_runs table).
struct CounterfactualRunRow {
  std::string run, method, origin;  // origin: "generated" or "images"
  int64_t source_class = -1, target_class = 0;  // classifier indices; source -1: each image's own
  std::string source_name, target_name, identity, folder;
};

// One counterfactual (a counterfactuals row with its path, top units and part measures).
struct CounterfactualRecord {
  int64_t sample = 0, source_class = 0, latent_id = -1;  // latent_id -1: a user image
  std::string origin;                                     // "generated" or the image file
  bool success = false;
  int64_t steps = 0, units_90 = 0, counterfactual_class = 0;
  double shift_l1 = 0, shift_l2 = 0, pixel_distance = 0, feature_distance = 0, relative_feature_distance = 0;
  double source_probability = 0, target_probability = 0, crossing_alpha = 0;  // crossing: NaN when none
  std::string image, path_image, tensors;  // files, relative to the study folder
  std::vector<double> path_probability;    // target probability at each path point
  std::vector<int64_t> path_class;         // top-1 class at each path point
  std::vector<std::pair<int64_t, double>> top_units;  // (unit, s_unit) by decreasing |s|
  std::vector<PartMeasures> original_parts, counterfactual_parts;  // when the study has a segmenter
  // The realism (kNN ratio of the image's features to the target's pairs; NaN without pairs) and
  // the image's logit margin z_B - max_{k != B} z_k.
  double realism = 0, margin = 0;
  // The judge's verdict (judge_class -1 and NaN without a judge) and realism in its features.
  int64_t judge_class = -1;
  double judge_target_probability = 0, judge_realism = 0;
  // The exact counterfactual (shapes world): cos(s, r - r(render(B, same factors))); NaN when none.
  double exact_shift_cosine = 0;
  std::vector<PartMeasures> round_trip_parts, exact_parts;  // G(L(r)) and the exact render
};

// A run's realism over its successful samples: the Frechet distance of their features to the
// references' (in the judge's features when the study has one, else the classifier's), and the
// same figure for as many references against the other references (B's own at that size).
struct CounterfactualRunRealism {
  std::string space;  // "judge" or "classifier"
  int64_t samples = 0;
  double frechet_distance = 0, reference_frechet_distance = 0;
};

// A unit among the top units by |s| of a run's samples, with its sweep verdict when swept.
struct RelevantUnit {
  int64_t unit = 0, samples = 0;
  double share = 0;             // samples / the run's samples
  std::string label, concepts;  // units.label and its significant concepts ("" when not swept)
};

// A row of the units table: NaN for NULL numbers, "" for NULL text; expressible false and
// significant_concepts 0 before the verdicts.
struct UnitTableRow {
  int64_t unit = 0;
  double range_min = 0, range_max = 0, gain = 0, correlation = 0, off_unit_correlation_p99 = 0;
  double specificity = 0, logit_change = 0, class_flip_rate = 0;
  bool expressible = false;
  std::string label, label_part, label_measure;
  double label_z = 0;
  int64_t significant_concepts = 0;
  double label_sample_agreement = NAN, label_margin = NAN, label_confidence = NAN;
};

// A significant concept of a unit with its part's name (the selectivity table with parts).
struct SignificantConcept {
  int64_t unit = 0;
  std::string part_name, measure;
  double z = 0, change = 0;  // NaN when NULL
};

// A row of the steps table: at one step of a unit's sweep, the unit's value and one tuning
// sample's re-encoded activation, change of the other units and class logit (NaN when NULL).
struct SweepStepRow {
  int64_t unit = 0, sample = 0, step = 0;
  double value = 0, activation = 0, other_change = 0, class_logit = 0;
  int64_t top_class = -1;  // -1 when NULL
};

// A unit's change of a concept (the part_changes table with its part's name).
struct UnitPartChange {
  int64_t unit = 0;
  std::string part_name, measure;
  double change = 0;  // NaN when NULL
};

// A null direction's change of a concept (the null_changes table with its part's name).
struct NullPartChange {
  int64_t direction = 0;
  std::string part_name, measure;
  double change = 0;
};

// A part's mean area in a tuning sample's images at step 0, over the swept units.
struct PartSampleArea {
  std::string part_name;
  int64_t sample = 0;
  double mean_area = 0;  // NaN when NULL
};

// A row of the concept_top_units view: one of the 10 significant units of largest |z| of a concept.
struct ConceptTopUnit {
  std::string part_name, measure;
  int64_t unit = 0, rank = 0;  // rank 1: the largest |z|
  double z = 0, change = 0;    // NaN when NULL
};

// A counterfactual run with its counts and its realism (counterfactual_runs, counterfactuals
// and counterfactual_run_realism).
struct CounterfactualRunSummary {
  std::string run, method, origin;
  std::string source_name, target_name, folder;  // "" when NULL
  int64_t target_class = 0;
  int64_t samples = 0, successes = 0;
  int64_t judge_successes = -1;  // successes the judge takes for the target class; -1 without a judge
  std::string realism_space;     // "judge" or "classifier"; "" when not measured
  double frechet_distance = NAN, reference_frechet_distance = NAN;  // NaN when not measured
};

// A stored counterfactual's outcome (a counterfactuals row): NaN for NULL numbers.
struct CounterfactualSampleRow {
  int64_t sample = 0;
  bool success = false;
  int64_t steps = 0, units_90 = 0;
  double target_probability = 0, crossing_alpha = 0, realism = 0, margin = 0;
  int64_t judge_class = -1;  // -1 without a judge
  double judge_target_probability = 0;
  std::string image, path_image;  // relative to the run's folder; "" when NULL
};

// A point of a counterfactual's path (a counterfactual_paths row).
struct CounterfactualPathPoint {
  double alpha = 0, target_probability = 0;  // NaN when NULL
  int64_t top_class = -1;                    // -1 when NULL
};

class ResultsDatabase {
 public:
  static constexpr int kSchemaVersion = 3;
  // read_only: an existing file, read as it is (the report and the explorer).
  enum class Mode { open_existing, create_or_open, read_only };
  ResultsDatabase(const std::filesystem::path& file, Mode mode);
  ~ResultsDatabase();
  ResultsDatabase(ResultsDatabase&&) noexcept;
  ResultsDatabase& operator=(ResultsDatabase&&) noexcept;
  const std::filesystem::path& file() const;

  // The sweep's identity (JSON text) and the fixed tables it starts with, written once.
  std::optional<std::string> run_identity();
  void start_run(const std::string& identity, const std::vector<std::string>& part_names,
                 const torch::Tensor& generator_classes, const torch::Tensor& classifier_classes);
  std::set<int64_t> swept_units();
  std::set<int64_t> swept_null_directions();
  void write_unit_chunk(const UnitChunkRows& rows);
  void write_null_chunk(const NullChunkRows& rows);

  // Concept changes of `units` [U, P*M] and of the null directions [B, per_bin, P*M] (direction
  // d in bin d / per_bin), NaN where undefined.
  torch::Tensor unit_concept_changes(const std::vector<int64_t>& units, int64_t num_parts);
  torch::Tensor null_concept_changes(int64_t bins, int64_t per_bin, int64_t num_parts);
  // Every swept unit's cycle figures, by unit.
  std::map<int64_t, UnitCycleFigures> unit_cycles();
  // Replaces the selectivity table and the units' verdict columns.
  void write_verdicts(const std::vector<UnitVerdict>& verdicts);
  // Marks the run complete and checkpoints the write-ahead log: the database file alone then holds
  // every result (or this throws, on a full disk).
  void mark_complete(const std::string& part_source);
  bool is_complete();

  std::vector<std::string> part_names();
  // The first `limit` units by (expressible, cycle correlation, unit).
  std::vector<int64_t> top_units(int64_t limit);
  // Expressible units by decreasing cycle correlation, labelled or not (part empty: no label).
  std::vector<LabelledUnit> expressible_units();
  // Every swept unit's verdict and its label's confidence, by unit.
  std::vector<UnitLabel> unit_labels();
  // Every unit's tested concepts (the selectivity table), by unit.
  std::map<int64_t, std::vector<ConceptScore>> concept_scores();
  std::map<int64_t, int64_t> sample_generator_classes();
  // max - min of each unit's range; NaN for units not swept. [units] float64
  torch::Tensor unit_ranges(int64_t units);
  int64_t last_step();
  // Every part_metrics row ordered by (unit, sample, step, part).
  void for_each_part_metrics(
      const std::function<void(int64_t unit, int64_t sample, int64_t step, const PartMeasures& measures)>& visit);
  // Each swept (unit, sample)'s endpoint changes [P, M] float64 (endpoint_changes in
  // concept_changes.hpp), recomputed from its part_metrics and motion rows, in (unit, sample)
  // order; `side` is the images' side. Part indices must lie in [0, num_parts).
  void for_each_sample_changes(int64_t num_parts, int64_t side,
                               const std::function<void(int64_t unit, int64_t sample, const torch::Tensor& changes)>& visit);
  // Replaces the probe table: correlation [D, F], partial [D, F'] (F' <= F; NULL beyond).
  void write_probe(const std::vector<std::string>& factor_names, const torch::Tensor& correlation,
                   const torch::Tensor& partial);

  // Counterfactual runs (their tables are made on first use).
  std::optional<std::string> counterfactual_run_identity(const std::string& run);
  // Records the run, replacing every row of a stored run of the same name.
  void start_counterfactual_run(const CounterfactualRunRow& row);
  // Removes every row of the run.
  void remove_counterfactual_run(const std::string& run);
  std::set<int64_t> counterfactual_samples(const std::string& run);
  // One transaction: the records with their paths (at `alphas`), top units and parts.
  void write_counterfactuals(const std::string& run, const std::vector<double>& alphas,
                             const std::vector<CounterfactualRecord>& records);
  // (success, steps) of every stored sample of the run, by sample.
  std::vector<std::pair<bool, int64_t>> counterfactual_outcomes(const std::string& run);
  void write_counterfactual_run_realism(const std::string& run, const CounterfactualRunRealism& realism);
  // The run's relevant units by decreasing count (then unit), with their sweep verdicts.
  std::vector<RelevantUnit> counterfactual_relevant_units(const std::string& run, int64_t limit);
  bool has_counterfactuals();

  // Readers of what the report shows; they read a read_only database too. The caller checks with
  // has_table that the tables a reader reads exist (an older database may lack some).
  // Every units row, by unit.
  std::vector<UnitTableRow> unit_rows();
  // The significant selectivity rows with their part names, by unit, decreasing |z|, part, measure.
  std::vector<SignificantConcept> significant_concepts();
  // Every steps row, by (unit, sample, step).
  std::vector<SweepStepRow> sweep_steps();
  // Every part_changes row with its part name, by (unit, part, measure).
  std::vector<UnitPartChange> unit_part_changes();
  // The null_changes rows that have a change, with their part names, by (direction, part, measure).
  std::vector<NullPartChange> null_part_changes();
  // Each (part, tuning sample)'s mean area at step 0 over the swept units, one row per pair.
  std::vector<PartSampleArea> first_step_part_areas();
  // The concept_top_units view, by (part name, measure, rank).
  std::vector<ConceptTopUnit> concept_top_units();
  // Every counterfactual run with its counts and realism figures, by run.
  std::vector<CounterfactualRunSummary> counterfactual_run_summaries();
  // The realism of each of the run's successful counterfactuals that has one.
  std::vector<double> successful_counterfactual_realism(const std::string& run);
  // The run's first `limit` counterfactuals, by sample.
  std::vector<CounterfactualSampleRow> counterfactual_sample_rows(const std::string& run, int64_t limit);
  // A counterfactual's path, by point.
  std::vector<CounterfactualPathPoint> counterfactual_path(const std::string& run, int64_t sample);

  // True when a table or view of that name exists.
  bool has_table(const std::string& name);
  // Writes a table or view as CSV, atomically; returns its rows.
  int64_t export_table(const std::string& table, const std::filesystem::path& output);

 private:
  std::unique_ptr<Database> database_;
};

// `linkstyle export`: each of `tables` (tables or views of a results database) as
// `folder`/<table>.csv; every name is checked before anything is written. Returns
// {table: {"file", "rows"}}.
nlohmann::json export_results_tables(const std::filesystem::path& database, const std::vector<std::string>& tables,
                                     const std::filesystem::path& folder);

}  // namespace linkstyle
