// The pairs' geometry behind the realistic counterfactuals and every realism figure
// (counterfactual.hpp).
#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <torch/torch.h>

#include "../quantile.hpp"
#include "linkstyle/counterfactual.hpp"
#include "linkstyle/errors.hpp"
#include "linkstyle/pairs.hpp"
#include "linkstyle/tuning_set.hpp"

namespace linkstyle {

namespace {

// Mean distance of each row of x to its k nearest rows of references; `self` leaves row i of
// x (= references) out of its own neighbours.
torch::Tensor neighbour_distances(const torch::Tensor& x, const torch::Tensor& references, int64_t k, bool self) {
  auto distances = torch::cdist(x.to(torch::kDouble), references.to(torch::kDouble));
  if (self) distances.fill_diagonal_(INFINITY);
  return std::get<0>(distances.topk(k, 1, false)).mean(1);
}

}  // namespace

RealismReference RealismReference::of(const torch::Tensor& features, int64_t neighbours, double quantile_share) {
  if (features.dim() != 2 || features.size(0) < neighbours + 2)
    throw Error("realism reference", fmt::format("needs at least {} reference rows, got {}", neighbours + 2,
                                                 features.dim() == 2 ? features.size(0) : 0));
  if (!torch::isfinite(features).all().item<bool>()) throw Error("realism reference", "features contain NaN/Inf");
  const torch::NoGradGuard no_grad;
  RealismReference reference;
  reference.features = features.to(torch::kFloat32).contiguous();
  reference.neighbours = neighbours;
  const auto own = neighbour_distances(reference.features, reference.features, neighbours, true).to(torch::kCPU);
  std::vector<double> values(own.data_ptr<double>(), own.data_ptr<double>() + own.numel());
  reference.median_distance = quantile(values, 0.5);
  if (!(reference.median_distance > 0))
    throw Error("realism reference", "the reference rows coincide: their neighbour distance is 0");
  for (auto& value : values) value /= reference.median_distance;
  reference.threshold = quantile(values, quantile_share);
  return reference;
}

torch::Tensor RealismReference::ratios(const torch::Tensor& x) const {
  const torch::NoGradGuard no_grad;
  return (neighbour_distances(x.to(features.device()), features, neighbours, false) / median_distance)
      .to(torch::kCPU);
}

RealisticTerms ClassGeometry::terms_for(int64_t source, int64_t target) const {
  if (!covariance.defined() || !class_means.count(source) || !class_means.count(target))
    throw Error(pairs_file, fmt::format("holds no pairs of class {}: realistic counterfactuals need the pairs of both "
                                        "classes",
                                        class_means.count(source) ? target : source));
  return {covariance, class_means.at(source) - class_means.at(target), &reference};
}

ClassGeometry class_geometry(const StudyConfig& study, const Classifier& classifier, int64_t target,
                             bool with_covariance) {
  const torch::NoGradGuard no_grad;
  const auto manifest = PairsManifest::load(study.pairs_folder());
  if (!manifest.complete)
    throw Error(manifest.file(), "the pairs are incomplete: realistic counterfactuals need them (run `linkstyle pairs`)");
  std::optional<int64_t> target_label;
  for (const auto& c : manifest.classes)
    if (c.classifier_class == target) target_label = c.generator_class;
  if (!target_label)
    throw Error(manifest.file(), fmt::format("holds no pairs of class {} ({}): the counterfactuals' realism is "
                                             "measured against them",
                                             target, classifier.class_name(target)));
  const int64_t limit = study.counterfactual.realism_references;
  std::vector<torch::Tensor> features, latents;
  int64_t gathered = 0;
  for_each_labelled_pair_shard(manifest, [&](const torch::Tensor& r, const torch::Tensor& w,
                                             const torch::Tensor& labels, int64_t) {
    if (gathered >= limit) return;
    auto rows = (labels == *target_label).nonzero().squeeze(1);
    rows = rows.slice(0, 0, std::min<int64_t>(rows.numel(), limit - gathered));
    features.push_back(r.index_select(0, rows).clone());
    latents.push_back(w.index_select(0, rows).clone());
    gathered += rows.numel();
  });
  const auto device = classifier.device();
  ClassGeometry geometry;
  geometry.pairs_file = manifest.file();
  try {
    geometry.reference = RealismReference::of(torch::cat(features).to(device), study.counterfactual.realism_neighbours,
                                              study.counterfactual.realism_quantile);
  } catch (const Error& error) {
    throw Error(manifest.file(), fmt::format("class {} ({}): {}", target, classifier.class_name(target), error.what()));
  }
  geometry.reference_latents = torch::cat(latents);
  if (with_covariance) {
    const auto statistics = within_class_feature_statistics(study);
    geometry.covariance = statistics.covariance.to(device, torch::kFloat32);
    for (const auto& c : manifest.classes)
      if (statistics.means.count(c.generator_class))
        geometry.class_means[c.classifier_class] = statistics.means.at(c.generator_class).to(device, torch::kFloat32);
  }
  return geometry;
}

}  // namespace linkstyle
