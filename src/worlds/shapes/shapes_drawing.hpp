// worlds/shapes/shapes_drawing.hpp
//
// WHAT THIS REPRESENTS
//   The inside of the shapes world (linkstyle/worlds/shapes.hpp): its classes, parts and factors,
//   how factors map to drawing quantities (docs/worlds.md), and the stages that turn one image's
//   factors into pixels: sampling (factors.cpp), the objects' outlines as paint ids on a
//   supersampled canvas (geometry.cpp), colouring and downsampling (drawing.cpp).
// REQUIRES
//   Labels in [0, kClassCount) (check_label); factors in [0, 1].
// ENSURES
//   Every stage is a pure function of its arguments: no shared state between images. Internal to
//   the library.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>
#include <torch/types.h>

namespace linkstyle::shapes {

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
// Factors (factors.cpp)

// The factors of image (label, seed): a splitmix64 stream per image, so images never share state.
std::array<double, kFactorCount> sample_factors(int64_t label, uint64_t seed);

// ---------------------------------------------------------------------------------------------
// Colours and paints (drawing.cpp)

struct Rgb {
  float r = 0, g = 0, b = 0;
};

// hue in turns (wrapped), saturation and value clamped to [0, 1].
Rgb hsv(double hue, double saturation, double value);

// What a paint id in the drawing stands for: a part label, a flat colour, and whether the main
// part's texture applies.
struct Paint {
  uint8_t part = kBackground;
  Rgb colour;
  bool textured = false;
};

// ---------------------------------------------------------------------------------------------
// Geometry (geometry.cpp)

// Where and how large the object is drawn on the supersampled canvas.
struct Placement {
  double centre_x, centre_y, unit, angle;
};

// The placement of an object with factors `f` on a canvas of `size` x `size` pixels.
Placement place_object(const std::array<double, kFactorCount>& f, int size);

// Draws the object of class `label` with factors `f` at `at` into `ids` (CV_8U, cleared to paint
// 0), later parts over earlier ones; returns the paints its ids stand for (paint 0: background,
// its colour left black).
std::vector<Paint> draw_paint_ids(int64_t label, const std::array<double, kFactorCount>& f, const Placement& at,
                                  cv::Mat& ids);

// ---------------------------------------------------------------------------------------------
// One image (drawing.cpp)

// Buffers reused across the images one thread renders.
struct Scratch {
  cv::Mat ids;    // supersampled paint ids, CV_8U
  cv::Mat fine;   // supersampled colours, CV_32FC3
  cv::Mat image;  // output-size colours, CV_32FC3
};

// Draws one image into image_out ([3, R, R]) and parts_out ([R, R]).
void render_one(int64_t label, const std::array<double, kFactorCount>& f, int resolution, Scratch& scratch,
                float* image_out, int64_t* parts_out);

// ---------------------------------------------------------------------------------------------
// Argument checks (world.cpp)

std::string sizes_text(const torch::Tensor& tensor);

// Error("ShapesWorld", ...) unless 0 <= label < kClassCount.
void check_label(int64_t label);

}  // namespace linkstyle::shapes
