#include "linkstyle/ground_truth.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>

#include <fmt/format.h>
#include <torch/torch.h>

#include "linkstyle/concept_changes.hpp"
#include "linkstyle/errors.hpp"
#include "linkstyle/generation.hpp"
#include "linkstyle/image_pipeline.hpp"
#include "linkstyle/part_measures.hpp"
#include "linkstyle/part_sources.hpp"
#include "linkstyle/results_database.hpp"
#include "linkstyle/worlds/shapes.hpp"
#include "splitmix.hpp"

namespace linkstyle {

using nlohmann::json;

namespace {

constexpr double kPartialRidge = 1e-2;  // keeps units that duplicate each other apart

// Standardises every column within each class (constant columns become 0).
torch::Tensor standardise_within_classes(const torch::Tensor& x, const torch::Tensor& labels, int64_t classes) {
  auto out = torch::zeros_like(x);
  for (int64_t c = 0; c < classes; ++c) {
    const auto rows = (labels == c).nonzero().squeeze(1);
    if (rows.numel() < 2) continue;
    const auto block = x.index_select(0, rows);
    const auto sd = block.std(0, true, true);
    out.index_copy_(
        0, rows,
        torch::where(sd > 1e-12, (block - block.mean(0, true)) / sd.clamp_min(1e-12), torch::zeros_like(block)));
  }
  return out;
}

// Ridge regression of standardised targets [N, F] on standardised units [N, D]: [D, F].
torch::Tensor ridge_partials(const torch::Tensor& zr, const torch::Tensor& zy) {
  const int64_t D = zr.size(1);
  const double n = double(zr.size(0));
  const auto gram = zr.t().matmul(zr) / n + kPartialRidge * torch::eye(D, torch::kDouble);
  return torch::linalg_solve(gram, zr.t().matmul(zy) / n);
}

// Each unit's within-class standard deviation (pooled over classes).
torch::Tensor within_class_sd(const torch::Tensor& r, const torch::Tensor& labels, int64_t classes) {
  auto variance = torch::zeros({r.size(1)}, torch::kDouble);
  for (int64_t c = 0; c < classes; ++c) {
    const auto rows = (labels == c).nonzero().squeeze(1);
    if (rows.numel() >= 2) variance += r.index_select(0, rows).var(0, true) * double(rows.numel());
  }
  return (variance / double(r.size(0))).sqrt();
}

}  // namespace

UnitProbe probe_shapes_units(const Classifier& classifier, const ShapesBatch& rendered, int64_t batch_size) {
  const int64_t images = rendered.images.size(0);
  if (images < 12) throw Error("probe", "needs at least 12 images");
  const torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> features;
  for (int64_t start = 0; start < images; start += batch_size)
    features.push_back(
        classifier
            .features(rendered.images.slice(0, start, std::min(images, start + batch_size)).to(classifier.device()))
            .to(torch::kCPU, torch::kDouble));
  const auto r = torch::cat(features);
  const int64_t classes = int64_t(ShapesWorld::class_names().size());
  const auto zr = standardise_within_classes(r, rendered.labels, classes);
  const auto zf = standardise_within_classes(rendered.factors.to(torch::kDouble), rendered.labels, classes);
  UnitProbe probe;
  probe.factor_names = ShapesWorld::factor_names();
  const auto within = zr.t().matmul(zf) / double(images);  // [D, F]
  // Class membership: the correlation of each unit with each class's indicator over all images
  // (standardised as one class).
  const auto pooled_z = [&](const torch::Tensor& x) {
    return standardise_within_classes(x, torch::zeros({images}, torch::kLong), 1);
  };
  const auto indicators = torch::one_hot(rendered.labels, classes).to(torch::kDouble);
  const auto membership = pooled_z(r).t().matmul(pooled_z(indicators)) / double(images);  // [D, C]
  for (const auto& name : ShapesWorld::class_names()) probe.factor_names.push_back(class_factor(name));
  probe.correlation = torch::cat({within, membership}, 1);
  probe.partial = ridge_partials(zr, zf);
  probe.feature_sd = within_class_sd(r, rendered.labels, classes);
  const auto best = probe.correlation.abs().argmax(1);
  for (int64_t d = 0; d < probe.correlation.size(0); ++d) {
    const int64_t k = best[d].item<int64_t>();
    probe.best_factor.push_back(k);
    probe.best_correlation.push_back(probe.correlation[d][k].item<double>());
  }
  return probe;
}

UnitProbe probe_shapes_units(const Classifier& classifier, int64_t images, uint64_t seed, int64_t resolution,
                             int64_t batch_size) {
  if (images < 12) throw Error("probe", "needs at least 12 images");
  return probe_shapes_units(classifier, ShapesWorld(resolution).render_class_balanced(images, seed), batch_size);
}

std::string class_factor(const std::string& class_name) { return "class:" + class_name; }

std::string factor_group(const std::string& factor) {
  static const std::map<std::string, std::string> groups = {{"position_x", "position_x"},
                                                            {"position_y", "position_y"},
                                                            {"scale", "scale"},
                                                            {"rotation", "rotation"},
                                                            {"proportion_a", "proportion"},
                                                            {"proportion_b", "proportion"},
                                                            {"main_hue", "main_hue"},
                                                            {"main_saturation", "main_saturation"},
                                                            {"main_value", "main_value"},
                                                            {"secondary_hue", "secondary_hue"},
                                                            {"secondary_value", "secondary_value"},
                                                            {"background_hue", "background_hue"},
                                                            {"background_value", "background_value"},
                                                            {"background_gradient", "background_gradient"},
                                                            {"texture_amplitude", "texture"},
                                                            {"texture_frequency", "texture"},
                                                            {"light_direction", "light_direction"}};
  if (factor.rfind("class:", 0) == 0) {
    const auto& names = ShapesWorld::class_names();
    if (std::find(names.begin(), names.end(), factor.substr(6)) != names.end()) return factor;
  }
  const auto it = groups.find(factor);
  if (it == groups.end()) throw Error("ground truth", "unknown shapes factor '" + factor + "'");
  return it->second;
}

std::vector<std::string> concept_groups(const std::string& part_name, const std::string& measure) {
  const auto& parts = ShapesWorld::part_names();
  const auto found = std::find(parts.begin(), parts.end(), part_name);
  if (found == parts.end()) throw Error("ground truth", "'" + part_name + "' is not a shapes part");
  const int64_t part = found - parts.begin();
  bool main = false;
  std::vector<std::string> owners;  // the classes drawn with this part
  for (int64_t c = 0; c < int64_t(ShapesWorld::class_names().size()); ++c) {
    main |= ShapesWorld::main_part_of_class(c) == part;
    const auto own = ShapesWorld::parts_of_class(c);
    if (part != 0 && std::find(own.begin(), own.end(), part) != own.end())
      owners.push_back(class_factor(ShapesWorld::class_names()[size_t(c)]));
  }
  const bool background = part == 0;
  const std::string role = background ? "background" : main ? "main" : "secondary";
  const auto one = [](const std::string& group) {
    return group.empty() ? std::vector<std::string>{} : std::vector{group};
  };
  if (measure == "centre_x" || measure == "flow_x") return one(background ? "" : "position_x");
  if (measure == "centre_y" || measure == "flow_y") return one(background ? "" : "position_y");
  if (measure == "area") {
    // A part grows with the object's scale (the background shrinks), and it appears or vanishes
    // with the classes that have it.
    owners.insert(owners.begin(), "scale");
    return owners;
  }
  if (measure == "angle") return one(background ? "" : "rotation");
  if (measure == "eccentricity") return one(background ? "" : "proportion");
  if (measure == "hue") return one(role + "_hue");
  if (measure == "saturation") return one(main ? "main_saturation" : "");
  if (measure == "luminance") return one(role + "_value");
  if (measure == "entropy") return one(background ? "background_gradient" : "");
  if (measure == "texture") return one(main ? "texture" : "");
  return {};
}

json Agreement::to_json() const {
  return {{"units", units},   {"agreeing", agreeing}, {"agreement", agreement},
          {"chance", chance}, {"p_value", p_value},   {"per_unit", per_unit}};
}

namespace {

// Fisher-Yates shuffle with the permutation tests' generator.
template <typename T>
void shuffle(std::vector<T>& values, std::mt19937_64& random) {
  for (size_t i = values.size(); i > 1; --i) std::swap(values[i - 1], values[random() % i]);
}

double pearson(const std::vector<double>& x, const std::vector<double>& y) {
  const size_t n = x.size();
  double mx = 0, my = 0;
  for (size_t i = 0; i < n; ++i) mx += x[i] / double(n), my += y[i] / double(n);
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < n; ++i)
    sxy += (x[i] - mx) * (y[i] - my), sxx += (x[i] - mx) * (x[i] - mx), syy += (y[i] - my) * (y[i] - my);
  return sxx > 0 && syy > 0 ? sxy / std::sqrt(sxx * syy) : 0.0;
}

}  // namespace

