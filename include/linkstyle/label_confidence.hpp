// linkstyle/label_confidence.hpp
//
// WHAT THIS REPRESENTS
//   How sure a unit's sweep label is: an estimate of the probability that the label names what
//   the unit encodes. It is computed from the sweep alone, so it applies to any models, and its
//   coefficients were fitted on the shapes world's ground truth (planted units and the probe;
//   docs/validation.md, "Label confidence", with the command that refits them). The evidence:
//   - z: the label concept's |z| against the null;
//   - sample_agreement: the share of the tuning samples whose own change of the label's concept
//     has the label's sign, (agreeing + 1) / (measured + 2) (a label carried by one sample of
//     six is weak, and 2 of 2 samples say less than 12 of 12);
//   - margin: 1 - |z of the unit's second strongest concept| / |z|, in [0, 1];
//   - cycle: the unit's cycle correlation (does the sweep move the unit itself; NaN counts as 0).
//   confidence = logistic(b0 + b1 log |z| + b2 sample_agreement + b3 margin + b4 cycle).
//   A label under kReliableLabelConfidence is shown as "no reliable label".
// REQUIRES
//   z > 0, sample_agreement and margin in [0, 1] (anything else gives NaN).
// ENSURES
//   A value in (0, 1), or NaN; deterministic.
#pragma once

#include <string>

namespace linkstyle {

struct LabelEvidence {
  double z = 0, sample_agreement = 0, margin = 0, cycle = 0;
};

double label_confidence(const LabelEvidence& evidence);

inline constexpr double kReliableLabelConfidence = 0.5;

// Whether a label ("" or "none": no label) with this confidence is shown as a label.
bool is_reliable_label(const std::string& label, double confidence);
// The label as a reader should take it: "cap hue + (confidence 82%)", "no reliable label (cap
// hue +, confidence 31%)", or "none".
std::string describe_label(const std::string& label, double confidence);

}  // namespace linkstyle
