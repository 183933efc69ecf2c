// Classifier and Generator: TorchScript models behind the model contract (see models.hpp).
#include "linkstyle/models.hpp"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <system_error>

#include <ATen/CPUGeneratorImpl.h>
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

std::shared_ptr<torch::jit::Module> load_module(const fs::path& file, const c10::Device& device) {
  std::error_code error;
  if (!fs::exists(file, error)) throw Error(file, "file not found");
  if (fs::is_directory(file, error)) throw Error(file, "is a folder, expected a TorchScript file");
  // libtorch reads a damaged weight without complaint; the archive's checksums catch it.
  try {
    verify_zip_archive(file);
  } catch (const Error& error) {
    const std::string problem = std::string(error.what()).substr(error.subject().size() + 2);
    throw Error(file, "not a TorchScript archive: " + problem);
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

// Optional class_names: List[str]. Empty when absent.
std::vector<std::string> class_names_attribute(const torch::jit::Module& module, const fs::path& file) {
  std::vector<std::string> names;
  if (!module.hasattr("class_names")) return names;
  const c10::IValue value = module.attr("class_names");
  if (value.isNone()) return names;
  if (!value.isList()) throw Error(file, "attribute 'class_names' must be a List[str]");
  for (const c10::IValue& element : value.toListRef()) {
    if (!element.isString()) throw Error(file, "attribute 'class_names' must be a List[str]");
    names.push_back(element.toStringRef());
  }
  return names;
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
  const auto probe =
      torch::zeros({2, 3, input_size, input_size}, torch::TensorOptions().dtype(torch::kFloat).device(device));
  const torch::Tensor r = call_tensor(module, file, "features", {probe});
  check_output(file, "features", r, {2, -1});
  if (r.size(1) <= 0)
    throw Error(file, "features returned shape " + shape_string(r.sizes()) + ", expected [2,D] with D > 0");
  model.feature_dim_ = r.size(1);

  const torch::Tensor logits = call_tensor(module, file, "head", {r});
  check_output(file, "head", logits, {2, -1});
  if (logits.size(1) <= 0)
    throw Error(file, "head returned shape " + shape_string(logits.sizes()) + ", expected [2,K] with K > 0");
  model.num_classes_ = logits.size(1);
  if (!model.class_names_.empty() && static_cast<int64_t>(model.class_names_.size()) != model.num_classes_)
    throw Error(file, "attribute 'class_names' has " + std::to_string(model.class_names_.size()) +
                          " names but head returns " + std::to_string(model.num_classes_) + " classes");
  return model;
}

torch::Tensor Classifier::features(const torch::Tensor& images) const {
  check_input(file_, "features", "images", images, {-1, 3, -1, -1});
  GradScope scope(images);
  const torch::Tensor x = images.to(device_, torch::kFloat);
  const torch::Tensor r = call_tensor(*module_, file_, "features", {x});
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

  torch::NoGradGuard no_grad;
  // A fixed probe batch from a private generator: the global RNG is left alone.
  auto rng = at::detail::createCPUGenerator(20240611);
  const auto z = torch::randn({2, model.z_dim_}, rng, torch::kFloat).to(device);
  const auto c = torch::zeros({2}, torch::TensorOptions().dtype(torch::kLong).device(device));
  const torch::Tensor w = call_tensor(module, file, "mapping", {z, c, 0.7});
  check_output(file, "mapping", w, {2, model.w_dim_});
  const torch::Tensor images = call_tensor(module, file, "synthesis", {w});
  check_output(file, "synthesis", images, {2, 3, model.resolution_, model.resolution_});
  return model;
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
  check_output(file_, "synthesis", images, {w.size(0), 3, resolution_, resolution_});
  // Later steps clamp pixels to [0, 1], which would hide NaN or Inf for good.
  if (!torch::isfinite(images.detach()).all().item<bool>()) throw Error(file_, "synthesis gives NaN or Inf pixels");
  return images;
}

std::vector<torch::Tensor> Generator::synthesis_features(const torch::Tensor& w) const {
  if (!has_synthesis_features_) throw Error(file_, "the generator has no synthesis_features method");
  check_input(file_, "synthesis_features", "w", w, {-1, w_dim_});
  GradScope scope(w);
  const c10::IValue out = call(*module_, file_, "synthesis_features", {w.to(device_, torch::kFloat)});
  if (!out.isTensorList() && !(out.isList() || out.isTuple()))
    throw Error(file_, std::string("synthesis_features returned ") + out.tagKind() + ", expected List[Tensor]");
  std::vector<torch::Tensor> maps;
  if (out.isTensorList()) {
    maps = out.toTensorVector();
  } else {
    const auto elements = out.isTuple() ? out.toTupleRef().elements().vec() : out.toListRef().vec();
    for (const c10::IValue& element : elements) {
      if (!element.isTensor())
        throw Error(file_, "synthesis_features returned a list holding " + std::string(element.tagKind()) +
                               ", expected tensors");
      maps.push_back(element.toTensor());
    }
  }
  for (const torch::Tensor& map : maps)
    if (map.dim() < 1 || map.size(0) != w.size(0))
      throw Error(file_, "synthesis_features returned a map of shape " + shape_string(map.sizes()) +
                             ", expected batch size " + std::to_string(w.size(0)) + " first");
  return maps;
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
