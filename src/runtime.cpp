#include "linkstyle/runtime.hpp"

#include <malloc.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <opencv2/core/utility.hpp>
#include <torch/torch.h>

#include "linkstyle/errors.hpp"

// jemalloc's control interface, present when a program links it (4096: all arenas).
extern "C" int mallctl(const char* name, void* old_value, size_t* old_size, void* new_value, size_t new_size)
    __attribute__((weak));

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

namespace {

double configured_budget_gib = 0.0;

// A "Key:   N kB" figure of a /proc file, in bytes; negative when absent.
double proc_kibibytes(const char* file, const char* key) {
  std::ifstream lines(file);
  const std::string prefix = std::string(key) + ":";
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(prefix, 0) != 0) continue;
    std::istringstream fields(line.substr(prefix.size()));
    double kibibytes = 0;
    if (fields >> kibibytes) return kibibytes * 1024.0;
  }
  return -1.0;
}

double meminfo_bytes(const char* key) { return std::max(0.0, proc_kibibytes("/proc/meminfo", key)); }

// VmRSS, VmHWM of /proc/self/status.
double status_bytes(const char* key) { return proc_kibibytes("/proc/self/status", key); }

// Hands the pages that the process's allocator keeps free back to the OS: jemalloc's (the
// programs' allocator, src/allocator) when it is linked, else glibc's.
void return_free_pages() {
  if (mallctl != nullptr && mallctl("arena.4096.purge", nullptr, nullptr, nullptr, 0) == 0) return;
  malloc_trim(0);
}

double budget_from_environment() {
  const char* text = std::getenv("LINKSTYLE_MEMORY_BUDGET");
  if (text == nullptr || *text == '\0') return 0.0;
  char* end = nullptr;
  const double gib = std::strtod(text, &end);
  if (*end != '\0' || !std::isfinite(gib) || gib < 0.0)
    throw Error("LINKSTYLE_MEMORY_BUDGET", fmt::format("'{}' is not a size in GiB >= 0", text));
  return gib;
}

}  // namespace

double memory_budget_bytes() {
  constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
  const double gib = configured_budget_gib > 0.0 ? configured_budget_gib : budget_from_environment();
  if (gib > 0.0) return gib * kGiB;
  const double total = meminfo_bytes("MemTotal"), available = meminfo_bytes("MemAvailable");
  if (total <= 0.0) return 4.0 * kGiB;  // no /proc/meminfo: a size most machines have
  return std::min(total / 2.0, available > 0.0 ? 0.8 * available : total / 2.0);
}

int64_t BatchMemory::largest_batch(double budget, int64_t at_most) const {
  if (!measured || per_image_bytes <= 0.0) return at_most;
  const double fits = std::floor((budget - base_bytes) / per_image_bytes);
  return std::max<int64_t>(1, std::min<double>(double(at_most), fits));
}

BatchMemory measure_batch_memory(const std::function<void(int64_t images)>& run_batch) {
  return_free_pages();  // so that the image's own pages show in the peak
  const double before = status_bytes("VmRSS");
  std::ofstream reset("/proc/self/clear_refs");
  reset << "5";  // VmHWM := VmRSS
  reset.close();
  const bool reset_done = !reset.fail();
  run_batch(1);
  const double peak = status_bytes("VmHWM");
  BatchMemory memory;
  if (!reset_done || before < 0.0 || peak < 0.0) return memory;
  // All of one image's peak is counted per image: an upper bound, as part of it (workspace) does
  // not grow with the batch.
  memory.measured = true;
  memory.per_image_bytes = std::max(peak - before, 1.0);
  return memory;
}

c10::Device configure_runtime(const RuntimeOptions& options) {
  if (!(options.memory_budget_gib >= 0.0) || !std::isfinite(options.memory_budget_gib))
    throw Error("--memory-budget", "must be a size in GiB >= 0 (0: the default)");
  configured_budget_gib = options.memory_budget_gib;
  int threads = checked_threads("--threads", options.threads);
  if (threads == 0) threads = threads_from_environment();
  at::set_num_threads(threads == 0 ? hardware_threads() : threads);
  // OpenCV's parallel loops (part measures, optical flow, resizing) take the same number.
  cv::setNumThreads(threads == 0 ? hardware_threads() : threads);
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

double available_memory_bytes() { return meminfo_bytes("MemAvailable"); }

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
