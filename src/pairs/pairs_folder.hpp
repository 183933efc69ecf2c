// pairs/pairs_folder.hpp (private)
//
// WHAT THIS REPRESENTS
//   The study's pairs/ folder as generate_pairs() works on it: the manifest it starts or resumes,
//   the accepted rows waiting to become the next shard, a shard's commit, and the check of a
//   complete folder's shards against its manifest.
// REQUIRES
//   The caller holds the study's "pairs" lock; models that meet the contract.
// ENSURES
//   The manifest is the commit point: commit_shard() writes a shard's files and the statistics
//   before the manifest that lists them. Mismatches throw linkstyle::Error naming the manifest or
//   the file.
#pragma once

#include <cstdint>
#include <vector>

#include <torch/types.h>

#include "linkstyle/linking.hpp"
#include "linkstyle/models.hpp"
#include "linkstyle/pairs.hpp"
#include "linkstyle/study.hpp"

namespace linkstyle {

// Accepted rows waiting to be written as one shard.
struct ShardBuffer {
  std::vector<torch::Tensor> latents, features, labels, latent_ids;
  int64_t rows = 0;
  void clear() { *this = ShardBuffer{}; }
};

// The manifest to continue: a fresh one, or the folder's own when it was made with the same
// settings and models. Leftovers of a killed run (temporary files, superseded statistics) go.
PairsManifest start_or_resume_pairs(const StudyConfig& study, const Classifier& classifier,
                                    const Generator& generator);

// Writes the buffer as the next shard, adds its training rows to the statistics and commits the
// manifest.
void commit_shard(PairsManifest& state, ShardBuffer& buffer, LinkingStatistics& statistics, double holdout_fraction);

// A complete study's shards must still be what its manifest lists: every file there, of the
// listed dtype and shape (the headers and sizes are read, not the data), and the rows adding up.
void verify_pair_shards(const PairsManifest& manifest);

}  // namespace linkstyle
