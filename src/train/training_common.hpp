// Helpers shared by the trainers in src/train/ (internal to the library): git revision and
// command line for model cards, module (de)serialisation for checkpoints, the CSV log's
// truncation on resume, the cosine learning-rate schedule and atomic model export.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include <torch/script.h>
#include <torch/types.h>

namespace linkstyle::training {

// 40-hex HEAD of the git repository around the working folder, or "unknown".
std::string git_revision();

// `file` with `suffix` appended to its full name ("m.pt" + ".json" -> "m.pt.json").
std::filesystem::path with_suffix(const std::filesystem::path& file, const std::string& suffix);

// The serialised module as a uint8 tensor (for torch::serialize archives), and back.
torch::Tensor module_bytes(const torch::jit::Module& module);
torch::jit::Module module_from_bytes(const torch::Tensor& bytes);

// Rewrites the CSV log atomically keeping `header` and the rows whose first field <= last_step.
void truncate_log(const std::filesystem::path& log, int64_t last_step, const std::string& header);

// Cosine decay from `base` to 0 over `steps`; step is 1-based:
// base * 0.5 * (1 + cos(pi * (step - 1) / steps)).
double cosine_learning_rate(double base, int64_t step, int64_t steps);

// Saves the module to `file` through an AtomicFile; a c10::Error becomes linkstyle::Error(file).
void save_module_atomically(const torch::jit::Module& module, const std::filesystem::path& file);

// This process's command line (/proc/self/cmdline, arguments joined by spaces; empty when
// unavailable).
std::string own_command_line();

}  // namespace linkstyle::training
