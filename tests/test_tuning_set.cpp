// Tests for the tuning samples and unit sweep latents (tuning_set.hpp).
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

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

}  // namespace
}  // namespace linkstyle
