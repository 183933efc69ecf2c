// The IDX reader (the format of the MNIST family), plain or gzip-compressed (see fashion.hpp).
#include "linkstyle/worlds/fashion.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <string_view>
#include <sys/stat.h>

#include <ATen/Parallel.h>
#include <torch/types.h>
#include <zlib.h>

#include "linkstyle/errors.hpp"

// IDX data is big-endian; we read it as raw memory and swap in place.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "idx_reader.cpp assumes a little-endian host");

namespace linkstyle {

namespace fs = std::filesystem;

namespace {

// ---------------------------------------------------------------------------------------------
// Byte sources: the file's bytes, or the bytes its gzip stream decompresses to.

struct FileCloser {
  void operator()(std::FILE* file) const { std::fclose(file); }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Reads up to `size` bytes; fewer only at the end of the data. Throws Error on a read failure.
  virtual size_t read(char* out, size_t size) = 0;
  // At most how many bytes are left to read, known before reading them.
  virtual uint64_t capacity() const = 0;
};

// The bytes of `file` after its current position (for a regular file; else unbounded).
uint64_t bytes_left(std::FILE* file) {
  struct stat status {};
  const long position = std::ftell(file);
  if (::fstat(::fileno(file), &status) != 0 || !S_ISREG(status.st_mode) || position < 0)
    return std::numeric_limits<uint64_t>::max();
  return static_cast<uint64_t>(std::max<int64_t>(status.st_size - position, 0));
}

class PlainSource : public ByteSource {
 public:
  PlainSource(const fs::path& path, std::FILE* file) : path_(path), file_(file) {}

  size_t read(char* out, size_t size) override {
    const size_t got = std::fread(out, 1, size, file_);
    if (got < size && std::ferror(file_)) throw Error(path_, std::string("read failed: ") + std::strerror(errno));
    return got;
  }

  uint64_t capacity() const override { return bytes_left(file_); }

 private:
  const fs::path& path_;
  std::FILE* file_;
};

// Inflates one or more concatenated gzip members; the CRC of a member is checked when its end is
// read, so callers read until the end of the data.
class GzipSource : public ByteSource {
 public:
  GzipSource(const fs::path& path, std::FILE* file) : path_(path), file_(file), input_(kInputSize) {
    if (inflateInit2(&stream_, 16 + MAX_WBITS) != Z_OK) throw Error(path_, "cannot start the gzip decoder");
  }
  ~GzipSource() override { inflateEnd(&stream_); }
  GzipSource(const GzipSource&) = delete;
  GzipSource& operator=(const GzipSource&) = delete;

  size_t read(char* out, size_t size) override {
    size_t produced = 0;
    while (produced < size && !finished_) {
      if (stream_.avail_in == 0 && !refill()) {
        if (!member_ended_) fail("the compressed data ends early (truncated .gz file?)");
        finished_ = true;
        break;
      }
      if (member_ended_) {  // more input after a complete member: it must be another member
        if (stream_.next_in[0] != 0x1f) fail("unexpected bytes after the end of the compressed data");
        if (inflateReset(&stream_) != Z_OK) fail("cannot restart the gzip decoder");
        member_ended_ = false;
      }
      const size_t chunk = std::min<size_t>(size - produced, kMaxChunk);
      stream_.next_out = reinterpret_cast<Bytef*>(out + produced);
      stream_.avail_out = static_cast<uInt>(chunk);
      const int status = inflate(&stream_, Z_NO_FLUSH);
      produced += chunk - stream_.avail_out;
      if (status == Z_STREAM_END)
        member_ended_ = true;
      else if (status != Z_OK && status != Z_BUF_ERROR)
        fail(stream_.msg != nullptr ? stream_.msg : zError(status));
    }
    return produced;
  }

  // Deflate expands at most 1032-fold (a 258-byte match in 2 bits); the slack covers output
  // the decoder holds back.
  uint64_t capacity() const override {
    const uint64_t input = bytes_left(file_);
    if (input > std::numeric_limits<uint64_t>::max() / kMaxRatio / 2) return std::numeric_limits<uint64_t>::max();
    return (input + stream_.avail_in) * kMaxRatio + kSlack;
  }

