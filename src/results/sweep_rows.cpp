// The sweep's rows: chunks of swept units and of null directions, and their readers.
#include <cmath>
#include <map>

#include <fmt/format.h>
#include <torch/torch.h>

#include "linkstyle/concept_changes.hpp"
#include "linkstyle/errors.hpp"
#include "results/results_statements.hpp"

namespace linkstyle {

namespace fs = std::filesystem;

namespace {

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

int64_t measure_column(const std::string& name, const fs::path& file) {
  const auto& names = concept_measures();
  for (size_t k = 0; k < names.size(); ++k)
    if (names[k] == name) return int64_t(k);
  throw Error(file, "has an unknown measure '" + name + "'");
}

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

std::set<int64_t> ResultsDatabase::swept_units() { return first_column_ids(*database_, "SELECT unit FROM units"); }

std::set<int64_t> ResultsDatabase::swept_null_directions() {
  return first_column_ids(*database_, "SELECT direction FROM null_directions");
}

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

}  // namespace linkstyle
