// Fuzzes the .npy reader (src/tensor_io/npy.cpp): the input is the file's bytes, read with
// read_npy_header, read_npy and MappedNpy. linkstyle::Error is the expected outcome for bad input.
// Findings: a crash or sanitizer report, any other exception, a hang or a huge allocation, and
// the three readers disagreeing (one accepts what another rejects, or a different dtype, shape or
// data).
#include <cstring>

#include <torch/types.h>

#include "fuzz_support.hpp"
#include "linkstyle/tensor_io.hpp"

using namespace linkstyle;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::initialise();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = fuzz::write_input("input.npy", {reinterpret_cast<const char*>(data), size});
  NpyHeader header;
  torch::Tensor copied;
  const bool header_ok = fuzz::accepts([&] { header = read_npy_header(path); });
  const bool read_ok = fuzz::accepts([&] { copied = read_npy(path); });
  bool mapped_ok = fuzz::accepts([&] {
    MappedNpy mapped(path);
    if (read_ok && !fuzz::same_tensor(copied, mapped.tensor())) fuzz::finding("read_npy and MappedNpy differ");
  });
  // The header alone may be fine where the data is not (bool bytes), never the other way round.
  if (read_ok != mapped_ok || (read_ok && !header_ok)) fuzz::finding("the npy readers disagree on accepting the file");
  if (read_ok && (header.dtype != copied.scalar_type() || header.shape != copied.sizes().vec()))
    fuzz::finding("read_npy_header and read_npy disagree on dtype or shape");
  return 0;
}
