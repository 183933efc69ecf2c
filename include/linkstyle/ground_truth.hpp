// linkstyle/ground_truth.hpp
//
// WHAT THIS REPRESENTS
//   The check of sweep labels against known answers on the shapes world (docs/sweeps.md):
//   - a dataset probe: over rendered shapes images, the within-class correlation of each unit's
//     activation with each factor (both standardised within each class, then pooled), so the
//     class identity does not count as a factor; the probe label of a unit is its factor with
//     the largest |correlation|;
//   - factor groups: the concept (part, measure) a factor should move, e.g. main_hue -> the hue
//     of a class's main part, scale -> any part's area, position_x -> centre_x or flow_x;
//   - agreement: the share of units whose sweep label's group equals their probe label's group,
//     against chance = the agreement expected when the two labels are paired at random (both
//     marginals kept), with a permutation p-value.
// REQUIRES
//   A classifier that takes shapes images; sweep labels as (part name, measure) with part names
//   from ShapesWorld::part_names().
// ENSURES
//   Deterministic for a seed and thread count; no I/O.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "linkstyle/models.hpp"

namespace linkstyle {

struct UnitProbe {
  std::vector<std::string> factor_names;
  torch::Tensor correlation;  // [D, F] float64, within-class
  std::vector<int64_t> best_factor;
  std::vector<double> best_correlation;  // signed
};

// Renders `images` class-balanced shapes images at `resolution` (seed `seed`) and probes every unit.
UnitProbe probe_shapes_units(const Classifier& classifier, int64_t images, uint64_t seed, int64_t resolution,
                             int64_t batch_size = 256);

// The group a shapes factor belongs to ("scale", "main_hue", ...).
std::string factor_group(const std::string& factor);
// The factor group a concept reflects, or "" when none does.
std::string concept_group(const std::string& part_name, const std::string& measure);

struct LabelledUnit {
  int64_t unit = 0;
  std::string part, measure;  // the sweep label
};

struct Agreement {
  int64_t units = 0, agreeing = 0;
  double agreement = 0, chance = 0, p_value = 1;
  nlohmann::json per_unit = nlohmann::json::array();
  nlohmann::json to_json() const;
};

Agreement label_agreement(const UnitProbe& probe, const std::vector<LabelledUnit>& units, uint64_t seed,
                          int64_t permutations = 10000);

}  // namespace linkstyle
