// The procedural shapes world (see shapes.hpp and docs/worlds.md).
#include "linkstyle/worlds/shapes.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include <ATen/Parallel.h>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/types.h>

#include "linkstyle/errors.hpp"
#include "splitmix.hpp"

namespace linkstyle {

namespace {

constexpr int kSupersample = 4;  // objects are drawn at 4x the output resolution (the
                                 // mask's block test reads 4 bytes at a time)
constexpr int kShift = 4;        // fractional bits of the polygon vertices given to OpenCV
constexpr int64_t kMinResolution = 16;
constexpr double kPi = 3.14159265358979323846;

enum Class : int64_t { kMushroom, kCar, kBird, kHouse, kTree, kFlower, kClassCount };

enum Part : uint8_t {
  kBackground,
  kCap,
  kStem,
  kCarBody,
  kWheel,
  kWindow,
  kBirdBody,
  kHead,
  kBeak,
  kWing,
  kTail,
  kWall,
  kRoof,
  kDoor,
  kTrunk,
  kCrown,
  kPetal,
  kCentre,
  kPartCount
};

enum Factor : int {
  kPositionX,
  kPositionY,
  kScale,
  kRotation,
  kProportionA,
  kProportionB,
  kMainHue,
  kMainSaturation,
  kMainValue,
  kSecondaryHue,
  kSecondaryValue,
  kBackgroundHue,
  kBackgroundValue,
  kBackgroundGradient,
  kTextureAmplitude,
  kTextureFrequency,
  kLightDirection,
  kFactorCount
};

// How factors map to drawing quantities (documented in docs/worlds.md).
constexpr double kFrameMargin = 0.01;               // the unit circle stays this far inside the frame
constexpr double kUnitMin = 0.36, kUnitSpan = 0.1;  // object unit / resolution; objects fit the unit circle
constexpr double kMaxRotationDeg = 25.0;
constexpr double kMainSaturationMin = 0.45, kMainSaturationSpan = 0.5;
constexpr double kMainValueMin = 0.5, kMainValueSpan = 0.45;
constexpr double kSecondaryValueMin = 0.35, kSecondaryValueSpan = 0.6;
constexpr double kBackgroundSaturation = 0.3;
constexpr double kBackgroundValueMin = 0.3, kBackgroundValueSpan = 0.65;
constexpr double kGradientDepth = 0.5;                             // bottom row darkened by up to this share
constexpr double kStripeDepth = 0.45;                              // stripe troughs darkened by up to this share
constexpr double kStripeCyclesMin = 1.5, kStripeCyclesSpan = 3.5;  // cycles per object unit
constexpr double kShadeDepth = 0.3;                                // the side away from the light, darkened

struct HueRange {
  double low, high;
};

// Per class: the main part, the part painted in the secondary colour, the preferred hue ranges of
// the main and the secondary colour (hues in turns, never crossing red at 0/1) and the secondary
// colour's saturation.
struct ClassStyle {
  Part main_part;
  Part secondary_part;
  HueRange main_hue;
  HueRange secondary_hue;
  double secondary_saturation;
};

constexpr std::array<ClassStyle, kClassCount> kStyles{{
    {kCap, kStem, {0.02, 0.12}, {0.08, 0.16}, 0.25},        // mushroom: red-orange cap, cream stem
    {kCarBody, kWindow, {0.50, 0.75}, {0.50, 0.62}, 0.35},  // car: cyan-blue body, pale blue windows
    {kBirdBody, kBeak, {0.12, 0.22}, {0.04, 0.10}, 0.85},   // bird: yellow body, orange beak
    {kWall, kRoof, {0.08, 0.18}, {0.02, 0.08}, 0.65},       // house: warm wall, red-brown roof
    {kCrown, kTrunk, {0.22, 0.42}, {0.05, 0.11}, 0.6},      // tree: green crown, brown trunk
    {kPetal, kCentre, {0.75, 0.97}, {0.10, 0.16}, 0.85},    // flower: purple-pink petals, yellow centre
}};

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

// ---------------------------------------------------------------------------------------------
// Colours

struct Rgb {
  float r = 0, g = 0, b = 0;
};

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

Rgb scaled(Rgb colour, float factor) {
  return {std::min(colour.r * factor, 1.0f), std::min(colour.g * factor, 1.0f), std::min(colour.b * factor, 1.0f)};
}

Rgb grey(float value) { return {value, value, value}; }

// What a paint id in the drawing stands for: a part label, a flat colour, and whether the main
// part's texture applies.
struct Paint {
  uint8_t part = kBackground;
  Rgb colour;
  bool textured = false;
};

// ---------------------------------------------------------------------------------------------
// Drawing in object coordinates: x right, y down, the object within about the unit circle.

struct Point {
  double x, y;
};

class Canvas {
 public:
  // `ids` is the supersampled paint-id image, already cleared to the background (paint 0).
  Canvas(cv::Mat& ids, double centre_x, double centre_y, double unit, double angle)
      : ids_(ids),
        centre_x_(centre_x),
        centre_y_(centre_y),
        unit_(unit),
        cos_(std::cos(angle)),
        sin_(std::sin(angle)) {}

