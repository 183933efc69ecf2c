#include "linkstyle/part_measures.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "linkstyle/errors.hpp"
#include "test_support.hpp"

namespace {

using linkstyle::measure_part_motion;
using linkstyle::measure_parts;
using linkstyle::PartMeasures;
using linkstyle::testing::expect_error;

constexpr double kPi = 3.14159265358979323846;

cv::Mat solid(int width, int height, cv::Vec3b colour) { return cv::Mat(height, width, CV_8UC3, cv::Scalar(colour)); }
cv::Mat zero_labels(const cv::Mat& image) { return cv::Mat::zeros(image.size(), CV_32SC1); }

// Labels pixels where `mask` (8-bit) is non-zero with `part`.
void paint_labels(cv::Mat& labels, const cv::Mat& mask, int part) { labels.setTo(part, mask != 0); }

const PartMeasures& find_part(const std::vector<PartMeasures>& all, int part) {
  for (const auto& m : all)
    if (m.part == part) return m;
  ADD_FAILURE() << "part " << part << " missing";
  static const PartMeasures none;
  return none;
}

double rectangle_axis(int side) { return 4.0 * std::sqrt((side * side - 1) / 12.0); }

// Difference of two axis angles in degrees, modulo 180.
double angle_difference(double a, double b) {
  double d = std::fmod(std::abs(a - b), 180.0);
  return std::min(d, 180.0 - d);
}

// Distance of two hues in degrees on the colour circle.
double hue_distance(double a, double b) {
  double d = std::fmod(std::abs(a - b), 360.0);
  return std::min(d, 360.0 - d);
}

// The local entropy by definition: a fresh histogram of the disk at every pixel.
double brute_force_entropy(const cv::Mat& grey, int x, int y) {
  int counts[256] = {};
  int n = 0;
  for (int dy = -5; dy <= 5; ++dy)
    for (int dx = -5; dx <= 5; ++dx) {
      if (dx * dx + dy * dy > 25) continue;
      const int xx = x + dx, yy = y + dy;
      if (xx < 0 || yy < 0 || xx >= grey.cols || yy >= grey.rows) continue;
      ++counts[grey.at<uint8_t>(yy, xx)];
      ++n;
    }
  double entropy = 0;
  for (int c : counts)
    if (c > 0) entropy -= (double(c) / n) * std::log2(double(c) / n);
  return entropy;
}

TEST(PartMeasures, RectangleAreaLuminanceCentreAndAxes) {
  const int left = 5, top = 8, width = 12, height = 6;
  const cv::Vec3b colour(200, 100, 50);
  cv::Mat image = solid(40, 30, {0, 0, 0});
  cv::Mat labels = zero_labels(image);
  const cv::Rect box(left, top, width, height);
  image(box).setTo(cv::Scalar(colour));
  labels(box).setTo(1);

  const auto all = measure_parts(image, labels, 2);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].part, 0);
  EXPECT_EQ(all[0].area, 40 * 30 - width * height);
  EXPECT_EQ(all[0].luminance, 0.0);
  const PartMeasures& m = all[1];
  EXPECT_EQ(m.part, 1);
  EXPECT_EQ(m.area, width * height);
  EXPECT_NEAR(m.luminance, (0.299 * 200 + 0.587 * 100 + 0.114 * 50) / 3.0, 1e-9);
  EXPECT_NEAR(m.centre_x, left + (width - 1) / 2.0, 1e-9);
  EXPECT_NEAR(m.centre_y, top + (height - 1) / 2.0, 1e-9);
  EXPECT_NEAR(m.major_axis, rectangle_axis(width), 1e-9);
  EXPECT_NEAR(m.minor_axis, rectangle_axis(height), 1e-9);
  EXPECT_NEAR(m.angle_degrees, 0.0, 1e-9);
  const double ratio = rectangle_axis(height) / rectangle_axis(width);
  EXPECT_NEAR(m.eccentricity, std::sqrt(1 - ratio * ratio), 1e-9);
}

