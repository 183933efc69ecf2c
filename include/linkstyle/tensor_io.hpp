// linkstyle/tensor_io.hpp
//
// WHAT THIS REPRESENTS
//   Reading and writing tensors in the two formats a Python user loads directly:
//   numpy .npy (numpy.load) and safetensors (safetensors.numpy.load_file / torch).
// REQUIRES
//   Tensors are CPU-storable; dtypes float32, float64, int64, int32, uint8, bool.
//   npy files are little-endian, C order, format version 1.0/2.0/3.0.
// ENSURES
//   Writes are atomic (AtomicFile). Reads validate the header, dtype, shape and file size against
//   each other and throw linkstyle::Error("<path>", "<problem>") on any mismatch or truncation.
//   MappedNpy maps the file read-only and exposes it as a tensor without copying.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

namespace linkstyle {

struct NpyHeader {
  c10::ScalarType dtype = c10::kFloat;
  std::vector<int64_t> shape;
  size_t data_offset = 0;  // bytes from the start of the file to the first element
};

NpyHeader read_npy_header(const std::filesystem::path& path);
torch::Tensor read_npy(const std::filesystem::path& path);
void write_npy(const std::filesystem::path& path, const torch::Tensor& tensor);
// The bytes of an .npy file holding `tensor` (used by write_npy and by tests).
std::string encode_npy(const torch::Tensor& tensor);

// A read-only memory map of an .npy file, viewed as a tensor (valid while the object lives).
class MappedNpy {
 public:
  explicit MappedNpy(const std::filesystem::path& path);
  ~MappedNpy();
  MappedNpy(const MappedNpy&) = delete;
  MappedNpy& operator=(const MappedNpy&) = delete;
  const torch::Tensor& tensor() const { return tensor_; }

 private:
  void* mapping_ = nullptr;
  size_t mapping_size_ = 0;
  torch::Tensor tensor_;
};

using TensorMap = std::map<std::string, torch::Tensor>;
using MetadataMap = std::map<std::string, std::string>;

struct SafetensorsContent {
  TensorMap tensors;
  MetadataMap metadata;  // the "__metadata__" entry (string -> string)
};

void write_safetensors(const std::filesystem::path& path, const TensorMap& tensors, const MetadataMap& metadata = {});
SafetensorsContent read_safetensors(const std::filesystem::path& path);

}  // namespace linkstyle
