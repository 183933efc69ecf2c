// Uses the installed linkstyle package through its public headers only: loads a classifier
// (a TorchScript file that meets docs/model-contract.md) and prints what it found.
// Usage: linkstyle_consumer <classifier.pt>
#include <cstdio>
#include <exception>

#include "linkstyle/models.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <classifier.pt>\n", argv[0]);
    return 2;
  }
  try {
    const auto classifier = linkstyle::Classifier::load(argv[1], c10::Device(c10::kCPU));
    std::printf("consumer: %lld classes, %lld features, fingerprint %s\n",
                static_cast<long long>(classifier.num_classes()), static_cast<long long>(classifier.feature_dim()),
                linkstyle::file_fingerprint(argv[1]).c_str());
  } catch (const std::exception& error) {
    std::fprintf(stderr, "error: %s\n", error.what());
    return 1;
  }
  return 0;
}