TEST(PartMeasures, TallRectangleHasAngle90) {
  cv::Mat image = solid(20, 30, {0, 0, 0});
  cv::Mat labels = zero_labels(image);
  labels(cv::Rect(4, 3, 3, 20)).setTo(1);
  const PartMeasures m = find_part(measure_parts(image, labels, 2), 1);
  EXPECT_NEAR(m.angle_degrees, 90.0, 1e-9);
  EXPECT_NEAR(m.major_axis, rectangle_axis(20), 1e-9);
  EXPECT_NEAR(m.minor_axis, rectangle_axis(3), 1e-9);
}

TEST(PartMeasures, RotatedEllipseAngleAndEccentricity) {
  const double a = 40, b = 15;  // semi-axes
  for (double angle : {30.0, 120.0, 75.0}) {
    cv::Mat image = solid(128, 128, {0, 0, 0});
    cv::Mat mask = cv::Mat::zeros(image.size(), CV_8UC1);
    // cv::ellipse rotates the first axis from +x towards +y (y down) by `angle`.
    cv::ellipse(mask, cv::Point(64, 64), cv::Size(int(a), int(b)), angle, 0, 360, cv::Scalar(255), cv::FILLED);
    cv::Mat labels = zero_labels(image);
    paint_labels(labels, mask, 1);
    const PartMeasures m = find_part(measure_parts(image, labels, 2), 1);
    SCOPED_TRACE(angle);
    EXPECT_LT(angle_difference(m.angle_degrees, angle), 1.5);
    EXPECT_GE(m.angle_degrees, 0.0);
    EXPECT_LT(m.angle_degrees, 180.0);
    // A filled ellipse has variance (semi-axis)^2 / 4 along each axis: axis length 4 sqrt(var) = 2 semi-axis.
    EXPECT_NEAR(m.eccentricity, std::sqrt(1 - (b / a) * (b / a)), 0.01);
    EXPECT_NEAR(m.major_axis, 2 * a, 1.5);
    EXPECT_NEAR(m.minor_axis, 2 * b, 1.5);
    EXPECT_NEAR(m.centre_x, 64, 0.1);
    EXPECT_NEAR(m.centre_y, 64, 0.1);
  }
}

TEST(PartMeasures, DiagonalLineIsOneEightConnectedComponent) {
  // Pixels touching only at corners: 8-connected, so one component, not ten single pixels.
  for (bool anti : {false, true}) {
    cv::Mat image = solid(16, 16, {0, 0, 0});
    cv::Mat labels = zero_labels(image);
    for (int i = 0; i < 10; ++i) labels.at<int32_t>(3 + i, anti ? 12 - i : 2 + i) = 1;
    const PartMeasures m = find_part(measure_parts(image, labels, 2), 1);
    // var_x = var_y = |cov| = (10^2 - 1) / 12; eigenvalues 2 var and 0.
    EXPECT_NEAR(m.major_axis, 4 * std::sqrt(2 * 99 / 12.0), 1e-9);
    EXPECT_NEAR(m.minor_axis, 0.0, 1e-6);
    EXPECT_NEAR(m.eccentricity, 1.0, 1e-9);
    EXPECT_NEAR(m.angle_degrees, anti ? 135.0 : 45.0, 1e-9);  // y grows downwards
  }
}

TEST(PartMeasures, SinglePixelHasZeroAxes) {
  cv::Mat image = solid(8, 8, {10, 20, 30});
  cv::Mat labels = zero_labels(image);
  labels.at<int32_t>(2, 5) = 1;
  const PartMeasures m = find_part(measure_parts(image, labels, 2), 1);
  EXPECT_EQ(m.area, 1);
  EXPECT_EQ(m.centre_x, 5);
  EXPECT_EQ(m.centre_y, 2);
  EXPECT_EQ(m.major_axis, 0);
  EXPECT_EQ(m.minor_axis, 0);
  EXPECT_EQ(m.eccentricity, 0);
  EXPECT_EQ(m.angle_degrees, 0);
}

