// The shapes world's geometry: the six objects drawn from their parts as paint ids on the
// supersampled canvas, placed and turned by the factors (see shapes.hpp and docs/worlds.md).
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "worlds/shapes/shapes_drawing.hpp"

namespace linkstyle::shapes {

namespace {

constexpr int kShift = 4;  // fractional bits of the polygon vertices given to OpenCV

Rgb scaled(Rgb colour, float factor) {
  return {std::min(colour.r * factor, 1.0f), std::min(colour.g * factor, 1.0f), std::min(colour.b * factor, 1.0f)};
}

Rgb grey(float value) { return {value, value, value}; }

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

}  // namespace

Placement place_object(const std::array<double, kFactorCount>& f, int size) {
  // Position 0 or 1 puts the object's unit circle kFrameMargin from the frame's edge.
  const double unit_share = kUnitMin + kUnitSpan * f[kScale];
  const double slack = 0.5 - kFrameMargin - unit_share;
  return {size * (0.5 + (2 * f[kPositionX] - 1) * slack), size * (0.5 + (2 * f[kPositionY] - 1) * slack),
          size * unit_share, (f[kRotation] - 0.5) * 2 * kMaxRotationDeg * kPi / 180};
}

std::vector<Paint> draw_paint_ids(int64_t label, const std::array<double, kFactorCount>& f, const Placement& at,
                                  cv::Mat& ids) {
  Canvas canvas(ids, at.centre_x, at.centre_y, at.unit, at.angle);
  draw_object(label, canvas, colours_of(label, f), f[kProportionA], f[kProportionB]);
  return canvas.paints();
}

}  // namespace linkstyle::shapes
