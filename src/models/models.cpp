// Classifier and Generator: TorchScript models behind the model contract (see models.hpp).
#include "linkstyle/models.hpp"
#include "linkstyle/planted_units.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <system_error>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "linkstyle/errors.hpp"
#include "linkstyle/runtime.hpp"
#include "models/zip_archive.hpp"
#include "splitmix.hpp"

namespace linkstyle {

namespace fs = std::filesystem;

namespace {

const char* const kContract = "(docs/model-contract.md)";

std::string trim(const std::string& text) {
  const auto begin = text.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return "";
  const auto end = text.find_last_not_of(" \t\r\n");
  return text.substr(begin, end - begin + 1);
}

// One line out of a (possibly long, multi-line) torch message. TorchScript interpreter errors
// put the useful part after the last "RuntimeError: "; other messages lead with it.
std::string short_reason(const std::string& message) {
  std::string text = message;
  const std::string marker = "RuntimeError: ";
  const auto at = text.rfind(marker);
  if (at != std::string::npos) text = text.substr(at + marker.size());
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    line = trim(line);
    if (!line.empty()) return line;
  }
  return "unknown error";
}

std::string reason_of(const std::exception& error) {
  if (const auto* torch_error = dynamic_cast<const c10::Error*>(&error))
    return short_reason(torch_error->what_without_backtrace());
  return short_reason(error.what());
}

std::string shape_string(c10::IntArrayRef sizes) {
  std::string out = "[";
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (i) out += ",";
    out += std::to_string(sizes[i]);
  }
  return out + "]";
}

// "[2,?]"-style expected shapes: negative entries print as '?'.
std::string expected_string(const std::vector<int64_t>& sizes) {
  std::string out = "[";
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (i) out += ",";
    out += sizes[i] < 0 ? std::string("?") : std::to_string(sizes[i]);
  }
  return out + "]";
}

bool shape_matches(const torch::Tensor& tensor, const std::vector<int64_t>& expected) {
  if (tensor.dim() != static_cast<int64_t>(expected.size())) return false;
  for (size_t i = 0; i < expected.size(); ++i)
    if (expected[i] >= 0 && tensor.size(static_cast<int64_t>(i)) != expected[i]) return false;
  return true;
}

// The problem part of an Error's message (what follows "<file>: ").
std::string problem_of(const Error& error) {
  return std::string(error.what()).substr(std::min(error.subject().size() + 2, std::strlen(error.what())));
}

std::shared_ptr<torch::jit::Module> load_module(const fs::path& file, const c10::Device& device) {
  std::error_code error;
  if (!fs::exists(file, error)) throw Error(file, "file not found");
  if (fs::is_directory(file, error)) throw Error(file, "is a folder, expected a TorchScript file");
  // libtorch reads a damaged weight without complaint; the archive's checksums catch it.
  try {
    verify_zip_archive(file);
  } catch (const Error& error) {
    throw Error(file, "not a TorchScript archive: " + problem_of(error));
  }
  std::shared_ptr<torch::jit::Module> module;
  try {
    module = std::make_shared<torch::jit::Module>(torch::jit::load(file.string(), device));
  } catch (const std::exception& e) {
    throw Error(file, "not a TorchScript archive: " + reason_of(e));
  }
  module->eval();
  return module;
}

void require_method(const torch::jit::Module& module, const fs::path& file, const char* name, const char* role) {
  if (!module.find_method(name))
    throw Error(file, std::string("missing method '") + name + "' required by the " + role + " contract " + kContract);
}

int64_t positive_int_attribute(const torch::jit::Module& module, const fs::path& file, const char* name) {
  if (!module.hasattr(name))
    throw Error(file, std::string("missing attribute '") + name + "' required by the generator contract " + kContract);
  const c10::IValue value = module.attr(name);
  if (!value.isInt())
    throw Error(file, std::string("attribute '") + name + "' must be an int, found " + value.tagKind());
  const int64_t number = value.toInt();
  if (number <= 0)
    throw Error(file, std::string("attribute '") + name + "' must be > 0, found " + std::to_string(number));
  return number;
}

// An optional List[str] attribute (class_names, planted_factors). Empty when absent.
std::vector<std::string> string_list_attribute(const torch::jit::Module& module, const fs::path& file,
                                               const std::string& name) {
  std::vector<std::string> names;
  if (!module.hasattr(name)) return names;
  const c10::IValue value = module.attr(name);
  if (value.isNone()) return names;
  if (!value.isList()) throw Error(file, "attribute '" + name + "' must be a List[str]");
  for (const c10::IValue& element : value.toListRef()) {
    if (!element.isString()) throw Error(file, "attribute '" + name + "' must be a List[str]");
    names.push_back(element.toStringRef());
  }
  return names;
}

std::vector<std::string> class_names_attribute(const torch::jit::Module& module, const fs::path& file) {
  return string_list_attribute(module, file, "class_names");
}

