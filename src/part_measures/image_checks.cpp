// The input checks of the per-part image measurements (see part_measures.hpp).
#include "part_measures/image_checks.hpp"

#include <cstdint>
#include <string>

#include <opencv2/core.hpp>

#include "linkstyle/errors.hpp"

namespace linkstyle::part_measures {

void check_rgb(const char* subject, const cv::Mat& image, const char* name) {
  if (image.empty()) throw Error(subject, std::string(name) + " is empty");
  if (image.dims != 2) throw Error(subject, std::string(name) + " must be a 2-d image");
  if (image.type() != CV_8UC3)
    throw Error(subject, std::string(name) + " must be CV_8UC3 (8-bit RGB), got " + cv::typeToString(image.type()));
  if (image.cols > kMaxSide || image.rows > kMaxSide)
    throw Error(subject, std::string(name) + " is " + std::to_string(image.cols) + "x" + std::to_string(image.rows) +
                             ", more than " + std::to_string(kMaxSide) + " pixels on a side");
}

void check_labels(const char* subject, const cv::Mat& labels, const char* name, cv::Size size, int num_parts) {
  if (num_parts < 1) throw Error(subject, "num_parts must be at least 1, got " + std::to_string(num_parts));
  if (labels.type() != CV_32SC1)
    throw Error(subject, std::string(name) + " must be CV_32SC1, got " + cv::typeToString(labels.type()));
  if (labels.size() != size)
    throw Error(subject, std::string(name) + " is " + std::to_string(labels.cols) + "x" + std::to_string(labels.rows) +
                             " but the image is " + std::to_string(size.width) + "x" + std::to_string(size.height));
  for (int y = 0; y < labels.rows; ++y) {
    const int32_t* row = labels.ptr<int32_t>(y);
    for (int x = 0; x < labels.cols; ++x) {
      // One unsigned comparison covers both ends of [0, num_parts).
      if (static_cast<uint32_t>(row[x]) >= static_cast<uint32_t>(num_parts))
        throw Error(subject, std::string(name) + " holds " + std::to_string(row[x]) + " at (x " + std::to_string(x) +
                                 ", y " + std::to_string(y) + "), outside [0, " + std::to_string(num_parts) + ")");
    }
  }
}

}  // namespace linkstyle::part_measures
