// train/classifier/networks.hpp (private)
//
// WHAT THIS REPRESENTS
//   What the classifier trainer's model card says of the built-in classifiers' networks (built by
//   build_resnet_classifier and build_plain_classifier, classifier_training.hpp): their
//   architecture in words and the plain network's stage widths.
// REQUIRES
//   width >= 1 (the options check keeps it in [1, 256]).
// ENSURES
//   plain_widths(width) is {W, 2W, 4W, 8W}; its last entry is the plain network's feature
//   dimension D. The texts name every size the networks use.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace linkstyle::classifier_training {

// The ResNet's architecture, for the model card.
extern const char* const kResnetArchitecture;

// The plain network's channels per stage: width, 2, 4 and 8 x width (D = 8 x width).
std::vector<int64_t> plain_widths(int64_t width);

// The plain network's architecture, for the model card.
std::string plain_architecture(int64_t width);

}  // namespace linkstyle::classifier_training
