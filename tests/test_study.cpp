// Tests for study.toml (study.hpp): write/load round trip and the one-line errors of load_study.
#include <cmath>
#include <fstream>
#include <functional>
#include <string>

#include <gtest/gtest.h>

#include "linkstyle/errors.hpp"
#include "linkstyle/study.hpp"
#include "test_support.hpp"

namespace linkstyle {
namespace {

namespace fs = std::filesystem;
using testing::ScratchDir;

void write_text(const fs::path& file, const std::string& text) {
  fs::create_directories(file.parent_path());
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << text;
}

// A valid study.toml with every table; `pairs_extra` / `fit_extra` / `tail` are appended to the
// [pairs] table, the [fit] table and the end of the file.
std::string study_text(const std::string& pairs_extra = "", const std::string& fit_extra = "",
                       const std::string& tail = "") {
  return "[models]\n"
         "classifier = \"models/c.pt\"\n"
         "generator = \"/abs/g.pt\"\n"
         "\n"
         "[pairs]\n"
         "samples_per_class = 10\n" +
         pairs_extra +
         "\n"
         "[fit]\n"
         "method = \"ols\"\n" +
         fit_extra + tail;
}

// Expects load_study(folder) to throw a one-line linkstyle::Error naming study.toml and
// containing every one of `parts`.
void expect_load_error(const fs::path& folder, const std::vector<std::string>& parts) {
  try {
    load_study(folder);
    ADD_FAILURE() << "load_study did not throw (expected an error mentioning '" << parts.front() << "')";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("study.toml"), std::string::npos) << message;
    for (const auto& part : parts)
      EXPECT_NE(message.find(part), std::string::npos) << "'" << part << "' not in: " << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << "multi-line message: " << message;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw something other than linkstyle::Error: " << e.what();
  }
}

void expect_write_error(const StudyConfig& config, const std::vector<std::string>& parts) {
  try {
    write_study(config);
    ADD_FAILURE() << "write_study did not throw (expected an error mentioning '" << parts.front() << "')";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("study.toml"), std::string::npos) << message;
    for (const auto& part : parts)
      EXPECT_NE(message.find(part), std::string::npos) << "'" << part << "' not in: " << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << "multi-line message: " << message;
  }
}

void expect_load_error_for(const std::string& text, const std::vector<std::string>& parts) {
  ScratchDir dir("study-error");
  write_text(dir / "study.toml", text);
  SCOPED_TRACE(text);
  expect_load_error(dir.path(), parts);
}

// ---------------------------------------------------------------------------------------------
TEST(Study, WriteLoadRoundTripKeepsEveryField) {
  ScratchDir dir("study-roundtrip");
  ScratchDir elsewhere("study-roundtrip-models");
  StudyConfig config;
  config.folder = dir.path();
  config.classifier = dir / "models/my classifier.pt";  // inside the study: stored relative
  config.generator = elsewhere / "gen \"quoted\".pt";   // outside: stored absolute
  config.pairs.classes = {4, 0, 2};
  config.pairs.classifier_classes = {7, 1, 3};
  config.pairs.samples_per_class = 1234;
  config.pairs.psi = 0.55;
  config.pairs.seed = 987654321012ULL;
  config.pairs.batch_size = 17;
  config.pairs.shard_size = 333;
  config.pairs.holdout_fraction = 0.125;
  config.pairs.max_draws_per_class = 99999;
  config.pairs.filter = "top-k 5";
  config.fit.method = "ridge";
  config.fit.penalty = 2.5;
  config.fit.rcond = 3e-9;
  write_study(config);

  ASSERT_TRUE(fs::exists(config.config_file()));
  for (const auto& entry : fs::directory_iterator(dir.path()))
    EXPECT_EQ(entry.path().filename().string().find(".tmp-"), std::string::npos) << entry.path();
  {
    // Paths inside the study are stored relative, so the study folder can move.
    std::ifstream in(config.config_file());
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_NE(text.find("models/my classifier.pt"), std::string::npos) << text;
    EXPECT_EQ(text.find(dir.path().string()), std::string::npos) << text;
  }

  const StudyConfig loaded = load_study(dir.path());
  EXPECT_EQ(loaded.folder, config.folder);
  EXPECT_EQ(loaded.classifier.lexically_normal(), config.classifier.lexically_normal());
  EXPECT_EQ(loaded.generator.lexically_normal(), config.generator.lexically_normal());
  EXPECT_EQ(loaded.pairs.classes, config.pairs.classes);
  EXPECT_EQ(loaded.pairs.classifier_classes, config.pairs.classifier_classes);
  EXPECT_EQ(loaded.pairs.samples_per_class, config.pairs.samples_per_class);
  EXPECT_EQ(loaded.pairs.psi, config.pairs.psi);
  EXPECT_EQ(loaded.pairs.seed, config.pairs.seed);
  EXPECT_EQ(loaded.pairs.batch_size, config.pairs.batch_size);
  EXPECT_EQ(loaded.pairs.shard_size, config.pairs.shard_size);
  EXPECT_EQ(loaded.pairs.holdout_fraction, config.pairs.holdout_fraction);
  EXPECT_EQ(loaded.pairs.max_draws_per_class, config.pairs.max_draws_per_class);
  EXPECT_EQ(loaded.pairs.filter, "top-k 5");
  EXPECT_EQ(loaded.fit.method, config.fit.method);
  EXPECT_EQ(loaded.fit.penalty, config.fit.penalty);
  EXPECT_EQ(loaded.fit.rcond, config.fit.rcond);

  // Writing what was loaded gives the same file (a fixed point).
  std::ifstream first(config.config_file(), std::ios::binary);
  const std::string first_text((std::istreambuf_iterator<char>(first)), std::istreambuf_iterator<char>());
  write_study(loaded);
  std::ifstream second(config.config_file(), std::ios::binary);
  const std::string second_text((std::istreambuf_iterator<char>(second)), std::istreambuf_iterator<char>());
  EXPECT_EQ(first_text, second_text);
}

