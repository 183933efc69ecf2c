// A sweep's verdicts, recomputed from its rows (cheap; every run does it): each unit's
// expressibility (the cycle thresholds), the selectivity of every concept against the null
// directions of the unit's norm bin (selectivity.hpp), and its label.
#pragma once

#include <cstdint>
#include <vector>

#include "linkstyle/results_database.hpp"
#include "linkstyle/selectivity.hpp"
#include "linkstyle/study.hpp"

namespace linkstyle {

struct VerdictCounts {
  int64_t expressible = 0, labelled = 0;
};

// REQUIRES bins.unit_bin has one entry per unit (-1: the unit never varies and is not tested).
// ENSURES the selectivity table and the units' verdict columns are replaced in one transaction.
// `side` is the side of the measured images. Each label gets its evidence and confidence
// (label_confidence.hpp).
VerdictCounts write_unit_verdicts(ResultsDatabase& results, const SweepSettings& settings,
                                  const std::vector<int64_t>& units, const NormBins& bins, int64_t num_parts,
                                  int64_t side);

}  // namespace linkstyle