 private:
  static constexpr uint64_t kMaxRatio = 1032;
  static constexpr uint64_t kSlack = uint64_t(1) << 16;
  static constexpr size_t kInputSize = size_t(1) << 18;
  static constexpr size_t kMaxChunk = size_t(1) << 30;  // avail_out is a 32-bit count

  [[noreturn]] void fail(const std::string& why) const { throw Error(path_, "corrupt gzip stream: " + why); }

  bool refill() {
    const size_t got = std::fread(input_.data(), 1, input_.size(), file_);
    if (got < input_.size() && std::ferror(file_))
      throw Error(path_, std::string("read failed: ") + std::strerror(errno));
    stream_.next_in = reinterpret_cast<Bytef*>(input_.data());
    stream_.avail_in = static_cast<uInt>(got);
    return got > 0;
  }

  const fs::path& path_;
  std::FILE* file_;
  std::vector<char> input_;
  z_stream stream_{};
  bool member_ended_ = false;
  bool finished_ = false;
};

// ---------------------------------------------------------------------------------------------
// IDX

struct IdxType {
  unsigned char code;
  c10::ScalarType dtype;
  const char* name;
};

constexpr std::array<IdxType, 6> kIdxTypes{{
    {0x08, c10::kByte, "uint8"},
    {0x09, c10::kChar, "int8"},
    {0x0B, c10::kShort, "int16"},
    {0x0C, c10::kInt, "int32"},
    {0x0D, c10::kFloat, "float32"},
    {0x0E, c10::kDouble, "float64"},
}};

constexpr uint64_t kMaxElements = uint64_t(1) << 31;

std::string hex_byte(unsigned char byte) {
  char text[8];
  std::snprintf(text, sizeof(text), "0x%02x", byte);
  return text;
}

uint32_t read_be32(const unsigned char* bytes) {
  return uint32_t(bytes[0]) << 24 | uint32_t(bytes[1]) << 16 | uint32_t(bytes[2]) << 8 | uint32_t(bytes[3]);
}

std::string shape_text(const std::vector<int64_t>& dims) {
  std::string text;
  for (size_t i = 0; i < dims.size(); ++i) text += (i > 0 ? " x " : "") + std::to_string(dims[i]);
  return dims.empty() ? "a scalar" : text;
}

// The element count, or nullopt when the non-zero dims multiply to more than kMaxElements (with a
// zero dim there are no elements, but torch still multiplies the other dims to size the tensor).
std::optional<uint64_t> element_count(const std::vector<int64_t>& dims) {
  uint64_t count = 1;
  bool empty = false;
  for (const int64_t dim : dims) {
    empty = empty || dim == 0;
    count *= std::max<uint64_t>(static_cast<uint64_t>(dim), 1);  // both factors are at most 2^32: no overflow
    if (count > kMaxElements) return std::nullopt;
  }
  return empty ? 0 : count;
}

template <typename Word, typename Swap>
void swap_words(void* data, size_t count, Swap swap) {
  auto* words = static_cast<Word*>(data);
  at::parallel_for(0, static_cast<int64_t>(count), int64_t(1) << 16, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) words[i] = swap(words[i]);
  });
}

void big_endian_to_host(torch::Tensor& tensor) {
  const size_t count = static_cast<size_t>(tensor.numel());
  switch (tensor.element_size()) {
    case 2:
      swap_words<uint16_t>(tensor.data_ptr(), count, [](uint16_t w) { return __builtin_bswap16(w); });
      break;
    case 4:
      swap_words<uint32_t>(tensor.data_ptr(), count, [](uint32_t w) { return __builtin_bswap32(w); });
      break;
    case 8:
      swap_words<uint64_t>(tensor.data_ptr(), count, [](uint64_t w) { return __builtin_bswap64(w); });
      break;
    default:
      break;
  }
}

// Reads exactly `size` bytes or reports how many there were.
size_t read_fully(ByteSource& source, char* out, size_t size) {
  size_t got = 0;
  while (got < size) {
    const size_t n = source.read(out + got, size - got);
    if (n == 0) break;
    got += n;
  }
  return got;
}

