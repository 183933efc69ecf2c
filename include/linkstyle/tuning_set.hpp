// linkstyle/tuning_set.hpp
//
// WHAT THIS REPRESENTS
//   The tuning samples a sweep starts from (method step 3): samples_per_class generated images per
//   class (latents from the sweep seed, truncated with the study's psi, not filtered), their
//   features r0 and linked latents L(r0), and the latents of unit sweeps: r_i set to `steps`
//   values from the unit's minimum to its maximum over the tuning samples. The paper's sweep is
//   isolated (r_i alone moves); a conditional sweep (sweep.direction) moves r along the unit's
//   column of the pooled within-class covariance of the pairs' features, Sigma_W[:, i] /
//   Sigma_W[i, i]: r_i takes the same values, and the other units follow as they do with r_i
//   within a class (what an encoding label measures).
// REQUIRES
//   A study whose classes exist in both models; a linking network for the classifier's features.
// ENSURES
//   Deterministic for a seed, batch size and thread count. Latents of unit u, sample s, step t are
//   L(r0_s) + A d_u (v_t - r0_s,u), d_u = e_u (isolated) or Sigma_W[:, u] / Sigma_W[u, u]
//   (conditional). Errors name the study, linking or pairs file.
#pragma once

#include <cstdint>
#include <map>
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
  // Conditional sweeps: Sigma_W [D, D] float64; undefined for the isolated sweep (the identity).
  torch::Tensor covariance;
  int64_t size() const { return features.size(0); }
  // The direction r moves along per unit of r_i, for each of `units`: [U, D] float64 (e_u, or
  // Sigma_W[:, u] / Sigma_W[u, u]; e_u where Sigma_W[u, u] is 0).
  torch::Tensor unit_directions(const std::vector<int64_t>& units) const;
  // A direction of r-space [D] as the sweep moves it: u itself (isolated) or Sigma_W u.
  torch::Tensor along(const torch::Tensor& direction) const;
};

// The pooled within-class covariance of a study's pairs' features (classes as labelled in the
// pairs): [D, D] float64. Error naming the pairs' manifest when they are incomplete or too few.
torch::Tensor within_class_feature_covariance(const StudyConfig& study);
// The same covariance with each class's mean feature ([D] float64, by generator class).
struct WithinClassStatistics {
  torch::Tensor covariance;
  std::map<int64_t, torch::Tensor> means;
  std::map<int64_t, int64_t> counts;
};
WithinClassStatistics within_class_feature_statistics(const StudyConfig& study);

TuningSet make_tuning_set(const StudyConfig& study, const Classifier& classifier, const Generator& generator,
                          const LinkingNetwork& network);

// The values each unit of `units` takes: [U, steps] float32, linspace(min_u, max_u, steps).
torch::Tensor unit_sweep_values(const TuningSet& tuning, const std::vector<int64_t>& units, int64_t steps);

// Latents of the sweeps of `units` over every tuning sample and step: [U*S*T, w_dim], ordered
// (unit, sample, step). REQUIRES units in [0, D).
torch::Tensor unit_sweep_latents(const LinkingNetwork& network, const TuningSet& tuning,
                                 const std::vector<int64_t>& units, int64_t steps);

}  // namespace linkstyle