TEST(PartMeasures, EllipseFromLargestComponentCentreFromAll) {
  cv::Mat image = solid(40, 40, {0, 0, 0});
  cv::Mat labels = zero_labels(image);
  const cv::Rect wide(2, 2, 10, 4);   // 40 pixels, horizontal
  const cv::Rect tall(25, 20, 2, 9);  // 18 pixels, vertical, far away
  labels(wide).setTo(1);
  labels(tall).setTo(1);
  const PartMeasures m = find_part(measure_parts(image, labels, 2), 1);
  EXPECT_EQ(m.area, 58);
  EXPECT_NEAR(m.centre_x, (40 * (2 + 4.5) + 18 * (25 + 0.5)) / 58.0, 1e-9);
  EXPECT_NEAR(m.centre_y, (40 * (2 + 1.5) + 18 * (20 + 4.0)) / 58.0, 1e-9);
  EXPECT_NEAR(m.major_axis, rectangle_axis(10), 1e-9);
  EXPECT_NEAR(m.minor_axis, rectangle_axis(4), 1e-9);
  EXPECT_NEAR(m.angle_degrees, 0.0, 1e-9);
}

// The ellipse of every part against OpenCV's own labelling of that part's mask (largest
// component; ties to the one whose first pixel comes first in raster order, which is not always
// OpenCV's lowest label: its 8-connected labelling numbers 2x2 blocks) and a plain covariance of
// its pixels. Random labels make components that merge late (V and U shapes) and size ties.
TEST(PartMeasures, EllipseMatchesOpenCVComponents) {
  cv::RNG rng(21);
  for (cv::Size size : {cv::Size(17, 13), cv::Size(32, 32), cv::Size(1, 9), cv::Size(9, 1), cv::Size(40, 7)}) {
    for (int parts : {2, 3}) {
      cv::Mat labels(size, CV_32SC1);
      rng.fill(labels, cv::RNG::UNIFORM, 0, parts);
      const cv::Mat image = solid(size.width, size.height, {0, 0, 0});
      for (const auto& m : measure_parts(image, labels, parts)) {
        SCOPED_TRACE(::testing::Message() << size << " parts " << parts << " part " << m.part);
        cv::Mat components, stats, centroids;
        const int count = cv::connectedComponentsWithStats(labels == m.part, components, stats, centroids, 8, CV_32S);
        std::vector<int> first_pixel(count, -1);
        for (int i = 0; i < size.area(); ++i) {
          const int component = components.at<int>(i / size.width, i % size.width);
          if (first_pixel[component] < 0) first_pixel[component] = i;
        }
        int best = 1;
        for (int i = 2; i < count; ++i) {
          const int area = stats.at<int>(i, cv::CC_STAT_AREA), best_area = stats.at<int>(best, cv::CC_STAT_AREA);
          if (area > best_area || (area == best_area && first_pixel[i] < first_pixel[best])) best = i;
        }
        double n = 0, mx = 0, my = 0;
        for (int y = 0; y < size.height; ++y)
          for (int x = 0; x < size.width; ++x)
            if (components.at<int>(y, x) == best) n += 1, mx += x, my += y;
        mx /= n;
        my /= n;
        double vxx = 0, vyy = 0, vxy = 0;
        for (int y = 0; y < size.height; ++y)
          for (int x = 0; x < size.width; ++x)
            if (components.at<int>(y, x) == best) {
              vxx += (x - mx) * (x - mx);
              vyy += (y - my) * (y - my);
              vxy += (x - mx) * (y - my);
            }
        cv::Matx22d covariance(vxx / n, vxy / n, vxy / n, vyy / n);
        cv::Vec2d eigenvalues;
        cv::Matx22d eigenvectors;
        cv::eigen(covariance, eigenvalues, eigenvectors);  // descending; rows are vectors
        EXPECT_NEAR(m.major_axis, 4 * std::sqrt(std::max(0.0, eigenvalues[0])), 1e-6);
        EXPECT_NEAR(m.minor_axis, 4 * std::sqrt(std::max(0.0, eigenvalues[1])), 1e-6);
        if (eigenvalues[0] - eigenvalues[1] > 1e-6) {
          const double angle = std::atan2(eigenvectors(0, 1), eigenvectors(0, 0)) * 180 / kPi;
          EXPECT_LT(angle_difference(m.angle_degrees, angle), 1e-6);
        }
      }
    }
  }
}

