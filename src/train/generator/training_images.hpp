// train/generator/training_images.hpp (private)
//
// WHAT THIS REPRESENTS
//   The real images the adversarial objective shows its discriminator: the world's images at
//   32 px in [0, 1] (shapes: fresh renders; fashion: the train split).
// REQUIRES
//   options.world is "shapes" or "fashion" (checked before); shapes needs seed < 2^22 (the
//   constructor throws Error naming --seed), fashion the dataset files (the constructor loads them).
// ENSURES
//   batch(step, rng) draws batch_size labels (shapes) or indices (fashion) from `rng` and nothing
//   else from it; shapes renders use the seeds (seed << 40) + (step - 1) * batch_size + i, so the
//   batch of a step is a pure function of (seed, step) and the state of `rng`.
#pragma once

#include <cstdint>

#include <torch/types.h>

#include "linkstyle/train/generator_training.hpp"
#include "linkstyle/worlds/fashion.hpp"
#include "linkstyle/worlds/shapes.hpp"
#include "train/generator/network.hpp"

namespace linkstyle::generator_training {

struct RealBatch {
  torch::Tensor images, labels;
};

// Real images of a world at 32 px in [0, 1]; the batch of a step is a pure function of (seed, step).
class RealImages {
 public:
  explicit RealImages(const GeneratorTrainingOptions& options);

  RealBatch batch(int64_t step, at::Generator& rng) const;

  int64_t classes() const;

 private:
  const GeneratorTrainingOptions& options_;
  ShapesWorld world_{kResolution};
  FashionMnist fashion_;
};

}  // namespace linkstyle::generator_training
