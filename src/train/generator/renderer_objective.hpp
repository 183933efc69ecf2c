// train/generator/renderer_objective.hpp (private)
//
// WHAT THIS REPRESENTS
//   The renderer objective of generator training (shapes only): a StyleLatent::kShapesFactors
//   generator taught to draw what the shapes renderer draws for the same class and factors.
// REQUIRES
//   Options checked (objective "renderer", world "shapes"); `classifier` loaded for them
//   (load_frozen_classifier).
// ENSURES
//   train_renderer_objective() runs `run` (fresh or resumed) and returns the generator's weight
//   average. Each step draws classes and z ~ N(0, I) (pure functions of (seed, step)), renders the
//   factors the generator's own factors(z, c) reads off z, and takes an Adam step on the L1
//   distance of the images plus feature_weight times the L1 distance of the frozen classifier's
//   stage outputs (each divided by the rendered stage's mean magnitude); the learning rate warms
//   up over 100 steps, then decays on a cosine. The log row is loss, pixel_l1, feature_l1,
//   learning_rate. A checkpoint holds generator, average, optimizer, then the settings a resume
//   must match; after each, the preview is rewritten.
#pragma once

#include "linkstyle/train/generator_training.hpp"
#include "linkstyle/train/training_run.hpp"
#include "train/generator/frozen_classifier.hpp"

namespace linkstyle::generator_training {

torch::jit::Module train_renderer_objective(TrainingRun& run, const GeneratorTrainingOptions& options,
                                            FrozenClassifier& classifier);

}  // namespace linkstyle::generator_training