TEST(PartMeasures, AbsentPartIsLeftOut) {
  cv::Mat image = solid(10, 10, {0, 0, 0});
  cv::Mat labels = zero_labels(image);
  labels(cv::Rect(0, 0, 3, 3)).setTo(3);
  labels(cv::Rect(5, 5, 2, 2)).setTo(1);
  const auto all = measure_parts(image, labels, 5);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].part, 0);
  EXPECT_EQ(all[1].part, 1);
  EXPECT_EQ(all[2].part, 3);
  EXPECT_EQ(all[0].area + all[1].area + all[2].area, 100);
}

TEST(PartMeasures, ConstantImageHasZeroEntropy) {
  cv::Mat image = solid(20, 15, {90, 160, 30});
  cv::Mat labels = zero_labels(image);
  labels(cv::Rect(3, 3, 6, 6)).setTo(1);
  for (const auto& m : measure_parts(image, labels, 2)) EXPECT_NEAR(m.entropy, 0.0, 1e-12) << m.part;
}

TEST(PartMeasures, NoiseHasHighEntropy) {
  cv::Mat image(32, 32, CV_8UC3);
  cv::RNG rng(7);
  rng.fill(image, cv::RNG::UNIFORM, 0, 256);
  const auto all = measure_parts(image, zero_labels(image), 1);
  ASSERT_EQ(all.size(), 1u);
  // About 70 distinct grey levels among the 81 disk pixels: close to log2(70) = 6.1 bits.
  EXPECT_GT(all[0].entropy, 5.0);
  EXPECT_LE(all[0].entropy, std::log2(81.0));
}

TEST(PartMeasures, CheckerboardInteriorHasOneBit) {
  cv::Mat image(30, 30, CV_8UC3);
  for (int y = 0; y < 30; ++y)
    for (int x = 0; x < 30; ++x)
      image.at<cv::Vec3b>(y, x) = (x + y) % 2 ? cv::Vec3b(200, 200, 200) : cv::Vec3b(50, 50, 50);
  cv::Mat labels = zero_labels(image);
  labels(cv::Rect(5, 5, 20, 20)).setTo(1);  // every disk of the interior lies inside the image
  const PartMeasures m = find_part(measure_parts(image, labels, 2), 1);
  // Every interior disk holds its centre's level at the offsets with even dx + dy, the other level
  // at the odd ones.
  int even = 0;
  for (int dy = -5; dy <= 5; ++dy)
    for (int dx = -5; dx <= 5; ++dx)
      if (dx * dx + dy * dy <= 25 && (dx + dy) % 2 == 0) ++even;
  const double p = even / 81.0;
  EXPECT_NEAR(m.entropy, -p * std::log2(p) - (1 - p) * std::log2(1 - p), 1e-9);
  EXPECT_NEAR(m.entropy, 1.0, 0.01);
}

// The sliding histogram against the definition, on images narrower than the disk too.
TEST(PartMeasures, EntropyMatchesBruteForceWithClipping) {
  cv::RNG rng(11);
  for (cv::Size size : {cv::Size(13, 9), cv::Size(4, 3), cv::Size(1, 12), cv::Size(25, 1), cv::Size(32, 32)}) {
    cv::Mat image(size, CV_8UC3);
    rng.fill(image, cv::RNG::UNIFORM, 0, 4);  // few levels: repeated counts in each disk
    cv::Mat labels(size, CV_32SC1);
    rng.fill(labels, cv::RNG::UNIFORM, 0, 3);
    cv::Mat grey;
    cv::cvtColor(image, grey, cv::COLOR_RGB2GRAY);
    std::vector<double> sum(3, 0.0), count(3, 0.0);
    for (int y = 0; y < size.height; ++y)
      for (int x = 0; x < size.width; ++x) {
        const int part = labels.at<int32_t>(y, x);
        sum[part] += brute_force_entropy(grey, x, y);
        count[part] += 1;
      }
    for (const auto& m : measure_parts(image, labels, 3))
      EXPECT_NEAR(m.entropy, sum[m.part] / count[m.part], 1e-9) << size << " part " << m.part;
  }
}

