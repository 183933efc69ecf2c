// The unit probes of the ground-truth check (see ground_truth.hpp): every unit's correlation and
// partial effect on the shapes world's factors, and on the concept levels measured in rendered or
// generated images.
#include "linkstyle/ground_truth.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <torch/torch.h>

#include "linkstyle/concept_changes.hpp"
#include "linkstyle/errors.hpp"
#include "linkstyle/generation.hpp"
#include "linkstyle/image_pipeline.hpp"
#include "linkstyle/part_measures.hpp"
#include "linkstyle/part_sources.hpp"
#include "linkstyle/worlds/shapes.hpp"

namespace linkstyle {

namespace {

constexpr double kPartialRidge = 1e-2;  // keeps units that duplicate each other apart

// Standardises every column within each class (constant columns become 0).
torch::Tensor standardise_within_classes(const torch::Tensor& x, const torch::Tensor& labels, int64_t classes) {
  auto out = torch::zeros_like(x);
  for (int64_t c = 0; c < classes; ++c) {
    const auto rows = (labels == c).nonzero().squeeze(1);
    if (rows.numel() < 2) continue;
    const auto block = x.index_select(0, rows);
    const auto sd = block.std(0, true, true);
    out.index_copy_(
        0, rows,
        torch::where(sd > 1e-12, (block - block.mean(0, true)) / sd.clamp_min(1e-12), torch::zeros_like(block)));
  }
  return out;
}

// Ridge regression of standardised targets [N, F] on standardised units [N, D]: [D, F].
torch::Tensor ridge_partials(const torch::Tensor& zr, const torch::Tensor& zy) {
  const int64_t D = zr.size(1);
  const double n = double(zr.size(0));
  const auto gram = zr.t().matmul(zr) / n + kPartialRidge * torch::eye(D, torch::kDouble);
  return torch::linalg_solve(gram, zr.t().matmul(zy) / n);
}

// Each unit's within-class standard deviation (pooled over classes).
torch::Tensor within_class_sd(const torch::Tensor& r, const torch::Tensor& labels, int64_t classes) {
  auto variance = torch::zeros({r.size(1)}, torch::kDouble);
  for (int64_t c = 0; c < classes; ++c) {
    const auto rows = (labels == c).nonzero().squeeze(1);
    if (rows.numel() >= 2) variance += r.index_select(0, rows).var(0, true) * double(rows.numel());
  }
  return (variance / double(r.size(0))).sqrt();
}

}  // namespace

UnitProbe probe_shapes_units(const Classifier& classifier, const ShapesBatch& rendered, int64_t batch_size) {
  const int64_t images = rendered.images.size(0);
  if (images < 12) throw Error("probe", "needs at least 12 images");
  const torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> features;
  for (int64_t start = 0; start < images; start += batch_size)
    features.push_back(
        classifier
            .features(rendered.images.slice(0, start, std::min(images, start + batch_size)).to(classifier.device()))
            .to(torch::kCPU, torch::kDouble));
  const auto r = torch::cat(features);
  const int64_t classes = int64_t(ShapesWorld::class_names().size());
  const auto zr = standardise_within_classes(r, rendered.labels, classes);
  const auto zf = standardise_within_classes(rendered.factors.to(torch::kDouble), rendered.labels, classes);
  UnitProbe probe;
  probe.factor_names = ShapesWorld::factor_names();
  const auto within = zr.t().matmul(zf) / double(images);  // [D, F]
  // Class membership: the correlation of each unit with each class's indicator over all images
  // (standardised as one class).
  const auto pooled_z = [&](const torch::Tensor& x) {
    return standardise_within_classes(x, torch::zeros({images}, torch::kLong), 1);
  };
  const auto indicators = torch::one_hot(rendered.labels, classes).to(torch::kDouble);
  const auto membership = pooled_z(r).t().matmul(pooled_z(indicators)) / double(images);  // [D, C]
  for (const auto& name : ShapesWorld::class_names()) probe.factor_names.push_back(class_factor(name));
  probe.correlation = torch::cat({within, membership}, 1);
  probe.partial = ridge_partials(zr, zf);
  probe.feature_sd = within_class_sd(r, rendered.labels, classes);
  const auto best = probe.correlation.abs().argmax(1);
  for (int64_t d = 0; d < probe.correlation.size(0); ++d) {
    const int64_t k = best[d].item<int64_t>();
    probe.best_factor.push_back(k);
    probe.best_correlation.push_back(probe.correlation[d][k].item<double>());
  }
  return probe;
}

UnitProbe probe_shapes_units(const Classifier& classifier, int64_t images, uint64_t seed, int64_t resolution,
                             int64_t batch_size) {
  if (images < 12) throw Error("probe", "needs at least 12 images");
  return probe_shapes_units(classifier, ShapesWorld(resolution).render_class_balanced(images, seed), batch_size);
}

torch::Tensor concept_levels(const std::vector<std::vector<PartMeasures>>& parts, const torch::Tensor& classes,
                             int64_t side) {
  const auto& factors = measured_factors();
  const int64_t n = int64_t(parts.size());
  if (classes.numel() != n) throw Error("ground truth", "concept levels: one class per image is needed");
  const auto labels = classes.to(torch::kCPU, torch::kLong).contiguous();
  const auto label = labels.accessor<int64_t, 1>();
  auto levels = torch::full({n, int64_t(factors.size())}, NAN, torch::kDouble);
  auto out = levels.accessor<double, 2>();
  const double min_area = minimum_part_area(side);
  const int64_t class_count = int64_t(ShapesWorld::class_names().size());
  for (int64_t i = 0; i < n; ++i) {
    if (label[i] < 0 || label[i] >= class_count)
      throw Error("ground truth", fmt::format("class {} is not a shapes class", label[i]));
    for (size_t f = 0; f < factors.size(); ++f) {
      const int64_t part = factors[f].part_of_class(label[i]);
      const auto found = std::find_if(parts[size_t(i)].begin(), parts[size_t(i)].end(),
                                      [&](const PartMeasures& m) { return m.part == int(part); });
      if (found == parts[size_t(i)].end() || !(found->area >= min_area)) continue;
      const auto& m = *found;
      const auto& measure = factors[f].measure;
      double value = NAN;
      if (measure == "area")
        value = m.area / double(side * side);
      else if (measure == "luminance")
        value = m.luminance / 85.0;
      else if (measure == "entropy")
        value = m.entropy;
      else if (measure == "texture")
        value = m.texture;
      else if (measure == "hue")
        value = m.saturation >= kMinimumSaturationForHue ? m.hue_degrees : double(NAN);
      else if (measure == "saturation")
        value = m.saturation;
      else if (measure == "angle")
        value = m.angle_degrees;
      else if (measure == "centre_x")
        value = m.centre_x / double(side);
      else if (measure == "centre_y")
        value = m.centre_y / double(side);
      else
        throw Error("ground truth", "no level for the measure '" + measure + "'");
      out[i][int64_t(f)] = value;
    }
  }
  return levels;
}

ConceptProbe probe_concept_levels(const torch::Tensor& features, const torch::Tensor& levels,
                                  const torch::Tensor& classes) {
  const auto& factors = measured_factors();
  const int64_t n = features.size(0), F = int64_t(factors.size());
  if (levels.size(0) != n || classes.numel() != n || levels.size(1) != F)
    throw Error("ground truth", "concept probe: features, levels and classes differ in their images");
  const int64_t class_count = int64_t(ShapesWorld::class_names().size());
  const auto r = features.to(torch::kCPU, torch::kDouble);
  const auto labels = classes.to(torch::kCPU, torch::kLong);
  ConceptProbe probe;
  probe.partial = torch::full({r.size(1), F}, NAN, torch::kDouble);
  probe.feature_sd = within_class_sd(r, labels, class_count);
  for (int64_t f = 0; f < F; ++f) {
    const auto column = levels.select(1, f).to(torch::kDouble);
    const auto rows = torch::isfinite(column).nonzero().squeeze(1);
    probe.images.push_back(rows.numel());
    if (rows.numel() < 12) continue;
    auto y = column.index_select(0, rows).clone();
    const auto row_labels = labels.index_select(0, rows);
    const auto& measure = factors[size_t(f)].measure;
    if (measure == "hue" || measure == "angle") {
      // Centre on each class's circular mean, so that a class whose hues straddle 0 stays whole.
      const double period = measure == "hue" ? 360.0 : 180.0;
      const double to_radians = 2 * M_PI / period;
      for (int64_t c = 0; c < class_count; ++c) {
        const auto in_class = row_labels == c;
        if (!in_class.any().item<bool>()) continue;
        const auto values = y.masked_select(in_class);
        const double mean = std::atan2(values.mul(to_radians).sin().mean().item<double>(),
                                       values.mul(to_radians).cos().mean().item<double>()) /
                            to_radians;
        auto centred = values.clone();
        auto a = centred.accessor<double, 1>();
        for (int64_t i = 0; i < centred.numel(); ++i) a[i] = wrap_degrees(a[i] - mean, period);
        y.masked_scatter_(in_class, centred);
      }
    }
    const auto zr = standardise_within_classes(r.index_select(0, rows), row_labels, class_count);
    const auto zy = standardise_within_classes(y.unsqueeze(1), row_labels, class_count);
    probe.partial.select(1, f).copy_(ridge_partials(zr, zy).squeeze(1));
  }
  return probe;
}

ConceptProbe probe_rendered_concepts(const Classifier& classifier, const PartSource& parts, const ShapesBatch& rendered,
                                     int64_t batch_size) {
  const auto measured = measure_images(classifier, parts, rendered.images, batch_size);
  return probe_concept_levels(
      measured.features, concept_levels(measured.parts, rendered.labels, rendered.images.size(2)), rendered.labels);
}

ConceptProbe probe_generated_concepts(const Classifier& classifier, const Generator& generator, const PartSource& parts,
                                      int64_t images, uint64_t seed, double psi, int64_t batch_size) {
  const torch::NoGradGuard no_grad;
  const auto& names = ShapesWorld::class_names();
  const int64_t classes = int64_t(names.size());
  if (generator.class_names() != names)
    throw Error(generator.file(), "its classes are not the shapes world's (in the shapes world's order)");
  if (images < 2 * classes) throw Error("probe", fmt::format("needs at least {} generated images", 2 * classes));
  std::vector<torch::Tensor> features, labels;
  std::vector<std::vector<PartMeasures>> measured;
  for (int64_t c = 0; c < classes; ++c) {
    const int64_t count = images / classes + (c < images % classes);
    for (int64_t start = 0, index = 0; start < count; start += batch_size, ++index) {
      const int64_t n = std::min(batch_size, count - start);
      const auto w = class_latents(generator, seed, c, index, n, psi);
      const auto batch = measure_images(classifier, parts, render_latents(generator, w), n);
      features.push_back(batch.features);
      labels.push_back(torch::full({n}, c, torch::kLong));
      measured.insert(measured.end(), batch.parts.begin(), batch.parts.end());
    }
  }
  const auto classes_of_images = torch::cat(labels);
  return probe_concept_levels(torch::cat(features), concept_levels(measured, classes_of_images, generator.resolution()),
                              classes_of_images);
}

}  // namespace linkstyle
