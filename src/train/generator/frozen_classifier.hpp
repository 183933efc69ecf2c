// train/generator/frozen_classifier.hpp (private)
//
// WHAT THIS REPRESENTS
//   The world classifier that a generator is trained against, frozen: its stage outputs feed the
//   discriminator (and the renderer objective's feature loss), its logits the classifier guidance,
//   its file's fingerprint ties a checkpoint to it.
// REQUIRES
//   options.classifier names a built-in classifier (build_resnet_classifier) of the world's class
//   count; other files throw Error naming the file.
// ENSURES
//   The module is in evaluation mode with parameters that do not require gradients, and has
//   feature_pyramid (defined when the file lacks it). stage_channels and stage_sides describe the
//   discriminator heads' inputs at 32 px: [3] and [32] first with a pixel head, then one entry
//   per classifier stage.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <torch/script.h>

#include "linkstyle/models.hpp"
#include "linkstyle/train/generator_training.hpp"

namespace torch::serialize {
class InputArchive;
}

namespace linkstyle::generator_training {

// The frozen world classifier whose stages the discriminator reads.
struct FrozenClassifier {
  Classifier checked;         // through the public adapter, for the evaluation
  torch::jit::Module module;  // the same file, with feature_pyramid
  std::string fingerprint;
  // The discriminator heads' inputs: the images (with a pixel head), then the classifier's stages.
  std::vector<int64_t> stage_channels, stage_sides;
};

FrozenClassifier load_frozen_classifier(const GeneratorTrainingOptions& options);

// The classifier's stage outputs of images x (its feature_pyramid).
std::vector<torch::Tensor> stages_of(torch::jit::Module& classifier, const torch::Tensor& x);

// Error naming the checkpoint `file` when it was made with another classifier than this run's.
void check_classifier_fingerprint(torch::serialize::InputArchive& checkpoint, const std::filesystem::path& file,
                                  const FrozenClassifier& classifier, const GeneratorTrainingOptions& options);

}  // namespace linkstyle::generator_training
