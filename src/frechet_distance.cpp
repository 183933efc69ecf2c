// The Frechet distance between feature Gaussians (see frechet_distance.hpp).
#include "frechet_distance.hpp"

#include <algorithm>
#include <string>
#include <utility>

#include <torch/torch.h>

#include "linkstyle/errors.hpp"

namespace linkstyle {

double frechet_distance(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.dim() != 2 || b.dim() != 2 || a.size(1) != b.size(1) || a.size(0) < 2 || b.size(0) < 2)
    throw Error("frechet_distance", "needs two feature sets [N, D] with the same D and N >= 2");
  const auto moments = [](const torch::Tensor& x) {
    const auto x64 = x.to(torch::kCPU, torch::kDouble);
    const auto mean = x64.mean(0);
    const auto centred = x64 - mean;
    return std::pair{mean, centred.t().mm(centred) / static_cast<double>(x64.size(0) - 1)};
  };
  const auto [mean_a, cov_a] = moments(a);
  const auto [mean_b, cov_b] = moments(b);
  if (!torch::isfinite(cov_a).all().item<bool>() || !torch::isfinite(cov_b).all().item<bool>())
    throw Error("frechet_distance", "the features are not all finite");
  try {
    const auto [values, vectors] = torch::linalg_eigh(cov_a);
    const auto root_a = vectors.mm(torch::diag(values.clamp_min(0).sqrt())).mm(vectors.t());
    auto product = root_a.mm(cov_b).mm(root_a);
    product = (product + product.t()) * 0.5;
    const double cross = torch::linalg_eigvalsh(product).clamp_min(0).sqrt().sum().item<double>();
    return std::max(0.0, (mean_a - mean_b).square().sum().item<double>() + cov_a.trace().item<double>() +
                             cov_b.trace().item<double>() - 2.0 * cross);
  } catch (const c10::Error& error) {
    throw Error("frechet_distance", std::string("the eigendecomposition failed: ") + error.what_without_backtrace());
  }
}

}  // namespace linkstyle
