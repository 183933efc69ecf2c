#include "sweep/null_directions.hpp"

#include <algorithm>
#include <cmath>

#include <torch/torch.h>

#include "linkstyle/concept_changes.hpp"
#include "splitmix.hpp"

namespace linkstyle {

torch::Tensor null_direction(uint64_t seed, int64_t direction, int64_t dim) {
  auto generator = at::detail::createCPUGenerator(splitmix64(splitmix64(seed ^ 0x6e756c6cULL) ^ uint64_t(direction)));
  // A unit sweep moves along one axis e_i: its share along the all-ones diagonal is 1 / sqrt(D),
  // and that shared part is what every unit's sweep has in common. A null direction keeps
  // exactly that share (ones / D) and spreads the rest at random orthogonally to the diagonal,
  // so a unit is compared with what any unit would do, not with all units raised at once.
  const double d = double(dim);
  auto g = torch::randn({dim}, generator, torch::kDouble);
  g -= g.mean();
  const auto orthogonal = g / g.norm().clamp_min(1e-12);
  const auto u = torch::full({dim}, 1.0 / d, torch::kDouble) + std::sqrt(std::max(0.0, 1.0 - 1.0 / d)) * orthogonal;
  return (u / u.norm()).to(torch::kFloat);
}

NormBins sweep_norm_bins(const TuningSet& tuning, const LinkingNetwork& network, const std::vector<int64_t>& units,
                         int64_t bins) {
  const torch::NoGradGuard no_grad;
  // |A d_i| for every unit: the length of w's step per unit of r_i (|A e_i| for the isolated sweep).
  const auto weight = network.weight.to(torch::kCPU, torch::kDouble);
  const auto column_norms = tuning.covariance.defined() && !units.empty()
                                ? tuning.unit_directions(units).matmul(weight.t()).norm(2, {1})
                                : weight.norm(2, {0}).index_select(0, torch::tensor(units, torch::kLong));
  std::vector<double> live_ranges;
  std::vector<int64_t> live_index(units.size(), -1);
  for (size_t i = 0; i < units.size(); ++i) {
    const double range = (tuning.range_max[units[i]] - tuning.range_min[units[i]]).item<double>();
    const double step = range * column_norms[int64_t(i)].item<double>();
    if (step > 0) live_index[i] = int64_t(live_ranges.size()), live_ranges.push_back(step);
  }
  NormBins result = assign_norm_bins(live_ranges, bins);
  std::vector<int64_t> unit_bin(units.size(), -1);
  for (size_t i = 0; i < units.size(); ++i)
    if (live_index[i] >= 0) unit_bin[i] = result.unit_bin[live_index[i]];
  result.unit_bin = unit_bin;
  return result;
}

torch::Tensor null_sweep_latents(const LinkingNetwork& network, const TuningSet& tuning, const NullChunk& chunk) {
  const torch::NoGradGuard no_grad;
  const int64_t S = tuning.size(), D = tuning.features.size(1);
  std::vector<torch::Tensor> rows;
  const auto weight = network.weight.to(torch::kCPU, torch::kDouble);
  // A unit's sweep starts at its minimum, not at the sample: both of its ends are displaced from
  // r0. The null's ends are displaced alike, r0 - t s u and r0 + (1 - t) s u, with t the mean
  // over the varying units of (r0_i - min_i) / (max_i - min_i) for each sample [S, 1]. (Starting
  // at r0 itself made every null change of a measure that is smallest at the sample, such as a
  // round part's eccentricity, one-signed, and a unit's change look selective against it.)
  const auto range = tuning.range_max - tuning.range_min;
  const auto varying = (range > 0).to(tuning.features.dtype());
  const auto position = ((tuning.features - tuning.range_min) / range.clamp_min(1e-12) * varying).sum(1, true) /
                        varying.sum().clamp_min(1);
  for (int64_t d : chunk.directions) {
    // The direction is scaled so that w moves as far as the bin's units move it.
    const double norm = chunk.bins.norm[d / chunk.per_bin];
    // A conditional sweep moves the null as it moves the units: along Sigma_W u.
    const auto u = tuning.covariance.defined() ? tuning.along(null_direction(chunk.seed, d, D)).to(torch::kFloat)
                                                : null_direction(chunk.seed, d, D);
    const double w_length = weight.mv(u.to(torch::kDouble)).norm().item<double>();
    const auto step = (u * float(w_length > 0 ? norm / w_length : 0.0)).to(tuning.features.device());
    rows.push_back(torch::stack({tuning.features - position * step, tuning.features + (1 - position) * step}, 1)
                       .reshape({2 * S, D}));
  }
  return network.apply(torch::cat(rows));
}

NullChunkRows null_chunk_rows(const NullChunk& chunk, const MeasuredImages& measured, int64_t samples,
                              int64_t num_parts) {
  const torch::NoGradGuard no_grad;
  const int64_t directions = int64_t(chunk.directions.size());
  const auto changes =
      group_changes({measured.parts, measured.images, measured.labels}, directions, samples, 2, num_parts);
  NullChunkRows rows;
  rows.directions = chunk.directions;
  for (int64_t d : chunk.directions) {
    rows.bins.push_back(d / chunk.per_bin);
    rows.norms.push_back(chunk.bins.norm[d / chunk.per_bin]);
  }
  rows.change_mean = changes.mean;
  rows.change_count = changes.count;
  return rows;
}

}  // namespace linkstyle
