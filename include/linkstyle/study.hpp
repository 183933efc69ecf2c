// linkstyle/study.hpp
//
// WHAT THIS REPRESENTS
//   A study: a folder holding study.toml (which models, which classes, seeds and sizes) and
//   everything the stages write (pairs/, linking/, reconstructions/). See docs/study.md.
// REQUIRES
//   study.toml uses only the documented tables and keys, with the documented types.
// ENSURES
//   load_study() rejects unknown keys, wrong types and out-of-range values with a one-line
//   linkstyle::Error naming study.toml and the key. Model paths are resolved relative to the
//   study folder. write_study() writes a complete, commented study.toml atomically.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace linkstyle {

struct PairsSettings {
  std::vector<int64_t> classes;             // generator class indices (empty: all)
  std::vector<int64_t> classifier_classes;  // the classifier's index of each (empty: the same)
  int64_t samples_per_class = 5000;
  double psi = 0.7;
  uint64_t seed = 0;
  int64_t batch_size = 32;
  int64_t shard_size = 4096;
  double holdout_fraction = 0.1;
  int64_t max_draws_per_class = 0;  // 0: 50 x samples_per_class
};

struct FitSettings {
  std::string method = "ols";  // "ols" or "ridge"
  double penalty = -1.0;       // ridge: < 0 selects by generalised cross-validation
  double rcond = 1e-6;
};

struct StudyConfig {
  std::filesystem::path folder;
  std::filesystem::path classifier;  // resolved (absolute or relative to cwd)
  std::filesystem::path generator;
  PairsSettings pairs;
  FitSettings fit;

  std::filesystem::path config_file() const { return folder / "study.toml"; }
  std::filesystem::path pairs_folder() const { return folder / "pairs"; }
  std::filesystem::path linking_file() const { return folder / "linking" / "linking.safetensors"; }
  std::filesystem::path fit_report_file() const { return folder / "linking" / "fit.json"; }
  std::filesystem::path reconstructions_folder() const { return folder / "reconstructions"; }
};

StudyConfig load_study(const std::filesystem::path& folder);
void write_study(const StudyConfig& config);

}  // namespace linkstyle
