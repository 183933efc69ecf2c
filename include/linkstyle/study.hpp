// linkstyle/study.hpp
//
// WHAT THIS REPRESENTS
//   A study: a folder holding study.toml (which models, which classes, seeds and sizes) and
//   everything the stages write (pairs/, linking/, reconstructions/, sweeps/). See docs/study.md.
// REQUIRES
//   study.toml uses only the documented tables and keys, with the documented types.
// ENSURES
//   load_study() rejects unknown keys, wrong types and out-of-range values with a one-line
//   linkstyle::Error naming study.toml and the key; check_study_settings() is the one place that
//   knows each setting's range. Model paths are resolved relative to the
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
  std::string filter = "argmax";    // which samples are kept: see PairsFilter
};

// Which generated samples of class c are kept as pairs, judged by the classifier's logits:
//   "argmax"              c is the top-1 class (the paper's choice);
//   "top-k K"             c is among the K highest logits;
//   "min-probability P"   softmax probability of c is at least P (0 < P <= 1);
//   "none"                every sample.
struct PairsFilter {
  enum class Kind { argmax, top_k, min_probability, none };
  Kind kind = Kind::argmax;
  int64_t k = 1;
  double probability = 0.0;

  // Throws SettingError("pairs.filter", ...) for any other text.
  static PairsFilter parse(const std::string& text);
};

struct FitSettings {
  std::string method = "ols";  // "ols" or "ridge"
  double penalty = -1.0;       // ridge: < 0 selects by generalised cross-validation
  double rcond = 1e-6;
};

// Unit sweeps and their measures (docs/sweeps.md).
struct SweepSettings {
  int64_t samples_per_class = 4;  // tuning samples per class (not filtered, as in the paper)
  uint64_t seed = 136;            // their latent seed (the reference's)
  int64_t steps = 5;              // activation values per unit, linspace(min, max, steps)
  // "isolated" (the paper's: r_i alone moves) or "conditional" (r moves along the pooled
  // within-class covariance column of the unit, Sigma_W[:, i] / Sigma_W[i, i], from the pairs).
  std::string direction = "isolated";
  std::vector<int64_t> units;     // units to sweep (empty: all)
  int64_t batch_size = 128;       // images per generator/classifier/segmenter call
  int64_t units_per_chunk = 16;   // units per database transaction (the resume granularity)
  std::string parts = "auto";     // "auto", "segmenter", "kmeans" or "none"
  int64_t kmeans_parts = 8;       // clusters when parts come from the generator's feature maps
  int64_t null_directions = 32;   // random directions per norm bin for the selectivity null
  int64_t null_bins = 4;          // norm bins (quantiles of the units' activation ranges)
  int64_t strip_units = 8;        // strip PNGs for this many top units (by cycle correlation)
  int64_t strip_samples = 2;      // ... and this many tuning samples each
  double min_gain = 0.05;         // expressible: cycle gain at least this,
  double min_correlation = 0.5;   // ... cycle correlation at least this,
  double min_specificity = 1.0;   // ... and the unit moves at least as much as the mean other unit
  double significance = 0.05;     // selectivity: false discovery rate over all units x concepts
};

