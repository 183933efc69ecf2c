// Tests of counterfactuals (counterfactual.hpp): the paper's update, the sparse proximal step,
// batches that match one sample at a time, the image-domain check, resumption, user images and
// bad input.
#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "linkstyle/counterfactual.hpp"
#include "linkstyle/errors.hpp"
#include "linkstyle/generation.hpp"
#include "linkstyle/image_files.hpp"
#include "linkstyle/sqlite_database.hpp"
#include "linkstyle/study_lock.hpp"
#include "cli_support.hpp"
#include "sweep_study.hpp"
#include "test_support.hpp"

namespace linkstyle {
namespace {

namespace fs = std::filesystem;
using namespace linkstyle::testing;

// A tiny study with small counterfactual settings.
SweepStudy counterfactual_study(const fs::path& folder) {
  auto study = make_sweep_study(folder);
  auto& k = study.config.counterfactual;
  k.samples = 6;
  k.batch_size = 4;
  k.max_steps = 40;
  k.path_points = 5;
  k.top_units = 3;
  return study;
}

CounterfactualSummary explain(const SweepStudy& study, const std::string& from, const std::string& to,
                              int64_t stop_after_batches = -1, bool fresh = false) {
  CounterfactualRunOptions options;
  options.progress = false;
  options.stop_requested = stop_after(stop_after_batches);
  return run_counterfactuals(study.config, {study.classifier, study.generator, study.network},
                             study.config.linking_file(), {from, to, {}, fresh}, options);
}

std::map<std::string, std::string> counterfactual_tables(const fs::path& database, const fs::path& scratch) {
  Database db(database, Database::Mode::open_existing);
  std::map<std::string, std::string> contents;
  for (const std::string table :
       {"counterfactuals", "counterfactual_paths", "counterfactual_units"}) {
    const fs::path file = scratch / (table + ".csv");
    export_csv(db, table, file);
    contents[table] = bytes_of(file);
  }
  return contents;
}

TEST(Counterfactual, OneStepOfThePaperFollowsTheGradientOfItsLoss) {
  ScratchDir dir("cf-step");
  auto study = counterfactual_study(dir.path());
  auto settings = study.config.counterfactual;
  settings.max_steps = 1;
  settings.cosine_weight = 0.0;  // the head's logits alone: a finite difference checks the step
  const auto samples = generate_and_encode(study.generator, study.classifier, 3, 0, 0, 2, 0.7);
  const auto r = samples.features;
  const auto s0 = initial_shifts(0, {0, 1}, r.size(1));
  const auto result = optimise_shifts({study.classifier, study.generator, study.network}, r, 0, 1, s0, settings);
  const auto loss = [&](const torch::Tensor& s) {
    const auto logits = study.classifier.head(r - s).to(torch::kDouble);
    return (-logits.select(1, 1) + 0.6 * logits.select(1, 0)).sum().item<double>();
  };
  const double h = 1e-2;
  for (int64_t unit : {0, 5, 17}) {
    auto plus = s0.clone(), minus = s0.clone();
    plus[0][unit] += h;
    minus[0][unit] -= h;
    const double gradient = (loss(plus) - loss(minus)) / (2 * h);
    EXPECT_NEAR(result.shift[0][unit].item<double>(), s0[0][unit].item<double>() - 0.5 * gradient, 2e-3) << unit;
  }
  EXPECT_EQ(result.steps[0].item<int64_t>(), 1);
  EXPECT_EQ(result.checks, 1);
}

TEST(Counterfactual, FromAZeroStartTheFirstStepIsTheHeadsGradientAlone) {
  ScratchDir dir("cf-zero");
  auto study = counterfactual_study(dir.path());
  auto settings = study.config.counterfactual;
  settings.max_steps = 1;  // the cosine is at its maximum at s = 0: its gradient vanishes there
  const auto r = generate_and_encode(study.generator, study.classifier, 3, 1, 0, 2, 0.7).features;
  const auto zero = torch::zeros_like(r);
  const auto result = optimise_shifts({study.classifier, study.generator, study.network}, r, 1, 2, zero, settings);
  const auto loss = [&](const torch::Tensor& s) {
    const auto logits = study.classifier.head(r - s).to(torch::kDouble);
    return (-logits.select(1, 2) + 0.6 * logits.select(1, 1)).sum().item<double>();
  };
  const double h = 1e-2;
  for (int64_t unit : {1, 8, 30}) {
    auto plus = zero.clone(), minus = zero.clone();
    plus[1][unit] += h;
    minus[1][unit] -= h;
    EXPECT_NEAR(result.shift[1][unit].item<double>(), -0.5 * (loss(plus) - loss(minus)) / (2 * h), 2e-3) << unit;
  }
}

TEST(Counterfactual, BatchesMatchOneSampleAtATimeAndSuccessMeansTheImageIsTheTarget) {
  ScratchDir dir("cf-batch");
  auto study = counterfactual_study(dir.path());
  const CounterfactualModels models{study.classifier, study.generator, study.network};
  auto settings = study.config.counterfactual;
  settings.max_steps = 200;
  const auto samples = generate_and_encode(study.generator, study.classifier, 4, 0, 0, 5, 0.7);
  const auto s0 = initial_shifts(9, {0, 1, 2, 3, 4}, samples.features.size(1));
  const auto batched = optimise_shifts(models, samples.features, 0, 2, s0, settings);
  int64_t successes = 0;
  for (int64_t i = 0; i < 5; ++i) {
    const auto alone = optimise_shifts(models, samples.features.slice(0, i, i + 1), 0, 2, s0.slice(0, i, i + 1), settings);
    EXPECT_EQ(alone.steps[0].item<int64_t>(), batched.steps[i].item<int64_t>()) << i;
    EXPECT_EQ(alone.success[0].item<bool>(), batched.success[i].item<bool>()) << i;
    EXPECT_LT((alone.shift[0] - batched.shift[i]).abs().max().item<double>(), 1e-4) << i;
    // A success is checked here independently: the image of relu(r - s) is classified as the target.
    const torch::NoGradGuard no_grad;
    const auto image = render_latents(study.generator,
                                      study.network.apply(torch::relu(samples.features[i] - batched.shift[i]).unsqueeze(0)));
    const int64_t verdict = study.classifier.head(encode_images(study.classifier, image)).argmax(1).item<int64_t>();
    if (batched.success[i].item<bool>()) {
      EXPECT_EQ(verdict, 2) << i;
      successes += 1;
    } else {
      EXPECT_EQ(batched.steps[i].item<int64_t>(), settings.max_steps);
    }
  }
  EXPECT_GT(successes, 0) << "no sample reached the target: the test shows nothing";
}

TEST(Counterfactual, SparseShiftsAreCarriedByFewerUnits) {
  ScratchDir dir("cf-sparse");
  auto study = counterfactual_study(dir.path());
  const CounterfactualModels models{study.classifier, study.generator, study.network};
  auto settings = study.config.counterfactual;
  const auto samples = generate_and_encode(study.generator, study.classifier, 5, 0, 0, 4, 0.7);
  const auto s0 = initial_shifts(0, {0, 1, 2, 3}, samples.features.size(1));
  settings.max_steps = 1;
  const auto paper = optimise_shifts(models, samples.features, 0, 1, s0, settings);
  EXPECT_EQ(paper.shift.ne(0).sum().item<int64_t>(), paper.shift.numel());  // dense from its start
  // One sparse step is the paper's step soft-thresholded at step_size * sparsity_weight; a
  // threshold at the median magnitude zeroes half the units.
  const double threshold = paper.shift.abs().median().item<double>();
  settings.method = "sparse";
  settings.sparsity_weight = threshold / settings.step_size;
  const auto sparse = optimise_shifts(models, samples.features, 0, 1, s0, settings);
  const auto expected = paper.shift.sign() * (paper.shift.abs() - threshold).clamp_min(0.0);
  EXPECT_LT((sparse.shift - expected).abs().max().item<double>(), 1e-5);
  EXPECT_LE(sparse.shift.ne(0).sum().item<int64_t>(), paper.shift.numel() / 2);
  settings.method = "adam";
  const auto adam = optimise_shifts(models, samples.features, 0, 1, s0, settings);
  EXPECT_TRUE(torch::isfinite(adam.shift).all().item<bool>());
  EXPECT_FALSE(torch::equal(adam.shift, paper.shift));
}

TEST(Counterfactual, RealismIsTheNeighbourDistanceOverTheReferencesOwn) {
  // References on a line 0, 1, ..., 19: each one's 2 nearest others are at distance 1 (the ends:
  // 1 and 2), so the median neighbour distance is 1; a point at 100 is 81 and 82 away.
  auto references = torch::zeros({20, 3});
  for (int64_t i = 0; i < 20; ++i) references[i][0] = double(i);
  const auto reference = RealismReference::of(references, 2, 0.95);
  EXPECT_DOUBLE_EQ(reference.median_distance, 1.0);
  EXPECT_GE(reference.threshold, 1.0);
  EXPECT_LE(reference.threshold, 1.5);
  auto x = torch::zeros({2, 3});
  x[0][0] = 4.5;  // between two references: 0.5 from each
  x[1][0] = 100.0;
  const auto ratios = reference.ratios(x);
  EXPECT_NEAR(ratios[0].item<double>(), 0.5, 1e-9);
  EXPECT_NEAR(ratios[1].item<double>(), 81.5, 1e-9);
  expect_error([&] { RealismReference::of(references.slice(0, 0, 3), 2, 0.95); }, {"realism reference", "4"});
  auto broken = references.clone();
  broken[3][1] = NAN;
  expect_error([&] { RealismReference::of(broken, 2, 0.95); }, {"realism reference", "NaN"});
}

TEST(Counterfactual, ARealisticStepProjectsOntoTheMarginInTheWithinClassMetric) {
  ScratchDir dir("cf-realistic-step");
  auto study = counterfactual_study(dir.path());
  auto settings = study.config.counterfactual;
  settings.method = "realistic";
  settings.max_steps = 1;
  const auto geometry = class_geometry(study.config, study.classifier, 1, true);
  const auto terms = geometry.terms_for(0, 1);
  const double rho = settings.realism_weight / (settings.realism_weight + settings.proximity_weight);
  const auto r = generate_and_encode(study.generator, study.classifier, 3, 0, 0, 2, 0.7).features;
  const auto start = (rho * terms.class_shift).unsqueeze(0).expand_as(r).to(torch::kDouble);
  // The margin z_1 - max_{k != 1} z_k at relu(r - s), and its gradient in s by central differences.
  const auto margin = [&](const torch::Tensor& s) {
    const auto logits = study.classifier.head(torch::relu(r - s.to(torch::kFloat32))).to(torch::kDouble);
    auto others = logits.clone();
    others.select(1, 1).fill_(-INFINITY);
    return logits.select(1, 1) - std::get<0>(others.max(1));
  };
  // A margin goal beyond where both rows start: the first step must project.
  settings.margin = margin(start).max().item<double>() + 20.0;
  const auto result = optimise_shifts({study.classifier, study.generator, study.network}, r, 0, 1,
                                      torch::zeros_like(r), settings, &terms);
  const int64_t D = r.size(1);
  const double h = 1e-3;
  for (int64_t row = 0; row < 2; ++row) {
    auto gradient = torch::zeros({D}, torch::kDouble);
    for (int64_t unit = 0; unit < D; ++unit) {
      auto plus = start.clone(), minus = start.clone();
      plus[row][unit] += h;
      minus[row][unit] -= h;
      gradient[unit] = (margin(plus)[row] - margin(minus)[row]).item<double>() / (2 * h);
    }
    const auto step = result.shift[row].to(torch::kDouble) - start[row];
    const auto expected = terms.covariance.to(torch::kDouble).matmul(gradient);
    EXPECT_GT(torch::cosine_similarity(step, expected, 0).item<double>(), 0.999) << row;
    // The linearised margin reaches the goal exactly.
    const double reached = margin(start)[row].item<double>() + (gradient * step).sum().item<double>();
    EXPECT_NEAR(reached, settings.margin, 1e-2 * settings.margin) << row;
  }
  // Without its terms, the method is refused.
  expect_error([&] { optimise_shifts({study.classifier, study.generator, study.network}, r, 0, 1, torch::zeros_like(r),
                                     settings); },
               {study.classifier.file().string(), "realistic"});
}

TEST(Counterfactual, ARealisticSuccessIsTheTargetWithTheMarginAndRealistic) {
  ScratchDir dir("cf-realistic");
  auto study = counterfactual_study(dir.path());
  auto settings = study.config.counterfactual;
  settings.method = "realistic";
  settings.max_steps = 60;
  settings.margin = 0.5;
  settings.realism_references = 40;
  study.config.counterfactual = settings;
  const auto geometry = class_geometry(study.config, study.classifier, 2, true);
  const auto terms = geometry.terms_for(0, 2);
  const auto r = generate_and_encode(study.generator, study.classifier, 4, 0, 0, 5, 0.7).features;
  const auto result = optimise_shifts({study.classifier, study.generator, study.network}, r, 0, 2,
                                      torch::zeros_like(r), settings, &terms);
  int64_t successes = 0;
  for (int64_t i = 0; i < 5; ++i) {
    if (!result.success[i].item<bool>()) continue;
    successes += 1;
    const torch::NoGradGuard no_grad;
    const auto image = render_latents(study.generator,
                                      study.network.apply(torch::relu(r[i] - result.shift[i]).unsqueeze(0)));
    const auto features = encode_images(study.classifier, image);
    const auto logits = study.classifier.head(features)[0];
    auto others = logits.clone();
    others[2] = -INFINITY;
    EXPECT_GE((logits[2] - others.max()).item<double>(), settings.margin) << i;
    EXPECT_LE(geometry.reference.ratios(features)[0].item<double>(), geometry.reference.threshold) << i;
  }
  EXPECT_GT(successes, 0) << "no realistic counterfactual succeeded: the test shows nothing";
}

TEST(Counterfactual, NonFiniteFeaturesAreRefused) {
  ScratchDir dir("cf-nan");
  auto study = counterfactual_study(dir.path());
  auto r = generate_and_encode(study.generator, study.classifier, 3, 0, 0, 2, 0.7).features.clone();
  r[1][3] = NAN;
  expect_error(
      [&] {
        optimise_shifts({study.classifier, study.generator, study.network}, r, 0, 1, initial_shifts(0, {0, 1}, r.size(1)),
                        study.config.counterfactual);
      },
      {study.classifier.file().string(), "NaN"});
}

TEST(Counterfactual, AKilledRunResumesWithTheRowsOfAStraightRun) {
  ScratchDir straight_dir("cf-straight"), resumed_dir("cf-resumed");
  const auto straight = counterfactual_study(straight_dir.path());
  const auto resumed = counterfactual_study(resumed_dir.path());
  const auto summary = explain(straight, "0", "1");
  EXPECT_EQ(summary.samples, 6);
  EXPECT_EQ(summary.resumed, 0);
  EXPECT_THROW(explain(resumed, "0", "1", 1), Cancelled);  // after the first batch of 4
  const auto again = explain(resumed, "0", "1");
  EXPECT_EQ(again.resumed, 4);
  EXPECT_EQ(again.samples, 6);
  const auto a = counterfactual_tables(straight.config.results_database(), straight_dir / "csv");
  const auto b = counterfactual_tables(resumed.config.results_database(), resumed_dir / "csv");
  for (const auto& [table, text] : a) EXPECT_EQ(text, b.at(table)) << table;
  // Every sample has its files; the summary counts what the table holds.
  for (int64_t id = 0; id < 6; ++id) {
    EXPECT_TRUE(fs::exists(summary.folder / fmt::format("sample-{:05d}.png", id)));
    EXPECT_TRUE(fs::exists(summary.folder / fmt::format("sample-{:05d}-path.png", id)));
  }
  EXPECT_TRUE(fs::exists(summary.folder / "batch-00000.safetensors"));
  EXPECT_TRUE(fs::exists(summary.folder / "batch-00004.safetensors"));
  EXPECT_TRUE(fs::exists(summary.folder / "grid.png"));
  EXPECT_EQ(summary.run, again.run);
  EXPECT_EQ(summary.successes, again.successes);
  Database db(straight.config.results_database(), Database::Mode::open_existing);
  EXPECT_EQ(db.query_int("SELECT count(*) FROM counterfactual_paths WHERE run = '" + summary.run + "'"), 6 * 5);
  EXPECT_EQ(db.query_int("SELECT count(*) FROM counterfactual_units WHERE run = '" + summary.run + "'"), 6 * 3);
  EXPECT_EQ(db.query_int("SELECT sum(samples) FROM counterfactual_relevant_units WHERE run = '" + summary.run + "'"),
            6 * 3);
  // The path starts at the reconstruction's own verdict and the crossing, when there is one,
  // lies on it.
  EXPECT_EQ(db.query_int("SELECT count(*) FROM counterfactual_paths WHERE point = 0 AND alpha != 0"), 0);
  EXPECT_EQ(db.query_int("SELECT count(*) FROM counterfactuals WHERE crossing_alpha < 0 OR crossing_alpha > 1.5"), 0);
}

TEST(Counterfactual, OtherSettingsAreRefusedUnlessFreshAndBadClassesWriteNothing) {
  ScratchDir dir("cf-settings");
  auto study = counterfactual_study(dir.path());
  explain(study, "0", "1");
  const auto before = snapshot(dir.path());
  expect_error([&] { explain(study, "0", "0"); }, {"counterfactual.to", "source class"});
  expect_error([&] { explain(study, "no-such-class", "1"); }, {"counterfactual.from", "no-such-class", "classes"});
  expect_error([&] { explain(study, "0", "17"); }, {"counterfactual.to", "17"});
  {
    const StudyLock sweep_running(dir.path(), "sweeps");  // another process writing the database
    expect_error([&] { explain(study, "0", "1"); }, {"in use by"});
  }
  study.config.counterfactual.max_steps = 41;
  expect_error([&] { explain(study, "0", "1"); }, {"results.sqlite", "--fresh"});
  EXPECT_EQ(describe_changes(before, snapshot(dir.path())), "");
  const auto fresh = explain(study, "0", "1", -1, true);
  EXPECT_EQ(fresh.samples, 6);
  EXPECT_EQ(fresh.resumed, 0);
  // Another start is another run, beside the first.
  study.config.counterfactual.start = "zero";
  const auto zero = explain(study, "0", "1");
  EXPECT_EQ(zero.run, fresh.run + "-zero-start");
  EXPECT_EQ(zero.resumed, 0);
  EXPECT_EQ(explain(study, "0", "1").resumed, 6);
}

TEST(Counterfactual, ARunStoresRealismMarginsAndTheJudgesVerdict) {
  ScratchDir dir("cf-judged");
  auto study = counterfactual_study(dir.path());
  study.config.counterfactual.method = "realistic";
  study.config.counterfactual.realism_references = 40;
  study.config.counterfactual.margin = 0.5;
  // The classifier as its own judge: the judge's verdicts must be the classifier's.
  study.config.judge = study.config.classifier;
  const auto summary = explain(study, "0", "2");
  EXPECT_EQ(summary.run, "class-0-to-class-2-realistic");
  EXPECT_EQ(summary.realism.space, "judge");
  Database db(study.config.results_database(), Database::Mode::open_existing);
  EXPECT_EQ(db.query_int("SELECT count(*) FROM counterfactuals WHERE realism IS NULL OR margin IS NULL"), 0);
  EXPECT_EQ(db.query_int("SELECT count(*) FROM counterfactuals WHERE judge_class != counterfactual_class"), 0);
  EXPECT_EQ(db.query_int("SELECT count(*) FROM counterfactuals WHERE abs(judge_target_probability - "
                         "target_probability) > 1e-5"),
            0);
  EXPECT_EQ(db.query_int("SELECT count(*) FROM counterfactuals WHERE success = 1 AND (margin < 0.5 OR "
                         "counterfactual_class != 2)"),
            0);
  EXPECT_EQ(db.query_int("SELECT count(*) FROM counterfactual_run_realism WHERE run = '" + summary.run + "'"), 1);
  if (summary.successes >= 2) {
    EXPECT_TRUE(std::isfinite(summary.realism.frechet_distance));
    EXPECT_TRUE(std::isfinite(summary.realism.reference_frechet_distance));
  }
  // A judge file that is not there is refused before anything is written.
  const auto before = snapshot(dir.path());
  study.config.judge = dir / "no-judge.pt";
  expect_error([&] { explain(study, "0", "1"); }, {"no-judge.pt"});
  EXPECT_EQ(describe_changes(before, snapshot(dir.path())), "");
}

// On the shapes world with the shipped models: the exact counterfactual is the sample PNG's third
// panel, its shift is compared with s, and the round trip and the exact render are segmented.
TEST(Counterfactual, ShapesRunsHoldTheExactCounterfactualAndTheRoundTrip) {
  ScratchDir dir("cf-shapes");
  const fs::path models = fs::path(LINKSTYLE_SOURCE_DIR) / "models" / "shapes";
  const fs::path study = dir / "study";
  cli_ok("init " + q(study) + " --classifier " + q(models / "classifier.pt") + " --generator " +
         q(models / "faithful_generator.pt") + " --segmenter " + q(models / "segmenter.pt") + " --judge " +
         q(models / "judge.pt") + " --samples-per-class 60 --psi 1");
  cli_ok("--threads 1 pairs --study " + q(study));
  cli_ok("--threads 1 fit --study " + q(study));
  const auto summary = cli_json("--threads 1 counterfactual --study " + q(study) +
                                " --from mushroom --to tree --method realistic --samples 4 --max-steps 50");
  EXPECT_EQ(summary.value("samples", 0), 4) << summary.dump();
  EXPECT_EQ(summary["realism"].value("space", ""), "judge");
  Database db(study / "sweeps" / "results.sqlite", Database::Mode::open_existing);
  const std::string run = "'mushroom-to-tree-realistic'";
  EXPECT_EQ(db.query_int("SELECT count(*) FROM counterfactuals WHERE run = " + run +
                         " AND exact_shift_cosine BETWEEN -1 AND 1 AND judge_class IS NOT NULL"),
            4);
  for (const char* image : {"original", "counterfactual", "round_trip", "exact"})
    EXPECT_EQ(db.query_int(fmt::format("SELECT count(DISTINCT sample) FROM counterfactual_parts WHERE run = {} AND "
                                       "image = '{}'",
                                       run, image)),
              4)
        << image;
  // original | counterfactual | exact, at the panel size of 64 pixels.
  const auto panels = read_image(study / "counterfactuals" / "mushroom-to-tree-realistic" / "sample-00000.png");
  EXPECT_EQ(panels.size(3), 3 * panels.size(2));
}

TEST(Counterfactual, UserImagesAreExplainedFromTheirOwnClass) {
  ScratchDir dir("cf-images");
  auto study = counterfactual_study(dir.path());
  const auto samples = generate_and_encode(study.generator, study.classifier, 11, 2, 0, 2, 0.7);
  std::vector<fs::path> files = {dir / "a.png", dir / "b.png"};
  for (int i = 0; i < 2; ++i)
    write_image_row(files[size_t(i)], {samples.images.slice(0, i, i + 1)}, 40);  // another size than the generator's
  CounterfactualRunOptions options;
  options.progress = false;
  const CounterfactualModels models{study.classifier, study.generator, study.network};
  // The target: a class neither image is classified as.
  std::set<int64_t> predicted;
  for (const auto& file : files)
    predicted.insert(study.classifier.head(encode_images(study.classifier, read_image(file))).argmax(1).item<int64_t>());
  int64_t target = 0;
  while (predicted.count(target)) ++target;
  const auto summary = run_counterfactuals(study.config, models, study.config.linking_file(),
                                           {"", std::to_string(target), files}, options);
  EXPECT_EQ(summary.samples, 2);
  EXPECT_EQ(summary.run, fmt::format("images-to-class-{}-paper", target));
  Database db(study.config.results_database(), Database::Mode::open_existing);
  EXPECT_EQ(db.query_int("SELECT count(*) FROM counterfactuals WHERE latent_id IS NULL AND origin LIKE '%.png'"), 2);
  // Each image is explained from the class the classifier gives it.
  for (int i = 0; i < 2; ++i) {
    const int64_t own = study.classifier.head(encode_images(study.classifier, read_image(files[size_t(i)])))
                            .argmax(1)
                            .item<int64_t>();
    EXPECT_EQ(db.query_int(fmt::format("SELECT source_class FROM counterfactuals WHERE sample = {}", i)), own);
  }
  write_bytes(dir / "broken.png", "not an image");
  expect_error([&] { run_counterfactuals(study.config, models, study.config.linking_file(), {"", std::to_string(target), {dir / "broken.png"}}, options); },
               {"broken.png"});
}

TEST(Counterfactual, TheCommandLineExplainsAndRefusesUnknownClasses) {
  ScratchDir dir("cf-cli");
  auto study = counterfactual_study(dir.path());
  write_study(study.config);
  const auto summary = cli_json("counterfactual --study " + q(dir.path()) + " --from 0 --to 2 --samples 3 --threads 1");
  EXPECT_EQ(summary.value("samples", 0), 3) << summary.dump();
  EXPECT_TRUE(summary.contains("relevant_units"));
  expect_cli_error("counterfactual --study " + q(dir.path()) + " --from 0 --to tree", "tree", dir.path());
  expect_cli_error("counterfactual --study " + q(dir.path()) + " --from 1 --to 1", "--to", dir.path());
  expect_cli_error("counterfactual --study " + q(dir.path()) + " --from 0 --to 1 --max-steps 0", "--max-steps",
                   dir.path());
  write_bytes(dir / "notes.png", "plain text, not a PNG");
  expect_cli_error("counterfactual --study " + q(dir.path()) + " --image " + q(dir / "notes.png") + " --to 1",
                   "notes.png", dir.path());
  // A study without a linking network.
  const fs::path unfitted = dir / "unfitted";
  cli_ok("init " + q(unfitted) + " --tiny --samples-per-class 10");
  expect_cli_error("counterfactual --study " + q(unfitted) + " --from 0 --to 1", "linking", unfitted);
}

}  // namespace
}  // namespace linkstyle
