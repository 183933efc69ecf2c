#include "linkstyle/progress.hpp"

#include <cstdio>
#include <unistd.h>

#include <fmt/format.h>

namespace linkstyle {

ProgressBar::ProgressBar(std::string label, int64_t total)
    : label_(std::move(label)),
      total_(total),
      enabled_(::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::set(int64_t done) {
  done_ = done;
  const auto now = std::chrono::steady_clock::now();
  if (enabled_ && now - last_draw_ > std::chrono::milliseconds(100)) {
    last_draw_ = now;
    draw();
  }
}

namespace {

// "12.3/s", "4.5/min", "0.8/h": a rate that reads as more than zero while anything is done.
std::string rate_text(double per_second) {
  if (per_second >= 1.0 || per_second <= 0.0) return fmt::format("{:.1f}/s", per_second);
  if (per_second * 60.0 >= 1.0) return fmt::format("{:.1f}/min", per_second * 60.0);
  return fmt::format("{:.2f}/h", per_second * 3600.0);
}

}  // namespace

void ProgressBar::draw() {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double fraction = total_ > 0 ? std::min(1.0, static_cast<double>(done_) / total_) : 0.0;
  const int width = 30, filled = static_cast<int>(fraction * width);
  const double rate = elapsed > 0 ? done_ / elapsed : 0.0;
  const double eta = (rate > 0 && total_ > done_) ? (total_ - done_) / rate : 0.0;
  std::fprintf(stderr, "\r%s [%s%s] %lld/%lld %s ETA %s   ", label_.c_str(), std::string(filled, '#').c_str(),
               std::string(width - filled, '.').c_str(), static_cast<long long>(done_), static_cast<long long>(total_),
               rate_text(rate).c_str(), fmt::format("{}:{:02}", static_cast<int>(eta) / 60, static_cast<int>(eta) % 60).c_str());
  std::fflush(stderr);
}

void ProgressBar::finish() {
  if (finished_) return;
  finished_ = true;
  if (enabled_) {
    draw();
    std::fputc('\n', stderr);
  }
}

}  // namespace linkstyle
