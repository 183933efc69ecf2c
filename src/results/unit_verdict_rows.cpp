// The units' selectivity verdicts and the probe's rows, and their readers.
#include <cmath>

#include <torch/torch.h>

#include "results/results_statements.hpp"

namespace linkstyle {

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
  Database::Statement q(*database_, "SELECT unit, expressible, label, label_confidence FROM units ORDER BY unit");
  while (q.step()) units.push_back({q.column_int(0), q.column_int(1) != 0, q.column_as_text(2), number_or_nan(q, 3)});
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

}  // namespace linkstyle
