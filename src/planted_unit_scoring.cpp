// Planted units as known answers: the check of a classifier's planted units on fresh renders, and
// the method's sweep labels scored against them (see planted_unit_scoring.hpp).
#include "linkstyle/planted_unit_scoring.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include <torch/torch.h>

#include "linkstyle/concept_changes.hpp"
#include "linkstyle/errors.hpp"
#include "linkstyle/ground_truth.hpp"
#include "linkstyle/models.hpp"
#include "linkstyle/worlds/shapes.hpp"

namespace linkstyle {

namespace {

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
