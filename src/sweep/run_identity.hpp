// A sweep's identity: everything that changes its rows (not the thresholds, which only change the
// final verdicts, nor the strips). A resumed sweep must have the identity stored in its database.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "linkstyle/linking.hpp"
#include "linkstyle/part_sources.hpp"
#include "linkstyle/study.hpp"
#include "linkstyle/tuning_set.hpp"

namespace linkstyle {

// FNV-1a of a tensor's float32 bytes, as 16 hex digits: tells whether inputs are the same.
std::string tensor_fingerprint(const torch::Tensor& tensor);

// The models by their files' fingerprints; the linking network by its tensors, as passed in.
nlohmann::json sweep_run_identity(const StudyConfig& study, const LinkingNetwork& network,
                                  const std::vector<int64_t>& units, const PartSource& parts, const TuningSet& tuning);

}  // namespace linkstyle
