// train/generator/training_state.hpp (private)
//
// WHAT THIS REPRESENTS
//   What both generator objectives keep between steps: a generator in training beside its weight
//   average (the model that ships), and their checkpoint entries (tensors, Adam states).
// REQUIRES
//   The trained generator and its average have the same parameters in the same order (the
//   average is a clone of the generator, or both were restored from one checkpoint).
// ENSURES
//   collect_parameters makes the trained parameters require gradients and the average's not;
//   update_weight_average changes only the average, without gradients. The optimiser entries are
//   archives of their own under `key`; read_tensor throws c10::Error when `key` is missing.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/script.h>
#include <torch/torch.h>

namespace linkstyle::generator_training {

torch::Tensor read_tensor(torch::serialize::InputArchive& archive, const std::string& key);

void load_optimiser(torch::optim::Adam& optimiser, torch::serialize::InputArchive& archive, const std::string& key);

void save_optimiser(const torch::optim::Adam& optimiser, torch::serialize::OutputArchive& archive,
                    const std::string& key);

// The parameters of a generator in training (made to require gradients) and of its weight
// average (made not to), in the same order.
void collect_parameters(const torch::jit::Module& trained, const torch::jit::Module& average,
                        std::vector<torch::Tensor>& trained_parameters, std::vector<torch::Tensor>& average_parameters);

// One step of the weight average, with a horizon that grows from a few steps to 1 / (1 - max_beta).
void update_weight_average(const std::vector<torch::Tensor>& trained, std::vector<torch::Tensor>& average, int64_t step,
                           double max_beta);

}  // namespace linkstyle::generator_training