TEST(Study, RoundTripOfDefaultsAndWholeNumberDoubles) {
  // Defaults: empty class lists (classifier_classes omitted), and doubles that print as whole
  // numbers (psi = 1, holdout_fraction = 0, penalty = -1) must read back as numbers.
  ScratchDir dir("study-defaults");
  StudyConfig config;
  config.folder = dir.path();
  config.classifier = dir / "c.pt";
  config.generator = dir / "g.pt";
  config.pairs.psi = 1.0;
  config.pairs.holdout_fraction = 0.0;
  write_study(config);
  const StudyConfig loaded = load_study(dir.path());
  EXPECT_TRUE(loaded.pairs.classes.empty());
  EXPECT_TRUE(loaded.pairs.classifier_classes.empty());
  EXPECT_EQ(loaded.pairs.psi, 1.0);
  EXPECT_EQ(loaded.pairs.holdout_fraction, 0.0);
  EXPECT_EQ(loaded.pairs.samples_per_class, PairsSettings{}.samples_per_class);
  EXPECT_EQ(loaded.pairs.seed, PairsSettings{}.seed);
  EXPECT_EQ(loaded.pairs.batch_size, PairsSettings{}.batch_size);
  EXPECT_EQ(loaded.pairs.shard_size, PairsSettings{}.shard_size);
  EXPECT_EQ(loaded.pairs.max_draws_per_class, PairsSettings{}.max_draws_per_class);
  EXPECT_EQ(loaded.fit.method, "ols");
  EXPECT_EQ(loaded.fit.penalty, -1.0);
  EXPECT_EQ(loaded.fit.rcond, FitSettings{}.rcond);
  EXPECT_EQ(loaded.classifier, dir / "c.pt");
}

TEST(Study, WriteRefusesWhatLoadWouldReject) {
  ScratchDir dir("study-write-invalid");
  StudyConfig config;
  config.folder = dir.path();
  config.classifier = dir / "c.pt";
  config.generator = dir / "g.pt";
  config.pairs.psi = 5;
  expect_write_error(config, {"pairs.psi"});
  config.pairs.psi = 0.7;
  config.pairs.seed = ~uint64_t{0};  // beyond TOML's int64
  expect_write_error(config, {"study.toml"});
  config.pairs.seed = 0;
  config.pairs.classes = {0, 1};
  config.pairs.classifier_classes = {0};
  expect_write_error(config, {"pairs.classifier_classes"});
  config.pairs.classifier_classes = {};
  config.fit.method = "lasso";
  expect_write_error(config, {"fit.method"});
  EXPECT_TRUE(fs::is_empty(dir.path())) << "a file was written";
}

