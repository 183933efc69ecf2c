// train/generator/network.hpp (private)
//
// WHAT THIS REPRESENTS
//   The style generator's sizes and the operations on its TorchScript module that training and
//   evaluation share (the module itself: build_style_generator, generator_training.hpp).
// REQUIRES
//   A generator is a module that build_style_generator made (or its weight average); the factor
//   renders need a StyleLatent::kShapesFactors one.
// ENSURES
//   set_w_avg and renders_of_latents draw their own numbers (nothing from torch's global
//   generator) and compute without gradients.
#pragma once

#include <cstdint>
#include <string>

#include <torch/types.h>

namespace torch::jit {
struct Module;
}

namespace linkstyle {
class ShapesWorld;
}

namespace linkstyle::generator_training {

constexpr int64_t kZDim = 64;
constexpr int64_t kShapesFactorCount = 17;  // ShapesWorld::factor_names().size(), checked where used
constexpr int64_t kWDim = 128;
constexpr int64_t kResolution = 32;

// `value` as a TorchScript float literal ("%.9g", with ".0" when that has no point or exponent).
std::string number(double value);

// Per-class w mean over 4096 latents per class (seeded by `seed`), stored in the generator's
// w_avg buffer.
void set_w_avg(torch::jit::Module& generator, int64_t classes, uint64_t seed);

// The renders of the factors that a StyleLatent::kShapesFactors generator reads off z [N, 17]
// for classes `labels` [N] (int64, CPU): images [N, 3, R, R] in [0, 1].
torch::Tensor renders_of_latents(torch::jit::Module& generator, const ShapesWorld& world, const torch::Tensor& z,
                                 const torch::Tensor& labels);

}  // namespace linkstyle::generator_training
