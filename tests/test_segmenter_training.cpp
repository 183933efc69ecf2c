// Tests for the shapes segmenter (train/segmenter_training.hpp): the metrics on hand-made masks, a
// short smoke run and the segmenter contract of its result, resuming from a checkpoint, seeding,
// bad options, and the CLI's train/eval segmenter.
#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/script.h>
#include <torch/torch.h>

#include "linkstyle/errors.hpp"
#include "linkstyle/train/segmenter_training.hpp"
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
  EXPECT_EQ(line, "step,loss,pixel_accuracy,seconds");
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

SegmenterTrainingOptions small_run(const fs::path& output, int64_t steps) {
  SegmenterTrainingOptions options;
  options.output = output;
  options.steps = steps;
  options.seed = 3;
  options.batch_size = 4;
  options.checkpoint_every = 4;
  options.test_images = 12;
  options.progress = false;
  return options;
}

TEST(SegmentationMetrics, CountsIntersectionOverUnionOverAllImages) {
  // Two 2x2 images, labels 0..3 of 4 (label 3 never in the truth).
  const auto truth = torch::tensor({0, 0, 1, 1, 0, 2, 2, 2}, torch::kLong).view({2, 2, 2});
  const auto predicted = torch::tensor({0, 1, 1, 1, 0, 2, 2, 3}, torch::kLong).view({2, 2, 2});
  const auto m = segmentation_metrics(predicted, truth, 4);
  ASSERT_EQ(m.part_iou.size(), 4u);
  EXPECT_DOUBLE_EQ(m.part_iou[0], 2.0 / 3.0);  // truth {0,1,4}, predicted {0,4}
  EXPECT_DOUBLE_EQ(m.part_iou[1], 2.0 / 3.0);  // truth {2,3}, predicted {1,2,3}
  EXPECT_DOUBLE_EQ(m.part_iou[2], 2.0 / 3.0);  // truth {5,6,7}, predicted {5,6}
  EXPECT_TRUE(std::isnan(m.part_iou[3]));      // absent from the truth: left out of the mean
  EXPECT_DOUBLE_EQ(m.mean_iou, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(m.pixel_accuracy, 6.0 / 8.0);
  EXPECT_EQ(m.truth_pixels, (std::vector<int64_t>{3, 2, 3, 0}));
  EXPECT_EQ(m.images, 2);
  EXPECT_DOUBLE_EQ(segmentation_metrics(truth, truth, 4).mean_iou, 1.0);

  testing::expect_error([&] { segmentation_metrics(predicted, truth, 3); }, {"[0, 3)"});
  testing::expect_error([&] { segmentation_metrics(predicted.view({2, 4}), truth.view({2, 4}), 4); }, {"[N,H,W]"});
}

TEST(SegmenterTraining, UntrainedModuleMeetsTheContract) {
  torch::NoGradGuard no_grad;
  auto module = build_unet_segmenter(ShapesWorld::part_names(), 1);
  EXPECT_EQ(module.attr("resolution").toInt(), 32);
  EXPECT_EQ(module.attr("part_names").toListRef().size(), 18u);
  const auto logits = module.get_method("segment")({torch::rand({2, 3, 32, 32})}).toTensor();
  EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{2, 18, 32, 32}));
  // Fully convolutional: other sizes give logits of their size.
  EXPECT_EQ(module.get_method("segment")({torch::rand({1, 3, 48, 40})}).toTensor().sizes(),
            (std::vector<int64_t>{1, 18, 48, 40}));
  // Same seed, same weights.
  auto again = build_unet_segmenter(ShapesWorld::part_names(), 1);
  const auto x = torch::rand({1, 3, 32, 32});
  EXPECT_TRUE(torch::equal(module.forward({x}).toTensor(), again.forward({x}).toTensor()));
}

