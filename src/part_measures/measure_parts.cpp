// The measurements of each part of one segmented image (see part_measures.hpp).
#include "linkstyle/part_measures.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "part_measures/image_checks.hpp"
#include "part_measures/local_entropy.hpp"

namespace linkstyle {

using part_measures::check_labels;
using part_measures::check_rgb;
using part_measures::local_entropy;

namespace {

constexpr double kPi = 3.14159265358979323846;

// Raw moments of one 8-connected component, exact in integers: with sides below 2^15 (checked)
// each sum stays below 2^60.
struct ComponentMoments {
  int64_t pixels = 0, x = 0, y = 0, xx = 0, yy = 0, xy = 0;

  void add_pixel(int64_t px, int64_t py) {
    ++pixels;
    x += px;
    y += py;
    xx += px * px;
    yy += py * py;
    xy += px * py;
  }
  void add(const ComponentMoments& other) {
    pixels += other.pixels;
    x += other.x;
    y += other.y;
    xx += other.xx;
    yy += other.yy;
    xy += other.xy;
  }
};

// For every label value, the moments of its largest 8-connected component (pixels 0 when the
// label is absent). All labels are handled in one raster pass with union-find, instead of one
// cv::connectedComponentsWithStats per part (that cost ~8 us per part on 32x32 images, most of
// measure_parts). Ties of size go to the component whose first pixel comes first in raster order.
void largest_components(const cv::Mat& labels, int num_parts, std::vector<ComponentMoments>& largest) {
  thread_local std::vector<int32_t> parent, part_of, previous_ids, current_ids;
  thread_local std::vector<ComponentMoments> moments;
  parent.clear();
  part_of.clear();
  moments.clear();
  const int width = labels.cols, height = labels.rows;
  previous_ids.assign(width, -1);
  current_ids.assign(width, -1);

  auto find = [&](int32_t id) {
    while (parent[id] != id) {
      parent[id] = parent[parent[id]];  // path halving
      id = parent[id];
    }
    return id;
  };
  // The smaller id becomes the root, so a root is the id given to its component's first pixel.
  auto unite = [&](int32_t a, int32_t b) {
    a = find(a);
    b = find(b);
    if (a < b)
      parent[b] = a;
    else if (b < a)
      parent[a] = b;
  };

  for (int y = 0; y < height; ++y) {
    const int32_t* row = labels.ptr<int32_t>(y);
    const int32_t* above = y > 0 ? labels.ptr<int32_t>(y - 1) : nullptr;
    for (int x = 0; x < width; ++x) {
      const int32_t label = row[x];
      const bool west = x > 0 && row[x - 1] == label;
      const bool north = above && above[x] == label;
      const bool north_west = above && x > 0 && above[x - 1] == label;
      const bool north_east = above && x + 1 < width && above[x + 1] == label;
      // West and north are already joined to north-west / north-east where those match, because
      // they were each other's neighbours when visited; only the remaining pairs need a union.
      int32_t id;
      if (west) {
        id = current_ids[x - 1];
        if (!north && north_east) unite(id, previous_ids[x + 1]);
      } else if (north) {
        id = previous_ids[x];
      } else if (north_west) {
        id = previous_ids[x - 1];
        if (north_east) unite(id, previous_ids[x + 1]);
      } else if (north_east) {
        id = previous_ids[x + 1];
      } else {
        id = static_cast<int32_t>(parent.size());
        parent.push_back(id);
        part_of.push_back(label);
        moments.emplace_back();
      }
      current_ids[x] = id;
      moments[id].add_pixel(x, y);
    }
    std::swap(previous_ids, current_ids);
  }

  largest.assign(num_parts, ComponentMoments{});
  const int32_t count = static_cast<int32_t>(parent.size());
  for (int32_t id = 0; id < count; ++id) {
    const int32_t root = find(id);
    if (root != id) moments[root].add(moments[id]);  // root < id: not yet read below
  }
  for (int32_t id = 0; id < count; ++id) {
    if (parent[id] != id) continue;
    ComponentMoments& best = largest[part_of[id]];
    if (moments[id].pixels > best.pixels) best = moments[id];
  }
}

// Ellipse with the same second central moments as the component (regionprops-style).
void set_ellipse(const ComponentMoments& m, PartMeasures& result) {
  // n * sum(x y) - sum(x) sum(y) = n^2 cov, exact in 128 bits (the products reach 2^90).
  auto n2_covariance = [&m](int64_t sum_ab, int64_t sum_a, int64_t sum_b) {
    return static_cast<double>(static_cast<__int128>(m.pixels) * sum_ab - static_cast<__int128>(sum_a) * sum_b);
  };
  const double n2 = static_cast<double>(m.pixels) * static_cast<double>(m.pixels);
  const double var_x = n2_covariance(m.xx, m.x, m.x) / n2;
  const double var_y = n2_covariance(m.yy, m.y, m.y) / n2;
  const double cov_xy = n2_covariance(m.xy, m.x, m.y) / n2;

  const double mean = 0.5 * (var_x + var_y);
  const double root = std::hypot(0.5 * (var_x - var_y), cov_xy);
  const double major = mean + root;
  const double minor = std::max(0.0, mean - root);
  result.major_axis = 4.0 * std::sqrt(major);
  result.minor_axis = 4.0 * std::sqrt(minor);
  result.eccentricity = major > 0 ? std::sqrt(std::max(0.0, 1.0 - minor / major)) : 0.0;
  double angle = 0;
  if (root > 0) {
    angle = 0.5 * std::atan2(2.0 * cov_xy, var_x - var_y) * 180.0 / kPi;  // in (-90, 90]
    if (angle < 0) angle += 180.0;
    if (angle >= 180.0) angle -= 180.0;
  }
  result.angle_degrees = angle;
}

struct PartSums {
  int64_t pixels = 0;
  int64_t weighted_rgb = 0;  // sum of 299 R + 587 G + 114 B (exact)
  int64_t x = 0, y = 0;
  double entropy = 0, saturation = 0, hue_cos = 0, hue_sin = 0;
  int64_t interior = 0, laplacian = 0;  // interior pixels and the sum of |4 g - neighbours| there
};

// Unit vector (cos, sin) of the HSV hue of an 8-bit RGB pixel, and its saturation, as OpenCV's
// float conversion defines them (an achromatic pixel has hue 0). The hue is a sector base
// (0, 120 or 240 degrees) plus an offset t of at most 60 degrees either way; cos t and sin t come
// from their Taylor series (error < 1e-14 for |t| <= pi/3): std::sin and std::cos were the
// costliest step of measure_parts on noisy images (61 -> 47 us per 32x32 image without them).
struct HueVector {
  double cos = 1, sin = 0, saturation = 0;
};

inline HueVector hue_vector(int r, int g, int b) {
  const int high = std::max(r, std::max(g, b));
  const int low = std::min(r, std::min(g, b));
  const int spread = high - low;
  if (spread == 0) return {};
  constexpr double kHalfSqrt3 = 0.86602540378443864676;
  int offset_numerator;
  double base_cos, base_sin;
  if (high == r) {
    offset_numerator = g - b;
    base_cos = 1;
    base_sin = 0;
  } else if (high == g) {
    offset_numerator = b - r;
    base_cos = -0.5;
    base_sin = kHalfSqrt3;
  } else {
    offset_numerator = r - g;
    base_cos = -0.5;
    base_sin = -kHalfSqrt3;
  }
  const double t = (kPi / 3.0) * offset_numerator / spread;
  const double z = t * t;
  const double sin_t =
      t * (1 + z * (-1.0 / 6 +
                    z * (1.0 / 120 +
                         z * (-1.0 / 5040 +
                              z * (1.0 / 362880 +
                                   z * (-1.0 / 39916800 + z * (1.0 / 6227020800.0 + z * (-1.0 / 1307674368000.0))))))));
  const double cos_t =
      1 +
      z * (-1.0 / 2 +
           z * (1.0 / 24 + z * (-1.0 / 720 +
                                z * (1.0 / 40320 + z * (-1.0 / 3628800 +
                                                        z * (1.0 / 479001600 + z * (-1.0 / 87178291200.0 +
                                                                                    z * (1.0 / 20922789888000.0))))))));
  return {base_cos * cos_t - base_sin * sin_t, base_sin * cos_t + base_cos * sin_t, static_cast<double>(spread) / high};
}

// One pass gathers the per-part sums.
void add_pixel_sums(const cv::Mat& rgb, const cv::Mat& labels, const std::vector<double>& entropy,
                    std::vector<PartSums>& sums) {
  const int width = rgb.cols, height = rgb.rows;
  for (int y = 0; y < height; ++y) {
    const uint8_t* pixel = rgb.ptr<uint8_t>(y);
    const int32_t* label_row = labels.ptr<int32_t>(y);
    const double* entropy_row = entropy.data() + static_cast<size_t>(y) * width;
    for (int x = 0; x < width; ++x, pixel += 3) {
      const int r = pixel[0], g = pixel[1], b = pixel[2];
      const HueVector hue = hue_vector(r, g, b);
      PartSums& part = sums[label_row[x]];
      ++part.pixels;
      part.weighted_rgb += 299 * r + 587 * g + 114 * b;
      part.x += x;
      part.y += y;
      part.entropy += entropy_row[x];
      part.saturation += hue.saturation;
      part.hue_cos += hue.cos;
      part.hue_sin += hue.sin;
    }
  }
}

// Texture: the absolute Laplacian on the pixels whose four neighbours share their label.
void add_texture_sums(const cv::Mat& grey, const cv::Mat& labels, std::vector<PartSums>& sums) {
  const int width = grey.cols, height = grey.rows;
  for (int y = 1; y + 1 < height; ++y) {
    const uint8_t* up = grey.ptr<uint8_t>(y - 1);
    const uint8_t* row = grey.ptr<uint8_t>(y);
    const uint8_t* down = grey.ptr<uint8_t>(y + 1);
    const int32_t* label_up = labels.ptr<int32_t>(y - 1);
    const int32_t* label_row = labels.ptr<int32_t>(y);
    const int32_t* label_down = labels.ptr<int32_t>(y + 1);
    for (int x = 1; x + 1 < width; ++x) {
      const int32_t label = label_row[x];
      if (label_up[x] != label || label_down[x] != label || label_row[x - 1] != label || label_row[x + 1] != label)
        continue;
      PartSums& part = sums[label];
      ++part.interior;
      part.laplacian += std::abs(4 * int(row[x]) - int(up[x]) - int(down[x]) - int(row[x - 1]) - int(row[x + 1]));
    }
  }
}

// The measures of a part present in the image (s.pixels > 0), from its sums and its largest
// component.
PartMeasures part_measures_of(int part, const PartSums& s, const ComponentMoments& largest) {
  const double n = static_cast<double>(s.pixels);
  PartMeasures m;
  m.part = part;
  m.area = n;
  m.luminance = static_cast<double>(s.weighted_rgb) / (3000.0 * n);
  m.entropy = s.entropy / n;
  m.centre_x = static_cast<double>(s.x) / n;
  m.centre_y = static_cast<double>(s.y) / n;
  m.saturation = s.saturation / n;
  m.texture = s.interior > 0 ? static_cast<double>(s.laplacian) / (4.0 * 255.0 * static_cast<double>(s.interior)) : 0.0;
  // A resultant shorter than this (per pixel) has no meaningful direction.
  if (std::hypot(s.hue_cos, s.hue_sin) > 1e-9 * n) {
    double hue = std::atan2(s.hue_sin, s.hue_cos) * 180.0 / kPi;
    if (hue < 0) hue += 360.0;
    if (hue >= 360.0 || hue == 0) hue = 0;  // also turns -0 into 0
    m.hue_degrees = hue;
  }
  set_ellipse(largest, m);
  return m;
}

}  // namespace

std::vector<PartMeasures> measure_parts(const cv::Mat& rgb, const cv::Mat& labels, int num_parts) {
  constexpr const char* kSubject = "measure_parts";
  check_rgb(kSubject, rgb, "rgb");
  check_labels(kSubject, labels, "labels", rgb.size(), num_parts);

  thread_local cv::Mat grey;
  thread_local std::vector<double> entropy;
  thread_local std::vector<PartSums> sums;
  thread_local std::vector<ComponentMoments> largest;
  cv::cvtColor(rgb, grey, cv::COLOR_RGB2GRAY);
  local_entropy(grey, entropy);
  largest_components(labels, num_parts, largest);

  sums.assign(num_parts, PartSums{});
  add_pixel_sums(rgb, labels, entropy, sums);
  add_texture_sums(grey, labels, sums);

  std::vector<PartMeasures> results;
  for (int part = 0; part < num_parts; ++part) {
    const PartSums& s = sums[part];
    if (s.pixels == 0) continue;
    results.push_back(part_measures_of(part, s, largest[part]));
  }
  return results;
}

}  // namespace linkstyle
