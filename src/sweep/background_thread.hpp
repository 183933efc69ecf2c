// Work that runs beside the generator's (the sweep's overlap) runs on a new thread with the
// process's intra-op thread count.
#pragma once

#include <future>
#include <utility>

#include <ATen/Parallel.h>

namespace linkstyle {

template <typename Work>
auto on_another_thread(Work work) {
  return std::async(std::launch::async, [work = std::move(work)]() mutable {
    at::init_num_threads();
    return work();
  });
}

}  // namespace linkstyle
