// train/classifier/data.hpp (private)
//
// WHAT THIS REPRESENTS
//   The classifier trainer's data: the training batch of each step (shapes: fresh 64-px renders
//   with the factors behind them; fashion: the train split, randomly flipped and cropped) and the
//   world's held-out test set on which accuracy is measured.
// REQUIRES
//   options.world is "shapes" or "fashion"; shapes needs seed < 2^22 (the constructor throws
//   Error naming --seed), fashion the dataset files (the constructor loads the train split).
// ENSURES
//   batch(step) is a pure function of (seed, step): shapes image i of the run has label i % 6 and
//   seed (seed << 40) + i; fashion draws from a generator seeded by (seed, step). The shapes test
//   images (labels i % 6) have seeds kShapesTestSeedBase + i, disjoint from the training seeds.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include <torch/types.h>

#include "linkstyle/train/classifier_training.hpp"
#include "linkstyle/worlds/fashion.hpp"
#include "linkstyle/worlds/shapes.hpp"

namespace linkstyle::classifier_training {

constexpr uint64_t kShapesTestSeedBase = uint64_t{1} << 63;

struct Batch {
  torch::Tensor images, labels, factors;  // factors: shapes only
};

// The training batch of `step` (1-based): a pure function of (seed, step).
class TrainingData {
 public:
  TrainingData(const ClassifierTrainingOptions& options);

  Batch batch(int64_t step) const;

 private:
  const ClassifierTrainingOptions& options_;
  ShapesWorld world_;
  FashionMnist fashion_;
};

// Fraction of correct argmax predictions of `logits_of` over the world's test set (shapes:
// test_images renders; fashion: the test split in fashion_folder, or the default folder when
// empty), in batches of 250 images without gradients.
double test_accuracy(const std::string& world, int64_t test_images, const std::filesystem::path& fashion_folder,
                     const std::function<torch::Tensor(const torch::Tensor&)>& logits_of);

}  // namespace linkstyle::classifier_training
