// Tests for the built-in style generator (train/generator_training.hpp): its model contract,
// truncation, a short adversarial run with resume, determinism, the renderer objective, evaluation
// (agreement, diversity, Frechet distance, part areas) and the sample grids.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <torch/script.h>
#include <torch/torch.h>

#include "linkstyle/errors.hpp"
#include "linkstyle/models.hpp"
#include "linkstyle/tiny_models.hpp"
#include "linkstyle/train/classifier_training.hpp"
#include "linkstyle/train/generator_training.hpp"
#include "linkstyle/train/segmenter_training.hpp"
#include "linkstyle/worlds/shapes.hpp"
#include "frechet_distance.hpp"
#include "test_support.hpp"

namespace linkstyle {
namespace {

namespace fs = std::filesystem;
using testing::ScratchDir;

const c10::Device kCpu(c10::kCPU);

// An untrained built-in shapes classifier saved in `folder` (the trainer only needs its stages).
fs::path save_classifier(const ScratchDir& folder) {
  auto module = build_resnet_classifier(world_class_names("shapes"), 1);
  const fs::path file = folder / "classifier.pt";
  module.save(file.string());
  return file;
}

GeneratorTrainingOptions small_run(const fs::path& classifier, const fs::path& output, int64_t steps) {
  GeneratorTrainingOptions options;
  options.world = "shapes";
  options.classifier = classifier;
  options.output = output;
  options.steps = steps;
  options.seed = 5;
  options.batch_size = 4;
  options.checkpoint_every = 2;
  options.eval_samples_per_class = 0;
  options.progress = false;
  return options;
}

std::vector<std::string> log_lines(const fs::path& file) {
  std::ifstream in(file);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::vector<torch::Tensor> parameters_of(const fs::path& file) {
  std::vector<torch::Tensor> out;
  for (const auto& p : torch::jit::load(file.string()).parameters()) out.push_back(p.clone());
  return out;
}

// Two generator files hold the same parameters: bit for bit, or within `tolerance` (absolute).
void expect_same_parameters(const fs::path& a, const fs::path& b, double tolerance = 0) {
  const auto pa = parameters_of(a), pb = parameters_of(b);
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size(); ++i)
    EXPECT_TRUE(tolerance == 0 ? torch::equal(pa[i], pb[i]) : torch::allclose(pa[i], pb[i], 0, tolerance)) << i;
}

// Whether two generators' parameters (same architecture) differ anywhere.
bool parameters_differ(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  for (size_t i = 0; i < a.size() && i < b.size(); ++i)
    if (!torch::equal(a[i], b[i])) return true;
  return false;
}

TEST(StyleGenerator, MeetsTheGeneratorContract) {
  ScratchDir dir("style_generator_contract");
  auto module = build_style_generator(world_class_names("shapes"), 0);
  module.save((dir / "g.pt").string());
  const auto generator = Generator::load(dir / "g.pt", kCpu);
  EXPECT_EQ(generator.z_dim(), 64);
  EXPECT_EQ(generator.w_dim(), 128);
  EXPECT_EQ(generator.num_classes(), 6);
  EXPECT_EQ(generator.resolution(), 32);
  ASSERT_TRUE(generator.has_synthesis_features());
  torch::NoGradGuard no_grad;
  const auto z = torch::randn({3, 64});
  const auto c = torch::tensor({0, 2, 5}, torch::kLong);
  const auto images = generator.synthesis(generator.mapping(z, c, 1.0));
  EXPECT_EQ(images.sizes(), (std::vector<int64_t>{3, 3, 32, 32}));
  EXPECT_LE(images.abs().max().item<float>(), 1.0f);
  EXPECT_TRUE(torch::isfinite(images).all().item<bool>());
  const auto features = generator.synthesis_features(generator.mapping(z, c, 1.0));
  ASSERT_EQ(features.size(), 4u);
  EXPECT_EQ(features[0].sizes(), (std::vector<int64_t>{3, 128, 4, 4}));
  EXPECT_EQ(features[3].sizes(), (std::vector<int64_t>{3, 32, 32, 32}));
  // The class changes the image; the same (z, c) gives the same image.
  const auto same = generator.synthesis(generator.mapping(z, c, 1.0));
  EXPECT_TRUE(torch::equal(images, same));
  const auto other = generator.synthesis(generator.mapping(z, torch::tensor({1, 3, 4}, torch::kLong), 1.0));
  EXPECT_GT((other - images).abs().mean().item<float>(), 1e-4f);
}

TEST(StyleGenerator, SameSeedSameWeightsOtherSeedOtherWeights) {
  const auto a = build_style_generator(world_class_names("shapes"), 1).parameters();
  const auto b = build_style_generator(world_class_names("shapes"), 1).parameters();
  const auto c = build_style_generator(world_class_names("shapes"), 2).parameters();
  auto ia = a.begin(), ib = b.begin(), ic = c.begin();
  bool any_different = false;
  for (; ia != a.end(); ++ia, ++ib, ++ic) {
    EXPECT_TRUE(torch::equal(*ia, *ib));
    if ((*ia).numel() > 16 && !torch::equal(*ia, *ic)) any_different = true;
  }
  EXPECT_TRUE(any_different);
}

TEST(GeneratorTraining, ShortRunWritesModelCardAndLogThenResumes) {
  ScratchDir dir("generator_training_resume");
  const fs::path classifier = save_classifier(dir);
  const fs::path output = dir / "g.pt";
  auto first = train_generator(small_run(classifier, output, 2));
  EXPECT_EQ(first.steps, 2);
  EXPECT_EQ(first.resumed_from, 0);
  ASSERT_TRUE(fs::exists(output));
  ASSERT_TRUE(fs::exists(first.checkpoint));
  const auto generator = Generator::load(output, kCpu);
  // w_avg was estimated: truncation at psi 0 gives each class's mean w, not zeros.
  {
    torch::NoGradGuard no_grad;
    const auto w0 = generator.mapping(torch::randn({2, 64}), torch::tensor({1, 1}, torch::kLong), 0.0);
    EXPECT_TRUE(torch::allclose(w0[0], w0[1]));
    EXPECT_GT(w0.abs().sum().item<float>(), 0.0f);
  }
  auto card = nlohmann::json::parse(std::ifstream(first.card));
  for (const char* key : {"world", "architecture", "steps", "seed", "batch_size", "command_line", "training_seconds",
                          "git_revision", "classifier_fingerprint"})
    EXPECT_TRUE(card.contains(key)) << key;
  EXPECT_EQ(card["steps"], 2);

  // The checkpoint holds the trained generator and its weight average, which differ.
  {
    torch::serialize::InputArchive archive;
    archive.load_from(first.checkpoint.string());
    torch::Tensor trained_bytes, average_bytes;
    archive.read("generator", trained_bytes);
    archive.read("average", average_bytes);
    auto module_of = [](const torch::Tensor& bytes) {
      std::istringstream in(
          std::string(static_cast<const char*>(bytes.data_ptr()), static_cast<size_t>(bytes.numel())));
      return torch::jit::load(in);
    };
    const auto trained = module_of(trained_bytes).parameters();
    const auto average = module_of(average_bytes).parameters();
    bool differ = false;
    for (auto t = trained.begin(), a = average.begin(); t != trained.end(); ++t, ++a)
      if (!torch::equal(*t, *a)) differ = true;
    EXPECT_TRUE(differ) << "the weight average is the trained generator itself";
  }

  auto second = train_generator(small_run(classifier, output, 3));
  EXPECT_EQ(second.resumed_from, 2);
  EXPECT_EQ(second.steps, 3);
  const auto lines = log_lines(first.log);
  ASSERT_EQ(lines.size(), 4u);  // header + steps 1, 2, 3
  for (int step = 1; step <= 3; ++step)
    EXPECT_EQ(lines[static_cast<size_t>(step)].substr(0, 2), std::to_string(step) + ",");

  // A fresh uninterrupted 3-step run gives the same weights as the resumed one.
  const fs::path straight = dir / "straight.pt";
  train_generator(small_run(classifier, straight, 3));
  expect_same_parameters(output, straight);
}

TEST(GeneratorTraining, RefusesBadOptionsAndForeignClassifiers) {
  ScratchDir dir("generator_training_errors");
  const fs::path classifier = save_classifier(dir);
  auto options = small_run(classifier, dir / "g.pt", 0);
  testing::expect_error([&] { train_generator(options); }, {"--steps"});
  options = small_run(classifier, dir / "g.pt", 1);
  options.batch_size = 1;
  testing::expect_error([&] { train_generator(options); }, {"--batch-size"});
  options = small_run(classifier, dir / "g.pt", 1);
  options.eval_samples_per_class = 1;
  testing::expect_error([&] { train_generator(options); }, {"--eval-samples"});
  options = small_run(classifier, dir / "g.pt", 1);
  options.seed = uint64_t{1} << 30;  // the shapes seeds are (seed << 40) + index
  testing::expect_error([&] { train_generator(options); }, {"--seed"});
  EXPECT_FALSE(fs::exists(dir / "g.pt.checkpoint")) << "a refused run left its checkpoint folder";
  options = small_run(dir / "missing.pt", dir / "g.pt", 1);
  testing::expect_error([&] { train_generator(options); }, {"missing.pt"});
  // A classifier that meets the contract but is not a built-in ResNet has no stages to project.
  TinyModelSpec spec;
  spec.num_classes = 6;
  const auto tiny = write_tiny_models(dir.path(), spec);
  options = small_run(tiny.classifier, dir / "g.pt", 1);
  testing::expect_error([&] { train_generator(options); }, {tiny.classifier.filename().string(), "built-in"});
  EXPECT_FALSE(fs::exists(dir / "g.pt"));
}

TEST(GeneratorTraining, ResumeChecksClassifierAndStepsAndR1RunsEverySixteenSteps) {
  ScratchDir dir("generator_training_r1");
  const fs::path classifier = save_classifier(dir);
  auto options = small_run(classifier, dir / "g.pt", 16);
  options.batch_size = 2;
  options.checkpoint_every = 16;
  const auto result = train_generator(options);
  const auto lines = log_lines(result.log);
  ASSERT_EQ(lines.size(), 17u);
  auto r1_of = [&](size_t step) {  // sixth column
    std::istringstream fields(lines[step]);
    std::string field;
    for (int i = 0; i < 6; ++i) std::getline(fields, field, ',');
    return std::stod(field);
  };
  EXPECT_EQ(r1_of(15), 0.0);
  EXPECT_GT(r1_of(16), 0.0);
  // Fewer steps than the checkpoint reached, or another classifier, is refused.
  options.steps = 10;
  testing::expect_error([&] { train_generator(options); }, {"--steps", "16"});
  auto other = build_resnet_classifier(world_class_names("shapes"), 2);
  other.save((dir / "other.pt").string());
  options = small_run(dir / "other.pt", dir / "g.pt", 20);
  options.batch_size = 2;
  testing::expect_error([&] { train_generator(options); }, {"checkpoint.pt", "another classifier"});
}

TEST(GeneratorTraining, MinibatchSpreadChangesTrainingAndIsKeptOnResume) {
  ScratchDir dir("generator_training_minibatch");
  const fs::path classifier = save_classifier(dir);
  auto plain = small_run(classifier, dir / "plain.pt", 2);
  train_generator(plain);
  auto spread = small_run(classifier, dir / "spread.pt", 2);
  spread.minibatch_std_group = 2;
  const auto result = train_generator(spread);
  nlohmann::json card;
  std::ifstream(result.card) >> card;
  EXPECT_EQ(card.value("minibatch_std_group", -1), 2);
  EXPECT_NE(card.value("architecture", "").find("minibatch standard deviation over groups of 2"), std::string::npos);
  // The same seed without the spread trains another generator.
  const auto a = parameters_of(dir / "plain.pt"), b = parameters_of(dir / "spread.pt");
  ASSERT_EQ(a.size(), b.size());
  EXPECT_TRUE(parameters_differ(a, b));
  // Its checkpoint resumes only with the same group.
  auto resumed = small_run(classifier, dir / "spread.pt", 3);
  testing::expect_error([&] { train_generator(resumed); }, {"checkpoint.pt", "minibatch std group 2"});
  resumed.minibatch_std_group = 2;
  EXPECT_EQ(train_generator(resumed).resumed_from, 2);
  // A batch that is not a multiple of the group, or a negative group, is refused.
  auto bad = small_run(classifier, dir / "bad.pt", 1);
  bad.minibatch_std_group = 3;
  testing::expect_error([&] { train_generator(bad); }, {"--minibatch-std", "multiple"});
  bad.minibatch_std_group = -1;
  testing::expect_error([&] { train_generator(bad); }, {"--minibatch-std"});
  EXPECT_FALSE(fs::exists(dir / "bad.pt"));
  EXPECT_FALSE(fs::exists(dir / "bad.pt.checkpoint"));
}

TEST(GeneratorTraining, PixelHeadChangesTrainingAndIsKeptOnResume) {
  ScratchDir dir("generator_training_pixel_head");
  const fs::path classifier = save_classifier(dir);
  train_generator(small_run(classifier, dir / "plain.pt", 2));
  auto pixel = small_run(classifier, dir / "pixel.pt", 2);
  pixel.pixel_head = true;
  const auto result = train_generator(pixel);
  nlohmann::json card;
  std::ifstream(result.card) >> card;
  EXPECT_TRUE(card.value("pixel_head", false));
  EXPECT_NE(card.value("architecture", "").find("pixel head"), std::string::npos);
  // The same seed without the pixel head trains another generator.
  const auto a = parameters_of(dir / "plain.pt"), b = parameters_of(dir / "pixel.pt");
  ASSERT_EQ(a.size(), b.size());
  EXPECT_TRUE(parameters_differ(a, b));
  // Its checkpoint resumes only with the pixel head; a resumed run continues where it stopped.
  auto resumed = small_run(classifier, dir / "pixel.pt", 3);
  testing::expect_error([&] { train_generator(resumed); }, {"checkpoint.pt", "a pixel head"});
  resumed.pixel_head = true;
  EXPECT_EQ(train_generator(resumed).resumed_from, 2);
}

TEST(GeneratorTraining, AugmentationChoiceChangesTrainingAndIsKeptOnResume) {
  ScratchDir dir("generator_training_augment");
  const fs::path classifier = save_classifier(dir);
  std::vector<std::vector<torch::Tensor>> trained;
  for (const std::string mode : {"all", "translation", "none"}) {
    auto run = small_run(classifier, dir / (mode + ".pt"), 2);
    run.augment = mode;
    const auto result = train_generator(run);
    nlohmann::json card;
    std::ifstream(result.card) >> card;
    EXPECT_EQ(card.value("augmentation", "").find("brightness") != std::string::npos, mode == "all");
    trained.push_back(parameters_of(dir / (mode + ".pt")));
  }
  // Each choice trains another generator from the same seed.
  for (size_t a = 0; a < trained.size(); ++a)
    for (size_t b = a + 1; b < trained.size(); ++b)
      EXPECT_TRUE(parameters_differ(trained[a], trained[b])) << a << " vs " << b;
  // A checkpoint resumes only with its own augmentation; an unknown one is refused up front.
  auto resumed = small_run(classifier, dir / "none.pt", 3);
  testing::expect_error([&] { train_generator(resumed); }, {"checkpoint.pt", "augmentation none"});
  resumed.augment = "none";
  EXPECT_EQ(train_generator(resumed).resumed_from, 2);
  auto bad = small_run(classifier, dir / "bad.pt", 1);
  bad.augment = "colour";
  testing::expect_error([&] { train_generator(bad); }, {"--augment", "colour"});
  EXPECT_FALSE(fs::exists(dir / "bad.pt.checkpoint"));
}

TEST(GeneratorEvaluation, ReportsAgreementDiversityAndWritesAGrid) {
  ScratchDir dir("generator_evaluation");
  const fs::path classifier_file = save_classifier(dir);
  build_style_generator(world_class_names("shapes"), 0).save((dir / "g.pt").string());
  const auto generator = Generator::load(dir / "g.pt", kCpu);
  const auto classifier = Classifier::load(classifier_file, kCpu);
  const auto e = evaluate_generator(generator, classifier, "shapes", 8, 0.7, 0);
  EXPECT_EQ(e.samples_per_class, 8);
  ASSERT_EQ(e.agreement_per_class.size(), 6u);
  EXPECT_GE(e.agreement, 0.0);
  EXPECT_LE(e.agreement, 1.0);
  EXPECT_GT(e.diversity_real, 0.0);
  EXPECT_NEAR(e.diversity_ratio, e.diversity_generated / e.diversity_real, 1e-12);
  // The same seed gives the same figures.
  const auto again = evaluate_generator(generator, classifier, "shapes", 8, 0.7, 0);
  EXPECT_EQ(again.agreement, e.agreement);
  EXPECT_EQ(again.diversity_generated, e.diversity_generated);
  // psi = 0 collapses every class to its mean w: no diversity at all.
  const auto collapsed = evaluate_generator(generator, classifier, "shapes", 8, 0.0, 0);
  EXPECT_NEAR(collapsed.diversity_generated, 0.0, 1e-4);
  EXPECT_NEAR(collapsed.colour_diversity_generated, 0.0, 1e-6);
  // Colour diversity: the renders vary in colour; the ratio is generated over real, per class too.
  EXPECT_GT(e.colour_diversity_real, 0.0);
  EXPECT_GT(e.colour_diversity_generated, 0.0);
  EXPECT_NEAR(e.colour_diversity_ratio, e.colour_diversity_generated / e.colour_diversity_real, 1e-12);
  ASSERT_EQ(e.colour_diversity_ratio_per_class.size(), 6u);
  const auto json = e.to_json();
  EXPECT_EQ(json["colour_diversity_ratio"].get<double>(), e.colour_diversity_ratio);
  EXPECT_EQ(json["agreement"].get<double>(), e.agreement);
  // Without colour in the real images (a grey world) the ratio is undefined: null in JSON.
  GeneratorEvaluation grey = e;
  grey.colour_diversity_ratio = std::numeric_limits<double>::quiet_NaN();
  grey.colour_diversity_ratio_per_class.assign(6, std::numeric_limits<double>::quiet_NaN());
  EXPECT_TRUE(grey.to_json()["colour_diversity_ratio"].is_null());
  EXPECT_TRUE(grey.to_json()["colour_diversity_ratio_per_class"][0].is_null());

  write_sample_grid(generator, dir / "grid.png", 5, 0.7, 0, 2);
  const cv::Mat grid = cv::imread((dir / "grid.png").string());
  ASSERT_FALSE(grid.empty());
  EXPECT_EQ(grid.rows, 6 * (32 * 2 + 2) + 2);
  EXPECT_EQ(grid.cols, 5 * (32 * 2 + 2) + 2);
}

TEST(StyleGenerator, FactorLatentReadsTheShapesFactorsOffZ) {
  ScratchDir dir("style_generator_factors");
  auto module = build_style_generator(world_class_names("shapes"), 0, StyleLatent::kShapesFactors);
  module.save((dir / "g.pt").string());
  const auto generator = Generator::load(dir / "g.pt", kCpu);
  EXPECT_EQ(generator.z_dim(), 17);
  EXPECT_EQ(generator.w_dim(), 128);
  EXPECT_TRUE(generator.has_synthesis_features());
  torch::NoGradGuard no_grad;
  const auto labels = torch::tensor({0, 1, 2, 3, 4, 5}, torch::kLong);
  // z = 0 is every factor's median; huge z its ends; the hues span the class's range.
  const auto median = module.run_method("factors", torch::zeros({6, 17}), labels).toTensor();
  const auto expected = ShapesWorld::factors_of_quantiles(labels, torch::full({6, 17}, 0.5));
  EXPECT_TRUE(torch::allclose(median, expected, 0, 1e-6));
  const auto top = module.run_method("factors", torch::full({6, 17}, 9.0), labels).toTensor();
  EXPECT_TRUE(torch::allclose(top, ShapesWorld::factors_of_quantiles(labels, torch::ones({6, 17})), 0, 1e-6));
  // z ~ N(0, I) gives uniform quantiles: a factor's mean is near 0.5, its SD near 1/sqrt(12).
  const auto many = module.run_method("factors", torch::randn({6000, 17}), torch::zeros({6000}, torch::kLong))
                        .toTensor()
                        .select(1, 0);
  EXPECT_NEAR(many.mean().item<double>(), 0.5, 0.02);
  EXPECT_NEAR(many.std().item<double>(), 1.0 / std::sqrt(12.0), 0.01);
  const auto images = generator.synthesis(generator.mapping(torch::randn({6, 17}), labels, 1.0));
  EXPECT_EQ(images.sizes(), (std::vector<int64_t>{6, 3, 32, 32}));
  EXPECT_TRUE(torch::isfinite(images).all().item<bool>());
}

GeneratorTrainingOptions renderer_run(const fs::path& classifier, const fs::path& output, int64_t steps) {
  auto options = small_run(classifier, output, steps);
  options.objective = "renderer";
  options.learning_rate = 0.01;
  return options;
}

// The pixel L1 column of a renderer run's log.
std::vector<double> pixel_losses(const fs::path& log) {
  std::vector<double> values;
  const auto lines = log_lines(log);
  for (size_t i = 1; i < lines.size(); ++i) {
    std::stringstream row(lines[i]);
    std::string field;
    for (int column = 0; column <= 2; ++column) std::getline(row, field, ',');
    values.push_back(std::stod(field));
  }
  return values;
}

TEST(GeneratorTraining, RendererObjectiveLearnsTheRendersAndResumes) {
  ScratchDir dir("generator_training_renderer");
  const fs::path classifier = save_classifier(dir);
  const fs::path output = dir / "g.pt";
  auto first = train_generator(renderer_run(classifier, output, 2));
  EXPECT_EQ(first.steps, 2);
  EXPECT_EQ(log_lines(first.log)[0], "step,loss,pixel_l1,feature_l1,learning_rate,seconds");
  const auto card = nlohmann::json::parse(std::ifstream(first.card));
  EXPECT_EQ(card["z_dim"], 17);
  EXPECT_NE(card["objective"].get<std::string>().find("renderer"), std::string::npos);
  EXPECT_EQ(Generator::load(output, kCpu).z_dim(), 17);
  // A resumed run equals a straight one: the same losses, and weights within float rounding (the
  // weight average differs in the last bits after Adam's state is restored; a straight rerun is
  // bit for bit the same).
  EXPECT_EQ(train_generator(renderer_run(classifier, output, 3)).resumed_from, 2);
  const fs::path straight = dir / "straight.pt", again = dir / "again.pt";
  train_generator(renderer_run(classifier, straight, 3));
  train_generator(renderer_run(classifier, again, 3));
  expect_same_parameters(straight, again);
  expect_same_parameters(output, straight, 1e-6);
  const auto resumed_log = log_lines(first.log), straight_log = log_lines(dir / "straight.pt.log.csv");
  ASSERT_EQ(resumed_log.size(), straight_log.size());
  for (size_t i = 0; i < resumed_log.size(); ++i)
    EXPECT_EQ(resumed_log[i].substr(0, resumed_log[i].rfind(',')), straight_log[i].substr(0, straight_log[i].rfind(',')));
  // The adversarial objective does not resume a renderer run, nor the renderer an adversarial one.
  auto adversarial = small_run(classifier, output, 4);
  testing::expect_error([&] { train_generator(adversarial); }, {"checkpoint.pt", "objective renderer"});
  train_generator(small_run(classifier, dir / "gan.pt", 1));
  testing::expect_error([&] { train_generator(renderer_run(classifier, dir / "gan.pt", 2)); },
                        {"checkpoint.pt", "objective adversarial"});
  // The renderer needs the shapes world.
  auto fashion = renderer_run(classifier, dir / "fashion.pt", 1);
  fashion.world = "fashion";
  testing::expect_error([&] { train_generator(fashion); }, {"--objective", "shapes"});
  EXPECT_FALSE(fs::exists(dir / "fashion.pt.checkpoint"));

  // Forty steps teach it something: the pixel loss falls.
  auto longer = renderer_run(classifier, dir / "longer.pt", 40);
  longer.checkpoint_every = 40;
  const auto pixel = pixel_losses(train_generator(longer).log);
  ASSERT_EQ(pixel.size(), 40u);
  double early = 0, late = 0;
  for (size_t i = 0; i < 5; ++i) early += pixel[i], late += pixel[35 + i];
  EXPECT_LT(late, 0.8 * early);
}

TEST(GeneratorEvaluation, FrechetDistanceMatchesClosedForms) {
  torch::manual_seed(3);
  const auto a = torch::randn({400, 6}, torch::kDouble);
  EXPECT_NEAR(frechet_distance(a, a), 0.0, 1e-8);
  // b = 2a + m: S_b = 4 S_a, so FD = |m|^2 + tr(S_a) + 4 tr(S_a) - 4 tr(S_a) = |m|^2 + tr(S_a).
  const auto m = torch::tensor({1.0, -2.0, 0.0, 0.5, 0.0, 3.0}, torch::kDouble);
  const auto centred = a - a.mean(0);
  const double trace = (centred.square().sum() / 399.0).item<double>();
  EXPECT_NEAR(frechet_distance(a, a * 2 + m), (m + a.mean(0)).square().sum().item<double>() + trace, 1e-8);
  EXPECT_NEAR(frechet_distance(a, a * 2 + m), frechet_distance(a * 2 + m, a), 1e-8);
  testing::expect_error([&] { frechet_distance(a, torch::randn({5, 3})); }, {"frechet_distance"});
}

TEST(GeneratorEvaluation, PartAreaErrorIsTheShareOfTheObjectMisplaced) {
  const std::vector<std::string> names = {"wheel", "background", "body"};
  // Real: wheel 0.1, body 0.3 (object 0.4); generated: wheel 0.05, body 0.35 -> 0.1 / 0.4.
  EXPECT_DOUBLE_EQ(part_area_error({0.05, 0.6, 0.35}, {0.1, 0.6, 0.3}, names), 0.25);
  // The background does not count, whatever its area.
  EXPECT_DOUBLE_EQ(part_area_error({0.1, 0.9, 0.3}, {0.1, 0.6, 0.3}, names), 0.0);
  // Without a background every part counts; without an object in the real images, 0.
  EXPECT_DOUBLE_EQ(part_area_error({0.5, 0.5}, {1.0, 0.0}, {"a", "b"}), 1.0);
  EXPECT_DOUBLE_EQ(part_area_error({0.0, 1.0, 0.0}, {0.0, 1.0, 0.0}, names), 0.0);
  testing::expect_error([&] { part_area_error({0.5}, {0.5, 0.5}, {"a", "b"}); }, {"part_area_error"});
}

// A segmenter that calls a pixel "bright" when its mean channel exceeds 1/2, else "background".
fs::path save_brightness_segmenter(const ScratchDir& folder) {
  torch::jit::Module module("BrightnessSegmenter");
  c10::List<std::string> names({"background", "bright"});
  module.register_attribute("part_names", c10::ListType::ofStrings(), names);
  module.define(R"(
def segment(self, images: Tensor) -> Tensor:
    m = images.mean(1, True)
    return torch.cat([0.5 - m, m - 0.5], 1)

def forward(self, images: Tensor) -> Tensor:
    return self.segment(images)
)");
  const fs::path file = folder / "bright.pt";
  module.save(file.string());
  return file;
}

TEST(GeneratorEvaluation, PartAreasCountWhatTheSegmenterFinds) {
  // On a generator that paints every pixel white, the "bright" part covers the whole image; on the
  // renders it covers less, and the error is their difference over the renders' bright share.
  ScratchDir dir("generator_evaluation_bright");
  const fs::path classifier_file = save_classifier(dir);
  torch::jit::Module white("WhiteGenerator");
  white.register_module("inner", build_style_generator(world_class_names("shapes"), 0));
  c10::List<std::string> classes;
  for (const auto& name : world_class_names("shapes")) classes.push_back(name);
  white.register_attribute("class_names", c10::ListType::ofStrings(), classes);
  for (const auto& [name, value] : std::vector<std::pair<std::string, int64_t>>{
           {"z_dim", 64}, {"w_dim", 128}, {"num_classes", 6}, {"resolution", 32}})
    white.register_attribute(name, c10::IntType::get(), value);
  white.define(R"(
def mapping(self, z: Tensor, c: Tensor, psi: float) -> Tensor:
    return self.inner.mapping(z, c, psi)

def synthesis(self, w: Tensor) -> Tensor:
    return torch.ones([w.size(0), 3, 32, 32])
)");
  white.save((dir / "white.pt").string());
  const auto e = evaluate_generator(Generator::load(dir / "white.pt", kCpu), Classifier::load(classifier_file, kCpu),
                                    "shapes", 20, 1.0, 0, {}, save_brightness_segmenter(dir));
  ASSERT_EQ(e.part_names, (std::vector<std::string>{"background", "bright"}));
  for (size_t c = 0; c < 6; ++c) {
    EXPECT_DOUBLE_EQ(e.part_areas_generated[c][1], 1.0);
    const double real = e.part_areas_real[c][1];
    EXPECT_GT(real, 0.0);
    EXPECT_LT(real, 1.0);
    EXPECT_NEAR(e.part_area_error_per_class[c], (1.0 - real) / real, 1e-9);
  }
}

TEST(GeneratorEvaluation, PartAreasAndTheRenderComparisonGrid) {
  ScratchDir dir("generator_evaluation_parts");
  const fs::path classifier_file = save_classifier(dir);
  build_unet_segmenter(ShapesWorld::part_names(), 0).save((dir / "s.pt").string());
  build_style_generator(world_class_names("shapes"), 0, StyleLatent::kShapesFactors).save((dir / "g.pt").string());
  build_style_generator(world_class_names("shapes"), 0).save((dir / "gan.pt").string());
  const auto generator = Generator::load(dir / "g.pt", kCpu);
  const auto classifier = Classifier::load(classifier_file, kCpu);
  const auto e = evaluate_generator(generator, classifier, "shapes", 6, 1.0, 0, {}, dir / "s.pt");
  ASSERT_EQ(e.part_names, ShapesWorld::part_names());
  ASSERT_EQ(e.part_areas_generated.size(), 6u);
  ASSERT_EQ(e.part_area_error_per_class.size(), 6u);
  for (size_t c = 0; c < 6; ++c) {
    double generated = 0, real = 0;
    for (double x : e.part_areas_generated[c]) generated += x;
    for (double x : e.part_areas_real[c]) real += x;
    EXPECT_NEAR(generated, 1.0, 1e-9);
    EXPECT_NEAR(real, 1.0, 1e-9);
    EXPECT_DOUBLE_EQ(e.part_area_error_per_class[c],
                     part_area_error(e.part_areas_generated[c], e.part_areas_real[c], e.part_names));
  }
  EXPECT_EQ(e.part_area_error, *std::max_element(e.part_area_error_per_class.begin(), e.part_area_error_per_class.end()));
  EXPECT_GT(e.frechet_distance, 0.0);
  ASSERT_EQ(e.frechet_distance_per_class.size(), 6u);
  EXPECT_TRUE(e.to_json().contains("part_areas_real"));
  // Without a segmenter there are no part areas.
  EXPECT_FALSE(evaluate_generator(generator, classifier, "shapes", 4, 1.0, 0).to_json().contains("part_areas_real"));

  write_render_comparison_grid(dir / "g.pt", dir / "pairs.png", 3, 0, 1);
  const cv::Mat grid = cv::imread((dir / "pairs.png").string());
  ASSERT_FALSE(grid.empty());
  EXPECT_EQ(grid.rows, 12 * (32 + 2) + 2);
  EXPECT_EQ(grid.cols, 3 * (32 + 2) + 2);
  testing::expect_error([&] { write_render_comparison_grid(dir / "gan.pt", dir / "no.png", 3); },
                        {"gan.pt", "factors"});
  testing::expect_error([&] { check_render_comparison_grid(dir / "gan.pt"); }, {"gan.pt", "factors"});
  check_render_comparison_grid(dir / "g.pt");
  EXPECT_FALSE(fs::exists(dir / "no.png"));
}

}  // namespace
}  // namespace linkstyle
