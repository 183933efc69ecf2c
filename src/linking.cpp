#include "linkstyle/linking.hpp"

#include <chrono>
#include <cmath>

#include <torch/torch.h>

#include "linkstyle/errors.hpp"
#include "linkstyle/tensor_io.hpp"
#include "splitmix.hpp"

namespace linkstyle {

namespace {

// Rows per float32 product before it goes into the float64 moments: bounds the float32 rounding
// (relative noise ~1e-7 in the eigenvalues) while keeping BLAS speed.
constexpr int64_t kFloat32Rows = 4096;
constexpr int64_t kGramBlock = 256;  // column block of the upper-triangular product
const auto kDouble = torch::TensorOptions().dtype(torch::kFloat64);

std::string shape_string(const torch::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + "]";
}

torch::Tensor symmetric_from_upper(const torch::Tensor& upper) {
  return torch::triu(upper) + torch::triu(upper, 1).t();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The moments are those of z = [r - shift_r, w - shift_w, 1]: M = sum z z^T holds the count, the
// sums, r^T r, r^T w and w^T w in one symmetric matrix, computed as one upper-triangular block
// product per chunk (the syrk-like half of the work, no separate passes for sums).
LinkingStatistics::LinkingStatistics(int64_t feature_dim, int64_t latent_dim)
    : feature_dim_(feature_dim), latent_dim_(latent_dim) {
  if (feature_dim <= 0 || latent_dim <= 0) throw Error("linking statistics", "dimensions must be positive");
  const int64_t p = feature_dim + latent_dim + 1;
  moments_ = torch::zeros({p, p}, kDouble);
}

void LinkingStatistics::add(const torch::Tensor& features, const torch::Tensor& latents, const std::string& source) {
  if (features.dim() != 2 || features.size(1) != feature_dim_)
    throw Error(source, "features have shape " + shape_string(features) + ", expected [n, " +
                            std::to_string(feature_dim_) + "]");
  if (latents.dim() != 2 || latents.size(1) != latent_dim_ || latents.size(0) != features.size(0))
    throw Error(source, "latents have shape " + shape_string(latents) + ", expected [" +
                            std::to_string(features.size(0)) + ", " + std::to_string(latent_dim_) + "]");
  if (features.size(0) == 0) return;
  torch::NoGradGuard no_grad;
  // The products run where the data is (a GPU when the pairs come from one); the float64
  // moments stay on the CPU.
  const auto device = features.device();
  auto r = features;
  auto w = latents.to(device);
  const int64_t d = feature_dim_, p = d + latent_dim_ + 1;
  // Check everything before changing any state: a rejected chunk leaves no trace.
  for (int64_t begin = 0; begin < r.size(0); begin += kFloat32Rows) {
    const int64_t end = std::min(r.size(0), begin + kFloat32Rows);
    // A sum is finite exactly when no element is NaN or Inf (short of float overflow).
    if (!std::isfinite(r.slice(0, begin, end).sum().item<double>())) throw Error(source, "features contain NaN or Inf");
    if (!std::isfinite(w.slice(0, begin, end).sum().item<double>())) throw Error(source, "latents contain NaN or Inf");
  }
  if (!shift_r_.defined()) {
    // Shifting by a typical row keeps the float32 products and the float64 centring accurate.
    shift_r_ = r.to(torch::kFloat32).mean(0).to(torch::kCPU);
    shift_w_ = w.to(torch::kFloat32).mean(0).to(torch::kCPU);
  }
  for (int64_t begin = 0; begin < r.size(0); begin += kFloat32Rows) {
    const int64_t end = std::min(r.size(0), begin + kFloat32Rows);
    auto z = torch::empty({end - begin, p}, torch::TensorOptions(torch::kFloat32).device(device));
    auto z_features = z.slice(1, 0, d), z_latents = z.slice(1, d, p - 1);
    torch::sub_out(z_features, r.slice(0, begin, end), shift_r_.to(device));
    torch::sub_out(z_latents, w.slice(0, begin, end), shift_w_.to(device));
    z.select(1, p - 1).fill_(1.0f);
    for (int64_t block = 0; block < p; block += kGramBlock) {
      const int64_t block_end = std::min(p, block + kGramBlock);
      auto product = torch::mm(z.slice(1, block, block_end).t(), z.slice(1, block, p));
      moments_.slice(0, block, block_end).slice(1, block, p).add_(product.to(torch::kCPU));  // -> float64
    }
  }
}

torch::Tensor LinkingStatistics::moments() const { return symmetric_from_upper(moments_); }

int64_t LinkingStatistics::count() const {
  const int64_t p = feature_dim_ + latent_dim_ + 1;
  if (p == 1) return 0;
  return static_cast<int64_t>(std::llround(moments_[p - 1][p - 1].item<double>()));
}

LinkingStatistics::Centred LinkingStatistics::centred() const {
  auto m = moments();
  const int64_t d = feature_dim_, q = d + latent_dim_;
  const double n = m[q][q].item<double>();
  auto sums_r = m.slice(0, 0, d).select(1, q), sums_w = m.slice(0, d, q).select(1, q);
  Centred c;
  c.feature_gram = m.slice(0, 0, d).slice(1, 0, d) - torch::outer(sums_r, sums_r) / n;
  c.cross = m.slice(0, 0, d).slice(1, d, q) - torch::outer(sums_r, sums_w) / n;
  c.latent_total_sum_of_squares = m.slice(0, d, q).slice(1, d, q).diagonal() - sums_w.square() / n;
  c.feature_mean = shift_r_.to(torch::kFloat64) + sums_r / n;
  c.latent_mean = shift_w_.to(torch::kFloat64) + sums_w / n;
  return c;
}

torch::Tensor LinkingStatistics::centred_feature_gram() const { return centred().feature_gram; }
torch::Tensor LinkingStatistics::centred_cross() const { return centred().cross; }
torch::Tensor LinkingStatistics::latent_total_sum_of_squares() const { return centred().latent_total_sum_of_squares; }
torch::Tensor LinkingStatistics::feature_mean() const { return centred().feature_mean; }
torch::Tensor LinkingStatistics::latent_mean() const { return centred().latent_mean; }

void LinkingStatistics::save(const std::filesystem::path& file) const {
  TensorMap tensors{{"moments", torch::triu(moments())},
                    {"dims", torch::tensor({feature_dim_, latent_dim_}, torch::kInt64)}};
  if (shift_r_.defined()) {
    tensors["shift_r"] = shift_r_;
    tensors["shift_w"] = shift_w_;
  }
  write_safetensors(file, tensors, {{"format", "linkstyle-statistics-2"}});
}

LinkingStatistics LinkingStatistics::load(const std::filesystem::path& file) {
  auto content = read_safetensors(file);
  auto get = [&](const std::string& name) -> torch::Tensor {
    auto it = content.tensors.find(name);
    if (it == content.tensors.end()) throw Error(file, "missing tensor '" + name + "'");
    return it->second;
  };
  if (content.metadata["format"] != "linkstyle-statistics-2") throw Error(file, "not a linkstyle statistics file");
  auto dims = get("dims");
  if (dims.numel() != 2 || dims.scalar_type() != torch::kInt64) throw Error(file, "dims must be 2 int64 values");
  const int64_t d = dims[0].item<int64_t>(), w_dim = dims[1].item<int64_t>();
  if (d <= 0 || w_dim <= 0) throw Error(file, "dims must be positive");
  LinkingStatistics stats(d, w_dim);
  auto moments = get("moments");
  if (moments.sizes() != stats.moments_.sizes() || moments.scalar_type() != torch::kFloat64)
    throw Error(file, "moments must be float64 [" + std::to_string(d + w_dim + 1) + ", " +
                          std::to_string(d + w_dim + 1) + "], got " + shape_string(moments));
  if (!torch::isfinite(moments).all().item<bool>()) throw Error(file, "moments contain NaN or Inf");
  stats.moments_ = moments.clone();
  if (stats.count() < 0) throw Error(file, "negative count");
  if (content.tensors.count("shift_r")) {
    stats.shift_r_ = get("shift_r").to(torch::kFloat32);
    stats.shift_w_ = get("shift_w").to(torch::kFloat32);
    if (stats.shift_r_.sizes() != torch::IntArrayRef({d}) || stats.shift_w_.sizes() != torch::IntArrayRef({w_dim}))
      throw Error(file, "shift_r / shift_w have the wrong shapes");
    if (!torch::isfinite(stats.shift_r_).all().item<bool>() || !torch::isfinite(stats.shift_w_).all().item<bool>())
      throw Error(file, "shift_r / shift_w contain NaN or Inf");
  } else if (stats.count() > 0) {
    throw Error(file, "missing tensor 'shift_r'");
  }
  return stats;
}

// ---------------------------------------------------------------------------------------------
namespace {

// Ratio of the smallest to the largest eigenvalue of an SPD matrix given its Cholesky factor,
// by power and inverse iteration from a fixed start (a rank-deficient direction shows up at once).
double estimate_inverse_condition(const torch::Tensor& matrix, const torch::Tensor& cholesky) {
  auto generator = at::detail::createCPUGenerator(12345);
  auto start = torch::randn({matrix.size(0), 1}, generator, kDouble);
  auto v = start / start.norm();
  double largest = 0.0;
  for (int i = 0; i < 12; ++i) {
    auto next = torch::mm(matrix, v);
    largest = next.norm().item<double>();
    if (largest == 0.0) return 0.0;
    v = next / largest;
  }
  v = start / start.norm();
  double inverse_smallest = 0.0;
  for (int i = 0; i < 8; ++i) {
    auto next = torch::cholesky_solve(v, cholesky);
    inverse_smallest = next.norm().item<double>();
    if (!std::isfinite(inverse_smallest)) return 0.0;
    v = next / inverse_smallest;
  }
  return 1.0 / (inverse_smallest * largest);
}

}  // namespace

namespace {

// Ordinary least squares on the live features: Cholesky when well conditioned, else the
// minimum-norm solution from the eigenvectors above rcond.
torch::Tensor solve_ordinary_least_squares(const torch::Tensor& g, const torch::Tensor& c, double rcond,
                                           FitReport& out) {
  out.method = "ols";
  auto [factor, info] = torch::linalg_cholesky_ex(g);
  if (info.item<int64_t>() == 0 && estimate_inverse_condition(g, factor) > 10.0 * rcond) {
    out.solver = "cholesky";
    out.rank = g.size(0);
    return torch::cholesky_solve(c, factor);
  }
  auto [values, vectors] = torch::linalg_eigh(g);
  auto keep = values > rcond * values.max().item<double>();
  auto kept_values = values.index({keep});
  auto kept_vectors = vectors.index({torch::indexing::Slice(), keep});
  out.solver = "eigh";
  out.rank = kept_values.numel();
  return torch::mm(kept_vectors, torch::mm(kept_vectors.t(), c) / kept_values.unsqueeze(1));
}

// Ridge on the live features, with the given penalty or the best of the grid by generalised
// cross-validation (the training residual and degrees of freedom from the eigenvalues).
torch::Tensor solve_ridge(const torch::Tensor& g, const torch::Tensor& c, double latent_total_sum_of_squares, int64_t n,
                          const FitOptions& options, FitReport& out) {
  out.method = "ridge";
  out.solver = "eigh";
  auto [values, vectors] = torch::linalg_eigh(g);
  values = values.clamp_min(0.0);
  out.rank = g.size(0);
  const int64_t w_dim = c.size(1);
  auto rotated = torch::mm(vectors.t(), c);  // G = V^T C_rw
  auto energy = rotated.square().sum(1);     // ||G_i||^2
  auto gcv = [&](double alpha) {
    auto shrink = 1.0 / (values + alpha);
    const double sse = latent_total_sum_of_squares - 2.0 * (shrink * energy).sum().item<double>() +
                       (shrink.square() * values * energy).sum().item<double>();
    const double dof = (values * shrink).sum().item<double>() + 1.0;  // + intercept
    const double denominator = 1.0 - dof / static_cast<double>(n);
    return sse / (static_cast<double>(n) * static_cast<double>(w_dim) * denominator * denominator);
  };
  double alpha = 0.0;
  if (options.penalty) {
    alpha = *options.penalty;
    if (!(alpha >= 0.0 && std::isfinite(alpha))) throw SettingError("fit.penalty", "must be a finite number >= 0");
  } else {
    std::vector<double> grid = options.penalty_grid;
    if (grid.empty()) {
      const double mean_eigenvalue = std::max(values.mean().item<double>(), 1e-300);
      for (int k = -16; k <= 4; ++k) grid.push_back(mean_eigenvalue * std::pow(10.0, k / 2.0));
    }
    double best = std::numeric_limits<double>::infinity();
    for (double candidate : grid) {
      const double score = gcv(candidate);
      out.gcv_curve.emplace_back(candidate, score);
      if (std::isfinite(score) && score < best) best = score, alpha = candidate;
    }
  }
  out.penalty = alpha;
  return torch::mm(vectors, rotated / (values + alpha).unsqueeze(1));
}

}  // namespace

LinkingNetwork solve_linking_network(const LinkingStatistics& statistics, const FitOptions& options,
                                     FitReport* report) {
  const auto started = std::chrono::steady_clock::now();
  const int64_t n = statistics.count();
  if (n < 2) throw Error("pairs", "need at least 2 training pairs to fit, have " + std::to_string(n));
  torch::NoGradGuard no_grad;
  FitReport local;
  FitReport& out = report ? *report : local;
  out = FitReport{};

  const auto centred = statistics.centred();
  const auto& gram = centred.feature_gram;
  const auto& cross = centred.cross;
  const int64_t d = gram.size(0), w_dim = cross.size(1);

  // Dead features (zero variance) get zero coefficients, as in the minimum-norm solution.
  auto variance = gram.diagonal();
  const double largest_variance = variance.max().item<double>();
  auto live = (variance > std::max(largest_variance * 1e-12, 0.0)).nonzero().squeeze(1);
  out.dead_features = d - live.numel();
  torch::Tensor coefficients = torch::zeros({d, w_dim}, kDouble);  // [D, w_dim]
  if (live.numel() > 0) {
    auto g = gram.index_select(0, live).index_select(1, live);
    auto c = cross.index_select(0, live);
    const auto solution =
        options.method == FitMethod::ordinary_least_squares
            ? solve_ordinary_least_squares(g, c, options.rcond, out)
            : solve_ridge(g, c, centred.latent_total_sum_of_squares.sum().item<double>(), n, options, out);
    coefficients.index_copy_(0, live, solution);
  }

  LinkingNetwork network;
  auto weight = coefficients.t().contiguous();  // [w_dim, D]
  auto bias = centred.latent_mean - torch::mv(weight, centred.feature_mean);
  network.weight = weight.to(torch::kFloat32);
  network.bias = bias.to(torch::kFloat32);
  if (!torch::isfinite(network.weight).all().item<bool>() || !torch::isfinite(network.bias).all().item<bool>())
    throw Error("pairs", "the fit produced non-finite coefficients (degenerate data?)");
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  network.metadata = {{"method", out.method}, {"penalty", out.penalty},
                      {"rank", out.rank},     {"dead_features", out.dead_features},
                      {"solver", out.solver}, {"training_pairs", n}};
  return network;
}

// ---------------------------------------------------------------------------------------------
torch::Tensor LinkingNetwork::apply(const torch::Tensor& features) const {
  auto a = weight.to(features.device());
  auto b = bias.to(features.device());
  return torch::addmm(b, features.to(torch::kFloat32), a.t());
}

void LinkingNetwork::save(const std::filesystem::path& file) const {
  write_safetensors(file, {{"A", weight.contiguous()}, {"b", bias.contiguous()}},
                    {{"format", "linkstyle-linking-network-1"}, {"linkstyle", metadata.dump()}});
}

LinkingNetwork LinkingNetwork::load(const std::filesystem::path& file) {
  auto content = read_safetensors(file);
  if (!content.tensors.count("A") || !content.tensors.count("b"))
    throw Error(file, "not a linking network: tensors 'A' and 'b' are required");
  LinkingNetwork network;
  network.weight = content.tensors["A"].to(torch::kFloat32);
  network.bias = content.tensors["b"].to(torch::kFloat32);
  if (network.weight.dim() != 2 || network.bias.dim() != 1 || network.bias.size(0) != network.weight.size(0))
    throw Error(file, "A must be [w_dim, D] and b [w_dim]; got A " + shape_string(network.weight) + ", b " +
                          shape_string(network.bias));
  if (!torch::isfinite(network.weight).all().item<bool>() || !torch::isfinite(network.bias).all().item<bool>())
    throw Error(file, "contains NaN or Inf coefficients");
  auto it = content.metadata.find("linkstyle");
  if (it != content.metadata.end()) {
    try {
      network.metadata = nlohmann::json::parse(it->second);
    } catch (const std::exception&) {
      throw Error(file, "metadata is not valid JSON");
    }
  }
  return network;
}

// ---------------------------------------------------------------------------------------------
void LinkingMetrics::add(const torch::Tensor& predicted, const torch::Tensor& truth) {
  if (predicted.sizes() != truth.sizes() || predicted.dim() != 2)
    throw Error("metrics", "predicted " + shape_string(predicted) + " and true " + shape_string(truth) +
                               " latents differ in shape");
  if (predicted.size(0) == 0) return;
  auto p = predicted.to(torch::kCPU, torch::kFloat64);
  auto t = truth.to(torch::kCPU, torch::kFloat64);
  if (!sum_.defined()) {
    sum_ = torch::zeros({t.size(1)}, kDouble);
    sumsq_ = torch::zeros({t.size(1)}, kDouble);
    sse_ = torch::zeros({t.size(1)}, kDouble);
  }
  // sum_ holds the running mean and sumsq_ the sum of squared deviations about it, merged chunk
  // by chunk (Chan et al.). Unlike sumsq - sum^2/n this does not cancel: a constant dimension
  // gets exactly 0, so the constant-target convention of r2_per_dimension applies.
  const double n_old = static_cast<double>(count_), n_new = static_cast<double>(t.size(0));
  const double n_total = n_old + n_new;
  auto first = t[0];
  auto chunk_mean = first + (t - first).sum(0) / n_new;  // exactly `first` when constant
  auto chunk_m2 = (t - chunk_mean).square().sum(0);
  auto delta = chunk_mean - sum_;
  sumsq_ += chunk_m2 + delta.square() * (n_old * n_new / n_total);
  sum_ += delta * (n_new / n_total);
  sse_ += (p - t).square().sum(0);
  cosine_sum_ += torch::cosine_similarity(p, t, 1, 1e-12).sum().item<double>();
  count_ += t.size(0);
}

std::vector<double> LinkingMetrics::r2_per_dimension() const {
  std::vector<double> out;
  if (count_ == 0) return out;
  const auto& total = sumsq_;  // per-dimension total sum of squares about the mean
  for (int64_t j = 0; j < total.numel(); ++j) {
    const double sst = total[j].item<double>(), sse = sse_[j].item<double>();
    // Constant targets: perfect when predicted exactly, else 0 (scikit-learn's convention).
    out.push_back(sst > 0 ? 1.0 - sse / sst : (sse == 0 ? 1.0 : 0.0));
  }
  return out;
}

double LinkingMetrics::r2() const {
  if (count_ == 0) return std::nan("");
  const double total = sumsq_.sum().item<double>();
  return 1.0 - sse_.sum().item<double>() / total;
}

double LinkingMetrics::mse() const {
  if (count_ == 0) return std::nan("");
  return sse_.sum().item<double>() / static_cast<double>(count_ * sse_.numel());
}

double LinkingMetrics::mean_cosine() const {
  return count_ == 0 ? std::nan("") : cosine_sum_ / static_cast<double>(count_);
}

nlohmann::json LinkingMetrics::summary() const {
  auto per_dim = r2_per_dimension();
  double mean = 0.0;
  for (double v : per_dim) mean += v;
  if (!per_dim.empty()) mean /= static_cast<double>(per_dim.size());
  return {{"pairs", count_},         {"r2", r2()},           {"r2_mean_over_dims", mean}, {"mse", mse()},
          {"cosine", mean_cosine()}, {"r2_per_dim", per_dim}};
}

bool is_held_out(int64_t row_index, double holdout_fraction) {
  if (holdout_fraction <= 0.0) return false;
  // splitmix64 of the row index: a fixed, well-mixed assignment independent of shard layout.
  const uint64_t z = splitmix64(static_cast<uint64_t>(row_index));
  return static_cast<double>(z >> 11) * 0x1.0p-53 < holdout_fraction;
}

}  // namespace linkstyle
