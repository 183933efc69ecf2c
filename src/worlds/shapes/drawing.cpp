// The shapes world's drawing: one image's paint ids coloured, shaded and textured, then
// area-averaged to the output size with its part mask (see shapes.hpp and docs/worlds.md).
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "worlds/shapes/shapes_drawing.hpp"

namespace linkstyle::shapes {

namespace {

constexpr int kSupersample = 4;  // objects are drawn at 4x the output resolution (the
                                 // mask's block test reads 4 bytes at a time)

// Colours the drawing: background gradient; shading toward the light and stripes (along the
// object's own x axis) on the object.
void shade_drawing(const std::vector<Paint>& paints, const std::array<double, kFactorCount>& f, const Placement& at,
                   int size, Scratch& scratch) {
  const double light = 2 * kPi * f[kLightDirection];
  const auto light_x = static_cast<float>(std::cos(light) / at.unit);
  const auto light_y = static_cast<float>(-std::sin(light) / at.unit);  // y points down
  const double cycles = kStripeCyclesMin + kStripeCyclesSpan * f[kTextureFrequency];
  const auto stripe_x = static_cast<float>(std::cos(at.angle) * cycles / at.unit);
  const auto stripe_y = static_cast<float>(std::sin(at.angle) * cycles / at.unit);
  const auto stripe_depth = static_cast<float>(kStripeDepth * f[kTextureAmplitude]);
  const auto gradient = static_cast<float>(kGradientDepth * f[kBackgroundGradient] / size);
  const auto shade = static_cast<float>(kShadeDepth / 2);
  for (int y = 0; y < size; ++y) {
    const uint8_t* id = scratch.ids.ptr<uint8_t>(y);
    float* out = scratch.fine.ptr<float>(y);
    const float dy = static_cast<float>(y + 0.5 - at.centre_y);
    const float background = 1.0f - gradient * (static_cast<float>(y) + 0.5f);
    for (int x = 0; x < size; ++x) {
      const Paint& paint = paints[id[x]];
      float m = background;
      if (id[x] != 0) {
        const float dx = static_cast<float>(x + 0.5 - at.centre_x);
        const float toward = std::clamp(dx * light_x + dy * light_y, -1.0f, 1.0f);
        m = 1.0f - shade * (1.0f - toward);
        if (paint.textured) {
          const float u = dx * stripe_x + dy * stripe_y;
          const float tri = std::fabs(2.0f * (u - std::floor(u)) - 1.0f);
          m *= 1.0f - stripe_depth * tri * tri * (3.0f - 2.0f * tri);
        }
      }
      out[3 * x] = paint.colour.r * m;
      out[3 * x + 1] = paint.colour.g * m;
      out[3 * x + 2] = paint.colour.b * m;
    }
  }
}

// The image at the output size, channels first, clamped to [0, 1].
void downsample_image(int resolution, Scratch& scratch, float* image_out) {
  cv::resize(scratch.fine, scratch.image, cv::Size(resolution, resolution), 0, 0, cv::INTER_AREA);
  const int64_t plane = static_cast<int64_t>(resolution) * resolution;
  for (int y = 0; y < resolution; ++y) {
    const float* row = scratch.image.ptr<float>(y);
    for (int x = 0; x < resolution; ++x)
      for (int c = 0; c < 3; ++c) image_out[c * plane + y * resolution + x] = std::clamp(row[3 * x + c], 0.0f, 1.0f);
  }
}

// The mask: per output pixel, the part covering most of its 4x4 block (ties to the higher part
// index, so thin parts are not lost to the background).
void downsample_parts(const std::vector<Paint>& paints, int resolution, const Scratch& scratch, int64_t* parts_out) {
  std::array<uint8_t, 256> part_of{};
  for (size_t k = 0; k < paints.size(); ++k) part_of[k] = paints[k].part;
  std::array<int, kPartCount> counts{};
  for (int y = 0; y < resolution; ++y) {
    const uint8_t* rows[kSupersample];
    for (int sy = 0; sy < kSupersample; ++sy) rows[sy] = scratch.ids.ptr<uint8_t>(y * kSupersample + sy);
    for (int x = 0; x < resolution; ++x) {
      const int offset = x * kSupersample;
      // Most blocks hold a single paint: compare four bytes at a time.
      const uint32_t same = 0x01010101u * rows[0][offset];
      bool uniform = true;
      for (int sy = 0; sy < kSupersample; ++sy) {
        uint32_t block_row;
        std::memcpy(&block_row, rows[sy] + offset, sizeof block_row);
        uniform = uniform && block_row == same;
      }
      int64_t best = part_of[rows[0][offset]];
      if (!uniform) {
        counts.fill(0);
        for (int sy = 0; sy < kSupersample; ++sy)
          for (int sx = 0; sx < kSupersample; ++sx) ++counts[part_of[rows[sy][offset + sx]]];
        for (int p = 0; p < kPartCount; ++p)
          if (counts[p] >= counts[best]) best = p;
      }
      parts_out[y * resolution + x] = best;
    }
  }
}

}  // namespace

Rgb hsv(double hue, double saturation, double value) {
  hue = hue - std::floor(hue);
  saturation = std::clamp(saturation, 0.0, 1.0);
  value = std::clamp(value, 0.0, 1.0);
  const double h6 = hue * 6.0;
  const int sector = std::min(static_cast<int>(h6), 5);
  const double f = h6 - sector;
  const auto p = static_cast<float>(value * (1 - saturation));
  const auto q = static_cast<float>(value * (1 - saturation * f));
  const auto t = static_cast<float>(value * (1 - saturation * (1 - f)));
  const auto v = static_cast<float>(value);
  switch (sector) {
    case 0:
      return {v, t, p};
    case 1:
      return {q, v, p};
    case 2:
      return {p, v, t};
    case 3:
      return {p, q, v};
    case 4:
      return {t, p, v};
    default:
      return {v, p, q};
  }
}

void render_one(int64_t label, const std::array<double, kFactorCount>& f, int resolution, Scratch& scratch,
                float* image_out, int64_t* parts_out) {
  const int size = resolution * kSupersample;
  scratch.ids.create(size, size, CV_8U);
  scratch.ids.setTo(cv::Scalar(0));
  scratch.fine.create(size, size, CV_32FC3);
  const Placement at = place_object(f, size);
  std::vector<Paint> paints = draw_paint_ids(label, f, at, scratch.ids);
  paints[0].colour =
      hsv(f[kBackgroundHue], kBackgroundSaturation, kBackgroundValueMin + kBackgroundValueSpan * f[kBackgroundValue]);
  shade_drawing(paints, f, at, size, scratch);
  downsample_image(resolution, scratch, image_out);
  downsample_parts(paints, resolution, scratch, parts_out);
}

}  // namespace linkstyle::shapes
