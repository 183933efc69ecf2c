// A cv::Mat view of one square image's pixels in a tensor (no copy): the sweep's images and part
// labels are measured with OpenCV where libtorch made them.
#pragma once

#include <cstdint>

#include <opencv2/core.hpp>

namespace linkstyle {

inline cv::Mat image_view(int64_t side, int type, void* data) { return cv::Mat(int(side), int(side), type, data); }

}  // namespace linkstyle
