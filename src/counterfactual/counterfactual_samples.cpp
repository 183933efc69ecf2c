// The samples a counterfactual run explains: generated ones of a study's class, or the user's
// images (counterfactual/counterfactual_run.hpp).
#include <optional>

#include <fmt/format.h>
#include <torch/torch.h>

#include "counterfactual/counterfactual_run.hpp"
#include "linkstyle/errors.hpp"
#include "linkstyle/generation.hpp"
#include "linkstyle/image_files.hpp"
#include "linkstyle/pairs.hpp"

namespace linkstyle::counterfactual_run {

namespace fs = std::filesystem;

// The generator class of a classifier class among the study's; with `required` false, -1 when
// it is not among them.
int64_t generator_class_of(const StudyConfig& study, const Generator& generator, int64_t classifier_class,
                           bool required) {
  for (const StudyClass& study_class : study_classes(study, generator))
    if (study_class.classifier_class == classifier_class) return study_class.generator_class;
  if (!required) return -1;
  throw SettingError("counterfactual.from",
                     fmt::format("class {} is not among the study's classes (pairs.classes), so it has no generated "
                                 "samples; give --image files instead",
                                 classifier_class),
                     study.config_file());
}

// N generated samples of the classifier class `source` that pass the study's pairs filter.
Samples generated_samples(const StudyConfig& study, const CounterfactualModels& models, int64_t source) {
  const auto& k = study.counterfactual;
  const auto& p = study.pairs;
  const int64_t generator_class = generator_class_of(study, models.generator, source);
  const PairsFilter filter = PairsFilter::parse(p.filter);
  const int64_t max_draws = 50 * k.samples;
  std::vector<torch::Tensor> latents, images, features, ids, zs;
  int64_t kept = 0, drawn = 0;
  for (int64_t batch = 0; kept < k.samples; ++batch) {
    if (drawn >= max_draws)
      throw SettingError("counterfactual.samples",
                         fmt::format("only {} of {} generated samples of {} pass pairs.filter \"{}\" after {} draws",
                                     kept, k.samples, models.classifier.class_name(source), p.filter, drawn),
                         study.config_file());
    auto made = generate_and_encode(models.generator, models.classifier, k.seed, generator_class, batch, p.batch_size,
                                    p.psi);
    const auto logits = models.classifier.head(made.features).to(torch::kCPU, torch::kFloat32);
    auto pass = passes_filter(filter, logits, source).to(torch::kCPU).nonzero().squeeze(1);
    if (pass.numel() > k.samples - kept) pass = pass.slice(0, 0, k.samples - kept);
    latents.push_back(made.latents.to(torch::kCPU, torch::kFloat32).index_select(0, pass));
    zs.push_back(draw_latents(k.seed, generator_class, batch, p.batch_size, models.generator.z_dim()).index_select(0, pass));
    images.push_back(made.images.to(torch::kCPU, torch::kFloat32).index_select(0, pass));
    features.push_back(made.features.to(torch::kCPU, torch::kFloat32).index_select(0, pass));
    ids.push_back(pass + batch * p.batch_size);
    kept += pass.numel();
    drawn += p.batch_size;
  }
  Samples samples;
  samples.latents = torch::cat(latents);
  samples.z = torch::cat(zs);
  samples.images = torch::cat(images);
  samples.features = torch::cat(features);
  const auto id = torch::cat(ids);
  for (int64_t i = 0; i < kept; ++i) {
    samples.source.push_back(source);
    samples.latent_id.push_back(id[i].item<int64_t>());
    samples.origin.push_back("generated");
  }
  if (!torch::isfinite(samples.features).all().item<bool>())
    throw Error(models.classifier.file(), "features of generated samples contain NaN/Inf");
  return samples;
}

// The user's images: read and encoded (all of them before anything is written).
Samples image_samples(const CounterfactualModels& models, const std::vector<fs::path>& files,
                      std::optional<int64_t> source, int64_t target) {
  const torch::NoGradGuard no_grad;
  Samples samples;
  std::vector<torch::Tensor> images, features;
  const int64_t side = models.generator.resolution();
  for (const auto& file : files) {
    const auto image = read_image(file);
    const auto r = encode_images(models.classifier, image).to(torch::kCPU, torch::kFloat32);
    if (!torch::isfinite(r).all().item<bool>()) throw Error(file, "the classifier's features of it contain NaN/Inf");
    const int64_t predicted =
        models.classifier.head(r.to(models.classifier.device())).argmax(1).item<int64_t>();
    const int64_t from = source.value_or(predicted);
    if (from == target)
      throw Error(file, fmt::format("is classified as {} already; give --from to explain it from another class",
                                    models.classifier.class_name(target)));
    samples.source.push_back(from);
    samples.latent_id.push_back(-1);
    samples.origin.push_back(file.string());
    features.push_back(r);
    images.push_back(torch::nn::functional::interpolate(
        image, torch::nn::functional::InterpolateFuncOptions().size(std::vector<int64_t>{side, side}).mode(torch::kArea)));
  }
  samples.images = torch::cat(images);
  samples.features = torch::cat(features);
  return samples;
}

}  // namespace linkstyle::counterfactual_run
