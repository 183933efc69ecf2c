// The null of the selectivity test (docs/sweeps.md): random directions in r-space, uniform on
// the positive orthant of the unit sphere, scaled to the median activation range of each norm
// bin of units; each is swept from every tuning sample r0 to r0 + n u (both ends only).
#pragma once

#include <cstdint>
#include <vector>

#include <torch/types.h>

#include "linkstyle/image_pipeline.hpp"
#include "linkstyle/results_database.hpp"
#include "linkstyle/selectivity.hpp"
#include "linkstyle/tuning_set.hpp"

namespace linkstyle {

// Unit direction `direction` of dimension `dim` for a sweep seed: the same on every machine.
torch::Tensor null_direction(uint64_t seed, int64_t direction, int64_t dim);

// Norm bins of `units` by their range over the tuning samples; units that never vary get bin -1
// and stay out of the bins' medians.
NormBins sweep_norm_bins(const TuningSet& tuning, const std::vector<int64_t>& units, int64_t bins);

// The directions of a chunk: direction d lies in bin d / per_bin.
struct NullChunk {
  std::vector<int64_t> directions;
  const NormBins& bins;
  int64_t per_bin = 0;
  uint64_t seed = 0;
};

// Latents of the chunk's directions, both ends only, ordered (direction, sample, end).
torch::Tensor null_sweep_latents(const LinkingNetwork& network, const TuningSet& tuning, const NullChunk& chunk);

// The chunk's rows from its measured images.
NullChunkRows null_chunk_rows(const NullChunk& chunk, const MeasuredImages& measured, int64_t samples,
                              int64_t num_parts);

}  // namespace linkstyle
