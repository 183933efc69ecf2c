// frechet_distance.hpp (private)
//
// WHAT THIS REPRESENTS
//   The Frechet distance between Gaussians fitted to two sets of features: how far generated
//   images (or counterfactuals) lie from real ones in a model's feature space.
// REQUIRES
//   Two feature sets [N, D] with the same D and N >= 2 each, all finite.
// ENSURES
//   A distance in float64, at least 0; other inputs are an Error (below).
#pragma once

#include <torch/types.h>

namespace linkstyle {

// The Frechet distance between Gaussians fitted to the rows of a and b ([N, D], N >= 2 each):
// |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2), in float64, at least 0. Other
// shapes or features that are not finite are an Error("frechet_distance", ...).
double frechet_distance(const torch::Tensor& a, const torch::Tensor& b);

}  // namespace linkstyle