TEST(PartMeasures, HueOfPrimaries) {
  cv::Mat image = solid(30, 10, {0, 0, 0});
  cv::Mat labels = zero_labels(image);
  image(cv::Rect(0, 0, 10, 10)).setTo(cv::Scalar(255, 0, 0));  // RGB order
  image(cv::Rect(10, 0, 10, 10)).setTo(cv::Scalar(0, 255, 0));
  image(cv::Rect(20, 0, 10, 10)).setTo(cv::Scalar(0, 0, 255));
  labels(cv::Rect(10, 0, 10, 10)).setTo(1);
  labels(cv::Rect(20, 0, 10, 10)).setTo(2);
  const auto all = measure_parts(image, labels, 3);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_NEAR(hue_distance(all[0].hue_degrees, 0.0), 0.0, 1e-6);
  EXPECT_NEAR(all[1].hue_degrees, 120.0, 1e-6);
  EXPECT_NEAR(all[2].hue_degrees, 240.0, 1e-6);
  for (const auto& m : all) EXPECT_NEAR(m.saturation, 1.0, 1e-12);
}

TEST(PartMeasures, HueIsACircularMean) {
  // Half red (0 degrees), half a slightly magenta red (350 degrees): the mean is 355, not 175.
  cv::Mat image = solid(10, 10, {255, 0, 0});
  image(cv::Rect(0, 5, 10, 5)).setTo(cv::Scalar(255, 0, 42));
  const double magenta_hue = 360.0 - 60.0 * 42 / 255;
  const auto all = measure_parts(image, zero_labels(image), 1);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_NEAR(all[0].hue_degrees, 360.0 - (360.0 - magenta_hue) / 2, 1e-6);
  EXPECT_NEAR(all[0].hue_degrees, 355.0, 0.5);
}

// One single-colour part per hue step, all the way round, against OpenCV's float HSV.
TEST(PartMeasures, HueMatchesOpenCVAroundTheCircle) {
  const int steps = 72;
  cv::Mat image(1, steps, CV_8UC3), labels(1, steps, CV_32SC1);
  for (int i = 0; i < steps; ++i) {
    cv::Mat hsv(1, 1, CV_32FC3, cv::Scalar(i * 5.0 + 1.7, 0.3 + 0.7 * (i % 3) / 2.0, 0.9)), rgb;
    cv::cvtColor(hsv, rgb, cv::COLOR_HSV2RGB);
    rgb.convertTo(rgb, CV_8UC3, 255);
    image.at<cv::Vec3b>(0, i) = rgb.at<cv::Vec3b>(0, 0);
    labels.at<int32_t>(0, i) = i;
  }
  cv::Mat expected;
  image.convertTo(expected, CV_32FC3, 1.0 / 255);
  cv::cvtColor(expected, expected, cv::COLOR_RGB2HSV);
  const auto all = measure_parts(image, labels, steps);
  ASSERT_EQ(all.size(), size_t(steps));
  for (int i = 0; i < steps; ++i) {
    const cv::Vec3f hsv = expected.at<cv::Vec3f>(0, i);
    EXPECT_LT(hue_distance(all[i].hue_degrees, hsv[0]), 1e-3) << "part " << i;  // float precision
    // The textbook formula in double: the part's hue should agree to rounding.
    const cv::Vec3b p = image.at<cv::Vec3b>(0, i);
    const double r = p[0], g = p[1], b = p[2];
    const double high = std::max({r, g, b}), spread = high - std::min({r, g, b});
    const double hue = high == r   ? 60 * (g - b) / spread
                       : high == g ? 120 + 60 * (b - r) / spread
                                   : 240 + 60 * (r - g) / spread;
    EXPECT_LT(hue_distance(all[i].hue_degrees, hue), 1e-9) << "part " << i;
    EXPECT_NEAR(all[i].saturation, hsv[1], 1e-6) << "part " << i;
    EXPECT_GE(all[i].hue_degrees, 0.0);
    EXPECT_LT(all[i].hue_degrees, 360.0);
  }
}

TEST(PartMeasures, GreyHasZeroSaturation) {
  const auto all = measure_parts(solid(6, 6, {128, 128, 128}), cv::Mat::zeros(6, 6, CV_32SC1), 1);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].saturation, 0.0);
  EXPECT_EQ(all[0].hue_degrees, 0.0);
  EXPECT_NEAR(all[0].luminance, 128.0 / 3, 1e-9);
}

