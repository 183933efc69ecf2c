// Tests for the part sources (part_sources.hpp): k-means and segmenter files.
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "linkstyle/errors.hpp"
#include "linkstyle/part_sources.hpp"
#include "linkstyle/tiny_models.hpp"
#include "linkstyle/train/segmenter_training.hpp"
#include "linkstyle/worlds/shapes.hpp"
#include "test_support.hpp"

namespace linkstyle {
namespace {

using testing::ScratchDir;

TEST(PartSources, KMeansIsDeterministicAndNumbersClustersBySize) {
  ScratchDir dir("sweep-kmeans");
  const auto models = write_tiny_models(dir.path());
  const auto generator = Generator::load(models.generator, c10::Device(c10::kCPU));
  auto z = torch::randn({12, generator.z_dim()}, at::detail::createCPUGenerator(1));
  const auto w = generator.mapping(z, torch::arange(12) % 3, 0.7);
  const auto images = generator_to_classifier_range(generator.synthesis(w));
  const auto first = fit_kmeans_parts(generator, w, 4, 9);
  const auto second = fit_kmeans_parts(generator, w, 4, 9);
  const auto labels = first->label(images, w);
  EXPECT_TRUE(torch::equal(labels, second->label(images, w)));
  EXPECT_EQ(labels.sizes(), (std::vector<int64_t>{12, 16, 16}));
  EXPECT_EQ(first->part_names(), (std::vector<std::string>{"cluster 0", "cluster 1", "cluster 2", "cluster 3"}));
  const auto counts = torch::bincount(labels.flatten().to(torch::kLong), {}, 4);
  EXPECT_GE(counts[0].item<int64_t>(), counts[1].item<int64_t>());
  EXPECT_GE(counts[1].item<int64_t>(), counts[3].item<int64_t>());
  EXPECT_GT(counts[1].item<int64_t>(), 0);  // more than one part is found
  EXPECT_EQ(whole_image_parts()->label(images, w).sum().item<int64_t>(), 0);

  // From the maps of one synthesis_with_features call: the same labels as from the latents.
  ASSERT_TRUE(generator.has_synthesis_with_features());
  ASSERT_TRUE(first->labels_feature_maps());
  const auto [same_images, maps] = generator.synthesis_with_features(w);
  EXPECT_TRUE(torch::equal(generator_to_classifier_range(same_images), images));
  EXPECT_TRUE(torch::equal(first->label_feature_maps(images, maps), labels));
  EXPECT_FALSE(whole_image_parts()->labels_feature_maps());
  EXPECT_THROW(whole_image_parts()->label_feature_maps(images, maps), Error);
}

TEST(PartSources, SegmenterFilesAreCheckedAndLabelAtTheImageSize) {
  ScratchDir dir("sweep-segmenter");
  auto module = build_unet_segmenter(ShapesWorld::part_names(), 1, 32);
  module.save((dir / "segmenter.pt").string());
  const auto parts = load_segmenter_parts(dir / "segmenter.pt", c10::Device(c10::kCPU));
  EXPECT_EQ(parts->part_names(), ShapesWorld::part_names());
  const auto labels = parts->label(torch::rand({2, 3, 16, 16}), torch::Tensor());
  EXPECT_EQ(labels.sizes(), (std::vector<int64_t>{2, 16, 16}));
  EXPECT_GE(labels.min().item<int>(), 0);
  EXPECT_LT(labels.max().item<int>(), int(ShapesWorld::part_names().size()));
  const auto tiny = write_tiny_models(dir / "tiny");
  testing::expect_error([&] { load_segmenter_parts(tiny.generator, c10::Device(c10::kCPU)); },
                        {"tiny_generator.pt", "segment"});
  testing::expect_error([&] { load_segmenter_parts(dir / "missing.pt", c10::Device(c10::kCPU)); }, {"missing.pt"});
}

}  // namespace
}  // namespace linkstyle
