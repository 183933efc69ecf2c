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
//   This header is what the models need (models.hpp); checking and scoring planted units against
//   a classifier or a sweep is planted_unit_scoring.hpp.
// REQUIRES
//   factors [N, F] as ShapesBatch::factors, labels [N] in the shapes classes.
// ENSURES
//   Pure functions, deterministic; malformed planted names are an Error naming the file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <torch/types.h>

namespace linkstyle {

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

}  // namespace linkstyle