// Colour and position sums against OpenCV's float HSV and a plain loop, random labels.
TEST(PartMeasures, ColourAndCentreMatchReference) {
  cv::RNG rng(3);
  cv::Mat image(24, 31, CV_8UC3);
  rng.fill(image, cv::RNG::UNIFORM, 0, 256);
  cv::Mat labels(image.size(), CV_32SC1);
  rng.fill(labels, cv::RNG::UNIFORM, 0, 4);  // part 4 of 5 never occurs
  cv::Mat hsv;
  image.convertTo(hsv, CV_32FC3, 1.0 / 255);
  cv::cvtColor(hsv, hsv, cv::COLOR_RGB2HSV);  // H in [0, 360), S in [0, 1]

  struct Reference {
    double n = 0, luminance = 0, x = 0, y = 0, cos = 0, sin = 0, saturation = 0;
  };
  std::vector<Reference> reference(5);
  for (int y = 0; y < image.rows; ++y)
    for (int x = 0; x < image.cols; ++x) {
      Reference& r = reference[labels.at<int32_t>(y, x)];
      const cv::Vec3b p = image.at<cv::Vec3b>(y, x);
      const cv::Vec3f h = hsv.at<cv::Vec3f>(y, x);
      r.n += 1;
      r.luminance += (0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]) / 3;
      r.x += x;
      r.y += y;
      r.cos += std::cos(h[0] * kPi / 180);
      r.sin += std::sin(h[0] * kPi / 180);
      r.saturation += h[1];
    }
  const auto all = measure_parts(image, labels, 5);
  ASSERT_EQ(all.size(), 4u);
  for (const auto& m : all) {
    const Reference& r = reference[m.part];
    SCOPED_TRACE(m.part);
    EXPECT_EQ(m.area, r.n);
    EXPECT_NEAR(m.luminance, r.luminance / r.n, 1e-9);
    EXPECT_NEAR(m.centre_x, r.x / r.n, 1e-9);
    EXPECT_NEAR(m.centre_y, r.y / r.n, 1e-9);
    EXPECT_NEAR(m.saturation, r.saturation / r.n, 1e-5);
    double hue = std::atan2(r.sin, r.cos) * 180 / kPi;
    if (hue < 0) hue += 360;
    EXPECT_LT(hue_distance(m.hue_degrees, hue), 1e-3);
  }
}

TEST(PartMeasures, RegionOfInterestGivesTheSameAsACopy) {
  cv::RNG rng(5);
  cv::Mat big(40, 50, CV_8UC3), big_labels(40, 50, CV_32SC1);
  rng.fill(big, cv::RNG::UNIFORM, 0, 256);
  rng.fill(big_labels, cv::RNG::UNIFORM, 0, 3);
  const cv::Rect roi(7, 5, 21, 17);
  const auto from_view = measure_parts(big(roi), big_labels(roi), 3);
  const auto from_copy = measure_parts(big(roi).clone(), big_labels(roi).clone(), 3);
  ASSERT_EQ(from_view.size(), from_copy.size());
  for (size_t i = 0; i < from_view.size(); ++i) {
    EXPECT_EQ(from_view[i].area, from_copy[i].area);
    EXPECT_EQ(from_view[i].entropy, from_copy[i].entropy);
    EXPECT_EQ(from_view[i].luminance, from_copy[i].luminance);
    EXPECT_EQ(from_view[i].major_axis, from_copy[i].major_axis);
    EXPECT_EQ(from_view[i].hue_degrees, from_copy[i].hue_degrees);
  }
}

