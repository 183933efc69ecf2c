// The procedural shapes world (see shapes.hpp and docs/worlds.md): its classes and parts, the
// checks of its arguments, and batches rendered image by image across threads.
#include "linkstyle/worlds/shapes.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include <ATen/Parallel.h>
#include <torch/types.h>

#include "linkstyle/errors.hpp"
#include "worlds/shapes/shapes_drawing.hpp"

namespace linkstyle {

namespace shapes {

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

}  // namespace shapes

using namespace shapes;

namespace {

constexpr int64_t kMinResolution = 16;

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

}  // namespace linkstyle
