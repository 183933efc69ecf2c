// linkstyle/part_sources.hpp
//
// WHAT THIS REPRESENTS
//   Where the parts of a generated image come from, behind one interface (docs/sweeps.md):
//   - a segmenter TorchScript file: segment(images [N,3,H,W] in [0,1]) -> logits [N,K,H',W']
//     (argmax over K; resized to H x W when H' differs); part names from its optional attribute
//     part_names (List[str]), else "part <k>";
//   - unsupervised part discovery: k-means (k-means++ start, Lloyd iterations, seeded) over the
//     pixels of the generator's intermediate feature maps (synthesis_features), each map
//     bilinearly resized to the image size and divided by its root mean square over the fitting
//     images, then concatenated; clusters are numbered by decreasing pixel count on those images
//     and named "cluster <k>";
//   - the whole image as one part ("image"), when neither is available.
// REQUIRES
//   Images [N,3,R,R] float in [0,1] and, for k-means, the latents w [N,w_dim] they were made from.
// ENSURES
//   label() returns [N,R,R] int32 in [0, part_names().size()), on the CPU, deterministic for
//   the same inputs and thread count. Loading a file that breaks the contract (no segment method,
//   wrong rank) throws linkstyle::Error naming the file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "linkstyle/models.hpp"
#include "linkstyle/study.hpp"

namespace linkstyle {

class PartSource {
 public:
  virtual ~PartSource() = default;
  // "segmenter", "kmeans" or "none".
  virtual std::string kind() const = 0;
  virtual const std::vector<std::string>& part_names() const = 0;
  // True when label() reads the latents (it then calls the generator).
  virtual bool needs_latents() const { return false; }
  virtual torch::Tensor label(const torch::Tensor& images, const torch::Tensor& latents) const = 0;
  // True when the labels come from the generator's feature maps of the images' latents; then
  // label_feature_maps(images, maps) gives label()'s result from maps already made (by
  // Generator::synthesis_with_features), without a second synthesis.
  virtual bool labels_feature_maps() const { return false; }
  virtual torch::Tensor label_feature_maps(const torch::Tensor& images, const std::vector<torch::Tensor>& maps) const;
  // What identifies the source's output (file fingerprint, k-means settings), for resumption.
  virtual std::string identity() const = 0;
};

std::unique_ptr<PartSource> load_segmenter_parts(const std::filesystem::path& file, const c10::Device& device);

// Fits k-means with `clusters` centres on the feature-map pixels of the images made from
// `latents` (at most `max_pixels` pixels, drawn with `seed`).
std::unique_ptr<PartSource> fit_kmeans_parts(const Generator& generator, const torch::Tensor& latents, int64_t clusters,
                                             uint64_t seed, int64_t max_pixels = 20000, int64_t iterations = 30);

std::unique_ptr<PartSource> whole_image_parts();

// The part source a study's settings ask for (sweep.parts; "auto": the segmenter when set, else
// k-means on `tuning_latents` when the generator exposes its feature maps, else the whole image).
std::unique_ptr<PartSource> make_part_source(const StudyConfig& study, const Generator& generator,
                                             const torch::Tensor& tuning_latents, const c10::Device& device);

}  // namespace linkstyle
