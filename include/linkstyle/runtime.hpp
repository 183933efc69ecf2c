// linkstyle/runtime.hpp
//
// WHAT THIS REPRESENTS
//   Where computation runs: the torch device and the number of intra-op threads.
// REQUIRES
//   device is "cpu", "cuda" or "cuda:N"; threads >= 0 (0 means the environment variable
//   LINKSTYLE_THREADS if set, else all hardware threads).
// ENSURES
//   configure_runtime() sets torch's intra-op thread count (libtorch defaults to 1 otherwise) and
//   returns the device to use; asking for cuda on a build or machine without it is an Error.
#pragma once

#include <string>

#include <c10/core/Device.h>

namespace linkstyle {

struct RuntimeOptions {
  std::string device = "cpu";
  int threads = 0;
};

c10::Device configure_runtime(const RuntimeOptions& options);

// Number of hardware threads (at least 1).
int hardware_threads();

}  // namespace linkstyle
