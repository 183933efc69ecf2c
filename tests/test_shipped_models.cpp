// The models that ship in models/: they load through the contract and still meet their bars on
// fresh held-out samples (CI never retrains; it evaluates what ships).
#include <cmath>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "linkstyle/counterfactual.hpp"
#include "linkstyle/generation.hpp"
#include "linkstyle/models.hpp"
#include "linkstyle/planted_unit_scoring.hpp"
#include "linkstyle/planted_units.hpp"
#include "linkstyle/train/classifier_training.hpp"
#include "linkstyle/train/generator_training.hpp"
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

// Figures of a shipped generator on a fresh sample (seed 1; the card's figures use seed 0).
void expect_generator_meets_its_bar(const std::string& world, double agreement_bar) {
  const fs::path file = kModels / world / "generator.pt";
  const auto generator = Generator::load(file, c10::Device(c10::kCPU));
  const auto classifier = Classifier::load(kModels / world / "classifier.pt", c10::Device(c10::kCPU));
  EXPECT_EQ(generator.resolution(), 32);
  EXPECT_TRUE(generator.has_synthesis_features());
  const auto e = evaluate_generator(generator, classifier, world, 150, 0.7, 1);
  EXPECT_GE(e.agreement, agreement_bar);
  EXPECT_GE(e.diversity_ratio, 0.60);

  auto card = read_card(file);
  EXPECT_EQ(card.value("world", ""), world);
  EXPECT_GE(card["evaluation"].value("agreement", 0.0), agreement_bar);
  EXPECT_GE(card["evaluation"].value("diversity_ratio", 0.0), 0.60);
  EXPECT_EQ(card["evaluation"].value("samples_per_class", 0), 1000);
  EXPECT_EQ(card.value("classifier_fingerprint", ""), file_fingerprint(kModels / world / "classifier.pt"));
  EXPECT_FALSE(card.value("command_line", "").empty());
  EXPECT_NE(card.value("git_revision", "unknown"), "unknown");
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

TEST(ShippedModels, PlantedShapesClassifierMeetsItsBars) {
  // Class accuracy >= 99%, every planted unit tracks its target at r >= 0.95 on fresh renders,
  // and no free unit does. (The units that training could not bring to r 0.96 were released as
  // free units, listed in the card under not_planted; trained toward their factor, they stay
  // correlated with it, below that bar.)
  const fs::path file = kModels / "shapes" / "planted_classifier.pt";
  const auto classifier = Classifier::load(file, c10::Device(c10::kCPU));
  EXPECT_EQ(classifier.feature_dim(), 256);
  EXPECT_EQ(classifier.class_names(), world_class_names("shapes"));
  auto card = read_card(file);
  ASSERT_EQ(classifier.planted_units().size(), card["planted_units"].size());
  EXPECT_EQ(card["planted_units"].size() + card["not_planted"].size(), default_planted_units().size());
  EXPECT_GE(classifier.planted_units().size(), 9u);
  EXPECT_GE(classifier_test_accuracy(classifier, "shapes", 300, ""), 0.99);
  const auto check = check_planted_units(classifier, 600, 11);
  for (size_t k = 0; k < check.correlation.size(); ++k)
    EXPECT_GE(check.correlation[k], 0.95) << classifier.planted_units()[k].name();
  EXPECT_LT(std::fabs(check.largest_free_correlation), 0.97)
      << "unit " << check.largest_free_unit << " with " << check.largest_free_target;

  EXPECT_EQ(card.value("world", ""), "shapes");
  EXPECT_GE(card.value("test_accuracy", 0.0), 0.99);
  EXPECT_FALSE(card.value("command_line", "").empty());
  EXPECT_NE(card.value("git_revision", "unknown"), "unknown");
}

TEST(ShippedModels, FashionClassifierMeetsItsBar) {
  const fs::path file = kModels / "fashion" / "classifier.pt";
  auto classifier = Classifier::load(file, c10::Device(c10::kCPU));
  EXPECT_EQ(classifier.feature_dim(), 256);
  EXPECT_EQ(classifier.num_classes(), 10);
  EXPECT_EQ(classifier.class_names(), world_class_names("fashion"));
  // The whole 10k test split (about 10 s on one thread).
  const double accuracy = classifier_test_accuracy(classifier, "fashion");
  EXPECT_GE(accuracy, 0.91);

  auto card = read_card(file);
  EXPECT_EQ(card.value("world", ""), "fashion");
  EXPECT_NEAR(card.value("test_accuracy", 0.0), accuracy,
              5e-4);  // a few borderline images may flip with the thread count
  EXPECT_FALSE(card.value("command_line", "").empty());
  EXPECT_NE(card.value("git_revision", "unknown"), "unknown");
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

TEST(ShippedModels, ShapesGeneratorMeetsItsBar) { expect_generator_meets_its_bar("shapes", 0.90); }
TEST(ShippedModels, FashionGeneratorMeetsItsBar) { expect_generator_meets_its_bar("fashion", 0.85); }

// The faithful shapes generator (trained against the renderer): its own bars on a fresh sample at
// psi 1, where it samples the world's own factor distribution, and a Frechet distance of the
// classifier features at most a quarter of the GAN's at the same psi and sample size.
TEST(ShippedModels, ShapesFaithfulGeneratorMeetsItsBar) {
  const fs::path file = kModels / "shapes" / "faithful_generator.pt";
  const auto generator = Generator::load(file, c10::Device(c10::kCPU));
  const auto gan = Generator::load(kModels / "shapes" / "generator.pt", c10::Device(c10::kCPU));
  const auto classifier = Classifier::load(kModels / "shapes" / "classifier.pt", c10::Device(c10::kCPU));
  EXPECT_EQ(generator.z_dim(), 17);
  EXPECT_TRUE(generator.has_synthesis_features());
  // 400 per class: the Frechet distance's small-sample bias (about 150 / N here) would dominate
  // the faithful generator's at 150 per class.
  const auto e = evaluate_generator(generator, classifier, "shapes", 400, 1.0, 1);
  EXPECT_GE(e.agreement, 0.99);
  EXPECT_GE(e.diversity_ratio, 0.90);
  EXPECT_GE(e.colour_diversity_ratio, 0.90);
  const auto g = evaluate_generator(gan, classifier, "shapes", 400, 1.0, 1);
  EXPECT_LE(e.frechet_distance, 0.25 * g.frechet_distance) << e.frechet_distance << " vs the GAN's " << g.frechet_distance;

  auto card = read_card(file);
  EXPECT_EQ(card.value("world", ""), "shapes");
  EXPECT_EQ(card.value("z_dim", 0), 17);
  ASSERT_TRUE(card.contains("evaluation_psi_1"));
  EXPECT_GE(card["evaluation_psi_1"].value("agreement", 0.0), 0.99);
  EXPECT_EQ(card.value("classifier_fingerprint", ""), file_fingerprint(kModels / "shapes" / "classifier.pt"));
  EXPECT_NE(card.value("git_revision", "unknown"), "unknown");
}

// The counterfactuals' judge: another architecture and seed than the classifier, the same classes.
TEST(ShippedModels, ShapesJudgeMeetsItsBarAndIsAnotherNetwork) {
  const fs::path file = kModels / "shapes" / "judge.pt";
  const auto judge = Classifier::load(file, c10::Device(c10::kCPU));
  const auto classifier = Classifier::load(kModels / "shapes" / "classifier.pt", c10::Device(c10::kCPU));
  EXPECT_EQ(judge.class_names(), classifier.class_names());
  EXPECT_NE(judge.feature_dim(), classifier.feature_dim());
  EXPECT_GE(classifier_test_accuracy(judge, "shapes", 300, ""), 0.98);
  auto card = read_card(file);
  EXPECT_EQ(card.value("architecture_name", ""), "plain");
  EXPECT_NE(card.value("seed", 0), read_card(kModels / "shapes" / "classifier.pt").value("seed", 0));
  EXPECT_GE(card.value("test_accuracy", 0.0), 0.98);
  EXPECT_NE(card.value("git_revision", "unknown"), "unknown");
}

// The exact counterfactual draws a sample's factors as another class: as its own class it is the
// render the faithful generator was trained to reproduce, and as another class the classifier
// calls it that class.
TEST(ShippedModels, ExactCounterfactualsRenderTheSamplesFactorsAsTheTarget) {
  const auto generator = Generator::load(kModels / "shapes" / "faithful_generator.pt", c10::Device(c10::kCPU));
  const auto gan = Generator::load(kModels / "shapes" / "generator.pt", c10::Device(c10::kCPU));
  const auto classifier = Classifier::load(kModels / "shapes" / "classifier.pt", c10::Device(c10::kCPU));
  EXPECT_TRUE(knows_sample_factors(generator));
  EXPECT_FALSE(knows_sample_factors(gan));
  const torch::NoGradGuard no_grad;
  const auto z = draw_latents(7, 0, 0, 12, generator.z_dim());
  const auto own = exact_counterfactual_images(generator, z, 0);
  const auto samples = render_latents(generator, generator.mapping(z, torch::zeros({12}, torch::kLong), 1.0));
  EXPECT_EQ(own.sizes(), samples.sizes());
  EXPECT_LT((own - samples).abs().mean().item<double>(), 0.08);
  for (int64_t target = 1; target < 6; ++target) {
    const auto images = exact_counterfactual_images(generator, z, target);
    const auto predicted = classifier.head(encode_images(classifier, images)).argmax(1);
    EXPECT_EQ(predicted.eq(target).sum().item<int64_t>(), 12) << target;
  }
}

TEST(ShippedModels, AllWeightsTogetherFitTheBudget) {
  uintmax_t total = 0;
  for (const auto& entry : fs::recursive_directory_iterator(kModels))
    if (entry.is_regular_file() && entry.path().extension() == ".pt") total += entry.file_size();
  EXPECT_LE(total, 25u * 1000 * 1000) << total << " bytes of weights";
}
