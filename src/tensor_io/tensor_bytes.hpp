// tensor_io/tensor_bytes.hpp (private)
//
// WHAT THIS REPRESENTS
//   What the npy and safetensors readers and writers share: the dtypes both formats store (with
//   their names in each), the bytes of a tensor as written to disk, byte counts, little-endian
//   integers and the size of a regular file.
// REQUIRES
//   A little-endian host (checked at compile time): both formats store little-endian data, read
//   and written as raw memory.
// ENSURES
//   Every problem is a linkstyle::Error naming the file (or `subject`) and the problem.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <torch/types.h>

#include "linkstyle/errors.hpp"

// Both formats store little-endian data, which we read and write as raw memory.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "tensor_io assumes a little-endian host");

namespace linkstyle::tensor_bytes {

struct DtypeNames {
  c10::ScalarType type;
  std::string_view npy;          // numpy descr as numpy writes it
  std::string_view safetensors;  // safetensors dtype tag
};

inline constexpr std::array<DtypeNames, 7> kDtypes{{
    {c10::kFloat, "<f4", "F32"},
    {c10::kDouble, "<f8", "F64"},
    {c10::kLong, "<i8", "I64"},
    {c10::kInt, "<i4", "I32"},
    {c10::kByte, "|u1", "U8"},
    {c10::kBool, "|b1", "BOOL"},
    {c10::kChar, "|i1", "I8"},
}};

inline const DtypeNames* names_of(c10::ScalarType type) {
  for (const auto& names : kDtypes)
    if (names.type == type) return &names;
  return nullptr;
}

// The bytes of `tensor` as written to disk: detached, on the CPU, in C order.
inline torch::Tensor storable(const torch::Tensor& tensor, const std::string& subject) {
  if (!tensor.defined()) throw Error(subject, "cannot store an undefined tensor");
  if (names_of(tensor.scalar_type()) == nullptr)
    throw Error(subject, std::string("unsupported dtype ") + c10::toString(tensor.scalar_type()) +
                             " (supported: float32, float64, int64, int32, uint8, bool, int8)");
  return tensor.detach().to(torch::kCPU).contiguous();
}

inline std::string_view bytes_of(const torch::Tensor& contiguous) {
  return {static_cast<const char*>(contiguous.data_ptr()), contiguous.nbytes()};
}

// Element count times item size, or nullopt on overflow or a negative dimension.
inline std::optional<uint64_t> byte_size(const std::vector<int64_t>& shape, c10::ScalarType type) {
  uint64_t total = c10::elementSize(type);
  for (const int64_t dim : shape)
    if (dim < 0 || __builtin_mul_overflow(total, static_cast<uint64_t>(dim), &total)) return std::nullopt;
  if (total > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
  return total;
}

// torch's bool is one byte holding 0 or 1; any other byte would be undefined behaviour later.
inline void check_bool_bytes(const std::filesystem::path& path, std::string_view data) {
  if (std::any_of(data.begin(), data.end(), [](char b) { return static_cast<unsigned char>(b) > 1; }))
    throw Error(path, "bool data holds bytes other than 0 and 1");
}

inline torch::Tensor copy_tensor(const std::filesystem::path& path, c10::ScalarType type,
                                 const std::vector<int64_t>& shape, std::string_view data) {
  if (type == c10::kBool) check_bool_bytes(path, data);
  torch::Tensor tensor = torch::empty(shape, torch::TensorOptions().dtype(type));
  if (!data.empty()) std::memcpy(tensor.data_ptr(), data.data(), data.size());
  return tensor;
}

inline uint64_t read_le(const char* bytes, size_t count) {
  uint64_t value = 0;
  for (size_t i = 0; i < count; ++i) value |= uint64_t(static_cast<unsigned char>(bytes[i])) << (8 * i);
  return value;
}

inline void append_le(std::string& out, uint64_t value, size_t count) {
  for (size_t i = 0; i < count; ++i) out += static_cast<char>((value >> (8 * i)) & 0xFF);
}

inline uint64_t regular_file_size(const std::filesystem::path& path) {
  std::error_code error;
  const std::filesystem::file_status status = std::filesystem::status(path, error);
  if (!std::filesystem::exists(status)) throw Error(path, "file not found");
  if (std::filesystem::is_directory(status)) throw Error(path, "is a folder, expected a file");
  const uintmax_t size = std::filesystem::file_size(path, error);
  if (error) throw Error(path, "cannot read: " + error.message());
  return size;
}

}  // namespace linkstyle::tensor_bytes
