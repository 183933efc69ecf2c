// Tests for classifier training (train/classifier_training.hpp): a short smoke run on the shapes
// world, the model contract of the result, and resuming from a checkpoint.
#include <fstream>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/script.h>
#include <torch/torch.h>

#include "linkstyle/errors.hpp"
#include "linkstyle/models.hpp"
#include "linkstyle/tiny_models.hpp"
#include "linkstyle/train/classifier_training.hpp"
#include "linkstyle/worlds/shapes.hpp"
#include "test_support.hpp"

namespace linkstyle {
namespace {

namespace fs = std::filesystem;
using testing::ScratchDir;

struct LogRow {
  int64_t step;
  double loss, accuracy, seconds;
};

std::vector<LogRow> read_log(const fs::path& file) {
  std::ifstream in(file);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "step,loss,train_accuracy,seconds");
  std::vector<LogRow> rows;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    LogRow row{};
    char comma = 0;
    fields >> row.step >> comma >> row.loss >> comma >> row.accuracy >> comma >> row.seconds;
    EXPECT_FALSE(fields.fail()) << line;
    rows.push_back(row);
  }
  return rows;
}

ClassifierTrainingOptions small_run(const fs::path& output, int64_t steps) {
  ClassifierTrainingOptions options;
  options.world = "shapes";
  options.output = output;
  options.steps = steps;
  options.seed = 3;
  options.batch_size = 24;
  options.checkpoint_every = 5;
  options.test_images = 60;
  options.learning_rate = 5e-3;
  options.progress = false;
  return options;
}

TEST(ClassifierTraining, SmokeRunLearnsAndMeetsTheContract) {
  ScratchDir dir("classifier_training_smoke");
  const auto result = train_classifier(small_run(dir / "shapes.pt", 30));
  EXPECT_EQ(result.steps, 30);
  EXPECT_EQ(result.resumed_from, 0);

  const auto rows = read_log(result.log);
  ASSERT_EQ(rows.size(), 30u);
  auto mean_loss = [&](size_t from, size_t to) {
    double sum = 0;
    for (size_t i = from; i < to; ++i) sum += rows[i].loss;
    return sum / static_cast<double>(to - from);
  };
  EXPECT_NEAR(rows[0].loss, std::log(6.0), 0.3);  // near-uniform start
  EXPECT_LT(mean_loss(25, 30), mean_loss(0, 5) - 0.2);

  torch::NoGradGuard no_grad;
  const auto classifier = Classifier::load(result.model, c10::Device(c10::kCPU));
  EXPECT_EQ(classifier.feature_dim(), 256);
  EXPECT_EQ(classifier.num_classes(), 6);
  EXPECT_EQ(classifier.class_names(), ShapesWorld::class_names());
  const auto images = ShapesWorld(64).render_class_balanced(6, 99).images;
  const auto r = classifier.features(images);
  EXPECT_GE(r.min().item<double>(), 0.0);
  EXPECT_EQ(classifier.head(r).sizes(), (std::vector<int64_t>{6, 6}));
  // Any input size is resized by the module itself.
  EXPECT_EQ(classifier.features(torch::rand({2, 3, 40, 40})).sizes(), (std::vector<int64_t>{2, 256}));

  std::ifstream card_in(result.card);
  const auto card = nlohmann::json::parse(card_in);
  EXPECT_EQ(card.at("world"), "shapes");
  EXPECT_EQ(card.at("steps"), 30);
  EXPECT_EQ(card.at("seed"), 3);
  EXPECT_DOUBLE_EQ(card.at("test_accuracy").get<double>(), result.test_accuracy);
  EXPECT_TRUE(card.contains("git_revision"));
  EXPECT_TRUE(card.contains("training_seconds"));
  EXPECT_DOUBLE_EQ(classifier_test_accuracy(classifier, "shapes", 60), result.test_accuracy);
}

TEST(ClassifierTraining, ResumesFromTheCheckpoint) {
  ScratchDir dir("classifier_training_resume");
  const auto first = train_classifier(small_run(dir / "m.pt", 10));
  EXPECT_EQ(first.steps, 10);
  ASSERT_TRUE(fs::exists(first.checkpoint));
  // A stale log row past the checkpoint (as after kill -9) is redone, not duplicated.
  { std::ofstream(first.log, std::ios::app) << "11,9.0,0.0,1.0\n"; }
  const auto second = train_classifier(small_run(dir / "m.pt", 15));
  EXPECT_EQ(second.resumed_from, 10);
  EXPECT_EQ(second.steps, 15);
  EXPECT_GE(second.training_seconds, first.training_seconds);
  const auto rows = read_log(second.log);
  ASSERT_EQ(rows.size(), 15u);
  for (size_t i = 0; i < rows.size(); ++i) EXPECT_EQ(rows[i].step, static_cast<int64_t>(i + 1));
  EXPECT_LT(rows[10].loss, 5.0);  // the stale row was replaced
  EXPECT_EQ(Classifier::load(second.model, c10::Device(c10::kCPU)).num_classes(), 6);

  // A checkpoint made with other options is refused, naming it.
  auto other = small_run(dir / "m.pt", 20);
  other.seed = 4;
  EXPECT_THROW(train_classifier(other), Error);
}

TEST(ClassifierTraining, RejectsBadOptions) {
  ScratchDir dir("classifier_training_bad");
  auto options = small_run(dir / "m.pt", 0);
  EXPECT_THROW(train_classifier(options), Error);
  options.steps = 1;
  options.world = "mnist";
  EXPECT_THROW(train_classifier(options), Error);
}

}  // namespace
}  // namespace linkstyle

namespace linkstyle {
namespace {

// The stage outputs read by the projected discriminator are the features' own computation.
void expect_pyramid_matches_features(torch::jit::Module& module) {
  torch::NoGradGuard no_grad;
  const auto x = torch::rand({3, 3, 32, 32});
  const auto stages = module.get_method("feature_pyramid")({x}).toTensorList();
  ASSERT_EQ(stages.size(), 4u);
  const std::vector<int64_t> channels = {32, 64, 128, 256}, sides = {32, 16, 8, 4};
  for (size_t i = 0; i < 4; ++i) {
    const torch::Tensor stage = stages.get(i);
    EXPECT_EQ(stage.size(1), channels[i]);
    EXPECT_EQ(stage.size(2), sides[i]);
  }
  const auto features = module.get_method("features")({x}).toTensor();
  EXPECT_TRUE(torch::allclose(stages.get(3).mean({2, 3}), features, 1e-5, 1e-6));
}

TEST(FeaturePyramid, NewClassifiersHaveIt) {
  auto module = build_resnet_classifier(world_class_names("shapes"), 4);
  expect_pyramid_matches_features(module);
}

TEST(FeaturePyramid, IsAddedToAShippedClassifierWrittenWithoutIt) {
  const fs::path file = fs::path(LINKSTYLE_SOURCE_DIR) / "models" / "shapes" / "classifier.pt";
  auto module = torch::jit::load(file.string());
  define_feature_pyramid(module, file);
  expect_pyramid_matches_features(module);
  define_feature_pyramid(module, file);  // a second call changes nothing
}

TEST(FeaturePyramid, RefusesAForeignClassifier) {
  testing::ScratchDir dir("feature_pyramid_foreign");
  const auto tiny = write_tiny_models(dir.path());
  auto module = torch::jit::load(tiny.classifier.string());
  testing::expect_error([&] { define_feature_pyramid(module, tiny.classifier); },
                        {tiny.classifier.filename().string(), "built-in"});
}

}  // namespace
}  // namespace linkstyle
