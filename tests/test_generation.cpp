// Tests for generation.hpp: the one way linkstyle draws, maps, synthesises and encodes images.
#include <filesystem>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "linkstyle/errors.hpp"
#include "linkstyle/generation.hpp"
#include "linkstyle/tiny_models.hpp"
#include "test_support.hpp"

namespace linkstyle {
namespace {

namespace fs = std::filesystem;
using testing::ScratchDir;

TEST(Generation, DrawsDependOnSeedClassAndBatchOnly) {
  EXPECT_FALSE(torch::equal(draw_latents(1, 0, 0, 4, 8), draw_latents(1, 1, 0, 4, 8)));
  EXPECT_FALSE(torch::equal(draw_latents(1, 0, 0, 4, 8), draw_latents(1, 0, 1, 4, 8)));
  EXPECT_FALSE(torch::equal(draw_latents(1, 0, 0, 4, 8), draw_latents(2, 0, 0, 4, 8)));
  EXPECT_TRUE(torch::equal(draw_latents(1, 0, 3, 4, 8), draw_latents(1, 0, 3, 4, 8)));
  EXPECT_EQ(draw_latents(1, 0, 0, 5, 8).sizes(), (std::vector<int64_t>{5, 8}));
}

TEST(Generation, EachStepIsTheModelsOwn) {
  ScratchDir dir("generation");
  const auto paths = write_tiny_models(dir / "models");
  const auto classifier = Classifier::load(paths.classifier, c10::Device(c10::kCPU));
  const auto generator = Generator::load(paths.generator, c10::Device(c10::kCPU));
  const torch::NoGradGuard no_grad;
  const auto samples = generate_and_encode(generator, classifier, 5, 1, 2, 6, 0.7);
  const auto z = draw_latents(5, 1, 2, 6, generator.z_dim());
  const auto w = generator.mapping(z, torch::full({6}, 1, torch::kLong), 0.7);
  EXPECT_TRUE(torch::equal(samples.latents, w));
  const auto images = generator_to_classifier_range(generator.synthesis(w));
  EXPECT_TRUE(torch::equal(samples.images, images));
  EXPECT_GE(samples.images.min().item<float>(), 0.0f);
  EXPECT_LE(samples.images.max().item<float>(), 1.0f);
  EXPECT_TRUE(torch::equal(samples.features, classifier.features(images)));
  EXPECT_TRUE(torch::equal(class_latents(generator, 5, 1, 2, 6, 0.7), w));
}

TEST(Generation, ClassSamplesAreWrittenPerClass) {
  ScratchDir dir("generation-samples");
  const auto paths = write_tiny_models(dir / "models");
  const auto generator = Generator::load(paths.generator, c10::Device(c10::kCPU));
  StudyConfig study;
  study.pairs.classes = {0, 2};
  const auto files = write_class_samples(study, generator, 2, 1000, dir / "samples");
  ASSERT_EQ(files.size(), 4u);
  EXPECT_EQ(files[3].filename(), "class2-1.png");
  for (const auto& file : files) EXPECT_TRUE(fs::exists(file)) << file;
  testing::expect_error([&] { write_class_samples(study, generator, 0, 1000, dir / "none"); }, {"per_class"});
  EXPECT_FALSE(fs::exists(dir / "none"));
}

TEST(Generation, StudyClassesMapGeneratorToClassifierClasses) {
  ScratchDir dir("generation-classes");
  const auto paths = write_tiny_models(dir / "models");
  const auto classifier = Classifier::load(paths.classifier, c10::Device(c10::kCPU));
  const auto generator = Generator::load(paths.generator, c10::Device(c10::kCPU));
  StudyConfig study;
  study.folder = dir / "study";
  // No classes listed: every class of the generator, the same index in the classifier.
  const auto all = study_classes(study, classifier, generator);
  ASSERT_EQ(int64_t(all.size()), generator.num_classes());
  for (int64_t c = 0; c < generator.num_classes(); ++c) {
    EXPECT_EQ(all[size_t(c)].generator_class, c);
    EXPECT_EQ(all[size_t(c)].classifier_class, c);
    EXPECT_EQ(all[size_t(c)].name, generator.class_name(c));
  }
  // Listed classes keep their order and take their classifier classes from the settings.
  study.pairs.classes = {2, 0};
  study.pairs.classifier_classes = {1, 2};
  const auto mapped = study_classes(study, classifier, generator);
  ASSERT_EQ(mapped.size(), 2u);
  EXPECT_EQ(mapped[0].generator_class, 2);
  EXPECT_EQ(mapped[0].classifier_class, 1);
  EXPECT_EQ(mapped[0].name, generator.class_name(2));
  EXPECT_EQ(mapped[1].generator_class, 0);
  EXPECT_EQ(mapped[1].classifier_class, 2);
  // Without the classifier the list is the same, unchecked; with it, a class either model lacks
  // is an error naming study.toml.
  study.pairs.classifier_classes = {1, 7};
  EXPECT_EQ(study_classes(study, generator)[1].classifier_class, 7);
  testing::expect_error([&] { study_classes(study, classifier, generator); },
                        {"study.toml", "classifier class 7 is out of range"});
  study.pairs.classes = {0, 5};
  study.pairs.classifier_classes = {};
  testing::expect_error([&] { study_classes(study, classifier, generator); },
                        {"study.toml", "class 5 is out of range: the generator has 3 classes"});
}

}  // namespace
}  // namespace linkstyle
