// train/generator/adversarial_objective.hpp (private)
//
// WHAT THIS REPRESENTS
//   The adversarial objective of generator training (generator_training.hpp): each step trains
//   the projected discriminator on real and generated images (lazy R1 every 16 steps), then the
//   generator (non-saturating loss plus classifier guidance), then updates the generator's weight
//   average.
// REQUIRES
//   Options checked and `real` made from them; `classifier` loaded for them
//   (load_frozen_classifier).
// ENSURES
//   train_adversarial_objective() runs `run` (fresh or resumed) with these steps and returns the
//   generator's weight average. Step s draws its real batch, latents and augmentation from a
//   generator seeded by (seed, s); the log row is loss_d, loss_g, d_real, d_fake, r1, guidance,
//   fake_accuracy. A checkpoint holds generator, average, discriminator, g_optimizer,
//   d_optimizer, then the settings a resume must match; after each, the preview is rewritten.
#pragma once

#include "linkstyle/train/generator_training.hpp"
#include "linkstyle/train/training_run.hpp"
#include "train/generator/frozen_classifier.hpp"
#include "train/generator/training_images.hpp"

namespace linkstyle::generator_training {

torch::jit::Module train_adversarial_objective(TrainingRun& run, const GeneratorTrainingOptions& options,
                                               const RealImages& real, FrozenClassifier& classifier);

}  // namespace linkstyle::generator_training
