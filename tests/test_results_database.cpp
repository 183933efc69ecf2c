// Tests for the results database (results_database.hpp) and its SQLite wrapper
// (sqlite_database.hpp), on small synthetic rows: the schema and its version, the typed writers
// and readers, whole-chunk transactions and the CSV export.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>
#include <tuple>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "linkstyle/concept_changes.hpp"
#include "linkstyle/errors.hpp"
#include "linkstyle/results_database.hpp"
#include "linkstyle/sqlite_database.hpp"
#include "test_support.hpp"

namespace linkstyle {
namespace {

namespace fs = std::filesystem;
using testing::ScratchDir;

constexpr int64_t kSamples = 2, kSteps = 3, kParts = 2;

// A chunk of `units` with values that encode (unit, sample, step, part), so that a reader that
// mixes them up is caught.
struct SyntheticChunk {
  std::vector<std::vector<PartMeasures>> parts;
  UnitChunkRows rows;
};

SyntheticChunk synthetic_chunk(const std::vector<int64_t>& units) {
  SyntheticChunk chunk;
  const int64_t U = int64_t(units.size()), S = kSamples, T = kSteps, M = kConceptMeasures;
  for (int64_t u = 0; u < U; ++u) {
    const double x = double(units[size_t(u)]);
    chunk.rows.units.push_back({units[size_t(u)], -x, x, 0.1 * x, 0.5, 0.2, 1.5, -0.25, 0.5});
    for (int64_t s = 0; s < S; ++s)
      for (int64_t t = 0; t < T; ++t) {
        std::vector<PartMeasures> image;
        for (int p = 0; p < kParts; ++p) {
          PartMeasures m;
          m.part = p;
          m.area = 100 * x + 10 * double(s) + double(t);
          m.luminance = double(p);
          m.hue_degrees = NAN;  // stored as NULL
          image.push_back(m);
        }
        chunk.parts.push_back(image);
      }
  }
  auto& r = chunk.rows;
  r.samples = S;
  r.steps = T;
  r.values = torch::arange(U * T, torch::kDouble).reshape({U, T});
  r.activation = torch::arange(U * S * T, torch::kDouble).reshape({U, S, T});
  r.other_change = torch::zeros({U, S, T}, torch::kDouble);
  r.class_logit = torch::ones({U, S, T}, torch::kDouble);
  r.top_class = torch::zeros({U, S, T}, torch::kLong);
  r.motion.assign(size_t(U), std::vector<std::vector<PartMotion>>(size_t(S), {PartMotion{1, 0.5, -0.5, 10}}));
  r.change_mean = torch::arange(U * kParts * M, torch::kDouble).reshape({U, kParts, M});
  r.change_count = torch::ones({U, kParts, M}, torch::kLong);
  r.change_count[0][1][2] = 0;  // not defined: no row
  r.parts = &chunk.parts;
  return chunk;
}

ResultsDatabase started_database(const fs::path& file) {
  ResultsDatabase results(file, ResultsDatabase::Mode::create_or_open);
  results.start_run("{\"run\": 1}", {"background", "object"}, torch::tensor({0, 1}, torch::kLong),
                    torch::tensor({0, 1}, torch::kLong));
  return results;
}

TEST(ResultsDatabase, NewFileCarriesTheSchemaAndItsVersion) {
  ScratchDir dir("results-new");
  { ResultsDatabase results(dir / "r.sqlite", ResultsDatabase::Mode::create_or_open); }
  Database db(dir / "r.sqlite", Database::Mode::open_existing);
  EXPECT_EQ(db.query_int("PRAGMA user_version"), ResultsDatabase::kSchemaVersion);
  EXPECT_NE(db.query_int("PRAGMA application_id").value_or(0), 0);
  for (const char* table : {"meta", "parts", "samples", "units", "steps", "part_metrics", "motion", "part_changes",
                            "null_directions", "null_changes", "selectivity", "concept_top_units"})
    EXPECT_TRUE(db.has_table(table)) << table;
  EXPECT_FALSE(db.has_table("probe"));  // made by the probe
  // Reopening keeps it.
  ResultsDatabase reopened(dir / "r.sqlite", ResultsDatabase::Mode::open_existing);
  EXPECT_FALSE(reopened.is_complete());
  EXPECT_FALSE(reopened.run_identity().has_value());
}

TEST(ResultsDatabase, RefusesOtherVersionsOlderFilesAndForeignDatabases) {
  ScratchDir dir("results-versions");
  {
    Database older(dir / "older.sqlite", Database::Mode::create_or_open);
    older.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT); CREATE TABLE units (unit INTEGER);");
  }
  testing::expect_error([&] { ResultsDatabase(dir / "older.sqlite", ResultsDatabase::Mode::create_or_open); },
                        {"older.sqlite", "older linkstyle"});
  {
    Database foreign(dir / "foreign.sqlite", Database::Mode::create_or_open);
    foreign.execute("CREATE TABLE t (a INTEGER);");
  }
  testing::expect_error([&] { ResultsDatabase(dir / "foreign.sqlite", ResultsDatabase::Mode::open_existing); },
                        {"foreign.sqlite", "not a linkstyle results database"});
  { ResultsDatabase made(dir / "future.sqlite", ResultsDatabase::Mode::create_or_open); }
  {
    Database future(dir / "future.sqlite", Database::Mode::open_existing);
    future.execute("PRAGMA user_version = 7;");
  }
  testing::expect_error([&] { ResultsDatabase(dir / "future.sqlite", ResultsDatabase::Mode::open_existing); },
                        {"future.sqlite", "schema version 7"});
  { Database empty(dir / "empty.sqlite", Database::Mode::create_or_open); }
  testing::expect_error([&] { ResultsDatabase(dir / "empty.sqlite", ResultsDatabase::Mode::open_existing); },
                        {"empty.sqlite"});
  testing::expect_error([&] { ResultsDatabase(dir / "none.sqlite", ResultsDatabase::Mode::open_existing); },
                        {"none.sqlite"});
}

TEST(ResultsDatabase, AVersion2DatabaseGainsTheCounterfactualRealismColumns) {
  ScratchDir dir("results-v2");
  const auto file = dir / "v2.sqlite";
  { ResultsDatabase made(file, ResultsDatabase::Mode::create_or_open); }
  {
    // A version 2 counterfactuals table: without the realism, margin, judge and exact columns.
    Database old(file, Database::Mode::open_existing);
    old.execute("DROP VIEW IF EXISTS counterfactual_summary; DROP TABLE IF EXISTS counterfactual_run_realism; "
                "DROP TABLE IF EXISTS counterfactuals; CREATE TABLE counterfactuals (run TEXT NOT NULL, sample "
                "INTEGER NOT NULL, success INTEGER, PRIMARY KEY (run, sample)) WITHOUT ROWID; "
                "INSERT INTO counterfactuals VALUES ('a-to-b-paper', 0, 1); PRAGMA user_version = 2;");
  }
  { ResultsDatabase migrated(file, ResultsDatabase::Mode::open_existing); }
  Database db(file, Database::Mode::open_existing);
  EXPECT_EQ(db.query_int("PRAGMA user_version"), ResultsDatabase::kSchemaVersion);
  EXPECT_EQ(db.query_int("SELECT count(*) FROM counterfactuals WHERE realism IS NULL AND judge_class IS NULL AND "
                         "exact_shift_cosine IS NULL AND success = 1"),
            1);
  EXPECT_EQ(db.query_int("SELECT count(*) FROM counterfactual_run_realism"), 0);
}

TEST(ResultsDatabase, UnitChunksReadBackAsWritten) {
  ScratchDir dir("results-units");
  auto results = started_database(dir / "r.sqlite");
  EXPECT_EQ(results.run_identity(), "{\"run\": 1}");
  EXPECT_EQ(results.part_names(), (std::vector<std::string>{"background", "object"}));
  EXPECT_EQ(results.sample_generator_classes(), (std::map<int64_t, int64_t>{{0, 0}, {1, 1}}));
  const auto chunk = synthetic_chunk({4, 7});
  results.write_unit_chunk(chunk.rows);
  EXPECT_EQ(results.swept_units(), (std::set<int64_t>{4, 7}));
  EXPECT_EQ(results.last_step(), kSteps - 1);

  const auto changes = results.unit_concept_changes({7, 4, 9}, kParts);  // any order; 9 not swept
  ASSERT_EQ(changes.sizes(), (std::vector<int64_t>{3, kParts * kConceptMeasures}));
  const auto expected = chunk.rows.change_mean.reshape({2, -1});
  EXPECT_TRUE(torch::equal(changes[0], expected[1]));
  EXPECT_DOUBLE_EQ(changes[1][0].item<double>(), expected[0][0].item<double>());
  EXPECT_TRUE(std::isnan(changes[1][kConceptMeasures + 2].item<double>()));  // count 0: no row
  EXPECT_TRUE(torch::isnan(changes[2]).all().item<bool>());

  const auto cycles = results.unit_cycles();
  ASSERT_TRUE(cycles.count(7));
  EXPECT_TRUE(cycles.at(7).defined);
  EXPECT_DOUBLE_EQ(cycles.at(7).gain, 0.7);
  EXPECT_FALSE(cycles.count(9));
  const auto ranges = results.unit_ranges(10);
  EXPECT_DOUBLE_EQ(ranges[7].item<double>(), 14.0);
  EXPECT_TRUE(std::isnan(ranges[9].item<double>()));

  int64_t rows = 0;
  results.for_each_part_metrics([&](int64_t unit, int64_t sample, int64_t step, const PartMeasures& m) {
    EXPECT_DOUBLE_EQ(m.area, 100.0 * double(unit) + 10.0 * double(sample) + double(step));
    EXPECT_TRUE(std::isnan(m.hue_degrees));
    ++rows;
  });
  EXPECT_EQ(rows, 2 * kSamples * kSteps * kParts);
}

TEST(ResultsDatabase, AChunkIsWrittenWholeOrNotAtAll) {
  ScratchDir dir("results-atomic");
  auto results = started_database(dir / "r.sqlite");
  results.write_unit_chunk(synthetic_chunk({1}).rows);
  // Unit 2 is new but unit 1 is already there: the chunk fails and leaves nothing of unit 2.
  EXPECT_THROW(results.write_unit_chunk(synthetic_chunk({2, 1}).rows), Error);
  EXPECT_EQ(results.swept_units(), (std::set<int64_t>{1}));
  Database db(dir / "r.sqlite", Database::Mode::open_existing);
  EXPECT_EQ(db.query_int("SELECT count(*) FROM steps WHERE unit = 2"), 0);
  EXPECT_EQ(db.query_int("SELECT count(*) FROM part_metrics WHERE unit = 2"), 0);
}

TEST(ResultsDatabase, NullChunksFillTheirBins) {
  ScratchDir dir("results-null");
  auto results = started_database(dir / "r.sqlite");
  NullChunkRows rows;
  rows.directions = {0, 1, 2};
  rows.bins = {0, 0, 1};
  rows.norms = {1.0, 1.0, 2.0};
  rows.change_mean = torch::full({3, kParts, kConceptMeasures}, 0.5, torch::kDouble);
  rows.change_mean[2].fill_(-1.0);
  rows.change_count = torch::ones({3, kParts, kConceptMeasures}, torch::kLong);
  results.write_null_chunk(rows);
  EXPECT_EQ(results.swept_null_directions(), (std::set<int64_t>{0, 1, 2}));
  const auto null = results.null_concept_changes(2, 2, kParts);  // 2 bins of 2 directions
  EXPECT_TRUE((null[0] == 0.5).all().item<bool>());
  EXPECT_TRUE((null[1][0] == -1.0).all().item<bool>());
  EXPECT_TRUE(torch::isnan(null[1][1]).all().item<bool>());  // direction 3 not written
}

TEST(ResultsDatabase, VerdictsReplaceTheSelectivityAndLabels) {
  ScratchDir dir("results-verdicts");
  auto results = started_database(dir / "r.sqlite");
  results.write_unit_chunk(synthetic_chunk({3, 5}).rows);
  UnitVerdict labelled{3, true, 1, "object area +", "object", "area", 4.5, 0.75, 0.4, 0.8,
                       {{1, "area", 0.3, 4.5, 1e-5, 0.01, 2e-5, true}, {0, "luminance", NAN, 0.2, 0.8, 0.9, 0.9, false}}};
  UnitVerdict plain{5, true, 0, "none", "", "", 0, NAN, NAN, NAN, {}};
  results.write_verdicts({labelled, plain});
  const auto units = results.expressible_units();
  ASSERT_EQ(units.size(), 2u);
  EXPECT_EQ(units[0].part + " " + units[0].measure, "object area");
  EXPECT_TRUE(units[1].part.empty());
  EXPECT_EQ(results.top_units(1), std::vector<int64_t>{3});
  Database db(dir / "r.sqlite", Database::Mode::open_existing);
  EXPECT_EQ(db.query_int("SELECT count(*) FROM selectivity"), 2);
  EXPECT_EQ(db.query_int("SELECT count(*) FROM selectivity WHERE change IS NULL"), 1);
  EXPECT_EQ(db.query_text("SELECT unit FROM concept_top_units"), "3");
  EXPECT_EQ(db.query_text("SELECT label_confidence FROM units WHERE unit = 3"), "0.8");
  EXPECT_EQ(db.query_int("SELECT count(*) FROM units WHERE unit = 5 AND label_confidence IS NULL"), 1);
  // The concept scores read back as written.
  const auto scores = results.concept_scores();
  ASSERT_EQ(scores.at(3).size(), 2u);
  EXPECT_DOUBLE_EQ(scores.at(3)[1].q, 2e-5);
  EXPECT_TRUE(scores.at(3)[1].significant);
  // A second verdict replaces the first.
  labelled.concepts.pop_back();
  labelled.expressible = false;
  results.write_verdicts({labelled});
  EXPECT_EQ(db.query_int("SELECT count(*) FROM selectivity"), 1);
  EXPECT_EQ(results.expressible_units().size(), 1u);
  results.mark_complete("segmenter");
  EXPECT_TRUE(results.is_complete());
  EXPECT_EQ(db.query_text("SELECT value FROM meta WHERE key = 'part_source'"), "segmenter");
}

TEST(ResultsDatabase, ExportChecksEveryNameBeforeWriting) {
  ScratchDir dir("results-export");
  { auto results = started_database(dir / "r.sqlite"); }
  testing::expect_error(
      [&] {
        export_results_tables(dir / "r.sqlite", {"parts", "nope"}, dir / "csv");
      },
      {"r.sqlite", "no table 'nope'"});
  testing::expect_error([&] { export_results_tables(dir / "r.sqlite", {"parts; DROP"}, dir / "csv"); },
                        {"not a table name"});
  EXPECT_FALSE(fs::exists(dir / "csv"));
  const auto written = export_results_tables(dir / "r.sqlite", {"parts", "samples"}, dir / "csv");
  EXPECT_EQ(written["parts"]["rows"], 2);
  std::ifstream in(dir / "csv" / "parts.csv");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "part,name\n0,background\n1,object\n");
}

