// The results database's schema, its version and the migration of a version 2 file.
#include <fmt/format.h>

#include "linkstyle/errors.hpp"
#include "results/results_statements.hpp"

namespace linkstyle {

namespace {

// "lkst": tells a linkstyle results file from any other SQLite file.
constexpr int64_t kApplicationId = 0x6c6b7374;

const char* const kSchema = R"(
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS parts (part INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS samples (sample INTEGER PRIMARY KEY, generator_class INTEGER NOT NULL,
  classifier_class INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS units (unit INTEGER PRIMARY KEY, range_min REAL, range_max REAL, gain REAL,
  correlation REAL, off_unit_correlation_p99 REAL, specificity REAL, logit_change REAL, class_flip_rate REAL,
  expressible INTEGER, label TEXT, label_part TEXT, label_measure TEXT, label_z REAL, significant_concepts INTEGER,
  label_sample_agreement REAL, label_margin REAL, label_confidence REAL);
CREATE TABLE IF NOT EXISTS steps (unit INTEGER NOT NULL, sample INTEGER NOT NULL, step INTEGER NOT NULL,
  value REAL, activation REAL, other_change REAL, class_logit REAL, top_class INTEGER,
  PRIMARY KEY (unit, sample, step)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS part_metrics (unit INTEGER NOT NULL, sample INTEGER NOT NULL, step INTEGER NOT NULL,
  part INTEGER NOT NULL, area REAL, luminance REAL, entropy REAL, centre_x REAL, centre_y REAL, major_axis REAL,
  minor_axis REAL, angle REAL, eccentricity REAL, hue REAL, saturation REAL, texture REAL,
  PRIMARY KEY (unit, sample, step, part)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS motion (unit INTEGER NOT NULL, sample INTEGER NOT NULL, part INTEGER NOT NULL,
  dx REAL, dy REAL, PRIMARY KEY (unit, sample, part)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS part_changes (unit INTEGER NOT NULL, part INTEGER NOT NULL, measure TEXT NOT NULL,
  change REAL, samples INTEGER, PRIMARY KEY (unit, part, measure)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS null_directions (direction INTEGER PRIMARY KEY, bin INTEGER NOT NULL, norm REAL NOT NULL);
CREATE TABLE IF NOT EXISTS null_changes (direction INTEGER NOT NULL, part INTEGER NOT NULL, measure TEXT NOT NULL,
  change REAL, samples INTEGER, PRIMARY KEY (direction, part, measure)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS selectivity (unit INTEGER NOT NULL, part INTEGER NOT NULL, measure TEXT NOT NULL,
  change REAL, z REAL, p REAL, p_empirical REAL, q REAL, significant INTEGER, PRIMARY KEY (unit, part, measure))
  WITHOUT ROWID;
CREATE VIEW IF NOT EXISTS concept_top_units AS
  SELECT * FROM (SELECT parts.name AS part_name, selectivity.measure, selectivity.unit, selectivity.z,
    selectivity.change, ROW_NUMBER() OVER (PARTITION BY selectivity.part, selectivity.measure
                                          ORDER BY abs(selectivity.z) DESC) AS rank
    FROM selectivity JOIN parts ON parts.part = selectivity.part WHERE selectivity.significant = 1)
  WHERE rank <= 10;
)";

}  // namespace

// The probe table is made by `linkstyle probe`, after the sweep.
const char* const kProbeSchema =
    "CREATE TABLE IF NOT EXISTS probe (unit INTEGER NOT NULL, factor TEXT NOT NULL, correlation REAL, partial REAL, "
    "PRIMARY KEY (unit, factor)) WITHOUT ROWID;";

// The counterfactual tables are made by `linkstyle counterfactual`, before or after a sweep.
const char* const kCounterfactualSchema = R"(
CREATE TABLE IF NOT EXISTS counterfactual_runs (run TEXT PRIMARY KEY, method TEXT NOT NULL, origin TEXT NOT NULL,
  source_class INTEGER, source_name TEXT, target_class INTEGER NOT NULL, target_name TEXT, folder TEXT,
  identity TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counterfactuals (run TEXT NOT NULL, sample INTEGER NOT NULL, origin TEXT,
  latent_id INTEGER, source_class INTEGER, success INTEGER, steps INTEGER, shift_l1 REAL, shift_l2 REAL,
  units_90 INTEGER, pixel_distance REAL, feature_distance REAL, relative_feature_distance REAL,
  source_probability REAL, target_probability REAL, counterfactual_class INTEGER, crossing_alpha REAL, image TEXT,
  path_image TEXT, tensors TEXT, realism REAL, margin REAL, judge_class INTEGER, judge_target_probability REAL,
  judge_realism REAL, exact_shift_cosine REAL, PRIMARY KEY (run, sample)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counterfactual_run_realism (run TEXT PRIMARY KEY, space TEXT, samples INTEGER,
  frechet_distance REAL, reference_frechet_distance REAL);
CREATE TABLE IF NOT EXISTS counterfactual_paths (run TEXT NOT NULL, sample INTEGER NOT NULL, point INTEGER NOT NULL,
  alpha REAL, target_probability REAL, top_class INTEGER, PRIMARY KEY (run, sample, point)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counterfactual_units (run TEXT NOT NULL, sample INTEGER NOT NULL, rank INTEGER NOT NULL,
  unit INTEGER, shift REAL, PRIMARY KEY (run, sample, rank)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counterfactual_parts (run TEXT NOT NULL, sample INTEGER NOT NULL, image TEXT NOT NULL,
  part INTEGER NOT NULL, area REAL, luminance REAL, centre_x REAL, centre_y REAL, major_axis REAL, minor_axis REAL,
  hue REAL, PRIMARY KEY (run, sample, image, part)) WITHOUT ROWID;
CREATE VIEW IF NOT EXISTS counterfactual_relevant_units AS
  SELECT cu.run, cu.unit, count(*) AS samples,
    CAST(count(*) AS REAL) / (SELECT count(*) FROM counterfactuals c WHERE c.run = cu.run) AS share,
    units.label AS label,
    (SELECT group_concat(parts.name || ' ' || s.measure, '; ') FROM selectivity s JOIN parts ON parts.part = s.part
      WHERE s.unit = cu.unit AND s.significant = 1) AS concepts
  FROM counterfactual_units cu LEFT JOIN units ON units.unit = cu.unit GROUP BY cu.run, cu.unit;
CREATE VIEW IF NOT EXISTS counterfactual_summary AS
  SELECT r.run, r.method, r.origin, r.source_name, r.target_name, count(c.sample) AS samples,
    sum(c.success) AS successes, avg(c.success) AS success_rate, avg(c.shift_l1) AS mean_shift_l1,
    avg(c.units_90) AS mean_units_90, avg(c.pixel_distance) AS mean_pixel_distance,
    avg(c.relative_feature_distance) AS mean_relative_feature_distance,
    avg(c.realism) AS mean_realism, avg(c.judge_class = r.target_class) AS judge_success_rate,
    (SELECT frechet_distance FROM counterfactual_run_realism x WHERE x.run = r.run) AS frechet_distance,
    (SELECT reference_frechet_distance FROM counterfactual_run_realism x WHERE x.run = r.run)
      AS reference_frechet_distance
  FROM counterfactual_runs r LEFT JOIN counterfactuals c ON c.run = r.run GROUP BY r.run;
)";

void check_or_create_schema(Database& db, ResultsDatabase::Mode mode) {
  const int64_t application = db.query_int("PRAGMA application_id").value_or(0);
  const int64_t version = db.query_int("PRAGMA user_version").value_or(0);
  const int64_t objects = db.query_int("SELECT count(*) FROM sqlite_master").value_or(0);
  if (application == kApplicationId && version == 2) {
    // Version 3 adds each counterfactual's realism, margin, judge and exact figures, and a run's
    // realism: older rows keep NULL there.
    db.in_transaction([&] {
      if (db.has_table("counterfactuals"))
        for (const char* column : {"realism REAL", "margin REAL", "judge_class INTEGER", "judge_target_probability REAL",
                                   "judge_realism REAL", "exact_shift_cosine REAL"})
          db.execute(fmt::format("ALTER TABLE counterfactuals ADD COLUMN {};", column));
      db.execute("DROP VIEW IF EXISTS counterfactual_summary;");
      if (db.has_table("counterfactuals")) db.execute(kCounterfactualSchema);
      db.execute(fmt::format("PRAGMA user_version = {};", ResultsDatabase::kSchemaVersion));
    });
    return;
  }
  if (application == kApplicationId) {
    if (version != ResultsDatabase::kSchemaVersion)
      throw Error(db.file(), fmt::format("has results schema version {}, this linkstyle reads version {}: remove it "
                                         "and run `linkstyle sweep` again",
                                         version, ResultsDatabase::kSchemaVersion));
    return;
  }
  if (objects > 0) {
    const bool older = application == 0 && db.has_table("units") && db.has_table("meta");
    throw Error(db.file(), older ? "was written by an older linkstyle (no schema version): remove it and run "
                                   "`linkstyle sweep` again"
                                 : "is not a linkstyle results database");
  }
  if (mode == ResultsDatabase::Mode::open_existing) throw Error(db.file(), "is an empty database, not sweep results");
  db.in_transaction([&] {
    db.execute(fmt::format("PRAGMA application_id = {}; PRAGMA user_version = {};", kApplicationId,
                           ResultsDatabase::kSchemaVersion));
    db.execute(kSchema);
  });
}

}  // namespace linkstyle
