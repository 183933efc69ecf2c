// Fuzzes the safetensors reader (src/tensor_io/safetensors.cpp): the input is the file's bytes, read with
// read_safetensors. linkstyle::Error is the expected outcome for bad input. Findings: a crash or
// sanitizer report, any other exception, a hang or a huge allocation, and a file that reads but
// does not survive write_safetensors and a second read unchanged.
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
  const auto path = fuzz::write_input("input.safetensors", {reinterpret_cast<const char*>(data), size});
  SafetensorsContent content;
  if (!fuzz::accepts([&] { content = read_safetensors(path); })) return 0;

  // What was read is valid: written again, it must read back the same.
  const auto copy = fuzz::scratch_folder() / "copy.safetensors";
  SafetensorsContent again;
  if (content.tensors.count("__metadata__") != 0) fuzz::finding("a tensor named __metadata__ was read");
  if (!fuzz::accepts([&] { write_safetensors(copy, content.tensors, content.metadata); }))
    fuzz::finding("write_safetensors rejects what read_safetensors returned");
  if (!fuzz::accepts([&] { again = read_safetensors(copy); }))
    fuzz::finding("read_safetensors rejects what write_safetensors wrote");
  if (again.metadata != content.metadata || again.tensors.size() != content.tensors.size())
    fuzz::finding("safetensors round trip changed the metadata or the tensor names");
  for (const auto& [name, tensor] : content.tensors) {
    const auto found = again.tensors.find(name);
    if (found == again.tensors.end() || !fuzz::same_tensor(tensor, found->second))
      fuzz::finding("safetensors round trip changed tensor " + name);
  }
  return 0;
}