// Counterfactuals (docs/counterfactuals.md); the defaults are the paper's.
struct CounterfactualSettings {
  // "paper" (gradient descent), "adam", "sparse" (descent + L1 on s) or "realistic" (a margin
  // with a Mahalanobis proximity and realism anchor, docs/counterfactuals.md)
  std::string method = "paper";
  int64_t samples = 16;           // generated samples of the source class
  uint64_t seed = 5000;           // their latent seed (kept only if the classifier assigns them to it)
  std::string start = "uniform";  // initial shift: "uniform" (the paper's s ~ U[0, 1)) or "zero"
  uint64_t shift_seed = 0;        // seed of the uniform initial shift
  double step_size = 0.5;         // gradient step of paper and sparse
  double adam_step_size = 0.01;   // Adam's learning rate
  double source_weight = 0.6;     // loss = -z_B + source_weight z_A - cosine_weight cos(L(r), L(r - s))
  double cosine_weight = 10.0;
  double sparsity_weight = 0.1;   // sparse: + sparsity_weight |s|_1
  int64_t max_steps = 2000;       // give up after this many steps
  int64_t check_interval = 1;     // image-domain check every this many steps (and at max_steps)
  int64_t batch_size = 32;        // samples optimised together (and resume granularity)
  int64_t path_points = 16;       // points of the path r - alpha s, alpha in [0, path_end]
  double path_end = 1.5;
  int64_t top_units = 10;         // relevant units: the top units by |s| of each sample
  // realistic: the stop rule's logit margin z_B - max_{k != B} z_k of the counterfactual image,
  // the weights of the proximity (to r) and realism (to the class-mean translation of r) terms.
  double margin = 2.0;
  double proximity_weight = 1.0;
  double realism_weight = 4.0;
  // Realism of every counterfactual: the mean distance of its image's features to their
  // realism_neighbours nearest class-B pairs, over B's own (leave-one-out) median, from the first
  // realism_references class-B pairs; realistic's stop rule asks for a ratio within B's own
  // realism_quantile.
  int64_t realism_neighbours = 8;
  int64_t realism_references = 512;
  double realism_quantile = 0.95;
};

struct StudyConfig {
  std::filesystem::path folder;
  std::filesystem::path classifier;  // resolved (absolute or relative to cwd)
  std::filesystem::path generator;
  std::filesystem::path segmenter;  // optional: segment(images) -> [N, K, H, W] (empty: none)
  // optional: a second classifier trained apart (same class names), the counterfactuals' judge
  std::filesystem::path judge;
  PairsSettings pairs;
  FitSettings fit;
  SweepSettings sweep;
  CounterfactualSettings counterfactual;

  std::filesystem::path config_file() const { return folder / "study.toml"; }
  std::filesystem::path pairs_folder() const { return folder / "pairs"; }
  std::filesystem::path linking_file() const { return folder / "linking" / "linking.safetensors"; }
  std::filesystem::path fit_report_file() const { return folder / "linking" / "fit.json"; }
  std::filesystem::path reconstructions_folder() const { return folder / "reconstructions"; }
  std::filesystem::path sweeps_folder() const { return folder / "sweeps"; }
  std::filesystem::path results_database() const { return folder / "sweeps" / "results.sqlite"; }
  std::filesystem::path counterfactuals_folder() const { return folder / "counterfactuals"; }
};

StudyConfig load_study(const std::filesystem::path& folder);

// `linkstyle init`: a new study folder with its study.toml, for the given models (or small random
// models built into <folder>/models with `tiny`).
struct NewStudy {
  std::filesystem::path folder, classifier, generator, segmenter, judge;
  bool tiny = false;
  uint64_t tiny_seed = 0;
  bool force = false;  // overwrite an existing study.toml
  PairsSettings pairs;
  int64_t sweep_samples_per_class = SweepSettings().samples_per_class;
};
// ENSURES the models load, the segmenter too when given, every class exists in both models, and
// one generated batch gives finite images, features and logits, before anything is kept; a failed
// call leaves nothing behind (it removes the folder or tiny models it created). Errors name the
// setting ("init.tiny", "init.models", "pairs.classes") or the file. Class names that differ
// between the two models (a mix-up of files?) are reported in `warnings` when given.
StudyConfig create_study(const NewStudy& request, std::vector<std::string>* warnings = nullptr);

// Checks every setting's range (load_study() does it for study.toml's values; call it again after
// changing settings, e.g. from command-line flags). Throws SettingError naming "table.key".
void check_study_settings(const StudyConfig& config);
void write_study(const StudyConfig& config);

}  // namespace linkstyle
