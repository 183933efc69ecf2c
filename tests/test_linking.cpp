// Tests of linkstyle/linking.hpp: the streamed sufficient statistics, the OLS / ridge / GCV solver
// against float64 closed forms and scikit-learn, the network file, the metrics and the split.
#include "linkstyle/linking.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "linkstyle/errors.hpp"
#include "linkstyle/tensor_io.hpp"
#include "test_support.hpp"

namespace {

namespace fs = std::filesystem;
using linkstyle::Error;
using linkstyle::FitMethod;
using linkstyle::FitOptions;
using linkstyle::FitReport;
using linkstyle::LinkingMetrics;
using linkstyle::LinkingNetwork;
using linkstyle::LinkingStatistics;
using linkstyle::solve_linking_network;
using linkstyle::testing::ScratchDir;

const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);

// ||actual - expected||_F / ||expected||_F, in float64.
double relative_error(const torch::Tensor& actual, const torch::Tensor& expected) {
  auto a = actual.to(torch::kCPU, torch::kFloat64);
  auto e = expected.to(torch::kCPU, torch::kFloat64);
  EXPECT_EQ(a.sizes(), e.sizes());
  return (a - e).norm().item<double>() / e.norm().item<double>();
}

// Prints a measured figure so that the agreement levels are visible in the test log.
void figure(const std::string& name, double value) {
  std::cout << "[  FIGURE  ] " << name << " = " << std::scientific << std::setprecision(3) << value << std::defaultfloat
            << std::endl;
}

// Feeds (x, y) to fresh statistics in consecutive chunks of the given row counts (which must sum
// to the number of rows).
LinkingStatistics accumulate(const torch::Tensor& x, const torch::Tensor& y, const std::vector<int64_t>& chunks) {
  LinkingStatistics stats(x.size(1), y.size(1));
  int64_t begin = 0;
  for (int64_t rows : chunks) {
    stats.add(x.slice(0, begin, begin + rows), y.slice(0, begin, begin + rows), "chunk");
    begin += rows;
  }
  EXPECT_EQ(begin, x.size(0)) << "chunk sizes do not cover the data";
  EXPECT_EQ(stats.count(), x.size(0));
  return stats;
}

struct Reference {
  torch::Tensor weight;  // [w_dim, D] float64
  torch::Tensor bias;    // [w_dim] float64
};

// OLS with intercept by float64 lstsq on [X, 1] (full-rank data only).
Reference lstsq_with_ones(const torch::Tensor& x, const torch::Tensor& y) {
  auto x64 = x.to(torch::kFloat64), y64 = y.to(torch::kFloat64);
  auto design = torch::cat({x64, torch::ones({x.size(0), 1}, kF64)}, 1);
  auto solution = std::get<0>(torch::linalg_lstsq(design, y64, c10::nullopt, "gelsd"));  // [D+1, w]
  return {solution.slice(0, 0, x.size(1)).t().contiguous(), solution[x.size(1)].contiguous()};
}

// Minimum-norm least squares of the centred problem in float64 (pinv with a relative cutoff on
// the singular values that only removes exact, arithmetic rank deficiency).
Reference minimum_norm_centred(const torch::Tensor& x, const torch::Tensor& y, double singular_rtol = 1e-10) {
  auto x64 = x.to(torch::kFloat64), y64 = y.to(torch::kFloat64);
  auto mx = x64.mean(0), my = y64.mean(0);
  auto coefficients = torch::mm(torch::linalg_pinv(x64 - mx, singular_rtol), y64 - my);  // [D, w]
  auto weight = coefficients.t().contiguous();
  return {weight, my - torch::mv(weight, mx)};
}

// Ridge with unpenalised intercept: A = (Xc^T Xc + alpha I)^-1 Xc^T Yc, b = mean_y - A mean_x.
Reference ridge_closed_form(const torch::Tensor& x, const torch::Tensor& y, double alpha) {
  auto x64 = x.to(torch::kFloat64), y64 = y.to(torch::kFloat64);
  auto mx = x64.mean(0), my = y64.mean(0);
  auto xc = x64 - mx, yc = y64 - my;
  auto system = torch::mm(xc.t(), xc) + alpha * torch::eye(x.size(1), kF64);
  auto coefficients = torch::linalg_solve(system, torch::mm(xc.t(), yc));
  auto weight = coefficients.t().contiguous();
  return {weight, my - torch::mv(weight, mx)};
}

// GCV straight from its definition with the full n x n hat matrix of ridge with an unpenalised
// intercept, H = 11^T/n + Xc (Xc^T Xc + alpha I)^-1 Xc^T:
//   GCV(alpha) = ||(I - H) Y||_F^2 / (n * w_dim * (1 - tr(H)/n)^2)
// (the normalisation of src/linking.cpp: a mean squared error per element, inflated by the
// effective degrees of freedom, including the intercept's).
double brute_force_gcv(const torch::Tensor& x, const torch::Tensor& y, double alpha) {
  auto x64 = x.to(torch::kFloat64), y64 = y.to(torch::kFloat64);
  const int64_t n = x.size(0), w_dim = y.size(1);
  auto xc = x64 - x64.mean(0);
  auto system = torch::mm(xc.t(), xc) + alpha * torch::eye(x.size(1), kF64);
  auto hat =
      torch::full({n, n}, 1.0 / static_cast<double>(n), kF64) + torch::mm(xc, torch::linalg_solve(system, xc.t()));
  auto residual = y64 - torch::mm(hat, y64);
  const double sse = residual.square().sum().item<double>();
  const double dof = hat.trace().item<double>();
  const double shrink = 1.0 - dof / static_cast<double>(n);
  return sse / (static_cast<double>(n * w_dim) * shrink * shrink);
}

// Expects `action` to throw linkstyle::Error whose one-line message holds every fragment.
using linkstyle::testing::expect_error;

// Non-centred features with column-dependent offsets and scales, like post-ReLU activations.
torch::Tensor shifted_relu_features(int64_t n, int64_t d) {
  return torch::relu(torch::randn({n, d})) * (0.5 + torch::rand({d})) + (3.0 + 4.0 * torch::rand({d}));
}

// ---------------------------------------------------------------------------------------------
// 1. OLS equals the closed form, whatever the chunking.

