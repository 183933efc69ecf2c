// linkstyle/tiny_models.hpp
//
// WHAT THIS REPRESENTS
//   Small, randomly initialised models that meet the model contract (models.hpp), built in C++
//   with torch::jit::Module::define and saved as TorchScript: for tests and the first demo, where
//   nothing can be downloaded.
//   - Tiny generator: mapping = 2-layer MLP on [z, class embedding] -> w, with a per-class mean
//     w_avg (estimated from samples at build time) for truncation; synthesis = linear map of w to
//     a 4x4 grid of channels, two nearest-upsample + 3x3 conv stages, tanh -> [N,3,R,R]; its
//     feature maps (synthesis_features) and both at once (synthesis_with_features).
//   - Tiny classifier: two 3x3 conv + ReLU stages, global average pool (post-ReLU, so r >= 0) ->
//     r [N,D]; linear head whose weights are set to the class means of r over generated samples
//     (a nearest-class-mean classifier), so that most generated samples are accepted.
// REQUIRES
//   Positive sizes; resolution a multiple of 4.
// ENSURES
//   Deterministic for a spec (same seed -> byte-identical weights). The saved files load through
//   Classifier::load / Generator::load.
#pragma once

#include <cstdint>
#include <filesystem>

namespace linkstyle {

struct TinyModelSpec {
  int64_t z_dim = 16;
  int64_t w_dim = 24;
  int64_t num_classes = 3;
  int64_t resolution = 16;
  int64_t feature_dim = 32;
  uint64_t seed = 0;
};

struct TinyModelPaths {
  std::filesystem::path classifier;
  std::filesystem::path generator;
};

// Writes <folder>/tiny_classifier.pt and <folder>/tiny_generator.pt (atomically).
TinyModelPaths write_tiny_models(const std::filesystem::path& folder, const TinyModelSpec& spec = {});

}  // namespace linkstyle