TEST(SegmenterTraining, SmokeRunWritesModelCardAndLog) {
  ScratchDir dir("segmenter_training_smoke");
  const auto result = train_segmenter(small_run(dir / "seg.pt", 8));
  EXPECT_EQ(result.steps, 8);
  EXPECT_EQ(result.resumed_from, 0);
  ASSERT_TRUE(fs::exists(result.model));
  EXPECT_LE(fs::file_size(result.model), 5u * 1024 * 1024);

  const auto rows = read_log(result.log);
  ASSERT_EQ(rows.size(), 8u);
  for (size_t i = 0; i < rows.size(); ++i) EXPECT_EQ(rows[i].step, static_cast<int64_t>(i + 1));
  EXPECT_NEAR(rows[0].loss, std::log(18.0), 0.5);  // near-uniform start
  EXPECT_LT(rows[7].loss, rows[0].loss);

  // The saved file is plain TorchScript: torch::jit::load and segment() give [N,18,H,W].
  torch::NoGradGuard no_grad;
  auto module = torch::jit::load(result.model.string());
  module.eval();
  const auto images = ShapesWorld(32).render_class_balanced(3, 5).images;
  EXPECT_EQ(module.get_method("segment")({images}).toTensor().sizes(), (std::vector<int64_t>{3, 18, 32, 32}));
  for (const auto& p : module.parameters()) EXPECT_FALSE(p.requires_grad());

  std::ifstream card_in(result.card);
  const auto card = nlohmann::json::parse(card_in);
  EXPECT_EQ(card.at("world"), "shapes");
  EXPECT_EQ(card.at("steps"), 8);
  EXPECT_EQ(card.at("seed"), 3);
  EXPECT_EQ(card.at("resolution"), 32);
  EXPECT_EQ(card.at("part_names").get<std::vector<std::string>>(), ShapesWorld::part_names());
  EXPECT_DOUBLE_EQ(card.at("mean_iou").get<double>(), result.test.mean_iou);
  EXPECT_DOUBLE_EQ(card.at("pixel_accuracy").get<double>(), result.test.pixel_accuracy);
  EXPECT_EQ(card.at("part_iou").size(), 18u);
  EXPECT_TRUE(card.contains("git_revision"));
  EXPECT_TRUE(card.contains("command_line"));
  EXPECT_TRUE(card.contains("training_seconds"));

  // The evaluation function gives the figures of the card.
  auto loaded = load_segmenter(result.model);
  const auto metrics = segmenter_test_metrics(loaded, 12);
  EXPECT_DOUBLE_EQ(metrics.mean_iou, result.test.mean_iou);
  EXPECT_GT(metrics.pixel_accuracy, 0.0);
  EXPECT_EQ(metrics.images, 12);
}

TEST(SegmenterTraining, ResumesFromTheCheckpointWithoutGapsOrDuplicates) {
  ScratchDir dir("segmenter_training_resume");
  const auto first = train_segmenter(small_run(dir / "m.pt", 4));
  EXPECT_EQ(first.steps, 4);
  ASSERT_TRUE(fs::exists(first.checkpoint));
  // A stale log row past the checkpoint (as after kill -9) is redone, not duplicated.
  { std::ofstream(first.log, std::ios::app) << "5,9.0,0.0,1.0\n"; }
  const auto second = train_segmenter(small_run(dir / "m.pt", 6));
  EXPECT_EQ(second.resumed_from, 4);
  EXPECT_EQ(second.steps, 6);
  EXPECT_GE(second.training_seconds, first.training_seconds);
  const auto rows = read_log(second.log);
  ASSERT_EQ(rows.size(), 6u);
  for (size_t i = 0; i < rows.size(); ++i) EXPECT_EQ(rows[i].step, static_cast<int64_t>(i + 1));
  EXPECT_LT(rows[4].loss, 5.0);  // the stale row was replaced

  // Seeded: a second run of the first one's length sees the same batches from the same weights
  // (the length matters: it sets the learning-rate schedule).
  const auto straight = train_segmenter(small_run(dir / "straight.pt", 4));
  const auto straight_rows = read_log(straight.log);
  ASSERT_EQ(straight_rows.size(), 4u);
  for (size_t i = 0; i < 4; ++i) EXPECT_DOUBLE_EQ(straight_rows[i].loss, rows[i].loss) << i;

  // A checkpoint made with other options is refused, naming it.
  auto other = small_run(dir / "m.pt", 8);
  other.batch_size = 5;
  testing::expect_error([&] { train_segmenter(other); }, {"checkpoint.pt", "batch size 4"});
}

