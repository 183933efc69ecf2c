#include "linkstyle/part_sources.hpp"

#include <torch/script.h>
#include <torch/torch.h>

#include <fmt/format.h>

#include "linkstyle/errors.hpp"
#include "splitmix.hpp"

namespace linkstyle {

namespace fs = std::filesystem;
namespace F = torch::nn::functional;

namespace {

std::string shape_text(const torch::Tensor& tensor) {
  std::string text = "[";
  for (int64_t i = 0; i < tensor.dim(); ++i) text += (i ? "," : "") + std::to_string(tensor.size(i));
  return text + "]";
}

void check_images(const torch::Tensor& images, const char* who) {
  if (images.dim() != 4 || images.size(1) != 3 || images.size(2) != images.size(3))
    throw Error(who, "expected images [N,3,R,R], got " + shape_text(images));
}

class SegmenterParts : public PartSource {
 public:
  SegmenterParts(const fs::path& file, const c10::Device& device) : file_(file), device_(device) {
    try {
      module_ = torch::jit::load(file.string(), device);
    } catch (const std::exception&) {
      throw Error(file, "not a readable TorchScript file");
    }
    module_.eval();
    if (!module_.find_method("segment")) throw Error(file, "has no method segment(images)");
    if (module_.hasattr("part_names")) {
      const auto value = module_.attr("part_names");
      if (!value.isList()) throw Error(file, "attribute 'part_names' must be a List[str]");
      for (const auto& name : value.toListRef()) {
        if (!name.isString()) throw Error(file, "attribute 'part_names' must be a List[str]");
        names_.push_back(name.toStringRef());
      }
    }
    // Probe once, so a broken file fails here and the part count is known.
    const torch::NoGradGuard no_grad;
    torch::Tensor logits;
    try {
      logits = module_.get_method("segment")({torch::full({1, 3, 32, 32}, 0.5, torch::TensorOptions().device(device))})
                   .toTensor();
    } catch (const std::exception& error) {
      throw Error(file, fmt::format("segment() failed on a 1x3x32x32 probe: {}", first_line(error.what())));
    }
    if (logits.dim() != 4 || logits.size(0) != 1 || logits.size(1) < 1)
      throw Error(file, "segment() must return logits [N,K,H,W], returned " + shape_text(logits));
    const int64_t count = logits.size(1);
    if (names_.empty())
      for (int64_t k = 0; k < count; ++k) names_.push_back(fmt::format("part {}", k));
    if (int64_t(names_.size()) != count)
      throw Error(file, fmt::format("part_names has {} names but segment() returns {} channels", names_.size(), count));
    identity_ = "segmenter:" + file_fingerprint(file);
  }

  std::string kind() const override { return "segmenter"; }
  const std::vector<std::string>& part_names() const override { return names_; }
  std::string identity() const override { return identity_; }

  torch::Tensor label(const torch::Tensor& images, const torch::Tensor&) const override {
    check_images(images, "segmenter");
    const torch::NoGradGuard no_grad;
    torch::Tensor logits;
    try {
      logits = const_cast<torch::jit::Module&>(module_).get_method("segment")({images.to(device_)}).toTensor();
    } catch (const c10::Error& error) {
      throw Error(file_, "segment() failed: " + first_line(error.what()));
    }
    if (logits.dim() != 4 || logits.size(0) != images.size(0) || logits.size(1) != int64_t(names_.size()))
      throw Error(file_, "segment() returned " + shape_text(logits) + " for " + shape_text(images));
    if (logits.size(2) != images.size(2) || logits.size(3) != images.size(3))
      logits = F::interpolate(logits, F::InterpolateFuncOptions()
                                          .size(std::vector<int64_t>{images.size(2), images.size(3)})
                                          .mode(torch::kBilinear)
                                          .align_corners(false));
    return logits.argmax(1).to(torch::kCPU, torch::kInt);
  }

 private:
  static std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }
  fs::path file_;
  c10::Device device_;
  torch::jit::Module module_;
  std::vector<std::string> names_;
  std::string identity_;
};

class KMeansParts : public PartSource {
 public:
  KMeansParts(Generator generator, torch::Tensor scales, torch::Tensor centres, std::string identity)
      : generator_(std::move(generator)),
        scales_(std::move(scales)),
        centres_(std::move(centres)),
        identity_(std::move(identity)) {
    for (int64_t k = 0; k < centres_.size(0); ++k) names_.push_back(fmt::format("cluster {}", k));
  }

  std::string kind() const override { return "kmeans"; }
  const std::vector<std::string>& part_names() const override { return names_; }
  bool needs_latents() const override { return true; }
  std::string identity() const override { return identity_; }

  // Per-pixel descriptors [N*R*R, C] of the feature maps of `latents`, at `side` x `side`.
  static torch::Tensor descriptors(const Generator& generator, const torch::Tensor& latents, int64_t side,
                                   const torch::Tensor& scales) {
    const torch::NoGradGuard no_grad;
    return map_descriptors(generator, generator.synthesis_features(latents), side, scales);
  }