// Runs one method, turning torch failures into an Error naming the file and the method.
c10::IValue call(const torch::jit::Module& module, const fs::path& file, const char* name,
                 std::vector<c10::IValue> inputs) {
  try {
    return module.get_method(name)(std::move(inputs));
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(file, std::string(name) + " failed: " + reason_of(e));
  }
}

torch::Tensor call_tensor(const torch::jit::Module& module, const fs::path& file, const char* name,
                          std::vector<c10::IValue> inputs) {
  c10::IValue out = call(module, file, name, std::move(inputs));
  if (!out.isTensor()) throw Error(file, std::string(name) + " returned " + out.tagKind() + ", expected a Tensor");
  return out.toTensor();
}

void check_output(const fs::path& file, const char* name, const torch::Tensor& out,
                  const std::vector<int64_t>& expected) {
  if (!shape_matches(out, expected))
    throw Error(file, std::string(name) + " returned shape " + shape_string(out.sizes()) + ", expected " +
                          expected_string(expected));
  if (!out.is_floating_point())
    throw Error(file, std::string(name) + " returned dtype " + std::string(c10::toString(out.scalar_type())) +
                          ", expected a floating-point tensor");
}

// A generator's images: their shape and dtype, and finite pixels (later steps clamp pixels to
// [0, 1], which would hide NaN or Inf for good).
void check_generated_images(const fs::path& file, const char* method, const torch::Tensor& images,
                            const std::vector<int64_t>& expected) {
  check_output(file, method, images, expected);
  if (!torch::isfinite(images.detach()).all().item<bool>())
    throw Error(file, std::string(method) + " gives NaN or Inf pixels");
}

// Checks an input tensor's rank, sizes (negative = any) and floating dtype.
void check_input(const fs::path& file, const char* method, const char* what, const torch::Tensor& tensor,
                 const std::vector<int64_t>& expected) {
  if (!tensor.defined()) throw Error(file, std::string(method) + ": " + what + " is an undefined tensor");
  if (!shape_matches(tensor, expected))
    throw Error(file, std::string(method) + ": " + what + " has shape " + shape_string(tensor.sizes()) + ", expected " +
                          expected_string(expected));
  if (!tensor.is_floating_point())
    throw Error(file, std::string(method) + ": " + what + " has dtype " +
                          std::string(c10::toString(tensor.scalar_type())) + ", expected a floating-point tensor");
}

// Runs `name` on the probe batch of two, checking the output's shape; when that fails but the
// first sample alone passes, the module was traced with a fixed batch size (of one), and the
// error says so.
torch::Tensor call_probe(const torch::jit::Module& module, const fs::path& file, const char* name,
                         std::vector<c10::IValue> inputs, const std::vector<int64_t>& expected) {
  try {
    torch::Tensor out = call_tensor(module, file, name, inputs);
    check_output(file, name, out, expected);
    return out;
  } catch (const Error& error) {
    std::vector<c10::IValue> first;
    for (const auto& input : inputs) first.push_back(input.isTensor() ? input.toTensor().slice(0, 0, 1) : input);
    std::vector<int64_t> expected_first = expected;
    expected_first[0] = 1;
    try {
      torch::Tensor alone = call_tensor(module, file, name, first);
      check_output(file, name, alone, expected_first);
    } catch (const Error&) {
      throw error;
    }
    throw Error(file, fmt::format("{} works at batch size 1 but not at batch size 2 (traced with a fixed batch "
                                  "size?): {}",
                                  name, problem_of(error)));
  }
}

// Runs `name` on the first sample of the probe alone, after it ran on both: a module traced with
// a fixed batch size (of two) fails, or returns another shape, here.
torch::Tensor call_alone(const torch::jit::Module& module, const fs::path& file, const char* name,
                         std::vector<c10::IValue> inputs, const std::vector<int64_t>& expected) {
  for (auto& input : inputs)
    if (input.isTensor()) input = input.toTensor().slice(0, 0, 1);
  torch::Tensor out;
  try {
    out = call_tensor(module, file, name, inputs);
  } catch (const Error& error) {
    throw Error(file, fmt::format("{} works at batch size 2 but fails at batch size 1 (traced with a fixed batch "
                                  "size?): {}",
                                  name, problem_of(error)));
  }
  if (!shape_matches(out, expected))
    throw Error(file, fmt::format("{} returned shape {} at batch size 1, expected {} (traced with a fixed batch "
                                  "size?)",
                                  name, shape_string(out.sizes()), expected_string(expected)));
  return out;
}

constexpr double kOptimisedTolerance = 1e-4;

const char* const kAtBatchSizes1And2 =
    "at batch sizes 2 and 1 (traced with a fixed batch size, or mixing the samples of a batch?)";