TEST(LinkingOls, MatchesFloat64LstsqWithUnevenChunks) {
  torch::manual_seed(101);
  const int64_t n = 600, d = 40, w_dim = 12;
  auto x = shifted_relu_features(n, d);
  auto y = torch::mm(x, torch::randn({d, w_dim})) + 5.0 * torch::randn({w_dim}) + 0.1 * torch::randn({n, w_dim});
  const auto reference = lstsq_with_ones(x, y);

  FitOptions options;  // OLS by default
  FitReport report;
  auto chunked = accumulate(x, y, {1, 250, 349});
  auto network = solve_linking_network(chunked, options, &report);
  EXPECT_EQ(report.method, "ols");
  EXPECT_EQ(report.rank, d);
  EXPECT_EQ(report.dead_features, 0);
  EXPECT_EQ(network.weight.scalar_type(), torch::kFloat32);
  ASSERT_EQ(network.weight.sizes(), torch::IntArrayRef({w_dim, d}));
  ASSERT_EQ(network.bias.sizes(), torch::IntArrayRef({w_dim}));

  const double weight_error = relative_error(network.weight, reference.weight);
  const double bias_error = relative_error(network.bias, reference.bias);
  const double prediction_error =
      relative_error(network.apply(x), torch::mm(x.to(torch::kFloat64), reference.weight.t()) + reference.bias);
  figure("ols chunks{1,250,349} weight rel err vs lstsq[X,1]", weight_error);
  figure("ols chunks{1,250,349} bias rel err vs lstsq[X,1]", bias_error);
  figure("ols chunks{1,250,349} prediction rel err", prediction_error);
  EXPECT_LT(weight_error, 1e-4);
  EXPECT_LT(bias_error, 1e-4);
  EXPECT_LT(prediction_error, 1e-5);

  // The chunking must not matter beyond float32 rounding: one add and many tiny ones agree.
  auto whole = accumulate(x, y, {n});
  std::vector<int64_t> small(n / 7, 7);
  small.push_back(n - 7 * (n / 7));
  auto tiny = accumulate(x, y, small);
  auto network_whole = solve_linking_network(whole, options);
  auto network_tiny = solve_linking_network(tiny, options);
  EXPECT_LT(relative_error(network_whole.weight, reference.weight), 1e-4);
  EXPECT_LT(relative_error(network_tiny.weight, reference.weight), 1e-4);
  EXPECT_LT(relative_error(network_tiny.bias, reference.bias), 1e-4);
  EXPECT_LT(relative_error(network_whole.weight, network.weight), 1e-4);

  // The exposed moments are the float64 centred ones.
  auto x64 = x.to(torch::kFloat64), y64 = y.to(torch::kFloat64);
  auto xc = x64 - x64.mean(0), yc = y64 - y64.mean(0);
  EXPECT_LT(relative_error(chunked.feature_mean(), x64.mean(0)), 1e-6);
  EXPECT_LT(relative_error(chunked.latent_mean(), y64.mean(0)), 1e-6);
  EXPECT_LT(relative_error(chunked.centred_feature_gram(), torch::mm(xc.t(), xc)), 1e-5);
  EXPECT_LT(relative_error(chunked.centred_cross(), torch::mm(xc.t(), yc)), 1e-5);
  EXPECT_LT(relative_error(chunked.latent_total_sum_of_squares(), yc.square().sum(0)), 1e-5);
  auto gram = chunked.centred_feature_gram();
  EXPECT_TRUE(torch::equal(gram, gram.t())) << "C_rr must be exactly symmetric";
}

// More rows than one float32 product (4096) and more columns than one Gram block (256).
TEST(LinkingOls, MatchesLstsqAcrossRowChunksAndGramBlocks) {
  torch::manual_seed(102);
  {
    const int64_t n = 9000, d = 6, w_dim = 3;
    auto x = shifted_relu_features(n, d);
    auto y = torch::mm(x, torch::randn({d, w_dim})) - 2.0 + 0.2 * torch::randn({n, w_dim});
    const auto reference = lstsq_with_ones(x, y);
    auto network = solve_linking_network(accumulate(x, y, {n}), FitOptions{});
    const double error = relative_error(network.weight, reference.weight);
    figure("ols n=9000 (3 internal row chunks) weight rel err", error);
    EXPECT_LT(error, 1e-4);
    EXPECT_LT(relative_error(network.bias, reference.bias), 1e-4);
  }
  {
    const int64_t n = 700, d = 300, w_dim = 5;
    auto x = torch::randn({n, d}) + torch::rand({d}) * 3.0;
    auto y = torch::mm(x, torch::randn({d, w_dim})) + 0.5 * torch::randn({n, w_dim});
    const auto reference = lstsq_with_ones(x, y);
    FitReport report;
    auto stats = accumulate(x, y, {300, 400});
    auto network = solve_linking_network(stats, FitOptions{}, &report);
    const double error = relative_error(network.weight, reference.weight);
    figure("ols D=300 (2 Gram column blocks) weight rel err", error);
    EXPECT_LT(error, 1e-4);
    EXPECT_LT(relative_error(network.bias, reference.bias), 1e-4);
    EXPECT_EQ(report.rank, d);
    auto x64 = x.to(torch::kFloat64);
    auto xc = x64 - x64.mean(0);
    EXPECT_LT(relative_error(stats.centred_feature_gram(), torch::mm(xc.t(), xc)), 1e-5);
  }
}

// ---------------------------------------------------------------------------------------------
// 2. Dead and collinear features: the minimum-norm solution of the centred problem.

struct DegenerateData {
  torch::Tensor x, y;
  int64_t dead = 0, rank = 0;
  std::vector<int64_t> zero_columns, constant_columns;
  std::vector<std::pair<int64_t, int64_t>> duplicates;  // (copy, original)
};

