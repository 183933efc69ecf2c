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
//     thresholding), so that few units carry the shift;
//   - "realistic": minimises (lambda/2)|s|^2 + (beta/2)|s - (mean_A - mean_B)|^2 in the
//     within-class Mahalanobis metric (Sigma_W of the pairs) subject to the margin
//     z_B - max_{k != B} z_k >= m at relu(r - s): from the unconstrained minimum
//     rho (mean_A - mean_B), rho = beta / (lambda + beta), each step projects onto the most
//     violated margin constraint, linearised, in that metric (s += t Sigma_W grad, closed form).
//     It stops when the image x' is class B with the margin m and realistic (its features' kNN
//     ratio to class-B pairs within B's own realism_quantile); an image short of the margin
//     raises the feature-space margin, an unrealistic one moves rho halfway to 1 (at rho >= 0.999
//     an unrealistic image gives up).
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
#include <functional>
#include <map>
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

// Features of real samples of one class, against which a counterfactual's realism is measured:
// the mean distance of features x to their k nearest references, over the references' own
// median (each reference against the others); 1 is typical of the class.
struct RealismReference {
  torch::Tensor features;  // [M, D] float32 (on the device the ratios are computed on)
  int64_t neighbours = 8;
  double median_distance = 0;  // median leave-one-out kNN distance among the references
  double threshold = 0;        // the `quantile` of the references' own ratios
  // REQUIRES M >= neighbours + 2, finite features; Error("realism reference") otherwise.
  static RealismReference of(const torch::Tensor& features, int64_t neighbours, double quantile);
  torch::Tensor ratios(const torch::Tensor& x) const;  // [n] float64 on the CPU
};

// What the realistic method needs besides the models (classifier's space, its device).
struct RealisticTerms {
  torch::Tensor covariance;   // Sigma_W [D, D] float32: the pooled within-class covariance
  torch::Tensor class_shift;  // mean_A - mean_B [D] float32 of the pairs' features
  const RealismReference* reference = nullptr;  // class B's pairs, classifier features
};

// The optimisation of shifts for a batch of samples of one class pair.
struct ShiftOptimisation {
  torch::Tensor shift;    // s [n, D] float32 (classifier's device): at success, or after max_steps
  torch::Tensor steps;    // [n] int64 (CPU): steps taken (at the successful check, realistic: or where it
                          // gave up, else max_steps)
  torch::Tensor success;  // [n] bool (CPU): the image of relu(r - s) was classified as the target
                          // (realistic: with the margin, and realistic)
  int64_t checks = 0;     // batched image-domain checks made
  double seconds = 0, check_seconds = 0;
};

// The starting shifts of samples: row i uniform [0, 1) from (seed, sample_ids[i]), so a sample
// starts the same in any batch. [n, D] float32 on the CPU.
torch::Tensor initial_shifts(uint64_t seed, const std::vector<int64_t>& sample_ids, int64_t feature_dim);

// Optimises the shifts of features r [n, D] from source class `source` to `target` (classifier
// indices), starting at `initial_shift` [n, D] (realistic: its own start, rho (mean_A - mean_B),
// added to initial_shift). Throws Error naming the classifier when the loss, its gradient or the
// features are not finite; realistic needs `realistic` (Error otherwise).
ShiftOptimisation optimise_shifts(const CounterfactualModels& models, const torch::Tensor& features, int64_t source,
                                  int64_t target, const torch::Tensor& initial_shift,
                                  const CounterfactualSettings& settings, const RealisticTerms* realistic = nullptr,
                                  const std::function<void(int64_t step)>& on_step = {});

// A study's pairs as the counterfactuals to `target` (a classifier class) see them: the first
// realism_references pairs of the target and, with `with_covariance`, Sigma_W and the class
// means. Error naming the pairs when they are incomplete or hold too few pairs of the target.
struct ClassGeometry {
  RealismReference reference;
  torch::Tensor reference_latents;  // w of the reference pairs [M, w_dim] (CPU)
  torch::Tensor covariance;         // Sigma_W [D, D] float32 (with_covariance)
  std::map<int64_t, torch::Tensor> class_means;  // classifier class -> [D] float32
  // The realistic terms of source -> target; Error naming the pairs when source has none.
  RealisticTerms terms_for(int64_t source, int64_t target) const;
  std::filesystem::path pairs_file;
};
ClassGeometry class_geometry(const StudyConfig& study, const Classifier& classifier, int64_t target,
                             bool with_covariance);

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
  CounterfactualRunRealism realism;          // when the study's pairs hold the target
  nlohmann::json to_json() const;
};

// The shapes world's exact counterfactuals: a generator that knows its samples' factors
// (factors(z, c): the faithful generator) lets the renderer draw a generated sample of class A
// with the same factor quantiles as class B (the hues move to B's range, as B prescribes).
// knows_sample_factors() is false for any other generator.
bool knows_sample_factors(const Generator& generator);
// render(B, factors(z, B)): images [n, 3, R, R] in [0, 1] on the CPU, R the generator's
// resolution; Error naming the generator when it has no factors(z, c).
torch::Tensor exact_counterfactual_images(const Generator& generator, const torch::Tensor& z, int64_t target_class);

CounterfactualSummary run_counterfactuals(const StudyConfig& study, const CounterfactualModels& models,
                                          const std::filesystem::path& linking_file,
                                          const CounterfactualRequest& request,
                                          const CounterfactualRunOptions& options = {});

}  // namespace linkstyle
