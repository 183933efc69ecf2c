// Tests for unit sweeps (sweep.hpp), part sources (part_sources.hpp), selectivity statistics
// (selectivity.hpp), the results database (results_database.hpp) and the ground-truth check
// (ground_truth.hpp): formulas, batching, resumption after an interruption, settings checks.
#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "linkstyle/errors.hpp"
#include "linkstyle/ground_truth.hpp"
#include "linkstyle/pairs.hpp"
#include "linkstyle/part_sources.hpp"
#include "linkstyle/results_database.hpp"
#include "linkstyle/selectivity.hpp"
#include "linkstyle/study.hpp"
#include "linkstyle/sweep.hpp"
#include "linkstyle/tiny_models.hpp"
#include "linkstyle/train/segmenter_training.hpp"
#include "linkstyle/worlds/shapes.hpp"
#include "test_support.hpp"

namespace linkstyle {
namespace {

namespace fs = std::filesystem;
using testing::ScratchDir;

// A tiny study with pairs, a fitted linking network and small sweep settings.
struct SweepStudy {
  StudyConfig config;
  Classifier classifier;
  Generator generator;
  LinkingNetwork network;
  SweepSummary run(int64_t stop_after_chunks = -1, Overlap overlap = Overlap::automatic) const {
    SweepRunOptions options;
    options.progress = false;
    options.stop_after_chunks = stop_after_chunks;
    options.overlap = overlap;
    return run_sweep(config, classifier, generator, network, options);
  }
};

SweepStudy make_sweep_study(const fs::path& folder) {
  const auto models = write_tiny_models(folder / "models");
  StudyConfig config;
  config.folder = folder;
  config.classifier = models.classifier;
  config.generator = models.generator;
  config.pairs.samples_per_class = 120;
  config.pairs.batch_size = 64;
  config.sweep.samples_per_class = 2;
  config.sweep.steps = 3;
  config.sweep.units = {0, 3, 5, 7, 9, 11};
  config.sweep.units_per_chunk = 2;
  config.sweep.null_directions = 6;
  config.sweep.null_bins = 2;
  config.sweep.kmeans_parts = 3;
  config.sweep.batch_size = 16;
  config.sweep.strip_units = 1;
  config.sweep.strip_samples = 1;
  write_study(config);
  config = load_study(folder);
  auto classifier = Classifier::load(config.classifier, c10::Device(c10::kCPU));
  auto generator = Generator::load(config.generator, c10::Device(c10::kCPU));
  const auto manifest = generate_pairs(config, classifier, generator);
  auto fit = fit_from_pairs(manifest, FitOptions{}, config.pairs.holdout_fraction, false);
  fs::create_directories(config.linking_file().parent_path());
  fit.network.save(config.linking_file());
  return {config, classifier, generator, fit.network};
}

// Every table of a results database as CSV text, for comparing two runs.
std::map<std::string, std::string> table_contents(const fs::path& database, const fs::path& scratch) {
  Database db(database, Database::Mode::open_existing);
  std::map<std::string, std::string> contents;
  for (const std::string table : {"parts", "samples", "units", "steps", "part_metrics", "motion", "part_changes",
                                  "null_directions", "null_changes", "selectivity"}) {
    const fs::path file = scratch / (table + ".csv");
    export_csv(db, table, file);  // every table is stored in primary-key order
    std::ifstream in(file);
    contents[table] = std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return contents;
}

TEST(Sweep, UnitSweepLatentsSetOneUnitAndKeepTheOthers) {
  ScratchDir dir("sweep-latents");
  const auto study = make_sweep_study(dir.path());
  const auto tuning = make_tuning_set(study.config, study.classifier, study.generator, study.network);
  ASSERT_EQ(tuning.size(), 3 * 2);
  EXPECT_TRUE(torch::all(tuning.range_max >= tuning.range_min).item<bool>());
  const std::vector<int64_t> units = {3, 7};
  const int64_t T = 4;
  const auto latents = unit_sweep_latents(study.network, tuning, units, T);
  ASSERT_EQ(latents.size(0), 2 * tuning.size() * T);
  for (size_t u = 0; u < units.size(); ++u)
    for (int64_t s = 0; s < tuning.size(); ++s)
      for (int64_t t = 0; t < T; ++t) {
        auto r = tuning.features[s].clone();
        const double low = tuning.range_min[units[u]].item<double>(), high = tuning.range_max[units[u]].item<double>();
        r[units[u]] = low + (high - low) * double(t) / double(T - 1);
        const auto expected = study.network.apply(r.unsqueeze(0))[0];
        const auto actual = latents[(int64_t(u) * tuning.size() + s) * T + t];
        EXPECT_TRUE(torch::allclose(actual, expected, 1e-4, 1e-4))
            << "unit " << units[u] << " sample " << s << " step " << t;
      }
  testing::expect_error([&] { unit_sweep_latents(study.network, tuning, {99}, 3); }, {"unit 99", "out of range"});
}

TEST(Sweep, BatchedMeasuresEqualOneImageAtATime) {
  ScratchDir dir("sweep-batched");
  const auto study = make_sweep_study(dir.path());
  const auto tuning = make_tuning_set(study.config, study.classifier, study.generator, study.network);
  const auto parts = fit_kmeans_parts(study.generator, tuning.latents, 3, 5);
  const SweepModels models{study.classifier, study.generator, study.network, *parts};
  const auto latents = unit_sweep_latents(study.network, tuning, {1, 2}, 3);
  const auto batched = measure_latents(models, latents, 7, true);
  const auto single = measure_latents(models, latents, 1, true);
  EXPECT_TRUE(torch::allclose(batched.features, single.features, 1e-4, 1e-4));
  EXPECT_TRUE(torch::allclose(batched.logits, single.logits, 1e-4, 1e-4));
  EXPECT_TRUE(torch::equal(batched.images, single.images));
  ASSERT_EQ(batched.parts.size(), size_t(latents.size(0)));
  int64_t compared = 0;
  for (size_t i = 0; i < batched.parts.size(); ++i) {
    ASSERT_EQ(batched.parts[i].size(), single.parts[i].size());
    for (size_t k = 0; k < batched.parts[i].size(); ++k) {
      EXPECT_EQ(batched.parts[i][k].part, single.parts[i][k].part);
      EXPECT_EQ(batched.parts[i][k].area, single.parts[i][k].area);
      EXPECT_NEAR(batched.parts[i][k].luminance, single.parts[i][k].luminance, 1e-9);
      ++compared;
    }
  }
  EXPECT_GT(compared, latents.size(0));  // more than one part per image on average
  // Measuring on another thread while the next batch renders changes nothing.
  const auto overlapped = measure_latents(models, latents, 7, true, true);
  EXPECT_TRUE(torch::equal(overlapped.images, batched.images));
  EXPECT_TRUE(torch::equal(overlapped.labels, batched.labels));
  EXPECT_TRUE(torch::equal(overlapped.features, batched.features));
  ASSERT_EQ(overlapped.parts.size(), batched.parts.size());
  for (size_t i = 0; i < batched.parts.size(); ++i) {
    ASSERT_EQ(overlapped.parts[i].size(), batched.parts[i].size());
    for (size_t k = 0; k < batched.parts[i].size(); ++k) {
      EXPECT_EQ(overlapped.parts[i][k].area, batched.parts[i][k].area);
      EXPECT_EQ(overlapped.parts[i][k].entropy, batched.parts[i][k].entropy);
      EXPECT_EQ(overlapped.parts[i][k].hue_degrees, batched.parts[i][k].hue_degrees);
    }
  }
}

TEST(Sweep, GroupsMeasuredAsOnePipelineEqualEachGroupAlone) {
  ScratchDir dir("sweep-groups");
  const auto study = make_sweep_study(dir.path());
  const auto tuning = make_tuning_set(study.config, study.classifier, study.generator, study.network);
  const auto parts = fit_kmeans_parts(study.generator, tuning.latents, 3, 5);
  const SweepModels models{study.classifier, study.generator, study.network, *parts};
  // Groups of 18, 6 and 12 images in batches of 5: batches end inside every group.
  const std::vector<std::vector<int64_t>> units = {{0}, {1}, {2, 3}};
  std::vector<torch::Tensor> latents;
  for (const auto& u : units) latents.push_back(unit_sweep_latents(study.network, tuning, u, 3));
  latents[1] = latents[1].slice(0, 0, 6);
  for (const bool overlap : {false, true}) {
    std::vector<int64_t> order;
    std::vector<MeasuredImages> grouped;
    measure_latent_groups(
        models, int64_t(latents.size()), [&](int64_t g) { return latents[size_t(g)]; },
        [&](int64_t g, MeasuredImages&& measured) {
          order.push_back(g);
          grouped.push_back(std::move(measured));
        },
        5, true, overlap);
    ASSERT_EQ(order, (std::vector<int64_t>{0, 1, 2}));
    for (size_t g = 0; g < latents.size(); ++g) {
      const auto alone = measure_latents(models, latents[g], 4, true);
      EXPECT_TRUE(torch::allclose(grouped[g].features, alone.features, 1e-4, 1e-4));
      EXPECT_TRUE(torch::equal(grouped[g].images, alone.images));
      EXPECT_TRUE(torch::equal(grouped[g].labels, alone.labels));
      ASSERT_EQ(grouped[g].parts.size(), size_t(latents[g].size(0)));
      for (size_t i = 0; i < alone.parts.size(); ++i) {
        ASSERT_EQ(grouped[g].parts[i].size(), alone.parts[i].size());
        for (size_t k = 0; k < alone.parts[i].size(); ++k)
          EXPECT_EQ(grouped[g].parts[i][k].area, alone.parts[i][k].area);
      }
    }
  }
  // A group without latents is refused (while the group before it is still being measured).
  testing::expect_error(
      [&] {
        measure_latent_groups(
            models, 2, [&](int64_t g) { return g == 0 ? latents[0] : latents[0].slice(0, 0, 0); },
            [](int64_t, MeasuredImages&&) {}, 5, true, true);
      },
      {"group 1", "no latents"});
}

TEST(Sweep, EndpointChangesFollowTheDocumentedNormalisation) {
  PartMeasures a, b;
  a.part = b.part = 1;
  a.area = 40, b.area = 50;
  a.luminance = 10, b.luminance = 27;
  a.entropy = 1.0, b.entropy = 2.5;
  a.hue_degrees = 350, b.hue_degrees = 10;
  a.saturation = b.saturation = 0.5;
  a.angle_degrees = 170, b.angle_degrees = 10;
  a.eccentricity = 0.2, b.eccentricity = 0.6;
  a.centre_x = 8, b.centre_x = 12;
  a.centre_y = 16, b.centre_y = 14;
  PartMeasures grey_first;  // part 2 appears at the end only, and is grey
  PartMeasures grey_last;
  grey_last.part = 2, grey_last.area = 30;
  PartMeasures tiny;  // part 3 is too small on average
  tiny.part = 3, tiny.area = 1;
  std::vector<PartMotion> motion = {{1, 3.2, -1.6, 40}};
  const auto mean_area = torch::tensor({0.0, 45.0, 15.0, 1.0}, torch::kDouble);
  const auto c = endpoint_changes({a, tiny}, {b, grey_last, tiny}, motion, mean_area, 4, 32, 2.0);
  const auto& names = concept_measures();
  auto at = [&](int64_t part, const std::string& measure) {
    return c[part][std::find(names.begin(), names.end(), measure) - names.begin()].item<double>();
  };
  EXPECT_NEAR(at(1, "area"), 10.0 / 40.0, 1e-12);
  EXPECT_NEAR(at(1, "luminance"), 17.0 / 85.0, 1e-12);
  EXPECT_NEAR(at(1, "entropy"), 1.5, 1e-12);
  EXPECT_NEAR(at(1, "hue"), 20.0, 1e-9);    // across 0, not -340
  EXPECT_NEAR(at(1, "angle"), 20.0, 1e-9);  // an axis: 170 -> 10 is 20 degrees
  EXPECT_NEAR(at(1, "eccentricity"), 0.4, 1e-12);
  EXPECT_NEAR(at(1, "centre_x"), 4.0 / 32.0, 1e-12);
  EXPECT_NEAR(at(1, "centre_y"), -2.0 / 32.0, 1e-12);
  EXPECT_NEAR(at(1, "flow_x"), 0.1, 1e-12);
  EXPECT_NEAR(at(1, "flow_y"), -0.05, 1e-12);
  EXPECT_NEAR(at(2, "area"), 30.0, 1e-12);  // absent at the start: divided by 1
  EXPECT_TRUE(std::isnan(at(2, "luminance")));
  EXPECT_TRUE(std::isnan(at(2, "hue")));
  EXPECT_TRUE(std::isnan(at(3, "area")));  // under the minimum area
  EXPECT_TRUE(std::isnan(at(0, "area")));
  EXPECT_NEAR(minimum_part_area(128), 20.0, 1e-12);
  EXPECT_NEAR(minimum_part_area(32), 1.25, 1e-12);
}

TEST(Selectivity, NormBinsAreQuantilesWithMedianNorms) {
  const auto bins = assign_norm_bins({5, 1, 2, 8, 3, 7, 4, 6}, 2);
  ASSERT_EQ(bins.norm.size(), 2u);
  EXPECT_EQ(bins.unit_bin, (std::vector<int64_t>{1, 0, 0, 1, 0, 1, 0, 1}));
  EXPECT_DOUBLE_EQ(bins.norm[0], 2.5);
  EXPECT_DOUBLE_EQ(bins.norm[1], 6.5);
  const auto equal = assign_norm_bins({2, 2, 2}, 3);
  EXPECT_EQ(equal.norm.size(), 1u);  // equal ranges never straddle bins
}

TEST(Selectivity, OnlyAChangeBeyondTheNullIsSignificant) {
  auto generator = at::detail::createCPUGenerator(3);
  const int64_t M = 200, C = 4;
  auto null_values = torch::randn({1, M, C}, generator, torch::kDouble);
  null_values.index_put_({0, torch::indexing::Slice(0, M - 3), 3}, NAN);  // concept 3: too few null values
  auto profile = torch::zeros({3, C}, torch::kDouble);
  profile[0][1] = 12.0;  // far beyond the null
  profile[0][2] = -6.0;  // also, but weaker
  profile[1][0] = 0.5;   // inside the null
  profile[2][2] = 2.5;   // p = 0.012 > 0.05 / 3
  profile[2][3] = 50.0;  // not testable
  const auto result = score_selectivity(profile, {0, 0, 0}, null_values, 0.05);
  EXPECT_EQ(result.label, (std::vector<int64_t>{1, -1, -1}));
  EXPECT_TRUE(result.significant[0][1].item<bool>());
  EXPECT_TRUE(result.significant[0][2].item<bool>());
  EXPECT_FALSE(result.significant[1][0].item<bool>());
  EXPECT_FALSE(result.significant[2][2].item<bool>());
  EXPECT_TRUE(std::isnan(result.z[2][3].item<double>()));
  const double mean = null_values[0].select(1, 1).mean().item<double>();
  const double sd = null_values[0].select(1, 1).std().item<double>();
  EXPECT_NEAR(result.z[0][1].item<double>(), (12.0 - mean) / sd, 1e-9);
  EXPECT_NEAR(result.p_empirical[0][1].item<double>(), 1.0 / (M + 1), 1e-12);
  testing::expect_error([&] { score_selectivity(profile, {0, 1, 0}, null_values, 0.05); }, {"bin"});
}

TEST(Selectivity, AConstantNullIsNotTested) {
  // 0.1 is not exact in binary: a one-pass variance would leave a tiny positive rest.
  const auto null_values = torch::full({1, 40, 2}, 0.1, torch::kDouble);
  null_values.select(2, 1).copy_(torch::randn({1, 40}, at::detail::createCPUGenerator(2), torch::kDouble));
  const auto profile = torch::tensor({{0.1000001, 0.0}}, torch::kDouble);
  const auto result = score_selectivity(profile, {0}, null_values, 0.05);
  EXPECT_TRUE(std::isnan(result.z[0][0].item<double>()));
  EXPECT_FALSE(result.significant[0][0].item<bool>());
  EXPECT_TRUE(std::isfinite(result.z[0][1].item<double>()));
  EXPECT_EQ(result.label[0], -1);
}

TEST(PartSources, KMeansIsDeterministicAndNumbersClustersBySize) {
  ScratchDir dir("sweep-kmeans");
  const auto models = write_tiny_models(dir.path());
  const auto generator = Generator::load(models.generator, c10::Device(c10::kCPU));
  auto z = torch::randn({12, generator.z_dim()}, at::detail::createCPUGenerator(1));
  const auto w = generator.mapping(z, torch::arange(12) % 3, 0.7);
  const auto images = generator_to_classifier_range(generator.synthesis(w));
  const auto first = fit_kmeans_parts(generator, w, 4, 9);
  const auto second = fit_kmeans_parts(generator, w, 4, 9);
  const auto labels = first->label(images, w);
  EXPECT_TRUE(torch::equal(labels, second->label(images, w)));
  EXPECT_EQ(labels.sizes(), (std::vector<int64_t>{12, 16, 16}));
  EXPECT_EQ(first->part_names(), (std::vector<std::string>{"cluster 0", "cluster 1", "cluster 2", "cluster 3"}));
  const auto counts = torch::bincount(labels.flatten().to(torch::kLong), {}, 4);
  EXPECT_GE(counts[0].item<int64_t>(), counts[1].item<int64_t>());
  EXPECT_GE(counts[1].item<int64_t>(), counts[3].item<int64_t>());
  EXPECT_GT(counts[1].item<int64_t>(), 0);  // more than one part is found
  EXPECT_EQ(whole_image_parts()->label(images, w).sum().item<int64_t>(), 0);
}

TEST(PartSources, SegmenterFilesAreCheckedAndLabelAtTheImageSize) {
  ScratchDir dir("sweep-segmenter");
  auto module = build_unet_segmenter(ShapesWorld::part_names(), 1, 32);
  module.save((dir / "segmenter.pt").string());
  const auto parts = load_segmenter_parts(dir / "segmenter.pt", c10::Device(c10::kCPU));
  EXPECT_EQ(parts->part_names(), ShapesWorld::part_names());
  const auto labels = parts->label(torch::rand({2, 3, 16, 16}), torch::Tensor());
  EXPECT_EQ(labels.sizes(), (std::vector<int64_t>{2, 16, 16}));
  EXPECT_GE(labels.min().item<int>(), 0);
  EXPECT_LT(labels.max().item<int>(), int(ShapesWorld::part_names().size()));
  const auto tiny = write_tiny_models(dir / "tiny");
  testing::expect_error([&] { load_segmenter_parts(tiny.generator, c10::Device(c10::kCPU)); },
                        {"tiny_generator.pt", "segment"});
  testing::expect_error([&] { load_segmenter_parts(dir / "missing.pt", c10::Device(c10::kCPU)); }, {"missing.pt"});
}

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
  EXPECT_THROW(resumed.run(4), SweepInterrupted);
  EXPECT_THROW(resumed.run(3), SweepInterrupted);
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
  EXPECT_THROW(overlapped.run(5, Overlap::always), SweepInterrupted);
  {
    Database db(overlapped.config.results_database(), Database::Mode::open_existing);
    EXPECT_EQ(db.query_int("SELECT count(*) FROM null_directions"), 10);
    EXPECT_EQ(db.query_int("SELECT count(*) FROM units"), 0);
  }
  overlapped.run(-1, Overlap::always);
  EXPECT_EQ(table_contents(overlapped.config.results_database(), overlapped_dir.path()),
            table_contents(straight.config.results_database(), straight_dir.path()));
}

TEST(Sweep, OtherSettingsOrModelsAreAnErrorNamingTheDatabase) {
  ScratchDir dir("sweep-settings");
  auto study = make_sweep_study(dir.path());
  EXPECT_THROW(study.run(1), SweepInterrupted);
  study.config.sweep.steps = 4;
  testing::expect_error([&] { study.run(); }, {"results.sqlite", "other sweep settings"});
  study.config.sweep.steps = 3;
  study.config.sweep.min_gain = 0.5;  // thresholds only change the verdicts
  EXPECT_NO_THROW(study.run());
  study.config.sweep.units = {0, 3, 5, 64};
  testing::expect_error([&] { study.run(); }, {"study.toml", "unit 64"});
}

TEST(ResultsDatabase, CsvExportQuotesAndMarksNull) {
  ScratchDir dir("sweep-csv");
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

TEST(GroundTruth, ConceptsMapToTheFactorsThatMoveThem) {
  using Groups = std::vector<std::string>;
  EXPECT_EQ(concept_groups("cap", "hue"), Groups{"main_hue"});
  EXPECT_EQ(concept_groups("stem", "hue"), Groups{"secondary_hue"});
  EXPECT_EQ(concept_groups("background", "luminance"), Groups{"background_value"});
  EXPECT_EQ(concept_groups("wheel", "area"), (Groups{"scale", "class:car"}));
  EXPECT_EQ(concept_groups("stem", "area"), (Groups{"scale", "class:mushroom", "class:flower"}));
  EXPECT_EQ(concept_groups("background", "area"), Groups{"scale"});
  EXPECT_EQ(concept_groups("petal", "centre_x"), Groups{"position_x"});
  EXPECT_EQ(concept_groups("crown", "entropy"), Groups{"texture"});
  EXPECT_TRUE(concept_groups("background", "centre_x").empty());
  EXPECT_EQ(factor_group("proportion_b"), "proportion");
  EXPECT_EQ(factor_group("texture_frequency"), "texture");
  EXPECT_EQ(factor_group(class_factor("bird")), "class:bird");
  testing::expect_error([&] { concept_groups("wing tip", "hue"); }, {"wing tip"});
  testing::expect_error([&] { factor_group("class:dragon"); }, {"class:dragon"});
}

// The probe's columns: the shapes factors, then the class memberships.
int64_t probe_column(const std::string& name) {
  auto names = ShapesWorld::factor_names();
  for (const auto& c : ShapesWorld::class_names()) names.push_back(class_factor(c));
  return int64_t(std::find(names.begin(), names.end(), name) - names.begin());
}

// A probe whose unit d has the probe label labels[d], with correlation r.
UnitProbe labelled_probe(const std::vector<std::string>& labels, double r) {
  UnitProbe probe;
  probe.factor_names = ShapesWorld::factor_names();
  for (const auto& c : ShapesWorld::class_names()) probe.factor_names.push_back(class_factor(c));
  for (const auto& label : labels) {
    probe.best_factor.push_back(probe_column(label));
    probe.best_correlation.push_back(r);
  }
  return probe;
}

TEST(GroundTruth, AgreementIsComparedWithChance) {
  // Units 0-9: main_hue; 10-19: scale.
  std::vector<std::string> labels(10, "main_hue");
  labels.resize(20, "scale");
  const auto probe = labelled_probe(labels, 0.8);
  std::vector<LabelledUnit> right, swapped;
  for (int64_t d = 0; d < 20; ++d) {
    right.push_back({d, "cap", d < 10 ? "hue" : "area"});
    swapped.push_back({d, "cap", d < 10 ? "area" : "hue"});
  }
  const auto good = label_agreement(probe, right, 1, 2000);
  EXPECT_EQ(good.agreeing, 20);
  EXPECT_DOUBLE_EQ(good.chance, 0.5);  // both groups half the units
  EXPECT_LT(good.p_value, 0.001);
  const auto bad = label_agreement(probe, swapped, 1, 2000);
  EXPECT_EQ(bad.agreeing, 0);
  EXPECT_GT(bad.p_value, 0.99);
}

TEST(GroundTruth, PartAreasAgreeWithTheirClassesAndChanceCountsEveryGroup) {
  // Units 0-3 respond to birds, 4-7 to cars.
  std::vector<std::string> labels(4, "class:bird");
  labels.resize(8, "class:car");
  auto probe = labelled_probe(labels, 0.9);
  std::vector<LabelledUnit> right, crossed;
  for (int64_t d = 0; d < 8; ++d) {
    right.push_back({d, d < 4 ? "wing" : "wheel", "area"});
    crossed.push_back({d, d < 4 ? "wheel" : "wing", "area"});
  }
  const auto good = label_agreement(probe, right, 1, 2000);
  EXPECT_EQ(good.agreeing, 8);
  // Each sweep label accepts {scale, its class}; a random pairing matches the class half the time.
  EXPECT_DOUBLE_EQ(good.chance, 0.5);
  EXPECT_LT(good.p_value, 0.05);
  EXPECT_EQ(label_agreement(probe, crossed, 1, 2000).agreeing, 0);
  // Within-class factors only: every unit's strongest factor is scale, which any part's area reflects.
  probe.correlation = torch::zeros({8, 17 + 6}, torch::kDouble);
  for (int64_t d = 0; d < 8; ++d) {
    probe.correlation[d][17 + (d < 4 ? 2 : 1)] = 0.9;
    probe.correlation[d][probe_column("scale")] = -0.3;
    probe.correlation[d][probe_column("main_hue")] = 0.2;
  }
  const auto factors_only = label_agreement(probe, crossed, 1, 2000, true);
  EXPECT_EQ(factors_only.agreeing, 8);
  EXPECT_EQ(factors_only.per_unit[0]["probe_factor"], "scale");
  EXPECT_EQ(factors_only.per_unit[0]["probe_correlation"], -0.3);
}

TEST(GroundTruth, FactorSignalFindsAPlantedRelationAndNotNoise) {
  const int64_t D = 200;
  const auto& factors = measured_factors();
  torch::manual_seed(3);
  UnitProbe probe;
  probe.partial = torch::randn({D, 17}, torch::kDouble);
  probe.feature_sd = torch::rand({D}, torch::kDouble) + 0.5;
  SweepFactorChanges changes;
  changes.range = torch::rand({D}, torch::kDouble) + 0.5;
  changes.change = torch::randn({D, int64_t(factors.size())}, torch::kDouble);
  const int64_t planted = 9, column = 12;  // background_value, measured as the background's luminance
  ASSERT_EQ(factors[planted].factor, "background_value");
  ASSERT_EQ(ShapesWorld::factor_names()[column], "background_value");
  const auto predicted = probe.partial.select(1, column) * changes.range / probe.feature_sd;
  changes.change.select(1, planted).copy_(0.5 * predicted + 0.05 * torch::randn({D}, torch::kDouble));
  changes.change[7][planted] = NAN;  // not measured for one unit: left out
  changes.range[8] = NAN;            // not swept: left out
  const auto signal = factor_signal(probe, changes, 1, 500);
  ASSERT_EQ(signal.size(), factors.size());
  EXPECT_EQ(signal[planted].units, D - 2);
  EXPECT_EQ(signal[planted].measured_as, "background luminance");
  EXPECT_GT(signal[planted].correlation, 0.95);
  EXPECT_LT(signal[planted].p_value, 0.01);
  EXPECT_LT(std::abs(signal[0].correlation), 0.3);  // position_x: pure noise
  EXPECT_GT(signal[0].p_value, 0.001);
}

TEST(GroundTruth, SweepFactorChangesUseEachSamplesOwnClassParts) {
  ScratchDir dir("factor-changes");
  Database db(dir.path() / "results.sqlite", Database::Mode::create_or_open);
  db.execute(
      "CREATE TABLE samples (sample INTEGER PRIMARY KEY, generator_class INTEGER, classifier_class INTEGER);"
      "CREATE TABLE units (unit INTEGER PRIMARY KEY, range_min REAL, range_max REAL);"
      "CREATE TABLE part_metrics (unit INTEGER, sample INTEGER, step INTEGER, part INTEGER, area REAL, luminance REAL,"
      " entropy REAL, centre_x REAL, centre_y REAL, major_axis REAL, minor_axis REAL, angle REAL, eccentricity REAL,"
      " hue REAL, saturation REAL);"
      "INSERT INTO samples VALUES (0, 0, 0), (1, 1, 1);"  // a mushroom (main part: cap) and a car (car body)
      "INSERT INTO units VALUES (3, 0.5, 2.5);");
  Database::Statement row(db,
                          "INSERT INTO part_metrics VALUES (3, ?, ?, ?, 100, ?, 1, 16, 16, 8, 4, 10, 0.5, 30, 0.5)");
  const auto add = [&](int64_t sample, int64_t step, int64_t part, double luminance) {
    row.bind(1, sample).bind(2, step).bind(3, part).bind(4, luminance);
    row.run();
  };
  for (int64_t step = 0; step < 3; ++step) {
    add(0, step, 0, 40);                // background, unchanged
    add(0, step, 1, 20 + 8.5 * step);   // cap: +17 = +0.2 of 85
    add(0, step, 3, 60 - 17 * step);    // car body in a mushroom sample: not its class's part
    add(1, step, 0, 40 + 8.5 * step);   // background: +0.2
    add(1, step, 3, 10 + 25.5 * step);  // car body: +0.6
  }
  const auto changes = sweep_factor_changes(db, 5, 32);
  const auto& factors = measured_factors();
  const auto index = [&](const std::string& name) {
    return int64_t(std::find_if(factors.begin(), factors.end(), [&](const auto& f) { return f.factor == name; }) -
                   factors.begin());
  };
  EXPECT_NEAR(changes.change[3][index("main_value")].item<double>(), (0.2 + 0.6) / 2, 1e-9);
  EXPECT_NEAR(changes.change[3][index("background_value")].item<double>(), (0.0 + 0.2) / 2, 1e-9);
  EXPECT_TRUE(std::isnan(changes.change[3][index("secondary_value")].item<double>()));  // no stem, no window
  EXPECT_TRUE(std::isnan(changes.change[2][index("main_value")].item<double>()));       // unit 2 not swept
  EXPECT_DOUBLE_EQ(changes.range[3].item<double>(), 2.0);
  EXPECT_TRUE(std::isnan(changes.range[0].item<double>()));
}

int64_t measured_factor_index(const std::string& name) {
  const auto& factors = measured_factors();
  return int64_t(std::find_if(factors.begin(), factors.end(), [&](const auto& f) { return f.factor == name; }) -
                 factors.begin());
}

TEST(GroundTruth, ConceptLevelsReadEachImagesOwnClassParts) {
  const auto part = [](int id, double area, double luminance, double hue, double saturation) {
    PartMeasures m;
    m.part = id, m.area = area, m.luminance = luminance, m.hue_degrees = hue, m.saturation = saturation;
    m.centre_x = 8, m.centre_y = 24, m.angle_degrees = 170;
    return m;
  };
  // A mushroom (cap 1, stem 2) and a car (body 3, window 5, whose window is under 20 px at 128^2 -> 1.25 px at 32^2).
  const std::vector<std::vector<PartMeasures>> parts = {
      {part(0, 600, 42.5, 200, 0.5), part(1, 300, 17, 350, 0.6), part(2, 100, 68, 30, 0.05)},
      {part(0, 700, 8.5, 10, 0.2), part(3, 200, 34, 120, 0.9), part(5, 1, 85, 0, 0.9)}};
  const auto levels = concept_levels(parts, torch::tensor({0, 1}, torch::kLong), 32);
  ASSERT_EQ(levels.sizes(), (std::vector<int64_t>{2, int64_t(measured_factors().size())}));
  const auto at = [&](int64_t image, const std::string& factor) {
    return levels[image][measured_factor_index(factor)].item<double>();
  };
  EXPECT_DOUBLE_EQ(at(0, "main_value"), 0.2);        // the cap's luminance / 85
  EXPECT_DOUBLE_EQ(at(0, "scale"), 300.0 / 1024.0);  // the cap's share of the image
  EXPECT_DOUBLE_EQ(at(0, "main_hue"), 350);
  EXPECT_DOUBLE_EQ(at(0, "position_x"), 0.25);
  EXPECT_DOUBLE_EQ(at(0, "position_y"), 0.75);
  EXPECT_DOUBLE_EQ(at(0, "rotation"), 170);
  EXPECT_DOUBLE_EQ(at(0, "secondary_value"), 0.8);  // the stem
  EXPECT_TRUE(std::isnan(at(0, "secondary_hue")));  // the stem is grey
  EXPECT_DOUBLE_EQ(at(0, "background_value"), 0.5);
  EXPECT_DOUBLE_EQ(at(1, "main_value"), 0.4);  // the car body, not the cap
  EXPECT_DOUBLE_EQ(at(1, "main_saturation"), 0.9);
  EXPECT_TRUE(std::isnan(at(1, "secondary_value")));  // the window is too small
  EXPECT_DOUBLE_EQ(at(1, "background_value"), 0.1);
  testing::expect_error([&] { concept_levels(parts, torch::tensor({0, 6}, torch::kLong), 32); }, {"class 6"});
}

TEST(GroundTruth, ConceptProbeFindsAPlantedUnitOnTheHueCircle) {
  const int64_t n = 600, D = 12;
  torch::manual_seed(4);
  const auto features = torch::rand({n, D}, torch::kDouble);
  const auto classes = torch::arange(n, torch::kLong).remainder(6);
  auto levels = torch::randn({n, int64_t(measured_factors().size())}, torch::kDouble);
  // Unit 3 drives the main part's hue; in class 0 the hues straddle 0 degrees.
  const int64_t hue = measured_factor_index("main_hue");
  const auto offset =
      torch::where(classes == 0, torch::full({n}, 350.0, torch::kDouble), classes.to(torch::kDouble) * 50);
  const auto degrees = offset + 30 * features.select(1, 3) + torch::randn({n}, torch::kDouble);
  levels.select(1, hue).copy_(degrees.remainder(360));
  levels[5][hue] = NAN;  // not measured on one image: left out
  const auto probe = probe_concept_levels(features, levels, classes);
  ASSERT_EQ(probe.partial.sizes(), (std::vector<int64_t>{D, int64_t(measured_factors().size())}));
  EXPECT_EQ(probe.images[size_t(hue)], n - 1);
  EXPECT_EQ(probe.images[0], n);
  EXPECT_EQ(probe.partial.select(1, hue).argmax().item<int64_t>(), 3);
  EXPECT_GT(probe.partial[3][hue].item<double>(), 0.9);  // without the circular centring class 0 breaks it
  EXPECT_LT(probe.partial.select(1, 0).abs().max().item<double>(), 0.2);  // noise
  EXPECT_NEAR(probe.feature_sd[0].item<double>(), std::sqrt(1.0 / 12.0), 0.02);
}

TEST(GroundTruth, ChainComparesEachLinkOverUnits) {
  const int64_t D = 150;
  const int64_t F = int64_t(measured_factors().size());
  torch::manual_seed(5);
  UnitProbe truth;
  truth.partial = torch::randn({D, 17}, torch::kDouble);
  truth.feature_sd = torch::rand({D}, torch::kDouble) + 0.5;
  ConceptProbe rendered, generated;
  rendered.partial = torch::randn({D, F}, torch::kDouble);
  const int64_t background = measured_factor_index("background_value");
  rendered.partial.select(1, background).copy_(truth.partial.select(1, 12) * 2);  // measured faithfully
  generated.partial = torch::randn({D, F}, torch::kDouble);                       // a generator of another world
  generated.feature_sd = torch::rand({D}, torch::kDouble) + 0.5;
  SweepFactorChanges changes;
  changes.range = torch::rand({D}, torch::kDouble) + 0.5;
  changes.change =
      (generated.partial * (changes.range / generated.feature_sd).unsqueeze(1)).clone();  // faithful sweeps
  ConceptProbe replicate = rendered;
  replicate.partial = rendered.partial + 0.1 * torch::randn({D, F}, torch::kDouble);
  const auto chain = factor_chain(truth, rendered, generated, replicate, generated, changes, 2, 300);
  ASSERT_EQ(chain.size(), size_t(F));
  const auto& link = chain[size_t(background)];
  EXPECT_EQ(link.measured_as, "background luminance");
  EXPECT_NEAR(link.measurement.correlation, 1.0, 1e-9);
  EXPECT_LT(link.measurement.p_value, 0.01);
  EXPECT_LT(std::abs(link.generator.correlation), 0.3);
  EXPECT_NEAR(link.sweep.correlation, 1.0, 1e-9);
  EXPECT_EQ(link.sweep.units, D);
  EXPECT_LT(std::abs(link.end_to_end.correlation), 0.3);
  const auto signal = factor_signal(truth, changes, 2, 300);
  EXPECT_EQ(link.end_to_end.correlation, signal[size_t(background)].correlation);
  EXPECT_EQ(link.end_to_end.p_value, signal[size_t(background)].p_value);
  EXPECT_GT(link.rendered_reliability.correlation, 0.95);
  EXPECT_LT(link.rendered_reliability.correlation, 1.0);
  EXPECT_NEAR(link.generated_reliability.correlation, 1.0, 1e-9);
  generated.partial = generated.partial.slice(0, 0, D - 1);
  testing::expect_error([&] { factor_chain(truth, rendered, generated, replicate, replicate, changes, 2, 10); },
                        {"differ"});
}

TEST(Sweep, MeasuredImagesDoNotDependOnTheBatch) {
  const torch::NoGradGuard no_grad;
  const auto classifier =
      Classifier::load(fs::path(LINKSTYLE_SOURCE_DIR) / "models/shapes/classifier.pt", c10::Device(c10::kCPU));
  const auto segmenter =
      load_segmenter_parts(fs::path(LINKSTYLE_SOURCE_DIR) / "models/shapes/segmenter.pt", c10::Device(c10::kCPU));
  const auto batch = ShapesWorld(32).render_class_balanced(10, 3);
  const auto whole = measure_images(classifier, *segmenter, batch.images, 10);
  const auto split = measure_images(classifier, *segmenter, batch.images, 3);
  EXPECT_TRUE(torch::allclose(whole.features, classifier.features(batch.images), 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(whole.features, split.features, 1e-5, 1e-5));
  ASSERT_EQ(whole.parts.size(), 10u);
  for (size_t i = 0; i < whole.parts.size(); ++i) {
    ASSERT_EQ(whole.parts[i].size(), split.parts[i].size());
    ASSERT_FALSE(whole.parts[i].empty());
    for (size_t k = 0; k < whole.parts[i].size(); ++k) {
      EXPECT_EQ(whole.parts[i][k].part, split.parts[i][k].part);
      EXPECT_EQ(whole.parts[i][k].area, split.parts[i][k].area);
    }
  }
  EXPECT_FALSE(whole.images.defined());
  ScratchDir dir("measure-images");
  const auto study = make_sweep_study(dir.path());
  const auto tuning = make_tuning_set(study.config, study.classifier, study.generator, study.network);
  const auto kmeans = fit_kmeans_parts(study.generator, tuning.latents, 3, 5);
  testing::expect_error([&] { measure_images(classifier, *kmeans, batch.images, 4); }, {"kmeans", "latents"});
}

TEST(GroundTruth, ProbeCorrelatesWithinClasses) {
  const auto classifier =
      Classifier::load(fs::path(LINKSTYLE_SOURCE_DIR) / "models/shapes/classifier.pt", c10::Device(c10::kCPU));
  const int64_t images = 120;
  const auto probe = probe_shapes_units(classifier, images, 5, 32, 50);
  ASSERT_EQ(probe.correlation.sizes(), (std::vector<int64_t>{classifier.feature_dim(), 17 + 6}));
  EXPECT_EQ(std::vector<std::string>(probe.factor_names.begin(), probe.factor_names.begin() + 17),
            ShapesWorld::factor_names());
  EXPECT_EQ(probe.factor_names[17 + 2], "class:bird");
  EXPECT_LE(probe.correlation.abs().max().item<double>(), 1.0 + 1e-9);
  // One (unit, factor) pair recomputed by hand: per-class z-scores of both, then their mean product.
  const torch::NoGradGuard no_grad;
  const auto batch = ShapesWorld(32).render_class_balanced(images, 5);
  const auto r = classifier.features(batch.images).to(torch::kDouble);
  int64_t unit = 0;
  while (r.select(1, unit).std().item<double>() == 0) ++unit;  // a unit that varies
  const int64_t factor = 6;                                    // main_hue
  double sum = 0;
  for (int64_t c = 0; c < 6; ++c) {
    const auto rows = (batch.labels == c).nonzero().squeeze(1);
    auto x = r.select(1, unit).index_select(0, rows);
    auto y = batch.factors.select(1, factor).to(torch::kDouble).index_select(0, rows);
    const double sx = x.std().item<double>(), sy = y.std().item<double>();
    if (sx > 1e-12 && sy > 1e-12) sum += (((x - x.mean()) / sx) * ((y - y.mean()) / sy)).sum().item<double>();
  }
  EXPECT_NEAR(probe.correlation[unit][factor].item<double>(), sum / double(images), 1e-6);
  // Class membership: the plain Pearson correlation with the bird indicator over all images.
  const auto x = r.select(1, unit), y = (batch.labels == 2).to(torch::kDouble);
  const double pearson =
      (((x - x.mean()) / x.std()) * ((y - y.mean()) / y.std())).sum().item<double>() / double(images);
  EXPECT_NEAR(probe.correlation[unit][17 + 2].item<double>(), pearson, 1e-6);
  // Partial effects solve the ridge normal equations on the within-class standardised data, and
  // the unit SD pools the within-class variances.
  auto zr = torch::zeros_like(r), zf = torch::zeros({images, 17}, torch::kDouble);
  auto pooled = torch::zeros({r.size(1)}, torch::kDouble);
  for (int64_t c = 0; c < 6; ++c) {
    const auto rows = (batch.labels == c).nonzero().squeeze(1);
    const auto x = r.index_select(0, rows), y = batch.factors.to(torch::kDouble).index_select(0, rows);
    const auto sx = x.std(0, true, true), sy = y.std(0, true, true);
    zr.index_copy_(0, rows,
                   torch::where(sx > 1e-12, (x - x.mean(0, true)) / sx.clamp_min(1e-12), torch::zeros_like(x)));
    zf.index_copy_(0, rows,
                   torch::where(sy > 1e-12, (y - y.mean(0, true)) / sy.clamp_min(1e-12), torch::zeros_like(y)));
    pooled += x.var(0, true) * double(rows.numel());
  }
  const auto lhs =
      (zr.t().matmul(zr) / double(images) + 1e-2 * torch::eye(r.size(1), torch::kDouble)).matmul(probe.partial);
  EXPECT_LT((lhs - zr.t().matmul(zf) / double(images)).abs().max().item<double>(), 1e-8);
  EXPECT_NEAR(probe.feature_sd[unit].item<double>(), std::sqrt(pooled[unit].item<double>() / double(images)), 1e-9);
  EXPECT_EQ(probe.best_factor[unit], probe.correlation[unit].abs().argmax().item<int64_t>());
  testing::expect_error([&] { probe_shapes_units(classifier, 5, 1, 32); }, {"probe", "12"});
}

}  // namespace
}  // namespace linkstyle