// A study's sweep as the report reads it: units 7 and 4 in one chunk, unit 9 (not given a
// verdict) in another, verdicts for 4 (labelled) and 7 (no label), and two null directions.
void write_report_sweep(ResultsDatabase& results) {
  results.write_unit_chunk(synthetic_chunk({7, 4}).rows);
  auto unjudged = synthetic_chunk({9});
  unjudged.rows.change_mean[0][0][0] = NAN;  // stored as NULL
  results.write_unit_chunk(unjudged.rows);
  UnitVerdict labelled{4, true, 2, "object area +", "object", "area", 2.0, 0.75, 0.4, 0.8,
                       {{1, "area", 0.3, 2.0, 1e-3, 0.01, 2e-3, true},
                        {0, "luminance", NAN, -4.5, 1e-5, 0.01, 2e-5, true},
                        {0, "entropy", 0.1, 0.2, 0.8, 0.9, 0.9, false}}};
  UnitVerdict plain{7, false, 0, "none", "", "", 0, NAN, NAN, NAN, {}};
  results.write_verdicts({labelled, plain});
  NullChunkRows null;
  null.directions = {2, 0};
  null.bins = {1, 0};
  null.norms = {1.0, 1.0};
  null.change_mean = torch::full({2, kParts, kConceptMeasures}, 0.5, torch::kDouble);
  null.change_mean[0].fill_(-1.0);
  null.change_mean[1][1][3] = NAN;  // no change: not read
  null.change_count = torch::ones({2, kParts, kConceptMeasures}, torch::kLong);
  results.write_null_chunk(null);
}

