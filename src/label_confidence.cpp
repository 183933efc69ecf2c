#include "linkstyle/label_confidence.hpp"

#include <cmath>

#include <fmt/format.h>

namespace linkstyle {

namespace {

// Fitted by tools/calibrate_confidence.py on the shapes world's ground truth (docs/validation.md,
// "Label confidence"): logistic regression of "the label names what the unit encodes" on the
// evidence, over the 97 planted and probe-labelled units of the five studies listed there.
constexpr double kIntercept = -11.5017;
constexpr double kLogZ = -1.0216;
constexpr double kSampleAgreement = 7.4510;
constexpr double kMargin = -2.0203;
constexpr double kCycle = 8.4119;

}  // namespace

double label_confidence(const LabelEvidence& e) {
  if (!(e.z > 0) || !(e.sample_agreement >= 0 && e.sample_agreement <= 1) || !(e.margin >= 0 && e.margin <= 1))
    return NAN;
  const double cycle = std::isfinite(e.cycle) ? e.cycle : 0.0;
  const double x = kIntercept + kLogZ * std::log(e.z) + kSampleAgreement * e.sample_agreement + kMargin * e.margin +
                   kCycle * cycle;
  return 1.0 / (1.0 + std::exp(-x));
}

bool is_reliable_label(const std::string& label, double confidence) {
  return !label.empty() && label != "none" && confidence >= kReliableLabelConfidence;
}

std::string describe_label(const std::string& label, double confidence) {
  if (label.empty() || label == "none") return "none";
  const std::string figure =
      std::isfinite(confidence) ? fmt::format("confidence {:.0f}%", 100 * confidence) : "confidence n/a";
  if (!is_reliable_label(label, confidence)) return fmt::format("no reliable label ({}, {})", label, figure);
  return fmt::format("{} ({})", label, figure);
}

}  // namespace linkstyle
