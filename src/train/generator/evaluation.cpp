// The evaluation of a generator against its world's classifier (see generator_training.hpp).
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "frechet_distance.hpp"
#include "linkstyle/errors.hpp"
#include "linkstyle/models.hpp"
#include "linkstyle/part_sources.hpp"
#include "linkstyle/train/classifier_training.hpp"
#include "linkstyle/train/generator_training.hpp"
#include "linkstyle/worlds/fashion.hpp"
#include "linkstyle/worlds/shapes.hpp"
#include "splitmix.hpp"
#include "train/generator/network.hpp"
#include "train/training_common.hpp"

namespace linkstyle {

namespace fs = std::filesystem;

namespace {

constexpr uint64_t kShapesTestSeedBase = uint64_t{1} << 63;
constexpr int64_t kChunk = 250;  // images per classifier or segmenter pass

// Mean pairwise Euclidean distance between rows of `features`.
double mean_pairwise_distance(const torch::Tensor& features) {
  const int64_t n = features.size(0);
  if (n < 2) return 0.0;
  const auto f = features.to(torch::kDouble);
  const auto distances = torch::cdist(f, f);
  return distances.sum().item<double>() / static_cast<double>(n * (n - 1));
}

// Ratio of two diversities, NaN where the reference has none.
double diversity_ratio(double generated, double real) {
  return real > 1e-9 ? generated / real : std::numeric_limits<double>::quiet_NaN();
}

// Mean colours [N, C] of images [N, C, H, W] in [0, 1] (CPU, float64).
torch::Tensor mean_colours(const torch::Tensor& images) { return images.mean({2, 3}).to(torch::kCPU, torch::kDouble); }

// Mean pairwise distance of mean colours [N, C] in the chroma plane (0 without three channels).
double colour_diversity(const torch::Tensor& mean) {
  if (mean.size(1) != 3) return 0.0;
  const auto r = mean.select(1, 0), g = mean.select(1, 1), b = mean.select(1, 2);
  return mean_pairwise_distance(torch::stack({r - (g + b) * 0.5, (g - b) * (std::sqrt(3.0) / 2)}, 1));
}

// Error naming the generator's or the classifier's file when its class count is not the world's.
void check_class_counts(const Generator& generator, const Classifier& classifier, const std::string& world,
                        int64_t classes) {
  for (const auto& [file, count] :
       {std::pair{generator.file(), generator.num_classes()}, std::pair{classifier.file(), classifier.num_classes()}})
    if (count != classes)
      throw Error(file,
                  "has " + std::to_string(count) + " classes, the " + world + " world " + std::to_string(classes));
}

// Per part, the mean share of the image it covers, from labels [N, R, R].
std::vector<double> part_areas(const torch::Tensor& labels, int64_t parts) {
  const auto counts = torch::bincount(labels.reshape({-1}).to(torch::kLong), {}, parts).to(torch::kDouble);
  const auto shares = counts / static_cast<double>(labels.numel());
  return std::vector<double>(shares.data_ptr<double>(), shares.data_ptr<double>() + shares.numel());
}

// What the evaluation keeps of the generated images of one class, chunk by chunk.
struct GeneratedClass {
  std::vector<torch::Tensor> features, colours, parts;  // parts: with a segmenter only
  int64_t agreeing = 0;                                 // images the classifier assigns to the class
};

// samples_per_class images of class c at `psi` from latents drawn from `rng`.
GeneratedClass generate_class(const Generator& generator, const Classifier& classifier, const PartSource* parts,
                              int64_t c, int64_t samples_per_class, double psi, at::Generator& rng) {
  GeneratedClass generated;
  for (int64_t start = 0; start < samples_per_class; start += kChunk) {
    const int64_t n = std::min(kChunk, samples_per_class - start);
    const auto z = torch::randn({n, generator.z_dim()}, rng, torch::kFloat);
    const auto labels = torch::full({n}, c, torch::kLong);
    const auto images = generator_to_classifier_range(generator.synthesis(generator.mapping(z, labels, psi)));
    const auto r = classifier.features(images);
    generated.agreeing += (classifier.head(r).argmax(1).cpu() == c).sum().item<int64_t>();
    generated.features.push_back(r.cpu());
    generated.colours.push_back(mean_colours(images));
    if (parts) generated.parts.push_back(parts->label(images, {}));
  }
  return generated;
}

// The real images of class c: the first samples_per_class of the fashion test split, or as
// many held-out shapes renders.
torch::Tensor real_class_images(const std::string& world, const FashionMnist& test, const ShapesWorld& shapes,
                                int64_t c, int64_t samples_per_class) {
  if (world == "fashion") {
    const auto index = (test.labels == c).nonzero().squeeze(1);
    return test.images.index_select(0, index.narrow(0, 0, std::min(samples_per_class, index.size(0))));
  }
  std::vector<int64_t> labels(static_cast<size_t>(samples_per_class), c);
  std::vector<uint64_t> seeds(static_cast<size_t>(samples_per_class));
  for (int64_t i = 0; i < samples_per_class; ++i)
    seeds[static_cast<size_t>(i)] = kShapesTestSeedBase + static_cast<uint64_t>(c * samples_per_class + i);
  return shapes.render(labels, seeds).images;
}

// `of` applied to `images` kChunk at a time.
template <typename Of>
std::vector<torch::Tensor> in_chunks(const torch::Tensor& images, Of&& of) {
  std::vector<torch::Tensor> results;
  for (int64_t start = 0; start < images.size(0); start += kChunk)
    results.push_back(of(images.narrow(0, start, std::min(kChunk, images.size(0) - start))));
  return results;
}

// One class's part areas on generated and real images, and their part-area error.
void add_class_part_areas(GeneratorEvaluation& e, const PartSource& parts, const GeneratedClass& generated,
                          const torch::Tensor& real_images) {
  const std::vector<torch::Tensor> real_parts =
      in_chunks(real_images, [&](const torch::Tensor& images) { return parts.label(images, {}); });
  const int64_t part_count = static_cast<int64_t>(e.part_names.size());
  e.part_areas_generated.push_back(part_areas(torch::cat(generated.parts), part_count));
  e.part_areas_real.push_back(part_areas(torch::cat(real_parts), part_count));
  e.part_area_error_per_class.push_back(
      part_area_error(e.part_areas_generated.back(), e.part_areas_real.back(), e.part_names));
}

// One class's Frechet distance, agreement and feature diversity, adding its share of the means
// over `classes`.
void add_class_features(GeneratorEvaluation& e, const torch::Tensor& generated_features,
                        const torch::Tensor& real_features, int64_t class_agreeing, int64_t classes) {
  e.frechet_distance_per_class.push_back(frechet_distance(generated_features, real_features));
  const double g = mean_pairwise_distance(generated_features);
  const double d = mean_pairwise_distance(real_features);
  e.agreement_per_class.push_back(static_cast<double>(class_agreeing) / static_cast<double>(e.samples_per_class));
  e.diversity_ratio_per_class.push_back(d > 0 ? g / d : 0.0);
  e.diversity_generated += g / static_cast<double>(classes);
  e.diversity_real += d / static_cast<double>(classes);
}

// One class's colour diversity, adding its share of the means over `classes`.
void add_class_colours(GeneratorEvaluation& e, const GeneratedClass& generated, const torch::Tensor& real_images,
                       int64_t classes) {
  const double colour_g = colour_diversity(torch::cat(generated.colours));
  const double colour_d = colour_diversity(mean_colours(real_images));
  e.colour_diversity_ratio_per_class.push_back(diversity_ratio(colour_g, colour_d));
  e.colour_diversity_generated += colour_g / static_cast<double>(classes);
  e.colour_diversity_real += colour_d / static_cast<double>(classes);
}

}  // namespace

double part_area_error(const std::vector<double>& generated, const std::vector<double>& real,
                       const std::vector<std::string>& part_names) {
  if (generated.size() != part_names.size() || real.size() != part_names.size())
    throw Error("part_area_error", "needs one area per part name");
  double difference = 0, total = 0;
  for (size_t k = 0; k < part_names.size(); ++k) {
    if (part_names[k] == "background") continue;
    difference += std::fabs(generated[k] - real[k]);
    total += real[k];
  }
  return total > 0 ? difference / total : 0.0;
}

nlohmann::json GeneratorEvaluation::to_json() const {
  // NaN is not JSON: a ratio without a reference is null.
  const auto number = [](double x) { return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(); };
  nlohmann::json per_class = nlohmann::json::array();
  for (double x : colour_diversity_ratio_per_class) per_class.push_back(number(x));
  nlohmann::json json = {{"psi", psi},
                         {"samples_per_class", samples_per_class},
                         {"agreement", agreement},
                         {"agreement_per_class", agreement_per_class},
                         {"diversity_generated", diversity_generated},
                         {"diversity_real", diversity_real},
                         {"diversity_ratio", diversity_ratio},
                         {"diversity_ratio_per_class", diversity_ratio_per_class},
                         {"colour_diversity_generated", colour_diversity_generated},
                         {"colour_diversity_real", colour_diversity_real},
                         {"colour_diversity_ratio", number(colour_diversity_ratio)},
                         {"colour_diversity_ratio_per_class", per_class},
                         {"frechet_distance", frechet_distance},
                         {"frechet_distance_per_class", frechet_distance_per_class}};
  if (!part_names.empty()) {
    json["part_names"] = part_names;
    json["part_areas_generated"] = part_areas_generated;
    json["part_areas_real"] = part_areas_real;
    json["part_area_error_per_class"] = part_area_error_per_class;
    json["part_area_error"] = part_area_error;
  }
  return json;
}

GeneratorEvaluation evaluate_generator(const Generator& generator, const Classifier& classifier,
                                       const std::string& world, int64_t samples_per_class, double psi, uint64_t seed,
                                       const fs::path& fashion_folder, const fs::path& segmenter) {
  training::check_world(world);
  std::unique_ptr<PartSource> parts;
  if (!segmenter.empty()) parts = load_segmenter_parts(segmenter, classifier.device());
  const int64_t classes = static_cast<int64_t>(world_class_names(world).size());
  check_class_counts(generator, classifier, world, classes);
  if (samples_per_class < 2) throw Error("--samples-per-class", "must be >= 2");
  torch::NoGradGuard no_grad;
  GeneratorEvaluation e;
  e.psi = psi;
  e.samples_per_class = samples_per_class;
  FashionMnist test;
  if (world == "fashion")
    test = FashionMnist::load(fashion_folder.empty() ? default_fashion_folder() : fashion_folder, false);
  const ShapesWorld shapes(generator_training::kResolution);
  at::Generator rng = at::detail::createCPUGenerator(splitmix64(seed ^ 0x6576616cULL));
  int64_t agreeing = 0;
  std::vector<torch::Tensor> all_generated, all_real;
  if (parts) e.part_names = parts->part_names();
  for (int64_t c = 0; c < classes; ++c) {
    const GeneratedClass generated = generate_class(generator, classifier, parts.get(), c, samples_per_class, psi, rng);
    const torch::Tensor real_images = real_class_images(world, test, shapes, c, samples_per_class);
    const std::vector<torch::Tensor> real =
        in_chunks(real_images, [&](const torch::Tensor& images) { return classifier.features(images).cpu(); });
    if (parts) add_class_part_areas(e, *parts, generated, real_images);
    const auto generated_features = torch::cat(generated.features), real_features = torch::cat(real);
    all_generated.push_back(generated_features);
    all_real.push_back(real_features);
    add_class_features(e, generated_features, real_features, generated.agreeing, classes);
    add_class_colours(e, generated, real_images, classes);
    agreeing += generated.agreeing;
  }
  e.agreement = static_cast<double>(agreeing) / static_cast<double>(samples_per_class * classes);
  e.frechet_distance = frechet_distance(torch::cat(all_generated), torch::cat(all_real));
  if (parts)
    e.part_area_error = *std::max_element(e.part_area_error_per_class.begin(), e.part_area_error_per_class.end());
  e.diversity_ratio = e.diversity_real > 0 ? e.diversity_generated / e.diversity_real : 0.0;
  e.colour_diversity_ratio = diversity_ratio(e.colour_diversity_generated, e.colour_diversity_real);
  return e;
}

}  // namespace linkstyle