TEST(Study, MinimalFileUsesDefaultsAndResolvesPathsAgainstTheStudy) {
  ScratchDir dir("study-minimal");
  write_text(dir / "study.toml", "[models]\nclassifier = \"m/c.pt\"\ngenerator = \"/abs/g.pt\"\n");
  const StudyConfig loaded = load_study(dir.path());
  EXPECT_EQ(loaded.classifier, dir / "m/c.pt");
  EXPECT_EQ(loaded.generator, fs::path("/abs/g.pt"));
  EXPECT_EQ(loaded.pairs.samples_per_class, 5000);
  EXPECT_EQ(loaded.pairs.psi, 0.7);
  EXPECT_EQ(loaded.fit.method, "ols");
}

TEST(Study, TheValidTemplateLoads) {
  // Guards the error tests below: they differ from a valid file only in the line under test.
  ScratchDir dir("study-template");
  write_text(dir / "study.toml", study_text());
  EXPECT_NO_THROW(load_study(dir.path()));
}

// ---------------------------------------------------------------------------------------------
TEST(StudyErrors, UnknownKeyInPairs) {
  expect_load_error_for(study_text("sample_per_class = 3\n"), {"pairs.sample_per_class", "unknown"});
}

TEST(StudyErrors, UnknownKeyInModelsAndFit) {
  expect_load_error_for("[models]\nclassifier = \"c.pt\"\ngenerator = \"g.pt\"\ndiscriminator = \"d.pt\"\n",
                        {"models.discriminator", "unknown"});
  expect_load_error_for(study_text("", "alpha = 1.0\n"), {"fit.alpha", "unknown"});
}

TEST(StudyErrors, UnknownTable) {
  expect_load_error_for(study_text("", "", "\n[extras]\nx = 1\n"), {"extras"});
  expect_load_error_for("top_level = 1\n" + study_text(), {"top_level"});
}

TEST(StudyErrors, WrongTypes) {
  expect_load_error_for(study_text("batch_size = \"many\"\n"), {"pairs.batch_size", "integer"});
  expect_load_error_for(study_text("psi = \"x\"\n"), {"pairs.psi", "number"});
  expect_load_error_for(study_text("classes = [1.5]\n"), {"pairs.classes", "integer"});
  expect_load_error_for(study_text("classes = 2\n"), {"pairs.classes"});
  expect_load_error_for(study_text("", "rcond = true\n"), {"fit.rcond"});
}

TEST(StudyErrors, SamplesPerClassAsString) {
  // The [pairs] table of the template already holds samples_per_class, so build this one by hand.
  expect_load_error_for(
      "[models]\nclassifier = \"c.pt\"\ngenerator = \"g.pt\"\n[pairs]\nsamples_per_class = \"many\"\n",
      {"pairs.samples_per_class", "integer"});
}

TEST(StudyErrors, MissingModels) {
  expect_load_error_for("[models]\ngenerator = \"g.pt\"\n", {"models.classifier", "required"});
  expect_load_error_for("[models]\nclassifier = \"c.pt\"\n", {"models.generator", "required"});
  expect_load_error_for("[pairs]\nsamples_per_class = 3\n", {"models.classifier", "required"});
  expect_load_error_for("[models]\nclassifier = 3\ngenerator = \"g.pt\"\n", {"models.classifier", "string"});
}

TEST(StudyErrors, OutOfRangeValues) {
  expect_load_error_for(study_text("psi = 5\n"), {"pairs.psi"});
  expect_load_error_for(study_text("psi = -0.1\n"), {"pairs.psi"});
  expect_load_error_for(study_text("holdout_fraction = 1\n"), {"pairs.holdout_fraction"});
  expect_load_error_for(study_text("holdout_fraction = 1.0\n"), {"pairs.holdout_fraction"});
  expect_load_error_for(study_text("holdout_fraction = -0.5\n"), {"pairs.holdout_fraction"});
  expect_load_error_for(study_text("batch_size = 0\n"), {"pairs.batch_size"});
  expect_load_error_for(study_text("shard_size = -3\n"), {"pairs.shard_size"});
  expect_load_error_for(study_text("seed = -1\n"), {"pairs.seed"});
  expect_load_error_for(study_text("max_draws_per_class = -1\n"), {"pairs.max_draws_per_class"});
  expect_load_error_for(study_text("classes = [-1]\n"), {"pairs.classes"});
  expect_load_error_for(study_text("classes = [0, 1]\nclassifier_classes = [0]\n"), {"pairs.classifier_classes"});
  expect_load_error_for(study_text("psi = nan\n"), {"pairs.psi"});
  expect_load_error_for(study_text("", "rcond = 0\n"), {"fit.rcond"});
  expect_load_error_for("[models]\nclassifier = \"c.pt\"\ngenerator = \"g.pt\"\n[pairs]\nsamples_per_class = 0\n",
                        {"pairs.samples_per_class"});
  expect_load_error_for("[models]\nclassifier = \"c.pt\"\ngenerator = \"g.pt\"\n[fit]\nmethod = \"lasso\"\n",
                        {"fit.method"});
}

