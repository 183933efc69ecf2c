// Label agreement of the ground-truth check (see ground_truth.hpp): the factor groups each
// concept reflects, and how often the sweep's labels and the probe's agree against chance.
#include "linkstyle/ground_truth.hpp"

#include <algorithm>
#include <map>
#include <random>

#include <fmt/format.h>
#include <torch/torch.h>

#include "ground_truth/permutation_shuffle.hpp"
#include "linkstyle/errors.hpp"
#include "linkstyle/worlds/shapes.hpp"
#include "splitmix.hpp"

namespace linkstyle {

using ground_truth::shuffle;
using nlohmann::json;

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

}  // namespace linkstyle
