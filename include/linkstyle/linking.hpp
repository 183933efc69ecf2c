// linkstyle/linking.hpp
//
// WHAT THIS REPRESENTS
//   The linking network L(r) = A r + b from classifier features r [D] to generator latents w
//   [w_dim], and everything needed to fit it without holding the data in memory:
//   - LinkingStatistics: sufficient statistics of (r, w) pairs (count, sums, r^T r, r^T w, w^T w)
//     as one moment matrix of z = [r, w, 1], about a fixed reference row (for accuracy). Products
//     run in float32 at BLAS speed (upper triangle only) and go into float64 every 4096 rows.
//   - solve_linking_network: ordinary least squares with intercept (minimum-norm when features
//     are dead or collinear, like lstsq) or ridge regression (intercept not penalised, as in
//     scikit-learn) with the penalty chosen by generalised cross-validation over a grid, all
//     penalties from one eigendecomposition.
//   - LinkingMetrics: held-out R^2 (overall and per w dimension), MSE and mean cosine(w_pred, w),
//     accumulated by streaming.
// REQUIRES
//   Finite float inputs with consistent dimensions (checked; violations throw linkstyle::Error).
// ENSURES
//   Results equal the closed-form solutions up to float32 rounding of the chunk products.
//   LinkingNetwork files are safetensors holding "A" [w_dim, D] float32 and "b" [w_dim] float32,
//   with "__metadata__" {"linkstyle": "<JSON>"} (models, method, penalty, metrics).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

namespace linkstyle {

class LinkingStatistics {
 public:
  LinkingStatistics() = default;
  LinkingStatistics(int64_t feature_dim, int64_t latent_dim);

  // Adds rows of features [n, D] and latents [n, w_dim] (any float dtype, any device).
  // `source` names where the rows come from, for the error on NaN/Inf or wrong shapes.
  void add(const torch::Tensor& features, const torch::Tensor& latents, const std::string& source = "pairs");

  int64_t count() const;
  int64_t feature_dim() const { return feature_dim_; }
  int64_t latent_dim() const { return latent_dim_; }

  // Centred second moments (float64): C_rr [D,D] (symmetric), C_rw [D,w_dim], and per-dimension
  // total sum of squares of w about its mean [w_dim]; means [D] and [w_dim].
  struct Centred {
    torch::Tensor feature_gram, cross, latent_total_sum_of_squares, feature_mean, latent_mean;
  };
  Centred centred() const;  // all at once (one pass over the moments)
  torch::Tensor centred_feature_gram() const;
  torch::Tensor centred_cross() const;
  torch::Tensor latent_total_sum_of_squares() const;
  torch::Tensor feature_mean() const;
  torch::Tensor latent_mean() const;

  void save(const std::filesystem::path& file) const;
  static LinkingStatistics load(const std::filesystem::path& file);

 private:
  // Symmetric float64 moments of z = [r - shift_r, w - shift_w, 1].
  torch::Tensor moments() const;

  int64_t feature_dim_ = 0, latent_dim_ = 0;
  torch::Tensor shift_r_, shift_w_;  // reference rows (float32), fixed by the first add
  torch::Tensor moments_;            // float64, upper triangle valid
};

enum class FitMethod { ordinary_least_squares, ridge };

struct FitOptions {
  FitMethod method = FitMethod::ordinary_least_squares;
  // Ridge: a fixed penalty, or (when unset) the best of `penalty_grid` by GCV. An empty grid
  // means the default: 10^k times the mean eigenvalue of C_rr, k = -8, -7.5, ..., 2.
  std::optional<double> penalty;
  std::vector<double> penalty_grid;
  // OLS: eigenvalues of C_rr below rcond * largest are treated as zero (minimum-norm solution).
  // The float32 chunk products put a noise floor of about 1e-7 (relative) under the eigenvalues;
  // the default stays an order of magnitude above it.
  double rcond = 1e-6;
  // Where the statistics' products run when fitting from shards (cuda is much faster).
  c10::Device device = c10::kCPU;
};

struct FitReport {
  std::string method;                                // "ols" or "ridge"
  double penalty = 0.0;                              // ridge alpha (absolute, as scikit-learn's Ridge(alpha))
  int64_t rank = 0;                                  // effective rank of C_rr used by the solution
  int64_t dead_features = 0;                         // features with zero variance (coefficients set to 0)
  std::string solver;                                // "cholesky" or "eigh"
  std::vector<std::pair<double, double>> gcv_curve;  // (penalty, GCV mean squared error)
  double seconds = 0.0;
};

struct LinkingNetwork {
  torch::Tensor weight;  // A [w_dim, D] float32
  torch::Tensor bias;    // b [w_dim] float32
  nlohmann::json metadata = nlohmann::json::object();

  int64_t feature_dim() const { return weight.size(1); }
  int64_t latent_dim() const { return weight.size(0); }
  // w = r A^T + b for r [N, D] (on r's device).
  torch::Tensor apply(const torch::Tensor& features) const;

  void save(const std::filesystem::path& file) const;
  static LinkingNetwork load(const std::filesystem::path& file);
};

LinkingNetwork solve_linking_network(const LinkingStatistics& statistics, const FitOptions& options,
                                     FitReport* report = nullptr);

class LinkingMetrics {
 public:
  // Adds predicted and true latents [n, w_dim].
  void add(const torch::Tensor& predicted, const torch::Tensor& truth);
  int64_t count() const { return count_; }
  nlohmann::json summary() const;  // r2 (variance weighted), r2_mean, r2_per_dim, mse, cosine
  double r2() const;
  double mse() const;
  double mean_cosine() const;
  std::vector<double> r2_per_dimension() const;

 private:
  int64_t count_ = 0;
  torch::Tensor sum_, sumsq_, sse_;  // float64 per dimension
  double cosine_sum_ = 0.0;
};

// Deterministic split: true when global row `row_index` belongs to the held-out set.
bool is_held_out(int64_t row_index, double holdout_fraction);

}  // namespace linkstyle
