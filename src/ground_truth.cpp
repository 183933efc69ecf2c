#include "linkstyle/ground_truth.hpp"

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include <fmt/format.h>
#include <torch/torch.h>

#include "linkstyle/errors.hpp"
#include "linkstyle/worlds/shapes.hpp"
#include "splitmix.hpp"

namespace linkstyle {

using nlohmann::json;

UnitProbe probe_shapes_units(const Classifier& classifier, int64_t images, uint64_t seed, int64_t resolution,
                             int64_t batch_size) {
  if (images < 12) throw Error("probe", "needs at least 12 images");
  const torch::NoGradGuard no_grad;
  const ShapesWorld world(resolution);
  const auto batch = world.render_class_balanced(images, seed);
  std::vector<torch::Tensor> features;
  for (int64_t start = 0; start < images; start += batch_size)
    features.push_back(classifier.features(batch.images.slice(0, start, std::min(images, start + batch_size))
                                               .to(classifier.device()))
                           .to(torch::kCPU, torch::kDouble));
  auto r = torch::cat(features);
  auto f = batch.factors.to(torch::kDouble);
  // Standardise within each class (constant columns become 0), then pool.
  const auto standardise = [&](torch::Tensor x) {
    auto out = torch::zeros_like(x);
    for (int64_t c = 0; c < int64_t(ShapesWorld::class_names().size()); ++c) {
      const auto rows = (batch.labels == c).nonzero().squeeze(1);
      if (rows.numel() < 2) continue;
      const auto block = x.index_select(0, rows);
      const auto sd = block.std(0, true, true);
      out.index_copy_(0, rows, torch::where(sd > 1e-12, (block - block.mean(0, true)) / sd.clamp_min(1e-12),
                                            torch::zeros_like(block)));
    }
    return out;
  };
  const auto zr = standardise(r), zf = standardise(f);
  UnitProbe probe;
  probe.factor_names = ShapesWorld::factor_names();
  probe.correlation = zr.t().matmul(zf) / double(images);  // [D, F]
  const auto best = probe.correlation.abs().argmax(1);
  for (int64_t d = 0; d < probe.correlation.size(0); ++d) {
    const int64_t k = best[d].item<int64_t>();
    probe.best_factor.push_back(k);
    probe.best_correlation.push_back(probe.correlation[d][k].item<double>());
  }
  return probe;
}

std::string factor_group(const std::string& factor) {
  static const std::map<std::string, std::string> groups = {
      {"position_x", "position_x"},       {"position_y", "position_y"},
      {"scale", "scale"},                 {"rotation", "rotation"},
      {"proportion_a", "proportion"},     {"proportion_b", "proportion"},
      {"main_hue", "main_hue"},           {"main_saturation", "main_saturation"},
      {"main_value", "main_value"},       {"secondary_hue", "secondary_hue"},
      {"secondary_value", "secondary_value"}, {"background_hue", "background_hue"},
      {"background_value", "background_value"}, {"background_gradient", "background_gradient"},
      {"texture_amplitude", "texture"},   {"texture_frequency", "texture"},
      {"light_direction", "light_direction"}};
  const auto it = groups.find(factor);
  if (it == groups.end()) throw Error("ground truth", "unknown shapes factor '" + factor + "'");
  return it->second;
}

std::string concept_group(const std::string& part_name, const std::string& measure) {
  const auto& parts = ShapesWorld::part_names();
  const auto found = std::find(parts.begin(), parts.end(), part_name);
  if (found == parts.end()) throw Error("ground truth", "'" + part_name + "' is not a shapes part");
  const int64_t part = found - parts.begin();
  bool main = false;
  for (int64_t c = 0; c < int64_t(ShapesWorld::class_names().size()); ++c) main |= ShapesWorld::main_part_of_class(c) == part;
  const bool background = part == 0;
  const std::string role = background ? "background" : main ? "main" : "secondary";
  if (measure == "centre_x" || measure == "flow_x") return background ? "" : "position_x";
  if (measure == "centre_y" || measure == "flow_y") return background ? "" : "position_y";
  if (measure == "area") return "scale";  // the background's area shrinks as the object grows
  if (measure == "angle") return background ? "" : "rotation";
  if (measure == "eccentricity") return background ? "" : "proportion";
  if (measure == "hue") return role + "_hue";
  if (measure == "saturation") return main ? "main_saturation" : "";
  if (measure == "luminance") return role + "_value";
  if (measure == "entropy") return background ? "background_gradient" : main ? "texture" : "";
  return "";
}

json Agreement::to_json() const {
  return {{"units", units}, {"agreeing", agreeing}, {"agreement", agreement}, {"chance", chance},
          {"p_value", p_value}, {"per_unit", per_unit}};
}

Agreement label_agreement(const UnitProbe& probe, const std::vector<LabelledUnit>& units, uint64_t seed,
                          int64_t permutations) {
  Agreement result;
  std::vector<std::string> sweep_groups, probe_groups;
  for (const auto& unit : units) {
    if (unit.unit < 0 || unit.unit >= int64_t(probe.best_factor.size()))
      throw Error("ground truth", fmt::format("unit {} is not in the probe", unit.unit));
    const std::string factor = probe.factor_names[probe.best_factor[unit.unit]];
    sweep_groups.push_back(concept_group(unit.part, unit.measure));
    probe_groups.push_back(factor_group(factor));
    const bool agree = sweep_groups.back() == probe_groups.back();
    result.agreeing += agree;
    result.per_unit.push_back({{"unit", unit.unit}, {"sweep_label", unit.part + " " + unit.measure},
                               {"sweep_group", sweep_groups.back()}, {"probe_factor", factor},
                               {"probe_group", probe_groups.back()},
                               {"probe_correlation", probe.best_correlation[unit.unit]}, {"agree", agree}});
  }
  result.units = int64_t(units.size());
  if (result.units == 0) return result;
  result.agreement = double(result.agreeing) / double(result.units);
  std::map<std::string, double> sweep_share, probe_share;
  for (size_t i = 0; i < units.size(); ++i) {
    sweep_share[sweep_groups[i]] += 1.0 / double(units.size());
    probe_share[probe_groups[i]] += 1.0 / double(units.size());
  }
  for (const auto& [group, share] : sweep_share)
    if (!group.empty() && probe_share.count(group)) result.chance += share * probe_share[group];
  // Permutation test: shuffle the sweep labels over the units.
  std::mt19937_64 random(splitmix64(seed ^ 0x7065726dULL));
  int64_t at_least = 0;
  auto shuffled = sweep_groups;
  for (int64_t k = 0; k < permutations; ++k) {
    for (size_t i = shuffled.size(); i > 1; --i) std::swap(shuffled[i - 1], shuffled[random() % i]);
    int64_t agree = 0;
    for (size_t i = 0; i < shuffled.size(); ++i) agree += shuffled[i] == probe_groups[i];
    at_least += agree >= result.agreeing;
  }
  result.p_value = double(1 + at_least) / double(1 + permutations);
  return result;
}

}  // namespace linkstyle
