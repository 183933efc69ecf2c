// linkstyle/planted_unit_scoring.hpp
//
// WHAT THIS REPRESENTS
//   The planted units (planted_units.hpp) as known answers: how well a classifier's planted units
//   track their factors on fresh renders, and how well the method's sweep labels name the planted
//   factors (scored against the sweep's concepts as the results database holds them).
// REQUIRES
//   A classifier with planted units (check_planted_units); per planted unit its tested concepts
//   with parts indexing the shapes world's part names (planted_agreement).
// ENSURES
//   Deterministic for a seed and thread count; bad arguments are a linkstyle::Error naming the
//   problem (a classifier without planted units, too few images, lists of mismatched lengths).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "linkstyle/planted_units.hpp"
#include "linkstyle/results_database.hpp"

namespace linkstyle {

class Classifier;

// How well a classifier's planted units track their factors on `images` fresh renders
// (class-balanced, `seed`, at the world's training resolution 64): each planted unit's Pearson
// correlation with its target over all images, and the free unit whose |correlation| with any
// planted target is largest.
struct PlantedCheck {
  std::vector<double> correlation;  // per planted unit
  int64_t largest_free_unit = -1;
  std::string largest_free_target;      // the target's PlantedUnit::name()
  double largest_free_correlation = 0;  // signed
};
PlantedCheck check_planted_units(const Classifier& classifier, int64_t images, uint64_t seed);

// The method scored on the planted units: does a planted unit's sweep name its factor?
// - label: the unit's significant concept with the largest |z| (the sweep's label);
// - top: its concept with the largest |z|, significant or not;
// - set: all its significant concepts (no single winner): agrees when any of them does;
// each agrees when concept_groups(part, measure) (ground_truth.hpp) holds factor_group(factor).
// A planted factor is measurable when some concept of the shapes parts reflects it (the light
// direction is not). Recall = agreeing / measurable, precision = agreeing / labelled; chance is
// the agreement expected when the planted factors are paired with the units' concepts at
// random, p the share of `permutations` such pairings that agree at least as often.
struct PlantedScore {
  PlantedUnit planted;
  std::string group;  // factor_group(planted.factor)
  bool measurable = false, expressible = false;
  std::string label, top;  // "part measure +|-"; label "" when no concept is significant
  double label_z = 0, top_z = 0, top_q = 1;
  bool label_agrees = false, top_agrees = false;
  std::vector<std::string> concept_set;  // every significant concept, "part measure +|-", largest |z| first
  bool set_agrees = false;
};
struct PlantedRule {
  int64_t agreeing = 0, named = 0;  // named: units with a concept under this rule
  double precision = 0, recall = 0, chance = 0, p_value = 1;
};
struct PlantedAgreement {
  std::vector<PlantedScore> units;
  int64_t planted = 0, measurable = 0;
  PlantedRule label, top, set;
  nlohmann::json to_json() const;
};
// `concepts` holds each planted unit's tested concepts (its selectivity rows, parts indexing
// `part_names`, the shapes world's), `expressible` whether its cycle made it expressible.
PlantedAgreement planted_agreement(const std::vector<PlantedUnit>& planted,
                                   const std::vector<std::vector<ConceptScore>>& concepts,
                                   const std::vector<bool>& expressible, const std::vector<std::string>& part_names,
                                   uint64_t seed, int64_t permutations = 10000);

}  // namespace linkstyle
