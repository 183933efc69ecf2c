// linkstyle/concept_changes.hpp
//
// WHAT THIS REPRESENTS
//   The concepts a sweep is measured by (docs/sweeps.md): a concept is a part x a measure, and its
//   change is the normalised difference of the measure between the two ends of a sweep: area
//   (fraction of the image), luminance (/85), entropy (bits), hue (degrees), saturation,
//   eccentricity, angle (degrees), centre_x, centre_y (fraction of the side), flow_x, flow_y
//   (fraction of the side, from dense optical flow), texture (grey levels / 255).
// REQUIRES
//   Part measures of the same sample at both ends (part_measures.hpp); parts numbered [0, P).
// ENSURES
//   Changes are NaN where undefined: a part too small on average (minimum_part_area), absent at
//   one end (all but area and flow), or without hue (mean saturation under
//   kMinimumSaturationForHue). Pure functions, deterministic.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/types.h>

#include "linkstyle/part_measures.hpp"

namespace linkstyle {

// An angle difference (degrees) wrapped into [-period/2, period/2).
double wrap_degrees(double delta, double period);

// Hue is only defined for parts with at least this mean saturation.
inline constexpr double kMinimumSaturationForHue = 0.1;

// The measure names, in column order: area, luminance, entropy, hue, saturation, eccentricity,
// angle, centre_x, centre_y, flow_x, flow_y, texture.
const std::vector<std::string>& concept_measures();
inline constexpr int64_t kConceptMeasures = 12;

// Changes [P, M] float64 between two measured images of the same sample, with the part motion
// from dense optical flow; parts whose mean area over the sweep (`mean_area` [P]) is under
// `min_area` are NaN.
torch::Tensor endpoint_changes(const std::vector<PartMeasures>& first, const std::vector<PartMeasures>& last,
                               const std::vector<PartMotion>& motion, const torch::Tensor& mean_area, int64_t num_parts,
                               int64_t side, double min_area);

// The smallest mean area a part must have to be measured: 20 px at 128 x 128, scaled to side^2.
double minimum_part_area(int64_t side);

// The images of `sweeps` x `samples` groups of `per_group` consecutive images (one group per
// sweep and sample, ordered (sweep, sample, step)), their part measures and labels.
struct SweepImages {
  const std::vector<std::vector<PartMeasures>>& parts;  // per image
  const torch::Tensor& images;                          // [N, R, R, 3] uint8
  const torch::Tensor& labels;                          // [N, R, R] int32
};

// Per-sample endpoint changes of each group, averaged over its samples.
struct GroupChanges {
  torch::Tensor mean, count;                                 // [G, P, M] float64 / int64
  std::vector<std::vector<std::vector<PartMotion>>> motion;  // [sweep][sample]: motion between the ends
};

// ENSURES: mean is NaN where no sample defines a change; count says how many did.
GroupChanges group_changes(const SweepImages& measured, int64_t sweeps, int64_t samples, int64_t per_group,
                           int64_t num_parts);

}  // namespace linkstyle
