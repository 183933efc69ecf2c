// The shapes world's factors: their distribution per image and its quantiles (see shapes.hpp and
// docs/worlds.md).
#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

#include "linkstyle/errors.hpp"
#include "linkstyle/worlds/shapes.hpp"
#include "splitmix.hpp"
#include "worlds/shapes/shapes_drawing.hpp"

namespace linkstyle {

namespace shapes {

namespace {

// ---------------------------------------------------------------------------------------------
// Randomness: a splitmix64 stream per image, so images never share state.

class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed) {}
  // Uniform in [0, 1) with 53 random bits.
  double uniform() {
    state_ += 0x9E3779B97F4A7C15ULL;
    uint64_t z = state_;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return static_cast<double>(z >> 11) * 0x1.0p-53;
  }
  double uniform(const HueRange& range) { return range.low + (range.high - range.low) * uniform(); }

 private:
  uint64_t state_;
};

uint64_t image_stream(int64_t label, uint64_t seed) {
  return splitmix64(seed ^ splitmix64(0x5348415045530000ULL + static_cast<uint64_t>(label)));
}

}  // namespace

std::array<double, kFactorCount> sample_factors(int64_t label, uint64_t seed) {
  Random random(image_stream(label, seed));
  std::array<double, kFactorCount> factors{};
  for (double& factor : factors) factor = random.uniform();
  // Hues come from the class's preferred range; drawn after the others so that the uniform
  // factors use the same stream positions in every class.
  const ClassStyle& style = kStyles[static_cast<size_t>(label)];
  factors[kMainHue] = random.uniform(style.main_hue);
  factors[kSecondaryHue] = random.uniform(style.secondary_hue);
  return factors;
}

}  // namespace shapes

using namespace shapes;

const std::vector<std::string>& ShapesWorld::factor_names() {
  static const std::vector<std::string> names = {"position_x",        "position_y",          "scale",
                                                 "rotation",          "proportion_a",        "proportion_b",
                                                 "main_hue",          "main_saturation",     "main_value",
                                                 "secondary_hue",     "secondary_value",     "background_hue",
                                                 "background_value",  "background_gradient", "texture_amplitude",
                                                 "texture_frequency", "light_direction"};
  return names;
}

torch::Tensor ShapesWorld::factors_of_quantiles(const torch::Tensor& labels, const torch::Tensor& quantiles) {
  const int64_t count = labels.numel();
  if (quantiles.dim() != 2 || quantiles.size(0) != count || quantiles.size(1) != kFactorCount)
    throw Error("ShapesWorld", "factors_of_quantiles needs quantiles [" + std::to_string(count) + ", " +
                                   std::to_string(int64_t(kFactorCount)) + "], got " + sizes_text(quantiles));
  auto low = torch::zeros({kClassCount, kFactorCount}, torch::kFloat);
  auto span = torch::ones({kClassCount, kFactorCount}, torch::kFloat);
  for (int64_t c = 0; c < kClassCount; ++c) {
    const ClassStyle& style = kStyles[static_cast<size_t>(c)];
    for (const auto& [factor, range] :
         {std::pair{kMainHue, style.main_hue}, std::pair{kSecondaryHue, style.secondary_hue}}) {
      low[c][factor] = range.low;
      span[c][factor] = range.high - range.low;
    }
  }
  const auto l = labels.to(torch::kCPU, torch::kLong).reshape({count});
  for (int64_t i = 0; i < count; ++i) check_label(l[i].item<int64_t>());
  const auto q = quantiles.to(torch::kCPU, torch::kFloat);
  if (!torch::isfinite(q).all().item<bool>() || (q < 0).any().item<bool>() || (q > 1).any().item<bool>())
    throw Error("ShapesWorld", "factors_of_quantiles needs finite quantiles in [0, 1]");
  return low.index_select(0, l) + span.index_select(0, l) * q;
}

ShapesBatch ShapesWorld::render_class_balanced(int64_t count, uint64_t seed) const {
  if (count < 0) throw Error("ShapesWorld", "image count must be >= 0, got " + std::to_string(count));
  std::vector<int64_t> labels(static_cast<size_t>(count));
  std::vector<uint64_t> seeds(static_cast<size_t>(count));
  const uint64_t base = splitmix64(seed);
  for (int64_t i = 0; i < count; ++i) {
    labels[static_cast<size_t>(i)] = i % kClassCount;
    seeds[static_cast<size_t>(i)] = splitmix64(base + static_cast<uint64_t>(i));
  }
  return render(labels, seeds);
}

}  // namespace linkstyle