  // Shifts the object's origin (in object units) so that its extent is centred.
  void set_origin(double x, double y) { origin_ = {x, y}; }

  uint8_t paint(Part part, Rgb colour, bool textured = false) {
    paints_.push_back({part, colour, textured});
    return static_cast<uint8_t>(paints_.size() - 1);
  }
  const std::vector<Paint>& paints() const { return paints_; }

  void polygon(const std::vector<Point>& points, uint8_t paint, bool convex = true) {
    std::vector<cv::Point>& pixels = pixels_;
    pixels.clear();
    for (const Point& p : points) pixels.push_back(to_pixel(p));
    if (convex) {
      cv::fillConvexPoly(ids_, pixels.data(), static_cast<int>(pixels.size()), cv::Scalar(paint), cv::LINE_8, kShift);
    } else {
      const cv::Point* contour = pixels.data();
      const int count = static_cast<int>(pixels.size());
      cv::fillPoly(ids_, &contour, &count, 1, cv::Scalar(paint), cv::LINE_8, kShift);
    }
  }

  // An ellipse with radii (rx, ry), its x axis turned by `degrees` (clockwise on screen).
  void ellipse(double cx, double cy, double rx, double ry, double degrees, uint8_t paint) {
    polygon(arc(cx, cy, rx, ry, degrees, 0, 360, 40), paint);
  }
  void circle(double cx, double cy, double r, uint8_t paint) { ellipse(cx, cy, r, r, 0, paint); }
  void rect(double x0, double y0, double x1, double y1, uint8_t paint) {
    polygon({{x0, y0}, {x1, y0}, {x1, y1}, {x0, y1}}, paint);
  }

  // Points on an elliptic arc from angle `from` to `to` (degrees; 0 = +x, 90 = +y, i.e. down).
  static std::vector<Point> arc(double cx, double cy, double rx, double ry, double degrees, double from, double to,
                                int segments) {
    const double turn = degrees * kPi / 180;
    const double c = std::cos(turn), s = std::sin(turn);
    std::vector<Point> points;
    points.reserve(static_cast<size_t>(segments) + 1);
    const bool closed = to - from >= 360;
    const int count = closed ? segments : segments + 1;
    for (int k = 0; k < count; ++k) {
      const double t = (from + (to - from) * k / segments) * kPi / 180;
      const double x = rx * std::cos(t), y = ry * std::sin(t);
      points.push_back({cx + c * x - s * y, cy + s * x + c * y});
    }
    return points;
  }

 private:
  cv::Point to_pixel(Point p) const {
    const double x = p.x + origin_.x, y = p.y + origin_.y;
    // Pixel i covers [i, i + 1); OpenCV puts pixel centres on integers.
    const double px = centre_x_ + unit_ * (cos_ * x - sin_ * y) - 0.5;
    const double py = centre_y_ + unit_ * (sin_ * x + cos_ * y) - 0.5;
    constexpr double scale = 1 << kShift;
    return {static_cast<int>(std::lround(px * scale)), static_cast<int>(std::lround(py * scale))};
  }

