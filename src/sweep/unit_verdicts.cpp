#include "sweep/unit_verdicts.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <torch/torch.h>

#include "linkstyle/concept_changes.hpp"

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
  const auto p_normal = scores.p_normal.accessor<double, 2>();
  const auto p_empirical = scores.p_empirical.accessor<double, 2>();
  const auto significant = scores.significant.accessor<bool, 2>();
  const auto change = profile.accessor<double, 2>();
  UnitVerdict verdict;
  verdict.unit = unit;
  for (int64_t c = 0; c < C; ++c) {
    if (!std::isfinite(z[i][c])) continue;
    verdict.significant_concepts += significant[i][c];
    verdict.concepts.push_back({c / M, concept_measures()[size_t(c % M)], change[i][c], z[i][c], p_normal[i][c],
                                p_empirical[i][c], significant[i][c]});
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

}  // namespace

VerdictCounts write_unit_verdicts(ResultsDatabase& results, const SweepSettings& settings,
                                  const std::vector<int64_t>& units, const NormBins& bins, int64_t num_parts) {
  const int64_t U = int64_t(units.size()), B = int64_t(bins.norm.size());
  auto profile = results.unit_concept_changes(units, num_parts);
  const auto null_values = results.null_concept_changes(B, settings.null_directions, num_parts);
  std::vector<int64_t> unit_bins(U);
  for (int64_t i = 0; i < U; ++i) {
    unit_bins[i] = std::max<int64_t>(bins.unit_bin[i], 0);
    if (bins.unit_bin[i] < 0) profile[i].fill_(NAN);  // a unit that never varies is not tested
  }
  const auto scores = score_selectivity(profile, unit_bins, null_values, settings.significance);
  const auto part_names = results.part_names();
  VerdictCounts counts;
  const auto cycles = results.unit_cycles();
  std::vector<UnitVerdict> verdicts;
  for (int64_t i = 0; i < U; ++i) {
    const auto cycle = cycles.find(units[i]);
    if (cycle == cycles.end()) continue;  // not swept yet
    auto verdict = unit_verdict(units[i], i, scores, profile, part_names);
    verdict.expressible = is_expressible(cycle->second, settings);
    counts.expressible += verdict.expressible;
    counts.labelled += !verdict.label_part.empty();
    verdicts.push_back(std::move(verdict));
  }
  results.write_verdicts(verdicts);
  return counts;
}

}  // namespace linkstyle
