// The model contract's checks shared by Classifier and Generator (see models/model_checks.hpp),
// and the fingerprint of a model file.
#include "models/model_checks.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>

#include <fmt/format.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "linkstyle/errors.hpp"
#include "linkstyle/models.hpp"
#include "models/zip_archive.hpp"
#include "splitmix.hpp"

namespace linkstyle {

namespace fs = std::filesystem;

namespace model_checks {

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

// "[2,?]"-style expected shapes: negative entries print as '?'.
std::string expected_string(const std::vector<int64_t>& sizes) {
  std::string out = "[";
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (i) out += ",";
    out += sizes[i] < 0 ? std::string("?") : std::to_string(sizes[i]);
  }
  return out + "]";
}

}  // namespace

std::string shape_string(c10::IntArrayRef sizes) {
  std::string out = "[";
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (i) out += ",";
    out += std::to_string(sizes[i]);
  }
  return out + "]";
}

bool shape_matches(const torch::Tensor& tensor, const std::vector<int64_t>& expected) {
  if (tensor.dim() != static_cast<int64_t>(expected.size())) return false;
  for (size_t i = 0; i < expected.size(); ++i)
    if (expected[i] >= 0 && tensor.size(static_cast<int64_t>(i)) != expected[i]) return false;
  return true;
}

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

void check_generated_images(const fs::path& file, const char* method, const torch::Tensor& images,
                            const std::vector<int64_t>& expected) {
  check_output(file, method, images, expected);
  if (!torch::isfinite(images.detach()).all().item<bool>())
    throw Error(file, std::string(method) + " gives NaN or Inf pixels");
}

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

namespace {

constexpr double kOptimisedTolerance = 1e-4;

// max |other - reference| / max(1, max |reference|), for tensors of the same shape.
double relative_difference(const torch::Tensor& reference, const torch::Tensor& other) {
  const double scale = std::max(1.0, reference.abs().max().item<double>());
  return (other - reference).abs().max().item<double>() / scale;
}

}  // namespace

void require_same_results(const fs::path& file, const char* name, const torch::Tensor& reference,
                          const torch::Tensor& other, const char* how) {
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

bool same_within_tolerance(const torch::Tensor& reference, const torch::Tensor& optimised) {
  return reference.sizes() == optimised.sizes() && relative_difference(reference, optimised) <= kOptimisedTolerance;
}

std::string default_class_name(const std::vector<std::string>& names, int64_t k) {
  if (k >= 0 && k < static_cast<int64_t>(names.size())) return names[static_cast<size_t>(k)];
  return "class " + std::to_string(k);
}

}  // namespace model_checks

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
