// Tests for the concept changes between the ends of a sweep (concept_changes.hpp).
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "linkstyle/concept_changes.hpp"
#include "test_support.hpp"

namespace linkstyle {
namespace {

using testing::ScratchDir;

TEST(ConceptChanges, EndpointChangesFollowTheDocumentedNormalisation) {
  PartMeasures a, b;
  a.part = b.part = 1;
  a.area = 40, b.area = 50;
  a.luminance = 10, b.luminance = 27;
  a.entropy = 1.0, b.entropy = 2.5;
  a.hue_degrees = 350, b.hue_degrees = 10;
  a.saturation = b.saturation = 0.5;
  a.angle_degrees = 170, b.angle_degrees = 10;
  a.eccentricity = 0.2, b.eccentricity = 0.6;
  a.centre_x = 8, b.centre_x = 12;
  a.centre_y = 16, b.centre_y = 14;
  a.texture = 0.05, b.texture = 0.12;
  PartMeasures grey_first;  // part 2 appears at the end only, and is grey
  PartMeasures grey_last;
  grey_last.part = 2, grey_last.area = 30;
  PartMeasures tiny;  // part 3 is too small on average
  tiny.part = 3, tiny.area = 1;
  std::vector<PartMotion> motion = {{1, 3.2, -1.6, 40}};
  const auto mean_area = torch::tensor({0.0, 45.0, 15.0, 1.0}, torch::kDouble);
  const auto c = endpoint_changes({a, tiny}, {b, grey_last, tiny}, motion, mean_area, 4, 32, 2.0);
  const auto& names = concept_measures();
  auto at = [&](int64_t part, const std::string& measure) {
    return c[part][std::find(names.begin(), names.end(), measure) - names.begin()].item<double>();
  };
  EXPECT_NEAR(at(1, "area"), 10.0 / (32.0 * 32.0), 1e-12);  // a share of the image
  EXPECT_NEAR(at(1, "luminance"), 17.0 / 85.0, 1e-12);
  EXPECT_NEAR(at(1, "entropy"), 1.5, 1e-12);
  EXPECT_NEAR(at(1, "hue"), 20.0, 1e-9);    // across 0, not -340
  EXPECT_NEAR(at(1, "angle"), 20.0, 1e-9);  // an axis: 170 -> 10 is 20 degrees
  EXPECT_NEAR(at(1, "eccentricity"), 0.4, 1e-12);
  EXPECT_NEAR(at(1, "centre_x"), 4.0 / 32.0, 1e-12);
  EXPECT_NEAR(at(1, "centre_y"), -2.0 / 32.0, 1e-12);
  EXPECT_NEAR(at(1, "flow_x"), 0.1, 1e-12);
  EXPECT_NEAR(at(1, "flow_y"), -0.05, 1e-12);
  EXPECT_NEAR(at(1, "texture"), 0.07, 1e-12);
  EXPECT_NEAR(at(2, "area"), 30.0 / (32.0 * 32.0), 1e-12);  // absent at the start: all of it is new
  EXPECT_TRUE(std::isnan(at(2, "luminance")));
  EXPECT_TRUE(std::isnan(at(2, "hue")));
  EXPECT_TRUE(std::isnan(at(3, "area")));  // under the minimum area
  EXPECT_TRUE(std::isnan(at(0, "area")));
  EXPECT_NEAR(minimum_part_area(128), 20.0, 1e-12);
  EXPECT_NEAR(minimum_part_area(32), 1.25, 1e-12);
}

}  // namespace
}  // namespace linkstyle
