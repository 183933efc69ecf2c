// linkstyle/models.hpp
//
// WHAT THIS REPRESENTS
//   The two models the method links, behind one interface each, loaded from TorchScript archives
//   (the project's one model format; see docs/model-contract.md):
//   - Classifier: features(x [N,3,H,W] float in [0,1]) -> r [N,D]  (the module resizes and
//     normalises itself); head(r [N,D]) -> logits [N,K], differentiable.
//   - Generator: mapping(z [N,z_dim] float, c [N] int64, psi float) -> w [N,w_dim], truncated
//     toward the per-class mean; synthesis(w [N,w_dim]) -> images [N,3,R,R] in [-1,1], noise off.
//     Attributes z_dim, w_dim, num_classes, resolution (int); class_names (List[str]) optional;
//     synthesis_features(w) -> List[Tensor] optional (intermediate feature maps);
//     synthesis_with_features(w) -> Tuple[Tensor, List[Tensor]] optional (both in one call).
//   Classifier attributes are optional: class_names (List[str]), input_size (int, the side of the
//   probe image used at load; default 64).
// REQUIRES
//   A readable TorchScript file with the methods above.
// ENSURES
//   load() probes every method at batch sizes 2 and 1 and checks ranks, sizes, that both give the
//   same results for the same inputs (a module traced with a fixed batch size does not), and the
//   generator's pixel range; any problem (missing file, not TorchScript, missing method or
//   attribute, wrong rank, mismatched sizes, a batch-size dependence, pixels far beyond [-1, 1])
//   is a linkstyle::Error naming the file and the problem; doubtful pixel ranges ([0, 1]) are
//   load_warnings(). Calls run without autograd unless the
//   caller enables it (head() stays differentiable for counterfactuals). Outputs are on the
//   model's device.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

#include "linkstyle/planted_units.hpp"

namespace c10 {
struct IValue;
}
namespace torch::jit {
struct Module;
}

namespace linkstyle {

class Classifier {
 public:
  static Classifier load(const std::filesystem::path& file, const c10::Device& device);

  torch::Tensor features(const torch::Tensor& images) const;
  torch::Tensor head(const torch::Tensor& features) const;

  int64_t feature_dim() const { return feature_dim_; }
  int64_t num_classes() const { return num_classes_; }
  const std::vector<std::string>& class_names() const { return class_names_; }
  const std::filesystem::path& file() const { return file_; }
  const c10::Device& device() const { return device_; }
  // Name of class k (class_names when known, else "class <k>").
  std::string class_name(int64_t k) const;
  // Whether features() without gradients runs the inference-optimised copy.
  bool inference_optimised() const { return inference_module_ != nullptr; }
  // Units planted to equal known functions of the shapes world's factors (planted_units.hpp),
  // from the optional attribute planted_factors; empty for every other classifier.
  const std::vector<PlantedUnit>& planted_units() const { return planted_units_; }

 private:
  std::shared_ptr<torch::jit::Module> module_;
  std::shared_ptr<torch::jit::Module> inference_module_;  // frozen + optimised; null: none
  std::filesystem::path file_;
  c10::Device device_{c10::kCPU};
  int64_t feature_dim_ = 0;
  int64_t num_classes_ = 0;
  std::vector<std::string> class_names_;
  std::vector<PlantedUnit> planted_units_;
};

class Generator {
 public:
  static Generator load(const std::filesystem::path& file, const c10::Device& device);

  torch::Tensor mapping(const torch::Tensor& z, const torch::Tensor& classes, double psi) const;
  torch::Tensor synthesis(const torch::Tensor& w) const;
  bool has_synthesis_features() const { return has_synthesis_features_; }
  std::vector<torch::Tensor> synthesis_features(const torch::Tensor& w) const;
  // Images and feature maps of the same w: one call when the module has synthesis_with_features,
  // else synthesis and synthesis_features (two).
  bool has_synthesis_with_features() const { return has_synthesis_with_features_; }
  std::pair<torch::Tensor, std::vector<torch::Tensor>> synthesis_with_features(const torch::Tensor& w) const;
  // What the load check found doubtful but not wrong ("<file>: ..."), e.g. pixels in [0, 1].
  const std::vector<std::string>& load_warnings() const { return warnings_; }

  int64_t z_dim() const { return z_dim_; }
  int64_t w_dim() const { return w_dim_; }
  int64_t num_classes() const { return num_classes_; }
  int64_t resolution() const { return resolution_; }
  const std::vector<std::string>& class_names() const { return class_names_; }
  const std::filesystem::path& file() const { return file_; }
  const c10::Device& device() const { return device_; }
  std::string class_name(int64_t k) const;

 private:
  std::shared_ptr<torch::jit::Module> module_;
  std::filesystem::path file_;
  c10::Device device_{c10::kCPU};
  int64_t z_dim_ = 0, w_dim_ = 0, num_classes_ = 0, resolution_ = 0;
  bool has_synthesis_features_ = false, has_synthesis_with_features_ = false;
  std::vector<std::string> class_names_, warnings_;

  void check_pixel_range(const torch::Tensor& images);
  std::vector<torch::Tensor> feature_maps_of(const c10::IValue& out, const char* method, int64_t batch) const;
};

// Generator images in [-1,1] -> classifier input in [0,1] (clamped).
torch::Tensor generator_to_classifier_range(const torch::Tensor& images);

// A short fingerprint of a model file (size + 64-bit FNV-1a of its bytes, hex), stored with
// pairs and linking networks so that outputs from other models are recognised.
std::string file_fingerprint(const std::filesystem::path& file);

}  // namespace linkstyle
