#include "linkstyle/planted_units.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include <torch/torch.h>

#include "linkstyle/errors.hpp"
#include "linkstyle/ground_truth.hpp"
#include "linkstyle/concept_changes.hpp"
#include "linkstyle/models.hpp"
#include "linkstyle/worlds/shapes.hpp"

namespace linkstyle {

namespace {

int64_t factor_index(const std::string& factor) {
  const auto& names = ShapesWorld::factor_names();
  const auto found = std::find(names.begin(), names.end(), factor);
  return found == names.end() ? -1 : int64_t(found - names.begin());
}

bool holds(const std::vector<std::string>& groups, const std::string& group) {
  return std::find(groups.begin(), groups.end(), group) != groups.end();
}

// Whether any concept of the shapes parts reflects `group`.
bool measurable_group(const std::string& group) {
  for (const auto& part : ShapesWorld::part_names())
    for (const auto& measure : concept_measures())
      if (holds(concept_groups(part, measure), group)) return true;
  return false;
}

// Recall, precision and chance of a rule from each unit's concept groups (named: the rule gave
// the unit a concept), against random pairings of the units with the planted factors.
void score_rule(const std::vector<std::vector<std::string>>& named_groups, const std::vector<bool>& named,
                const std::vector<std::string>& groups, const std::vector<bool>& measurable, uint64_t seed,
                int64_t permutations, PlantedRule& rule) {
  int64_t measurable_count = 0;
  for (size_t i = 0; i < groups.size(); ++i) measurable_count += measurable[i], rule.named += named[i];
  const auto paired = paired_group_agreement(named_groups, groups, seed, permutations);
  rule.agreeing = paired.agreeing;
  rule.precision = rule.named ? double(rule.agreeing) / double(rule.named) : 0.0;
  rule.recall = measurable_count ? double(rule.agreeing) / double(measurable_count) : 0.0;
  rule.chance = measurable_count ? paired.expected / double(measurable_count) : 0.0;
  rule.p_value = paired.p_value;
}

}  // namespace

std::string PlantedUnit::name() const { return function == "quantile" ? factor : factor + ":" + function; }

std::vector<PlantedUnit> default_planted_units() {
  std::vector<PlantedUnit> units;
  for (const auto& factor : ShapesWorld::factor_names()) {
    // The stripes' frequency is not in the image when their amplitude is near 0: no unit can
    // track it.
    if (factor == "texture_frequency") continue;
    if (factor == "background_hue" || factor == "light_direction") {
      units.push_back({int64_t(units.size()), factor, "cos"});
      units.push_back({int64_t(units.size()), factor, "sin"});
    } else {
      units.push_back({int64_t(units.size()), factor, "quantile"});
    }
  }
  return units;
}

std::vector<std::string> planted_attribute(const std::vector<PlantedUnit>& units, int64_t feature_dim) {
  std::vector<std::string> attribute(static_cast<size_t>(feature_dim));
  for (const auto& unit : units) {
    if (unit.unit < 0 || unit.unit >= feature_dim)
      throw Error("planted units", "unit " + std::to_string(unit.unit) + " is outside the " +
                                       std::to_string(feature_dim) + " features");
    attribute[size_t(unit.unit)] = unit.name();
  }
  return attribute;
}

std::vector<PlantedUnit> parse_planted_attribute(const std::vector<std::string>& attribute,
                                                 const std::filesystem::path& file) {
  std::vector<PlantedUnit> units;
  for (size_t i = 0; i < attribute.size(); ++i) {
    const std::string& entry = attribute[i];
    if (entry.empty()) continue;
    const auto colon = entry.find(':');
    PlantedUnit unit{int64_t(i), entry.substr(0, colon), colon == std::string::npos ? "quantile" : entry.substr(colon + 1)};
    if (factor_index(unit.factor) < 0)
      throw Error(file, "planted_factors[" + std::to_string(i) + "] names an unknown factor '" + unit.factor + "'");
    if (unit.function != "quantile" && unit.function != "cos" && unit.function != "sin")
      throw Error(file, "planted_factors[" + std::to_string(i) + "] names an unknown function '" + unit.function +
                            "' (expected cos or sin)");
    units.push_back(unit);
  }
  return units;
}

torch::Tensor planted_targets(const std::vector<PlantedUnit>& units, const torch::Tensor& factors_in,
                              const torch::Tensor& labels) {
  const auto factors = factors_in.to(torch::kFloat);
  const int64_t n = factors.size(0), f = factors.size(1);
  // Each class's factor range: quantiles 0 and 1 through the world's own map.
  const auto low = ShapesWorld::factors_of_quantiles(labels, torch::zeros({n, f}));
  const auto span = ShapesWorld::factors_of_quantiles(labels, torch::ones({n, f})) - low;
  std::vector<torch::Tensor> columns;
  constexpr double kTwoPi = 6.283185307179586;
  for (const auto& unit : units) {
    const int64_t k = factor_index(unit.factor);
    if (k < 0) throw Error("planted units", "unknown factor '" + unit.factor + "'");
    const auto value = factors.select(1, k);
    // Offset by 0.5 so that a target never asks a ReLU unit for 0 (where it could die).
    if (unit.function == "cos")
      columns.push_back(1.0 + 0.5 * torch::cos(kTwoPi * value));
    else if (unit.function == "sin")
      columns.push_back(1.0 + 0.5 * torch::sin(kTwoPi * value));
    else
      columns.push_back(0.5 + ((value - low.select(1, k)) / span.select(1, k)).clamp(0, 1));
  }
  if (columns.empty()) return torch::zeros({n, 0});
  return torch::stack(columns, 1);
}

PlantedCheck check_planted_units(const Classifier& classifier, int64_t images, uint64_t seed) {
  const auto& units = classifier.planted_units();
  if (units.empty()) throw Error(classifier.file(), "has no planted units (attribute planted_factors)");
  if (images < 3) throw Error("--images", "must be >= 3 to correlate, got " + std::to_string(images));
  const torch::NoGradGuard no_grad;
  const ShapesWorld world(64);
  std::vector<torch::Tensor> features;
  constexpr int64_t kBatch = 250;
  const auto rendered = world.render_class_balanced(images, seed);
  for (int64_t start = 0; start < images; start += kBatch) {
    const int64_t n = std::min(kBatch, images - start);
    features.push_back(classifier.features(rendered.images.narrow(0, start, n).to(classifier.device())).cpu());
  }
  const auto r = torch::cat(features).to(torch::kDouble);
  const auto t = planted_targets(units, rendered.factors, rendered.labels).to(torch::kDouble);
  auto standardise = [](const torch::Tensor& x) {
    const auto centred = x - x.mean(0, true);
    return centred / centred.norm(2, 0, true).clamp_min(1e-12);
  };
  const auto correlation = standardise(r).t().mm(standardise(t));  // [D, P]
  PlantedCheck check;
  std::vector<bool> planted(size_t(r.size(1)), false);
  for (size_t k = 0; k < units.size(); ++k) {
    check.correlation.push_back(correlation[units[k].unit][int64_t(k)].item<double>());
    planted[size_t(units[k].unit)] = true;
  }
  for (int64_t d = 0; d < r.size(1); ++d) {
    if (planted[size_t(d)]) continue;
    for (size_t k = 0; k < units.size(); ++k) {
      const double c = correlation[d][int64_t(k)].item<double>();
      if (std::fabs(c) > std::fabs(check.largest_free_correlation))
        check.largest_free_correlation = c, check.largest_free_unit = d, check.largest_free_target = units[k].name();
    }
  }
  return check;
}

PlantedAgreement planted_agreement(const std::vector<PlantedUnit>& planted,
                                   const std::vector<std::vector<ConceptScore>>& concepts,
                                   const std::vector<bool>& expressible, const std::vector<std::string>& part_names,
                                   uint64_t seed, int64_t permutations) {
  if (concepts.size() != planted.size() || expressible.size() != planted.size())
    throw Error("planted units", "one list of concepts and one verdict per planted unit are needed");
  PlantedAgreement result;
  result.planted = int64_t(planted.size());
  std::vector<std::vector<std::string>> label_groups, top_groups, set_groups;
  std::vector<std::string> groups;
  std::vector<bool> measurable, labelled, topped;
  const auto concept_name = [&](const ConceptScore& c) {
    if (c.part < 0 || c.part >= int64_t(part_names.size()))
      throw Error("planted units", fmt::format("part {} is not among the {} parts", c.part, part_names.size()));
    return part_names[size_t(c.part)] + " " + c.measure;
  };
  for (size_t k = 0; k < planted.size(); ++k) {
    PlantedScore score;
    score.planted = planted[k];
    score.group = factor_group(planted[k].factor);
    score.measurable = measurable_group(score.group);
    score.expressible = expressible[k];
    const ConceptScore *label = nullptr, *top = nullptr;
    std::vector<const ConceptScore*> significant;
    set_groups.emplace_back();
    for (const auto& c : concepts[k]) {
      if (!std::isfinite(c.z)) continue;
      if (!top || std::fabs(c.z) > std::fabs(top->z)) top = &c;
      if (c.significant && (!label || std::fabs(c.z) > std::fabs(label->z))) label = &c;
      if (c.significant) {
        significant.push_back(&c);
        for (const auto& group : concept_groups(part_names[size_t(c.part)], c.measure))
          if (!holds(set_groups.back(), group)) set_groups.back().push_back(group);
      }
    }
    // The set, strongest first.
    std::stable_sort(significant.begin(), significant.end(),
                     [](const ConceptScore* a, const ConceptScore* b) { return std::fabs(a->z) > std::fabs(b->z); });
    for (const auto* c : significant) score.concept_set.push_back(concept_name(*c) + (c->z > 0 ? " +" : " -"));
    score.set_agrees = holds(set_groups.back(), score.group);
    label_groups.emplace_back();
    top_groups.emplace_back();
    if (label) {
      score.label = concept_name(*label) + (label->z > 0 ? " +" : " -");
      score.label_z = label->z;
      label_groups.back() = concept_groups(part_names[size_t(label->part)], label->measure);
      score.label_agrees = holds(label_groups.back(), score.group);
    }
    if (top) {
      score.top = concept_name(*top) + (top->z > 0 ? " +" : " -");
      score.top_z = top->z;
      score.top_q = top->q;
      top_groups.back() = concept_groups(part_names[size_t(top->part)], top->measure);
      score.top_agrees = holds(top_groups.back(), score.group);
    }
    result.measurable += score.measurable;
    labelled.push_back(label != nullptr);
    topped.push_back(top != nullptr);
    groups.push_back(score.group);
    measurable.push_back(score.measurable);
    result.units.push_back(score);
  }
  score_rule(label_groups, labelled, groups, measurable, seed, permutations, result.label);
  score_rule(top_groups, topped, groups, measurable, seed + 1, permutations, result.top);
  score_rule(set_groups, labelled, groups, measurable, seed + 2, permutations, result.set);
  return result;
}

nlohmann::json PlantedAgreement::to_json() const {
  const auto rule = [](const PlantedRule& r) {
    return nlohmann::json{{"agreeing", r.agreeing}, {"named", r.named},   {"precision", r.precision},
                          {"recall", r.recall},     {"chance", r.chance}, {"p_value", r.p_value}};
  };
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& u : units)
    rows.push_back({{"unit", u.planted.unit},
                    {"target", u.planted.name()},
                    {"group", u.group},
                    {"measurable", u.measurable},
                    {"expressible", u.expressible},
                    {"label", u.label},
                    {"label_z", u.label_z},
                    {"label_agrees", u.label_agrees},
                    {"top", u.top},
                    {"top_z", u.top_z},
                    {"top_q", u.top_q},
                    {"top_agrees", u.top_agrees},
                    {"concept_set", u.concept_set},
                    {"set_agrees", u.set_agrees}});
  return {{"planted", planted}, {"measurable", measurable}, {"label", rule(label)},
          {"top", rule(top)},   {"set", rule(set)},         {"units", rows}};
}

}  // namespace linkstyle
