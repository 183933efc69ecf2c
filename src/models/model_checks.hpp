// models/model_checks.hpp (private)
//
// WHAT THIS REPRESENTS
//   What Classifier and Generator share to hold a TorchScript module to the model contract
//   (docs/model-contract.md): loading the archive, reading its attributes, calling its methods,
//   checking their inputs and outputs, and the load-time probes at batch sizes 2 and 1.
// REQUIRES
//   `file` names the model's TorchScript file (it is what every message names).
// ENSURES
//   Every problem is a one-line linkstyle::Error(file, problem) naming the method or attribute;
//   torch's own multi-line messages are cut to their useful line.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <torch/script.h>

#include "linkstyle/errors.hpp"

namespace linkstyle::model_checks {

std::string shape_string(c10::IntArrayRef sizes);
bool shape_matches(const torch::Tensor& tensor, const std::vector<int64_t>& expected);

// The problem part of an Error's message (what follows "<file>: ").
std::string problem_of(const Error& error);

// The module in `file`, on `device`, in eval mode, once the archive passed its integrity check.
std::shared_ptr<torch::jit::Module> load_module(const std::filesystem::path& file, const c10::Device& device);
void require_method(const torch::jit::Module& module, const std::filesystem::path& file, const char* name,
                    const char* role);
int64_t positive_int_attribute(const torch::jit::Module& module, const std::filesystem::path& file, const char* name);
// An optional List[str] attribute (class_names, planted_factors). Empty when absent.
std::vector<std::string> string_list_attribute(const torch::jit::Module& module, const std::filesystem::path& file,
                                               const std::string& name);
std::vector<std::string> class_names_attribute(const torch::jit::Module& module, const std::filesystem::path& file);

// Runs one method, turning torch failures into an Error naming the file and the method.
c10::IValue call(const torch::jit::Module& module, const std::filesystem::path& file, const char* name,
                 std::vector<c10::IValue> inputs);
torch::Tensor call_tensor(const torch::jit::Module& module, const std::filesystem::path& file, const char* name,
                          std::vector<c10::IValue> inputs);
void check_output(const std::filesystem::path& file, const char* name, const torch::Tensor& out,
                  const std::vector<int64_t>& expected);
// A generator's images: their shape and dtype, and finite pixels (later steps clamp pixels to
// [0, 1], which would hide NaN or Inf for good).
void check_generated_images(const std::filesystem::path& file, const char* method, const torch::Tensor& images,
                            const std::vector<int64_t>& expected);
// Checks an input tensor's rank, sizes (negative = any) and floating dtype.
void check_input(const std::filesystem::path& file, const char* method, const char* what, const torch::Tensor& tensor,
                 const std::vector<int64_t>& expected);

// Runs `name` on the probe batch of two, checking the output's shape; when that fails but the
// first sample alone passes, the module was traced with a fixed batch size (of one), and the
// error says so.
torch::Tensor call_probe(const torch::jit::Module& module, const std::filesystem::path& file, const char* name,
                         std::vector<c10::IValue> inputs, const std::vector<int64_t>& expected);
// Runs `name` on the first sample of the probe alone, after it ran on both: a module traced with
// a fixed batch size (of two) fails, or returns another shape, here.
torch::Tensor call_alone(const torch::jit::Module& module, const std::filesystem::path& file, const char* name,
                         std::vector<c10::IValue> inputs, const std::vector<int64_t>& expected);

const char* const kAtBatchSizes1And2 =
    "at batch sizes 2 and 1 (traced with a fixed batch size, or mixing the samples of a batch?)";

// Two outputs for the same inputs (`how` they were made differs) must be equal, up to the
// rounding of batch-dependent kernels.
void require_same_results(const std::filesystem::path& file, const char* name, const torch::Tensor& reference,
                          const torch::Tensor& other, const char* how = kAtBatchSizes1And2);

// A frozen, inference-optimised copy of `module` (torch.jit.freeze, then optimize_for_inference:
// attributes become constants, batch norms fold into convolutions, oneDNN kernels) holding
// `methods`, for calls without gradients; null when freezing fails. The caller checks that it
// gives the module's results.
std::shared_ptr<torch::jit::Module> inference_copy(const torch::jit::Module& module,
                                                   const std::vector<std::string>& methods);
// Whether `optimised` gives `reference` within the stated tolerance: 1e-4 of the output's scale.
bool same_within_tolerance(const torch::Tensor& reference, const torch::Tensor& optimised);

std::string default_class_name(const std::vector<std::string>& names, int64_t k);

// Switches autograd off unless the input asks for gradients (then the mode stays as it is).
struct GradScope {
  explicit GradScope(const torch::Tensor& input)
      : mode(input.defined() && input.requires_grad() && c10::GradMode::is_enabled()) {}
  c10::AutoGradMode mode;
};

}  // namespace linkstyle::model_checks
