// Tests for the runtime (runtime.hpp): the measured memory of a batch and the batch that fits a
// budget; and the programs' allocator (src/allocator), which keeps freed pages for the next batch.
#include <sys/resource.h>

#include <cstdint>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "linkstyle/runtime.hpp"

// jemalloc's control interface (the test links the programs' allocator).
extern "C" int mallctl(const char* name, void* old_value, size_t* old_size, void* new_value, size_t new_size)
    __attribute__((weak));

namespace linkstyle {
namespace {

constexpr double kMiB = 1024.0 * 1024.0;

int64_t minor_page_faults() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_minflt;
}

// One batch of a pipeline: a few large tensors made, used and freed (~280 MB).
double batch() {
  const auto images = torch::rand({8, 3, 256, 256});
  const auto maps = torch::conv2d(images, torch::rand({64, 3, 3, 3}), {}, 1, 1);
  return (torch::relu(maps) * 2.0).sum().item<double>();
}

#ifndef LINKSTYLE_SYSTEM_ALLOCATOR  // the sanitizers' builds use their own allocator
// The programs' allocator (src/allocator) keeps the pages a batch frees for the next batch.
TEST(Allocator, FreedPagesServeTheNextBatch) {
  ssize_t decay = 0;
  size_t size = sizeof decay;
  ASSERT_NE(mallctl, nullptr) << "jemalloc is not linked";
  ASSERT_EQ(mallctl("opt.dirty_decay_ms", &decay, &size, nullptr, 0), 0);
  EXPECT_EQ(decay, -1);

  batch();  // the first batch faults its pages in
  const int64_t before = minor_page_faults();
  for (int i = 0; i < 5; ++i) batch();
  const double faults_per_batch = double(minor_page_faults() - before) / 5.0;
  const double pages_per_batch = (8.0 * 3 * 256 * 256 + 2.0 * 8 * 64 * 256 * 256) * 4.0 / 4096.0;
  // glibc's malloc faults about every page of every batch again here (bench/RESULTS.md).
  EXPECT_LT(faults_per_batch, 0.02 * pages_per_batch);
}
#endif

TEST(Runtime, MeasuredBatchMemoryFollowsWhatTheBatchAllocates) {
  const double per_image = 24 * kMiB, base = 16 * kMiB;
  const auto memory = measure_batch_memory([&](int64_t images) {
    auto fixed = torch::ones({int64_t(base / 4)}, torch::kFloat);
    auto batch = torch::ones({images, int64_t(per_image / 4)}, torch::kFloat);
    ASSERT_GT((fixed.sum() + batch.sum()).item<double>(), 0.0);
  });
  ASSERT_TRUE(memory.measured) << "no VmHWM reset on this kernel";
  // One image's whole peak counts per image: an upper bound of what a batch takes.
  EXPECT_NEAR(memory.per_image_bytes, base + per_image, 0.25 * (base + per_image));
  EXPECT_GE(memory.bytes(8), 0.9 * (base + 8 * per_image));
  EXPECT_LE(memory.bytes(8), 1.5 * 8 * (base + per_image));
  // The largest batch within a budget, at least one, at most what was asked for.
  const BatchMemory known{10 * kMiB, 100 * kMiB, true};
  EXPECT_EQ(known.largest_batch(1010 * kMiB, 128), 10);
  EXPECT_EQ(known.largest_batch(50 * kMiB, 128), 1);
  EXPECT_EQ(known.largest_batch(1e15, 128), 128);
  EXPECT_EQ(BatchMemory{}.largest_batch(1.0, 64), 64);  // unmeasured: as asked
}

TEST(Runtime, MemoryBudgetIsPositiveAndFollowsTheEnvironment) {
  EXPECT_GT(memory_budget_bytes(), 0.0);
  setenv("LINKSTYLE_MEMORY_BUDGET", "1.5", 1);
  EXPECT_DOUBLE_EQ(memory_budget_bytes(), 1.5 * 1024 * kMiB);
  setenv("LINKSTYLE_MEMORY_BUDGET", "lots", 1);
  EXPECT_THROW(memory_budget_bytes(), std::exception);
  unsetenv("LINKSTYLE_MEMORY_BUDGET");
}

}  // namespace
}  // namespace linkstyle
