// linkstyle/generation.hpp
//
// WHAT THIS REPRESENTS
//   How linkstyle makes and encodes images of a class, the same way at every stage (pairs, tuning
//   samples, generator samples, the ground-truth probe): latents z drawn from (seed, class, batch
//   index) -> w = mapping(z, class, psi) -> images = synthesis(w) in the classifier's range
//   [0, 1] -> classifier features r.
// REQUIRES
//   Models that meet the contract (docs/model-contract.md); a class in [0, generator classes).
// ENSURES
//   The draw of (seed, class, batch index) is the same on every machine and thread count
//   (counter-based, from a CPU generator); distinct batch indices, classes or seeds give
//   distinct draws. Tensors stay on the model's device; no gradients are recorded.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <torch/types.h>

#include "linkstyle/models.hpp"
#include "linkstyle/study.hpp"

namespace linkstyle {

// Latents z of (class, batch) as linkstyle draws them: [count, z_dim] float32 on the CPU.
torch::Tensor draw_latents(uint64_t seed, int64_t generator_class, int64_t batch_index, int64_t count, int64_t z_dim);

// w = mapping(draw_latents(...), class, psi): [count, w_dim] on the generator's device.
torch::Tensor class_latents(const Generator& generator, uint64_t seed, int64_t generator_class, int64_t batch_index,
                            int64_t count, double psi);

// G.synthesis(w) in the classifier's range: [n, 3, R, R] in [0, 1] on the generator's device.
torch::Tensor render_latents(const Generator& generator, const torch::Tensor& latents);

// The classifier's features of images in its range: [n, D] on the classifier's device.
torch::Tensor encode_images(const Classifier& classifier, const torch::Tensor& images);

// One batch of a class made and encoded: draw -> map -> synthesise -> encode.
struct EncodedSamples {
  torch::Tensor latents;   // w [count, w_dim] (generator's device)
  torch::Tensor images;    // [count, 3, R, R] in [0, 1] (generator's device)
  torch::Tensor features;  // r [count, D] (classifier's device)
};
EncodedSamples generate_and_encode(const Generator& generator, const Classifier& classifier, uint64_t seed,
                                   int64_t generator_class, int64_t batch_index, int64_t count, double psi);

// A class of a study: its index in the generator, its index in the classifier, and its name (the
// generator's).
struct StudyClass {
  int64_t generator_class = 0, classifier_class = 0;
  std::string name;
};

// The study's classes in order: pairs.classes (every class of the generator when empty), each
// with pairs.classifier_classes' entry (the same index when that is empty). The indices are not
// checked against the models.
std::vector<StudyClass> study_classes(const StudyConfig& study, const Generator& generator);
// The same, each class checked to exist in both models: Error naming study.toml for the first
// class that does not (its generator index first, then its classifier index).
std::vector<StudyClass> study_classes(const StudyConfig& study, const Classifier& classifier,
                                      const Generator& generator);

// `linkstyle sample`: per_class generator samples of each of the study's classes (latents from
// `seed`, the study's psi) as PNG files `folder`/class<c>-<i>.png. REQUIRES per_class > 0.
std::vector<std::filesystem::path> write_class_samples(const StudyConfig& study, const Generator& generator,
                                                       int64_t per_class, uint64_t seed,
                                                       const std::filesystem::path& folder);

}  // namespace linkstyle
