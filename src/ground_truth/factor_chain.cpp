// The factor signal and the chain of the ground-truth check (see ground_truth.hpp): each measured
// factor's change in a sweep against the change the probes predict, link by link.
#include "linkstyle/ground_truth.hpp"

#include <algorithm>
#include <cmath>
#include <random>

#include <torch/torch.h>

#include "ground_truth/permutation_shuffle.hpp"
#include "linkstyle/concept_changes.hpp"
#include "linkstyle/errors.hpp"
#include "linkstyle/results_database.hpp"
#include "linkstyle/worlds/shapes.hpp"
#include "splitmix.hpp"

namespace linkstyle {

using ground_truth::shuffle;

int64_t FactorConcept::part_of_class(int64_t label) const {
  if (role == "background") return 0;
  return role == "main" ? ShapesWorld::main_part_of_class(label) : ShapesWorld::secondary_part_of_class(label);
}

const std::vector<FactorConcept>& measured_factors() {
  // Not measured: the proportions (their meaning differs per class), the background hue (the
  // whole circle, where a linear correlation means nothing), the texture frequency and the light.
  static const std::vector<FactorConcept> factors = {{"position_x", "main", "centre_x"},
                                                     {"position_y", "main", "centre_y"},
                                                     {"scale", "main", "area"},
                                                     {"rotation", "main", "angle"},
                                                     {"main_hue", "main", "hue"},
                                                     {"main_saturation", "main", "saturation"},
                                                     {"main_value", "main", "luminance"},
                                                     {"secondary_hue", "secondary", "hue"},
                                                     {"secondary_value", "secondary", "luminance"},
                                                     {"background_value", "background", "luminance"},
                                                     {"background_gradient", "background", "entropy"},
                                                     {"texture_amplitude", "main", "texture"}};
  return factors;
}

SweepFactorChanges sweep_factor_changes(ResultsDatabase& results, int64_t units, int64_t side) {
  const int64_t P = int64_t(ShapesWorld::part_names().size());
  const auto& measures = concept_measures();
  const auto& factors = measured_factors();
  const int64_t F = int64_t(factors.size());
  const auto sample_class = results.sample_generator_classes();
  SweepFactorChanges result;
  result.range = results.unit_ranges(units);
  // [half, unit, factor]: half 0 holds the even samples, half 1 the odd ones.
  auto sum = torch::zeros({2, units, F}, torch::kDouble);
  auto count = torch::zeros({2, units, F}, torch::kDouble);
  auto s_sum = sum.accessor<double, 3>();
  auto s_count = count.accessor<double, 3>();
  std::vector<int64_t> measure_column;  // per factor: its measure's column in endpoint_changes
  for (const auto& f : factors)
    measure_column.push_back(std::find(measures.begin(), measures.end(), f.measure) - measures.begin());
  results.for_each_sample_changes(P, side, [&](int64_t unit, int64_t sample, const torch::Tensor& changes) {
    if (unit < 0 || unit >= units || !sample_class.count(sample)) return;
    const auto c = changes.accessor<double, 2>();
    const int64_t label = sample_class.at(sample);
    for (int64_t f = 0; f < F; ++f) {
      const int64_t part = factors[size_t(f)].part_of_class(label);
      const double value = c[part][measure_column[size_t(f)]];
      if (std::isfinite(value)) s_sum[sample % 2][unit][f] += value, s_count[sample % 2][unit][f] += 1;
    }
  });
  result.change = sum.sum(0) / count.sum(0);  // NaN where no sample measured it
  result.even_samples = sum[0] / count[0];
  result.odd_samples = sum[1] / count[1];
  return result;
}

namespace {

double pearson(const std::vector<double>& x, const std::vector<double>& y) {
  const size_t n = x.size();
  double mx = 0, my = 0;
  for (size_t i = 0; i < n; ++i) mx += x[i] / double(n), my += y[i] / double(n);
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < n; ++i)
    sxy += (x[i] - mx) * (y[i] - my), sxx += (x[i] - mx) * (x[i] - mx), syy += (y[i] - my) * (y[i] - my);
  return sxx > 0 && syy > 0 ? sxy / std::sqrt(sxx * syy) : 0.0;
}

// The correlation over units of two profiles (entries where both are finite), with a two-sided
// permutation p-value.
UnitProfileMatch match_profiles(const std::vector<double>& x, const std::vector<double>& y, std::mt19937_64& random,
                                int64_t permutations) {
  std::vector<double> a, b;
  for (size_t i = 0; i < x.size(); ++i)
    if (std::isfinite(x[i]) && std::isfinite(y[i])) a.push_back(x[i]), b.push_back(y[i]);
  UnitProfileMatch match;
  match.units = int64_t(a.size());
  if (match.units < 3) return match;
  match.correlation = pearson(a, b);
  int64_t at_least = 0;
  for (int64_t k = 0; k < permutations; ++k) {
    shuffle(b, random);
    at_least += std::abs(pearson(a, b)) >= std::abs(match.correlation);
  }
  match.p_value = double(1 + at_least) / double(1 + permutations);
  return match;
}

int64_t factor_column(const std::string& factor) {
  const auto& names = ShapesWorld::factor_names();
  return std::find(names.begin(), names.end(), factor) - names.begin();
}

// A unit's predicted sweep change (in concept SDs): partial effect x the unit's range / its SD.
std::vector<double> predicted_changes(const torch::Tensor& partial, int64_t column, const torch::Tensor& sd,
                                      const torch::Tensor& range) {
  const auto p = partial.accessor<double, 2>();
  const auto s = sd.accessor<double, 1>();
  const auto g = range.accessor<double, 1>();
  std::vector<double> out;
  for (int64_t d = 0; d < partial.size(0); ++d)
    out.push_back(s[d] > 0 && g[d] > 0 ? p[d][column] * g[d] / s[d] : double(NAN));
  return out;
}

std::vector<double> column_of(const torch::Tensor& matrix, int64_t column) {
  const auto c = matrix.select(1, column).contiguous();
  return {c.data_ptr<double>(), c.data_ptr<double>() + c.numel()};
}

}  // namespace

