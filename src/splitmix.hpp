// splitmix64: the one integer mixer behind every seed the library derives (latents, held-out
// split, rendered images, training batches). Internal to the library.
#pragma once

#include <cstddef>
#include <cstdint>

namespace linkstyle {

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// FNV-1a (64 bit) of `size` bytes, continuing from `hash`: the fingerprint of files and tensors.
inline uint64_t fnv1a64(const void* data, size_t size, uint64_t hash = 0xcbf29ce484222325ULL) {
  const auto* bytes = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < size; ++i) hash = (hash ^ bytes[i]) * 0x100000001b3ULL;
  return hash;
}

}  // namespace linkstyle
