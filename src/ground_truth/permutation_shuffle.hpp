// ground_truth/permutation_shuffle.hpp
//
// WHAT THIS REPRESENTS
//   The shuffle behind the ground-truth check's permutation tests (label agreement, the factor
//   signal and chain, profile identification).
// REQUIRES
//   A generator seeded by the caller (each test derives its own seed).
// ENSURES
//   Fisher-Yates: the same permutation for the same generator state on every machine (no
//   std::shuffle, whose draws differ between standard libraries). Internal to the library.
#pragma once

#include <random>
#include <utility>
#include <vector>

namespace linkstyle::ground_truth {

// Fisher-Yates shuffle with the permutation tests' generator.
template <typename T>
void shuffle(std::vector<T>& values, std::mt19937_64& random) {
  for (size_t i = values.size(); i > 1; --i) std::swap(values[i - 1], values[random() % i]);
}

}  // namespace linkstyle::ground_truth
