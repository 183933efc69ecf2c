#include "linkstyle/generation.hpp"

#include <fmt/format.h>
#include <torch/torch.h>

#include "linkstyle/atomic_file.hpp"
#include "linkstyle/errors.hpp"
#include "linkstyle/image_files.hpp"
#include "linkstyle/runtime.hpp"

#include "splitmix.hpp"

namespace linkstyle {

torch::Tensor draw_latents(uint64_t seed, int64_t generator_class, int64_t batch_index, int64_t count, int64_t z_dim) {
  const uint64_t key = splitmix64(splitmix64(splitmix64(seed) ^ static_cast<uint64_t>(generator_class)) ^
                                  static_cast<uint64_t>(batch_index));
  auto generator = at::detail::createCPUGenerator(key);
  return torch::randn({count, z_dim}, generator, torch::kFloat32);
}

torch::Tensor class_latents(const Generator& generator, uint64_t seed, int64_t generator_class, int64_t batch_index,
                            int64_t count, double psi) {
  const torch::NoGradGuard no_grad;
  const auto z = draw_latents(seed, generator_class, batch_index, count, generator.z_dim()).to(generator.device());
  const auto labels =
      torch::full({count}, generator_class, torch::TensorOptions(torch::kLong).device(generator.device()));
  return generator.mapping(z, labels, psi);
}

torch::Tensor render_latents(const Generator& generator, const torch::Tensor& latents) {
  const torch::NoGradGuard no_grad;
  return generator_to_classifier_range(generator.synthesis(latents));
}

torch::Tensor encode_images(const Classifier& classifier, const torch::Tensor& images) {
  const torch::NoGradGuard no_grad;
  return classifier.features(images.to(classifier.device()));
}

EncodedSamples generate_and_encode(const Generator& generator, const Classifier& classifier, uint64_t seed,
                                   int64_t generator_class, int64_t batch_index, int64_t count, double psi) {
  EncodedSamples samples;
  samples.latents = class_latents(generator, seed, generator_class, batch_index, count, psi);
  samples.images = render_latents(generator, samples.latents);
  samples.features = encode_images(classifier, samples.images);
  return samples;
}

std::vector<StudyClass> study_classes(const StudyConfig& study, const Generator& generator) {
  const auto& p = study.pairs;
  std::vector<int64_t> classes = p.classes;
  if (classes.empty())
    for (int64_t c = 0; c < generator.num_classes(); ++c) classes.push_back(c);
  std::vector<StudyClass> listed;
  for (size_t i = 0; i < classes.size(); ++i)
    listed.push_back({classes[i], p.classifier_classes.empty() ? classes[i] : p.classifier_classes[i],
                      generator.class_name(classes[i])});
  return listed;
}

std::vector<StudyClass> study_classes(const StudyConfig& study, const Classifier& classifier,
                                      const Generator& generator) {
  const auto listed = study_classes(study, generator);
  for (const auto& c : listed) {
    if (c.generator_class >= generator.num_classes())
      throw Error(study.config_file(), fmt::format("class {} is out of range: the generator has {} classes",
                                                   c.generator_class, generator.num_classes()));
    if (c.classifier_class >= classifier.num_classes())
      throw Error(study.config_file(), fmt::format("classifier class {} is out of range: the classifier has {} classes",
                                                   c.classifier_class, classifier.num_classes()));
  }
  return listed;
}

std::vector<std::filesystem::path> write_class_samples(const StudyConfig& study, const Generator& generator,
                                                       int64_t per_class, uint64_t seed,
                                                       const std::filesystem::path& folder) {
  if (per_class <= 0) throw SettingError("sample.per_class", "must be > 0");
  // One class's latents and images at once, through the generator.
  require_memory("sample.per_class",
                 double(per_class) * 4.0 * double(generator.z_dim() + generator.w_dim()) +
                     batch_memory_bytes(double(per_class), generator.resolution()),
                 fmt::format("{} images of {}x{} at once", per_class, generator.resolution(), generator.resolution()));
  ensure_writable_directory(folder);
  std::vector<std::filesystem::path> written;
  for (const StudyClass& study_class : study_classes(study, generator)) {
    const int64_t c = study_class.generator_class;
    const auto images = render_latents(generator, class_latents(generator, seed, c, 0, per_class, study.pairs.psi));
    for (int64_t i = 0; i < per_class; ++i) {
      const auto file = folder / fmt::format("class{}-{}.png", c, i);
      write_image_row(file, {images.slice(0, i, i + 1)}, static_cast<int>(generator.resolution()));
      written.push_back(file);
    }
  }
  return written;
}

}  // namespace linkstyle
