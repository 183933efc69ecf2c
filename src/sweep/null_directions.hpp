// The null of the selectivity test (docs/sweeps.md): random unit directions u in r-space with the
// same component along the all-ones diagonal as a single unit's axis (cosine 1 / sqrt(D)) and
// the rest drawn at random orthogonally to it. Units are binned by the length of their sweep's
// step in w, range_i |A e_i|; each direction is scaled so that its step in w, s |A u|, has its
// bin's median length, and swept from r0 - t s u to r0 + (1 - t) s u for every tuning sample r0
// (both ends only), t placing r0 within the sweep as it lies within the units' ranges on average.
// A conditional sweep (TuningSet::covariance) moves r along Sigma_W u for the null, and steps
// along |A d_i| for the units' bins, as its units move.
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

// Norm bins of `units` by their step in w, (max - min over the tuning samples) x |A e_i|; units
// whose step is 0 (they never vary, or L ignores them) get bin -1 and stay out of the medians.
NormBins sweep_norm_bins(const TuningSet& tuning, const LinkingNetwork& network, const std::vector<int64_t>& units,
                         int64_t bins);

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
