// Generator: a TorchScript module behind the model contract (see models.hpp), probed at load.
#include "linkstyle/models.hpp"

#include <cmath>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "linkstyle/errors.hpp"
#include "models/model_checks.hpp"

namespace linkstyle {

namespace fs = std::filesystem;
using namespace model_checks;

Generator Generator::load(const fs::path& file, const c10::Device& device) {
  Generator model;
  model.file_ = file;
  model.device_ = device;
  model.module_ = load_module(file, device);
  const torch::jit::Module& module = *model.module_;
  require_method(module, file, "mapping", "generator");
  require_method(module, file, "synthesis", "generator");
  model.z_dim_ = positive_int_attribute(module, file, "z_dim");
  model.w_dim_ = positive_int_attribute(module, file, "w_dim");
  model.num_classes_ = positive_int_attribute(module, file, "num_classes");
  model.resolution_ = positive_int_attribute(module, file, "resolution");
  model.class_names_ = class_names_attribute(module, file);
  if (!model.class_names_.empty() && static_cast<int64_t>(model.class_names_.size()) != model.num_classes_)
    throw Error(file, "attribute 'class_names' has " + std::to_string(model.class_names_.size()) +
                          " names but num_classes is " + std::to_string(model.num_classes_));
  model.has_synthesis_features_ = module.find_method("synthesis_features").has_value();
  model.has_synthesis_with_features_ = module.find_method("synthesis_with_features").has_value();

  torch::NoGradGuard no_grad;
  // A fixed probe batch from a private generator: the global RNG is left alone. Batch sizes 2 and
  // 1 (its first sample): a module traced with a fixed batch size fails or differs at one of them.
  auto rng = at::detail::createCPUGenerator(20240611);
  const auto z = torch::randn({2, model.z_dim_}, rng, torch::kFloat).to(device);
  const auto c = torch::zeros({2}, torch::TensorOptions().dtype(torch::kLong).device(device));
  torch::Tensor w;
  try {
    w = call_probe(module, file, "mapping", {z, c, 0.7}, {2, model.w_dim_});
  } catch (const Error& error) {
    throw Error(file, fmt::format("{} (probe: z [2,{}] float, c [2] int64 class indices, psi 0.7; the contract "
                                  "passes classes as int64 indices: a mapping that wants one-hot c converts them "
                                  "itself)",
                                  problem_of(error), model.z_dim_));
  }
  const torch::Tensor w1 = call_alone(module, file, "mapping", {z, c, 0.7}, {1, model.w_dim_});
  require_same_results(file, "mapping", w.slice(0, 0, 1), w1);
  const std::vector<int64_t> image_shape = {2, 3, model.resolution_, model.resolution_};
  const torch::Tensor images = call_probe(module, file, "synthesis", {w}, image_shape);
  const torch::Tensor image1 = call_alone(module, file, "synthesis", {w}, {1, 3, model.resolution_, model.resolution_});
  require_same_results(file, "synthesis", images.slice(0, 0, 1), image1);
  model.check_pixel_range(images);

  // The one-call method must give synthesis' image and synthesis_features' maps (checked on the
  // first sample: a generator at real scale takes seconds an image).
  if (model.has_synthesis_with_features_) {
    const auto [both_image, maps] = model.synthesis_with_features(w1);
    require_same_results(file, "synthesis_with_features", image1, both_image, "than synthesis");
    if (model.has_synthesis_features_) {
      const auto separate = model.synthesis_features(w1);
      if (separate.size() != maps.size())
        throw Error(file, fmt::format("synthesis_with_features returns {} maps but synthesis_features {}", maps.size(),
                                      separate.size()));
      for (size_t i = 0; i < maps.size(); ++i)
        require_same_results(file, "synthesis_with_features", separate[i], maps[i], "than synthesis_features");
    }
  }
  return model;
}

// Images far outside [-1, 1] (a [0, 255] generator) are an error; images that stay within [0, 1]
// or go well beyond [-1, 1] are let through with a warning (a random-weight generator does).
void Generator::check_pixel_range(const torch::Tensor& images) {
  if (!torch::isfinite(images).all().item<bool>()) return;  // synthesis() names NaN/Inf on use
  const double low = images.min().item<double>(), high = images.max().item<double>();
  if (high > 10.0 || low < -10.0)
    throw Error(file_, fmt::format("synthesis returned pixel values in [{:.3g}, {:.3g}]; the contract wants images "
                                   "in [-1, 1] (rescale in the exported module)",
                                   low, high));
  if (low >= 0.0 && high <= 1.0 && high - low > 0.1)
    warnings_.push_back(
        fmt::format("{}: synthesis returned pixel values in [{:.3g}, {:.3g}] on the probe: is the "
                    "generator's output in [0, 1]? The contract wants [-1, 1]",
                    file_.string(), low, high));
  else if (high > 1.5 || low < -1.5)
    warnings_.push_back(
        fmt::format("{}: synthesis returned pixel values in [{:.3g}, {:.3g}] on the probe, beyond "
                    "[-1, 1]; they are clamped before the classifier sees them",
                    file_.string(), low, high));
}

torch::Tensor Generator::mapping(const torch::Tensor& z, const torch::Tensor& classes, double psi) const {
  check_input(file_, "mapping", "z", z, {-1, z_dim_});
  if (!classes.defined()) throw Error(file_, "mapping: classes is an undefined tensor");
  if (!shape_matches(classes, {z.size(0)}))
    throw Error(file_, "mapping: classes has shape " + shape_string(classes.sizes()) + ", expected [" +
                           std::to_string(z.size(0)) + "]");
  if (classes.scalar_type() != torch::kLong)
    throw Error(file_,
                "mapping: classes has dtype " + std::string(c10::toString(classes.scalar_type())) + ", expected int64");
  if (!std::isfinite(psi)) throw Error(file_, "mapping: psi must be finite");
  if (classes.numel() > 0) {
    const int64_t low = classes.min().item<int64_t>();
    const int64_t high = classes.max().item<int64_t>();
    if (low < 0 || high >= num_classes_)
      throw Error(file_, "mapping: class index " + std::to_string(low < 0 ? low : high) + " out of range [0," +
                             std::to_string(num_classes_) + ")");
  }
  GradScope scope(z);
  const torch::Tensor w =
      call_tensor(*module_, file_, "mapping", {z.to(device_, torch::kFloat), classes.to(device_), psi});
  check_output(file_, "mapping", w, {z.size(0), w_dim_});
  return w;
}

torch::Tensor Generator::synthesis(const torch::Tensor& w) const {
  check_input(file_, "synthesis", "w", w, {-1, w_dim_});
  GradScope scope(w);
  const torch::Tensor images = call_tensor(*module_, file_, "synthesis", {w.to(device_, torch::kFloat)});
  check_generated_images(file_, "synthesis", images, {w.size(0), 3, resolution_, resolution_});
  return images;
}

std::vector<torch::Tensor> Generator::synthesis_features(const torch::Tensor& w) const {
  if (!has_synthesis_features_) throw Error(file_, "the generator has no synthesis_features method");
  check_input(file_, "synthesis_features", "w", w, {-1, w_dim_});
  GradScope scope(w);
  return feature_maps_of(call(*module_, file_, "synthesis_features", {w.to(device_, torch::kFloat)}),
                         "synthesis_features", w.size(0));
}

std::vector<torch::Tensor> Generator::feature_maps_of(const c10::IValue& out, const char* method, int64_t batch) const {
  if (!out.isTensorList() && !(out.isList() || out.isTuple()))
    throw Error(file_, std::string(method) + " returned " + out.tagKind() + " for the maps, expected List[Tensor]");
  std::vector<torch::Tensor> maps;
  if (out.isTensorList()) {
    maps = out.toTensorVector();
  } else {
    const auto elements = out.isTuple() ? out.toTupleRef().elements().vec() : out.toListRef().vec();
    for (const c10::IValue& element : elements) {
      if (!element.isTensor())
        throw Error(file_,
                    std::string(method) + " returned a list holding " + element.tagKind() + ", expected tensors");
      maps.push_back(element.toTensor());
    }
  }
  for (const torch::Tensor& map : maps)
    if (map.dim() < 1 || map.size(0) != batch)
      throw Error(file_, std::string(method) + " returned a map of shape " + shape_string(map.sizes()) +
                             ", expected batch size " + std::to_string(batch) + " first");
  return maps;
}

std::pair<torch::Tensor, std::vector<torch::Tensor>> Generator::synthesis_with_features(const torch::Tensor& w) const {
  if (!has_synthesis_with_features_) return {synthesis(w), synthesis_features(w)};
  check_input(file_, "synthesis_with_features", "w", w, {-1, w_dim_});
  GradScope scope(w);
  const c10::IValue out = call(*module_, file_, "synthesis_with_features", {w.to(device_, torch::kFloat)});
  if (!out.isTuple() || out.toTupleRef().elements().size() != 2 || !out.toTupleRef().elements()[0].isTensor())
    throw Error(file_, std::string("synthesis_with_features returned ") + out.tagKind() +
                           ", expected Tuple[Tensor, List[Tensor]]");
  const torch::Tensor images = out.toTupleRef().elements()[0].toTensor();
  check_generated_images(file_, "synthesis_with_features", images, {w.size(0), 3, resolution_, resolution_});
  return {images, feature_maps_of(out.toTupleRef().elements()[1], "synthesis_with_features", w.size(0))};
}

std::string Generator::class_name(int64_t k) const { return default_class_name(class_names_, k); }

torch::Tensor generator_to_classifier_range(const torch::Tensor& images) {
  return ((images + 1.0) / 2.0).clamp(0.0, 1.0);
}

}  // namespace linkstyle
