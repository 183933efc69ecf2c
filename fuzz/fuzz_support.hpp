// Shared by the fuzz targets: a per-process scratch folder (in /dev/shm when there is one) to
// hold the input as a file, and the rule for what counts as a finding.
//
// The parsers take paths, so each input is written to a file and the public function is called.
// linkstyle::Error is the documented outcome for bad input and is ignored. Any other exception is
// reported with its type and message and aborts (a finding); so do sanitizer reports, crashes,
// timeouts and allocations over libFuzzer's -malloc_limit_mb.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <typeinfo>

#include <unistd.h>

#include <ATen/Parallel.h>
#include <torch/types.h>

#include "linkstyle/errors.hpp"

namespace linkstyle::fuzz {

namespace fs = std::filesystem;

// The process's scratch folder, removed at a normal exit. libFuzzer ends runs with _Exit, so
// fuzz/run.sh puts them all in one folder (LINKSTYLE_FUZZ_SCRATCH) that it removes.
inline const fs::path& scratch_folder() {
  static const fs::path folder = [] {
    std::error_code error;
    const char* scratch = std::getenv("LINKSTYLE_FUZZ_SCRATCH");
    const fs::path base = scratch != nullptr                    ? fs::path(scratch)
                          : fs::is_directory("/dev/shm", error) ? fs::path("/dev/shm")
                                                                : fs::temp_directory_path();
    fs::path path = base / ("linkstyle-fuzz-" + std::to_string(::getpid()));
    fs::create_directories(path);
    std::atexit([] {
      std::error_code ignored;
      fs::remove_all(scratch_folder(), ignored);
    });
    return path;
  }();
  return folder;
}

// Writes `bytes` to `scratch_folder()/name` (creating its folder) and returns the path.
inline fs::path write_input(const std::string& name, std::string_view bytes) {
  const fs::path path = scratch_folder() / name;
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) {
    std::fprintf(stderr, "fuzz: cannot write %s\n", path.c_str());
    std::abort();
  }
  return path;
}

[[noreturn]] inline void finding(const std::string& what) {
  std::fprintf(stderr, "\n==FINDING== %s\n", what.c_str());
  std::abort();
}

// Runs `parse`; true when it returned, false when it threw linkstyle::Error. Anything else thrown
// is a finding.
template <typename Parse>
bool accepts(Parse&& parse) {
  try {
    parse();
    return true;
  } catch (const Error&) {
    return false;
  } catch (const std::exception& e) {
    finding(std::string("unexpected exception ") + typeid(e).name() + " (not linkstyle::Error): " + e.what());
  } catch (...) {
    finding("unexpected exception of a non-std type");
  }
}

// One thread: the inputs are small, and libFuzzer runs one input at a time.
inline void initialise() { at::set_num_threads(1); }

// Whether two tensors hold the same dtype, shape and bytes.
inline bool same_tensor(const torch::Tensor& a, const torch::Tensor& b) {
  return a.scalar_type() == b.scalar_type() && a.sizes() == b.sizes() && a.nbytes() == b.nbytes() &&
         (a.nbytes() == 0 || std::memcmp(a.data_ptr(), b.data_ptr(), a.nbytes()) == 0);
}

}  // namespace linkstyle::fuzz
