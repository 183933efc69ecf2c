#include "sweep/unit_verdicts.hpp"

#include <algorithm>
#include <cmath>
#include <map>

#include <fmt/format.h>
#include <torch/torch.h>

#include "linkstyle/concept_changes.hpp"
#include "linkstyle/label_confidence.hpp"

namespace linkstyle {

namespace {

bool is_expressible(const UnitCycleFigures& cycle, const SweepSettings& s) {
  return cycle.defined && cycle.gain >= s.min_gain && cycle.correlation >= s.min_correlation &&
         cycle.specificity >= s.min_specificity;
}

// Unit i's row of the scores: its tested concepts and its label.
UnitVerdict unit_verdict(int64_t unit, int64_t i, const Selectivity& scores, const torch::Tensor& profile,
                         const std::vector<std::string>& part_names) {
  const int64_t M = kConceptMeasures, C = profile.size(1);
  const auto z = scores.z.accessor<double, 2>();
  const auto p = scores.p.accessor<double, 2>();
  const auto p_empirical = scores.p_empirical.accessor<double, 2>();
  const auto q = scores.q.accessor<double, 2>();
  const auto significant = scores.significant.accessor<bool, 2>();
  const auto change = profile.accessor<double, 2>();
  UnitVerdict verdict;
  verdict.unit = unit;
  for (int64_t c = 0; c < C; ++c) {
    if (!std::isfinite(z[i][c])) continue;
    verdict.significant_concepts += significant[i][c];
    verdict.concepts.push_back({c / M, concept_measures()[size_t(c % M)], change[i][c], z[i][c], p[i][c],
                                p_empirical[i][c], q[i][c], significant[i][c]});
  }
  const int64_t label = scores.label[size_t(i)];
  if (label >= 0) {
    verdict.label_part = label / M < int64_t(part_names.size()) ? part_names[size_t(label / M)] : std::string();
    verdict.label_measure = concept_measures()[size_t(label % M)];
    verdict.label_z = z[i][label];
    verdict.label = fmt::format("{} {} {}", verdict.label_part, verdict.label_measure, verdict.label_z > 0 ? "+" : "-");
  }
  return verdict;
}

// Per unit (index into `units`): the share of its samples whose own change of its label's concept
// has the label's sign, as (agreeing + 1) / (defined + 2), so that 2 of 2 samples (a part of
// one class) count less than 12 of 12; NaN without a label.
std::vector<double> label_sample_agreement(ResultsDatabase& results, const std::vector<int64_t>& units,
                                           const Selectivity& scores, int64_t num_parts, int64_t side) {
  const int64_t M = kConceptMeasures;
  std::map<int64_t, size_t> index;
  for (size_t i = 0; i < units.size(); ++i) index[units[i]] = i;
  std::vector<double> agree(units.size(), 0.0), defined(units.size(), 0.0);
  const auto z = scores.z.accessor<double, 2>();
  results.for_each_sample_changes(num_parts, side, [&](int64_t unit, int64_t, const torch::Tensor& changes) {
    const auto found = index.find(unit);
    if (found == index.end()) return;
    const size_t i = found->second;
    const int64_t label = scores.label[i];
    if (label < 0) return;
    const double value = changes[label / M][label % M].item<double>();
    if (!std::isfinite(value)) return;
    defined[i] += 1;
    agree[i] += value * z[int64_t(i)][label] > 0;
  });
  std::vector<double> share(units.size(), NAN);
  for (size_t i = 0; i < units.size(); ++i)
    if (scores.label[i] >= 0) share[i] = (agree[i] + 1) / (defined[i] + 2);
  return share;
}

// 1 - |z of the second strongest tested concept| / |z of the label| (1 when it is the only one).
double label_margin(const Selectivity& scores, int64_t i) {
  const int64_t label = scores.label[size_t(i)];
  const auto z = scores.z[i];
  const double first = std::fabs(z[label].item<double>());
  double second = 0;
  const auto values = z.contiguous();
  const double* v = values.data_ptr<double>();
  for (int64_t c = 0; c < values.numel(); ++c)
    if (c != label && std::isfinite(v[c])) second = std::max(second, std::fabs(v[c]));
  return first > 0 ? std::clamp(1.0 - second / first, 0.0, 1.0) : double(NAN);
}

}  // namespace

VerdictCounts write_unit_verdicts(ResultsDatabase& results, const SweepSettings& settings,
                                  const std::vector<int64_t>& units, const NormBins& bins, int64_t num_parts,
                                  int64_t side) {
  const int64_t U = int64_t(units.size()), B = int64_t(bins.norm.size());
  auto profile = results.unit_concept_changes(units, num_parts);
  const auto null_values = results.null_concept_changes(B, settings.null_directions, num_parts);
  std::vector<int64_t> unit_bins(U);
  for (int64_t i = 0; i < U; ++i) {
    unit_bins[i] = std::max<int64_t>(bins.unit_bin[i], 0);
    if (bins.unit_bin[i] < 0) profile[i].fill_(NAN);  // a unit that never varies is not tested
  }
  // Concepts of one measure share a null tail (the columns are part x measure).
  std::vector<int64_t> tail_groups(size_t(profile.size(1)));
  for (size_t c = 0; c < tail_groups.size(); ++c) tail_groups[c] = int64_t(c) % kConceptMeasures;
  const auto scores = score_selectivity(profile, unit_bins, null_values, settings.significance, tail_groups);
  const auto part_names = results.part_names();
  VerdictCounts counts;
  const auto cycles = results.unit_cycles();
  const auto sample_agreement = label_sample_agreement(results, units, scores, num_parts, side);
  std::vector<UnitVerdict> verdicts;
  for (int64_t i = 0; i < U; ++i) {
    const auto cycle = cycles.find(units[i]);
    if (cycle == cycles.end()) continue;  // not swept yet
    auto verdict = unit_verdict(units[i], i, scores, profile, part_names);
    verdict.expressible = is_expressible(cycle->second, settings);
    if (!verdict.label_part.empty()) {
      verdict.label_sample_agreement = sample_agreement[size_t(i)];
      verdict.label_margin = label_margin(scores, i);
      verdict.label_confidence =
          label_confidence({std::fabs(verdict.label_z), verdict.label_sample_agreement, verdict.label_margin,
                            std::isfinite(cycle->second.correlation) ? cycle->second.correlation : 0.0});
    }
    counts.expressible += verdict.expressible;
    counts.labelled += !verdict.label_part.empty();
    verdicts.push_back(std::move(verdict));
  }
  results.write_verdicts(verdicts);
  return counts;
}

}  // namespace linkstyle
