// Tests for the selectivity statistics (selectivity.hpp) on synthetic profiles and nulls.
#include <cmath>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "linkstyle/selectivity.hpp"
#include "test_support.hpp"

namespace linkstyle {
namespace {

using testing::ScratchDir;

TEST(Selectivity, NormBinsAreQuantilesWithMedianNorms) {
  const auto bins = assign_norm_bins({5, 1, 2, 8, 3, 7, 4, 6}, 2);
  ASSERT_EQ(bins.norm.size(), 2u);
  EXPECT_EQ(bins.unit_bin, (std::vector<int64_t>{1, 0, 0, 1, 0, 1, 0, 1}));
  EXPECT_DOUBLE_EQ(bins.norm[0], 2.5);
  EXPECT_DOUBLE_EQ(bins.norm[1], 6.5);
  const auto equal = assign_norm_bins({2, 2, 2}, 3);
  EXPECT_EQ(equal.norm.size(), 1u);  // equal ranges never straddle bins
}

TEST(Selectivity, OnlyAChangeBeyondTheNullIsSignificant) {
  auto generator = at::detail::createCPUGenerator(3);
  const int64_t M = 200, C = 4;
  auto null_values = torch::randn({1, M, C}, generator, torch::kDouble);
  null_values.index_put_({0, torch::indexing::Slice(0, M - 3), 3}, NAN);  // concept 3: too few null values
  auto profile = torch::zeros({3, C}, torch::kDouble);
  profile[0][1] = 12.0;  // far beyond the null
  profile[0][2] = -6.0;  // also, but weaker
  profile[1][0] = 0.5;   // inside the null
  profile[2][2] = 2.5;   // p = 0.012 > 0.05 / 3
  profile[2][3] = 50.0;  // not testable
  const auto result = score_selectivity(profile, {0, 0, 0}, null_values, 0.05);
  EXPECT_EQ(result.label, (std::vector<int64_t>{1, -1, -1}));
  EXPECT_TRUE(result.significant[0][1].item<bool>());
  EXPECT_TRUE(result.significant[0][2].item<bool>());
  EXPECT_FALSE(result.significant[1][0].item<bool>());
  EXPECT_FALSE(result.significant[2][2].item<bool>());
  EXPECT_TRUE(std::isnan(result.z[2][3].item<double>()));
  const double mean = null_values[0].select(1, 1).mean().item<double>();
  const double sd = null_values[0].select(1, 1).std().item<double>();
  EXPECT_NEAR(result.z[0][1].item<double>(), (12.0 - mean) / sd, 1e-9);
  EXPECT_NEAR(result.p_empirical[0][1].item<double>(), 1.0 / (M + 1), 1e-12);
  testing::expect_error([&] { score_selectivity(profile, {0, 1, 0}, null_values, 0.05); }, {"bin"});
}

TEST(Selectivity, AConstantNullIsNotTested) {
  // 0.1 is not exact in binary: a one-pass variance would leave a tiny positive rest.
  const auto null_values = torch::full({1, 40, 2}, 0.1, torch::kDouble);
  null_values.select(2, 1).copy_(torch::randn({1, 40}, at::detail::createCPUGenerator(2), torch::kDouble));
  const auto profile = torch::tensor({{0.1000001, 0.0}}, torch::kDouble);
  const auto result = score_selectivity(profile, {0}, null_values, 0.05);
  EXPECT_TRUE(std::isnan(result.z[0][0].item<double>()));
  EXPECT_FALSE(result.significant[0][0].item<bool>());
  EXPECT_TRUE(std::isfinite(result.z[0][1].item<double>()));
  EXPECT_EQ(result.label[0], -1);
}

}  // namespace
}  // namespace linkstyle
