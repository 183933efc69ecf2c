// A tiny study with pairs, a fitted linking network and small sweep settings, shared by the tests
// of the sweep's components (tuning set, image pipeline, run_sweep).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

#include "linkstyle/linking.hpp"
#include "linkstyle/models.hpp"
#include "linkstyle/study.hpp"
#include "linkstyle/sweep.hpp"

namespace linkstyle::testing {

struct SweepStudy {
  StudyConfig config;
  Classifier classifier;
  Generator generator;
  LinkingNetwork network;
  // Runs the sweep; with stop_after_chunks >= 0, stops (Cancelled) after that many chunks.
  SweepSummary run(int64_t stop_after_chunks = -1, Overlap overlap = Overlap::automatic) const;
};

// Tiny models, 3 classes, 6 units swept in chunks of 2, 2 tuning samples per class, 3 steps.
SweepStudy make_sweep_study(const std::filesystem::path& folder);

// Every table of a results database as CSV text, for comparing two runs.
std::map<std::string, std::string> table_contents(const std::filesystem::path& database,
                                                  const std::filesystem::path& scratch);

}  // namespace linkstyle::testing
