// linkstyle/probe.hpp
//
// WHAT THIS REPRESENTS
//   `linkstyle probe`: a study's sweep checked against the shapes world's ground truth
//   (ground_truth.hpp): the dataset probe of every unit on rendered images, the agreement of the
//   sweep labels with it against chance, and the chain link by link (measurement, generator,
//   sweep, end to end) with Bonferroni-corrected p-values over the factors.
// REQUIRES
//   A study of the shapes world (its classifier's classes, models.segmenter set) whose sweep is
//   complete with the shapes world's parts; images >= 12; top >= 0.
// ENSURES
//   Writes the probe table of the results database and sweeps/ground_truth.json (atomically),
//   and returns the report; errors name the setting, the database or study.toml.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "linkstyle/models.hpp"
#include "linkstyle/study.hpp"

namespace linkstyle {

struct ProbeSettings {
  int64_t images = 6000;  // rendered (and generated) images for the probes
  uint64_t seed = 7;      // their seed; the replicates use seed + 1
  int64_t top = 0;        // score only the top N expressible units by cycle correlation (0: all)
};

struct ProbeReport {
  nlohmann::json report;  // as written to ground_truth.json
  std::filesystem::path file;
  std::string summary_line() const;  // the agreement and the chain as text
};

ProbeReport run_probe(const StudyConfig& study, const Classifier& classifier, const Generator& generator,
                      const ProbeSettings& settings);

}  // namespace linkstyle
