// splitmix64: the one integer mixer behind every seed the library derives (latents, held-out
// split, rendered images, training batches). Internal to the library.
#pragma once

#include <cstdint>

namespace linkstyle {

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

}  // namespace linkstyle
