// Helpers shared by the trainers in src/train/ (internal to the library): the worlds' names, file
// names beside the model, modules as checkpoint entries, the cosine learning-rate schedule,
// Kaiming-normal convolution weights, and a TorchScript module trained with Adam by cross-entropy
// steps.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <torch/script.h>
#include <torch/torch.h>

#include "linkstyle/train/training_run.hpp"

namespace linkstyle::training {

// Error naming --world unless `world` is "shapes" or "fashion".
void check_world(const std::string& world);

// `file` with `suffix` appended to its full name ("m.pt" + ".json" -> "m.pt.json").
std::filesystem::path with_suffix(const std::filesystem::path& file, const std::string& suffix);

// The serialised module as a uint8 tensor (for torch::serialize archives), and back.
torch::Tensor module_bytes(const torch::jit::Module& module);
torch::jit::Module module_from_bytes(const torch::Tensor& bytes);

// The checkpoint entry `key`; c10::Error when it is missing.
c10::IValue read_value(torch::serialize::InputArchive& archive, const std::string& key);

// Cosine decay from `base` to 0 over `steps`; step is 1-based:
// base * 0.5 * (1 + cos(pi * (step - 1) / steps)).
double cosine_learning_rate(double base, int64_t step, int64_t steps);

// Kaiming-normal convolution weights [out, in, kernel, kernel] drawn from `rng`.
torch::Tensor kaiming_conv_weight(at::Generator& rng, int64_t out, int64_t in, int64_t kernel);

// A TorchScript module trained with Adam, as the classifier and segmenter trainers keep it; in a
// checkpoint, "module" (its serialised bytes) then "optimizer".
class AdamTrainedModule {
 public:
  explicit AdamTrainedModule(double learning_rate) : learning_rate_(learning_rate) {}

  // Training mode, parameters that require gradients, a fresh Adam.
  void start(torch::jit::Module module);
  void restore(torch::serialize::InputArchive& checkpoint);
  void save(torch::serialize::OutputArchive& checkpoint) const;

  // One step at learning rate `learning_rate`: cross-entropy of method(inputs) against the
  // targets; the record holds the loss and the share of argmax predictions that hit the
  // targets ("%.6f,%.6f").
  StepRecord cross_entropy_step(const char* method, const torch::Tensor& inputs, const torch::Tensor& targets,
                                double learning_rate);

  // One step at `learning_rate` on the loss that `loss_of` computes from the module; it returns
  // the loss to minimise and the record of the step.
  struct StepLoss {
    torch::Tensor loss;
    StepRecord record;
  };
  StepRecord optimise_step(double learning_rate, const std::function<StepLoss(torch::jit::Module&)>& loss_of);

  // The module to export: parameters without gradients, evaluation mode.
  torch::jit::Module& finish();

 private:
  double learning_rate_;
  torch::jit::Module module_;
  std::vector<torch::Tensor> parameters_;
  std::unique_ptr<torch::optim::Adam> optimizer_;
};

}  // namespace linkstyle::training
