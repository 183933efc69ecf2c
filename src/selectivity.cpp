#include "linkstyle/selectivity.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include <torch/torch.h>

#include "linkstyle/errors.hpp"

namespace linkstyle {

NormBins assign_norm_bins(const std::vector<double>& ranges, int64_t bins) {
  if (bins < 1) throw Error("selectivity", "need at least one norm bin");
  NormBins result;
  const int64_t n = int64_t(ranges.size());
  result.unit_bin.assign(n, 0);
  if (n == 0) {
    result.norm.push_back(0.0);
    return result;
  }
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return ranges[a] < ranges[b]; });
  const int64_t count = std::min<int64_t>(bins, n);
  // Bin k holds ranks [k n / count, (k + 1) n / count); equal ranges never straddle two bins.
  std::vector<std::vector<double>> members;
  int64_t bin = -1;
  double last_value = -1;
  int64_t next_start = 0;
  for (int64_t rank = 0; rank < n; ++rank) {
    const double value = ranges[order[rank]];
    if (rank >= next_start && value != last_value && bin + 1 < count) {
      ++bin;
      members.emplace_back();
      next_start = (bin + 1) * n / count;
    }
    result.unit_bin[order[rank]] = bin;
    members[bin].push_back(value);
    last_value = value;
  }
  for (auto& values : members) {
    std::sort(values.begin(), values.end());
    const size_t m = values.size();
    result.norm.push_back(m % 2 ? values[m / 2] : 0.5 * (values[m / 2 - 1] + values[m / 2]));
  }
  return result;
}

torch::Tensor benjamini_hochberg(const torch::Tensor& p_values) {
  const auto p = p_values.to(torch::kDouble).contiguous();
  auto q = torch::full_like(p, NAN);
  const double* pv = p.data_ptr<double>();
  double* qv = q.data_ptr<double>();
  std::vector<int64_t> tests;
  for (int64_t i = 0; i < p.numel(); ++i)
    if (std::isfinite(pv[i])) tests.push_back(i);
  std::stable_sort(tests.begin(), tests.end(), [&](int64_t a, int64_t b) { return pv[a] < pv[b]; });
  const double m = double(tests.size());
  double running = 1.0;
  for (int64_t k = int64_t(tests.size()) - 1; k >= 0; --k) {
    running = std::min(running, pv[tests[size_t(k)]] * m / double(k + 1));
    qv[tests[size_t(k)]] = running;
  }
  return q;
}

namespace {

// The null's tail of one group: its pooled |z| values, the 90th percentile and the generalised
// Pareto tail fitted to the exceedances.
class NullTail {
 public:
  explicit NullTail(std::vector<double> values) : values_(std::move(values)) {
    std::sort(values_.begin(), values_.end());
    const size_t n = values_.size();
    if (n < 20) return;
    threshold_ = values_[size_t(0.9 * double(n))];
    // A generalised Pareto tail for the exceedances y, by the method of moments (mean m,
    // variance s2): shape xi = (1 - m^2 / s2) / 2, scale beta = m (m^2 / s2 + 1) / 2; xi is kept
    // >= 0 (an exponential tail at the lightest), so that no change is ever beyond the tail.
    double sum = 0, squares = 0;
    size_t above = 0;
    for (double v : values_)
      if (v > threshold_) sum += v - threshold_, squares += (v - threshold_) * (v - threshold_), ++above;
    share_above_ = double(above) / double(n + 1);
    const double m = above > 0 ? sum / double(above) : 0.0;
    const double s2 = above > 1 ? (squares - double(above) * m * m) / double(above - 1) : 0.0;
    if (m > 0 && s2 > 0) {
      shape_ = std::clamp(0.5 * (1.0 - m * m / s2), 0.0, 0.9);
      scale_ = std::max(shape_ > 0 ? 0.5 * m * (m * m / s2 + 1.0) : m, 1e-6);
    } else {
      scale_ = std::max(m, 1e-6);
    }
  }

