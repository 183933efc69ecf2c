// linkstyle/sweep.hpp
//
// WHAT THIS REPRESENTS
//   Unit sweeps and their measures (method steps 3 and 4, docs/sweeps.md): for each classifier
//   unit i and tuning sample r0 (samples_per_class per class, latents from the sweep seed,
//   truncated with the study's psi, not filtered), r_i is set to each of `steps` values from the
//   unit's minimum to its maximum over the tuning samples, w = L(r), image = G(w). Every image is
//   re-encoded by the classifier (cycle), split into parts (PartSource) and measured
//   (part_measures.hpp). Random directions in r-space of the same norm give the null for the
//   selectivity z-scores. Results go to the study's SQLite database (results_database.hpp).
// REQUIRES
//   A study with a linking network fitted for its classifier and generator; sweep settings from
//   study.toml ([sweep]); units within [0, D).
// ENSURES
//   run_sweep() works in chunks of units_per_chunk units (and of null directions), each written
//   in one transaction, so a killed run resumes where it stopped and ends with exactly the rows
//   of an uninterrupted run (same values for a seed, batch size and thread count). A database
//   made with other settings, models or linking network is an error naming it. Images are only
//   kept as strip PNGs (sweeps/strips/unit-UUUUU-sample-SSS.png) for the top strip_units units
//   and any asked for. Latents of unit u, sample s, step t are L(r0_s) + A[:, u] (v_t - r0_s,u).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "linkstyle/linking.hpp"
#include "linkstyle/models.hpp"
#include "linkstyle/part_measures.hpp"
#include "linkstyle/part_sources.hpp"
#include "linkstyle/study.hpp"

namespace linkstyle {

// The tuning samples a sweep starts from.
struct TuningSet {
  torch::Tensor features;              // r0 [S, D] float32
  torch::Tensor latents;               // L(r0) [S, w_dim] float32
  torch::Tensor generator_classes;     // [S] int64
  torch::Tensor classifier_classes;    // [S] int64
  torch::Tensor range_min, range_max;  // [D] float32: each unit's range over the samples
  int64_t size() const { return features.size(0); }
};

TuningSet make_tuning_set(const StudyConfig& study, const Classifier& classifier, const Generator& generator,
                          const LinkingNetwork& network);

// Latents of the sweeps of `units` over every tuning sample and step: [U*S*T, w_dim], ordered
// (unit, sample, step); values[u][t] = linspace(min_u, max_u, steps)[t].
torch::Tensor unit_sweep_latents(const LinkingNetwork& network, const TuningSet& tuning,
                                 const std::vector<int64_t>& units, int64_t steps);

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
// with keep_images, also returns every image (uint8) and its part labels. With overlap, one batch
// is encoded, segmented and measured on another thread (on a GPU, in a stream of its own) while
// the next batch is rendered; the results are the same.
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

// An angle difference (degrees) wrapped into [-period/2, period/2).
double wrap_degrees(double delta, double period);

// Hue is only defined for parts with at least this mean saturation.
inline constexpr double kMinimumSaturationForHue = 0.1;

// The measures that make a concept (with a part): normalised changes between the two ends of a
// sweep (docs/sweeps.md): area (relative), luminance (/85), entropy (bits), hue (degrees),
// saturation, eccentricity, angle (degrees), centre_x, centre_y (fraction of the side), flow_x,
// flow_y (fraction of the side).
const std::vector<std::string>& concept_measures();

// Changes [P, M] (NaN where undefined) between two measured images of the same sample, with the
// part motion from dense optical flow; parts whose mean area over `areas_over_steps` is under
// `min_area` are NaN.
torch::Tensor endpoint_changes(const std::vector<PartMeasures>& first, const std::vector<PartMeasures>& last,
                               const std::vector<PartMotion>& motion, const torch::Tensor& mean_area, int64_t num_parts,
                               int64_t side, double min_area);

// The smallest mean area a part must have to be measured: 20 px at 128 x 128, scaled to side^2.
double minimum_part_area(int64_t side);

struct SweepRunOptions {
  std::vector<int64_t> strip_units;  // strips for these units too
  int64_t stop_after_chunks = -1;    // tests: throw SweepInterrupted after this many chunks
  bool progress = true;
  // With overlap, a chunk's flow, statistics and rows are computed and written on another thread
  // while the next chunk is rendered and measured; chunks still commit in order, one transaction
  // each.
  Overlap overlap = Overlap::automatic;
};

struct SweepInterrupted : std::runtime_error {
  SweepInterrupted() : std::runtime_error("sweep interrupted") {}
};

struct SweepSummary {
  std::filesystem::path database;
  std::string part_source;
  int64_t units = 0, units_resumed = 0, expressible = 0, labelled = 0;
  int64_t images = 0;  // rendered and measured in this run (strips excluded)
  double seconds = 0, images_per_second = 0;
  std::vector<std::filesystem::path> strips;
  nlohmann::json to_json() const;
};

// Chooses the part source a study's settings ask for ("auto": the segmenter when set, else k-means
// when the generator exposes its feature maps, else the whole image).
std::unique_ptr<PartSource> make_part_source(const StudyConfig& study, const Generator& generator,
                                             const TuningSet& tuning, const c10::Device& device);

SweepSummary run_sweep(const StudyConfig& study, const Classifier& classifier, const Generator& generator,
                       const LinkingNetwork& network, const SweepRunOptions& options = {});

}  // namespace linkstyle