TEST(PartMotion, TexturedBlobShift) {
  const int dx = 2, dy = 1;
  cv::RNG rng(9);
  cv::Mat texture(64, 64, CV_8UC3);
  rng.fill(texture, cv::RNG::UNIFORM, 0, 256);
  cv::GaussianBlur(texture, texture, cv::Size(0, 0), 1.0);
  cv::Mat mask = cv::Mat::zeros(64, 64, CV_8UC1);
  cv::circle(mask, cv::Point(30, 30), 12, cv::Scalar(255), cv::FILLED);
  cv::Mat first = cv::Mat::zeros(64, 64, CV_8UC3);
  texture.copyTo(first, mask);
  cv::Mat last;
  const cv::Mat shift = (cv::Mat_<double>(2, 3) << 1, 0, dx, 0, 1, dy);
  cv::warpAffine(first, last, shift, first.size(), cv::INTER_NEAREST, cv::BORDER_CONSTANT, cv::Scalar::all(0));
  cv::Mat labels = zero_labels(first);
  paint_labels(labels, mask, 2);

  const auto motion = measure_part_motion(first, last, labels, 3);
  ASSERT_EQ(motion.size(), 2u);
  EXPECT_EQ(motion[0].part, 0);
  EXPECT_EQ(motion[1].part, 2);
  EXPECT_EQ(motion[1].area, cv::countNonZero(mask));
  EXPECT_EQ(motion[0].area + motion[1].area, 64 * 64);
  EXPECT_NEAR(motion[1].dx, dx, 0.5);
  EXPECT_NEAR(motion[1].dy, dy, 0.5);

  // No motion when nothing moves; the same answer twice.
  const auto still = measure_part_motion(first, first, labels, 3);
  EXPECT_NEAR(still[1].dx, 0.0, 1e-3);
  EXPECT_NEAR(still[1].dy, 0.0, 1e-3);
  const auto again = measure_part_motion(first, last, labels, 3);
  EXPECT_EQ(again[1].dx, motion[1].dx);
  EXPECT_EQ(again[1].dy, motion[1].dy);
}

TEST(PartMeasures, BadInputThrows) {
  const cv::Mat image = solid(8, 6, {1, 2, 3});
  const cv::Mat labels = zero_labels(image);
  auto expect_bad = [](const cv::Mat& rgb, const cv::Mat& labels, int parts, const char* fragment) {
    expect_error([&] { measure_parts(rgb, labels, parts); }, {"measure_parts: ", fragment});
  };
  expect_bad(cv::Mat(6, 8, CV_8UC1, cv::Scalar(0)), labels, 1, "CV_8UC3");
  expect_bad(cv::Mat(6, 8, CV_32FC3, cv::Scalar(0)), labels, 1, "CV_8UC3");
  expect_bad(cv::Mat(), labels, 1, "empty");
  expect_bad(image, cv::Mat::zeros(6, 8, CV_8UC1), 1, "CV_32SC1");
  expect_bad(image, cv::Mat::zeros(8, 6, CV_32SC1), 1, "labels is 6x8 but the image is 8x6");
  expect_bad(image, labels, 0, "num_parts");
  expect_bad(cv::Mat(1, 32768, CV_8UC3, cv::Scalar(0)), cv::Mat::zeros(1, 32768, CV_32SC1), 1, "more than 32767");
  cv::Mat negative = labels.clone();
  negative.at<int32_t>(4, 3) = -1;
  expect_bad(image, negative, 2, "-1 at (x 3, y 4)");
  cv::Mat too_large = labels.clone();
  too_large.at<int32_t>(5, 7) = 2;
  expect_bad(image, too_large, 2, "outside [0, 2)");
}

TEST(PartMotion, BadInputThrows) {
  const cv::Mat image = solid(8, 6, {1, 2, 3});
  const cv::Mat labels = zero_labels(image);
  expect_error(
      [&] {
        measure_part_motion(image, solid(8, 7, {0, 0, 0}), labels, 1);
      },
      {"measure_part_motion: ", "last is 8x7"});
  expect_error([&] { measure_part_motion(image, cv::Mat(6, 8, CV_8UC1, cv::Scalar(0)), labels, 1); },
               {"measure_part_motion: ", "CV_8UC3"});
  expect_error([&] { measure_part_motion(image, image, cv::Mat::zeros(5, 8, CV_32SC1), 1); },
               {"measure_part_motion: ", "first_labels"});
  cv::Mat bad = labels.clone();
  bad.at<int32_t>(0, 0) = 7;
  expect_error([&] { measure_part_motion(image, image, bad, 3); }, {"measure_part_motion: ", "holds 7"});
}

}  // namespace
