// linkstyle/selectivity.hpp
//
// WHAT THIS REPRESENTS
//   The statistics that turn a unit's concept profile (the mean change of every part x measure
//   over its sweeps) into a selectivity verdict, against a null of random directions in r-space
//   (positive orthant) with the same norm as the unit's sweep (docs/sweeps.md):
//   - units are grouped into norm bins by quantiles of their activation range (max - min); each
//     bin's null directions have the bin's median range as norm;
//   - z = (profile - null mean) / null standard deviation, per concept, against the unit's bin;
//     p = two-sided normal tail of z, and the empirical p = (1 + #|null - mean| >= |x - mean|) /
//     (n + 1); a concept is significant when the normal p is under alpha / (concepts tested for
//     that unit) (Bonferroni) and the change lies beyond every null direction's (the empirical
//     p is at its floor 1 / (n + 1), a guard against a null that is not normal);
//   - the unit's label is its significant concept with the largest |z| (or none).
// REQUIRES
//   profile [U, C] and null values [B, M, C] float64 with NaN where a concept is undefined;
//   unit_bins [U] in [0, B).
// ENSURES
//   Concepts with fewer than 5 defined null values, or a null deviation of 0, are not tested
//   (z NaN). Pure functions: deterministic, no I/O.
#pragma once

#include <cstdint>
#include <vector>

#include <torch/types.h>

namespace linkstyle {

struct NormBins {
  std::vector<int64_t> unit_bin;  // per unit
  std::vector<double> norm;       // per bin: median range of its units
};
// Quantile bins of `ranges` (>= 0); fewer bins when there are fewer distinct ranges than bins.
NormBins assign_norm_bins(const std::vector<double>& ranges, int64_t bins);

struct Selectivity {
  torch::Tensor z;             // [U, C] float64 (NaN: not tested)
  torch::Tensor p_normal;      // [U, C]
  torch::Tensor p_empirical;   // [U, C]
  torch::Tensor significant;   // [U, C] bool
  std::vector<int64_t> label;  // per unit: concept index, -1 when none is significant
};

Selectivity score_selectivity(const torch::Tensor& profile, const std::vector<int64_t>& unit_bins,
                              const torch::Tensor& null_values, double alpha);

}  // namespace linkstyle