  double p(double a) const {
    const size_t n = values_.size();
    if (n < 20) return std::erfc(a / std::sqrt(2.0));
    if (a <= threshold_) {
      const size_t at_least = size_t(values_.end() - std::lower_bound(values_.begin(), values_.end(), a));
      return double(1 + at_least) / double(1 + n);
    }
    const double y = a - threshold_;
    if (shape_ <= 0) return share_above_ * std::exp(-y / scale_);
    return share_above_ * std::pow(1.0 + shape_ * y / scale_, -1.0 / shape_);
  }

 private:
  std::vector<double> values_;
  double threshold_ = 0, share_above_ = 0, scale_ = 1, shape_ = 0;
};

// The null's values [B, M, C] with their mean and deviation per bin and concept, over the defined
// values (NaN where fewer than 5 are defined, or the deviation vanishes).
struct NullMoments {
  int64_t bins = 0, directions = 0, concepts = 0;
  const double* values = nullptr;
  std::vector<double> mean, deviation;

  double value(int64_t b, int64_t m, int64_t c) const { return values[(b * directions + m) * concepts + c]; }
};

NullMoments null_moments(const torch::Tensor& null_values) {
  NullMoments null;
  null.bins = null_values.size(0), null.directions = null_values.size(1), null.concepts = null_values.size(2);
  null.values = null_values.data_ptr<double>();
  null.mean.assign(null.bins * null.concepts, NAN);
  null.deviation.assign(null.bins * null.concepts, NAN);
  for (int64_t b = 0; b < null.bins; ++b)
    for (int64_t c = 0; c < null.concepts; ++c) {
      double sum = 0;
      int64_t count = 0;
      for (int64_t m = 0; m < null.directions; ++m) {
        const double x = null.value(b, m, c);
        if (std::isfinite(x)) sum += x, ++count;
      }
      if (count < 5) continue;
      const double mu = sum / count;
      double squares = 0;  // second pass: no cancellation for a (nearly) constant null
      for (int64_t m = 0; m < null.directions; ++m) {
        const double x = null.value(b, m, c);
        if (std::isfinite(x)) squares += (x - mu) * (x - mu);
      }
      const double sd = std::sqrt(squares / double(count - 1));
      null.mean[b * null.concepts + c] = mu;
      null.deviation[b * null.concepts + c] = sd > 1e-12 * std::max(1.0, std::fabs(mu)) ? sd : NAN;
    }
  return null;
}

// z and the empirical p of every test against its bin's null; returns the smallest empirical p
// each test can reach (the change lies beyond every null value).
std::vector<double> z_and_empirical_p(const torch::Tensor& profile, const std::vector<int64_t>& unit_bins,
                                      const NullMoments& null, Selectivity& result) {
  const int64_t units = profile.size(0), concepts = null.concepts;
  const double* pv = profile.data_ptr<double>();
  double* z = result.z.data_ptr<double>();
  double* pe = result.p_empirical.data_ptr<double>();
  std::vector<double> min_empirical(units * concepts, NAN);
  for (int64_t u = 0; u < units; ++u) {
    const int64_t b = unit_bins[u];
    if (b < 0 || b >= null.bins) throw Error("selectivity", "a unit's bin is out of range");
    for (int64_t c = 0; c < concepts; ++c) {
      const double x = pv[u * concepts + c], mu = null.mean[b * concepts + c], sd = null.deviation[b * concepts + c];
      if (!std::isfinite(x) || !std::isfinite(mu) || !std::isfinite(sd)) continue;
      z[u * concepts + c] = (x - mu) / sd;
      int64_t at_least = 0, defined = 0;
      for (int64_t m = 0; m < null.directions; ++m) {
        const double y = null.value(b, m, c);
        if (!std::isfinite(y)) continue;
        ++defined;
        if (std::fabs(y - mu) >= std::fabs(x - mu)) ++at_least;
      }
      pe[u * concepts + c] = double(1 + at_least) / double(1 + defined);
      min_empirical[u * concepts + c] = 1.0 / double(1 + defined);
    }
  }
  return min_empirical;
}

// p of every test from its tail group's pooled null tail (|y - mu| / sd over every bin).
void tail_p(const NullMoments& null, const std::vector<int64_t>& tail_groups, Selectivity& result) {
  const int64_t units = result.z.size(0), concepts = null.concepts;
  std::map<int64_t, std::vector<double>> pooled;
  for (int64_t b = 0; b < null.bins; ++b)
    for (int64_t c = 0; c < concepts; ++c) {
      const double mu = null.mean[b * concepts + c], sd = null.deviation[b * concepts + c];
      if (!std::isfinite(mu) || !std::isfinite(sd)) continue;
      auto& values = pooled[tail_groups[size_t(c)]];
      for (int64_t m = 0; m < null.directions; ++m) {
        const double y = null.value(b, m, c);
        if (std::isfinite(y)) values.push_back(std::fabs(y - mu) / sd);
      }
    }
  std::map<int64_t, NullTail> tails;
  for (auto& [group, values] : pooled) tails.emplace(group, NullTail(std::move(values)));
  const double* z = result.z.data_ptr<double>();
  double* pn = result.p.data_ptr<double>();
  for (int64_t u = 0; u < units; ++u)
    for (int64_t c = 0; c < concepts; ++c) {
      const int64_t i = u * concepts + c;
      if (std::isfinite(z[i])) pn[i] = tails.at(tail_groups[size_t(c)]).p(std::fabs(z[i]));
    }
}

}  // namespace

