#include "linkstyle/tuning_set.hpp"

#include <algorithm>
#include <map>

#include <fmt/format.h>
#include <torch/torch.h>

#include "linkstyle/errors.hpp"
#include "linkstyle/generation.hpp"
#include "linkstyle/pairs.hpp"
#include "linkstyle/tensor_io.hpp"

namespace linkstyle {

TuningSet make_tuning_set(const StudyConfig& study, const Classifier& classifier, const Generator& generator,
                          const LinkingNetwork& network) {
  const torch::NoGradGuard no_grad;
  const auto& p = study.pairs;
  const auto& s = study.sweep;
  std::vector<torch::Tensor> features, generator_classes, classifier_classes;
  // A small fixed batch: the tuning set is made before the sweep measures what a batch takes, and
  // its features (part of the run's identity) then never depend on sweep.batch_size.
  const int64_t batch = std::min<int64_t>(s.batch_size, 16);
  for (const StudyClass& study_class : study_classes(study, classifier, generator)) {
    const int64_t c = study_class.generator_class;
    const int64_t k = study_class.classifier_class;
    const auto w = class_latents(generator, s.seed, c, 0, s.samples_per_class, p.psi);
    for (int64_t start = 0; start < s.samples_per_class; start += batch) {
      const auto images = render_latents(generator, w.slice(0, start, std::min(start + batch, s.samples_per_class)));
      features.push_back(encode_images(classifier, images).to(torch::kCPU, torch::kFloat));
    }
    generator_classes.push_back(torch::full({s.samples_per_class}, c, torch::kLong));
    classifier_classes.push_back(torch::full({s.samples_per_class}, k, torch::kLong));
  }
  TuningSet tuning;
  tuning.features = torch::cat(features).contiguous();
  if (!torch::isfinite(tuning.features).all().item<bool>())
    throw Error(classifier.file(), "features() returned NaN or Inf for the tuning samples");
  if (tuning.features.size(1) != network.feature_dim())
    throw Error(study.linking_file(), fmt::format("maps {} features but the classifier has {}", network.feature_dim(),
                                                  tuning.features.size(1)));
  tuning.latents = network.apply(tuning.features).to(torch::kCPU, torch::kFloat).contiguous();
  tuning.generator_classes = torch::cat(generator_classes);
  tuning.classifier_classes = torch::cat(classifier_classes);
  tuning.range_min = std::get<0>(tuning.features.min(0)).contiguous();
  tuning.range_max = std::get<0>(tuning.features.max(0)).contiguous();
  if (s.direction == "conditional") tuning.covariance = within_class_feature_covariance(study);
  return tuning;
}

torch::Tensor within_class_feature_covariance(const StudyConfig& study) {
  return within_class_feature_statistics(study).covariance;
}

WithinClassStatistics within_class_feature_statistics(const StudyConfig& study) {
  const torch::NoGradGuard no_grad;
  const auto manifest = PairsManifest::load(study.pairs_folder());
  if (!manifest.complete)
    throw Error(manifest.file(), "the pairs are incomplete: a conditional sweep needs them (run `linkstyle pairs`)");
  const int64_t D = manifest.feature_dim;
  // Sigma_W (N - C) = sum_n r_n r_n^T - sum_c n_c mean_c mean_c^T, about a reference row. The
  // features and labels come checked from for_each_labelled_pair_shard.
  torch::Tensor shift, gram = torch::zeros({D, D}, torch::kDouble);
  std::map<int64_t, std::pair<torch::Tensor, int64_t>> class_sums;
  for_each_labelled_pair_shard(manifest, [&](const torch::Tensor& r, const torch::Tensor&, const torch::Tensor& labels,
                                             int64_t) {
    auto x = r.to(torch::kDouble);
    if (!shift.defined()) shift = x.mean(0);
    x -= shift;
    gram += x.t().matmul(x);
    const auto classes = std::get<0>(at::_unique(labels));
    for (int64_t i = 0; i < classes.numel(); ++i) {
      const int64_t c = classes[i].item<int64_t>();
      const auto rows = (labels == c).nonzero().squeeze(1);
      auto& entry = class_sums[c];
      const auto sum = x.index_select(0, rows).sum(0);
      entry.first = entry.first.defined() ? entry.first + sum : sum;
      entry.second += rows.numel();
    }
  });
  int64_t total = 0;
  WithinClassStatistics statistics;
  for (const auto& [c, entry] : class_sums) {
    gram -= torch::outer(entry.first, entry.first) / double(entry.second);
    total += entry.second;
    statistics.means[c] = entry.first / double(entry.second) + shift;
    statistics.counts[c] = entry.second;
  }
  const int64_t dof = total - int64_t(class_sums.size());
  if (dof < 2) throw Error(manifest.file(), "holds too few pairs per class for a within-class covariance");
  statistics.covariance = ((gram + gram.t()) / (2.0 * double(dof))).contiguous();
  return statistics;
}

torch::Tensor TuningSet::unit_directions(const std::vector<int64_t>& units) const {
  const int64_t D = features.size(1);
  const auto index = torch::tensor(units, torch::kLong);
  const auto axes = torch::eye(D, torch::kDouble).index_select(0, index);
  if (!covariance.defined()) return axes;
  const auto columns = covariance.index_select(0, index);  // rows = columns (symmetric)
  const auto diagonal = columns.gather(1, index.unsqueeze(1));
  return torch::where(diagonal > 0, columns / diagonal.clamp_min(1e-300), axes);
}

torch::Tensor TuningSet::along(const torch::Tensor& direction) const {
  const auto u = direction.to(torch::kDouble);
  return covariance.defined() ? covariance.mv(u) : u;
}

torch::Tensor unit_sweep_values(const TuningSet& tuning, const std::vector<int64_t>& units, int64_t steps) {
  const auto index = torch::tensor(units, torch::kLong);
  const auto low = tuning.range_min.index_select(0, index).unsqueeze(1);
  const auto high = tuning.range_max.index_select(0, index).unsqueeze(1);
  const auto fraction = torch::linspace(0.0, 1.0, steps, torch::kFloat).unsqueeze(0);
  // Weighted so that the ends are the minimum and the maximum exactly ([U, T]).
  return low * (1.0 - fraction) + high * fraction;
}

torch::Tensor unit_sweep_latents(const LinkingNetwork& network, const TuningSet& tuning,
                                 const std::vector<int64_t>& units, int64_t steps) {
  const torch::NoGradGuard no_grad;
  for (int64_t u : units)
    if (u < 0 || u >= tuning.features.size(1))
      throw Error("sweep", fmt::format("unit {} is out of range [0, {})", u, tuning.features.size(1)));
  const auto index = torch::tensor(units, torch::kLong);
  const auto values = unit_sweep_values(tuning, units, steps);      // [U, T]
  const auto current = tuning.features.index_select(1, index).t();  // [U, S]
  // w's step per unit of r_i: A d_u [U, w_dim] (the isolated sweep's is A[:, u] exactly).
  const auto columns = tuning.covariance.defined()
                           ? tuning.unit_directions(units)
                                 .matmul(network.weight.to(torch::kCPU, torch::kDouble).t())
                                 .to(torch::kFloat)
                           : network.weight.to(torch::kCPU, torch::kFloat).index_select(1, index).t();
  const auto delta = values.unsqueeze(1) - current.unsqueeze(2);                                  // [U, S, T]
  const auto latents =
      tuning.latents.unsqueeze(0).unsqueeze(2) + delta.unsqueeze(3) * columns.unsqueeze(1).unsqueeze(2);
  return latents.reshape({-1, tuning.latents.size(1)}).contiguous();
}

}  // namespace linkstyle