Agreement label_agreement(const UnitProbe& probe, const std::vector<LabelledUnit>& units, uint64_t seed,
                          int64_t permutations, bool factors_only) {
  Agreement result;
  std::vector<std::vector<std::string>> sweep_groups;
  std::vector<std::string> probe_groups;
  const auto agrees = [](const std::vector<std::string>& groups, const std::string& group) {
    return std::find(groups.begin(), groups.end(), group) != groups.end();
  };
  for (const auto& unit : units) {
    if (unit.unit < 0 || unit.unit >= int64_t(probe.best_factor.size()))
      throw Error("ground truth", fmt::format("unit {} is not in the probe", unit.unit));
    int64_t best = probe.best_factor[size_t(unit.unit)];
    if (factors_only) {
      const int64_t F = int64_t(ShapesWorld::factor_names().size());
      best = probe.correlation[unit.unit].slice(0, 0, F).abs().argmax().item<int64_t>();
    }
    const std::string factor = probe.factor_names[size_t(best)];
    sweep_groups.push_back(concept_groups(unit.part, unit.measure));
    probe_groups.push_back(factor_group(factor));
    const bool agree = agrees(sweep_groups.back(), probe_groups.back());
    result.agreeing += agree;
    result.per_unit.push_back({{"unit", unit.unit},
                               {"sweep_label", unit.part + " " + unit.measure},
                               {"sweep_groups", sweep_groups.back()},
                               {"probe_factor", factor},
                               {"probe_group", probe_groups.back()},
                               {"probe_correlation", factors_only ? probe.correlation[unit.unit][best].item<double>()
                                                                  : probe.best_correlation[size_t(unit.unit)]},
                               {"agree", agree}});
  }
  result.units = int64_t(units.size());
  if (result.units == 0) return result;
  const double n = double(units.size());
  result.agreement = double(result.agreeing) / n;
  // Chance: the expected agreement when the sweep labels are paired with the probe labels at random.
  const auto paired = paired_group_agreement(sweep_groups, probe_groups, seed, permutations);
  result.chance = paired.expected / n;
  result.p_value = paired.p_value;
  return result;
}

