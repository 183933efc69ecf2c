// linkstyle/progress.hpp
//
// WHAT THIS REPRESENTS
//   A one-line progress bar with rate and ETA on standard error.
// ENSURES
//   Draws only when standard error is a terminal (never into logs or pipes), at most ~10 times a
//   second; finish() ends the line. Rates below one a second print per minute (or hour), never
//   as "0/s". Never throws.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace linkstyle {

class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total);
  ~ProgressBar();
  void set(int64_t done);
  void set_total(int64_t total) { total_ = total; }
  void set_label(std::string label) { label_ = std::move(label); }
  void finish();

 private:
  void draw();
  std::string label_;
  int64_t total_ = 0, done_ = 0;
  bool enabled_ = false, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace linkstyle