  // The same from the maps themselves.
  static torch::Tensor map_descriptors(const Generator& generator, const std::vector<torch::Tensor>& maps, int64_t side,
                                       const torch::Tensor& scales) {
    std::vector<torch::Tensor> parts;
    for (size_t i = 0; i < maps.size(); ++i) {
      auto map = maps[i].to(torch::kCPU, torch::kFloat);
      if (map.dim() != 4) throw Error(generator.file(), "synthesis_features must return maps [N,C,H,W]");
      if (map.size(2) != side || map.size(3) != side)
        map = F::interpolate(map, F::InterpolateFuncOptions()
                                      .size(std::vector<int64_t>{side, side})
                                      .mode(torch::kBilinear)
                                      .align_corners(false));
      parts.push_back(scales.defined() ? map / scales[int64_t(i)] : map);
    }
    const auto all = torch::cat(parts, 1);
    return all.permute({0, 2, 3, 1}).reshape({-1, all.size(1)}).contiguous();
  }

  torch::Tensor label(const torch::Tensor& images, const torch::Tensor& latents) const override {
    return label_in_chunks(images, [&](int64_t start, int64_t end) {
      return descriptors(generator_, latents.slice(0, start, end), images.size(2), scales_);
    });
  }

  bool labels_feature_maps() const override { return true; }
  torch::Tensor label_feature_maps(const torch::Tensor& images, const std::vector<torch::Tensor>& maps) const override {
    if (int64_t(maps.size()) != scales_.size(0))
      throw Error(generator_.file(), fmt::format("synthesis_with_features returned {} maps; the k-means parts were "
                                                 "fitted on {}",
                                                 maps.size(), scales_.size(0)));
    return label_in_chunks(images, [&](int64_t start, int64_t end) {
      std::vector<torch::Tensor> chunk;
      for (const auto& map : maps) chunk.push_back(map.slice(0, start, end));
      return map_descriptors(generator_, chunk, images.size(2), scales_);
    });
  }

  // Labels of images [N,3,R,R] from the descriptors of images [start, end) (descriptors_of).
  template <typename Descriptors>
  torch::Tensor label_in_chunks(const torch::Tensor& images, const Descriptors& descriptors_of) const {
    check_images(images, "kmeans parts");
    const int64_t n = images.size(0), side = images.size(2);
    // Bound the descriptors held at once (about 8M floats), whatever the generator's size.
    const int64_t per_call = std::max<int64_t>(1, (int64_t(1) << 23) / (side * side * centres_.size(1)));
    std::vector<torch::Tensor> labels;
    for (int64_t start = 0; start < n; start += per_call)
      labels.push_back(nearest_centre(descriptors_of(start, std::min(n, start + per_call)), centres_));
    return torch::cat(labels).reshape({n, side, side}).to(torch::kInt);
  }

  static torch::Tensor nearest_centre(const torch::Tensor& points, const torch::Tensor& centres) {
    // |p - c|^2 = |p|^2 - 2 p.c + |c|^2; |p|^2 does not change the argmin.
    return (centres.pow(2).sum(1).unsqueeze(0) - 2.0 * points.matmul(centres.t())).argmin(1);
  }

 private:
  Generator generator_;
  torch::Tensor scales_, centres_;
  std::string identity_;
  std::vector<std::string> names_;
};

class WholeImageParts : public PartSource {
 public:
  std::string kind() const override { return "none"; }
  const std::vector<std::string>& part_names() const override { return names_; }
  std::string identity() const override { return "none"; }
  torch::Tensor label(const torch::Tensor& images, const torch::Tensor&) const override {
    check_images(images, "whole-image parts");
    return torch::zeros({images.size(0), images.size(2), images.size(3)}, torch::kInt);
  }

 private:
  std::vector<std::string> names_{"image"};
};

}  // namespace

torch::Tensor PartSource::label_feature_maps(const torch::Tensor&, const std::vector<torch::Tensor>&) const {
  throw Error(kind() + " parts", "do not come from the generator's feature maps");
}

std::unique_ptr<PartSource> load_segmenter_parts(const fs::path& file, const c10::Device& device) {
  if (!fs::exists(file)) throw Error(file, "no such segmenter file");
  return std::make_unique<SegmenterParts>(file, device);
}