PairedAgreement paired_group_agreement(const std::vector<std::vector<std::string>>& concept_groups,
                                       const std::vector<std::string>& factor_groups, uint64_t seed,
                                       int64_t permutations) {
  if (concept_groups.size() != factor_groups.size())
    throw Error("ground truth", "one factor group per unit's concept groups is needed");
  const size_t n = factor_groups.size();
  const auto holds = [&](size_t i, size_t j) {
    const auto& groups = concept_groups[i];
    return std::find(groups.begin(), groups.end(), factor_groups[j]) != groups.end();
  };
  PairedAgreement result;
  if (n == 0) return result;
  for (size_t i = 0; i < n; ++i) {
    result.agreeing += holds(i, i);
    for (size_t j = 0; j < n; ++j) result.expected += holds(i, j);
  }
  result.expected /= double(n);
  std::mt19937_64 random(splitmix64(seed ^ 0x7065726dULL));
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  int64_t at_least = 0;
  for (int64_t k = 0; k < permutations; ++k) {
    shuffle(order, random);
    int64_t agree = 0;
    for (size_t i = 0; i < n; ++i) agree += holds(order[i], i);
    at_least += agree >= result.agreeing;
  }
  result.p_value = double(1 + at_least) / double(1 + permutations);
  return result;
}

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