TEST(ResultsDatabase, ReportReadersReadUnitsAndConceptsInOrder) {
  ScratchDir dir("results-report-units");
  auto results = started_database(dir / "r.sqlite");
  write_report_sweep(results);

  const auto units = results.unit_rows();
  ASSERT_EQ(units.size(), 3u);
  EXPECT_EQ(units[0].unit, 4);
  EXPECT_EQ(units[1].unit, 7);
  EXPECT_EQ(units[2].unit, 9);
  EXPECT_DOUBLE_EQ(units[0].range_min, -4.0);
  EXPECT_DOUBLE_EQ(units[0].range_max, 4.0);
  EXPECT_DOUBLE_EQ(units[0].gain, 0.4);
  EXPECT_DOUBLE_EQ(units[0].off_unit_correlation_p99, 0.2);
  EXPECT_DOUBLE_EQ(units[0].class_flip_rate, 0.5);
  EXPECT_TRUE(units[0].expressible);
  EXPECT_EQ(units[0].label, "object area +");
  EXPECT_EQ(units[0].label_part, "object");
  EXPECT_EQ(units[0].label_measure, "area");
  EXPECT_DOUBLE_EQ(units[0].label_z, 2.0);
  EXPECT_EQ(units[0].significant_concepts, 2);
  EXPECT_DOUBLE_EQ(units[0].label_sample_agreement, 0.75);
  EXPECT_DOUBLE_EQ(units[0].label_confidence, 0.8);
  // Unit 7 has a verdict without a label; unit 9 has none (its verdict columns are NULL).
  EXPECT_FALSE(units[1].expressible);
  EXPECT_EQ(units[1].label, "none");
  EXPECT_EQ(units[1].label_part, "");
  EXPECT_TRUE(std::isnan(units[1].label_z));
  EXPECT_TRUE(std::isnan(units[1].label_confidence));
  EXPECT_FALSE(units[2].expressible);
  EXPECT_EQ(units[2].label, "");
  EXPECT_EQ(units[2].significant_concepts, 0);
  EXPECT_TRUE(std::isnan(units[2].label_margin));

  // Significant concepts only, by decreasing |z|, with part names; a NULL change reads as NaN.
  const auto concepts = results.significant_concepts();
  ASSERT_EQ(concepts.size(), 2u);
  EXPECT_EQ(concepts[0].unit, 4);
  EXPECT_EQ(concepts[0].part_name + " " + concepts[0].measure, "background luminance");
  EXPECT_DOUBLE_EQ(concepts[0].z, -4.5);
  EXPECT_TRUE(std::isnan(concepts[0].change));
  EXPECT_EQ(concepts[1].part_name + " " + concepts[1].measure, "object area");
  EXPECT_DOUBLE_EQ(concepts[1].change, 0.3);

  const auto top = results.concept_top_units();
  ASSERT_EQ(top.size(), 2u);
  EXPECT_EQ(top[0].part_name + " " + top[0].measure, "background luminance");
  EXPECT_EQ(top[0].unit, 4);
  EXPECT_EQ(top[0].rank, 1);
  EXPECT_DOUBLE_EQ(top[0].z, -4.5);
  EXPECT_EQ(top[1].part_name + " " + top[1].measure, "object area");
  EXPECT_DOUBLE_EQ(top[1].change, 0.3);

  const auto labels = results.unit_labels();
  ASSERT_EQ(labels.size(), 3u);
  EXPECT_DOUBLE_EQ(labels[0].label_confidence, 0.8);
  EXPECT_TRUE(std::isnan(labels[1].label_confidence));
  EXPECT_EQ(labels[2].label, "");
}

