#include "sweep/null_directions.hpp"

#include <torch/torch.h>

#include "linkstyle/concept_changes.hpp"
#include "splitmix.hpp"

namespace linkstyle {

torch::Tensor null_direction(uint64_t seed, int64_t direction, int64_t dim) {
  auto generator = at::detail::createCPUGenerator(splitmix64(splitmix64(seed ^ 0x6e756c6cULL) ^ uint64_t(direction)));
  // The positive orthant: like a unit sweep, which raises one activation from its minimum, a
  // null sweep raises a random mix of activations (r >= 0 after the ReLU).
  auto u = torch::randn({dim}, generator, torch::kFloat).abs();
  return u / u.norm();
}

NormBins sweep_norm_bins(const TuningSet& tuning, const std::vector<int64_t>& units, int64_t bins) {
  std::vector<double> live_ranges;
  std::vector<int64_t> live_index(units.size(), -1);
  for (size_t i = 0; i < units.size(); ++i) {
    const double range = (tuning.range_max[units[i]] - tuning.range_min[units[i]]).item<double>();
    if (range > 0) live_index[i] = int64_t(live_ranges.size()), live_ranges.push_back(range);
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
  for (int64_t d : chunk.directions) {
    const double norm = chunk.bins.norm[d / chunk.per_bin];
    const auto step = null_direction(chunk.seed, d, D) * float(norm);
    rows.push_back(torch::stack({tuning.features, tuning.features + step}, 1).reshape({2 * S, D}));
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