DegenerateData degenerate_data(int64_t n, int64_t w_dim) {
  const int64_t d = 30;
  DegenerateData data;
  auto x = torch::randn({n, d}) * (0.5 + torch::rand({d})) + 4.0 * torch::rand({d}) - 1.0;
  // Columns 12 and 13 on a 1/256 grid, so that column 7 = col12 + 2 col13 holds exactly in float32.
  x.select(1, 12).copy_(torch::round(x.select(1, 12) * 256.0) / 256.0);
  x.select(1, 13).copy_(torch::round(x.select(1, 13) * 256.0) / 256.0);
  data.zero_columns = {0, 1, 2};
  data.constant_columns = {3, 4};
  for (int64_t c : data.zero_columns) x.select(1, c).zero_();
  x.select(1, 3).fill_(2.5);
  x.select(1, 4).fill_(-0.1);  // not exactly representable: the float32 shift is not exact
  data.duplicates = {{5, 10}, {6, 11}};
  for (auto [copy, original] : data.duplicates) x.select(1, copy).copy_(x.select(1, original));
  x.select(1, 7).copy_(x.select(1, 12) + 2.0 * x.select(1, 13));
  data.dead = 5;
  data.rank = d - 5 - 3;  // 3 exact linear dependencies among the live columns
  data.x = x;
  data.y = torch::mm(x, torch::randn({d, w_dim})) + 3.0 * torch::randn({w_dim}) + 0.3 * torch::randn({n, w_dim});
  return data;
}

TEST(LinkingOls, MinimumNormWithDeadAndCollinearFeatures) {
  torch::manual_seed(201);
  const auto data = degenerate_data(400, 6);
  {  // The reference itself must see the designed rank.
    auto x64 = data.x.to(torch::kFloat64);
    ASSERT_EQ(torch::linalg_matrix_rank(x64 - x64.mean(0), 1e-10).item<int64_t>(), data.rank);
  }
  const auto reference = minimum_norm_centred(data.x, data.y);

  FitReport report;
  auto network = solve_linking_network(accumulate(data.x, data.y, {37, 200, 163}), FitOptions{}, &report);
  EXPECT_EQ(report.method, "ols");
  EXPECT_EQ(report.dead_features, data.dead);
  EXPECT_EQ(report.rank, data.rank);
  EXPECT_EQ(report.solver, "eigh");
  EXPECT_EQ(network.metadata.value("dead_features", -1), data.dead);
  EXPECT_EQ(network.metadata.value("rank", -1), data.rank);

  for (int64_t c : data.zero_columns) EXPECT_TRUE(torch::all(network.weight.select(1, c) == 0).item<bool>()) << c;
  for (int64_t c : data.constant_columns) EXPECT_TRUE(torch::all(network.weight.select(1, c) == 0).item<bool>()) << c;

  const double weight_error = relative_error(network.weight, reference.weight);
  const double bias_error = relative_error(network.bias, reference.bias);
  auto x64 = data.x.to(torch::kFloat64);
  const double prediction_error =
      relative_error(network.apply(data.x), torch::mm(x64, reference.weight.t()) + reference.bias);
  figure("ols degenerate (5 dead, 3 collinear) weight rel err vs pinv", weight_error);
  figure("ols degenerate bias rel err vs pinv", bias_error);
  figure("ols degenerate prediction rel err", prediction_error);
  EXPECT_LT(weight_error, 1e-4);
  EXPECT_LT(bias_error, 1e-4);
  EXPECT_LT(prediction_error, 1e-5);
  // Minimum norm splits a duplicated feature's weight equally between the two copies.
  for (auto [copy, original] : data.duplicates)
    EXPECT_LT(relative_error(network.weight.select(1, copy), network.weight.select(1, original)), 1e-4);
}

// Stability of the minimum-norm fit over several random draws (float32 noise in the Gram must
// not be mistaken for signal along the exactly-collinear directions).
TEST(LinkingOls, MinimumNormIsStableAcrossSeeds) {
  double worst = 0.0;
  for (int seed = 0; seed < 8; ++seed) {
    torch::manual_seed(300 + seed);
    const auto data = degenerate_data(300 + 50 * seed, 4);
    const auto reference = minimum_norm_centred(data.x, data.y);
    FitReport report;
    auto network = solve_linking_network(accumulate(data.x, data.y, {1, data.x.size(0) - 1}), FitOptions{}, &report);
    const double error = relative_error(network.weight, reference.weight);
    worst = std::max(worst, error);
    EXPECT_LT(error, 1e-4) << "seed " << seed;
    EXPECT_EQ(report.rank, data.rank) << "seed " << seed;
    EXPECT_EQ(report.dead_features, data.dead) << "seed " << seed;
  }
  figure("ols degenerate worst weight rel err over 8 seeds", worst);
}

// rcond: eigenvalues of C_rr below rcond * largest count as zero, i.e. the pinv of the centred
// features with singular values below sqrt(rcond) * largest dropped. A nearly (not exactly)
// collinear column leaves a Cholesky-factorisable but ill-conditioned Gram: it must be truncated.
TEST(LinkingOls, RcondTruncatesNearlyCollinearDirections) {
  double worst_near = 0.0, worst_custom = 0.0;
  for (int seed = 0; seed < 4; ++seed) {
    torch::manual_seed(250 + seed);
    const int64_t n = 400, d = 12, w_dim = 4;
    auto x = torch::randn({n, d}) * (0.5 + torch::rand({d})) + 3.0 * torch::rand({d});
    // Column 11 = col0 + col1 + 1e-5 noise: eigenvalue ~1e-11 of the largest, far below 1e-6.
    x.select(1, 11).copy_(x.select(1, 0) + x.select(1, 1) + 1e-5 * torch::randn({n}));
    auto y = torch::mm(x, torch::randn({d, w_dim})) + 0.3 * torch::randn({n, w_dim});
    FitReport report;
    auto network = solve_linking_network(accumulate(x, y, {150, 250}), FitOptions{}, &report);
    const auto reference = minimum_norm_centred(x, y, std::sqrt(1e-6));
    const double error = relative_error(network.weight, reference.weight);
    worst_near = std::max(worst_near, error);
    EXPECT_LT(error, 1e-4) << "seed " << seed;
    EXPECT_LT(relative_error(network.bias, reference.bias), 1e-4) << "seed " << seed;
    EXPECT_EQ(report.rank, d - 1) << "seed " << seed;
    EXPECT_EQ(report.solver, "eigh") << "seed " << seed;
    EXPECT_LT(network.weight.abs().max().item<double>(), 100.0) << "seed " << seed << ": noise direction fitted";

    // A custom rcond: two columns at 1/10 scale have eigenvalues ~1e-2 of the largest < 0.05.
    auto z = torch::randn({n, 8});
    z.select(1, 6).mul_(0.1);
    z.select(1, 7).mul_(0.1);
    z.add_(1.0);
    auto yz = torch::mm(z, torch::randn({8, w_dim})) + 0.1 * torch::randn({n, w_dim});
    FitOptions options;
    options.rcond = 0.05;
    FitReport custom;
    auto truncated = solve_linking_network(accumulate(z, yz, {n}), options, &custom);
    const auto truncated_reference = minimum_norm_centred(z, yz, std::sqrt(0.05));
    const double custom_error = relative_error(truncated.weight, truncated_reference.weight);
    worst_custom = std::max(worst_custom, custom_error);
    EXPECT_EQ(custom.rank, 6) << "seed " << seed;
    EXPECT_LT(custom_error, 1e-4) << "seed " << seed;
  }
  figure("ols nearly-collinear (rcond 1e-6) worst weight rel err vs pinv(rtol=sqrt(rcond))", worst_near);
  figure("ols rcond=0.05 worst weight rel err vs pinv(rtol=sqrt(0.05))", worst_custom);
}

