// Tests for the ground-truth check (ground_truth.hpp): probes, agreement against chance, the chain.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "linkstyle/concept_changes.hpp"
#include "linkstyle/ground_truth.hpp"
#include "linkstyle/part_sources.hpp"
#include "linkstyle/results_database.hpp"
#include "linkstyle/sqlite_database.hpp"
#include "linkstyle/worlds/shapes.hpp"
#include "test_support.hpp"

namespace linkstyle {
namespace {

namespace fs = std::filesystem;
using testing::ScratchDir;

TEST(GroundTruth, ConceptsMapToTheFactorsThatMoveThem) {
  using Groups = std::vector<std::string>;
  EXPECT_EQ(concept_groups("cap", "hue"), Groups{"main_hue"});
  EXPECT_EQ(concept_groups("stem", "hue"), Groups{"secondary_hue"});
  EXPECT_EQ(concept_groups("background", "luminance"), Groups{"background_value"});
  EXPECT_EQ(concept_groups("wheel", "area"), (Groups{"scale", "class:car"}));
  EXPECT_EQ(concept_groups("stem", "area"), (Groups{"scale", "class:mushroom", "class:flower"}));
  EXPECT_EQ(concept_groups("background", "area"), Groups{"scale"});
  EXPECT_EQ(concept_groups("petal", "centre_x"), Groups{"position_x"});
  EXPECT_EQ(concept_groups("crown", "texture"), Groups{"texture"});
  EXPECT_TRUE(concept_groups("crown", "entropy").empty());  // edges and shading, not the stripes
  EXPECT_EQ(concept_groups("background", "entropy"), Groups{"background_gradient"});
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

TEST(GroundTruth, ProfileIdentificationRanksEachUnitsOwnProfile) {
  // Predicted profiles of 3 units over 2 factors; the measured ones swap units 0 and 1, and a
  // fourth unit was never measured (left out).
  const auto predicted = torch::tensor({1.0, 0.0, 0.0, 1.0, -1.0, -1.0, 2.0, 2.0}, torch::kDouble).reshape({4, 2});
  const auto measured = torch::tensor({0.0, 1.0, 1.0, 0.0, -1.0, -1.0, double(NAN), double(NAN)}, torch::kDouble).reshape({4, 2});
  const auto id = identify_profiles(predicted, measured, 1, 200);
  EXPECT_EQ(id.units, 3);
  EXPECT_EQ(id.unit, (std::vector<int64_t>{0, 1, 2}));
  // Standardised over the 3 units, unit 0's measured (0, 1) has cosine 0 with its own (1, 0),
  // 1 with unit 1's and -1/sqrt(2) with unit 2's: rank 2; unit 1 alike; unit 2 is first.
  EXPECT_EQ(id.rank, (std::vector<int64_t>{2, 2, 1}));
  EXPECT_NEAR(id.top1, 1.0 / 3.0, 1e-12);
  EXPECT_NEAR(id.top10, 1.0, 1e-12);
  EXPECT_DOUBLE_EQ(id.median_rank, 2.0);
  EXPECT_NEAR(id.chance_top1, 1.0 / 3.0, 1e-12);
  EXPECT_NEAR(id.chance_top10, 1.0, 1e-12);
  EXPECT_DOUBLE_EQ(id.chance_median_rank, 2.0);
  // A NaN entry counts as the factor's mean (0 after standardising): unit 2's (NaN, -1) still
  // points away from the others.
  auto partly = measured.clone();
  partly[2][0] = NAN;
  EXPECT_EQ(identify_profiles(predicted, partly, 1, 10).rank[2], 1);

  // Many units: profiles measured with noise are found far above chance; unrelated ones are not.
  torch::manual_seed(5);
  const auto truth = torch::randn({60, 12}, torch::kDouble);
  const auto found = identify_profiles(truth, truth + 0.3 * torch::randn({60, 12}, torch::kDouble), 2, 500);
  EXPECT_GT(found.top1, 0.8);
  EXPECT_LE(found.median_rank, 1.5);
  EXPECT_LT(found.p_top1, 0.01);
  EXPECT_LT(found.p_median_rank, 0.01);
  const auto noise = identify_profiles(truth, torch::randn({60, 12}, torch::kDouble), 2, 500);
  EXPECT_LT(noise.top1, 0.1);
  EXPECT_GT(noise.median_rank, 15);
  EXPECT_GT(noise.p_median_rank, 0.01);
  testing::expect_error([&] { identify_profiles(truth, torch::zeros({3, 12}), 1); }, {"differ in their units"});
}

TEST(GroundTruth, PairedAgreementCountsExpectedMatchesOverAllPairings) {
  // Unit 0's concept reflects scale (and the mushroom), unit 1's nothing, unit 2's main_hue.
  const std::vector<std::vector<std::string>> concepts = {{"scale", "class:mushroom"}, {}, {"main_hue"}};
  const auto paired = paired_group_agreement(concepts, {"scale", "scale", "main_hue"}, 1, 3000);
  EXPECT_EQ(paired.agreeing, 2);
  // Pairings that agree: (0, 0), (0, 1), (2, 2): 3 of 9, i.e. 1 of the 3 units expected.
  EXPECT_NEAR(paired.expected, 1.0, 1e-12);
  // Of the 6 orders, the identity and the one swapping units 0 and 1 keep both matches.
  EXPECT_NEAR(paired.p_value, 2.0 / 6.0, 0.03);
}

TEST(GroundTruth, SweepFactorChangesUseEachSamplesOwnClassParts) {
  ScratchDir dir("factor-changes");
  const fs::path file = dir.path() / "results.sqlite";
  { ResultsDatabase created(file, ResultsDatabase::Mode::create_or_open); }  // the schema
  Database db(file, Database::Mode::open_existing);
  db.execute(
      "INSERT INTO samples VALUES (0, 0, 0), (1, 1, 1);"  // a mushroom (main part: cap) and a car (car body)
      "INSERT INTO units (unit, range_min, range_max) VALUES (3, 0.5, 2.5);");
  Database::Statement row(db,
                          "INSERT INTO part_metrics VALUES (3, ?, ?, ?, 100, ?, 1, 16, 16, 8, 4, 10, 0.5, 30, 0.5, 0.1)");
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
  ResultsDatabase results(file, ResultsDatabase::Mode::open_existing);
  const auto changes = sweep_factor_changes(results, 5, 32);
  const auto& factors = measured_factors();
  const auto index = [&](const std::string& name) {
    return int64_t(std::find_if(factors.begin(), factors.end(), [&](const auto& f) { return f.factor == name; }) -
                   factors.begin());
  };
  EXPECT_NEAR(changes.change[3][index("main_value")].item<double>(), (0.2 + 0.6) / 2, 1e-9);
  EXPECT_NEAR(changes.even_samples[3][index("main_value")].item<double>(), 0.2, 1e-9);  // sample 0
  EXPECT_NEAR(changes.odd_samples[3][index("main_value")].item<double>(), 0.6, 1e-9);   // sample 1
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
  // Split halves: the same change plus independent noise, so the sweep replicates closely.
  changes.even_samples = changes.change + 0.05 * torch::randn({D, F}, torch::kDouble);
  changes.odd_samples = changes.change + 0.05 * torch::randn({D, F}, torch::kDouble);
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
  EXPECT_GT(link.sweep_reliability.correlation, 0.9);
  EXPECT_EQ(link.sweep_reliability.units, D);
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
