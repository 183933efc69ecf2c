// part_measures/local_entropy.hpp
//
// WHAT THIS REPRESENTS
//   The local entropy behind PartMeasures::entropy (linkstyle/part_measures.hpp): per pixel, the
//   entropy (bits) of the grey levels inside the disk of radius 5 around it (81 pixels, clipped
//   to the image).
// REQUIRES
//   grey: CV_8UC1, 2-d, not empty.
// ENSURES
//   `entropy` holds width x height values, row-major, each >= 0; exact whatever the order of the
//   pixels (fixed-point sums). Internal to the library.
#pragma once

#include <vector>

#include <opencv2/core/mat.hpp>

namespace linkstyle::part_measures {

// Entropy (bits) of the grey levels in the disk of radius 5 around every pixel, row-major into
// `entropy`.
void local_entropy(const cv::Mat& grey, std::vector<double>& entropy);

}  // namespace linkstyle::part_measures
