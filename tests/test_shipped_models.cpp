// The models that ship in models/: they load through the contract and still meet their bars on
// fresh held-out samples (CI never retrains; it evaluates what ships).
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "linkstyle/models.hpp"
#include "linkstyle/train/classifier_training.hpp"
#include "linkstyle/train/segmenter_training.hpp"
#include "linkstyle/worlds/shapes.hpp"

namespace fs = std::filesystem;
using namespace linkstyle;

namespace {

const fs::path kModels = fs::path(LINKSTYLE_SOURCE_DIR) / "models";

nlohmann::json read_card(const fs::path& model) {
  fs::path card = model;
  card += ".json";
  std::ifstream in(card);
  EXPECT_TRUE(in.good()) << "no model card " << card;
  return in.good() ? nlohmann::json::parse(in) : nlohmann::json::object();
}

}  // namespace

TEST(ShippedModels, ShapesClassifierMeetsItsBar) {
  const fs::path file = kModels / "shapes" / "classifier.pt";
  auto classifier = Classifier::load(file, c10::Device(c10::kCPU));
  EXPECT_EQ(classifier.feature_dim(), 256);
  EXPECT_EQ(classifier.num_classes(), 6);
  EXPECT_EQ(classifier.class_names(), world_class_names("shapes"));

  // Held-out rendered images (seeds disjoint from training), a small sample to stay fast.
  const double accuracy = classifier_test_accuracy(classifier, "shapes", 300, "");
  EXPECT_GE(accuracy, 0.98);

  auto card = read_card(file);
  EXPECT_EQ(card.value("world", ""), "shapes");
  EXPECT_GE(card.value("test_accuracy", 0.0), 0.98);
  EXPECT_FALSE(card.value("command_line", "").empty());
  EXPECT_NE(card.value("git_revision", "unknown"), "unknown");
  EXPECT_LE(fs::file_size(file), 25u * 1024 * 1024);
}

TEST(ShippedModels, ShapesSegmenterMeetsItsBar) {
  const fs::path file = kModels / "shapes" / "segmenter.pt";
  auto segmenter = load_segmenter(file);  // checks the contract (segment, part_names, resolution)
  EXPECT_EQ(segmenter.attr("resolution").toInt(), 32);

  // Held-out rendered images (seeds disjoint from training), a small sample to stay fast.
  const auto metrics = segmenter_test_metrics(segmenter, 200);
  EXPECT_GE(metrics.mean_iou, 0.80);
  EXPECT_EQ(metrics.part_iou.size(), ShapesWorld::part_names().size());

  auto card = read_card(file);
  EXPECT_EQ(card.value("world", ""), "shapes");
  EXPECT_EQ(card.value("resolution", 0), 32);
  EXPECT_GE(card.value("mean_iou", 0.0), 0.80);
  EXPECT_TRUE(card.contains("pixel_accuracy"));
  EXPECT_EQ(card.value("part_iou", nlohmann::json::object()).size(), ShapesWorld::part_names().size());
  EXPECT_TRUE(card.contains("seed"));
  EXPECT_GT(card.value("steps", 0), 0);
  EXPECT_FALSE(card.value("command_line", "").empty());
  EXPECT_NE(card.value("git_revision", "unknown"), "unknown");
  EXPECT_LE(fs::file_size(file), 5u * 1024 * 1024);
}