namespace {

// Each column standardised over the rows where it is finite; NaN (and constant columns) -> 0.
torch::Tensor standardise_columns(const torch::Tensor& x) {
  const auto finite = torch::isfinite(x);
  const auto filled = torch::where(finite, x, torch::zeros_like(x));
  const auto count = finite.sum(0).to(torch::kDouble).clamp_min(1);
  const auto mean = filled.sum(0) / count;
  const auto centred = torch::where(finite, x - mean, torch::zeros_like(x));
  const auto sd = (centred.pow(2).sum(0) / count).sqrt();
  return torch::where(sd > 1e-12, centred / sd.clamp_min(1e-12), torch::zeros_like(x));
}

struct RankFigures {
  double top1 = 0, top10 = 0, median_rank = 0;
};

// The figures of the ranks of similarity[i][partner[i]] within each row i.
RankFigures rank_figures(const std::vector<std::vector<double>>& similarity, const std::vector<size_t>& partner,
                         std::vector<int64_t>* ranks = nullptr) {
  const size_t n = similarity.size();
  std::vector<double> all;
  RankFigures figures;
  for (size_t i = 0; i < n; ++i) {
    const double own = similarity[i][partner[i]];
    int64_t rank = 1;
    for (size_t j = 0; j < n; ++j) rank += j != partner[i] && similarity[i][j] > own;
    figures.top1 += rank == 1;
    figures.top10 += rank <= 10;
    all.push_back(double(rank));
    if (ranks) ranks->push_back(rank);
  }
  figures.top1 /= double(n);
  figures.top10 /= double(n);
  std::sort(all.begin(), all.end());
  figures.median_rank = n % 2 ? all[n / 2] : (all[n / 2 - 1] + all[n / 2]) / 2;
  return figures;
}

}  // namespace

ProfileIdentification identify_profiles(const torch::Tensor& predicted, const torch::Tensor& measured, uint64_t seed,
                                        int64_t permutations) {
  if (predicted.dim() != 2 || predicted.sizes() != measured.sizes())
    throw Error("ground truth", "predicted and measured profiles differ in their units or factors");
  const auto p = predicted.to(torch::kDouble), m = measured.to(torch::kDouble);
  const auto kept = (torch::isfinite(p).any(1) & torch::isfinite(m).any(1)).nonzero().squeeze(1);
  ProfileIdentification result;
  result.units = kept.numel();
  if (result.units < 2) return result;
  const auto zp = standardise_columns(p.index_select(0, kept));
  const auto zm = standardise_columns(m.index_select(0, kept));
  const auto unit_length = [](const torch::Tensor& z) { return z / z.norm(2, {1}, true).clamp_min(1e-12); };
  const auto cosine = unit_length(zm).matmul(unit_length(zp).t()).contiguous();  // [measured u, predicted v]
  const size_t n = size_t(result.units);
  std::vector<std::vector<double>> similarity(n);
  for (size_t i = 0; i < n; ++i)
    similarity[i].assign(cosine[int64_t(i)].data_ptr<double>(), cosine[int64_t(i)].data_ptr<double>() + n);
  std::vector<size_t> partner(n);
  for (size_t i = 0; i < n; ++i) partner[i] = i;
  const auto observed = rank_figures(similarity, partner, &result.rank);
  for (int64_t i = 0; i < kept.numel(); ++i) result.unit.push_back(kept[i].item<int64_t>());
  result.top1 = observed.top1;
  result.top10 = observed.top10;
  result.median_rank = observed.median_rank;
  result.chance_top1 = 1.0 / double(n);
  result.chance_top10 = double(std::min<size_t>(10, n)) / double(n);
  result.chance_median_rank = (double(n) + 1) / 2;
  std::mt19937_64 random(splitmix64(seed ^ 0x70726f66ULL));
  int64_t top1 = 0, top10 = 0, median = 0;
  for (int64_t k = 0; k < permutations; ++k) {
    shuffle(partner, random);
    const auto permuted = rank_figures(similarity, partner);
    top1 += permuted.top1 >= observed.top1;
    top10 += permuted.top10 >= observed.top10;
    median += permuted.median_rank <= observed.median_rank;
  }
  const auto p_of = [&](int64_t at_least) { return double(1 + at_least) / double(1 + permutations); };
  result.p_top1 = p_of(top1);
  result.p_top10 = p_of(top10);
  result.p_median_rank = p_of(median);
  return result;
}

