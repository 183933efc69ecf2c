// linkstyle/worlds/shapes.hpp
//
// WHAT THIS REPRESENTS
//   A procedural world of six object classes (mushroom, car, bird, house, tree, flower), each
//   drawn from named parts on a plain background, with ground truth for every image: a per-pixel
//   part-label mask and the continuous factor vector (position, scale, rotation, two part
//   proportions, colours, background, texture, light) it was drawn from. It trains the built-in
//   models and checks the method against known answers. docs/worlds.md describes every factor.
// REQUIRES
//   16 <= resolution <= 4096; labels in [0, class_names().size()); as many seeds as labels;
//   count >= 0.
// ENSURES
//   An image is a function of (label, seed) alone: the same pair gives byte-identical image, mask
//   and factors whatever the batch around it and the thread count. The factors determine the
//   image (no hidden randomness). Objects are drawn at 4x supersampling and area-averaged; the
//   mask holds, per pixel, the part covering most of it in the same drawing (later parts occlude
//   earlier ones in both). Background gradient, texture and shading touch the image only.
//   Bad arguments throw linkstyle::Error("ShapesWorld", "<problem>").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/types.h>

namespace linkstyle {

struct ShapesBatch {
  torch::Tensor images;   // [N, 3, R, R] float32 in [0, 1], RGB
  torch::Tensor parts;    // [N, R, R] int64, indexes ShapesWorld::part_names(); 0 = background
  torch::Tensor factors;  // [N, F] float32 in [0, 1], columns as ShapesWorld::factor_names()
  torch::Tensor labels;   // [N] int64, indexes ShapesWorld::class_names()
};

class ShapesWorld {
 public:
  explicit ShapesWorld(int64_t resolution = 64);

  // mushroom, car, bird, house, tree, flower.
  static const std::vector<std::string>& class_names();
  // "background" first, then every part once; a name shared by two classes ("window", "stem")
  // is the same kind of thing in both.
  static const std::vector<std::string>& part_names();
  // The part indices a class is drawn from (background excluded).
  static std::vector<int64_t> parts_of_class(int64_t label);
  // The part that takes the main colour and the texture (cap, car body, bird body, wall, crown,
  // petal).
  static int64_t main_part_of_class(int64_t label);
  // The part that takes the secondary colour (stem, window, beak, roof, trunk, centre).
  static int64_t secondary_part_of_class(int64_t label);
  // position_x, position_y, scale, rotation, proportion_a, proportion_b, main_hue,
  // main_saturation, main_value, secondary_hue, secondary_value, background_hue,
  // background_value, background_gradient, texture_amplitude, texture_frequency,
  // light_direction.
  static const std::vector<std::string>& factor_names();

  int64_t resolution() const { return resolution_; }

  // One image per (labels[i], seeds[i]).
  ShapesBatch render(const std::vector<int64_t>& labels, const std::vector<uint64_t>& seeds) const;
  // One image per (labels[i], factors[i]): factors [N, F] float in [0, 1] as ShapesBatch::factors
  // (render() of a seed and render_factors() of its factors give the same image up to the
  // factors' float rounding). Factors outside [0, 1] or not finite are an Error.
  ShapesBatch render_factors(const std::vector<int64_t>& labels, const torch::Tensor& factors) const;
  // The factors whose quantiles under render()'s distribution are `quantiles` [N, F] in [0, 1]:
  // every factor is uniform on [0, 1] except the main and secondary hues, uniform on the class's
  // preferred range, so factors = low[label] + span[label] * quantiles (float32, [N, F]).
  static torch::Tensor factors_of_quantiles(const torch::Tensor& labels, const torch::Tensor& quantiles);
  // `count` images; label i % class count, seed derived from (seed, i) (see docs/worlds.md).
  ShapesBatch render_class_balanced(int64_t count, uint64_t seed) const;

 private:
  // Draws labels[i] with factors [N, F] float64 (checked by the caller).
  ShapesBatch draw(const std::vector<int64_t>& labels, const torch::Tensor& factors) const;

  int64_t resolution_;
};

}  // namespace linkstyle
