// linkstyle/tuning_set.hpp
//
// WHAT THIS REPRESENTS
//   The tuning samples a sweep starts from (method step 3): samples_per_class generated images per
//   class (latents from the sweep seed, truncated with the study's psi, not filtered), their
//   features r0 and linked latents L(r0), and the latents of unit sweeps: r_i set to `steps`
//   values from the unit's minimum to its maximum over the tuning samples.
// REQUIRES
//   A study whose classes exist in both models; a linking network for the classifier's features.
// ENSURES
//   Deterministic for a seed, batch size and thread count. Latents of unit u, sample s, step t are
//   L(r0_s) + A[:, u] (v_t - r0_s,u). Errors name the study or linking file.
#pragma once

#include <cstdint>
#include <vector>

#include <torch/types.h>

#include "linkstyle/linking.hpp"
#include "linkstyle/models.hpp"
#include "linkstyle/study.hpp"

namespace linkstyle {

struct TuningSet {
  torch::Tensor features;              // r0 [S, D] float32
  torch::Tensor latents;               // L(r0) [S, w_dim] float32
  torch::Tensor generator_classes;     // [S] int64
  torch::Tensor classifier_classes;    // [S] int64
  torch::Tensor range_min, range_max;  // [D] float32: each unit's range over the samples
  int64_t size() const { return features.size(0); }
};

TuningSet make_tuning_set(const StudyConfig& study, const Classifier& classifier, const Generator& generator,
                          const LinkingNetwork& network);

// The values each unit of `units` takes: [U, steps] float32, linspace(min_u, max_u, steps).
torch::Tensor unit_sweep_values(const TuningSet& tuning, const std::vector<int64_t>& units, int64_t steps);

// Latents of the sweeps of `units` over every tuning sample and step: [U*S*T, w_dim], ordered
// (unit, sample, step). REQUIRES units in [0, D).
torch::Tensor unit_sweep_latents(const LinkingNetwork& network, const TuningSet& tuning,
                                 const std::vector<int64_t>& units, int64_t steps);

}  // namespace linkstyle