TEST(LinkingOls, AllFeaturesDeadGivesTheMean) {
  auto x = torch::zeros({50, 4});
  x.select(1, 1).fill_(3.0);
  torch::manual_seed(3);
  auto y = torch::randn({50, 2}) + 7.0;
  FitReport report;
  auto network = solve_linking_network(accumulate(x, y, {20, 30}), FitOptions{}, &report);
  EXPECT_EQ(report.dead_features, 4);
  EXPECT_TRUE(torch::all(network.weight == 0).item<bool>());
  EXPECT_LT(relative_error(network.bias, y.to(torch::kFloat64).mean(0)), 1e-6);
}

TEST(LinkingOls, TooFewPairsThrow) {
  LinkingStatistics stats(3, 2);
  expect_error([&] { solve_linking_network(stats, FitOptions{}); }, {"at least 2"});
  stats.add(torch::ones({1, 3}), torch::ones({1, 2}));
  expect_error([&] { solve_linking_network(stats, FitOptions{}); }, {"at least 2"});
}

// ---------------------------------------------------------------------------------------------
// 3. Ridge with a fixed penalty.

TEST(LinkingRidge, FixedPenaltyMatchesClosedForm) {
  torch::manual_seed(401);
  const int64_t n = 600, d = 40, w_dim = 12;
  auto x = shifted_relu_features(n, d);
  auto y = torch::mm(x, torch::randn({d, w_dim})) + 5.0 * torch::randn({w_dim}) + 0.5 * torch::randn({n, w_dim});
  for (double alpha : {0.3, 50.0, 2000.0}) {
    const auto reference = ridge_closed_form(x, y, alpha);
    FitOptions options;
    options.method = FitMethod::ridge;
    options.penalty = alpha;
    FitReport report;
    auto network = solve_linking_network(accumulate(x, y, {1, 250, 349}), options, &report);
    EXPECT_EQ(report.method, "ridge");
    EXPECT_DOUBLE_EQ(report.penalty, alpha);
    EXPECT_TRUE(report.gcv_curve.empty()) << "a fixed penalty needs no GCV search";
    const double weight_error = relative_error(network.weight, reference.weight);
    const double bias_error = relative_error(network.bias, reference.bias);
    figure("ridge alpha=" + std::to_string(alpha) + " weight rel err vs closed form", weight_error);
    figure("ridge alpha=" + std::to_string(alpha) + " bias rel err vs closed form", bias_error);
    EXPECT_LT(weight_error, 1e-4) << alpha;
    EXPECT_LT(bias_error, 1e-4) << alpha;
  }
  // The penalty shrinks: the ridge weight norm is below the OLS one.
  auto stats = accumulate(x, y, {n});
  FitOptions ridge;
  ridge.method = FitMethod::ridge;
  ridge.penalty = 2000.0;
  EXPECT_LT(solve_linking_network(stats, ridge).weight.norm().item<double>(),
            solve_linking_network(stats, FitOptions{}).weight.norm().item<double>());
}

TEST(LinkingRidge, DeadFeaturesGetZeroAndCollinearAreFine) {
  torch::manual_seed(402);
  const auto data = degenerate_data(400, 6);
  const double alpha = 10.0;
  const auto reference = ridge_closed_form(data.x, data.y, alpha);
  FitOptions options;
  options.method = FitMethod::ridge;
  options.penalty = alpha;
  FitReport report;
  auto network = solve_linking_network(accumulate(data.x, data.y, {100, 300}), options, &report);
  EXPECT_EQ(report.dead_features, data.dead);
  for (int64_t c : data.zero_columns) EXPECT_TRUE(torch::all(network.weight.select(1, c) == 0).item<bool>()) << c;
  for (int64_t c : data.constant_columns) EXPECT_TRUE(torch::all(network.weight.select(1, c) == 0).item<bool>()) << c;
  const double error = relative_error(network.weight, reference.weight);
  figure("ridge degenerate alpha=10 weight rel err vs closed form", error);
  EXPECT_LT(error, 1e-4);
  EXPECT_LT(relative_error(network.bias, reference.bias), 1e-4);
}

TEST(LinkingRidge, NegativePenaltyThrows) {
  torch::manual_seed(403);
  auto stats = accumulate(torch::randn({20, 3}), torch::randn({20, 2}), {20});
  FitOptions options;
  options.method = FitMethod::ridge;
  options.penalty = -1.0;
  expect_error([&] { solve_linking_network(stats, options); }, {"penalty", ">= 0"});
}

// ---------------------------------------------------------------------------------------------
// 4. Ridge with the penalty chosen by GCV.

