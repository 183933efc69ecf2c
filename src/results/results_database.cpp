#include "linkstyle/results_database.hpp"

#include <cmath>
#include <map>

#include <fmt/format.h>
#include <torch/torch.h>

#include "linkstyle/atomic_file.hpp"
#include "linkstyle/concept_changes.hpp"
#include "linkstyle/errors.hpp"
#include "linkstyle/sqlite_database.hpp"

namespace linkstyle {

namespace fs = std::filesystem;

namespace {

// "lkst": tells a linkstyle results file from any other SQLite file.
constexpr int64_t kApplicationId = 0x6c6b7374;

const char* kSchema = R"(
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

// The probe table is made by `linkstyle probe`, after the sweep.
const char* kProbeSchema =
    "CREATE TABLE IF NOT EXISTS probe (unit INTEGER NOT NULL, factor TEXT NOT NULL, correlation REAL, partial REAL, "
    "PRIMARY KEY (unit, factor)) WITHOUT ROWID;";

// The counterfactual tables are made by `linkstyle counterfactual`, before or after a sweep.
const char* kCounterfactualSchema = R"(
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

// A new file gets the schema; an existing one must be linkstyle's, of this version (version 2 is
// brought up to it).
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

void insert_changes(Database& db, const char* table, const char* key, int64_t id, const torch::Tensor& mean,
                    const torch::Tensor& count) {
  Database::Statement insert(
      db, fmt::format("INSERT INTO {} ({}, part, measure, change, samples) VALUES (?, ?, ?, ?, ?)", table, key));
  const auto m = mean.accessor<double, 2>();
  const auto c = count.accessor<int64_t, 2>();
  for (int64_t p = 0; p < mean.size(0); ++p)
    for (int64_t k = 0; k < kConceptMeasures; ++k) {
      if (c[p][k] == 0) continue;
      insert.bind(1, id).bind(2, p).bind(3, concept_measures()[k]).bind_finite(4, m[p][k]).bind(5, c[p][k]);
      insert.run();
    }
}

std::set<int64_t> first_column_ids(Database& db, const std::string& sql) {
  std::set<int64_t> ids;
  Database::Statement query(db, sql);
  while (query.step()) ids.insert(query.column_int(0));
  return ids;
}

int64_t measure_column(const std::string& name, const fs::path& file) {
  const auto& names = concept_measures();
  for (size_t k = 0; k < names.size(); ++k)
    if (names[k] == name) return int64_t(k);
  throw Error(file, "has an unknown measure '" + name + "'");
}

}  // namespace

ResultsDatabase::ResultsDatabase(const fs::path& file, Mode mode)
    : database_(std::make_unique<Database>(
          file, mode == Mode::open_existing ? Database::Mode::open_existing : Database::Mode::create_or_open)) {
  check_or_create_schema(*database_, mode);
}

ResultsDatabase::~ResultsDatabase() = default;
ResultsDatabase::ResultsDatabase(ResultsDatabase&&) noexcept = default;
ResultsDatabase& ResultsDatabase::operator=(ResultsDatabase&&) noexcept = default;

const fs::path& ResultsDatabase::file() const { return database_->file(); }

std::optional<std::string> ResultsDatabase::run_identity() {
  return database_->query_text("SELECT value FROM meta WHERE key = 'run'");
}

void ResultsDatabase::start_run(const std::string& identity, const std::vector<std::string>& part_names,
                                const torch::Tensor& generator_classes, const torch::Tensor& classifier_classes) {
  Database& db = *database_;
  db.in_transaction([&] {
    Database::Statement meta(db, "INSERT INTO meta (key, value) VALUES (?, ?)");
    meta.bind(1, std::string("run")).bind(2, identity);
    meta.run();
    Database::Statement part(db, "INSERT INTO parts (part, name) VALUES (?, ?)");
    for (size_t p = 0; p < part_names.size(); ++p) {
      part.bind(1, int64_t(p)).bind(2, part_names[p]);
      part.run();
    }
    Database::Statement sample(db, "INSERT INTO samples (sample, generator_class, classifier_class) VALUES (?, ?, ?)");
    const auto generator_class = generator_classes.to(torch::kLong).contiguous();
    const auto classifier_class = classifier_classes.to(torch::kLong).contiguous();
    for (int64_t i = 0; i < generator_class.size(0); ++i) {
      sample.bind(1, i).bind(2, generator_class[i].item<int64_t>()).bind(3, classifier_class[i].item<int64_t>());
      sample.run();
    }
  });
}

std::set<int64_t> ResultsDatabase::swept_units() { return first_column_ids(*database_, "SELECT unit FROM units"); }

std::set<int64_t> ResultsDatabase::swept_null_directions() {
  return first_column_ids(*database_, "SELECT direction FROM null_directions");
}

namespace {

void insert_step_rows(Database& db, const UnitChunkRows& rows, int64_t u) {
  Database::Statement step_row(db,
                               "INSERT INTO steps (unit, sample, step, value, activation, other_change, "
                               "class_logit, top_class) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
  Database::Statement part_row(db,
                               "INSERT INTO part_metrics (unit, sample, step, part, area, luminance, entropy, "
                               "centre_x, centre_y, major_axis, minor_axis, angle, eccentricity, hue, saturation, texture) "
                               "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  Database::Statement motion_row(db, "INSERT INTO motion (unit, sample, part, dx, dy) VALUES (?, ?, ?, ?, ?)");
  const int64_t S = rows.samples, T = rows.steps, unit = rows.units[size_t(u)].unit;
  const auto value = rows.values.accessor<double, 2>();
  const auto activation = rows.activation.accessor<double, 3>();
  const auto other_change = rows.other_change.accessor<double, 3>();
  const auto class_logit = rows.class_logit.accessor<double, 3>();
  const auto top_class = rows.top_class.accessor<int64_t, 3>();
  for (int64_t s = 0; s < S; ++s) {
    for (int64_t t = 0; t < T; ++t) {
      step_row.bind(1, unit).bind(2, s).bind(3, t).bind(4, value[u][t]).bind_finite(5, activation[u][s][t]);
      step_row.bind_finite(6, other_change[u][s][t]).bind_finite(7, class_logit[u][s][t]).bind(8, top_class[u][s][t]);
      step_row.run();
      for (const auto& m : (*rows.parts)[size_t((u * S + s) * T + t)]) {
        part_row.bind(1, unit).bind(2, s).bind(3, t).bind(4, m.part).bind(5, m.area);
        part_row.bind_finite(6, m.luminance).bind_finite(7, m.entropy).bind_finite(8, m.centre_x);
        part_row.bind_finite(9, m.centre_y).bind_finite(10, m.major_axis).bind_finite(11, m.minor_axis);
        part_row.bind_finite(12, m.angle_degrees).bind_finite(13, m.eccentricity).bind_finite(14, m.hue_degrees);
        part_row.bind_finite(15, m.saturation).bind_finite(16, m.texture);
        part_row.run();
      }
    }
    for (const auto& m : rows.motion[size_t(u)][size_t(s)]) {
      if (m.area <= 0) continue;
      motion_row.bind(1, unit).bind(2, s).bind(3, m.part).bind_finite(4, m.dx).bind_finite(5, m.dy);
      motion_row.run();
    }
  }
}

}  // namespace

void ResultsDatabase::write_unit_chunk(const UnitChunkRows& rows) {
  Database& db = *database_;
  db.in_transaction([&] {
    Database::Statement unit_row(db,
                                 "INSERT INTO units (unit, range_min, range_max, gain, correlation, "
                                 "off_unit_correlation_p99, specificity, logit_change, class_flip_rate) "
                                 "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
    for (size_t u = 0; u < rows.units.size(); ++u) {
      insert_step_rows(db, rows, int64_t(u));
      const auto& r = rows.units[u];
      unit_row.bind(1, r.unit).bind(2, r.range_min).bind(3, r.range_max).bind_finite(4, r.gain);
      unit_row.bind_finite(5, r.correlation).bind_finite(6, r.off_unit_correlation_p99);
      unit_row.bind_finite(7, r.specificity).bind_finite(8, r.logit_change).bind(9, r.class_flip_rate);
      unit_row.run();
      insert_changes(db, "part_changes", "unit", r.unit, rows.change_mean[int64_t(u)], rows.change_count[int64_t(u)]);
    }
  });
}

void ResultsDatabase::write_null_chunk(const NullChunkRows& rows) {
  Database& db = *database_;
  db.in_transaction([&] {
    Database::Statement row(db, "INSERT INTO null_directions (direction, bin, norm) VALUES (?, ?, ?)");
    for (size_t i = 0; i < rows.directions.size(); ++i) {
      row.bind(1, rows.directions[i]).bind(2, rows.bins[i]).bind(3, rows.norms[i]);
      row.run();
      insert_changes(db, "null_changes", "direction", rows.directions[i], rows.change_mean[int64_t(i)],
                     rows.change_count[int64_t(i)]);
    }
  });
}

torch::Tensor ResultsDatabase::unit_concept_changes(const std::vector<int64_t>& units, int64_t num_parts) {
  const int64_t M = kConceptMeasures;
  std::map<int64_t, int64_t> unit_row;
  for (size_t i = 0; i < units.size(); ++i) unit_row[units[i]] = int64_t(i);
  auto profile = torch::full({int64_t(units.size()), num_parts * M}, NAN, torch::kDouble);
  auto a = profile.accessor<double, 2>();
  Database::Statement q(*database_, "SELECT unit, part, measure, change FROM part_changes");
  while (q.step())
    if (!q.is_null(3) && unit_row.count(q.column_int(0)))
      a[unit_row[q.column_int(0)]][q.column_int(1) * M + measure_column(q.column_text(2), file())] = q.column_double(3);
  return profile;
}

torch::Tensor ResultsDatabase::null_concept_changes(int64_t bins, int64_t per_bin, int64_t num_parts) {
  const int64_t M = kConceptMeasures;
  auto values = torch::full({bins, per_bin, num_parts * M}, NAN, torch::kDouble);
  auto a = values.accessor<double, 3>();
  Database::Statement q(*database_, "SELECT direction, part, measure, change FROM null_changes");
  while (q.step()) {
    const int64_t d = q.column_int(0);
    if (!q.is_null(3) && d / per_bin < bins)
      a[d / per_bin][d % per_bin][q.column_int(1) * M + measure_column(q.column_text(2), file())] = q.column_double(3);
  }
  return values;
}

std::map<int64_t, UnitCycleFigures> ResultsDatabase::unit_cycles() {
  std::map<int64_t, UnitCycleFigures> cycles;
  Database::Statement read(*database_, "SELECT unit, gain, correlation, specificity FROM units");
  while (read.step()) {
    UnitCycleFigures& figures = cycles[read.column_int(0)];
    figures.defined = !read.is_null(1) && !read.is_null(2) && !read.is_null(3);
    if (figures.defined) {
      figures.gain = read.column_double(1);
      figures.correlation = read.column_double(2);
      figures.specificity = read.column_double(3);
    }
  }
  return cycles;
}

void ResultsDatabase::write_verdicts(const std::vector<UnitVerdict>& verdicts) {
  Database& db = *database_;
  db.in_transaction([&] {
    db.execute("DELETE FROM selectivity");
    Database::Statement insert(db,
                               "INSERT INTO selectivity (unit, part, measure, change, z, p, p_empirical, q, significant) "
                               "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
    Database::Statement update(db,
                               "UPDATE units SET expressible = ?, label = ?, label_part = ?, label_measure = ?, "
                               "label_z = ?, significant_concepts = ?, label_sample_agreement = ?, "
                               "label_margin = ?, label_confidence = ? WHERE unit = ?");
    for (const auto& v : verdicts) {
      for (const auto& c : v.concepts) {
        insert.bind(1, v.unit).bind(2, c.part).bind(3, c.measure).bind_finite(4, c.change).bind(5, c.z);
        insert.bind(6, c.p).bind(7, c.p_empirical).bind(8, c.q).bind(9, int64_t(c.significant));
        insert.run();
      }
      update.bind(1, int64_t(v.expressible)).bind(2, v.label);
      if (v.label_part.empty())
        update.bind_null(3).bind_null(4).bind_null(5).bind_null(7).bind_null(8).bind_null(9);
      else
        update.bind(3, v.label_part).bind(4, v.label_measure).bind(5, v.label_z).bind_finite(7, v.label_sample_agreement)
            .bind_finite(8, v.label_margin).bind_finite(9, v.label_confidence);
      update.bind(6, v.significant_concepts).bind(10, v.unit);
      update.run();
    }
  });
}

void ResultsDatabase::mark_complete(const std::string& part_source) {
  Database::Statement meta(*database_,
                           "INSERT OR REPLACE INTO meta (key, value) VALUES ('complete', '1'), "
                           "('part_source', ?)");
  meta.bind(1, part_source);
  meta.run();
  database_->checkpoint();
}

bool ResultsDatabase::is_complete() {
  return database_->query_text("SELECT value FROM meta WHERE key = 'complete'").value_or("0") == "1";
}

std::vector<std::string> ResultsDatabase::part_names() {
  std::vector<std::string> names;
  Database::Statement q(*database_, "SELECT name FROM parts ORDER BY part");
  while (q.step()) names.push_back(q.column_text(0));
  return names;
}

std::vector<int64_t> ResultsDatabase::top_units(int64_t limit) {
  std::vector<int64_t> units;
  Database::Statement q(*database_, "SELECT unit FROM units ORDER BY expressible DESC, correlation DESC, unit LIMIT ?");
  q.bind(1, limit);
  while (q.step()) units.push_back(q.column_int(0));
  return units;
}

std::vector<LabelledUnit> ResultsDatabase::expressible_units() {
  std::vector<LabelledUnit> units;
  Database::Statement q(*database_,
                        "SELECT unit, label_part, label_measure FROM units WHERE expressible = 1 "
                        "ORDER BY correlation DESC, unit");
  while (q.step())
    units.push_back({q.column_int(0), q.is_null(1) ? std::string() : q.column_text(1),
                     q.is_null(2) ? std::string() : q.column_text(2)});
  return units;
}

std::vector<UnitLabel> ResultsDatabase::unit_labels() {
  std::vector<UnitLabel> units;
  Database::Statement q(*database_, "SELECT unit, expressible, label FROM units ORDER BY unit");
  while (q.step()) units.push_back({q.column_int(0), q.column_int(1) != 0, q.column_as_text(2)});
  return units;
}

std::map<int64_t, std::vector<ConceptScore>> ResultsDatabase::concept_scores() {
  std::map<int64_t, std::vector<ConceptScore>> scores;
  Database::Statement q(*database_,
                        "SELECT unit, part, measure, change, z, p, p_empirical, q, significant FROM selectivity "
                        "ORDER BY unit, part, measure");
  const auto value = [&](int column) { return q.is_null(column) ? double(NAN) : q.column_double(column); };
  while (q.step())
    scores[q.column_int(0)].push_back({q.column_int(1), q.column_as_text(2), value(3), value(4), value(5), value(6),
                                       value(7), q.column_int(8) != 0});
  return scores;
}

std::map<int64_t, int64_t> ResultsDatabase::sample_generator_classes() {
  std::map<int64_t, int64_t> classes;
  Database::Statement q(*database_, "SELECT sample, generator_class FROM samples");
  while (q.step()) classes[q.column_int(0)] = q.column_int(1);
  return classes;
}

torch::Tensor ResultsDatabase::unit_ranges(int64_t units) {
  auto range = torch::full({units}, NAN, torch::kDouble);
  Database::Statement q(*database_, "SELECT unit, range_max - range_min FROM units");
  while (q.step())
    if (q.column_int(0) >= 0 && q.column_int(0) < units && !q.is_null(1)) range[q.column_int(0)] = q.column_double(1);
  return range;
}

int64_t ResultsDatabase::last_step() { return database_->query_int("SELECT max(step) FROM part_metrics").value_or(0); }

void ResultsDatabase::for_each_sample_changes(
    int64_t num_parts, int64_t side,
    const std::function<void(int64_t unit, int64_t sample, const torch::Tensor& changes)>& visit) {
  std::map<std::pair<int64_t, int64_t>, std::vector<PartMotion>> motion;
  {
    Database::Statement q(*database_, "SELECT unit, sample, part, dx, dy FROM motion");
    while (q.step())
      motion[{q.column_int(0), q.column_int(1)}].push_back(
          {int(q.column_int(2)), q.is_null(3) ? double(NAN) : q.column_double(3),
           q.is_null(4) ? double(NAN) : q.column_double(4), 1.0});  // stored rows had pixels
  }
  const int64_t steps = last_step() + 1;
  std::vector<PartMeasures> first, last;
  auto mean_area = torch::zeros({num_parts}, torch::kDouble);
  int64_t unit = -1, sample = -1;
  const auto flush = [&] {
    if (unit < 0) return;
    const auto found = motion.find({unit, sample});
    visit(unit, sample,
          endpoint_changes(first, last, found == motion.end() ? std::vector<PartMotion>{} : found->second, mean_area,
                           num_parts, side, minimum_part_area(side)));
  };
  for_each_part_metrics([&](int64_t row_unit, int64_t row_sample, int64_t step, const PartMeasures& m) {
    if (row_unit != unit || row_sample != sample) {
      flush();
      unit = row_unit, sample = row_sample;
      first.clear(), last.clear();
      mean_area.zero_();
    }
    if (m.part < 0 || m.part >= num_parts)
      throw Error(file(), fmt::format("part {} is outside the study's {} parts", m.part, num_parts));
    mean_area[m.part] += m.area / double(steps);
    if (step == 0) first.push_back(m);
    if (step == steps - 1) last.push_back(m);
  });
  flush();
}

void ResultsDatabase::for_each_part_metrics(
    const std::function<void(int64_t unit, int64_t sample, int64_t step, const PartMeasures& measures)>& visit) {
  Database::Statement q(*database_,
                        "SELECT unit, sample, step, part, area, luminance, entropy, centre_x, centre_y, major_axis, "
                        "minor_axis, angle, eccentricity, hue, saturation, texture FROM part_metrics "
                        "ORDER BY unit, sample, step, part");
  const auto value = [&](int column) { return q.is_null(column) ? double(NAN) : q.column_double(column); };
  while (q.step()) {
    PartMeasures m;
    m.part = int(q.column_int(3));
    m.area = value(4), m.luminance = value(5), m.entropy = value(6), m.centre_x = value(7), m.centre_y = value(8);
    m.major_axis = value(9), m.minor_axis = value(10), m.angle_degrees = value(11), m.eccentricity = value(12);
    m.hue_degrees = value(13), m.saturation = value(14), m.texture = value(15);
    visit(q.column_int(0), q.column_int(1), q.column_int(2), m);
  }
}

void ResultsDatabase::write_probe(const std::vector<std::string>& factor_names, const torch::Tensor& correlation,
                                  const torch::Tensor& partial) {
  Database& db = *database_;
  db.in_transaction([&] {
    db.execute(std::string("DROP TABLE IF EXISTS probe; ") + kProbeSchema);
    Database::Statement insert(db, "INSERT INTO probe (unit, factor, correlation, partial) VALUES (?, ?, ?, ?)");
    const auto c = correlation.accessor<double, 2>();
    const auto b = partial.accessor<double, 2>();
    for (int64_t d = 0; d < correlation.size(0); ++d)
      for (size_t f = 0; f < factor_names.size(); ++f) {
        insert.bind(1, d).bind(2, factor_names[f]).bind_finite(3, c[d][int64_t(f)]);
        if (int64_t(f) < partial.size(1))
          insert.bind_finite(4, b[d][int64_t(f)]);
        else
          insert.bind_null(4);
        insert.run();
      }
  });
  db.checkpoint();
}

bool ResultsDatabase::has_table(const std::string& name) { return database_->has_table(name); }

int64_t ResultsDatabase::export_table(const std::string& table, const fs::path& output) {
  return export_csv(*database_, table, output);
}

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

nlohmann::json export_results_tables(const fs::path& database, const std::vector<std::string>& tables,
                                     const fs::path& folder) {
  ResultsDatabase results(database, ResultsDatabase::Mode::open_existing);
  for (const auto& table : tables) {
    if (table.empty() || table.find_first_not_of("abcdefghijklmnopqrstuvwxyz_") != std::string::npos)
      throw Error("export", "'" + table + "' is not a table name");
    if (!results.has_table(table)) throw Error(results.file(), "has no table '" + table + "'");
  }
  ensure_writable_directory(folder);
  nlohmann::json written = nlohmann::json::object();
  for (const auto& table : tables) {
    const fs::path file = folder / (table + ".csv");
    written[table] = {{"file", file.string()}, {"rows", results.export_table(table, file)}};
  }
  return written;
}

}  // namespace linkstyle
