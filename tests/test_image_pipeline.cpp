// Tests for the image pipeline (image_pipeline.hpp): batching, groups and overlap change nothing.
#include <filesystem>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "linkstyle/image_pipeline.hpp"
#include "linkstyle/part_sources.hpp"
#include "linkstyle/tuning_set.hpp"
#include "linkstyle/worlds/shapes.hpp"
#include "sweep_study.hpp"
#include "test_support.hpp"

namespace linkstyle {
namespace {

namespace fs = std::filesystem;
using testing::make_sweep_study;
using testing::ScratchDir;

TEST(ImagePipeline, BatchedMeasuresEqualOneImageAtATime) {
  ScratchDir dir("sweep-batched");
  const auto study = make_sweep_study(dir.path());
  const auto tuning = make_tuning_set(study.config, study.classifier, study.generator, study.network);
  const auto parts = fit_kmeans_parts(study.generator, tuning.latents, 3, 5);
  const SweepModels models{study.classifier, study.generator, study.network, *parts};
  const auto latents = unit_sweep_latents(study.network, tuning, {1, 2}, 3);
  const auto batched = measure_latents(models, latents, 7, true);
  const auto single = measure_latents(models, latents, 1, true);
  EXPECT_TRUE(torch::allclose(batched.features, single.features, 1e-4, 1e-4));
  EXPECT_TRUE(torch::allclose(batched.logits, single.logits, 1e-4, 1e-4));
  // Some CPU kernels (AVX2 convolutions) sum in a batch-size dependent order: the generator's
  // pixels then differ by ~1e-6, which can move a rare pixel across a rounding boundary.
  const auto pixel_difference = (batched.images.to(torch::kInt) - single.images.to(torch::kInt)).abs();
  EXPECT_LE(pixel_difference.max().item<int>(), 1);
  EXPECT_LT(pixel_difference.gt(0).sum().item<int64_t>() * 1000, pixel_difference.numel());
  ASSERT_EQ(batched.parts.size(), size_t(latents.size(0)));
  int64_t compared = 0;
  for (size_t i = 0; i < batched.parts.size(); ++i) {
    ASSERT_EQ(batched.parts[i].size(), single.parts[i].size());
    for (size_t k = 0; k < batched.parts[i].size(); ++k) {
      EXPECT_EQ(batched.parts[i][k].part, single.parts[i][k].part);
      EXPECT_NEAR(batched.parts[i][k].area, single.parts[i][k].area, 2.0);
      EXPECT_NEAR(batched.parts[i][k].luminance, single.parts[i][k].luminance, 1e-2);
      ++compared;
    }
  }
  EXPECT_GT(compared, latents.size(0));  // more than one part per image on average
  // Measuring on another thread while the next batch renders changes nothing.
  const auto overlapped = measure_latents(models, latents, 7, true, true);
  EXPECT_TRUE(torch::equal(overlapped.images, batched.images));
  EXPECT_TRUE(torch::equal(overlapped.labels, batched.labels));
  EXPECT_TRUE(torch::equal(overlapped.features, batched.features));
  ASSERT_EQ(overlapped.parts.size(), batched.parts.size());
  for (size_t i = 0; i < batched.parts.size(); ++i) {
    ASSERT_EQ(overlapped.parts[i].size(), batched.parts[i].size());
    for (size_t k = 0; k < batched.parts[i].size(); ++k) {
      EXPECT_EQ(overlapped.parts[i][k].area, batched.parts[i][k].area);
      EXPECT_EQ(overlapped.parts[i][k].entropy, batched.parts[i][k].entropy);
      EXPECT_EQ(overlapped.parts[i][k].hue_degrees, batched.parts[i][k].hue_degrees);
    }
  }
}

TEST(ImagePipeline, GroupsMeasuredAsOnePipelineEqualEachGroupAlone) {
  ScratchDir dir("sweep-groups");
  const auto study = make_sweep_study(dir.path());
  const auto tuning = make_tuning_set(study.config, study.classifier, study.generator, study.network);
  const auto parts = fit_kmeans_parts(study.generator, tuning.latents, 3, 5);
  const SweepModels models{study.classifier, study.generator, study.network, *parts};
  // Groups of 18, 6 and 12 images in batches of 5: batches end inside every group.
  const std::vector<std::vector<int64_t>> units = {{0}, {1}, {2, 3}};
  std::vector<torch::Tensor> latents;
  for (const auto& u : units) latents.push_back(unit_sweep_latents(study.network, tuning, u, 3));
  latents[1] = latents[1].slice(0, 0, 6);
  for (const bool overlap : {false, true}) {
    std::vector<int64_t> order;
    std::vector<MeasuredImages> grouped;
    measure_latent_groups(
        models, int64_t(latents.size()), [&](int64_t g) { return latents[size_t(g)]; },
        [&](int64_t g, MeasuredImages&& measured) {
          order.push_back(g);
          grouped.push_back(std::move(measured));
        },
        5, true, overlap);
    ASSERT_EQ(order, (std::vector<int64_t>{0, 1, 2}));
    for (size_t g = 0; g < latents.size(); ++g) {
      const auto alone = measure_latents(models, latents[g], 4, true);
      EXPECT_TRUE(torch::allclose(grouped[g].features, alone.features, 1e-4, 1e-4));
      EXPECT_TRUE(torch::equal(grouped[g].images, alone.images));
      EXPECT_TRUE(torch::equal(grouped[g].labels, alone.labels));
      ASSERT_EQ(grouped[g].parts.size(), size_t(latents[g].size(0)));
      for (size_t i = 0; i < alone.parts.size(); ++i) {
        ASSERT_EQ(grouped[g].parts[i].size(), alone.parts[i].size());
        for (size_t k = 0; k < alone.parts[i].size(); ++k)
          EXPECT_EQ(grouped[g].parts[i][k].area, alone.parts[i][k].area);
      }
    }
  }
  // A group without latents is refused (while the group before it is still being measured).
  testing::expect_error(
      [&] {
        measure_latent_groups(
            models, 2, [&](int64_t g) { return g == 0 ? latents[0] : latents[0].slice(0, 0, 0); },
            [](int64_t, MeasuredImages&&) {}, 5, true, true);
      },
      {"group 1", "no latents"});
}

TEST(ImagePipeline, MeasuredImagesDoNotDependOnTheBatch) {
  const torch::NoGradGuard no_grad;
  const auto classifier =
      Classifier::load(fs::path(LINKSTYLE_SOURCE_DIR) / "models/shapes/classifier.pt", c10::Device(c10::kCPU));
  const auto segmenter =
      load_segmenter_parts(fs::path(LINKSTYLE_SOURCE_DIR) / "models/shapes/segmenter.pt", c10::Device(c10::kCPU));
  const auto batch = ShapesWorld(32).render_class_balanced(10, 3);
  const auto whole = measure_images(classifier, *segmenter, batch.images, 10);
  const auto split = measure_images(classifier, *segmenter, batch.images, 3);
  EXPECT_TRUE(torch::allclose(whole.features, classifier.features(batch.images), 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(whole.features, split.features, 1e-5, 1e-5));
  ASSERT_EQ(whole.parts.size(), 10u);
  for (size_t i = 0; i < whole.parts.size(); ++i) {
    ASSERT_EQ(whole.parts[i].size(), split.parts[i].size());
    ASSERT_FALSE(whole.parts[i].empty());
    for (size_t k = 0; k < whole.parts[i].size(); ++k) {
      EXPECT_EQ(whole.parts[i][k].part, split.parts[i][k].part);
      EXPECT_EQ(whole.parts[i][k].area, split.parts[i][k].area);
    }
  }
  EXPECT_FALSE(whole.images.defined());
  ScratchDir dir("measure-images");
  const auto study = make_sweep_study(dir.path());
  const auto tuning = make_tuning_set(study.config, study.classifier, study.generator, study.network);
  const auto kmeans = fit_kmeans_parts(study.generator, tuning.latents, 3, 5);
  testing::expect_error([&] { measure_images(classifier, *kmeans, batch.images, 4); }, {"kmeans", "latents"});
}

}  // namespace
}  // namespace linkstyle
