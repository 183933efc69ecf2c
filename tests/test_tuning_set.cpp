// Tests for the tuning samples and unit sweep latents (tuning_set.hpp).
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "linkstyle/pairs.hpp"
#include "linkstyle/tensor_io.hpp"
#include "linkstyle/tuning_set.hpp"
#include "sweep_study.hpp"
#include "test_support.hpp"

namespace linkstyle {
namespace {

using testing::make_sweep_study;
using testing::ScratchDir;

TEST(TuningSet, UnitSweepLatentsSetOneUnitAndKeepTheOthers) {
  ScratchDir dir("sweep-latents");
  const auto study = make_sweep_study(dir.path());
  const auto tuning = make_tuning_set(study.config, study.classifier, study.generator, study.network);
  ASSERT_EQ(tuning.size(), 3 * 2);
  EXPECT_TRUE(torch::all(tuning.range_max >= tuning.range_min).item<bool>());
  const std::vector<int64_t> units = {3, 7};
  const int64_t T = 4;
  const auto latents = unit_sweep_latents(study.network, tuning, units, T);
  ASSERT_EQ(latents.size(0), 2 * tuning.size() * T);
  for (size_t u = 0; u < units.size(); ++u)
    for (int64_t s = 0; s < tuning.size(); ++s)
      for (int64_t t = 0; t < T; ++t) {
        auto r = tuning.features[s].clone();
        const double low = tuning.range_min[units[u]].item<double>(), high = tuning.range_max[units[u]].item<double>();
        r[units[u]] = low + (high - low) * double(t) / double(T - 1);
        const auto expected = study.network.apply(r.unsqueeze(0))[0];
        const auto actual = latents[(int64_t(u) * tuning.size() + s) * T + t];
        EXPECT_TRUE(torch::allclose(actual, expected, 1e-4, 1e-4))
            << "unit " << units[u] << " sample " << s << " step " << t;
      }
  testing::expect_error([&] { unit_sweep_latents(study.network, tuning, {99}, 3); }, {"unit 99", "out of range"});
}

// The pooled within-class covariance of the pairs' features, computed directly.
torch::Tensor direct_within_class_covariance(const StudyConfig& study) {
  const auto manifest = PairsManifest::load(study.pairs_folder());
  std::vector<torch::Tensor> features, labels;
  for (const auto& shard : manifest.shards) {
    features.push_back(MappedNpy(manifest.folder / shard.features).tensor().to(torch::kDouble));
    labels.push_back(MappedNpy(manifest.folder / shard.labels).tensor().clone());
  }
  const auto r = torch::cat(features), y = torch::cat(labels);
  auto scatter = torch::zeros({r.size(1), r.size(1)}, torch::kDouble);
  int64_t classes = 0;
  for (int64_t c = 0; c <= y.max().item<int64_t>(); ++c) {
    const auto rows = r.index_select(0, (y == c).nonzero().squeeze(1));
    if (rows.size(0) == 0) continue;
    const auto centred = rows - rows.mean(0, true);
    scatter += centred.t().matmul(centred);
    ++classes;
  }
  return scatter / double(r.size(0) - classes);
}

TEST(TuningSet, ConditionalSweepMovesAlongTheUnitsWithinClassCovariance) {
  ScratchDir dir("conditional-latents");
  auto study = make_sweep_study(dir.path());
  study.config.sweep.direction = "conditional";
  const auto tuning = make_tuning_set(study.config, study.classifier, study.generator, study.network);
  ASSERT_TRUE(tuning.covariance.defined());
  const auto sigma = direct_within_class_covariance(study.config);
  EXPECT_TRUE(torch::allclose(tuning.covariance, sigma, 1e-6, 1e-6 * sigma.abs().max().item<double>()));
  const std::vector<int64_t> units = {2, 5};
  const int64_t T = 3;
  const auto latents = unit_sweep_latents(study.network, tuning, units, T);
  for (size_t u = 0; u < units.size(); ++u) {
    const int64_t i = units[u];
    const auto direction = sigma.select(1, i) / sigma[i][i];
    for (int64_t s = 0; s < tuning.size(); ++s)
      for (int64_t t = 0; t < T; ++t) {
        const double low = tuning.range_min[i].item<double>(), high = tuning.range_max[i].item<double>();
        const double value = low + (high - low) * double(t) / double(T - 1);
        // r_i takes the sweep's value; the other units follow their covariance with it.
        const auto r = tuning.features[s].to(torch::kDouble) + direction * (value - tuning.features[s][i].item<double>());
        EXPECT_NEAR(r[i].item<double>(), value, 1e-9);
        const auto expected = study.network.apply(r.to(torch::kFloat).unsqueeze(0))[0];
        EXPECT_TRUE(torch::allclose(latents[(int64_t(u) * tuning.size() + s) * T + t], expected, 1e-4, 1e-4))
            << "unit " << i << " sample " << s << " step " << t;
      }
  }
  // The isolated sweep has no covariance, and its directions are the axes.
  study.config.sweep.direction = "isolated";
  const auto isolated = make_tuning_set(study.config, study.classifier, study.generator, study.network);
  EXPECT_FALSE(isolated.covariance.defined());
  EXPECT_TRUE(torch::equal(isolated.unit_directions({1}), torch::eye(tuning.features.size(1), torch::kDouble)[1].unsqueeze(0)));
  // The whole conditional sweep runs and labels its units.
  study.config.sweep.direction = "conditional";
  const auto summary = study.run();
  EXPECT_EQ(summary.units, 6);
  EXPECT_GT(summary.images, 0);
}

}  // namespace
}  // namespace linkstyle
