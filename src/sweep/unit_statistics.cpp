#include "sweep/unit_statistics.hpp"

#include <algorithm>

#include <torch/torch.h>

#include "linkstyle/concept_changes.hpp"

namespace linkstyle {

namespace {

// x[u, ..., units[u]] for x [U, ..., D]: each unit's own column.
torch::Tensor own_column(const torch::Tensor& x, const torch::Tensor& unit_index) {
  auto shape = x.sizes().vec();
  shape.back() = 1;
  std::vector<int64_t> view(x.dim(), 1);
  view[0] = unit_index.size(0);
  return x.gather(x.dim() - 1, unit_index.view(view).expand(shape)).squeeze(-1);
}

// The 99th percentile of |correlation| of the set value with the other units' activations.
double off_unit_correlation_p99(const torch::Tensor& correlations, int64_t unit) {
  auto others = torch::cat({correlations.slice(0, 0, unit), correlations.slice(0, unit + 1)}).abs();
  others = torch::where(torch::isfinite(others), others, torch::zeros_like(others));
  return others.numel() ? torch::quantile(others, 0.99).item<double>() : 0.0;
}

}  // namespace

UnitChunkRows unit_chunk_rows(const TuningSet& tuning, const std::vector<int64_t>& units, int64_t steps,
                              const MeasuredImages& measured, int64_t num_parts) {
  const torch::NoGradGuard no_grad;
  const int64_t U = int64_t(units.size()), S = tuning.size(), T = steps;
  const int64_t D = tuning.features.size(1);
  const auto unit_index = torch::tensor(units, torch::kLong);
  const auto own = [&](const torch::Tensor& x) { return own_column(x, unit_index); };
  const auto values = unit_sweep_values(tuning, units, T);  // [U, T]
  const auto r = measured.features.to(torch::kDouble).reshape({U, S, T, D});
  const auto logits = measured.logits.reshape({U, S, T, -1});

  // Cycle statistics, within samples (values are centred over the steps, activations per sample).
  const auto v = values.to(torch::kDouble);
  const auto vc = v - v.mean(1, true);                               // [U, T]
  const auto rc = r - r.mean(2, true);                               // [U, S, T, D]
  const auto v_ss = vc.pow(2).sum(1) * double(S);                    // [U]
  const auto cov = (rc * vc.unsqueeze(1).unsqueeze(3)).sum({1, 2});  // [U, D]
  const auto r_ss = rc.pow(2).sum({1, 2});                           // [U, D]
  const auto corr_all = cov / (v_ss.unsqueeze(1) * r_ss).sqrt();     // [U, D]
  const auto delta = (r.select(2, T - 1) - r.select(2, 0)).abs();    // [U, S, D]
  const auto moved = (r - r.select(2, 0).unsqueeze(2)).abs();        // [U, S, T, D]
  const double others_count = std::max<double>(1.0, double(D - 1));
  const auto own_change = own(delta).mean(1);                                      // [U]
  const auto other_change = ((delta.sum(2) - own(delta)) / others_count).mean(1);  // [U]
  const auto gain = (own(cov) / v_ss).contiguous();
  const auto correlation = own(corr_all).contiguous();
  const auto sample_class = tuning.classifier_classes.view({1, S, 1, 1}).expand({U, S, T, 1});
  const auto top = logits.argmax(3).contiguous();  // [U, S, T]

  UnitChunkRows rows;
  rows.samples = S;
  rows.steps = T;
  rows.values = values.to(torch::kDouble).contiguous();
  rows.activation = own(r).contiguous();
  rows.other_change = ((moved.sum(3) - own(moved)) / others_count).contiguous();
  rows.class_logit = logits.gather(3, sample_class).squeeze(3).to(torch::kDouble).contiguous();
  rows.top_class = top;
  const auto logit_change = (rows.class_logit.select(2, T - 1) - rows.class_logit.select(2, 0)).mean(1);
  const auto flip_rate = (top.select(2, T - 1) != top.select(2, 0)).to(torch::kDouble).mean(1);
  for (int64_t u = 0; u < U; ++u) {
    const int64_t unit = units[size_t(u)];
    rows.units.push_back({unit, tuning.range_min[unit].item<double>(), tuning.range_max[unit].item<double>(),
                          gain[u].item<double>(), correlation[u].item<double>(),
                          off_unit_correlation_p99(corr_all[u], unit), (own_change[u] / other_change[u]).item<double>(),
                          logit_change[u].item<double>(), flip_rate[u].item<double>()});
  }
  rows.parts = &measured.parts;
  auto changes = group_changes({measured.parts, measured.images, measured.labels}, U, S, T, num_parts);
  rows.motion = std::move(changes.motion);
  rows.change_mean = changes.mean;
  rows.change_count = changes.count;
  return rows;
}

}  // namespace linkstyle
