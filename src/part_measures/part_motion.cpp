// The motion of each part between two images, from dense optical flow (see part_measures.hpp).
#include "linkstyle/part_measures.hpp"

#include <cstdint>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/video/tracking.hpp>

#include "linkstyle/errors.hpp"
#include "part_measures/image_checks.hpp"

namespace linkstyle {

using part_measures::check_labels;
using part_measures::check_rgb;

namespace {

// Farneback parameters for small images (see the header). On textured blobs shifted by 2-3 px in
// 32-128 px images a 9 px box window beat 5-7 px and the Gaussian window; 3 iterations were
// needed at 32 px (1: 0.4 px error, 2: 0.03 px), more did not help. OpenCV builds no pyramid
// level under 32 px, so a 32 px image is matched at full resolution only, a 64 px one with one
// coarser level, whatever `levels` says.
constexpr double kFlowPyramidScale = 0.5;
constexpr int kFlowLevels = 3;
constexpr int kFlowWindow = 9;
constexpr int kFlowIterations = 3;
constexpr int kFlowPolyN = 5;
constexpr double kFlowPolySigma = 1.1;
constexpr int kFlowFlags = 0;  // box window

}  // namespace

std::vector<PartMotion> measure_part_motion(const cv::Mat& first, const cv::Mat& last, const cv::Mat& first_labels,
                                            int num_parts) {
  constexpr const char* kSubject = "measure_part_motion";
  check_rgb(kSubject, first, "first");
  check_rgb(kSubject, last, "last");
  if (last.size() != first.size())
    throw Error(kSubject, "last is " + std::to_string(last.cols) + "x" + std::to_string(last.rows) + " but first is " +
                              std::to_string(first.cols) + "x" + std::to_string(first.rows));
  check_labels(kSubject, first_labels, "first_labels", first.size(), num_parts);

  thread_local cv::Mat first_grey, last_grey, flow;
  cv::cvtColor(first, first_grey, cv::COLOR_RGB2GRAY);
  cv::cvtColor(last, last_grey, cv::COLOR_RGB2GRAY);
  flow.create(first.size(), CV_32FC2);
  cv::calcOpticalFlowFarneback(first_grey, last_grey, flow, kFlowPyramidScale, kFlowLevels, kFlowWindow,
                               kFlowIterations, kFlowPolyN, kFlowPolySigma, kFlowFlags);

  struct MotionSums {
    int64_t pixels = 0;
    double dx = 0, dy = 0;
  };
  thread_local std::vector<MotionSums> sums;
  sums.assign(num_parts, MotionSums{});
  for (int y = 0; y < flow.rows; ++y) {
    const cv::Point2f* displacement = flow.ptr<cv::Point2f>(y);
    const int32_t* label_row = first_labels.ptr<int32_t>(y);
    for (int x = 0; x < flow.cols; ++x) {
      MotionSums& s = sums[label_row[x]];
      ++s.pixels;
      s.dx += displacement[x].x;
      s.dy += displacement[x].y;
    }
  }

  std::vector<PartMotion> results;
  for (int part = 0; part < num_parts; ++part) {
    const MotionSums& s = sums[part];
    if (s.pixels == 0) continue;
    const double n = static_cast<double>(s.pixels);
    results.push_back(PartMotion{part, s.dx / n, s.dy / n, n});
  }
  return results;
}

}  // namespace linkstyle
