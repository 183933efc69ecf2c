// linkstyle/runtime.hpp
//
// WHAT THIS REPRESENTS
//   Where computation runs: the torch device and the number of intra-op threads.
// REQUIRES
//   device is "cpu", "cuda" or "cuda:N"; threads in [0, 4 x hardware threads] (0 means the
//   environment variable LINKSTYLE_THREADS if set, else all hardware threads).
// ENSURES
//   configure_runtime() sets torch's intra-op thread count (libtorch defaults to 1 otherwise) and
//   OpenCV's to the same, and returns the device to use; asking for cuda on a build or machine
//   without it is an Error, and so is a thread count beyond the bound (more threads than that
//   only slow a run down, and thousands of them exhaust a process limit). require_memory() refuses a size before it is
//   allocated when the estimate exceeds the memory the machine has available. Batch sizes are
//   checked against a memory budget with the memory a batch takes measured on the models
//   (measure_batch_memory).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include <c10/core/Device.h>

namespace linkstyle {

struct RuntimeOptions {
  std::string device = "cpu";
  int threads = 0;
  // Memory one batch may take, in GiB (0: LINKSTYLE_MEMORY_BUDGET if set, else the default of
  // memory_budget_bytes()).
  double memory_budget_gib = 0.0;
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

// The memory one batch of a stage may take: the configured budget, else half the machine's memory
// or 80% of what is available now, whichever is less.
double memory_budget_bytes();

// The memory a batch of n images takes through a stage, measured: base + n x per_image bytes
// beyond what the process holds before it.
struct BatchMemory {
  double base_bytes = 0.0, per_image_bytes = 0.0;
  bool measured = false;  // false where the kernel gives no peak figure (then both are 0)
  double bytes(int64_t images) const { return base_bytes + double(images) * per_image_bytes; }
  // The largest batch of at most `at_most` images within `budget` (at least 1).
  int64_t largest_batch(double budget, int64_t at_most) const;
};

// Runs run_batch(1) after handing the process's free memory back to the OS and reads the
// resident-size peak it adds (/proc/self/status VmHWM, reset through /proc/self/clear_refs); all
// of it counts per image (an upper bound: one image at real scale takes seconds, so one probe).
BatchMemory measure_batch_memory(const std::function<void(int64_t images)>& run_batch);

// A rough estimate of the memory one forward pass of `images` float images of side x side takes
// through the models: 16 x the images themselves, for the activations.
double batch_memory_bytes(double images, int64_t side);

// "12.3 GiB", "512 MiB": a size for messages.
std::string memory_text(double bytes);

}  // namespace linkstyle