TEST(LinkingRidge, GcvChoosesTheBruteForceArgmin) {
  torch::manual_seed(501);
  const int64_t n = 120, d = 50, w_dim = 6;
  // Correlated features, a weak signal and strong noise, so the GCV optimum is inside the grid.
  auto mixing = torch::randn({d, d}) / std::sqrt(static_cast<double>(d)) + torch::eye(d);
  auto x = torch::mm(torch::randn({n, d}), mixing) + 2.0;
  auto y = torch::mm(x, 0.15 * torch::randn({d, w_dim})) + torch::randn({n, w_dim});
  std::vector<double> grid;
  for (int k = -12; k <= 16; ++k) grid.push_back(std::pow(10.0, k / 4.0));

  std::vector<double> brute;
  for (double alpha : grid) brute.push_back(brute_force_gcv(x, y, alpha));
  const size_t best = std::min_element(brute.begin(), brute.end()) - brute.begin();
  ASSERT_GT(best, 0u) << "test data must put the GCV optimum inside the grid";
  ASSERT_LT(best, grid.size() - 1) << "test data must put the GCV optimum inside the grid";
  // A clear winner, so that float32 rounding cannot legitimately flip the argmin.
  std::vector<double> sorted = brute;
  std::sort(sorted.begin(), sorted.end());
  ASSERT_GT((sorted[1] - sorted[0]) / sorted[0], 1e-4);

  FitOptions options;
  options.method = FitMethod::ridge;
  options.penalty_grid = grid;
  FitReport report;
  auto network = solve_linking_network(accumulate(x, y, {13, 107}), options, &report);
  EXPECT_EQ(report.method, "ridge");
  ASSERT_EQ(report.gcv_curve.size(), grid.size());
  double worst_curve_error = 0.0;
  for (size_t i = 0; i < grid.size(); ++i) {
    EXPECT_DOUBLE_EQ(report.gcv_curve[i].first, grid[i]);
    const double error = std::abs(report.gcv_curve[i].second - brute[i]) / brute[i];
    worst_curve_error = std::max(worst_curve_error, error);
    EXPECT_LT(error, 1e-4) << "alpha " << grid[i] << ": reported " << report.gcv_curve[i].second << ", brute force "
                           << brute[i];
  }
  figure("gcv curve worst rel err vs brute-force hat matrix", worst_curve_error);
  std::cout << "[  FIGURE  ] gcv argmin alpha = " << grid[best] << " (index " << best << " of " << grid.size()
            << "), chosen " << report.penalty << std::endl;
  EXPECT_DOUBLE_EQ(report.penalty, grid[best]);
  EXPECT_DOUBLE_EQ(network.metadata.value("penalty", -1.0), grid[best]);
  // And the network is the ridge solution at that penalty.
  const auto reference = ridge_closed_form(x, y, grid[best]);
  EXPECT_LT(relative_error(network.weight, reference.weight), 1e-4);
  EXPECT_LT(relative_error(network.bias, reference.bias), 1e-4);
}

TEST(LinkingRidge, DefaultGridIsRelativeToTheMeanEigenvalue) {
  torch::manual_seed(502);
  const int64_t n = 200, d = 20;
  auto x = torch::randn({n, d}) * 3.0 + 1.0;
  auto y = torch::mm(x, torch::randn({d, 4})) + 2.0 * torch::randn({n, 4});
  auto stats = accumulate(x, y, {n});
  FitOptions options;
  options.method = FitMethod::ridge;
  FitReport report;
  solve_linking_network(stats, options, &report);
  ASSERT_EQ(report.gcv_curve.size(), 21u) << "10^k for k = -8, -7.5, ..., 2";
  const double mean_eigenvalue = stats.centred_feature_gram().trace().item<double>() / d;
  bool chosen_on_grid = false;
  for (size_t i = 0; i < report.gcv_curve.size(); ++i) {
    const double expected = mean_eigenvalue * std::pow(10.0, -8.0 + 0.5 * static_cast<double>(i));
    EXPECT_NEAR(report.gcv_curve[i].first / expected, 1.0, 1e-9) << i;
    EXPECT_TRUE(std::isfinite(report.gcv_curve[i].second)) << i;
    EXPECT_NEAR(report.gcv_curve[i].second / brute_force_gcv(x, y, report.gcv_curve[i].first), 1.0, 1e-4) << i;
    chosen_on_grid |= report.gcv_curve[i].first == report.penalty;
  }
  EXPECT_TRUE(chosen_on_grid);
}

// ---------------------------------------------------------------------------------------------
// 5. Statistics files and input checks.

TEST(LinkingStatisticsFile, SaveLoadRoundTripGivesIdenticalSolutions) {
  torch::manual_seed(601);
  ScratchDir scratch("linking-stats");
  const int64_t n = 300, d = 15, w_dim = 5;
  auto x = shifted_relu_features(n, d);
  auto y = torch::mm(x, torch::randn({d, w_dim})) + 0.3 * torch::randn({n, w_dim});
  auto stats = accumulate(x, y, {1, 120, 179});
  stats.save(scratch / "stats.safetensors");
  auto loaded = LinkingStatistics::load(scratch / "stats.safetensors");
  EXPECT_EQ(loaded.count(), stats.count());
  EXPECT_EQ(loaded.feature_dim(), d);
  EXPECT_EQ(loaded.latent_dim(), w_dim);
  EXPECT_TRUE(torch::equal(loaded.centred_feature_gram(), stats.centred_feature_gram()));
  EXPECT_TRUE(torch::equal(loaded.centred_cross(), stats.centred_cross()));
  EXPECT_TRUE(torch::equal(loaded.feature_mean(), stats.feature_mean()));
  EXPECT_TRUE(torch::equal(loaded.latent_mean(), stats.latent_mean()));
  EXPECT_TRUE(torch::equal(loaded.latent_total_sum_of_squares(), stats.latent_total_sum_of_squares()));

  FitOptions ridge;
  ridge.method = FitMethod::ridge;
  for (const FitOptions& options : {FitOptions{}, ridge}) {
    FitReport a, b;
    auto original = solve_linking_network(stats, options, &a);
    auto reloaded = solve_linking_network(loaded, options, &b);
    EXPECT_TRUE(torch::equal(original.weight, reloaded.weight)) << a.method;
    EXPECT_TRUE(torch::equal(original.bias, reloaded.bias)) << a.method;
    EXPECT_EQ(a.penalty, b.penalty);
    EXPECT_EQ(a.rank, b.rank);
  }

  // Accumulation resumes after a load exactly as if it had never stopped (same shift row).
  auto first = accumulate(x.slice(0, 0, 100), y.slice(0, 0, 100), {100});
  first.save(scratch / "partial.safetensors");
  auto resumed = LinkingStatistics::load(scratch / "partial.safetensors");
  resumed.add(x.slice(0, 100), y.slice(0, 100));
  auto uninterrupted = accumulate(x, y, {100, 200});
  EXPECT_EQ(resumed.count(), n);
  EXPECT_TRUE(torch::equal(solve_linking_network(resumed, FitOptions{}).weight,
                           solve_linking_network(uninterrupted, FitOptions{}).weight));

  // A file of another kind is refused, naming the file.
  LinkingNetwork network = solve_linking_network(stats, FitOptions{});
  network.save(scratch / "network.safetensors");
  const auto wrong = scratch / "network.safetensors";
  expect_error([&] { LinkingStatistics::load(wrong); }, {wrong.string()});
}

