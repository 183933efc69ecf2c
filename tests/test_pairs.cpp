// Tests for the paired data set (pairs.hpp): determinism, resuming, latent ids, acceptance,
// settings checks, saved statistics and errors on incomplete or corrupt pairs.
#include <algorithm>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "linkstyle/atomic_file.hpp"
#include "linkstyle/errors.hpp"
#include "linkstyle/linking.hpp"
#include "linkstyle/models.hpp"
#include "linkstyle/pairs.hpp"
#include "linkstyle/study.hpp"
#include "linkstyle/tensor_io.hpp"
#include "linkstyle/tiny_models.hpp"
#include "test_support.hpp"

namespace linkstyle {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::ScratchDir;

constexpr int64_t kSamplesPerClass = 150;
constexpr int64_t kShardSize = 64;
constexpr int64_t kBatchSize = 32;

std::string bytes_of(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Expects `action` to throw linkstyle::Error whose one-line message names `file`'s file name and
// contains `part`.
void expect_error(const std::function<void()>& action, const std::string& file_name, const std::string& part = "") {
  linkstyle::testing::expect_error(action, {file_name, part});
}

// A study with its own tiny models (in <folder>/models) and loaded models.
struct TestStudy {
  StudyConfig config;
  Classifier classifier;
  Generator generator;

  PairsManifest run(int64_t stop_after_shards = -1) const {
    PairsRunOptions options;
    options.stop_requested = testing::stop_after(stop_after_shards);
    return generate_pairs(config, classifier, generator, options);
  }
};

StudyConfig study_config(const fs::path& folder, const TinyModelPaths& models) {
  StudyConfig config;
  config.folder = folder;
  config.classifier = models.classifier;
  config.generator = models.generator;
  config.pairs.samples_per_class = kSamplesPerClass;
  config.pairs.shard_size = kShardSize;
  config.pairs.batch_size = kBatchSize;
  config.pairs.seed = 11;
  config.pairs.psi = 0.7;
  config.pairs.holdout_fraction = 0.2;
  return config;
}

TestStudy make_study(const fs::path& folder, const TinyModelSpec& spec = {}) {
  auto models = write_tiny_models(folder / "models", spec);
  auto config = study_config(folder, models);
  write_study(config);
  return {config, Classifier::load(models.classifier, c10::Device(c10::kCPU)),
          Generator::load(models.generator, c10::Device(c10::kCPU))};
}

// The manifest without what legitimately differs between two folders (absolute model paths).
json portable_manifest(const fs::path& pairs_folder) {
  json j = json::parse(bytes_of(pairs_folder / "manifest.json"));
  for (const char* role : {"classifier", "generator"}) j["models"][role].erase("file");
  return j;
}

std::vector<std::string> file_names(const fs::path& folder) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(folder)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// Differences between two pairs folders: file lists, file bytes (all but the manifest) and the
// manifests (without absolute paths). Empty when they hold the same data.
std::vector<std::string> pairs_differences(const fs::path& a, const fs::path& b) {
  std::vector<std::string> differences;
  const auto names_a = file_names(a), names_b = file_names(b);
  if (names_a != names_b) {
    std::string list = "file lists differ:";
    for (const auto& n : names_a) list += " " + n;
    list += " vs";
    for (const auto& n : names_b) list += " " + n;
    differences.push_back(list);
    return differences;
  }
  for (const auto& name : names_a) {
    if (name == "manifest.json") continue;
    if (bytes_of(a / name) != bytes_of(b / name)) differences.push_back(name + " differs");
  }
  if (portable_manifest(a) != portable_manifest(b))
    differences.push_back("manifest differs:\n" + portable_manifest(a).dump(1) + "\nvs\n" +
                          portable_manifest(b).dump(1));
  return differences;
}

std::string joined(const std::vector<std::string>& lines) {
  std::string text;
  for (const auto& line : lines) text += line + "\n";
  return text;
}

// All rows of the pairs, in order.
struct AllRows {
  torch::Tensor r, w, labels, latent_ids;
};
AllRows read_all_rows(const PairsManifest& manifest) {
  std::vector<torch::Tensor> r, w, labels, ids;
  for (const auto& shard : manifest.shards) {
    r.push_back(read_npy(manifest.folder / shard.features));
    w.push_back(read_npy(manifest.folder / shard.latents));
    labels.push_back(read_npy(manifest.folder / shard.labels));
    ids.push_back(read_npy(manifest.folder / shard.latent_ids));
  }
  return {torch::cat(r), torch::cat(w), torch::cat(labels), torch::cat(ids)};
}

double max_abs_difference(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

// ---------------------------------------------------------------------------------------------
TEST(Pairs, TwoFreshRunsGiveIdenticalFiles) {
  ScratchDir one("pairs-det-1"), two("pairs-det-2");
  auto a = make_study(one.path());
  auto b = make_study(two.path());
  const auto manifest = a.run();
  b.run();
  EXPECT_TRUE(manifest.complete);
  EXPECT_GE(manifest.shards.size(), 3u);
  const auto differences = pairs_differences(a.config.pairs_folder(), b.config.pairs_folder());
  EXPECT_TRUE(differences.empty()) << joined(differences);
  // The manifests differ only in the absolute model paths.
  EXPECT_NE(bytes_of(a.config.pairs_folder() / "manifest.json"), bytes_of(b.config.pairs_folder() / "manifest.json"));

  // The comparison can fail: another seed gives other data.
  ScratchDir three("pairs-det-3");
  auto c = make_study(three.path());
  c.config.pairs.seed = 12;
  c.run();
  EXPECT_FALSE(pairs_differences(a.config.pairs_folder(), c.config.pairs_folder()).empty());
}

TEST(Pairs, ARerunOfACompleteRunChangesNothing) {
  ScratchDir dir("pairs-rerun");
  auto s = make_study(dir.path());
  s.run();
  std::map<std::string, std::string> before;
  for (const auto& name : file_names(s.config.pairs_folder())) before[name] = bytes_of(s.config.pairs_folder() / name);
  const auto again = s.run();
  EXPECT_TRUE(again.complete);
  std::map<std::string, std::string> after;
  for (const auto& name : file_names(s.config.pairs_folder())) after[name] = bytes_of(s.config.pairs_folder() / name);
  EXPECT_TRUE(before == after);
}

TEST(Pairs, InterruptedRunResumesToTheSameBytes) {
  ScratchDir one("pairs-full"), two("pairs-resumed");
  auto full = make_study(one.path());
  const auto full_manifest = full.run();

  auto resumed = make_study(two.path());
  EXPECT_THROW(resumed.run(1), Cancelled);
  {
    auto partial = PairsManifest::load(resumed.config.pairs_folder());
    EXPECT_FALSE(partial.complete);
    ASSERT_EQ(partial.shards.size(), 1u);
    EXPECT_EQ(partial.total_rows, partial.shards[0].rows);
    EXPECT_GE(partial.shards[0].rows, kShardSize);
    // Only the latest statistics file is kept.
    int stats_files = 0;
    for (const auto& name : file_names(resumed.config.pairs_folder())) stats_files += name.rfind("stats-", 0) == 0;
    EXPECT_EQ(stats_files, 1);
    EXPECT_TRUE(fs::exists(resumed.config.pairs_folder() / partial.statistics));
  }
  // A second interruption, then what a killed run leaves: a temporary file and a shard written
  // after the last commit (not in the manifest).
  EXPECT_THROW(resumed.run(2), Cancelled);
  {
    auto partial = PairsManifest::load(resumed.config.pairs_folder());
    ASSERT_EQ(partial.shards.size(), 3u);
    const std::string next = fmt::format("{:05}", partial.shards.size());
    write_file_atomically(resumed.config.pairs_folder() / ("r-" + next + ".npy"), "half a shard");
    std::ofstream(resumed.config.pairs_folder() / ("w-" + next + ".npy.tmp-424242")) << "partial";
    // Killed after the commit but before the previous statistics file was removed.
    ASSERT_EQ(partial.statistics, "stats-00002.safetensors");
    fs::copy_file(resumed.config.pairs_folder() / partial.statistics,
                  resumed.config.pairs_folder() / "stats-00001.safetensors");
  }
  const auto resumed_manifest = resumed.run();
  EXPECT_TRUE(resumed_manifest.complete);
  EXPECT_EQ(resumed_manifest.total_rows, full_manifest.total_rows);
  ASSERT_EQ(resumed_manifest.shards.size(), full_manifest.shards.size());
  for (size_t i = 0; i < full_manifest.shards.size(); ++i) {
    EXPECT_EQ(resumed_manifest.shards[i].rows, full_manifest.shards[i].rows);
    EXPECT_EQ(resumed_manifest.shards[i].first_row, full_manifest.shards[i].first_row);
  }
  for (size_t i = 0; i < full_manifest.classes.size(); ++i) {
    EXPECT_EQ(resumed_manifest.classes[i].drawn, full_manifest.classes[i].drawn);
    EXPECT_EQ(resumed_manifest.classes[i].accepted, full_manifest.classes[i].accepted);
  }
  const auto differences = pairs_differences(full.config.pairs_folder(), resumed.config.pairs_folder());
  EXPECT_TRUE(differences.empty()) << joined(differences);
}

TEST(Pairs, LatentIdsAreUniqueAndRegenerateTheirRows) {
  ScratchDir dir("pairs-ids");
  auto s = make_study(dir.path());
  const auto manifest = s.run();
  const auto rows = read_all_rows(manifest);
  const auto& p = s.config.pairs;
  ASSERT_EQ(rows.labels.scalar_type(), torch::kInt64);
  ASSERT_EQ(rows.latent_ids.scalar_type(), torch::kInt64);
  ASSERT_EQ(rows.w.size(1), s.generator.w_dim());
  ASSERT_EQ(rows.r.size(1), s.classifier.feature_dim());

  torch::NoGradGuard no_grad;
  for (const auto& progress : manifest.classes) {
    const int64_t c = progress.generator_class;
    SCOPED_TRACE("class " + std::to_string(c));
    auto in_class = (rows.labels == c).nonzero().squeeze(1);
    auto ids_tensor = rows.latent_ids.index_select(0, in_class);
    std::vector<int64_t> ids(ids_tensor.data_ptr<int64_t>(), ids_tensor.data_ptr<int64_t>() + ids_tensor.numel());
    EXPECT_EQ(std::set<int64_t>(ids.begin(), ids.end()).size(), ids.size()) << "duplicate latent ids";

    // Regenerate every batch the run drew: the accepted latents, in order, are exactly the
    // stored ones, and their w and r equal the stored rows.
    std::vector<int64_t> expected_ids;
    std::vector<torch::Tensor> expected_w, expected_r;
    for (int64_t batch = 0; batch < progress.batches_drawn; ++batch) {
      auto z = draw_latents(p.seed, c, batch, p.batch_size, s.generator.z_dim());
      ASSERT_EQ(z.sizes(), (std::vector<int64_t>{p.batch_size, s.generator.z_dim()}));
      auto w = s.generator.mapping(z, torch::full({p.batch_size}, c, torch::kInt64), p.psi);
      auto r = s.classifier.features(generator_to_classifier_range(s.generator.synthesis(w)));
      auto predicted = s.classifier.head(r).argmax(1);
      for (int64_t i = 0; i < p.batch_size; ++i) {
        if (predicted[i].item<int64_t>() != progress.classifier_class) continue;
        if (static_cast<int64_t>(expected_ids.size()) >= p.samples_per_class) break;
        expected_ids.push_back(batch * p.batch_size + i);
        expected_w.push_back(w[i]);
        expected_r.push_back(r[i]);
      }
    }
    EXPECT_EQ(ids, expected_ids);
    if (ids != expected_ids) continue;
    EXPECT_LE(max_abs_difference(torch::stack(expected_w), rows.w.index_select(0, in_class)), 1e-6);
    EXPECT_LE(max_abs_difference(torch::stack(expected_r), rows.r.index_select(0, in_class)), 1e-5);

    // Same with a batch drawn alone, for a few rows (the latent id alone identifies the draw).
    for (int64_t k : {ids.front(), ids[ids.size() / 2], ids.back()}) {
      auto z = draw_latents(p.seed, c, k / p.batch_size, p.batch_size, s.generator.z_dim());
      auto w = s.generator.mapping(z.slice(0, k % p.batch_size, k % p.batch_size + 1),
                                   torch::full({1}, c, torch::kInt64), p.psi);
      const auto position = std::find(ids.begin(), ids.end(), k) - ids.begin();
      EXPECT_LE(max_abs_difference(w[0], rows.w[in_class[position].item<int64_t>()]), 1e-5) << "latent id " << k;
    }
  }
  // How draws differ between classes, batches and seeds: test_generation.cpp.
}

TEST(Pairs, EveryRowIsAcceptedAndClassesAreFull) {
  ScratchDir dir("pairs-accept");
  auto s = make_study(dir.path());
  const auto manifest = s.run();
  const auto rows = read_all_rows(manifest);
  ASSERT_EQ(manifest.classes.size(), 3u);
  EXPECT_EQ(manifest.total_rows, 3 * kSamplesPerClass);
  EXPECT_EQ(rows.r.size(0), manifest.total_rows);
  EXPECT_EQ(manifest.feature_dim, s.classifier.feature_dim());
  EXPECT_EQ(manifest.latent_dim, s.generator.w_dim());

  torch::NoGradGuard no_grad;
  auto predicted = s.classifier.head(rows.r).argmax(1);
  EXPECT_TRUE(torch::equal(predicted, rows.labels)) << "some kept rows are not classified as their class";
  for (const auto& c : manifest.classes) {
    EXPECT_EQ((rows.labels == c.generator_class).sum().item<int64_t>(), kSamplesPerClass);
    EXPECT_EQ(c.accepted, kSamplesPerClass);
    EXPECT_TRUE(c.done);
    // The samples after the one that completed the class are not judged.
    EXPECT_LE(c.drawn, c.batches_drawn * kBatchSize);
    EXPECT_GT(c.drawn, (c.batches_drawn - 1) * kBatchSize);
    EXPECT_GE(c.drawn, c.accepted);
  }
  // Shards: contiguous rows, each at least shard_size rows except the last.
  int64_t next_row = 0;
  for (size_t i = 0; i < manifest.shards.size(); ++i) {
    EXPECT_EQ(manifest.shards[i].first_row, next_row);
    if (i + 1 < manifest.shards.size()) {
      EXPECT_GE(manifest.shards[i].rows, kShardSize);
    }
    EXPECT_GT(manifest.shards[i].rows, 0);
    next_row += manifest.shards[i].rows;
  }
  EXPECT_EQ(next_row, manifest.total_rows);
  // The manifest on disk says the same, and no temporary files are left.
  const auto loaded = PairsManifest::load(s.config.pairs_folder());
  EXPECT_TRUE(loaded.complete);
  EXPECT_EQ(loaded.total_rows, manifest.total_rows);
  for (const auto& name : file_names(s.config.pairs_folder())) EXPECT_EQ(name.find(".tmp-"), std::string::npos) << name;
}

TEST(Pairs, ClassSubsetKeepsTheOrderAndMaxDrawsStopsAClass) {
  ScratchDir dir("pairs-subset");
  auto s = make_study(dir.path());
  s.config.pairs.classes = {2, 0};
  s.config.pairs.samples_per_class = 40;
  // Class 1's generator samples, judged as classifier class 0 among the top two: some pass, and
  // max draws ends the class before it is full.
  ScratchDir other("pairs-maxdraws");
  auto t = make_study(other.path());
  t.config.pairs.classes = {1};
  t.config.pairs.classifier_classes = {0};
  t.config.pairs.filter = "top-k 2";
  t.config.pairs.max_draws_per_class = 3 * kBatchSize;

  const auto manifest = s.run();
  const auto rows = read_all_rows(manifest);
  ASSERT_EQ(rows.labels.size(0), 80);
  EXPECT_TRUE(torch::equal(rows.labels.slice(0, 0, 40), torch::full({40}, 2, torch::kInt64)));
  EXPECT_TRUE(torch::equal(rows.labels.slice(0, 40, 80), torch::full({40}, 0, torch::kInt64)));

  const auto limited = t.run();
  ASSERT_EQ(limited.classes.size(), 1u);
  EXPECT_TRUE(limited.complete);
  EXPECT_TRUE(limited.classes[0].done);
  EXPECT_EQ(limited.classes[0].drawn, 3 * kBatchSize);
  EXPECT_LT(limited.classes[0].accepted, kSamplesPerClass);
  EXPECT_GT(limited.classes[0].accepted, 0);
  EXPECT_EQ(limited.total_rows, limited.classes[0].accepted);
  torch::NoGradGuard no_grad;
  const auto limited_rows = read_all_rows(limited);
  EXPECT_TRUE(torch::equal(limited_rows.labels, torch::full({limited.total_rows}, 1, torch::kInt64)));
  const auto logits = t.classifier.head(limited_rows.r);
  EXPECT_TRUE(((logits > logits.select(1, 0).unsqueeze(1)).sum(1) < 2).all().item<bool>());
}

TEST(Pairs, FiltersKeepWhatTheyNameAndTheAcceptanceCountsJudgedSamples) {
  torch::NoGradGuard no_grad;
  const int64_t wanted = 40;  // not a multiple of the batch: the last batch overshoots
  const auto run_with = [&](const ScratchDir& dir, const std::string& filter) {
    auto s = make_study(dir.path());
    s.config.pairs.samples_per_class = wanted;
    s.config.pairs.filter = filter;
    const auto manifest = s.run();
    for (const auto& c : manifest.classes) {
      int64_t rejected = 0;
      for (const auto& [predicted, times] : c.rejected_predicted_as) rejected += times;
      EXPECT_EQ(c.accepted + rejected, c.drawn) << filter << " " << c.name;
      EXPECT_LE(c.drawn, c.batches_drawn * kBatchSize);
      EXPECT_GT(c.drawn, (c.batches_drawn - 1) * kBatchSize);
    }
    return std::make_pair(manifest, s.classifier);
  };
  {
    ScratchDir dir("pairs-filter-none");
    const auto [manifest, classifier] = run_with(dir, "none");
    for (const auto& c : manifest.classes) {
      EXPECT_EQ(c.accepted, wanted);
      EXPECT_EQ(c.drawn, wanted) << "the samples after the 40th are not judged";
      EXPECT_DOUBLE_EQ(c.acceptance_rate(), 1.0);
    }
  }
  {
    ScratchDir dir("pairs-filter-top2");
    const auto [manifest, classifier] = run_with(dir, "top-k 2");
    const auto rows = read_all_rows(manifest);
    const auto logits = classifier.head(rows.r);
    const auto own = logits.gather(1, rows.labels.unsqueeze(1));
    EXPECT_TRUE(((logits > own).sum(1) < 2).all().item<bool>());
  }
  {
    ScratchDir dir("pairs-filter-probability");
    const auto [manifest, classifier] = run_with(dir, "min-probability 0.6");
    const auto rows = read_all_rows(manifest);
    const auto probability = classifier.head(rows.r).softmax(1).gather(1, rows.labels.unsqueeze(1));
    EXPECT_TRUE((probability >= 0.6).all().item<bool>());
    // The manifest keeps the filter and the rejected samples' predictions.
    const auto loaded = PairsManifest::load(manifest.folder);
    EXPECT_EQ(loaded.settings.value("filter", ""), "min-probability 0.6");
    for (size_t i = 0; i < loaded.classes.size(); ++i)
      EXPECT_EQ(loaded.classes[i].rejected_predicted_as, manifest.classes[i].rejected_predicted_as);
  }
}

TEST(Pairs, AClassWithNoPairIsAnErrorThatSaysWhatTheClassifierPredicted) {
  ScratchDir dir("pairs-none-kept");
  auto s = make_study(dir.path());
  // A classifier that always predicts class 1 ("lynx").
  torch::jit::Module stubborn("Stubborn");
  stubborn.register_attribute("class_names", c10::ListType::create(c10::StringType::get()),
                              c10::List<std::string>({"cat", "lynx", "tiger"}));
  stubborn.define(R"(
def features(self, x: Tensor) -> Tensor:
    return x.mean([2, 3])
def head(self, r: Tensor) -> Tensor:
    return torch.zeros([r.size(0), 3]) + torch.tensor([0.0, 5.0, 0.0]) + 0.0 * r.sum(1, keepdim=True)
)");
  const fs::path file = dir.path() / "stubborn.pt";
  {
    AtomicFile out(file);
    stubborn.save(out.stream());
    out.commit();
  }
  s.config.classifier = file;
  s.config.pairs.classes = {1, 0};
  s.config.pairs.max_draws_per_class = 2 * kBatchSize;
  const auto classifier = Classifier::load(file, c10::Device(c10::kCPU));
  try {
    generate_pairs(s.config, classifier, s.generator);
    FAIL() << "expected an error";
  } catch (const SettingError& error) {
    EXPECT_EQ(error.setting(), "pairs.filter");
    const std::string message = error.what();
    EXPECT_NE(message.find("kept none of the 64 samples drawn for class 0 (cat)"), std::string::npos) << message;
    EXPECT_NE(message.find("predicted 1 lynx (64x) instead"), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos);
  }
  // With no filter, the same draws are kept.
  s.config.pairs.filter = "none";
  fs::remove_all(s.config.pairs_folder());
  const auto manifest = generate_pairs(s.config, classifier, s.generator);
  EXPECT_EQ(manifest.total_rows, 2 * std::min<int64_t>(kSamplesPerClass, 2 * kBatchSize));
}

TEST(Pairs, ABatchBeyondTheMemoryBudgetIsRefusedWithOneThatFits) {
  ScratchDir dir("pairs-budget");
  auto s = make_study(dir.path());
  setenv("LINKSTYLE_MEMORY_BUDGET", "0.000001", 1);  // about 1 KiB: no batch fits
  try {
    s.run();
    ADD_FAILURE() << "expected an error";
  } catch (const SettingError& error) {
    EXPECT_EQ(error.setting(), "pairs.batch_size");
    EXPECT_NE(std::string(error.what()).find("more than the memory budget"), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("use at most 1"), std::string::npos) << error.what();
  }
  unsetenv("LINKSTYLE_MEMORY_BUDGET");
  EXPECT_FALSE(fs::exists(s.config.pairs_folder() / "manifest.json"));
  EXPECT_EQ(s.run().total_rows, 3 * kSamplesPerClass);
}

TEST(Pairs, ResumingWithOtherSettingsOrModelsIsAnError) {
  ScratchDir dir("pairs-settings"), other_models("pairs-other-models");
  auto s = make_study(dir.path());
  EXPECT_THROW(s.run(1), Cancelled);
  const std::string manifest_before = bytes_of(s.config.pairs_folder() / "manifest.json");

  auto changed = s;
  changed.config.pairs.psi = 0.5;
  expect_error([&] { changed.run(); }, "manifest.json", "settings");
  changed = s;
  changed.config.pairs.shard_size = kShardSize + 1;
  expect_error([&] { changed.run(); }, "manifest.json", "settings");
  changed = s;
  changed.config.pairs.seed = 99;
  expect_error([&] { changed.run(); }, "manifest.json", "settings");
  changed = s;
  changed.config.pairs.holdout_fraction = 0.3;
  expect_error([&] { changed.run(); }, "manifest.json", "settings");

  TinyModelSpec spec;
  spec.seed = 1;
  const auto models = write_tiny_models(other_models.path(), spec);
  changed = s;
  changed.generator = Generator::load(models.generator, c10::Device(c10::kCPU));
  changed.config.generator = models.generator;
  expect_error([&] { changed.run(); }, "manifest.json", "generator");
  changed = s;
  changed.classifier = Classifier::load(models.classifier, c10::Device(c10::kCPU));
  changed.config.classifier = models.classifier;
  expect_error([&] { changed.run(); }, "manifest.json", "classifier");
  // Nothing was changed by the refused runs.
  EXPECT_EQ(bytes_of(s.config.pairs_folder() / "manifest.json"), manifest_before);

  // The original settings resume, and a complete run still refuses other settings.
  EXPECT_TRUE(s.run().complete);
  changed = s;
  changed.config.pairs.psi = 0.5;
  expect_error([&] { changed.run(); }, "manifest.json", "settings");
}

TEST(Pairs, SavedStatisticsEqualRecomputedOnes) {
  ScratchDir dir("pairs-stats");
  auto s = make_study(dir.path());
  const auto manifest = s.run();
  const double holdout = s.config.pairs.holdout_fraction;
  ASSERT_FALSE(manifest.statistics.empty());
  EXPECT_EQ(manifest.statistics_holdout_fraction, holdout);

  // The statistics file against statistics of the training rows, accumulated here.
  const auto saved = LinkingStatistics::load(manifest.folder / manifest.statistics);
  LinkingStatistics recomputed(manifest.feature_dim, manifest.latent_dim);
  const auto rows = read_all_rows(manifest);
  std::vector<int64_t> training, held_out;
  for (int64_t i = 0; i < manifest.total_rows; ++i) (is_held_out(i, holdout) ? held_out : training).push_back(i);
  ASSERT_FALSE(held_out.empty());
  auto training_index = torch::tensor(training, torch::kInt64);
  recomputed.add(rows.r.index_select(0, training_index), rows.w.index_select(0, training_index));
  EXPECT_EQ(saved.count(), static_cast<int64_t>(training.size()));
  EXPECT_EQ(saved.count(), recomputed.count());
  EXPECT_LE(max_abs_difference(saved.feature_mean(), recomputed.feature_mean()), 1e-6);
  EXPECT_LE(max_abs_difference(saved.latent_mean(), recomputed.latent_mean()), 1e-6);
  const auto scale_rr = recomputed.centred_feature_gram().abs().max().item<double>();
  const auto scale_rw = recomputed.centred_cross().abs().max().item<double>();
  EXPECT_LE(max_abs_difference(saved.centred_feature_gram(), recomputed.centred_feature_gram()), 1e-5 * scale_rr);
  EXPECT_LE(max_abs_difference(saved.centred_cross(), recomputed.centred_cross()), 1e-5 * scale_rw);
  EXPECT_LE(max_abs_difference(saved.latent_total_sum_of_squares(), recomputed.latent_total_sum_of_squares()),
            1e-5 * recomputed.latent_total_sum_of_squares().abs().max().item<double>());

  // fit_from_pairs with the saved statistics and with recomputed ones gives the same network.
  const auto reused = fit_from_pairs(manifest, FitOptions{}, holdout, false);
  const auto fresh = fit_from_pairs(manifest, FitOptions{}, holdout, true);
  EXPECT_TRUE(reused.statistics_reused);
  EXPECT_FALSE(fresh.statistics_reused);
  EXPECT_LE(max_abs_difference(reused.network.weight, fresh.network.weight), 1e-5);
  EXPECT_LE(max_abs_difference(reused.network.bias, fresh.network.bias), 1e-5);
  EXPECT_EQ(reused.network.metadata["training_pairs"].get<int64_t>(), static_cast<int64_t>(training.size()));
  EXPECT_EQ(reused.held_out.value("pairs", int64_t{0}), static_cast<int64_t>(held_out.size()));
  EXPECT_NEAR(reused.held_out.value("r2", 0.0), fresh.held_out.value("r2", 1.0), 1e-5);
  EXPECT_EQ(reused.network.metadata["models"], manifest.models);

  // Another holdout fraction cannot reuse them.
  const auto other = fit_from_pairs(manifest, FitOptions{}, 0.5, false);
  EXPECT_FALSE(other.statistics_reused);
  EXPECT_NE(other.network.metadata["training_pairs"].get<int64_t>(), static_cast<int64_t>(training.size()));
}

TEST(Pairs, FitOnIncompletePairsIsAnError) {
  ScratchDir dir("pairs-incomplete");
  auto s = make_study(dir.path());
  expect_error([&] { PairsManifest::load(s.config.pairs_folder()); }, "manifest.json");
  EXPECT_THROW(s.run(1), Cancelled);
  const auto manifest = PairsManifest::load(s.config.pairs_folder());
  ASSERT_FALSE(manifest.complete);
  expect_error([&] { fit_from_pairs(manifest, FitOptions{}, 0.2, false); }, "manifest.json", "incomplete");
  expect_error([&] { fit_from_pairs(manifest, FitOptions{}, 0.2, true); }, "manifest.json", "incomplete");
}

TEST(Pairs, CorruptFilesAreErrorsNamingThem) {
  ScratchDir dir("pairs-corrupt");
  auto s = make_study(dir.path());
  s.run();
  const fs::path shard = s.config.pairs_folder() / "r-00000.npy";
  ASSERT_TRUE(fs::exists(shard));
  fs::resize_file(shard, fs::file_size(shard) / 2);
  const auto manifest = PairsManifest::load(s.config.pairs_folder());
  expect_error([&] { fit_from_pairs(manifest, FitOptions{}, 0.2, true); }, "r-00000.npy");
  // With saved statistics, the held-out rows are still read from the shards.
  expect_error([&] { fit_from_pairs(manifest, FitOptions{}, 0.2, false); }, "r-00000.npy");

  // A shard with the wrong shape (a valid .npy, but not what the manifest lists).
  write_npy(shard, torch::zeros({3, 5}, torch::kFloat32));
  expect_error([&] { fit_from_pairs(manifest, FitOptions{}, 0.2, true); }, "r-00000.npy");
  // A corrupt manifest.
  write_file_atomically(s.config.pairs_folder() / "manifest.json", "{\"format\": \"linkstyle-pairs-1\", \"models\": ");
  expect_error([&] { PairsManifest::load(s.config.pairs_folder()); }, "manifest.json");
  expect_error([&] { s.run(); }, "manifest.json");
}

TEST(Pairs, MissingShardIsAnErrorNamingIt) {
  ScratchDir dir("pairs-missing-shard");
  auto s = make_study(dir.path());
  const auto manifest = s.run();
  fs::remove(s.config.pairs_folder() / "w-00001.npy");
  expect_error([&] { fit_from_pairs(manifest, FitOptions{}, 0.2, true); }, "w-00001.npy");
}

}  // namespace
}  // namespace linkstyle