TEST(ResultsDatabase, ReportReadersReadStepsChangesAndAreasInOrder) {
  ScratchDir dir("results-report-steps");
  auto results = started_database(dir / "r.sqlite");
  write_report_sweep(results);

  // Steps by (unit, sample, step): unit 4 is the chunk {7, 4}'s second unit.
  const auto steps = results.sweep_steps();
  ASSERT_EQ(steps.size(), size_t(3 * kSamples * kSteps));
  for (size_t i = 1; i < steps.size(); ++i)
    EXPECT_LT(std::tie(steps[i - 1].unit, steps[i - 1].sample, steps[i - 1].step),
              std::tie(steps[i].unit, steps[i].sample, steps[i].step));
  EXPECT_EQ(steps[0].unit, 4);
  EXPECT_DOUBLE_EQ(steps[1].value, double(kSteps + 1));
  EXPECT_DOUBLE_EQ(steps[kSteps].activation, double(kSamples * kSteps + kSteps));
  EXPECT_DOUBLE_EQ(steps[0].class_logit, 1.0);
  EXPECT_EQ(steps[0].top_class, 0);

  // Part changes by (unit, part, measure name); unit 9's NULL change reads as NaN.
  const auto changes = results.unit_part_changes();
  ASSERT_EQ(changes.size(), size_t(3 * kParts * kConceptMeasures - 2));  // two counts of 0
  auto measures = concept_measures();
  std::sort(measures.begin(), measures.end());
  EXPECT_EQ(changes[0].unit, 4);
  EXPECT_EQ(changes[0].part_name, "background");
  EXPECT_EQ(changes[0].measure, measures[0]);
  const auto& names = concept_measures();
  const int64_t first = std::find(names.begin(), names.end(), measures[0]) - names.begin();
  EXPECT_DOUBLE_EQ(changes[0].change, double(kParts * kConceptMeasures + first));
  EXPECT_EQ(changes[1].measure, measures[1]);
  EXPECT_EQ(changes[kConceptMeasures].part_name, "object");
  int64_t undefined = 0;
  for (const auto& change : changes)
    if (std::isnan(change.change)) {
      EXPECT_EQ(change.unit, 9);
      EXPECT_EQ(change.measure, names[0]);
      ++undefined;
    }
  EXPECT_EQ(undefined, 1);

  // Null changes by direction, without the NULL one.
  const auto null = results.null_part_changes();
  ASSERT_EQ(null.size(), size_t(2 * kParts * kConceptMeasures - 1));
  EXPECT_EQ(null.front().direction, 0);
  EXPECT_DOUBLE_EQ(null.front().change, 0.5);
  EXPECT_EQ(null.back().direction, 2);
  EXPECT_DOUBLE_EQ(null.back().change, -1.0);

  // Mean area at step 0 over units 4, 7 and 9: 100 * unit + 10 * sample.
  const auto areas = results.first_step_part_areas();
  ASSERT_EQ(areas.size(), size_t(kParts * kSamples));
  for (const auto& area : areas)
    EXPECT_NEAR(area.mean_area, 100.0 * (4 + 7 + 9) / 3.0 + 10.0 * double(area.sample), 1e-9) << area.part_name;
  EXPECT_EQ(results.sample_generator_classes(), (std::map<int64_t, int64_t>{{0, 0}, {1, 1}}));
}

