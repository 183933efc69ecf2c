// Tests for the selectivity statistics (selectivity.hpp) on synthetic profiles and nulls.
#include <cmath>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "linkstyle/selectivity.hpp"
#include "sweep/null_directions.hpp"
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
  profile[2][2] = 2.5;   // several null values lie beyond it
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

TEST(Selectivity, BenjaminiHochbergMatchesHandComputedValues) {
  // p sorted: 0.01, 0.02, 0.03, 0.04, 0.5 (m = 5): p m / k = 0.05, 0.05, 0.05, 0.05, 0.5, and the
  // running minimum from the top leaves them so; NaN is not a test.
  const double nan = std::nan("");
  const auto p = torch::tensor({0.04, nan, 0.01, 0.5, 0.03, 0.02}, torch::kDouble).reshape({2, 3});
  const auto q = benjamini_hochberg(p);
  const std::vector<double> expected = {0.05, nan, 0.05, 0.5, 0.05, 0.05};
  for (int64_t i = 0; i < 6; ++i) {
    const double value = q.reshape({-1})[i].item<double>();
    if (std::isnan(expected[size_t(i)]))
      EXPECT_TRUE(std::isnan(value));
    else
      EXPECT_NEAR(value, expected[size_t(i)], 1e-12) << i;
  }
  // A larger p earlier in the order pulls the q of a smaller one down to its own: p = 0.01 and
  // 0.011 with m = 2 give q = 0.02 and 0.011 -> 0.011 for both.
  const auto pulled = benjamini_hochberg(torch::tensor({0.01, 0.011}, torch::kDouble));
  EXPECT_NEAR(pulled[0].item<double>(), 0.011, 1e-12);
  EXPECT_NEAR(pulled[1].item<double>(), 0.011, 1e-12);
}

TEST(Selectivity, FalseDiscoveriesAreControlledOverAllUnits) {
  // 400 units x 10 concepts drawn from the null itself: with the false discovery rate held at
  // 0.05 over all 4000 tests, (almost) none is significant; per-unit Bonferroni would pass
  // about 4000 x 0.005 = 20 tests before the empirical guard.
  auto generator = at::detail::createCPUGenerator(11);
  const int64_t U = 400, C = 10, M = 2000;
  const auto null_values = torch::randn({1, M, C}, generator, torch::kDouble);
  auto profile = torch::randn({U, C}, generator, torch::kDouble);
  const auto result = score_selectivity(profile, std::vector<int64_t>(U, 0), null_values, 0.05);
  EXPECT_LE(result.significant.sum().item<int64_t>(), 2);
  // Real effects among them are still found.
  profile.slice(0, 0, 20).select(1, 0).fill_(8.0);
  const auto planted = score_selectivity(profile, std::vector<int64_t>(U, 0), null_values, 0.05);
  EXPECT_EQ(planted.significant.slice(0, 0, 20).select(1, 0).sum().item<int64_t>(), 20);
}

TEST(Selectivity, AHeavyTailedNullDoesNotMakeUnitsSelective) {
  // Changes whose spread varies from draw to draw (a normal times a log-normal scale: far
  // heavier tails than a normal) for the null and for 400 units alike. With p from the normal
  // tail, the units beyond every null value would pass with tiny p; with p from the pooled null
  // tail they do not, while a change far beyond it still does.
  auto generator = at::detail::createCPUGenerator(5);
  const int64_t U = 400, C = 10, M = 128;
  const auto heavy = [&](std::vector<int64_t> sizes) {
    return torch::randn(sizes, generator, torch::kDouble) * torch::randn(sizes, generator, torch::kDouble).exp();
  };
  const auto null_values = heavy({1, M, C});
  auto profile = heavy({U, C});
  const std::vector<int64_t> one_group(C, 0);
  const auto result = score_selectivity(profile, std::vector<int64_t>(U, 0), null_values, 0.05, one_group);
  EXPECT_LE(result.significant.sum().item<int64_t>(), 2);
  int64_t beyond_every_null = 0, normal_tiny = 0;
  for (int64_t u = 0; u < U; ++u)
    for (int64_t c = 0; c < C; ++c) {
      beyond_every_null += result.p_empirical[u][c].item<double>() <= 1.0 / (M + 1) + 1e-12;
      normal_tiny += std::erfc(std::fabs(result.z[u][c].item<double>()) / std::sqrt(2.0)) < 1e-5;
    }
  EXPECT_GT(beyond_every_null, 10);  // the guard alone lets these through
  EXPECT_GT(normal_tiny, 5);         // and the normal tail would call them certain
  profile.slice(0, 0, 5).select(1, 3).fill_(5000.0);
  const auto planted = score_selectivity(profile, std::vector<int64_t>(U, 0), null_values, 0.05, one_group);
  EXPECT_EQ(planted.significant.slice(0, 0, 5).select(1, 3).sum().item<int64_t>(), 5);
  testing::expect_error([&] { score_selectivity(profile, std::vector<int64_t>(U, 0), null_values, 0.05, {0}); },
                        {"tail group"});
}

TEST(Selectivity, NullDirectionsLieAlongTheDiagonalAsMuchAsOneUnit) {
  // A unit's axis e_i has cosine 1 / sqrt(D) with the all-ones diagonal; so must every null
  // direction, with the rest spread at random: about as many coordinates up as down, and
  // nearly orthogonal to each other.
  const int64_t D = 256, N = 64;
  const auto diagonal = torch::ones({D}) / std::sqrt(double(D));
  std::vector<torch::Tensor> directions;
  for (int64_t d = 0; d < N; ++d) {
    const auto u = null_direction(136, d, D);
    ASSERT_EQ(u.numel(), D);
    EXPECT_NEAR(u.norm().item<double>(), 1.0, 1e-5);
    EXPECT_NEAR(u.dot(diagonal).item<double>(), 1.0 / std::sqrt(double(D)), 1e-5);
    const double positive = (u > 0).to(torch::kDouble).mean().item<double>();
    EXPECT_GT(positive, 0.35);
    EXPECT_LT(positive, 0.65);
    directions.push_back(u);
  }
  const auto stacked = torch::stack(directions);
  const auto cosines = stacked.mm(stacked.t()) - torch::eye(N);
  EXPECT_LT(cosines.abs().max().item<double>(), 0.35);
  EXPECT_TRUE(null_direction(136, 5, D).equal(null_direction(136, 5, D)));
  EXPECT_FALSE(null_direction(136, 5, D).equal(null_direction(137, 5, D)));
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
