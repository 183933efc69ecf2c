// The q-quantile of values by linear interpolation between order statistics (NaN when empty).
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

namespace linkstyle {

inline double quantile(std::vector<double> values, double q) {
  if (values.empty()) return std::nan("");
  std::sort(values.begin(), values.end());
  const double position = q * static_cast<double>(values.size() - 1);
  const auto below = static_cast<size_t>(std::floor(position));
  const auto above = std::min(below + 1, values.size() - 1);
  return values[below] + (position - static_cast<double>(below)) * (values[above] - values[below]);
}

}  // namespace linkstyle
