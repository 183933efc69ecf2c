// Planted units: their names, the classifier attribute that carries them, and their targets (see
// planted_units.hpp).
#include "linkstyle/planted_units.hpp"

#include <algorithm>

#include <torch/torch.h>

#include "linkstyle/errors.hpp"
#include "linkstyle/worlds/shapes.hpp"

namespace linkstyle {

namespace {

int64_t factor_index(const std::string& factor) {
  const auto& names = ShapesWorld::factor_names();
  const auto found = std::find(names.begin(), names.end(), factor);
  return found == names.end() ? -1 : int64_t(found - names.begin());
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
      throw Error("planted units",
                  "unit " + std::to_string(unit.unit) + " is outside the " + std::to_string(feature_dim) + " features");
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
    PlantedUnit unit{int64_t(i), entry.substr(0, colon),
                     colon == std::string::npos ? "quantile" : entry.substr(colon + 1)};
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

}  // namespace linkstyle
