// linkstyle/train/classifier_training.hpp
//
// WHAT THIS REPRESENTS
//   Training of a world's built-in classifier: a small ResNet built directly as a TorchScript
//   module (the trained object is the exported file), meeting the classifier model contract
//   (docs/model-contract.md):
//     features(x [N,3,H,W] in [0,1]) -> r [N,256]: bilinear resize to input_size (32) when
//       needed, (x - 0.5) / 0.5, stem conv3x3 (32), four stages of one residual basic block each
//       (32, 64, 128, 256 channels; stride 2 at stages 2-4; 1x1 projection shortcut when the
//       shape changes), group norm (8 groups, affine) so training and inference behave the same,
//       global average pool after the last ReLU (r >= 0);
//     head(r) -> logits [N,K] (linear); forward(x) = head(features(x));
//     feature_pyramid(x) -> List[Tensor]: the four stage outputs (32x32 .. 256x4x4 at input 32),
//       the same computation as features up to the pool;
//     attributes class_names (List[str], K names) and input_size (int).
//   Worlds: "shapes" (ShapesWorld at resolution 64, fresh rendered batches every step, K = 6) and
//   "fashion" (FashionMnist train split with random horizontal flip and random crop after 2-px
//   padding, K = 10).
// REQUIRES
//   world is "shapes" or "fashion"; output names a file in a writable folder; steps >= 1,
//   batch_size >= 1, checkpoint_every >= 1, test_images >= 1 (shapes). Fashion needs Debian's
//   dataset-fashion-mnist files in fashion_folder.
// ENSURES
//   train_classifier() minimises cross-entropy with Adam (lr cosine-decayed from learning_rate
//   to 0 over `steps`), seeded: initial weights come from `seed`; the batch of step s is a pure
//   function of (seed, s), so a resumed run sees the same data. Shapes training images use seeds
//   below 2^63, the shapes test images (labels i % 6) seeds 2^63 + i: the sets are disjoint.
//   Every checkpoint_every steps (and at the end) it writes <output>.checkpoint/checkpoint.pt
//   atomically (module, Adam state, step, seed); a rerun with the same output resumes from it
//   (after kill -9 too) and continues from the step reached. <output>.log.csv holds one row per
//   step (step,loss,train_accuracy,seconds), steps 1..steps without gaps or duplicates across
//   resumes. At the end it evaluates test accuracy (shapes: test_images held-out images; fashion:
//   the 10k test split), writes the model atomically (parameters without requires_grad) and the
//   model card <output>.json (world, architecture, steps, seed, batch_size, learning_rate,
//   command_line, test_accuracy, training_seconds, git_revision). Bad options throw
//   linkstyle::Error naming the option, before anything is written. Checkpoint, resume, log and
//   card follow TrainingRun (training_run.hpp). With planted (shapes), the loss adds the planted
//   units' error and the log a planted_rmse column; at the end each planted unit is checked on
//   test_images held-out renders, a unit under r 0.96 with its target is released as a free unit
//   (the attribute planted_factors keeps the rest), and the card lists planted_units and
//   not_planted with their correlations, the largest free unit's, and the weight.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <torch/types.h>

#include "linkstyle/models.hpp"
#include "linkstyle/train/training_run.hpp"

namespace torch::jit {
struct Module;
}

namespace linkstyle {

struct ClassifierTrainingOptions {
  std::string world = "shapes";  // "shapes" or "fashion"
  std::filesystem::path output;  // the TorchScript model file to write
  int64_t steps = 3000;
  uint64_t seed = 0;
  int64_t batch_size = 128;
  int64_t checkpoint_every = 200;
  double learning_rate = 2e-3;
  int64_t test_images = 2000;            // shapes only; fashion uses the whole test split
  std::filesystem::path fashion_folder;  // empty: default_fashion_folder()
  std::string command_line;              // recorded in the model card
  bool progress = true;                  // draw a ProgressBar (only on a terminal)
  // Shapes only: plant default_planted_units() (planted_units.hpp) with an auxiliary loss,
  // planted_weight x the mean squared error of the planted units against their targets.
  bool planted = false;
  double planted_weight = 20.0;
  // "resnet" (above) or "plain": a network of another design, for a second, independent
  // classifier (the counterfactuals' judge): stem conv3x3 W, four stages of two conv3x3 + group
  // norm + ReLU (W, 2W, 4W, 8W channels; stride 2 at stages 2-4), no shortcuts, D = 8W.
  std::string architecture = "resnet";
  int64_t width = 24;  // plain: W
};

struct ClassifierTrainingResult : TrainingRunResult {
  double test_accuracy = 0;  // in [0, 1]
};

ClassifierTrainingResult train_classifier(const ClassifierTrainingOptions& options);

// The untrained ResNet module described above, weights drawn from `seed`; with `planted`, the
// attribute planted_factors names them (planted_units.hpp).
torch::jit::Module build_resnet_classifier(const std::vector<std::string>& class_names, uint64_t seed,
                                           int64_t input_size = 32, const std::vector<PlantedUnit>& planted = {});

// The untrained plain network described above (ClassifierTrainingOptions::architecture).
torch::jit::Module build_plain_classifier(const std::vector<std::string>& class_names, uint64_t seed,
                                          int64_t width = 24, int64_t input_size = 32);
// Adds feature_pyramid (above) to a loaded built-in classifier that lacks it (files written
// before the method existed); Error naming `file` when the module is not a built-in classifier.
void define_feature_pyramid(torch::jit::Module& classifier, const std::filesystem::path& file);

// Class names of a world ("shapes" or "fashion"); Error for another name.
const std::vector<std::string>& world_class_names(const std::string& world);

// Test accuracy in [0, 1] of a classifier on a world's held-out test set (see above).
double classifier_test_accuracy(const Classifier& classifier, const std::string& world, int64_t test_images = 2000,
                                const std::filesystem::path& fashion_folder = {});

}  // namespace linkstyle