// max |other - reference| / max(1, max |reference|), for tensors of the same shape.
double relative_difference(const torch::Tensor& reference, const torch::Tensor& other) {
  const double scale = std::max(1.0, reference.abs().max().item<double>());
  return (other - reference).abs().max().item<double>() / scale;
}

// Two outputs for the same inputs (`how` they were made differs) must be equal, up to the
// rounding of batch-dependent kernels.
void require_same_results(const fs::path& file, const char* name, const torch::Tensor& reference,
                          const torch::Tensor& other, const char* how = kAtBatchSizes1And2) {
  if (reference.sizes() != other.sizes())
    throw Error(file, fmt::format("{} gives outputs of other shapes for the same inputs {}: {} and {}", name, how,
                                  shape_string(reference.sizes()), shape_string(other.sizes())));
  // Non-finite outputs are reported by the stages that use them, with the samples named.
  if (!torch::isfinite(reference).all().item<bool>() || !torch::isfinite(other).all().item<bool>()) return;
  const double difference = relative_difference(reference, other);
  if (!(difference <= 1e-3))
    throw Error(file, fmt::format("{} gives other results for the same inputs {}: max difference {:.3g} (relative)",
                                  name, how, difference));
}

// A frozen, inference-optimised copy of `module` (torch.jit.freeze, then optimize_for_inference:
// attributes become constants, batch norms fold into convolutions, oneDNN kernels) holding
// `methods`, for calls without gradients; null when freezing fails. The caller checks that it
// gives the module's results.
std::shared_ptr<torch::jit::Module> inference_copy(const torch::jit::Module& module,
                                                   const std::vector<std::string>& methods) {
  try {
    torch::jit::Module frozen = torch::jit::freeze(module, methods, true);
    std::vector<std::string> present;
    for (const auto& name : methods)
      if (frozen.find_method(name)) present.push_back(name);
    return std::make_shared<torch::jit::Module>(torch::jit::optimize_for_inference(frozen, present));
  } catch (const std::exception&) {
    return nullptr;
  }
}

// Whether `optimised` gives `reference` within the stated tolerance: 1e-4 of the output's scale.
bool same_within_tolerance(const torch::Tensor& reference, const torch::Tensor& optimised) {
  return reference.sizes() == optimised.sizes() && relative_difference(reference, optimised) <= kOptimisedTolerance;
}

std::string default_class_name(const std::vector<std::string>& names, int64_t k) {
  if (k >= 0 && k < static_cast<int64_t>(names.size())) return names[static_cast<size_t>(k)];
  return "class " + std::to_string(k);
}

// Switches autograd off unless the input asks for gradients (then the mode stays as it is).
struct GradScope {
  explicit GradScope(const torch::Tensor& input)
      : mode(input.defined() && input.requires_grad() && c10::GradMode::is_enabled()) {}
  c10::AutoGradMode mode;
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Classifier

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
  const std::string size_source = module.hasattr("input_size") ? "the attribute 'input_size'"
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
    throw Error(file, "attribute 'planted_factors' has " + std::to_string(planted.size()) + " entries but features returns " +
                          std::to_string(model.feature_dim_) + " units");
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

// ---------------------------------------------------------------------------------------------
// Generator

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
  const torch::Tensor image1 =
      call_alone(module, file, "synthesis", {w}, {1, 3, model.resolution_, model.resolution_});
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
    warnings_.push_back(fmt::format("{}: synthesis returned pixel values in [{:.3g}, {:.3g}] on the probe: is the "
                                    "generator's output in [0, 1]? The contract wants [-1, 1]",
                                    file_.string(), low, high));
  else if (high > 1.5 || low < -1.5)
    warnings_.push_back(fmt::format("{}: synthesis returned pixel values in [{:.3g}, {:.3g}] on the probe, beyond "
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
        throw Error(file_, std::string(method) + " returned a list holding " + element.tagKind() + ", expected tensors");
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

// ---------------------------------------------------------------------------------------------

torch::Tensor generator_to_classifier_range(const torch::Tensor& images) {
  return ((images + 1.0) / 2.0).clamp(0.0, 1.0);
}

std::string file_fingerprint(const fs::path& file) {
  std::error_code error;
  if (!fs::exists(file, error)) throw Error(file, "file not found");
  if (fs::is_directory(file, error)) throw Error(file, "is a folder, expected a file");
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error(file, "cannot open for reading");
  uint64_t hash = 0xcbf29ce484222325ULL;
  uint64_t size = 0;
  std::vector<char> buffer(1 << 16);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const std::streamsize got = in.gcount();
    hash = fnv1a64(buffer.data(), static_cast<size_t>(got), hash);
    size += static_cast<uint64_t>(got);
  }
  if (in.bad()) throw Error(file, "read failed");
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(hash));
  return std::to_string(size) + "-" + hex;
}

}  // namespace linkstyle
