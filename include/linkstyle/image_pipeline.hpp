// linkstyle/image_pipeline.hpp
//
// WHAT THIS REPRESENTS
//   The device pipeline every measured image goes through: latents w -> G.synthesis -> images in
//   the classifier's range -> classifier features and logits (the cycle) -> part labels
//   (PartSource) -> part measures (part_measures.hpp), in batches.
// REQUIRES
//   Models that meet the contract (docs/model-contract.md); latents [N, w_dim]; batch_size >= 1.
// ENSURES
//   Results come back on the CPU in the order of the latents and do not depend on the batch
//   size's split into groups nor on the overlap: with overlap, batch k is encoded, segmented and
//   measured on another thread (on a GPU, in a stream of its own that waits for batch k's
//   synthesis) while batch k + 1 is rendered. Errors name the model file.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include <torch/types.h>

#include "linkstyle/linking.hpp"
#include "linkstyle/models.hpp"
#include "linkstyle/part_measures.hpp"
#include "linkstyle/part_sources.hpp"

namespace linkstyle {

// The measured form of a batch of latents: what the classifier and the part measures see.
struct MeasuredImages {
  torch::Tensor features;                        // r' [N, D] float32 (CPU)
  torch::Tensor logits;                          // [N, K] float32 (CPU)
  std::vector<std::vector<PartMeasures>> parts;  // per image
  torch::Tensor images;                          // [N, R, R, 3] uint8 (CPU), only when asked for
  torch::Tensor labels;                          // [N, R, R] int32 (CPU), only when asked for
};

struct SweepModels {
  const Classifier& classifier;
  const Generator& generator;
  const LinkingNetwork& network;
  const PartSource& parts;
};

// Whether the CPU's share of a sweep (part measures, optical flow, statistics, database rows) runs
// beside the generator's: `automatic` does so when the generator runs on a GPU, where the CPU work
// would otherwise leave it idle. The results are the same either way.
enum class Overlap { automatic, always, never };

// Renders, re-encodes, segments and measures `latents` [N, w_dim] in batches of `batch_size`;
// with keep_images, also returns every image (uint8) and its part labels.
MeasuredImages measure_latents(const SweepModels& models, const torch::Tensor& latents, int64_t batch_size,
                               bool keep_images, bool overlap = false);

// measure_latents over `groups` groups of latents in order, as one pipeline: latents_of(g) gives
// group g's latents [N_g, w_dim] (N_g >= 1; called when the pipeline reaches the group), and
// on_measured(g, ...) receives its results (as measure_latents would return them) in group order,
// on the calling thread, while the next group is rendered. Batches do not cross groups.
void measure_latent_groups(const SweepModels& models, int64_t groups,
                           const std::function<torch::Tensor(int64_t group)>& latents_of,
                           const std::function<void(int64_t group, MeasuredImages&& measured)>& on_measured,
                           int64_t batch_size, bool keep_images, bool overlap = false);

// Re-encodes, segments and measures images [N, 3, R, R] in [0, 1] (rendered or generated) in
// batches of `batch_size`, without keeping them; `parts` must not read latents (a segmenter does not).
MeasuredImages measure_images(const Classifier& classifier, const PartSource& parts, const torch::Tensor& images,
                              int64_t batch_size);

}  // namespace linkstyle
