// The local entropy of a grey image (the entropy measure of part_measures.hpp).
#include "part_measures/local_entropy.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <vector>

#include <opencv2/core.hpp>

namespace linkstyle::part_measures {

namespace {

constexpr int kEntropyRadius = 5;
constexpr int kDiskRows = 2 * kEntropyRadius + 1;
constexpr int kMaxDiskPixels = 81;  // pixels (dx, dy) with dx^2 + dy^2 <= 25

// Local entropy tables. With counts c_i over n pixels, H = log2 n - (sum c_i log2 c_i) / n, so a
// histogram update changes the sum by one table difference instead of a 256-bin rescan. The sum is
// kept in fixed point (integers add exactly: no drift along a row, the same result whatever the
// order, and no floating-point latency chain in the inner loop).
constexpr int kFixedPointBits = 40;  // 81 log2 81 * 2^40 < 2^53: the sum converts to double exactly

struct EntropyTables {
  std::array<double, kMaxDiskPixels + 1> log2_of{};         // log2(n), n >= 1
  std::array<int64_t, kMaxDiskPixels + 1> c_log_c_fixed{};  // round(c log2 c * 2^40)
  std::array<int, kDiskRows> half_width{};                  // disk row dy: |dx| <= half_width

  EntropyTables() {
    for (int c = 1; c <= kMaxDiskPixels; ++c) {
      log2_of[c] = std::log2(static_cast<double>(c));
      c_log_c_fixed[c] = std::llround(std::ldexp(c * log2_of[c], kFixedPointBits));
    }
    for (int dy = -kEntropyRadius; dy <= kEntropyRadius; ++dy) {
      int w = 0;
      while ((w + 1) * (w + 1) + dy * dy <= kEntropyRadius * kEntropyRadius) ++w;
      half_width[dy + kEntropyRadius] = w;
    }
  }
};

const EntropyTables& entropy_tables() {
  static const EntropyTables tables;
  return tables;
}

}  // namespace

// Entropy (bits) of the grey levels in the disk of radius 5 around every pixel, row-major into
// `entropy`. The histogram slides along each row: per step every disk row loses its left end and
// gains a new right end (nothing changes when both ends hold the same level).
void local_entropy(const cv::Mat& grey, std::vector<double>& entropy) {
  const EntropyTables& tables = entropy_tables();
  const int width = grey.cols, height = grey.rows;
  entropy.resize(static_cast<size_t>(width) * height);
  int32_t counts[256];
  const double to_bits = std::ldexp(1.0, -kFixedPointBits);
  for (int y = 0; y < height; ++y) {
    const uint8_t* rows[kDiskRows];
    for (int r = 0; r < kDiskRows; ++r) {
      const int yy = y + r - kEntropyRadius;
      rows[r] = (yy >= 0 && yy < height) ? grey.ptr<uint8_t>(yy) : nullptr;
    }
    std::fill(std::begin(counts), std::end(counts), 0);
    int64_t sum = 0;  // sum of c log2 c over the levels, fixed point
    int pixels = 0;
    auto add = [&](uint8_t level) {
      const int32_t c = counts[level]++;
      sum += tables.c_log_c_fixed[c + 1] - tables.c_log_c_fixed[c];
      ++pixels;
    };
    auto remove = [&](uint8_t level) {
      const int32_t c = counts[level]--;
      sum -= tables.c_log_c_fixed[c] - tables.c_log_c_fixed[c - 1];
      --pixels;
    };
    for (int r = 0; r < kDiskRows; ++r) {
      if (!rows[r]) continue;
      const int last = std::min(width - 1, tables.half_width[r]);
      for (int x = 0; x <= last; ++x) add(rows[r][x]);
    }

    double* out = entropy.data() + static_cast<size_t>(y) * width;
    for (int x = 0; x < width; ++x) {
      // A constant disk gives -1e-15 at most; report it as 0.
      out[x] = std::max(0.0, tables.log2_of[pixels] - static_cast<double>(sum) * to_bits / pixels);
      for (int r = 0; r < kDiskRows; ++r) {
        if (!rows[r]) continue;
        const int w = tables.half_width[r];
        const bool leaves = x - w >= 0, enters = x + 1 + w < width;
        if (leaves && enters) {
          const uint8_t out_level = rows[r][x - w], in_level = rows[r][x + 1 + w];
          if (out_level == in_level) continue;
          remove(out_level);
          add(in_level);
        } else if (leaves) {
          remove(rows[r][x - w]);
        } else if (enters) {
          add(rows[r][x + 1 + w]);
        }
      }
    }
  }
}

}  // namespace linkstyle::part_measures