torch::Tensor read_idx_from(const fs::path& path, ByteSource& source, bool gzip) {
  const std::string where = gzip ? "the decompressed stream holds " : "the file holds ";

  unsigned char magic[4];
  const size_t magic_size = read_fully(source, reinterpret_cast<char*>(magic), sizeof(magic));
  if (magic_size < sizeof(magic)) throw Error(path, "not an IDX file (shorter than the 4-byte magic)");
  if (magic[0] != 0 || magic[1] != 0)
    throw Error(path, "not an IDX file (the magic must start with two zero bytes, found " + hex_byte(magic[0]) + " " +
                          hex_byte(magic[1]) + ")");
  const IdxType* type = nullptr;
  for (const auto& candidate : kIdxTypes)
    if (candidate.code == magic[2]) type = &candidate;
  if (type == nullptr)
    throw Error(path, "unknown IDX type byte " + hex_byte(magic[2]) +
                          " (supported: 0x08 uint8, 0x09 int8, 0x0b int16, 0x0c int32, 0x0d float32, 0x0e float64)");

  const size_t rank = magic[3];
  std::vector<unsigned char> dim_bytes(4 * rank);
  const size_t dims_size = read_fully(source, reinterpret_cast<char*>(dim_bytes.data()), dim_bytes.size());
  if (dims_size < dim_bytes.size())
    throw Error(path, "truncated IDX header: " + std::to_string(rank) + " dims need " +
                          std::to_string(dim_bytes.size()) + " bytes, " + where + std::to_string(dims_size));
  std::vector<int64_t> dims(rank);
  for (size_t i = 0; i < rank; ++i) dims[i] = read_be32(&dim_bytes[4 * i]);

  const std::optional<uint64_t> count = element_count(dims);
  if (!count)
    throw Error(path, "absurd IDX dims " + shape_text(dims) + ": more than 2^31 elements" +
                          (std::count(dims.begin(), dims.end(), 0) > 0 ? " in the non-zero dims" : ""));

  // Checked before allocating, so that a short file cannot ask for gigabytes.
  const size_t needed = static_cast<size_t>(*count) * c10::elementSize(type->dtype);
  if (const uint64_t capacity = source.capacity(); needed > capacity)
    throw Error(path, "truncated IDX data: " + std::string(type->name) + " dims " + shape_text(dims) + " need " +
                          std::to_string(needed) + " bytes, " +
                          (gzip ? "more than the rest of the compressed file can hold"
                                : "the file holds " + std::to_string(capacity)));
  torch::Tensor tensor = torch::empty(dims, torch::TensorOptions().dtype(type->dtype));
  const size_t got = read_fully(source, static_cast<char*>(tensor.data_ptr()), needed);
  if (got < needed)
    throw Error(path, "truncated IDX data: " + std::string(type->name) + " dims " + shape_text(dims) + " need " +
                          std::to_string(needed) + " bytes, " + where + std::to_string(got));

  // Reading on to the end also makes the gzip decoder check the stream's CRC.
  uint64_t trailing = 0;
  std::vector<char> scratch(size_t(1) << 16);
  for (size_t n; (n = source.read(scratch.data(), scratch.size())) > 0;) trailing += n;
  if (trailing > 0)
    throw Error(path, std::to_string(trailing) + " unexpected trailing bytes after the IDX data (dims " +
                          shape_text(dims) + ")");

  big_endian_to_host(tensor);
  return tensor;
}

}  // namespace

torch::Tensor read_idx(const fs::path& path) {
  std::error_code error;
  const fs::file_status status = fs::status(path, error);
  if (!fs::exists(status)) throw Error(path, "file not found");
  if (fs::is_directory(status)) throw Error(path, "is a folder, expected a file");
  FilePtr file(std::fopen(path.c_str(), "rb"));
  if (!file) throw Error(path, std::string("cannot read: ") + std::strerror(errno));

  unsigned char head[2] = {0, 0};
  const size_t head_size = std::fread(head, 1, sizeof(head), file.get());
  if (std::ferror(file.get()) || std::fseek(file.get(), 0, SEEK_SET) != 0)
    throw Error(path, std::string("read failed: ") + std::strerror(errno));
  if (head_size == 2 && head[0] == 0x1f && head[1] == 0x8b) {
    GzipSource source(path, file.get());
    return read_idx_from(path, source, true);
  }
  PlainSource source(path, file.get());
  return read_idx_from(path, source, false);
}

}  // namespace linkstyle
