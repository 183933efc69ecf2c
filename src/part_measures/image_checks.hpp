// part_measures/image_checks.hpp
//
// WHAT THIS REPRESENTS
//   The input checks shared by measure_parts and measure_part_motion (linkstyle/part_measures.hpp).
// REQUIRES
//   `subject` names the public function, `name` the argument ("rgb", "first_labels", ...).
// ENSURES
//   Each returns when the argument meets the header's REQUIRES and otherwise throws
//   linkstyle::Error(subject, "<name> <problem>"), one line. Internal to the library.
#pragma once

#include <opencv2/core/mat.hpp>

namespace linkstyle::part_measures {

constexpr int kMaxSide = 32767;  // keeps the integer moment sums exact (see ComponentMoments, measure_parts.cpp)

// Not empty, 2-d, CV_8UC3, at most kMaxSide pixels on a side.
void check_rgb(const char* subject, const cv::Mat& image, const char* name);

// Checks type, size and range; the first value out of range is named with its position.
void check_labels(const char* subject, const cv::Mat& labels, const char* name, cv::Size size, int num_parts);

}  // namespace linkstyle::part_measures
