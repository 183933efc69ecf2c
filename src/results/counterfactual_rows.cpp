// The counterfactual runs' rows: runs, counterfactuals with their paths, top units and parts,
// a run's realism, and their readers.
#include <fmt/format.h>

#include "results/results_statements.hpp"

namespace linkstyle {

std::optional<std::string> ResultsDatabase::counterfactual_run_identity(const std::string& run) {
  database_->execute(kCounterfactualSchema);
  Database::Statement q(*database_, "SELECT identity FROM counterfactual_runs WHERE run = ?");
  q.bind(1, run);
  if (!q.step()) return std::nullopt;
  return q.column_text(0);
}

namespace {

void delete_counterfactual_rows(Database& db, const std::string& run) {
  for (const char* table :
       {"counterfactual_runs", "counterfactuals", "counterfactual_paths", "counterfactual_units", "counterfactual_parts",
        "counterfactual_run_realism"}) {
    Database::Statement remove(db, fmt::format("DELETE FROM {} WHERE run = ?", table));
    remove.bind(1, run);
    remove.run();
  }
}

}  // namespace

void ResultsDatabase::remove_counterfactual_run(const std::string& run) {
  Database& db = *database_;
  db.in_transaction([&] {
    db.execute(kCounterfactualSchema);
    delete_counterfactual_rows(db, run);
  });
}

void ResultsDatabase::start_counterfactual_run(const CounterfactualRunRow& row) {
  Database& db = *database_;
  db.in_transaction([&] {
    db.execute(kCounterfactualSchema);
    delete_counterfactual_rows(db, row.run);
    Database::Statement insert(db,
                               "INSERT INTO counterfactual_runs (run, method, origin, source_class, source_name, "
                               "target_class, target_name, folder, identity) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
    insert.bind(1, row.run).bind(2, row.method).bind(3, row.origin);
    if (row.source_class < 0)
      insert.bind_null(4);
    else
      insert.bind(4, row.source_class);
    insert.bind(5, row.source_name).bind(6, row.target_class).bind(7, row.target_name).bind(8, row.folder);
    insert.bind(9, row.identity);
    insert.run();
  });
}

std::set<int64_t> ResultsDatabase::counterfactual_samples(const std::string& run) {
  database_->execute(kCounterfactualSchema);
  std::set<int64_t> samples;
  Database::Statement q(*database_, "SELECT sample FROM counterfactuals WHERE run = ?");
  q.bind(1, run);
  while (q.step()) samples.insert(q.column_int(0));
  return samples;
}

namespace {

void insert_counterfactual_parts(Database::Statement& insert, const std::string& run, int64_t sample,
                                 const char* image, const std::vector<PartMeasures>& parts) {
  for (const auto& m : parts) {
    if (m.area <= 0) continue;
    insert.bind(1, run).bind(2, sample).bind(3, std::string(image)).bind(4, int64_t(m.part)).bind(5, m.area);
    insert.bind_finite(6, m.luminance).bind_finite(7, m.centre_x).bind_finite(8, m.centre_y);
    insert.bind_finite(9, m.major_axis).bind_finite(10, m.minor_axis).bind_finite(11, m.hue_degrees);
    insert.run();
  }
}

}  // namespace

void ResultsDatabase::write_counterfactuals(const std::string& run, const std::vector<double>& alphas,
                                            const std::vector<CounterfactualRecord>& records) {
  Database& db = *database_;
  db.in_transaction([&] {
    Database::Statement row(db,
                            "INSERT INTO counterfactuals (run, sample, origin, latent_id, source_class, success, "
                            "steps, shift_l1, shift_l2, units_90, pixel_distance, feature_distance, "
                            "relative_feature_distance, source_probability, target_probability, "
                            "counterfactual_class, crossing_alpha, image, path_image, tensors, realism, margin, "
                            "judge_class, judge_target_probability, judge_realism, exact_shift_cosine) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    Database::Statement path(db,
                             "INSERT INTO counterfactual_paths (run, sample, point, alpha, target_probability, "
                             "top_class) VALUES (?, ?, ?, ?, ?, ?)");
    Database::Statement unit(db, "INSERT INTO counterfactual_units (run, sample, rank, unit, shift) VALUES (?, ?, ?, ?, ?)");
    Database::Statement part(db,
                             "INSERT INTO counterfactual_parts (run, sample, image, part, area, luminance, centre_x, "
                             "centre_y, major_axis, minor_axis, hue) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    for (const auto& r : records) {
      row.bind(1, run).bind(2, r.sample).bind(3, r.origin);
      if (r.latent_id < 0)
        row.bind_null(4);
      else
        row.bind(4, r.latent_id);
      row.bind(5, r.source_class).bind(6, int64_t(r.success)).bind(7, r.steps).bind_finite(8, r.shift_l1);
      row.bind_finite(9, r.shift_l2).bind(10, r.units_90).bind_finite(11, r.pixel_distance);
      row.bind_finite(12, r.feature_distance).bind_finite(13, r.relative_feature_distance);
      row.bind_finite(14, r.source_probability).bind_finite(15, r.target_probability);
      row.bind(16, r.counterfactual_class).bind_finite(17, r.crossing_alpha).bind(18, r.image);
      row.bind(19, r.path_image).bind(20, r.tensors).bind_finite(21, r.realism).bind_finite(22, r.margin);
      if (r.judge_class < 0)
        row.bind_null(23);
      else
        row.bind(23, r.judge_class);
      row.bind_finite(24, r.judge_target_probability).bind_finite(25, r.judge_realism);
      row.bind_finite(26, r.exact_shift_cosine);
      row.run();
      for (size_t k = 0; k < alphas.size(); ++k) {
        path.bind(1, run).bind(2, r.sample).bind(3, int64_t(k)).bind(4, alphas[k]);
        path.bind_finite(5, r.path_probability[k]).bind(6, r.path_class[k]);
        path.run();
      }
      for (size_t k = 0; k < r.top_units.size(); ++k) {
        unit.bind(1, run).bind(2, r.sample).bind(3, int64_t(k)).bind(4, r.top_units[k].first);
        unit.bind_finite(5, r.top_units[k].second);
        unit.run();
      }
      insert_counterfactual_parts(part, run, r.sample, "original", r.original_parts);
      insert_counterfactual_parts(part, run, r.sample, "counterfactual", r.counterfactual_parts);
      insert_counterfactual_parts(part, run, r.sample, "round_trip", r.round_trip_parts);
      insert_counterfactual_parts(part, run, r.sample, "exact", r.exact_parts);
    }
  });
}

std::vector<std::pair<bool, int64_t>> ResultsDatabase::counterfactual_outcomes(const std::string& run) {
  std::vector<std::pair<bool, int64_t>> outcomes;
  Database::Statement q(*database_, "SELECT success, steps FROM counterfactuals WHERE run = ? ORDER BY sample");
  q.bind(1, run);
  while (q.step()) outcomes.emplace_back(q.column_int(0) != 0, q.column_int(1));
  return outcomes;
}

void ResultsDatabase::write_counterfactual_run_realism(const std::string& run, const CounterfactualRunRealism& realism) {
  Database& db = *database_;
  db.in_transaction([&] {
    Database::Statement row(db,
                            "INSERT OR REPLACE INTO counterfactual_run_realism (run, space, samples, frechet_distance, "
                            "reference_frechet_distance) VALUES (?, ?, ?, ?, ?)");
    row.bind(1, run).bind(2, realism.space).bind(3, realism.samples).bind_finite(4, realism.frechet_distance);
    row.bind_finite(5, realism.reference_frechet_distance);
    row.run();
  });
}

std::vector<RelevantUnit> ResultsDatabase::counterfactual_relevant_units(const std::string& run, int64_t limit) {
  std::vector<RelevantUnit> units;
  Database::Statement q(*database_,
                        "SELECT unit, samples, share, label, concepts FROM counterfactual_relevant_units "
                        "WHERE run = ? ORDER BY samples DESC, unit LIMIT ?");
  q.bind(1, run).bind(2, limit);
  while (q.step())
    units.push_back({q.column_int(0), q.column_int(1), q.column_double(2), q.is_null(3) ? "" : q.column_text(3),
                     q.is_null(4) ? "" : q.column_text(4)});
  return units;
}

bool ResultsDatabase::has_counterfactuals() {
  return has_table("counterfactuals") && database_->query_int("SELECT count(*) FROM counterfactuals").value_or(0) > 0;
}

}  // namespace linkstyle