TEST(StudyErrors, SyntaxErrorNamesTheLine) {
  // Line 7 holds the broken value.
  const std::string text =
      "[models]\n"               // 1
      "classifier = \"c.pt\"\n"  // 2
      "generator = \"g.pt\"\n"   // 3
      "\n"                       // 4
      "[pairs]\n"                // 5
      "seed = 1\n"               // 6
      "psi = = 0.5\n";           // 7
  expect_load_error_for(text, {"line 7"});
  expect_load_error_for("[models\nclassifier = \"c.pt\"\n", {"line 1"});
  // A table defined twice is a syntax error too (line 10 is the second [models]).
  expect_load_error_for(study_text("", "", "[models]\n"), {"line 10"});
}

TEST(StudyErrors, MissingStudyToml) {
  ScratchDir dir("study-missing");
  expect_load_error(dir.path(), {"not found"});
  expect_load_error(dir / "no-such-folder", {"no-such-folder"});
}

TEST(StudyErrors, SweepTableValues) {
  const auto sweep = [](const std::string& body) { return study_text("", "", "\n[sweep]\n" + body); };
  expect_load_error_for(sweep("steps = 1\n"), {"sweep.steps"});
  expect_load_error_for(sweep("samples_per_class = 0\n"), {"sweep.samples_per_class"});
  expect_load_error_for(sweep("parts = \"pixels\"\n"), {"sweep.parts"});
  expect_load_error_for(sweep("direction = \"sideways\"\n"), {"sweep.direction", "conditional"});
  expect_load_error_for(sweep("parts = \"segmenter\"\n"), {"sweep.parts", "models.segmenter"});
  expect_load_error_for(sweep("kmeans_parts = 1\n"), {"sweep.kmeans_parts"});
  expect_load_error_for(sweep("null_directions = 4\n"), {"sweep.null_directions"});
  expect_load_error_for(sweep("significance = 1\n"), {"sweep.significance"});
  expect_load_error_for(sweep("min_correlation = 2\n"), {"sweep.min_correlation"});
  expect_load_error_for(sweep("units = [3, -1]\n"), {"sweep.units"});
  expect_load_error_for(sweep("seed = -2\n"), {"sweep.seed"});
  expect_load_error_for(sweep("unknown = 1\n"), {"sweep.unknown"});
}

TEST(Study, SweepSettingsAndSegmenterRoundTrip) {
  ScratchDir dir("study-sweep");
  StudyConfig config;
  config.folder = dir.path();
  config.classifier = dir / "c.pt";
  config.generator = dir / "g.pt";
  config.segmenter = dir / "models" / "s.pt";
  config.sweep.samples_per_class = 3;
  config.sweep.seed = 9;
  config.sweep.steps = 7;
  config.sweep.units = {4, 2, 9};
  config.sweep.parts = "segmenter";
  config.sweep.direction = "conditional";
  config.sweep.null_directions = 5;
  config.sweep.min_gain = 0.125;
  config.sweep.significance = 0.01;
  write_study(config);
  const auto loaded = load_study(dir.path());
  EXPECT_EQ(loaded.segmenter, dir / "models" / "s.pt");
  EXPECT_EQ(loaded.sweep.samples_per_class, 3);
  EXPECT_EQ(loaded.sweep.seed, 9u);
  EXPECT_EQ(loaded.sweep.steps, 7);
  EXPECT_EQ(loaded.sweep.units, (std::vector<int64_t>{4, 2, 9}));
  EXPECT_EQ(loaded.sweep.parts, "segmenter");
  EXPECT_EQ(loaded.sweep.direction, "conditional");
  EXPECT_EQ(loaded.sweep.null_directions, 5);
  EXPECT_DOUBLE_EQ(loaded.sweep.min_gain, 0.125);
  EXPECT_DOUBLE_EQ(loaded.sweep.significance, 0.01);
  EXPECT_EQ(loaded.results_database(), dir / "sweeps" / "results.sqlite");
}