Selectivity score_selectivity(const torch::Tensor& profile_in, const std::vector<int64_t>& unit_bins,
                              const torch::Tensor& null_in, double alpha, const std::vector<int64_t>& tail_groups_in) {
  if (profile_in.dim() != 2 || null_in.dim() != 3 || null_in.size(2) != profile_in.size(1))
    throw Error("selectivity", "profile must be [U, C] and null values [B, M, C]");
  if (int64_t(unit_bins.size()) != profile_in.size(0)) throw Error("selectivity", "one bin per unit is needed");
  const auto profile = profile_in.to(torch::kDouble).contiguous();
  const auto null_values = null_in.to(torch::kDouble).contiguous();
  const int64_t units = profile.size(0), concepts = profile.size(1);
  const NullMoments null = null_moments(null_values);

  Selectivity result;
  result.z = torch::full({units, concepts}, NAN, torch::kDouble);
  result.p = torch::full({units, concepts}, NAN, torch::kDouble);
  result.p_empirical = torch::full({units, concepts}, NAN, torch::kDouble);
  result.significant = torch::zeros({units, concepts}, torch::kBool);
  result.label.assign(units, -1);
  const std::vector<double> min_empirical = z_and_empirical_p(profile, unit_bins, null, result);
  std::vector<int64_t> tail_groups = tail_groups_in;
  if (tail_groups.empty())
    for (int64_t c = 0; c < concepts; ++c) tail_groups.push_back(c);
  if (int64_t(tail_groups.size()) != concepts) throw Error("selectivity", "one tail group per concept is needed");
  tail_p(null, tail_groups, result);
  // Benjamini-Hochberg over every test of every unit: q_(k) = min over j >= k of p_(j) m / j.
  result.q = benjamini_hochberg(result.p);
  const double* q = result.q.data_ptr<double>();
  const double* z = result.z.data_ptr<double>();
  const double* pe = result.p_empirical.data_ptr<double>();
  bool* sig = result.significant.data_ptr<bool>();
  for (int64_t u = 0; u < units; ++u) {
    double best = 0;
    for (int64_t c = 0; c < concepts; ++c) {
      const int64_t i = u * concepts + c;
      if (!std::isfinite(z[i])) continue;
      sig[i] = q[i] < alpha && pe[i] <= min_empirical[i] + 1e-12;
      if (sig[i] && std::fabs(z[i]) > best) best = std::fabs(z[i]), result.label[u] = c;
    }
  }
  return result;
}

}  // namespace linkstyle