  cv::Mat& ids_;
  double centre_x_, centre_y_, unit_, cos_, sin_;
  Point origin_{0, 0};
  std::vector<Paint> paints_{Paint{}};  // paint 0: background
  std::vector<cv::Point> pixels_;
};

// The colours of one image, from its factors and class.
struct Colours {
  Rgb main, secondary;
};

Colours colours_of(int64_t label, const std::array<double, kFactorCount>& f) {
  const ClassStyle& style = kStyles[static_cast<size_t>(label)];
  return {
      hsv(f[kMainHue], kMainSaturationMin + kMainSaturationSpan * f[kMainSaturation],
          kMainValueMin + kMainValueSpan * f[kMainValue]),
      hsv(f[kSecondaryHue], style.secondary_saturation, kSecondaryValueMin + kSecondaryValueSpan * f[kSecondaryValue])};
}

// a: cap width, b: stem length.
void draw_mushroom(Canvas& canvas, const Colours& colours, double a, double b) {
  const double rx = 0.55 + 0.35 * a, ry = 0.48;
  const double stem_length = 0.4 + 0.45 * b;  // from the cap's rim down
  canvas.set_origin(0, (ry - stem_length) / 2);
  const uint8_t stem = canvas.paint(kStem, colours.secondary);
  canvas.polygon({{-0.14, -0.05}, {0.14, -0.05}, {0.19, stem_length - 0.04}, {-0.19, stem_length - 0.04}}, stem);
  canvas.ellipse(0, stem_length - 0.04, 0.19, 0.05, 0, stem);
  const uint8_t gills = canvas.paint(kCap, scaled(colours.secondary, 0.7f));
  canvas.ellipse(0, 0, rx * 0.9, 0.1, 0, gills);
  const uint8_t cap = canvas.paint(kCap, colours.main, true);
  canvas.polygon(Canvas::arc(0, 0, rx, ry, 0, 180, 360, 32), cap);
}

// a: body length, b: wheel size.
void draw_car(Canvas& canvas, const Colours& colours, double a, double b) {
  const double half = 0.62 + 0.3 * a;    // half the body length
  const double wheel = 0.15 + 0.09 * b;  // wheel radius
  const double bottom = 0.25, roof = -0.42, shoulder = -0.12;
  canvas.set_origin(0, -(roof + bottom + wheel) / 2);
  const uint8_t body = canvas.paint(kCarBody, colours.main, true);
  canvas.polygon({{-half, bottom},
                  {half, bottom},
                  {half, -0.02},
                  {half - 0.06, -0.1},
                  {0.42 * half, shoulder},
                  {0.22 * half, roof},
                  {-0.38 * half, roof},
                  {-0.55 * half, shoulder},
                  {-half + 0.05, -0.1},
                  {-half, -0.02}},
                 body, false);
  // Windows: the cabin less a margin, split by a pillar.
  auto rear_edge = [&](double y) { return -0.55 * half + 0.17 * half * (shoulder - y) / (shoulder - roof); };
  auto front_edge = [&](double y) { return 0.42 * half - 0.2 * half * (shoulder - y) / (shoulder - roof); };
  const double low = -0.16, high = -0.37, margin = 0.05;
  const uint8_t window = canvas.paint(kWindow, colours.secondary);
  canvas.polygon({{rear_edge(low) + margin, low}, {-0.04, low}, {-0.04, high}, {rear_edge(high) + margin, high}},
                 window);
  canvas.polygon({{0.03, low}, {front_edge(low) - margin, low}, {front_edge(high) - margin, high}, {0.03, high}},
                 window);
  const uint8_t tyre = canvas.paint(kWheel, grey(0.12f));
  const uint8_t hub = canvas.paint(kWheel, grey(0.6f));
  for (const double side : {-1.0, 1.0}) {
    const double x = side * (0.62 * half);
    canvas.circle(x, bottom, wheel, tyre);
    canvas.circle(x, bottom, wheel * 0.45, hub);
  }
}

// a: wing size, b: tail length. Faces right.
void draw_bird(Canvas& canvas, const Colours& colours, double a, double b) {
  const double tail_end = -0.3 - (0.3 + 0.35 * b);
  canvas.set_origin(0.0, 0.02);
  const uint8_t tail = canvas.paint(kTail, scaled(colours.main, 0.8f));
  canvas.polygon({{-0.22, 0.0}, {-0.22, 0.17}, {tail_end, 0.27}, {tail_end, -0.1}}, tail);
  const uint8_t body = canvas.paint(kBirdBody, colours.main, true);
  canvas.ellipse(0.0, 0.1, 0.42, 0.28, -12, body);
  const uint8_t head = canvas.paint(kHead, scaled(colours.main, 1.08f));
  canvas.circle(0.4, -0.2, 0.21, head);
  const uint8_t eye = canvas.paint(kHead, grey(0.05f));
  canvas.circle(0.46, -0.25, 0.045, eye);
  const uint8_t beak = canvas.paint(kBeak, colours.secondary);
  canvas.polygon({{0.54, -0.33}, {0.96, -0.2}, {0.54, -0.07}}, beak);
  const uint8_t wing = canvas.paint(kWing, scaled(colours.main, 0.72f));
  canvas.ellipse(-0.1, 0.04, 0.24 + 0.18 * a, 0.12 + 0.06 * a, -18, wing);
}

// a: roof height, b: door width.
void draw_house(Canvas& canvas, const Colours& colours, double a, double b) {
  const double roof_height = 0.3 + 0.4 * a, door_width = 0.16 + 0.18 * b;
  const double wall_bottom = 0.8;
  canvas.set_origin(0, -(wall_bottom - roof_height) / 2);
  const uint8_t wall = canvas.paint(kWall, colours.main, true);
  canvas.rect(-0.55, 0, 0.55, wall_bottom, wall);
  const uint8_t chimney = canvas.paint(kRoof, scaled(colours.secondary, 0.8f));
  canvas.rect(0.28, -0.75 * roof_height, 0.42, 0, chimney);
  const uint8_t roof = canvas.paint(kRoof, colours.secondary);
  canvas.polygon({{-0.72, 0.03}, {0.72, 0.03}, {0, -roof_height}}, roof);
  const uint8_t door = canvas.paint(kDoor, hsv(0.07, 0.55, 0.32));
  canvas.rect(0.2 - door_width / 2, 0.38, 0.2 + door_width / 2, wall_bottom, door);
  const uint8_t frame = canvas.paint(kWindow, grey(0.25f));
  const uint8_t pane = canvas.paint(kWindow, hsv(0.56, 0.3, 0.95));
  canvas.rect(-0.43, 0.18, -0.11, 0.5, frame);
  canvas.rect(-0.4, 0.21, -0.285, 0.325, pane);
  canvas.rect(-0.255, 0.21, -0.14, 0.325, pane);
  canvas.rect(-0.4, 0.355, -0.285, 0.47, pane);
  canvas.rect(-0.255, 0.355, -0.14, 0.47, pane);
}

// a: crown size, b: trunk length.
void draw_tree(Canvas& canvas, const Colours& colours, double a, double b) {
  const double r = 0.36 + 0.18 * a, trunk_length = 0.3 + 0.35 * b;
  canvas.set_origin(0, (1.15 * r - r - trunk_length) / 2);
  const uint8_t trunk = canvas.paint(kTrunk, colours.secondary);
  canvas.polygon({{-0.08, 0}, {0.08, 0}, {0.13, r + trunk_length}, {-0.13, r + trunk_length}}, trunk);
  const uint8_t crown = canvas.paint(kCrown, colours.main, true);
  canvas.circle(0, 0, r, crown);
  canvas.circle(-0.55 * r, 0.25 * r, 0.7 * r, crown);
  canvas.circle(0.55 * r, 0.25 * r, 0.7 * r, crown);
  canvas.circle(0, -0.45 * r, 0.7 * r, crown);
  canvas.circle(-0.45 * r, -0.3 * r, 0.6 * r, crown);
  canvas.circle(0.45 * r, -0.3 * r, 0.6 * r, crown);
}

// a: petal length, b: stem length.
void draw_flower(Canvas& canvas, const Colours& colours, double a, double b) {
  const double centre_radius = 0.17, petal = 0.24 + 0.3 * a, stem_length = 0.5 + 0.45 * b;
  canvas.set_origin(0, (centre_radius + petal - stem_length) / 2);
  const uint8_t stem = canvas.paint(kStem, hsv(0.3, 0.7, 0.5));
  canvas.rect(-0.055, 0, 0.055, stem_length, stem);
  canvas.ellipse(0.14, 0.62 * stem_length, 0.15, 0.06, -30, stem);
  const uint8_t petals = canvas.paint(kPetal, colours.main, true);
  const double distance = centre_radius + petal / 2 - 0.04;
  for (int k = 0; k < 5; ++k) {
    const double degrees = -90 + 72 * k;
    const double t = degrees * kPi / 180;
    canvas.ellipse(distance * std::cos(t), distance * std::sin(t), petal / 2 + 0.04, 0.14, degrees, petals);
  }
  const uint8_t centre = canvas.paint(kCentre, colours.secondary);
  canvas.circle(0, 0, centre_radius, centre);
}

// Buffers reused across the images one thread renders.
struct Scratch {
  cv::Mat ids;    // supersampled paint ids, CV_8U
  cv::Mat fine;   // supersampled colours, CV_32FC3
  cv::Mat image;  // output-size colours, CV_32FC3
};

// Where and how large the object is drawn on the supersampled canvas.
struct Placement {
  double centre_x, centre_y, unit, angle;
};

Placement place_object(const std::array<double, kFactorCount>& f, int size) {
  // Position 0 or 1 puts the object's unit circle kFrameMargin from the frame's edge.
  const double unit_share = kUnitMin + kUnitSpan * f[kScale];
  const double slack = 0.5 - kFrameMargin - unit_share;
  return {size * (0.5 + (2 * f[kPositionX] - 1) * slack), size * (0.5 + (2 * f[kPositionY] - 1) * slack),
          size * unit_share, (f[kRotation] - 0.5) * 2 * kMaxRotationDeg * kPi / 180};
}

void draw_object(int64_t label, Canvas& canvas, const Colours& colours, double a, double b) {
  switch (label) {
    case kMushroom:
      draw_mushroom(canvas, colours, a, b);
      break;
    case kCar:
      draw_car(canvas, colours, a, b);
      break;
    case kBird:
      draw_bird(canvas, colours, a, b);
      break;
    case kHouse:
      draw_house(canvas, colours, a, b);
      break;
    case kTree:
      draw_tree(canvas, colours, a, b);
      break;
    default:
      draw_flower(canvas, colours, a, b);
      break;
  }
}

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

// Draws one image into image_out ([3, R, R]) and parts_out ([R, R]).
void render_one(int64_t label, const std::array<double, kFactorCount>& f, int resolution, Scratch& scratch,
                float* image_out, int64_t* parts_out) {
  const int size = resolution * kSupersample;
  scratch.ids.create(size, size, CV_8U);
  scratch.ids.setTo(cv::Scalar(0));
  scratch.fine.create(size, size, CV_32FC3);
  const Placement at = place_object(f, size);
  Canvas canvas(scratch.ids, at.centre_x, at.centre_y, at.unit, at.angle);
  draw_object(label, canvas, colours_of(label, f), f[kProportionA], f[kProportionB]);
  std::vector<Paint> paints = canvas.paints();
  paints[0].colour =
      hsv(f[kBackgroundHue], kBackgroundSaturation, kBackgroundValueMin + kBackgroundValueSpan * f[kBackgroundValue]);
  shade_drawing(paints, f, at, size, scratch);
  downsample_image(resolution, scratch, image_out);
  downsample_parts(paints, resolution, scratch, parts_out);
}

std::string sizes_text(const torch::Tensor& tensor) {
  std::ostringstream text;
  text << tensor.sizes();
  return text.str();
}

void check_label(int64_t label) {
  if (label < 0 || label >= kClassCount)
    throw Error("ShapesWorld", "class label " + std::to_string(label) + " is out of range [0, " +
                                   std::to_string(int64_t(kClassCount)) + ")");
}

}  // namespace

ShapesWorld::ShapesWorld(int64_t resolution) : resolution_(resolution) {
  if (resolution < kMinResolution)
    throw Error("ShapesWorld", "resolution " + std::to_string(resolution) + " is below the minimum of " +
                                   std::to_string(kMinResolution));
  if (resolution > 4096)
    throw Error("ShapesWorld", "resolution " + std::to_string(resolution) + " is above the maximum of 4096");
}

const std::vector<std::string>& ShapesWorld::class_names() {
  static const std::vector<std::string> names = {"mushroom", "car", "bird", "house", "tree", "flower"};
  return names;
}

const std::vector<std::string>& ShapesWorld::part_names() {
  static const std::vector<std::string> names = {"background", "cap",  "stem",  "car body", "wheel", "window",
                                                 "bird body",  "head", "beak",  "wing",     "tail",  "wall",
                                                 "roof",       "door", "trunk", "crown",    "petal", "centre"};
  return names;
}

std::vector<int64_t> ShapesWorld::parts_of_class(int64_t label) {
  check_label(label);
  switch (label) {
    case kMushroom:
      return {kCap, kStem};
    case kCar:
      return {kCarBody, kWheel, kWindow};
    case kBird:
      return {kBirdBody, kHead, kBeak, kWing, kTail};
    case kHouse:
      return {kWall, kRoof, kDoor, kWindow};
    case kTree:
      return {kTrunk, kCrown};
    default:
      return {kPetal, kCentre, kStem};
  }
}

int64_t ShapesWorld::main_part_of_class(int64_t label) {
  check_label(label);
  return kStyles[static_cast<size_t>(label)].main_part;
}

int64_t ShapesWorld::secondary_part_of_class(int64_t label) {
  check_label(label);
  return kStyles[static_cast<size_t>(label)].secondary_part;
}

const std::vector<std::string>& ShapesWorld::factor_names() {
  static const std::vector<std::string> names = {"position_x",        "position_y",          "scale",
                                                 "rotation",          "proportion_a",        "proportion_b",
                                                 "main_hue",          "main_saturation",     "main_value",
                                                 "secondary_hue",     "secondary_value",     "background_hue",
                                                 "background_value",  "background_gradient", "texture_amplitude",
                                                 "texture_frequency", "light_direction"};
  return names;
}

ShapesBatch ShapesWorld::render(const std::vector<int64_t>& labels, const std::vector<uint64_t>& seeds) const {
  if (labels.size() != seeds.size())
    throw Error("ShapesWorld", "render got " + std::to_string(labels.size()) + " labels but " +
                                   std::to_string(seeds.size()) + " seeds");
  for (const int64_t label : labels) check_label(label);
  const auto count = static_cast<int64_t>(labels.size());
  auto factors = torch::empty({count, int64_t(kFactorCount)}, torch::kDouble);
  double* f = factors.data_ptr<double>();
  for (int64_t i = 0; i < count; ++i) {
    const size_t index = static_cast<size_t>(i);
    const std::array<double, kFactorCount> sampled = sample_factors(labels[index], seeds[index]);
    std::copy(sampled.begin(), sampled.end(), f + i * kFactorCount);
  }
  return draw(labels, factors);
}

ShapesBatch ShapesWorld::render_factors(const std::vector<int64_t>& labels, const torch::Tensor& factors) const {
  const auto count = static_cast<int64_t>(labels.size());
  if (factors.dim() != 2 || factors.size(0) != count || factors.size(1) != kFactorCount)
    throw Error("ShapesWorld", "render_factors needs factors [" + std::to_string(count) + ", " +
                                   std::to_string(int64_t(kFactorCount)) + "], got " + sizes_text(factors));
  const auto f64 = factors.to(torch::kCPU, torch::kDouble).contiguous();
  if (!torch::isfinite(f64).all().item<bool>() || (f64 < 0).any().item<bool>() || (f64 > 1).any().item<bool>())
    throw Error("ShapesWorld", "render_factors needs finite factors in [0, 1]");
  for (const int64_t label : labels) check_label(label);
  return draw(labels, f64);
}

// Each image has its own buffers, so the split across threads cannot change it.
ShapesBatch ShapesWorld::draw(const std::vector<int64_t>& labels, const torch::Tensor& factors) const {
  const auto count = static_cast<int64_t>(labels.size());
  const int64_t r = resolution_;
  ShapesBatch batch;
  batch.images = torch::empty({count, 3, r, r}, torch::kFloat);
  batch.parts = torch::empty({count, r, r}, torch::kLong);
  batch.factors = factors.to(torch::kFloat);
  batch.labels = torch::tensor(labels, torch::kLong).reshape({count});
  float* images = batch.images.data_ptr<float>();
  int64_t* parts = batch.parts.data_ptr<int64_t>();
  const double* source = factors.data_ptr<double>();
  at::parallel_for(0, count, 16, [&](int64_t begin, int64_t end) {
    Scratch scratch;
    for (int64_t i = begin; i < end; ++i) {
      std::array<double, kFactorCount> f{};
      std::copy(source + i * kFactorCount, source + (i + 1) * kFactorCount, f.begin());
      render_one(labels[static_cast<size_t>(i)], f, static_cast<int>(r), scratch, images + i * 3 * r * r,
                 parts + i * r * r);
    }
  });
  return batch;
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
    for (const auto& [factor, range] : {std::pair{kMainHue, style.main_hue}, std::pair{kSecondaryHue, style.secondary_hue}}) {
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
