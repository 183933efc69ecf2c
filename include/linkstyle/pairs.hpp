// linkstyle/pairs.hpp
//
// WHAT THIS REPRESENTS
//   The paired data set (w, r) that the generator makes itself (method step 1), stored in the
//   study's pairs/ folder as float32 .npy shards (w-NNNNN.npy [n, w_dim], r-NNNNN.npy [n, D]),
//   int64 class-NNNNN.npy (generator class) and latent-NNNNN.npy (latent id), a manifest.json,
//   and the sufficient statistics of the training rows (stats-NNNNN.safetensors).
//   Latent id k of class c is z = randn(z_dim) from a generator seeded by (seed, c, k / batch):
//   every draw is fresh (no duplicates) and can be regenerated.
// REQUIRES
//   Models that meet the contract; settings from study.toml.
// ENSURES
//   generate_pairs(): per class, draws latents in batches (mapping -> synthesis -> classifier),
//   keeps the samples that pass pairs.filter (by default: the classifier assigns them to the
//   intended class), until samples_per_class are kept or max_draws_per_class are drawn. A class
//   that ends with no pair kept is an error (SettingError on pairs.filter) that names what the
//   classifier predicted for its samples instead. Memory does not grow with the number of samples. The
//   manifest is the commit point: it is rewritten (atomically) after each shard, so an
//   interrupted run resumes from the last shard and produces byte-identical files to an
//   uninterrupted run, for a seed, batch size and thread count. Resuming with other settings or
//   other models is an error naming the manifest.
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
#include "linkstyle/generation.hpp"
#include "linkstyle/linking.hpp"
#include "linkstyle/models.hpp"
#include "linkstyle/study.hpp"

namespace linkstyle {

class DistributedJob;  // distributed.hpp

struct PairShard {
  std::string features, latents, labels, latent_ids;  // file names inside the pairs folder
  int64_t rows = 0;
  int64_t first_row = 0;  // global index of the shard's first row
};

struct ClassProgress {
  int64_t generator_class = 0, classifier_class = 0;
  std::string name;
  // drawn counts the samples judged by the filter: the last batch of a class counts up to the
  // sample that completed it, so that accepted / drawn is the filter's acceptance rate.
  int64_t batches_drawn = 0, drawn = 0, accepted = 0;
  bool done = false;
  std::map<int64_t, int64_t> rejected_predicted_as;  // classifier's top-1 class -> rejected samples

  double acceptance_rate() const { return drawn ? double(accepted) / double(drawn) : 0.0; }
};

struct PairsManifest {
  std::filesystem::path folder;
  nlohmann::json models;    // {"classifier": {...}, "generator": {...}}
  nlohmann::json settings;  // the pairs settings this data was made with
  int64_t feature_dim = 0, latent_dim = 0, total_rows = 0;
  std::vector<PairShard> shards;
  std::vector<ClassProgress> classes;
  std::string statistics;  // file of the training rows' sufficient statistics ("" if none)
  double statistics_holdout_fraction = 0.0;
  bool complete = false;

  static PairsManifest load(const std::filesystem::path& pairs_folder);
  void save() const;
  std::filesystem::path file() const { return folder / "manifest.json"; }
};

// Which samples of a batch pass the filter for classifier class `target`: bool [n] on the logits'
// device.
torch::Tensor passes_filter(const PairsFilter& filter, const torch::Tensor& logits, int64_t target);

struct PairsRunOptions {
  // Asked after each shard is committed: true stops the run (Cancelled); it resumes later.
  StopRequested stop_requested;
  // A job of many processes: rank 0 draws a class's next batches one per rank, keeps them in
  // batch order and writes everything (the files are those of one process); the other ranks
  // draw what they are handed and return an empty manifest.
  DistributedJob* job = nullptr;
};

// Generates (or resumes) the pairs of a study; returns the final manifest.
PairsManifest generate_pairs(const StudyConfig& study, const Classifier& classifier, const Generator& generator,
                             const PairsRunOptions& options = {});

// What the classifier predicted for a class's rejected samples, most frequent first:
// "281 tabby (40x), 285 Egyptian cat (12x) and 7 other classes".
std::string describe_rejections(const ClassProgress& c, const Classifier& classifier, size_t most = 3);

// Calls visit(features [n,D], latents [n,w_dim], first_row) for every shard, memory-mapped.
void for_each_pair_shard(const PairsManifest& manifest,
                         const std::function<void(const torch::Tensor&, const torch::Tensor&, int64_t)>& visit);
// The same with each shard's labels (generator classes, int64 [n]) checked beside them.
void for_each_labelled_pair_shard(
    const PairsManifest& manifest,
    const std::function<void(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&, int64_t)>& visit);

// Fits the study's linking network from its pairs (using the statistics accumulated while the
// pairs were made unless recompute is set) and measures it on the held-out rows.
struct LinkingFit {
  LinkingNetwork network;
  FitReport report;
  nlohmann::json held_out;  // LinkingMetrics::summary()
  bool statistics_reused = false;
  double seconds_statistics = 0.0, seconds_solve = 0.0, seconds_metrics = 0.0;
};
LinkingFit fit_from_pairs(const PairsManifest& manifest, const FitOptions& options, double holdout_fraction,
                          bool recompute_statistics);

}  // namespace linkstyle