CounterfactualRecord counterfactual_record(int64_t sample, bool success, double realism, int64_t judge_class) {
  CounterfactualRecord record;
  record.sample = sample;
  record.origin = "generated";
  record.success = success;
  record.steps = 10 + sample;
  record.units_90 = 2;
  record.target_probability = success ? 0.9 : 0.2;
  record.crossing_alpha = success ? 0.5 : NAN;
  record.image = std::to_string(sample) + ".png";
  record.path_image = std::to_string(sample) + "-path.png";
  record.path_probability = {0.1, 0.5 + 0.01 * double(sample), 0.9};
  record.path_class = {0, 1, 1};
  record.top_units = {{3, 0.9}, {int64_t(6 + sample), -0.2}};
  record.realism = realism;
  record.margin = 1.5;
  record.judge_class = judge_class;
  record.judge_target_probability = judge_class < 0 ? NAN : 0.7;
  return record;
}

TEST(ResultsDatabase, CounterfactualReadersReadRunsSamplesAndPaths) {
  ScratchDir dir("results-report-counterfactuals");
  auto results = started_database(dir / "r.sqlite");
  CounterfactualRunRow run;
  run.run = "b-run", run.method = "realistic", run.origin = "generated", run.target_class = 1;
  run.source_name = "any", run.target_name = "object", run.identity = "{}", run.folder = "counterfactuals/b-run";
  results.start_counterfactual_run(run);
  CounterfactualRunRow empty = run;
  empty.run = "a-run", empty.target_class = 0;
  results.start_counterfactual_run(empty);
  results.write_counterfactuals("b-run", {0.0, 0.5, 1.0},
                                {counterfactual_record(5, true, 0.25, 1), counterfactual_record(2, false, NAN, -1),
                                 counterfactual_record(8, true, 0.75, 0)});
  results.write_counterfactual_run_realism("b-run", {"judge", 2, 12.5, 10.0});

  // By run: a run without samples or realism has zero counts, no judge and NaN distances.
  const auto runs = results.counterfactual_run_summaries();
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].run, "a-run");
  EXPECT_EQ(runs[0].samples, 0);
  EXPECT_EQ(runs[0].successes, 0);
  EXPECT_EQ(runs[0].judge_successes, -1);
  EXPECT_EQ(runs[0].realism_space, "");
  EXPECT_TRUE(std::isnan(runs[0].frechet_distance));
  EXPECT_EQ(runs[1].run, "b-run");
  EXPECT_EQ(runs[1].method, "realistic");
  EXPECT_EQ(runs[1].target_name, "object");
  EXPECT_EQ(runs[1].folder, "counterfactuals/b-run");
  EXPECT_EQ(runs[1].target_class, 1);
  EXPECT_EQ(runs[1].samples, 3);
  EXPECT_EQ(runs[1].successes, 2);
  EXPECT_EQ(runs[1].judge_successes, 1);  // sample 5; sample 8's judge says class 0
  EXPECT_EQ(runs[1].realism_space, "judge");
  EXPECT_DOUBLE_EQ(runs[1].frechet_distance, 12.5);
  EXPECT_DOUBLE_EQ(runs[1].reference_frechet_distance, 10.0);

  auto realism = results.successful_counterfactual_realism("b-run");
  std::sort(realism.begin(), realism.end());
  EXPECT_EQ(realism, (std::vector<double>{0.25, 0.75}));

  // The first two samples by sample number; sample 2's NULLs read as NaN and -1.
  const auto samples = results.counterfactual_sample_rows("b-run", 2);
  ASSERT_EQ(samples.size(), 2u);
  EXPECT_EQ(samples[0].sample, 2);
  EXPECT_FALSE(samples[0].success);
  EXPECT_EQ(samples[0].steps, 12);
  EXPECT_TRUE(std::isnan(samples[0].crossing_alpha));
  EXPECT_TRUE(std::isnan(samples[0].realism));
  EXPECT_EQ(samples[0].judge_class, -1);
  EXPECT_TRUE(std::isnan(samples[0].judge_target_probability));
  EXPECT_EQ(samples[1].sample, 5);
  EXPECT_TRUE(samples[1].success);
  EXPECT_EQ(samples[1].units_90, 2);
  EXPECT_DOUBLE_EQ(samples[1].target_probability, 0.9);
  EXPECT_DOUBLE_EQ(samples[1].realism, 0.25);
  EXPECT_DOUBLE_EQ(samples[1].margin, 1.5);
  EXPECT_EQ(samples[1].judge_class, 1);
  EXPECT_EQ(samples[1].image, "5.png");
  EXPECT_EQ(samples[1].path_image, "5-path.png");

  const auto path = results.counterfactual_path("b-run", 5);
  ASSERT_EQ(path.size(), 3u);
  EXPECT_DOUBLE_EQ(path[1].alpha, 0.5);
  EXPECT_DOUBLE_EQ(path[1].target_probability, 0.55);
  EXPECT_EQ(path[2].top_class, 1);
  EXPECT_TRUE(results.counterfactual_path("a-run", 5).empty());
}