TEST(SegmenterTraining, RejectsBadOptionsAndFiles) {
  ScratchDir dir("segmenter_training_bad");
  const auto good = small_run(dir / "m.pt", 1);
  auto expect_option_error = [&](auto change, const std::string& option) {
    auto options = good;
    change(options);
    testing::expect_error([&] { train_segmenter(options); }, {option});
  };
  expect_option_error([](auto& o) { o.steps = 0; }, "--steps");
  expect_option_error([](auto& o) { o.batch_size = 0; }, "--batch-size");
  expect_option_error([](auto& o) { o.checkpoint_every = 0; }, "--checkpoint-every");
  expect_option_error([](auto& o) { o.learning_rate = 0; }, "--learning-rate");
  expect_option_error([](auto& o) { o.test_images = 0; }, "--test-images");
  expect_option_error([](auto& o) { o.resolution = 30; }, "--resolution");
  expect_option_error([](auto& o) { o.seed = uint64_t{1} << 22; }, "--seed");
  expect_option_error([](auto& o) { o.output.clear(); }, "--output");
  EXPECT_FALSE(fs::exists(dir / "m.pt"));

  testing::expect_error([&] { load_segmenter(dir / "none.pt"); }, {"none.pt"});
  { std::ofstream(dir / "junk.pt") << "not a zip archive"; }
  testing::expect_error([&] { load_segmenter(dir / "junk.pt"); }, {"junk.pt"});
  // A TorchScript file without segment() is not a segmenter.
  torch::jit::Module other("Other");
  other.define("def forward(self, x: Tensor) -> Tensor:\n    return x\n");
  other.save((dir / "other.pt").string());
  testing::expect_error([&] { load_segmenter(dir / "other.pt"); }, {"other.pt", "segment"});
}

TEST(SegmenterTraining, CommandLineTrainsAndEvaluates) {
  ScratchDir dir("segmenter_training_cli");
  const std::string model = (dir / "s.pt").string();
  const auto train = testing::run_cli("--threads 1 --json train segmenter -o '" + model +
                                      "' --steps 3 --batch-size 2 --test-images 6");
  ASSERT_EQ(train.exit_code, 0) << train.output;
  const auto summary = nlohmann::json::parse(train.output.substr(train.output.find('{')));
  EXPECT_EQ(summary.at("steps"), 3);
  EXPECT_EQ(summary.at("test_images"), 6);
  EXPECT_EQ(summary.at("part_iou").size(), 18u);
  std::ifstream card_in(model + ".json");
  const auto card = nlohmann::json::parse(card_in);
  EXPECT_NE(card.at("command_line").get<std::string>().find("train segmenter"), std::string::npos);

  const auto eval = testing::run_cli("--threads 1 eval segmenter '" + model + "' --test-images 6");
  ASSERT_EQ(eval.exit_code, 0) << eval.output;
  EXPECT_NE(eval.output.find("mean IoU"), std::string::npos) << eval.output;
  EXPECT_NE(eval.output.find("background"), std::string::npos) << eval.output;
  const auto eval_json = testing::run_cli("--json eval segmenter '" + model + "' --test-images 6");
  ASSERT_EQ(eval_json.exit_code, 0) << eval_json.output;
  const auto figures = nlohmann::json::parse(eval_json.output.substr(eval_json.output.find('{')));
  EXPECT_DOUBLE_EQ(figures.at("mean_iou").get<double>(), card.at("mean_iou").get<double>());

  const auto bad = testing::run_cli("train segmenter -o '" + (dir / "b.pt").string() + "' --steps 0");
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_NE(bad.output.find("--steps"), std::string::npos) << bad.output;
}

}  // namespace
}  // namespace linkstyle
