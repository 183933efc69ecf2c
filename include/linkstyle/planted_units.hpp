// linkstyle/planted_units.hpp
//
// WHAT THIS REPRESENTS
//   Planted ground truth: penultimate units of a shapes classifier that were trained (beside the
//   class loss) to equal known functions of the renderer's factors, so what each one encodes is
//   known by construction (docs/worlds.md, "A classifier with planted units"). A planted unit
//   names one factor and a function of it:
//     "quantile": 0.5 + the factor's quantile within its class, in [0.5, 1.5] (the quantile is
//       the factor itself for every factor but the two part hues, which are uniform on a
//       per-class range);
//     "cos" / "sin": 1 + 0.5 cos(2 pi f) / 1 + 0.5 sin(2 pi f), for the circular factors
//       (background hue, light direction).
//   (Targets stay >= 0.5: a ReLU unit asked for 0 can die.) The texture frequency is not
//   planted: with a faint texture it is not in the image.
//   A classifier file carries them as its attribute planted_factors (List[str], one per unit:
//   "" for a free unit, "scale", "background_hue:cos", ...).
// REQUIRES
//   factors [N, F] as ShapesBatch::factors, labels [N] in the shapes classes.
// ENSURES
//   Pure functions, deterministic; malformed planted names are an Error naming the file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "linkstyle/results_database.hpp"

namespace linkstyle {

class Classifier;

struct PlantedUnit {
  int64_t unit = 0;
  std::string factor;    // ShapesWorld::factor_names()
  std::string function;  // quantile, cos or sin
  // "scale" for a quantile unit, "background_hue:cos" otherwise (the attribute's entry).
  std::string name() const;
};

// The planted units of `train classifier --planted`: units 0.. in this order, one per factor
// but the texture frequency (two for each circular factor): 18 units.
std::vector<PlantedUnit> default_planted_units();

// The attribute of a classifier with `units` planted among `feature_dim` units.
std::vector<std::string> planted_attribute(const std::vector<PlantedUnit>& units, int64_t feature_dim);
// Its inverse; Error naming `file` for an unknown factor or function.
std::vector<PlantedUnit> parse_planted_attribute(const std::vector<std::string>& attribute,
                                                 const std::filesystem::path& file);

// The targets [N, P] float32 of the planted units for rendered images.
torch::Tensor planted_targets(const std::vector<PlantedUnit>& units, const torch::Tensor& factors,
                              const torch::Tensor& labels);

// How well a classifier's planted units track their factors on `images` fresh renders
// (class-balanced, `seed`, at the world's training resolution 64): each planted unit's Pearson
// correlation with its target over all images, and the free unit whose |correlation| with any
// planted target is largest.
struct PlantedCheck {
  std::vector<double> correlation;  // per planted unit
  int64_t largest_free_unit = -1;
  std::string largest_free_target;  // the target's PlantedUnit::name()
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
