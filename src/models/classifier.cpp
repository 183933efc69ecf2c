// Classifier: a TorchScript module behind the model contract (see models.hpp), probed at load.
#include "linkstyle/models.hpp"
#include "linkstyle/planted_units.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "linkstyle/errors.hpp"
#include "linkstyle/runtime.hpp"
#include "models/model_checks.hpp"

namespace linkstyle {

namespace fs = std::filesystem;
using namespace model_checks;

Classifier Classifier::load(const fs::path& file, const c10::Device& device) {
  Classifier model;
  model.file_ = file;
  model.device_ = device;
  model.module_ = load_module(file, device);
  const torch::jit::Module& module = *model.module_;
  require_method(module, file, "features", "classifier");
  require_method(module, file, "head", "classifier");
  model.class_names_ = class_names_attribute(module, file);

  int64_t input_size = 64;
  if (module.hasattr("input_size")) {
    const c10::IValue value = module.attr("input_size");
    if (!value.isInt() || value.toInt() <= 0 || value.toInt() > 16384)
      throw Error(file, "attribute 'input_size' must be an int in [1, 16384]");
    input_size = value.toInt();
  }
  // The probe batch of two images below.
  require_memory("input_size", batch_memory_bytes(2.0, input_size),
                 "two images of " + std::to_string(input_size) + "x" + std::to_string(input_size), file);

  torch::NoGradGuard no_grad;
  // Probes at batch sizes 2 and 1 (its first sample): a module traced with a fixed batch size
  // fails or differs at one of them.
  auto rng = at::detail::createCPUGenerator(20240612);
  const auto probe = torch::rand({2, 3, input_size, input_size}, rng, torch::kFloat).to(device);
  const std::string size_source = module.hasattr("input_size")
                                      ? "the attribute 'input_size'"
                                      : "the default, as the attribute 'input_size' is not set";
  torch::Tensor r;
  try {
    r = call_probe(module, file, "features", {probe}, {2, -1});
  } catch (const Error& error) {
    throw Error(file, fmt::format("{} (probe images [2,3,{},{}]; the side is {})", problem_of(error), input_size,
                                  input_size, size_source));
  }
  if (r.size(1) <= 0)
    throw Error(file, "features returned shape " + shape_string(r.sizes()) + ", expected [2,D] with D > 0");
  model.feature_dim_ = r.size(1);
  require_same_results(file, "features", r.slice(0, 0, 1),
                       call_alone(module, file, "features", {probe}, {1, model.feature_dim_}));

  const torch::Tensor logits = call_probe(module, file, "head", {r}, {2, -1});
  if (logits.size(1) <= 0)
    throw Error(file, "head returned shape " + shape_string(logits.sizes()) + ", expected [2,K] with K > 0");
  model.num_classes_ = logits.size(1);
  if (!model.class_names_.empty() && static_cast<int64_t>(model.class_names_.size()) != model.num_classes_)
    throw Error(file, "attribute 'class_names' has " + std::to_string(model.class_names_.size()) +
                          " names but head returns " + std::to_string(model.num_classes_) + " classes");
  require_same_results(file, "head", logits.slice(0, 0, 1),
                       call_alone(module, file, "head", {r}, {1, model.num_classes_}));
  const auto planted = string_list_attribute(module, file, "planted_factors");
  if (!planted.empty() && static_cast<int64_t>(planted.size()) != model.feature_dim_)
    throw Error(file, "attribute 'planted_factors' has " + std::to_string(planted.size()) +
                          " entries but features returns " + std::to_string(model.feature_dim_) + " units");
  model.planted_units_ = parse_planted_attribute(planted, file);

  // features() without gradients runs an inference-optimised copy, where it gives the same
  // features; head() always runs the module itself, so that gradients flow as they were written.
  if (device.is_cpu() && torch::isfinite(r).all().item<bool>()) {
    auto optimised = inference_copy(module, {"features", "head"});
    try {
      if (optimised && same_within_tolerance(r, call_tensor(*optimised, file, "features", {probe})))
        model.inference_module_ = std::move(optimised);
    } catch (const Error&) {
    }
  }
  return model;
}

torch::Tensor Classifier::features(const torch::Tensor& images) const {
  check_input(file_, "features", "images", images, {-1, 3, -1, -1});
  GradScope scope(images);
  const torch::Tensor x = images.to(device_, torch::kFloat);
  const bool optimised = inference_module_ && !c10::GradMode::is_enabled();
  const torch::Tensor r = call_tensor(optimised ? *inference_module_ : *module_, file_, "features", {x});
  check_output(file_, "features", r, {images.size(0), feature_dim_});
  return r;
}

torch::Tensor Classifier::head(const torch::Tensor& features) const {
  check_input(file_, "head", "features", features, {-1, feature_dim_});
  const torch::Tensor r = features.to(device_, torch::kFloat);
  const torch::Tensor logits = call_tensor(*module_, file_, "head", {r});
  check_output(file_, "head", logits, {features.size(0), num_classes_});
  return logits;
}

std::string Classifier::class_name(int64_t k) const { return default_class_name(class_names_, k); }

}  // namespace linkstyle