TEST(Study, JudgeAndRealisticSettingsRoundTrip) {
  ScratchDir dir("study-judge");
  StudyConfig config;
  config.folder = dir.path();
  config.classifier = dir / "c.pt";
  config.generator = dir / "g.pt";
  config.judge = dir / "models" / "j.pt";
  auto& k = config.counterfactual;
  k.method = "realistic";
  k.margin = 3.5;
  k.proximity_weight = 0.25;
  k.realism_weight = 2;
  k.realism_neighbours = 5;
  k.realism_references = 64;
  k.realism_quantile = 0.9;
  write_study(config);
  const auto loaded = load_study(dir.path());
  EXPECT_EQ(loaded.judge, dir / "models" / "j.pt");
  const auto& l = loaded.counterfactual;
  EXPECT_EQ(l.method, "realistic");
  EXPECT_DOUBLE_EQ(l.margin, 3.5);
  EXPECT_DOUBLE_EQ(l.proximity_weight, 0.25);
  EXPECT_DOUBLE_EQ(l.realism_weight, 2);
  EXPECT_EQ(l.realism_neighbours, 5);
  EXPECT_EQ(l.realism_references, 64);
  EXPECT_DOUBLE_EQ(l.realism_quantile, 0.9);
  // Without a judge, study.toml names none.
  config.judge.clear();
  write_study(config);
  EXPECT_TRUE(load_study(dir.path()).judge.empty());
}

}  // namespace
}  // namespace linkstyle

namespace linkstyle {
namespace {

TEST(StudySettings, EachSettingIsCheckedInOnePlaceAndNamedInItsError) {
  StudyConfig config;
  EXPECT_NO_THROW(check_study_settings(config));  // the defaults are valid
  const auto setting_of_error = [](const StudyConfig& bad) {
    try {
      check_study_settings(bad);
    } catch (const SettingError& error) {
      return error.setting() + ": " + error.problem();
    }
    return std::string("no error");
  };
  StudyConfig steps = config;
  steps.sweep.steps = 1;
  EXPECT_EQ(setting_of_error(steps), "sweep.steps: must be >= 2");
  StudyConfig psi = config;
  psi.pairs.psi = NAN;
  EXPECT_EQ(setting_of_error(psi), "pairs.psi: must be in [0, 2]");
  StudyConfig method = config;
  method.fit.method = "lasso";
  EXPECT_EQ(setting_of_error(method), "fit.method: must be \"ols\" or \"ridge\"");
  // The realistic counterfactuals' settings, each named.
  StudyConfig margin = config;
  margin.counterfactual.margin = 0;
  EXPECT_EQ(setting_of_error(margin), "counterfactual.margin: must be a finite number > 0");
  StudyConfig weights = config;
  weights.counterfactual.proximity_weight = weights.counterfactual.realism_weight = 0;
  EXPECT_EQ(setting_of_error(weights).rfind("counterfactual.realism_weight:", 0), 0u);
  StudyConfig references = config;
  references.counterfactual.realism_references = references.counterfactual.realism_neighbours + 1;
  EXPECT_EQ(setting_of_error(references), "counterfactual.realism_references: must be >= realism_neighbours + 2");
  StudyConfig share = config;
  share.counterfactual.realism_quantile = 1.5;
  EXPECT_EQ(setting_of_error(share), "counterfactual.realism_quantile: must be in (0, 1]");
  StudyConfig realistic = config;
  realistic.counterfactual.method = "realistic";
  EXPECT_EQ(setting_of_error(realistic), "no error");
  for (const char* good : {"argmax", "none", "top-k 1", "top-k 5", "min-probability 0.25", "min-probability 1"}) {
    StudyConfig filter = config;
    filter.pairs.filter = good;
    EXPECT_EQ(setting_of_error(filter), "no error") << good;
  }
  for (const char* bad : {"", "top-k", "top-k 0", "top-k -2", "top-k 2.5", "top-k 5 x", "min-probability 0",
                          "min-probability 1.5", "min-probability nan", "max", "Argmax"}) {
    StudyConfig filter = config;
    filter.pairs.filter = bad;
    EXPECT_EQ(setting_of_error(filter).rfind("pairs.filter: is \"" + std::string(bad) + "\"; expected", 0), 0u) << bad;
  }
  const auto top3 = PairsFilter::parse("top-k 3");
  EXPECT_EQ(top3.kind, PairsFilter::Kind::top_k);
  EXPECT_EQ(top3.k, 3);
  EXPECT_DOUBLE_EQ(PairsFilter::parse("min-probability 0.5").probability, 0.5);
  // With the file the value came from, the message names both.
  const SettingError from_file("sweep.units", "lists a unit twice", "S/study.toml");
  EXPECT_EQ(std::string(from_file.what()), "S/study.toml: 'sweep.units' lists a unit twice");
}

}  // namespace
}  // namespace linkstyle
