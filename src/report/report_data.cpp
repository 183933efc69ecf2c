#include "report_data.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "../quantile.hpp"
#include "linkstyle/sqlite_database.hpp"

namespace linkstyle::report {
namespace fs = std::filesystem;
namespace {

double number_or_nan(const Database::Statement& row, int column) {
  return row.is_null(column) ? NAN : row.column_double(column);
}

bool has_table(Database& db, const std::string& name) {
  Database::Statement query(db, "SELECT count(*) FROM sqlite_master WHERE name = ?");
  query.bind(1, name);
  return query.step() && query.column_int(0) > 0;
}

void read_units(Database& db, SweepData& data) {
  Database::Statement units(db,
                            "SELECT unit, range_min, range_max, gain, correlation, specificity, logit_change, "
                            "class_flip_rate, expressible, label, label_part, label_measure, label_z, "
                            "significant_concepts, label_confidence FROM units ORDER BY unit");
  while (units.step()) {
    UnitRow u;
    u.unit = units.column_int(0);
    u.range_min = number_or_nan(units, 1), u.range_max = number_or_nan(units, 2);
    u.gain = number_or_nan(units, 3), u.correlation = number_or_nan(units, 4);
    u.specificity = number_or_nan(units, 5), u.logit_change = number_or_nan(units, 6);
    u.class_flip_rate = number_or_nan(units, 7);
    u.expressible = !units.is_null(8) && units.column_int(8) != 0;
    u.label = units.is_null(9) ? "" : units.column_text(9);
    u.label_part = units.is_null(10) ? "" : units.column_text(10);
    u.label_measure = units.is_null(11) ? "" : units.column_text(11);
    u.label_z = number_or_nan(units, 12);
    u.significant_concepts = units.is_null(13) ? 0 : units.column_int(13);
    u.label_confidence = number_or_nan(units, 14);
    data.units.push_back(std::move(u));
  }
  std::map<int64_t, size_t> index;
  for (size_t i = 0; i < data.units.size(); ++i) index[data.units[i].unit] = i;
  if (has_table(db, "selectivity")) {
    Database::Statement concepts(db,
                                 "SELECT s.unit, p.name, s.measure, s.z, s.change FROM selectivity s JOIN parts p ON "
                                 "p.part = s.part WHERE s.significant = 1 ORDER BY s.unit, abs(s.z) DESC, s.part, s.measure");
    while (concepts.step()) {
      auto found = index.find(concepts.column_int(0));
      if (found == index.end()) continue;
      data.units[found->second].concepts.push_back(
          {concepts.column_text(1), concepts.column_text(2), number_or_nan(concepts, 3), number_or_nan(concepts, 4)});
    }
  }
}

void read_curves(Database& db, SweepData& data) {
  Database::Statement steps(db,
                            "SELECT unit, sample, step, value, activation, class_logit FROM steps "
                            "ORDER BY unit, sample, step");
  while (steps.step()) {
    auto& curves = data.curves[steps.column_int(0)];
    const int64_t sample = steps.column_int(1), step = steps.column_int(2);
    if (step >= static_cast<int64_t>(curves.values.size())) curves.values.resize(step + 1, NAN);
    curves.values[step] = number_or_nan(steps, 3);
    auto& activation = curves.activation[sample];
    auto& logit = curves.class_logit[sample];
    if (step >= static_cast<int64_t>(activation.size())) activation.resize(step + 1, NAN), logit.resize(step + 1, NAN);
    activation[step] = number_or_nan(steps, 4);
    logit[step] = number_or_nan(steps, 5);
  }
}

void read_part_changes(Database& db, SweepData& data) {
  std::map<std::pair<std::string, std::string>, std::vector<double>> null_values;
  if (has_table(db, "null_changes")) {
    Database::Statement nulls(db,
                              "SELECT p.name, n.measure, n.change FROM null_changes n JOIN parts p ON p.part = n.part "
                              "WHERE n.change IS NOT NULL ORDER BY n.direction, n.part, n.measure");
    while (nulls.step()) null_values[{nulls.column_text(0), nulls.column_text(1)}].push_back(nulls.column_double(2));
  }
  std::map<std::pair<std::string, std::string>, std::pair<double, double>> null_interval;
  for (const auto& [key, values] : null_values) null_interval[key] = {quantile(values, 0.025), quantile(values, 0.975)};
  Database::Statement changes(db,
                              "SELECT c.unit, p.name, c.measure, c.change FROM part_changes c JOIN parts p ON "
                              "p.part = c.part ORDER BY c.unit, c.part, c.measure");
  while (changes.step()) {
    PartChange change{changes.column_text(1), changes.column_text(2), number_or_nan(changes, 3), NAN, NAN};
    auto interval = null_interval.find({change.part, change.measure});
    if (interval != null_interval.end()) change.null_low = interval->second.first, change.null_high = interval->second.second;
    data.part_changes[changes.column_int(0)].push_back(std::move(change));
  }
}

void read_counterfactuals(Database& db, SweepData& data, int64_t shown_samples) {
  Database::Statement runs(db,
                           "SELECT r.run, r.method, r.origin, coalesce(r.source_name, ''), coalesce(r.target_name, ''), "
                           "coalesce(r.folder, ''), count(c.sample), coalesce(sum(c.success), 0), r.target_class, "
                           "CASE WHEN count(c.judge_class) > 0 THEN sum(c.success = 1 AND c.judge_class = r.target_class) "
                           "ELSE -1 END, coalesce(x.space, ''), x.frechet_distance, x.reference_frechet_distance "
                           "FROM counterfactual_runs r LEFT JOIN counterfactuals c ON c.run = r.run "
                           "LEFT JOIN counterfactual_run_realism x ON x.run = r.run GROUP BY r.run ORDER BY r.run");
  while (runs.step()) {
    CounterfactualRunData run;
    run.run = runs.column_text(0), run.method = runs.column_text(1), run.origin = runs.column_text(2);
    run.source_name = runs.column_text(3), run.target_name = runs.column_text(4);
    run.folder = runs.column_text(5);
    run.samples = runs.column_int(6), run.successes = runs.column_int(7);
    run.target_class = runs.column_int(8), run.judge_successes = runs.column_int(9);
    run.realism_space = runs.column_text(10);
    run.frechet_distance = number_or_nan(runs, 11), run.reference_frechet_distance = number_or_nan(runs, 12);
    std::vector<double> realism;
    Database::Statement ratios(db, "SELECT realism FROM counterfactuals WHERE run = ? AND success = 1 AND realism IS "
                                   "NOT NULL");
    ratios.bind(1, run.run);
    while (ratios.step()) realism.push_back(number_or_nan(ratios, 0));
    run.median_realism = quantile(realism, 0.5);
    data.counterfactuals.push_back(std::move(run));
  }
  for (auto& run : data.counterfactuals) {
    Database::Statement samples(db,
                                "SELECT sample, success, steps, units_90, target_probability, crossing_alpha, "
                                "coalesce(image, ''), coalesce(path_image, ''), realism, margin, "
                                "coalesce(judge_class, -1), judge_target_probability FROM counterfactuals WHERE run = ? "
                                "ORDER BY sample LIMIT ?");
    samples.bind(1, run.run).bind(2, shown_samples);
    while (samples.step()) {
      CounterfactualSample s;
      s.sample = samples.column_int(0);
      s.success = samples.column_int(1) != 0;
      s.steps = samples.column_int(2), s.units_90 = samples.column_int(3);
      s.target_probability = number_or_nan(samples, 4), s.crossing_alpha = number_or_nan(samples, 5);
      s.image = samples.column_text(6), s.path_image = samples.column_text(7);
      s.realism = number_or_nan(samples, 8), s.margin = number_or_nan(samples, 9);
      s.judge_class = samples.column_int(10), s.judge_target_probability = number_or_nan(samples, 11);
      Database::Statement path(db,
                               "SELECT alpha, target_probability FROM counterfactual_paths WHERE run = ? AND sample = ? "
                               "ORDER BY point");
      path.bind(1, run.run).bind(2, s.sample);
      while (path.step()) s.alphas.push_back(number_or_nan(path, 0)), s.target_probabilities.push_back(number_or_nan(path, 1));
      run.shown.push_back(std::move(s));
    }
    Database::Statement relevant(db,
                                 "SELECT unit, samples, share, coalesce(label, ''), coalesce(concepts, '') FROM "
                                 "counterfactual_relevant_units WHERE run = ? ORDER BY samples DESC, unit LIMIT 10");
    relevant.bind(1, run.run);
    while (relevant.step())
      run.relevant_units.push_back({relevant.column_int(0), relevant.column_int(1), number_or_nan(relevant, 2),
                                    relevant.column_text(3), relevant.column_text(4)});
  }
}

}  // namespace

std::optional<SweepData> read_sweep_data(const StudyConfig& study, int64_t counterfactual_samples) {
  if (!fs::exists(study.results_database())) return std::nullopt;
  Database db(study.results_database(), Database::Mode::open_existing);
  SweepData data;
  if (has_table(db, "parts")) {
    Database::Statement parts(db, "SELECT name FROM parts ORDER BY part");
    while (parts.step()) data.part_names.push_back(parts.column_text(0));
  }
  if (has_table(db, "units")) read_units(db, data);
  if (has_table(db, "steps")) read_curves(db, data);
  if (has_table(db, "part_changes")) read_part_changes(db, data);
  if (has_table(db, "samples")) {
    Database::Statement samples(db, "SELECT sample, generator_class FROM samples");
    while (samples.step()) data.sample_classes[samples.column_int(0)] = samples.column_int(1);
  }
  if (has_table(db, "part_metrics")) {
    Database::Statement areas(db,
                              "SELECT p.name, m.sample, avg(m.area) FROM part_metrics m JOIN parts p ON p.part = m.part "
                              "WHERE m.step = 0 GROUP BY m.part, m.sample");
    while (areas.step()) data.part_area[areas.column_text(0)][areas.column_int(1)] = number_or_nan(areas, 2);
  }
  if (has_table(db, "concept_top_units")) {
    Database::Statement top(db, "SELECT part_name, measure, unit, z FROM concept_top_units ORDER BY part_name, measure, rank");
    while (top.step())
      data.concept_top_units[top.column_text(0) + " " + top.column_text(1)].emplace_back(top.column_int(2),
                                                                                         number_or_nan(top, 3));
  }
  if (has_table(db, "counterfactual_runs")) read_counterfactuals(db, data, counterfactual_samples);
  return data;
}

}  // namespace linkstyle::report