TEST(LinkingStatisticsInput, NanInfAndWrongShapesThrowNamingTheSource) {
  LinkingStatistics stats(4, 3);
  auto good_x = torch::randn({10, 4}), good_y = torch::randn({10, 3});
  auto nan_x = good_x.clone();
  nan_x[3][2] = std::nan("");
  auto inf_y = good_y.clone();
  inf_y[7][0] = std::numeric_limits<float>::infinity();
  expect_error([&] { stats.add(nan_x, good_y, "shard-0007.npy"); }, {"shard-0007.npy", "NaN"});
  expect_error([&] { stats.add(good_x, inf_y, "latents-3.npy"); }, {"latents-3.npy", "Inf"});
  expect_error([&] { stats.add(torch::randn({10, 5}), good_y, "wide.npy"); }, {"wide.npy", "[10, 5]"});
  expect_error([&] { stats.add(good_x, torch::randn({10, 2}), "narrow.npy"); }, {"narrow.npy", "[10, 2]"});
  expect_error([&] { stats.add(good_x, torch::randn({9, 3}), "rows.npy"); }, {"rows.npy"});
  expect_error([&] { stats.add(torch::randn({4}), good_y, "flat.npy"); }, {"flat.npy"});
  expect_error([&] { stats.add(torch::randn({10, 4, 1}), good_y, "cube.npy"); }, {"cube.npy"});
  EXPECT_EQ(stats.count(), 0) << "rejected rows must not be counted";
  // Rejected chunks leave no trace: the statistics equal those of the good rows alone.
  stats.add(good_x, good_y);
  stats.add(torch::zeros({0, 4}), torch::zeros({0, 3}));
  auto clean = accumulate(good_x, good_y, {10});
  EXPECT_EQ(stats.count(), 10);
  EXPECT_TRUE(torch::equal(stats.centred_feature_gram(), clean.centred_feature_gram()));
  EXPECT_TRUE(torch::equal(stats.centred_cross(), clean.centred_cross()));
  // float64 and other dtypes are accepted.
  LinkingStatistics from_double(4, 3);
  from_double.add(good_x.to(torch::kFloat64), good_y.to(torch::kFloat64));
  EXPECT_TRUE(torch::equal(from_double.centred_cross(), clean.centred_cross()));
  expect_error([] { LinkingStatistics(0, 3); }, {"positive"});
}

// ---------------------------------------------------------------------------------------------
// 6. Network files and apply().

TEST(LinkingNetworkFile, SaveLoadRoundTripAndApply) {
  torch::manual_seed(701);
  ScratchDir scratch("linking-network");
  LinkingNetwork network;
  network.weight = torch::randn({7, 11});
  network.bias = torch::randn({7});
  network.metadata = {{"method", "ridge"},
                      {"penalty", 0.125},
                      {"models", {{"classifier", "r18"}, {"generator", "sg2"}}},
                      {"metrics", {{"r2", 0.75}}},
                      {"note", "ünïcode \"quoted\""}};
  const auto file = scratch / "linking.safetensors";
  network.save(file);
  auto loaded = LinkingNetwork::load(file);
  EXPECT_EQ(loaded.weight.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::equal(loaded.weight, network.weight));
  EXPECT_TRUE(torch::equal(loaded.bias, network.bias));
  EXPECT_EQ(loaded.metadata, network.metadata);
  EXPECT_EQ(loaded.feature_dim(), 11);
  EXPECT_EQ(loaded.latent_dim(), 7);

  // The file is plain safetensors: "A" [w_dim, D], "b" [w_dim], metadata JSON under "linkstyle".
  auto content = linkstyle::read_safetensors(file);
  ASSERT_TRUE(content.tensors.count("A"));
  ASSERT_TRUE(content.tensors.count("b"));
  EXPECT_EQ(content.tensors["A"].sizes(), torch::IntArrayRef({7, 11}));
  EXPECT_EQ(nlohmann::json::parse(content.metadata.at("linkstyle")), network.metadata);

  // apply(r) = r A^T + b.
  auto r = torch::randn({25, 11}) * 2.0 + 1.0;
  auto expected =
      torch::mm(r.to(torch::kFloat64), network.weight.to(torch::kFloat64).t()) + network.bias.to(torch::kFloat64);
  const double apply_error = relative_error(loaded.apply(r), expected);
  figure("apply rel err vs float64 r A^T + b", apply_error);
  EXPECT_LT(apply_error, 1e-6);
  EXPECT_LT(relative_error(loaded.apply(r.to(torch::kFloat64)), expected), 1e-6);
  EXPECT_EQ(loaded.apply(r).sizes(), torch::IntArrayRef({25, 7}));

  // Files missing "A" (or "b"), or with inconsistent shapes, are refused naming the path.
  const auto no_a = scratch / "no_a.safetensors";
  linkstyle::write_safetensors(no_a, {{"b", network.bias}});
  expect_error([&] { LinkingNetwork::load(no_a); }, {no_a.string(), "'A'"});
  const auto no_b = scratch / "no_b.safetensors";
  linkstyle::write_safetensors(no_b, {{"A", network.weight}});
  expect_error([&] { LinkingNetwork::load(no_b); }, {no_b.string()});
  const auto mismatch = scratch / "mismatch.safetensors";
  linkstyle::write_safetensors(mismatch, {{"A", network.weight}, {"b", torch::zeros({6})}});
  expect_error([&] { LinkingNetwork::load(mismatch); }, {mismatch.string()});
  const auto bad_json = scratch / "bad_json.safetensors";
  linkstyle::write_safetensors(bad_json, {{"A", network.weight}, {"b", network.bias}}, {{"linkstyle", "{oops"}});
  expect_error([&] { LinkingNetwork::load(bad_json); }, {bad_json.string(), "JSON"});
  const auto nan_file = scratch / "nan.safetensors";
  auto nan_weight = network.weight.clone();
  nan_weight[0][0] = std::nan("");
  linkstyle::write_safetensors(nan_file, {{"A", nan_weight}, {"b", network.bias}});
  expect_error([&] { LinkingNetwork::load(nan_file); }, {nan_file.string(), "NaN"});
}