torch::Tensor predicted_factor_changes(const UnitProbe& probe, const SweepFactorChanges& changes, bool encoding) {
  const auto& factors = measured_factors();
  const auto& effects = encoding ? probe.correlation : probe.partial;
  if (changes.range.numel() != effects.size(0))
    throw Error("ground truth", "sweep changes and probe differ in their units");
  auto out = torch::empty({effects.size(0), int64_t(factors.size())}, torch::kDouble);
  for (size_t f = 0; f < factors.size(); ++f) {
    const auto column = predicted_changes(effects, factor_column(factors[f].factor), probe.feature_sd, changes.range);
    out.select(1, int64_t(f)).copy_(torch::tensor(column, torch::kDouble));
  }
  return out;
}

std::vector<FactorSignal> factor_signal(const UnitProbe& probe, const SweepFactorChanges& changes, uint64_t seed,
                                        int64_t permutations, bool encoding) {
  const auto& factors = measured_factors();
  const int64_t D = probe.partial.size(0);
  if (changes.change.size(0) != D || changes.change.size(1) != int64_t(factors.size()))
    throw Error("ground truth", "sweep changes and probe differ in their units or factors");
  std::vector<FactorSignal> result;
  std::mt19937_64 random(splitmix64(seed ^ 0x7369676eULL));
  for (size_t f = 0; f < factors.size(); ++f) {
    const auto match =
        match_profiles(predicted_changes(encoding ? probe.correlation : probe.partial, factor_column(factors[f].factor),
                                         probe.feature_sd, changes.range),
                       column_of(changes.change, int64_t(f)), random, permutations);
    FactorSignal signal;
    signal.factor = factors[f].factor;
    signal.measured_as = factors[f].role + " " + factors[f].measure;
    signal.units = match.units;
    signal.correlation = match.correlation;
    signal.p_value = match.p_value;
    result.push_back(signal);
  }
  return result;
}

std::vector<FactorChain> factor_chain(const UnitProbe& truth, const ConceptProbe& rendered,
                                      const ConceptProbe& generated, const ConceptProbe& rendered_replicate,
                                      const ConceptProbe& generated_replicate, const SweepFactorChanges& changes,
                                      uint64_t seed, int64_t permutations) {
  const auto& factors = measured_factors();
  const int64_t D = truth.partial.size(0);
  for (const auto* probe : {&rendered, &generated, &rendered_replicate, &generated_replicate})
    if (probe->partial.size(0) != D || probe->partial.size(1) != int64_t(factors.size()))
      throw Error("ground truth", "the concept probes and the factor probe differ in their units or factors");
  const auto signal = factor_signal(truth, changes, seed, permutations);
  std::mt19937_64 random(splitmix64(seed ^ 0x636861696eULL));
  std::vector<FactorChain> result;
  for (size_t f = 0; f < factors.size(); ++f) {
    const int64_t column = int64_t(f);
    FactorChain chain;
    chain.factor = factors[f].factor;
    chain.measured_as = factors[f].role + " " + factors[f].measure;
    chain.measurement = match_profiles(column_of(truth.partial, factor_column(chain.factor)),
                                       column_of(rendered.partial, column), random, permutations);
    chain.generator =
        match_profiles(column_of(rendered.partial, column), column_of(generated.partial, column), random, permutations);
    chain.sweep = match_profiles(predicted_changes(generated.partial, column, generated.feature_sd, changes.range),
                                 column_of(changes.change, column), random, permutations);
    chain.end_to_end = {signal[f].units, signal[f].correlation, signal[f].p_value};
    chain.rendered_reliability = match_profiles(column_of(rendered.partial, column),
                                                column_of(rendered_replicate.partial, column), random, permutations);
    chain.generated_reliability = match_profiles(column_of(generated.partial, column),
                                                 column_of(generated_replicate.partial, column), random, permutations);
    chain.sweep_reliability = match_profiles(column_of(changes.even_samples, column),
                                             column_of(changes.odd_samples, column), random, permutations);
    result.push_back(chain);
  }
  return result;
}

}  // namespace linkstyle
