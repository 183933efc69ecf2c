// Tests for the results database (results_database.hpp) and its SQLite wrapper
// (sqlite_database.hpp), on small synthetic rows: the schema and its version, the typed writers
// and readers, whole-chunk transactions and the CSV export.
#include <cmath>
#include <fstream>

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
