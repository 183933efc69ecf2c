// linkstyle/runtime.hpp
//
// WHAT THIS REPRESENTS
//   Where computation runs: the torch device and the number of intra-op threads.
// REQUIRES
//   device is "cpu", "cuda" or "cuda:N"; threads in [0, 4 x hardware threads] (0 means the
//   environment variable LINKSTYLE_THREADS if set, else all hardware threads).
// ENSURES
//   configure_runtime() sets torch's intra-op thread count (libtorch defaults to 1 otherwise) and
//   returns the device to use; asking for cuda on a build or machine without it is an Error, and
//   so is a thread count beyond the bound (more threads than that only slow a run down, and
//   thousands of them exhaust a process limit). require_memory() refuses a size before it is
//   allocated when the estimate exceeds the memory the machine has available.
#pragma once

#include <cstdint>
#include <filesystem>
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

// The most intra-op threads a run may ask for: 4 x hardware threads.
int max_threads();

// Bytes of memory available to a new allocation: MemAvailable of /proc/meminfo (0 when unknown).
double available_memory_bytes();

// Throws SettingError(setting, "needs about X GiB for <what>, more than the Y GiB available",
// file) when `bytes` (an estimate; a double, so that huge sizes cannot overflow) exceeds the
// available memory. Does nothing when the available memory is unknown.
void require_memory(const std::string& setting, double bytes, const std::string& what,
                    const std::filesystem::path& file = {});

// A rough estimate of the memory one forward pass of `images` float images of side x side takes
// through the models: 16 x the images themselves, for the activations.
double batch_memory_bytes(double images, int64_t side);

// "12.3 GiB", "512 MiB": a size for messages.
std::string memory_text(double bytes);

}  // namespace linkstyle
