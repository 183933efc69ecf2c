// linkstyle/counterfactual.hpp
//
// WHAT THIS REPRESENTS
//   Counterfactuals across a decision boundary (method step 5, docs/counterfactuals.md): for a
//   sample of class A with features r, a shift s in feature space such that the classifier's head
//   prefers class B on r - s while the linked latent stays close, checked in the image domain:
//   x' = G(L(relu(r - s))) must be classified B by the full classifier.
//   - "paper": s starts uniform [0, 1) (seeded per sample), loss = -z_B(r - s) + 0.6 z_A(r - s)
//     - 10 cos(L(r), L(r - s)), plain gradient descent with step 0.5, the image check after every
//     step, at most 2000 steps;
//   - "adam": Adam on the same loss;
//   - "sparse": the paper's descent plus an L1 penalty on s, by its proximal step (soft
//     thresholding), so that few units carry the shift.
//   Samples are optimised together; a sample leaves the batch when its check succeeds.
// REQUIRES
//   A study with a linking network fitted for its classifier and generator; a head that gives
//   logits; classes A != B of the classifier; for generated samples, A among the study's classes.
// ENSURES
//   run_counterfactuals() writes each batch of samples in one transaction of the study's results
//   database (tables counterfactual_runs, counterfactuals, counterfactual_paths,
//   counterfactual_units, counterfactual_parts; docs/counterfactuals.md) after its files
//   (PNGs and a safetensors file per batch, each atomic) in counterfactuals/<run>/: a killed or
//   stopped run resumes at the first sample not committed, without missing or repeating one. A
//   run of the same name made with other settings or models is an error naming the database
//   (`fresh` replaces it). Results are deterministic for a seed, batch size and thread count.
//   Bad input (unknown class, A == B, NaN in the loss or features, unreadable images) throws a
//   linkstyle::Error or SettingError before anything of the run is written.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "linkstyle/cancellation.hpp"
#include "linkstyle/linking.hpp"
#include "linkstyle/models.hpp"
#include "linkstyle/results_database.hpp"
#include "linkstyle/study.hpp"

namespace linkstyle {

class DistributedJob;  // distributed.hpp

struct CounterfactualModels {
  const Classifier& classifier;
  const Generator& generator;
  const LinkingNetwork& network;
};

// The optimisation of shifts for a batch of samples of one class pair.
struct ShiftOptimisation {
  torch::Tensor shift;    // s [n, D] float32 (classifier's device): at success, or after max_steps
  torch::Tensor steps;    // [n] int64 (CPU): steps taken (at the successful check, else max_steps)
  torch::Tensor success;  // [n] bool (CPU): the image of relu(r - s) was classified as the target
  int64_t checks = 0;     // batched image-domain checks made
  double seconds = 0, check_seconds = 0;
};

// The starting shifts of samples: row i uniform [0, 1) from (seed, sample_ids[i]), so a sample
// starts the same in any batch. [n, D] float32 on the CPU.
torch::Tensor initial_shifts(uint64_t seed, const std::vector<int64_t>& sample_ids, int64_t feature_dim);

// Optimises the shifts of features r [n, D] from source class `source` to `target` (classifier
// indices), starting at `initial_shift` [n, D]. Throws Error naming the classifier when the loss,
// its gradient or the features are not finite.
ShiftOptimisation optimise_shifts(const CounterfactualModels& models, const torch::Tensor& features, int64_t source,
                                  int64_t target, const torch::Tensor& initial_shift,
                                  const CounterfactualSettings& settings);

// A class of the classifier by name (case-insensitive) or index; SettingError(setting) naming the
// classes otherwise.
int64_t resolve_classifier_class(const Classifier& classifier, const std::string& text, const std::string& setting);

// What to explain: generated samples of `from`, or the user's images (from: each image's own
// class when empty), towards `to`.
struct CounterfactualRequest {
  std::string from, to;
  std::vector<std::filesystem::path> images;
  bool fresh = false;  // replace a stored run of the same name made with other settings
};

struct CounterfactualRunOptions {
  // Asked after each batch is committed: true stops the run (Cancelled); it resumes later.
  StopRequested stop_requested;
  bool progress = true;
  // A job of many processes: the batches go round the ranks, a batch per rank at a time, and
  // rank 0 writes them in order (the files and rows are those of one process); the other ranks
  // explain what they are handed and return an empty summary.
  DistributedJob* job = nullptr;
};

struct CounterfactualSummary {
  std::string run;  // "<from>-to-<to>-<method>" (from: "images" for the user's images)
  std::filesystem::path folder, database;
  std::string method, source_name, target_name;
  int64_t samples = 0, resumed = 0, successes = 0;
  double success_rate = 0, median_steps = 0, p90_steps = 0;  // steps over the successful samples
  double seconds = 0, seconds_per_counterfactual = 0;  // of this call's samples
  double check_share = 0;  // of the optimisation's time, spent in the image-domain checks
  std::vector<RelevantUnit> relevant_units;  // by decreasing count
  nlohmann::json to_json() const;
};

CounterfactualSummary run_counterfactuals(const StudyConfig& study, const CounterfactualModels& models,
                                          const std::filesystem::path& linking_file,
                                          const CounterfactualRequest& request,
                                          const CounterfactualRunOptions& options = {});

}  // namespace linkstyle