std::unique_ptr<PartSource> fit_kmeans_parts(const Generator& generator, const torch::Tensor& latents, int64_t clusters,
                                             uint64_t seed, int64_t max_pixels, int64_t iterations) {
  if (!generator.has_synthesis_features())
    throw Error(generator.file(), "has no synthesis_features(w): k-means parts need the feature maps");
  if (clusters < 2) throw Error("kmeans parts", "need at least 2 clusters");
  const torch::NoGradGuard no_grad;
  const int64_t side = generator.resolution();
  const int64_t images = latents.size(0);
  constexpr int64_t kImagesPerCall = 16;  // bounds the memory of the feature maps held at once
  // Layer scales: the root mean square of each map over the fitting images.
  std::vector<double> sum_squares;
  std::vector<int64_t> values;
  for (int64_t start = 0; start < images; start += kImagesPerCall) {
    const auto maps = generator.synthesis_features(latents.slice(0, start, std::min(images, start + kImagesPerCall)));
    sum_squares.resize(maps.size(), 0.0);
    values.resize(maps.size(), 0);
    for (size_t i = 0; i < maps.size(); ++i) {
      sum_squares[i] += maps[i].to(torch::kCPU, torch::kDouble).pow(2).sum().item<double>();
      values[i] += maps[i].numel();
    }
  }
  auto scales = torch::empty({int64_t(sum_squares.size())});
  for (size_t i = 0; i < sum_squares.size(); ++i)
    scales[int64_t(i)] = std::max(1e-8, std::sqrt(sum_squares[i] / double(std::max<int64_t>(1, values[i]))));
  // Pixels: an even share of max_pixels from every call, drawn with the seed.
  auto generator_rng = at::detail::createCPUGenerator(splitmix64(seed ^ 0x6b6d65616e73ULL));
  std::vector<torch::Tensor> sampled;
  for (int64_t start = 0; start < images; start += kImagesPerCall) {
    const int64_t count = std::min(images, start + kImagesPerCall) - start;
    auto chunk = KMeansParts::descriptors(generator, latents.slice(0, start, start + count), side, scales);
    const int64_t keep = (max_pixels * count + images - 1) / images;
    if (chunk.size(0) > keep)
      chunk = chunk.index_select(0, torch::randperm(chunk.size(0), generator_rng, torch::kLong).slice(0, 0, keep));
    sampled.push_back(chunk.contiguous());
  }
  auto points = torch::cat(sampled).contiguous();
  const int64_t n = points.size(0);
  if (n < clusters) throw Error("kmeans parts", fmt::format("{} pixels cannot make {} clusters", n, clusters));
  // k-means++ start.
  auto centres = torch::empty({clusters, points.size(1)});
  auto first = torch::randint(n, {1}, generator_rng, torch::kLong).item<int64_t>();
  centres[0] = points[first];
  auto nearest = (points - centres[0]).pow(2).sum(1);
  for (int64_t k = 1; k < clusters; ++k) {
    const auto total = nearest.sum().item<double>();
    int64_t pick = 0;
    if (total > 0) {
      pick = torch::multinomial(nearest / total, 1, false, generator_rng).item<int64_t>();
    }
    centres[k] = points[pick];
    nearest = torch::minimum(nearest, (points - centres[k]).pow(2).sum(1));
  }
  // Lloyd iterations; an empty cluster keeps its centre.
  for (int64_t it = 0; it < iterations; ++it) {
    const auto assignment = KMeansParts::nearest_centre(points, centres);
    auto sums = torch::zeros_like(centres).index_add_(0, assignment, points);
    auto counts = torch::zeros({clusters}).index_add_(0, assignment, torch::ones({n}));
    const auto filled = counts > 0;
    auto updated = torch::where(filled.unsqueeze(1), sums / counts.clamp_min(1).unsqueeze(1), centres);
    const bool converged = torch::equal(updated, centres);
    centres = updated;
    if (converged) break;
  }
  // Number clusters by decreasing size (ties by index), so "cluster 0" is the most common.
  const auto counts =
      torch::zeros({clusters}).index_add_(0, KMeansParts::nearest_centre(points, centres), torch::ones({n}));
  std::vector<int64_t> order(clusters);
  for (int64_t k = 0; k < clusters; ++k) order[k] = k;
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return counts[a].item<float>() > counts[b].item<float>(); });
  centres = centres.index_select(0, torch::tensor(order, torch::kLong)).contiguous();
  const std::string identity = fmt::format("kmeans:{}:k={}:seed={}:pixels={}:iterations={}",
                                           file_fingerprint(generator.file()), clusters, seed, max_pixels, iterations);
  return std::make_unique<KMeansParts>(generator, scales, centres, identity);
}

std::unique_ptr<PartSource> whole_image_parts() { return std::make_unique<WholeImageParts>(); }

std::unique_ptr<PartSource> make_part_source(const StudyConfig& study, const Generator& generator,
                                             const torch::Tensor& tuning_latents, const c10::Device& device) {
  std::string kind = study.sweep.parts;
  if (kind == "auto")
    kind = !study.segmenter.empty() ? "segmenter" : generator.has_synthesis_features() ? "kmeans" : "none";
  if (kind == "segmenter") {
    if (study.segmenter.empty())
      throw Error(study.config_file(), "sweep.parts is \"segmenter\" but models.segmenter is not set");
    return load_segmenter_parts(study.segmenter, device);
  }
  if (kind == "kmeans")
    return fit_kmeans_parts(generator, tuning_latents.to(generator.device()), study.sweep.kmeans_parts,
                            study.sweep.seed);
  return whole_image_parts();
}

}  // namespace linkstyle
