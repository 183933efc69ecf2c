// The statistics of a chunk of unit sweeps (docs/sweeps.md), from its measured images: the cycle
// (how far the re-encoded r'_u follows the set value: gain and correlation within samples), its
// specificity (own change over the mean change of the other units), the classifier's response
// (class logit change, flip rate) and the concept changes of its parts.
#pragma once

#include <cstdint>
#include <vector>

#include "linkstyle/image_pipeline.hpp"
#include "linkstyle/results_database.hpp"
#include "linkstyle/tuning_set.hpp"

namespace linkstyle {

// REQUIRES measured holds the chunk's images, ordered (unit, sample, step), with images kept.
// ENSURES rows.parts points into `measured`, which must outlive the rows.
UnitChunkRows unit_chunk_rows(const TuningSet& tuning, const std::vector<int64_t>& units, int64_t steps,
                              const MeasuredImages& measured, int64_t num_parts);

}  // namespace linkstyle