// ---------------------------------------------------------------------------------------------
// 7. Metrics.

TEST(LinkingMetricsTest, MatchesDirectFloat64Computation) {
  torch::manual_seed(801);
  const int64_t n = 1000, w_dim = 7;
  auto truth = torch::randn({n, w_dim}) * (0.2 + 3.0 * torch::rand({w_dim})) + 10.0 * torch::randn({w_dim});
  auto predicted = truth + torch::randn({n, w_dim}) * (0.1 + torch::rand({w_dim}));
  LinkingMetrics metrics;
  int64_t begin = 0;
  for (int64_t rows : {1, 333, 666}) {
    metrics.add(predicted.slice(0, begin, begin + rows), truth.slice(0, begin, begin + rows));
    begin += rows;
  }
  EXPECT_EQ(metrics.count(), n);

  auto p = predicted.to(torch::kFloat64), t = truth.to(torch::kFloat64);
  auto sse = (p - t).square().sum(0);
  auto sst = (t - t.mean(0)).square().sum(0);
  auto r2_per_dim = 1.0 - sse / sst;
  const double r2 = 1.0 - sse.sum().item<double>() / sst.sum().item<double>();
  const double mse = (p - t).square().mean().item<double>();
  const double cosine = ((p * t).sum(1) / (p.norm(2, 1) * t.norm(2, 1))).mean().item<double>();

  auto per_dim = metrics.r2_per_dimension();
  ASSERT_EQ(per_dim.size(), static_cast<size_t>(w_dim));
  double worst = 0.0;
  for (int64_t j = 0; j < w_dim; ++j) {
    worst = std::max(worst, std::abs(per_dim[j] - r2_per_dim[j].item<double>()));
    EXPECT_NEAR(per_dim[j], r2_per_dim[j].item<double>(), 1e-9) << j;
  }
  figure("metrics r2_per_dim worst abs err", worst);
  EXPECT_NEAR(metrics.r2(), r2, 1e-9);
  EXPECT_NEAR(metrics.mse() / mse, 1.0, 1e-12);
  EXPECT_NEAR(metrics.mean_cosine(), cosine, 1e-12);
  // sklearn's variance-weighted r2 is the sst-weighted mean of the per-dimension r2.
  EXPECT_NEAR(metrics.r2(), (r2_per_dim * sst).sum().item<double>() / sst.sum().item<double>(), 1e-9);

  auto summary = metrics.summary();
  EXPECT_EQ(summary.at("pairs").get<int64_t>(), n);
  EXPECT_NEAR(summary.at("r2").get<double>(), r2, 1e-9);
  EXPECT_NEAR(summary.at("r2_mean_over_dims").get<double>(), r2_per_dim.mean().item<double>(), 1e-9);
  EXPECT_NEAR(summary.at("mse").get<double>(), mse, 1e-12 * mse);
  EXPECT_NEAR(summary.at("cosine").get<double>(), cosine, 1e-12);
  ASSERT_EQ(summary.at("r2_per_dim").size(), static_cast<size_t>(w_dim));

  // Perfect prediction: r2 = 1, mse = 0, cosine = 1.
  LinkingMetrics perfect;
  perfect.add(truth, truth);
  EXPECT_DOUBLE_EQ(perfect.r2(), 1.0);
  EXPECT_EQ(perfect.mse(), 0.0);
  EXPECT_NEAR(perfect.mean_cosine(), 1.0, 1e-12);

  // Empty metrics are NaN; shape mismatches throw.
  LinkingMetrics empty;
  EXPECT_TRUE(std::isnan(empty.r2()));
  EXPECT_TRUE(std::isnan(empty.mse()));
  EXPECT_TRUE(empty.r2_per_dimension().empty());
  expect_error([&] { metrics.add(torch::zeros({3, 7}), torch::zeros({3, 6})); }, {"metrics"});
  expect_error([&] { metrics.add(torch::zeros({3, 7}), torch::zeros({2, 7})); }, {"metrics"});
}

// scikit-learn's r2_score convention for a constant target dimension: 1 when predicted exactly,
// else 0 — whatever the constant's value (sums of a non-dyadic constant do not cancel exactly).
TEST(LinkingMetricsTest, ConstantTargetDimensionFollowsScikitLearn) {
  torch::manual_seed(802);
  const int64_t n = 1000;
  auto truth = torch::randn({n, 3});
  truth.select(1, 1).fill_(0.1f);
  truth.select(1, 2).fill_(-3.7f);
  auto exact = truth.clone();
  exact.select(1, 0).add_(0.5 * torch::randn({n}));
  auto wrong = exact.clone();
  wrong.select(1, 1).add_(0.01);
  wrong.select(1, 2).add_(0.01);
  LinkingMetrics exact_metrics, wrong_metrics;
  exact_metrics.add(exact.slice(0, 0, 400), truth.slice(0, 0, 400));
  exact_metrics.add(exact.slice(0, 400), truth.slice(0, 400));
  wrong_metrics.add(wrong.slice(0, 0, 400), truth.slice(0, 0, 400));
  wrong_metrics.add(wrong.slice(0, 400), truth.slice(0, 400));
  auto per_exact = exact_metrics.r2_per_dimension();
  auto per_wrong = wrong_metrics.r2_per_dimension();
  EXPECT_EQ(per_exact[1], 1.0);
  EXPECT_EQ(per_exact[2], 1.0);
  EXPECT_EQ(per_wrong[1], 0.0);
  EXPECT_EQ(per_wrong[2], 0.0);
  EXPECT_LT(per_exact[0], 1.0);
  EXPECT_GT(per_exact[0], 0.0);

  // float64 targets: a constant with a full 53-bit mantissa, and a dimension whose mean (1e7)
  // dwarfs its spread (1), where sum(t^2) - sum(t)^2/n loses every digit.
  auto truth64 = torch::randn({n, 2}, kF64);
  truth64.select(1, 0).fill_(0.1);
  truth64.select(1, 1).mul_(1.0).add_(1.0e7);
  auto predicted64 = truth64.clone();
  predicted64.select(1, 0).add_(1e-3);
  predicted64.select(1, 1).add_(0.5 * torch::randn({n}, kF64));
  LinkingMetrics metrics64;
  for (int64_t begin = 0; begin < n; begin += 250)
    metrics64.add(predicted64.slice(0, begin, begin + 250), truth64.slice(0, begin, begin + 250));
  auto per64 = metrics64.r2_per_dimension();
  auto t1 = truth64.select(1, 1);
  const double expected_r2 = 1.0 - (predicted64.select(1, 1) - t1).square().sum().item<double>() /
                                       (t1 - t1.mean()).square().sum().item<double>();
  EXPECT_EQ(per64[0], 0.0);
  EXPECT_NEAR(per64[1], expected_r2, 1e-9);
  figure("metrics r2 abs err for a dimension with mean 1e7, sd 1", std::abs(per64[1] - expected_r2));
}

