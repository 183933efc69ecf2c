// Tests for run_sweep (sweep.hpp): every row once, resumption after a stop, overlap, settings checks.
#include <cstdlib>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "linkstyle/errors.hpp"
#include "linkstyle/sqlite_database.hpp"
#include "linkstyle/sweep.hpp"
#include "sweep_study.hpp"
#include "test_support.hpp"

namespace linkstyle {
namespace {

namespace fs = std::filesystem;
using testing::make_sweep_study;
using testing::ScratchDir;
using testing::table_contents;

TEST(Sweep, RunWritesEveryRowOnceAndARerunAddsNothing) {
  ScratchDir dir("sweep-run");
  const auto study = make_sweep_study(dir.path());
  const auto summary = study.run();
  const int64_t U = 6, S = 6, T = 3;
  EXPECT_EQ(summary.units, U);
  EXPECT_EQ(summary.units_resumed, 0);
  EXPECT_EQ(summary.part_source, "kmeans");
  EXPECT_EQ(summary.images, U * S * T + 2 * 6 * 2 * S);
  Database db(study.config.results_database(), Database::Mode::open_existing);
  EXPECT_EQ(db.query_int("SELECT count(*) FROM units"), U);
  EXPECT_EQ(db.query_int("SELECT count(*) FROM steps"), U * S * T);
  EXPECT_EQ(db.query_int("SELECT count(*) FROM null_directions"), 12);
  EXPECT_EQ(db.query_int("SELECT count(DISTINCT unit) FROM part_changes"), U);
  EXPECT_EQ(db.query_int("SELECT count(*) FROM units WHERE label IS NULL"), 0);
  EXPECT_GT(db.query_int("SELECT count(*) FROM selectivity").value_or(0), 0);
  EXPECT_EQ(db.query_int("SELECT count(*) FROM part_metrics WHERE area < 1"), 0);
  EXPECT_EQ(db.query_text("SELECT value FROM meta WHERE key = 'complete'"), "1");
  // Step values run from the unit's minimum to its maximum over the tuning samples.
  EXPECT_EQ(db.query_int("SELECT count(*) FROM steps JOIN units USING (unit) WHERE step = 0 AND value != range_min"),
            0);
  EXPECT_EQ(db.query_int("SELECT count(*) FROM steps JOIN units USING (unit) WHERE step = 2 AND value != range_max"),
            0);
  ASSERT_EQ(summary.strips.size(), 1u);
  EXPECT_TRUE(fs::exists(summary.strips[0]));
  EXPECT_TRUE(fs::exists(study.config.sweeps_folder() / "summary.json"));
  const auto before = table_contents(study.config.results_database(), dir.path());
  const auto again = study.run();
  EXPECT_EQ(again.units_resumed, U);
  EXPECT_EQ(again.images, 0);
  EXPECT_EQ(table_contents(study.config.results_database(), dir.path()), before);
}

TEST(Sweep, InterruptedRunResumesToTheSameRows) {
  ScratchDir straight_dir("sweep-straight"), resumed_dir("sweep-resumed");
  const auto straight = make_sweep_study(straight_dir.path());
  straight.run();
  const auto resumed = make_sweep_study(resumed_dir.path());
  // 6 null chunks of 2 directions + 3 unit chunks of 2 units: stop in the nulls, then in the units.
  EXPECT_THROW(resumed.run(4), Cancelled);
  EXPECT_THROW(resumed.run(3), Cancelled);
  {
    Database db(resumed.config.results_database(), Database::Mode::open_existing);
    EXPECT_EQ(db.query_int("SELECT count(*) FROM units"), 2);
    EXPECT_EQ(db.query_text("SELECT value FROM meta WHERE key = 'complete'"), std::nullopt);
  }
  const auto last = resumed.run();
  EXPECT_EQ(last.units_resumed, 2);
  EXPECT_EQ(table_contents(resumed.config.results_database(), resumed_dir.path()),
            table_contents(straight.config.results_database(), straight_dir.path()));
}

TEST(Sweep, OverlappedRunsWriteTheSameRowsAndResume) {
  ScratchDir straight_dir("sweep-sequential"), overlapped_dir("sweep-overlapped");
  const auto straight = make_sweep_study(straight_dir.path());
  straight.run(-1, Overlap::never);
  const auto overlapped = make_sweep_study(overlapped_dir.path());
  // Recording runs one chunk behind measuring: stopping after 5 recorded chunks leaves 5 in the
  // database, whatever was measured beyond them.
  EXPECT_THROW(overlapped.run(5, Overlap::always), Cancelled);
  {
    Database db(overlapped.config.results_database(), Database::Mode::open_existing);
    EXPECT_EQ(db.query_int("SELECT count(*) FROM null_directions"), 10);
    EXPECT_EQ(db.query_int("SELECT count(*) FROM units"), 0);
  }
  overlapped.run(-1, Overlap::always);
  EXPECT_EQ(table_contents(overlapped.config.results_database(), overlapped_dir.path()),
            table_contents(straight.config.results_database(), straight_dir.path()));
}

// Sets an environment variable for the life of the object.
struct ScopedEnvironment {
  std::string name;
  ScopedEnvironment(std::string variable, const std::string& value) : name(std::move(variable)) {
    setenv(name.c_str(), value.c_str(), 1);
  }
  ~ScopedEnvironment() { unsetenv(name.c_str()); }
};

TEST(Sweep, BatchesShrinkToTheMemoryBudgetAndTheRunResumesWithAnother) {
  ScratchDir dir("sweep-budget");
  const auto study = make_sweep_study(dir.path());  // pairs and fit with the default budget
  {
    const ScopedEnvironment tiny_budget("LINKSTYLE_MEMORY_BUDGET", "0.000001");  // about 1 KiB
    EXPECT_THROW(study.run(3), Cancelled);
  }
  const auto summary = study.run();  // the default budget: the whole batch
  EXPECT_EQ(summary.batch_size, study.config.sweep.batch_size);
  EXPECT_GT(summary.units_resumed + summary.images, 0);
  EXPECT_GT(summary.batch_memory_per_image, 0.0);
  Database db(study.config.results_database(), Database::Mode::open_existing);
  EXPECT_EQ(db.query_text("SELECT value FROM meta WHERE key = 'complete'"), "1");

  ScratchDir other("sweep-budget-small");
  const auto small_study = make_sweep_study(other.path());
  const ScopedEnvironment tiny_budget("LINKSTYLE_MEMORY_BUDGET", "0.000001");
  const auto small = small_study.run();
  EXPECT_EQ(small.batch_size, 1);
  ASSERT_FALSE(small.warnings.empty());
  EXPECT_NE(small.warnings.back().find("memory budget"), std::string::npos) << small.warnings.back();
}

TEST(Sweep, OtherSettingsOrModelsAreAnErrorNamingTheDatabase) {
  ScratchDir dir("sweep-settings");
  auto study = make_sweep_study(dir.path());
  EXPECT_THROW(study.run(1), Cancelled);
  study.config.sweep.steps = 4;
  testing::expect_error([&] { study.run(); }, {"results.sqlite", "other sweep settings"});
  study.config.sweep.steps = 3;
  study.config.sweep.min_gain = 0.5;  // thresholds only change the verdicts
  EXPECT_NO_THROW(study.run());
  study.config.sweep.units = {0, 3, 5, 64};
  testing::expect_error([&] { study.run(); }, {"study.toml", "unit 64"});
}

}  // namespace
}  // namespace linkstyle
