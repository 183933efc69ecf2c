#include "linkstyle/runtime.hpp"

#include <cstdlib>
#include <thread>

#include <torch/torch.h>

#include "linkstyle/errors.hpp"

namespace linkstyle {

int hardware_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

c10::Device configure_runtime(const RuntimeOptions& options) {
  if (options.threads < 0) throw Error("--threads", "must be >= 0 (0 = all cores)");
  int threads = options.threads;
  if (threads == 0) {
    // LINKSTYLE_THREADS lets a caller that runs several processes at once (a test runner) avoid
    // oversubscribing the cores, which slows OpenMP down many times over.
    if (const char* env = std::getenv("LINKSTYLE_THREADS")) threads = std::max(0, std::atoi(env));
  }
  at::set_num_threads(threads == 0 ? hardware_threads() : threads);
  c10::Device device(c10::kCPU);
  try {
    device = c10::Device(options.device);
  } catch (const std::exception&) {
    throw Error("--device", "unknown device '" + options.device + "' (use cpu or cuda)");
  }
  if (device.is_cuda() && !torch::cuda::is_available())
    throw Error("--device", "cuda requested but this build or machine has no CUDA device");
  if (!device.is_cpu() && !device.is_cuda())
    throw Error("--device", "unsupported device '" + options.device + "' (use cpu or cuda)");
  return device;
}

}  // namespace linkstyle
