#include "linkstyle/runtime.hpp"

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <torch/torch.h>

#include "linkstyle/errors.hpp"

namespace linkstyle {

int hardware_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

int max_threads() { return 4 * hardware_threads(); }

namespace {

// A thread count from `source` (the flag or the environment variable), checked against the bound.
int checked_threads(const std::string& source, long long threads) {
  if (threads < 0) throw Error(source, "must be >= 0 (0 = all cores)");
  if (threads > max_threads())
    throw Error(source, fmt::format("{} threads is more than {} (4 x the {} hardware threads); more only slow a "
                                    "run down",
                                    threads, max_threads(), hardware_threads()));
  return static_cast<int>(threads);
}

// LINKSTYLE_THREADS lets a caller that runs several processes at once (a test runner) avoid
// oversubscribing the cores, which slows OpenMP down many times over.
int threads_from_environment() {
  const char* text = std::getenv("LINKSTYLE_THREADS");
  if (text == nullptr || *text == '\0') return 0;
  char* end = nullptr;
  errno = 0;
  const long long threads = std::strtoll(text, &end, 10);
  if (errno != 0 || *end != '\0') throw Error("LINKSTYLE_THREADS", fmt::format("'{}' is not a whole number", text));
  return checked_threads("LINKSTYLE_THREADS", threads);
}

}  // namespace

c10::Device configure_runtime(const RuntimeOptions& options) {
  int threads = checked_threads("--threads", options.threads);
  if (threads == 0) threads = threads_from_environment();
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

double available_memory_bytes() {
  std::ifstream meminfo("/proc/meminfo");
  for (std::string line; std::getline(meminfo, line);) {
    if (line.rfind("MemAvailable:", 0) != 0) continue;
    std::istringstream fields(line.substr(13));
    double kibibytes = 0;
    if (fields >> kibibytes) return kibibytes * 1024.0;
  }
  return 0.0;
}

double batch_memory_bytes(double images, int64_t side) {
  return 16.0 * images * 3.0 * 4.0 * double(side) * double(side);
}

std::string memory_text(double bytes) {
  constexpr double kMiB = 1024.0 * 1024.0, kGiB = 1024.0 * kMiB;
  if (bytes >= 1024.0 * kGiB) return fmt::format("{:.3g} TiB", bytes / (1024.0 * kGiB));
  if (bytes >= kGiB) return fmt::format("{:.3g} GiB", bytes / kGiB);
  return fmt::format("{:.3g} MiB", bytes / kMiB);
}

void require_memory(const std::string& setting, double bytes, const std::string& what,
                    const std::filesystem::path& file) {
  const double available = available_memory_bytes();
  if (available <= 0.0 || bytes <= available) return;
  throw SettingError(setting,
                     fmt::format("needs about {} for {}, more than the {} available", memory_text(bytes), what,
                                 memory_text(available)),
                     file);
}

}  // namespace linkstyle