TEST(ResultsDatabase, AReadOnlyDatabaseIsReadAsItIsAndRefusesWrites) {
  ScratchDir dir("results-read-only");
  const auto file = dir / "r.sqlite";
  {
    auto results = started_database(file);
    write_report_sweep(results);
  }
  ResultsDatabase read_only(file, ResultsDatabase::Mode::read_only);
  EXPECT_TRUE(read_only.has_table("units"));
  EXPECT_FALSE(read_only.has_table("counterfactual_runs"));  // a reader must not make it
  EXPECT_EQ(read_only.part_names(), (std::vector<std::string>{"background", "object"}));
  ASSERT_EQ(read_only.unit_rows().size(), 3u);
  EXPECT_EQ(read_only.unit_labels()[0].label, "object area +");
  EXPECT_EQ(read_only.significant_concepts().size(), 2u);
  EXPECT_EQ(read_only.sweep_steps().size(), size_t(3 * kSamples * kSteps));
  EXPECT_THROW(read_only.write_verdicts({}), Error);
  EXPECT_EQ(read_only.unit_rows()[0].label, "object area +");  // the failed write left it
  testing::expect_error([&] { ResultsDatabase(dir / "none.sqlite", ResultsDatabase::Mode::read_only); },
                        {"none.sqlite"});

  // A version 2 file is read as it is, not migrated.
  {
    Database old(file, Database::Mode::open_existing);
    old.execute("PRAGMA user_version = 2;");
  }
  { ResultsDatabase older(file, ResultsDatabase::Mode::read_only); }
  Database db(file, Database::Mode::open_existing);
  EXPECT_EQ(db.query_int("PRAGMA user_version"), 2);
}

TEST(SqliteDatabase, CsvExportQuotesAndMarksNull) {
  ScratchDir dir("sqlite-csv");
  Database db(dir / "r.sqlite", Database::Mode::create_or_open);
  db.execute("CREATE TABLE t (a INTEGER, b REAL, c TEXT); INSERT INTO t VALUES (1, 0.5, 'x, \"y\"'), (2, NULL, 'z');");
  EXPECT_EQ(export_csv(db, "t", dir / "t.csv"), 2);
  std::ifstream in(dir / "t.csv");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "a,b,c\n1,0.5,\"x, \"\"y\"\"\"\n2,,z\n");
  testing::expect_error([&] { export_csv(db, "missing", dir / "m.csv"); }, {"r.sqlite", "no table 'missing'"});
  EXPECT_FALSE(fs::exists(dir / "m.csv"));
  testing::expect_error([&] { Database(dir / "none.sqlite", Database::Mode::open_existing); }, {"none.sqlite"});
  { std::ofstream(dir / "bad.sqlite") << "this is not a database, just some text that is long enough to matter"; }
  testing::expect_error([&] { Database(dir / "bad.sqlite", Database::Mode::open_existing); }, {"bad.sqlite"});
}

}  // namespace
}  // namespace linkstyle
