#include "linkstyle/concept_changes.hpp"

#include <cmath>

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include "sweep/image_view.hpp"

namespace linkstyle {

const std::vector<std::string>& concept_measures() {
  static const std::vector<std::string> names = {"area",       "luminance",    "entropy", "hue",
                                                 "saturation", "eccentricity", "angle",   "centre_x",
                                                 "centre_y",   "flow_x",       "flow_y",  "texture"};
  return names;
}

double wrap_degrees(double delta, double period) {
  delta = std::fmod(delta + period / 2, period);
  if (delta < 0) delta += period;
  return delta - period / 2;
}

double minimum_part_area(int64_t side) { return 20.0 * double(side * side) / (128.0 * 128.0); }

namespace {

enum Measure {
  kArea,
  kLuminance,
  kEntropy,
  kHue,
  kSaturation,
  kEccentricity,
  kAngle,
  kCentreX,
  kCentreY,
  kFlowX,
  kFlowY,
  kTexture
};

const PartMeasures* find_part(const std::vector<PartMeasures>& parts, int part) {
  for (const auto& p : parts)
    if (p.part == part) return &p;
  return nullptr;
}

}  // namespace

torch::Tensor endpoint_changes(const std::vector<PartMeasures>& first, const std::vector<PartMeasures>& last,
                               const std::vector<PartMotion>& motion, const torch::Tensor& mean_area, int64_t num_parts,
                               int64_t side, double min_area) {
  auto changes = torch::full({num_parts, kConceptMeasures}, NAN, torch::kDouble);
  auto c = changes.accessor<double, 2>();
  const auto area = mean_area.to(torch::kDouble).contiguous();
  const double* mean = area.data_ptr<double>();
  for (int64_t p = 0; p < num_parts; ++p) {
    if (!(mean[p] >= min_area)) continue;
    const PartMeasures* a = find_part(first, int(p));
    const PartMeasures* b = find_part(last, int(p));
    const double area_first = a ? a->area : 0.0, area_last = b ? b->area : 0.0;
    // The change of the part's area as a share of the image: a relative change of a small part
    // is mostly noise (a part of 20 px that gains 10 px "grows" by 50%).
    c[p][kArea] = (area_last - area_first) / double(side * side);
    if (a && b) {
      c[p][kLuminance] = (b->luminance - a->luminance) / 85.0;
      c[p][kEntropy] = b->entropy - a->entropy;
      if (a->saturation >= kMinimumSaturationForHue && b->saturation >= kMinimumSaturationForHue)
        c[p][kHue] = wrap_degrees(b->hue_degrees - a->hue_degrees, 360.0);
      c[p][kSaturation] = b->saturation - a->saturation;
      c[p][kEccentricity] = b->eccentricity - a->eccentricity;
      c[p][kAngle] = wrap_degrees(b->angle_degrees - a->angle_degrees, 180.0);
      c[p][kCentreX] = (b->centre_x - a->centre_x) / double(side);
      c[p][kCentreY] = (b->centre_y - a->centre_y) / double(side);
      c[p][kTexture] = b->texture - a->texture;
    }
    for (const auto& m : motion)
      if (m.part == int(p) && m.area > 0) {
        c[p][kFlowX] = m.dx / double(side);
        c[p][kFlowY] = m.dy / double(side);
      }
  }
  return changes;
}

GroupChanges group_changes(const SweepImages& measured, int64_t sweeps, int64_t samples, int64_t per_group,
                           int64_t num_parts) {
  const int64_t P = num_parts;
  const int64_t side = measured.images.size(1);
  const double min_area = minimum_part_area(side);
  auto sum = torch::zeros({sweeps, P, kConceptMeasures}, torch::kDouble);
  auto count = torch::zeros({sweeps, P, kConceptMeasures}, torch::kLong);
  GroupChanges result;
  result.motion.assign(sweeps, std::vector<std::vector<PartMotion>>(samples));
  std::vector<torch::Tensor> changes(sweeps * samples);
  at::parallel_for(0, sweeps * samples, 1, [&](int64_t begin, int64_t end) {
    for (int64_t g = begin; g < end; ++g) {
      const int64_t first = g * per_group, last = first + per_group - 1;
      auto mean_area = torch::zeros({P}, torch::kDouble);
      auto area = mean_area.accessor<double, 1>();
      for (int64_t i = first; i <= last; ++i)
        for (const auto& part : measured.parts[i]) area[part.part] += part.area / double(per_group);
      const cv::Mat first_rgb = image_view(side, CV_8UC3, measured.images[first].data_ptr());
      const cv::Mat last_rgb = image_view(side, CV_8UC3, measured.images[last].data_ptr());
      const cv::Mat first_labels = image_view(side, CV_32SC1, measured.labels[first].data_ptr());
      auto motion = measure_part_motion(first_rgb, last_rgb, first_labels, int(P));
      changes[g] = endpoint_changes(measured.parts[first], measured.parts[last], motion, mean_area, P, side, min_area);
      result.motion[g / samples][g % samples] = std::move(motion);
    }
  });
  for (int64_t g = 0; g < sweeps * samples; ++g) {
    const auto defined = torch::isfinite(changes[g]);
    sum[g / samples] += torch::where(defined, changes[g], torch::zeros_like(changes[g]));
    count[g / samples] += defined.to(torch::kLong);
  }
  result.mean = sum / count.to(torch::kDouble);  // NaN where no sample defines it
  result.count = count;
  return result;
}

}  // namespace linkstyle