json ProfileIdentification::to_json() const {
  return {{"units", units},
          {"top1", top1},
          {"top10", top10},
          {"median_rank", median_rank},
          {"chance_top1", chance_top1},
          {"chance_top10", chance_top10},
          {"chance_median_rank", chance_median_rank},
          {"p_top1", p_top1},
          {"p_top10", p_top10},
          {"p_median_rank", p_median_rank},
          {"unit", unit},
          {"rank", rank}};
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
    const auto match = match_profiles(
        predicted_changes(encoding ? probe.correlation : probe.partial, factor_column(factors[f].factor),
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

torch::Tensor concept_levels(const std::vector<std::vector<PartMeasures>>& parts, const torch::Tensor& classes,
                             int64_t side) {
  const auto& factors = measured_factors();
  const int64_t n = int64_t(parts.size());
  if (classes.numel() != n) throw Error("ground truth", "concept levels: one class per image is needed");
  const auto labels = classes.to(torch::kCPU, torch::kLong).contiguous();
  const auto label = labels.accessor<int64_t, 1>();
  auto levels = torch::full({n, int64_t(factors.size())}, NAN, torch::kDouble);
  auto out = levels.accessor<double, 2>();
  const double min_area = minimum_part_area(side);
  const int64_t class_count = int64_t(ShapesWorld::class_names().size());
  for (int64_t i = 0; i < n; ++i) {
    if (label[i] < 0 || label[i] >= class_count)
      throw Error("ground truth", fmt::format("class {} is not a shapes class", label[i]));
    for (size_t f = 0; f < factors.size(); ++f) {
      const int64_t part = factors[f].part_of_class(label[i]);
      const auto found = std::find_if(parts[size_t(i)].begin(), parts[size_t(i)].end(),
                                      [&](const PartMeasures& m) { return m.part == int(part); });
      if (found == parts[size_t(i)].end() || !(found->area >= min_area)) continue;
      const auto& m = *found;
      const auto& measure = factors[f].measure;
      double value = NAN;
      if (measure == "area")
        value = m.area / double(side * side);
      else if (measure == "luminance")
        value = m.luminance / 85.0;
      else if (measure == "entropy")
        value = m.entropy;
      else if (measure == "texture")
        value = m.texture;
      else if (measure == "hue")
        value = m.saturation >= kMinimumSaturationForHue ? m.hue_degrees : double(NAN);
      else if (measure == "saturation")
        value = m.saturation;
      else if (measure == "angle")
        value = m.angle_degrees;
      else if (measure == "centre_x")
        value = m.centre_x / double(side);
      else if (measure == "centre_y")
        value = m.centre_y / double(side);
      else
        throw Error("ground truth", "no level for the measure '" + measure + "'");
      out[i][int64_t(f)] = value;
    }
  }
  return levels;
}

ConceptProbe probe_concept_levels(const torch::Tensor& features, const torch::Tensor& levels,
                                  const torch::Tensor& classes) {
  const auto& factors = measured_factors();
  const int64_t n = features.size(0), F = int64_t(factors.size());
  if (levels.size(0) != n || classes.numel() != n || levels.size(1) != F)
    throw Error("ground truth", "concept probe: features, levels and classes differ in their images");
  const int64_t class_count = int64_t(ShapesWorld::class_names().size());
  const auto r = features.to(torch::kCPU, torch::kDouble);
  const auto labels = classes.to(torch::kCPU, torch::kLong);
  ConceptProbe probe;
  probe.partial = torch::full({r.size(1), F}, NAN, torch::kDouble);
  probe.feature_sd = within_class_sd(r, labels, class_count);
  for (int64_t f = 0; f < F; ++f) {
    const auto column = levels.select(1, f).to(torch::kDouble);
    const auto rows = torch::isfinite(column).nonzero().squeeze(1);
    probe.images.push_back(rows.numel());
    if (rows.numel() < 12) continue;
    auto y = column.index_select(0, rows).clone();
    const auto row_labels = labels.index_select(0, rows);
    const auto& measure = factors[size_t(f)].measure;
    if (measure == "hue" || measure == "angle") {
      // Centre on each class's circular mean, so that a class whose hues straddle 0 stays whole.
      const double period = measure == "hue" ? 360.0 : 180.0;
      const double to_radians = 2 * M_PI / period;
      for (int64_t c = 0; c < class_count; ++c) {
        const auto in_class = row_labels == c;
        if (!in_class.any().item<bool>()) continue;
        const auto values = y.masked_select(in_class);
        const double mean = std::atan2(values.mul(to_radians).sin().mean().item<double>(),
                                       values.mul(to_radians).cos().mean().item<double>()) /
                            to_radians;
        auto centred = values.clone();
        auto a = centred.accessor<double, 1>();
        for (int64_t i = 0; i < centred.numel(); ++i) a[i] = wrap_degrees(a[i] - mean, period);
        y.masked_scatter_(in_class, centred);
      }
    }
    const auto zr = standardise_within_classes(r.index_select(0, rows), row_labels, class_count);
    const auto zy = standardise_within_classes(y.unsqueeze(1), row_labels, class_count);
    probe.partial.select(1, f).copy_(ridge_partials(zr, zy).squeeze(1));
  }
  return probe;
}

ConceptProbe probe_rendered_concepts(const Classifier& classifier, const PartSource& parts, const ShapesBatch& rendered,
                                     int64_t batch_size) {
  const auto measured = measure_images(classifier, parts, rendered.images, batch_size);
  return probe_concept_levels(
      measured.features, concept_levels(measured.parts, rendered.labels, rendered.images.size(2)), rendered.labels);
}

ConceptProbe probe_generated_concepts(const Classifier& classifier, const Generator& generator, const PartSource& parts,
                                      int64_t images, uint64_t seed, double psi, int64_t batch_size) {
  const torch::NoGradGuard no_grad;
  const auto& names = ShapesWorld::class_names();
  const int64_t classes = int64_t(names.size());
  if (generator.class_names() != names)
    throw Error(generator.file(), "its classes are not the shapes world's (in the shapes world's order)");
  if (images < 2 * classes) throw Error("probe", fmt::format("needs at least {} generated images", 2 * classes));
  std::vector<torch::Tensor> features, labels;
  std::vector<std::vector<PartMeasures>> measured;
  for (int64_t c = 0; c < classes; ++c) {
    const int64_t count = images / classes + (c < images % classes);
    for (int64_t start = 0, index = 0; start < count; start += batch_size, ++index) {
      const int64_t n = std::min(batch_size, count - start);
      const auto w = class_latents(generator, seed, c, index, n, psi);
      const auto batch = measure_images(classifier, parts, render_latents(generator, w), n);
      features.push_back(batch.features);
      labels.push_back(torch::full({n}, c, torch::kLong));
      measured.insert(measured.end(), batch.parts.begin(), batch.parts.end());
    }
  }
  const auto classes_of_images = torch::cat(labels);
  return probe_concept_levels(torch::cat(features), concept_levels(measured, classes_of_images, generator.resolution()),
                              classes_of_images);
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
