// The frozen world classifier of generator training (see frozen_classifier.hpp).
#include "train/generator/frozen_classifier.hpp"

#include <torch/torch.h>

#include "linkstyle/errors.hpp"
#include "linkstyle/train/classifier_training.hpp"
#include "train/generator/network.hpp"
#include "train/training_common.hpp"

namespace linkstyle::generator_training {

namespace fs = std::filesystem;

FrozenClassifier load_frozen_classifier(const GeneratorTrainingOptions& options) {
  FrozenClassifier frozen{Classifier::load(options.classifier, c10::Device(c10::kCPU)), {}, {}, {}, {}};
  const int64_t classes = static_cast<int64_t>(world_class_names(options.world).size());
  if (frozen.checked.num_classes() != classes)
    throw Error(options.classifier, "has " + std::to_string(frozen.checked.num_classes()) + " classes, the " +
                                        options.world + " world " + std::to_string(classes));
  frozen.module = torch::jit::load(options.classifier.string());
  define_feature_pyramid(frozen.module, options.classifier);
  frozen.module.eval();
  for (const auto& p : frozen.module.parameters()) p.requires_grad_(false);
  frozen.fingerprint = file_fingerprint(options.classifier);
  if (options.pixel_head) {
    frozen.stage_channels.push_back(3);
    frozen.stage_sides.push_back(kResolution);
  }
  torch::NoGradGuard no_grad;  // stage shapes from one probe
  for (const auto& s : stages_of(frozen.module, torch::zeros({1, 3, kResolution, kResolution}))) {
    frozen.stage_channels.push_back(s.size(1));
    frozen.stage_sides.push_back(s.size(2));
  }
  return frozen;
}

std::vector<torch::Tensor> stages_of(torch::jit::Module& classifier, const torch::Tensor& x) {
  const auto list = classifier.get_method("feature_pyramid")({x}).toTensorList();
  return std::vector<torch::Tensor>(list.begin(), list.end());
}

void check_classifier_fingerprint(torch::serialize::InputArchive& checkpoint, const fs::path& file,
                                  const FrozenClassifier& classifier, const GeneratorTrainingOptions& options) {
  const std::string fingerprint = training::read_value(checkpoint, "classifier_fingerprint").toStringRef();
  if (fingerprint != classifier.fingerprint)
    throw Error(file, "was made with another classifier (fingerprint " + fingerprint + ", " +
                          options.classifier.string() + " has " + classifier.fingerprint +
                          "); pass that classifier or remove the checkpoint folder");
}

}  // namespace linkstyle::generator_training
