// linkstyle/selectivity.hpp
//
// WHAT THIS REPRESENTS
//   The statistics that turn a unit's concept profile (the mean change of every part x measure
//   over its sweeps) into a selectivity verdict, against a null of random directions in r-space
//   with the same share along the all-ones diagonal as a single unit's direction, whose step in
//   w is as long as the unit's (docs/sweeps.md):
//   - units are grouped into norm bins by quantiles of a norm (the sweeps use the length of the
//     unit's step in w); each bin's null directions have the bin's median norm;
//   - z = (profile - null mean) / null standard deviation, per concept, against the unit's bin;
//   - p from the null's own tail, not a normal one (eccentricity or entropy changes are far
//     heavier-tailed than normal): the null's |z| values of every bin and of every concept of
//     the same tail group (the sweeps group concepts by measure) are pooled; below their 90th
//     percentile t, p = (1 + #null |z| >= |z|) / (n + 1); beyond it a generalised Pareto tail
//     fitted to the exceedances y = |z| - t (peaks over threshold, method of moments, shape
//     xi >= 0): p = (share above t) (1 + xi y / beta)^(-1 / xi), exp(-y / beta) at xi = 0;
//     with fewer than 20 pooled values, the normal tail;
//   - the empirical p = (1 + #|null - mean| >= |x - mean|) / (n + 1) against the concept's own
//     null values; q = the Benjamini-Hochberg adjusted p over every test of every unit; a
//     concept is significant when q is under alpha (the false discovery rate over all units x
//     concepts) and the change lies beyond every null direction's (the empirical p is at its
//     floor 1 / (n + 1));
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
  torch::Tensor p;             // [U, C]: from the null's tail (above)
  torch::Tensor p_empirical;   // [U, C]
  torch::Tensor q;             // [U, C]: Benjamini-Hochberg over all tests
  torch::Tensor significant;   // [U, C] bool
  std::vector<int64_t> label;  // per unit: concept index, -1 when none is significant
};

// Benjamini-Hochberg adjusted p-values of the finite entries of `p_values` (any shape; NaN stays
// NaN): q_(k) = min over j >= k of p_(j) m / j, for the m finite p sorted ascending.
torch::Tensor benjamini_hochberg(const torch::Tensor& p_values);

// tail_groups: per concept, the group whose null values pool into one tail (empty: each concept
// its own).
Selectivity score_selectivity(const torch::Tensor& profile, const std::vector<int64_t>& unit_bins,
                              const torch::Tensor& null_values, double alpha,
                              const std::vector<int64_t>& tail_groups = {});

}  // namespace linkstyle
