// Strip PNGs of unit sweeps (sweeps/strips/unit-UUUUU-sample-SSS.png): one row of the sweep's
// images, step by step, for the top strip_units units by cycle correlation and any asked for,
// over strip_samples tuning samples spread across the classes.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include "linkstyle/linking.hpp"
#include "linkstyle/models.hpp"
#include "linkstyle/results_database.hpp"
#include "linkstyle/study.hpp"
#include "linkstyle/tuning_set.hpp"

namespace linkstyle {

std::vector<std::filesystem::path> write_sweep_strips(const StudyConfig& study, const Generator& generator,
                                                      const LinkingNetwork& network, const TuningSet& tuning,
                                                      ResultsDatabase& results, std::vector<int64_t> units);

}  // namespace linkstyle