// ---------------------------------------------------------------------------------------------
// 8. Held-out split.

TEST(LinkingSplit, IsHeldOutIsDeterministicAndHitsTheFraction) {
  const int64_t rows = 100000;
  for (double fraction : {0.01, 0.1, 0.25, 0.5, 0.9}) {
    int64_t held = 0;
    for (int64_t i = 0; i < rows; ++i) {
      const bool first = linkstyle::is_held_out(i, fraction);
      ASSERT_EQ(first, linkstyle::is_held_out(i, fraction)) << i;
      held += first;
    }
    const double observed = static_cast<double>(held) / rows;
    EXPECT_NEAR(observed, fraction, 0.02) << fraction;
    std::cout << "[  FIGURE  ] held-out fraction target " << fraction << " observed " << observed << std::endl;
  }
  // Nested: a row held out at a smaller fraction is held out at every larger one.
  for (int64_t i = 0; i < 20000; ++i) {
    if (linkstyle::is_held_out(i, 0.1)) {
      ASSERT_TRUE(linkstyle::is_held_out(i, 0.3)) << i;
    }
  }
  // Not a contiguous block: both halves of the range get held-out rows.
  int64_t first_half = 0, second_half = 0;
  for (int64_t i = 0; i < 1000; ++i) (i < 500 ? first_half : second_half) += linkstyle::is_held_out(i, 0.2);
  EXPECT_GT(first_half, 50);
  EXPECT_GT(second_half, 50);
  // Degenerate fractions.
  for (int64_t i = 0; i < rows; ++i) {
    ASSERT_FALSE(linkstyle::is_held_out(i, 0.0)) << i;
    ASSERT_FALSE(linkstyle::is_held_out(i, -0.5)) << i;
    ASSERT_TRUE(linkstyle::is_held_out(i, 1.0)) << i;
  }
  EXPECT_FALSE(linkstyle::is_held_out(int64_t{1} << 40, 0.0));
}

// ---------------------------------------------------------------------------------------------
// 9. Agreement with scikit-learn's LinearRegression and Ridge.

TEST(LinkingScikitLearn, CoefficientsEqualLinearRegressionAndRidge) {
  const std::string python = "/usr/bin/python3";
  const fs::path script = fs::path(LINKSTYLE_SOURCE_DIR) / "tests" / "sklearn_reference.py";
  ASSERT_TRUE(fs::exists(python)) << python << " is missing: the scikit-learn comparison needs it";
  ASSERT_TRUE(fs::exists(script)) << script << " is missing";

  torch::manual_seed(901);
  const int64_t n = 500, d = 24, w_dim = 10;
  auto x = shifted_relu_features(n, d);
  x.select(1, 0).zero_();
  x.select(1, 9).zero_();
  x.select(1, 17).fill_(1.7f);  // dead: constant, not dyadic
  auto y = torch::mm(x, torch::randn({d, w_dim})) + 4.0 * torch::randn({w_dim}) + 0.4 * torch::randn({n, w_dim});

  ScratchDir scratch("linking-sklearn");
  linkstyle::write_npy(scratch / "X.npy", x);
  linkstyle::write_npy(scratch / "Y.npy", y);
  const double alpha = 25.0;
  std::ostringstream command;
  command << python << " '" << script.string() << "' '" << scratch.path().string() << "' " << std::setprecision(17)
          << alpha;
  const auto result = linkstyle::testing::run_command(command.str());
  ASSERT_EQ(result.exit_code, 0) << "scikit-learn reference failed (is python3-sklearn installed for " << python
                                 << "?):\n"
                                 << command.str() << "\n"
                                 << result.output;
  std::cout << "[  FIGURE  ] " << result.output;

  auto stats = accumulate(x, y, {1, 199, 300});
  struct Case {
    std::string name;
    FitOptions options;
  };
  FitOptions ridge;
  ridge.method = FitMethod::ridge;
  ridge.penalty = alpha;
  for (const Case& c : {Case{"ols", FitOptions{}}, Case{"ridge", ridge}}) {
    FitReport report;
    auto network = solve_linking_network(stats, c.options, &report);
    auto coef = linkstyle::read_npy(scratch / (c.name + "_coef.npy"));
    auto intercept = linkstyle::read_npy(scratch / (c.name + "_intercept.npy"));
    ASSERT_EQ(coef.sizes(), torch::IntArrayRef({w_dim, d})) << c.name;
    ASSERT_EQ(intercept.sizes(), torch::IntArrayRef({w_dim})) << c.name;
    EXPECT_EQ(report.dead_features, 3) << c.name;
    const double weight_error = relative_error(network.weight, coef);
    const double bias_error = relative_error(network.bias, intercept);
    figure(c.name + " weight rel err vs scikit-learn", weight_error);
    figure(c.name + " bias rel err vs scikit-learn", bias_error);
    EXPECT_LT(weight_error, 1e-4) << c.name;
    EXPECT_LT(bias_error, 1e-4) << c.name;
    for (int64_t dead : {0, 9, 17}) {
      EXPECT_TRUE(torch::all(network.weight.select(1, dead) == 0).item<bool>()) << c.name << " column " << dead;
      EXPECT_LT(coef.select(1, dead).abs().max().item<double>(), 1e-8)
          << "scikit-learn " << c.name << " column " << dead;
    }
  }
}

}  // namespace
