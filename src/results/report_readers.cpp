// The readers of what the report and the explorer show: units, significant concepts, sweep steps,
// concept changes, part areas, concept top units and counterfactual runs, as plain rows.
#include <cmath>

#include "results/results_statements.hpp"

namespace linkstyle {

std::vector<UnitTableRow> ResultsDatabase::unit_rows() {
  std::vector<UnitTableRow> rows;
  Database::Statement q(*database_,
                        "SELECT unit, range_min, range_max, gain, correlation, off_unit_correlation_p99, specificity, "
                        "logit_change, class_flip_rate, expressible, label, label_part, label_measure, label_z, "
                        "significant_concepts, label_sample_agreement, label_margin, label_confidence FROM units "
                        "ORDER BY unit");
  while (q.step()) {
    UnitTableRow u;
    u.unit = q.column_int(0);
    u.range_min = number_or_nan(q, 1), u.range_max = number_or_nan(q, 2);
    u.gain = number_or_nan(q, 3), u.correlation = number_or_nan(q, 4);
    u.off_unit_correlation_p99 = number_or_nan(q, 5), u.specificity = number_or_nan(q, 6);
    u.logit_change = number_or_nan(q, 7), u.class_flip_rate = number_or_nan(q, 8);
    u.expressible = !q.is_null(9) && q.column_int(9) != 0;
    u.label = text_or_empty(q, 10), u.label_part = text_or_empty(q, 11), u.label_measure = text_or_empty(q, 12);
    u.label_z = number_or_nan(q, 13);
    u.significant_concepts = q.is_null(14) ? 0 : q.column_int(14);
    u.label_sample_agreement = number_or_nan(q, 15), u.label_margin = number_or_nan(q, 16);
    u.label_confidence = number_or_nan(q, 17);
    rows.push_back(std::move(u));
  }
  return rows;
}

std::vector<SignificantConcept> ResultsDatabase::significant_concepts() {
  std::vector<SignificantConcept> concepts;
  Database::Statement q(*database_,
                        "SELECT s.unit, p.name, s.measure, s.z, s.change FROM selectivity s JOIN parts p ON "
                        "p.part = s.part WHERE s.significant = 1 ORDER BY s.unit, abs(s.z) DESC, s.part, s.measure");
  while (q.step())
    concepts.push_back({q.column_int(0), q.column_text(1), q.column_text(2), number_or_nan(q, 3), number_or_nan(q, 4)});
  return concepts;
}

std::vector<SweepStepRow> ResultsDatabase::sweep_steps() {
  std::vector<SweepStepRow> steps;
  Database::Statement q(*database_,
                        "SELECT unit, sample, step, value, activation, other_change, class_logit, top_class FROM steps "
                        "ORDER BY unit, sample, step");
  while (q.step())
    steps.push_back({q.column_int(0), q.column_int(1), q.column_int(2), number_or_nan(q, 3), number_or_nan(q, 4),
                     number_or_nan(q, 5), number_or_nan(q, 6), q.is_null(7) ? -1 : q.column_int(7)});
  return steps;
}

std::vector<UnitPartChange> ResultsDatabase::unit_part_changes() {
  std::vector<UnitPartChange> changes;
  Database::Statement q(*database_,
                        "SELECT c.unit, p.name, c.measure, c.change FROM part_changes c JOIN parts p ON "
                        "p.part = c.part ORDER BY c.unit, c.part, c.measure");
  while (q.step()) changes.push_back({q.column_int(0), q.column_text(1), q.column_text(2), number_or_nan(q, 3)});
  return changes;
}

std::vector<NullPartChange> ResultsDatabase::null_part_changes() {
  std::vector<NullPartChange> changes;
  Database::Statement q(*database_,
                        "SELECT n.direction, p.name, n.measure, n.change FROM null_changes n JOIN parts p ON "
                        "p.part = n.part WHERE n.change IS NOT NULL ORDER BY n.direction, n.part, n.measure");
  while (q.step()) changes.push_back({q.column_int(0), q.column_text(1), q.column_text(2), q.column_double(3)});
  return changes;
}

std::vector<PartSampleArea> ResultsDatabase::first_step_part_areas() {
  std::vector<PartSampleArea> areas;
  Database::Statement q(*database_,
                        "SELECT p.name, m.sample, avg(m.area) FROM part_metrics m JOIN parts p ON p.part = m.part "
                        "WHERE m.step = 0 GROUP BY m.part, m.sample");
  while (q.step()) areas.push_back({q.column_text(0), q.column_int(1), number_or_nan(q, 2)});
  return areas;
}

std::vector<ConceptTopUnit> ResultsDatabase::concept_top_units() {
  std::vector<ConceptTopUnit> units;
  Database::Statement q(*database_,
                        "SELECT part_name, measure, unit, rank, z, change FROM concept_top_units "
                        "ORDER BY part_name, measure, rank");
  while (q.step())
    units.push_back({q.column_text(0), q.column_text(1), q.column_int(2), q.column_int(3), number_or_nan(q, 4),
                     number_or_nan(q, 5)});
  return units;
}

std::vector<CounterfactualRunSummary> ResultsDatabase::counterfactual_run_summaries() {
  std::vector<CounterfactualRunSummary> runs;
  Database::Statement q(*database_,
                        "SELECT r.run, r.method, r.origin, coalesce(r.source_name, ''), coalesce(r.target_name, ''), "
                        "coalesce(r.folder, ''), count(c.sample), coalesce(sum(c.success), 0), r.target_class, "
                        "CASE WHEN count(c.judge_class) > 0 THEN sum(c.success = 1 AND c.judge_class = r.target_class) "
                        "ELSE -1 END, coalesce(x.space, ''), x.frechet_distance, x.reference_frechet_distance "
                        "FROM counterfactual_runs r LEFT JOIN counterfactuals c ON c.run = r.run "
                        "LEFT JOIN counterfactual_run_realism x ON x.run = r.run GROUP BY r.run ORDER BY r.run");
  while (q.step()) {
    CounterfactualRunSummary run;
    run.run = q.column_text(0), run.method = q.column_text(1), run.origin = q.column_text(2);
    run.source_name = q.column_text(3), run.target_name = q.column_text(4), run.folder = q.column_text(5);
    run.samples = q.column_int(6), run.successes = q.column_int(7);
    run.target_class = q.column_int(8), run.judge_successes = q.column_int(9);
    run.realism_space = q.column_text(10);
    run.frechet_distance = number_or_nan(q, 11), run.reference_frechet_distance = number_or_nan(q, 12);
    runs.push_back(std::move(run));
  }
  return runs;
}

std::vector<double> ResultsDatabase::successful_counterfactual_realism(const std::string& run) {
  std::vector<double> realism;
  Database::Statement q(*database_,
                        "SELECT realism FROM counterfactuals WHERE run = ? AND success = 1 AND realism IS NOT NULL");
  q.bind(1, run);
  while (q.step()) realism.push_back(number_or_nan(q, 0));
  return realism;
}

std::vector<CounterfactualSampleRow> ResultsDatabase::counterfactual_sample_rows(const std::string& run,
                                                                                 int64_t limit) {
  std::vector<CounterfactualSampleRow> samples;
  Database::Statement q(*database_,
                        "SELECT sample, success, steps, units_90, target_probability, crossing_alpha, "
                        "coalesce(image, ''), coalesce(path_image, ''), realism, margin, "
                        "coalesce(judge_class, -1), judge_target_probability FROM counterfactuals WHERE run = ? "
                        "ORDER BY sample LIMIT ?");
  q.bind(1, run).bind(2, limit);
  while (q.step()) {
    CounterfactualSampleRow s;
    s.sample = q.column_int(0);
    s.success = q.column_int(1) != 0;
    s.steps = q.column_int(2), s.units_90 = q.column_int(3);
    s.target_probability = number_or_nan(q, 4), s.crossing_alpha = number_or_nan(q, 5);
    s.image = q.column_text(6), s.path_image = q.column_text(7);
    s.realism = number_or_nan(q, 8), s.margin = number_or_nan(q, 9);
    s.judge_class = q.column_int(10), s.judge_target_probability = number_or_nan(q, 11);
    samples.push_back(std::move(s));
  }
  return samples;
}

std::vector<CounterfactualPathPoint> ResultsDatabase::counterfactual_path(const std::string& run, int64_t sample) {
  std::vector<CounterfactualPathPoint> path;
  Database::Statement q(*database_,
                        "SELECT alpha, target_probability, top_class FROM counterfactual_paths WHERE run = ? AND "
                        "sample = ? ORDER BY point");
  q.bind(1, run).bind(2, sample);
  while (q.step()) path.push_back({number_or_nan(q, 0), number_or_nan(q, 1), q.is_null(2) ? -1 : q.column_int(2)});
  return path;
}

}  // namespace linkstyle
