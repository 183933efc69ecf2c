// linkstyle/part_measures.hpp
//
// WHAT THIS REPRESENTS
//   Plain image measurements of each part of a segmented image (area, brightness, texture,
//   position, shape, colour) and of how each part moves between two images (dense optical flow).
//   OpenCV only: no torch here, so callers that just measure stay cheap to compile.
// REQUIRES
//   rgb / first / last: CV_8UC3 in RGB order, not empty, at most 32767 pixels on a side.
//   labels / first_labels: CV_32SC1 of the same size, every value in [0, num_parts),
//   num_parts >= 1.
// ENSURES
//   One entry per label value present in the image (area >= 1), in increasing label order; a
//   label value that does not occur is left out. Results are deterministic. Bad input throws
//   linkstyle::Error("measure_parts" or "measure_part_motion", "<problem>"), one line.
#pragma once

#include <vector>

#include <opencv2/core/mat.hpp>

namespace linkstyle {

struct PartMeasures {
  int part = 0;          // label value
  double area = 0;       // pixels of the part mask M
  double luminance = 0;  // mean over M of (0.299 R + 0.587 G + 0.114 B) / 3, R,G,B in 0..255 (max 85)
  // Mean over M of the local entropy (bits) of the 8-bit grey image (cv::COLOR_RGB2GRAY): the
  // histogram of the grey levels inside a disk of radius 5 (81 pixels, clipped to the image).
  double entropy = 0;
  // Centroid of all pixels of M (x right, y down, pixel centres at integer coordinates).
  double centre_x = 0, centre_y = 0;
  // Ellipse of the LARGEST 8-connected component of M from its second central moments
  // (regionprops-style, population covariance): axis length = 4 sqrt(eigenvalue), angle of the
  // major axis in [0, 180) from the x axis towards +y, eccentricity = sqrt(1 - (minor/major)^2).
  // A single pixel gives axes 0 and eccentricity 0. Ties of size go to the component whose
  // first pixel comes first in row-major order.
  double major_axis = 0, minor_axis = 0, angle_degrees = 0, eccentricity = 0;
  // Circular mean of the HSV hue over M in [0, 360) (achromatic pixels count as hue 0, as in
  // OpenCV's float HSV); 0 when the mean resultant length is ~0.
  double hue_degrees = 0;
  double saturation = 0;  // mean HSV saturation over M in [0, 1]
  // Fine texture: mean over the interior of M (pixels whose four neighbours are in M) of the
  // absolute discrete Laplacian of the grey image, |4 g - (sum of the four neighbours)| / 4, in
  // grey levels / 255; 0 when M has no interior. Stripes a few pixels apart show here, while a
  // smooth shading or the part's own edge does not.
  double texture = 0;
};

std::vector<PartMeasures> measure_parts(const cv::Mat& rgb, const cv::Mat& labels, int num_parts);

struct PartMotion {
  int part = 0;
  double dx = 0, dy = 0;  // mean displacement over the part's pixels in first_labels (pixels)
  double area = 0;        // pixels of the part in first_labels
};

// Farneback dense flow on the grey images, from `first` to `last`, averaged per part of
// `first_labels`. Parameters (chosen for 32..256 px images): pyramid scale 0.5 with up to 3
// levels (OpenCV builds none under 32 px, so 32 px images are matched at full resolution only),
// 9 px box window, 3 iterations, polynomial neighbourhood 5 with sigma 1.1. Like any local flow
// it sees motion only where there is texture or an edge: inside a large flat part the mean is
// biased towards 0.
std::vector<PartMotion> measure_part_motion(const cv::Mat& first, const cv::Mat& last, const cv::Mat& first_labels,
                                            int num_parts);

}  // namespace linkstyle
