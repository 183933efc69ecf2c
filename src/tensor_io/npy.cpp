// numpy .npy files: the header numpy writes (versions 1.0, 2.0 and 3.0), reading, writing and
// read-only mapping.
#include "linkstyle/tensor_io.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <optional>
#include <string_view>
#include <sys/mman.h>
#include <unistd.h>

#include <torch/types.h>

#include "linkstyle/atomic_file.hpp"
#include "linkstyle/errors.hpp"
#include "tensor_io/tensor_bytes.hpp"

namespace linkstyle {

namespace fs = std::filesystem;
using namespace tensor_bytes;

namespace {

constexpr std::string_view kSupportedNpy = "<f4 <f8 <i8 <i4 |u1 |b1 |i1";

constexpr std::string_view kNpyMagic("\x93NUMPY", 6);
constexpr size_t kNpyAlign = 64;          // numpy aligns the data to 64 bytes
constexpr size_t kNpyGrowthDigits = 21;   // numpy's GROWTH_AXIS_MAX_DIGITS
constexpr size_t kNpyLongestPrefix = 12;  // magic, version, 4-byte header length

struct NpyLayout {
  size_t prefix;       // magic, version and header length
  size_t data_offset;  // prefix plus the header text
};

// Where the header text and the data start, from the fixed-size prefix.
NpyLayout npy_layout(const fs::path& path, std::string_view bytes) {
  if (bytes.size() < kNpyMagic.size() + 2 || bytes.substr(0, kNpyMagic.size()) != kNpyMagic)
    throw Error(path, "not an npy file (missing the \\x93NUMPY magic)");
  const int major = static_cast<unsigned char>(bytes[6]);
  const int minor = static_cast<unsigned char>(bytes[7]);
  if (minor != 0 || major < 1 || major > 3)
    throw Error(path, "unsupported npy format version " + std::to_string(major) + "." + std::to_string(minor) +
                          " (supported: 1.0, 2.0, 3.0)");
  const size_t length_bytes = major == 1 ? 2 : 4;
  if (bytes.size() < 8 + length_bytes) throw Error(path, "truncated npy header");
  const size_t prefix = 8 + length_bytes;
  return {prefix, prefix + read_le(bytes.data() + 8, length_bytes)};
}

// A parser for the header dict numpy writes, a Python literal such as
// {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
class NpyDictParser {
 public:
  NpyDictParser(const fs::path& path, std::string_view text) : path_(path), text_(text) {}

  NpyHeader parse() {
    std::optional<std::string> descr;
    std::optional<bool> fortran_order;
    std::optional<std::vector<int64_t>> shape;
    expect('{');
    while (!consume('}')) {
      const std::string key = parse_string();
      expect(':');
      if (key == "descr" && !descr)
        descr = parse_string();
      else if (key == "fortran_order" && !fortran_order)
        fortran_order = parse_bool();
      else if (key == "shape" && !shape)
        shape = parse_tuple();
      else
        fail("unexpected or repeated key '" + key + "'");
      if (!consume(',')) {
        expect('}');
        break;
      }
    }
    skip_space();
    if (position_ != text_.size()) fail("unexpected text after the closing brace");
    if (!descr || !fortran_order || !shape) fail("it needs the keys 'descr', 'fortran_order' and 'shape'");
    if (*fortran_order) throw Error(path_, "fortran_order True (column-major) arrays are not supported");

    NpyHeader header;
    header.dtype = parse_descr(*descr);
    header.shape = std::move(*shape);
    return header;
  }

 private:
  [[noreturn]] void fail(const std::string& why) const { throw Error(path_, "malformed npy header: " + why); }

  void skip_space() {
    while (position_ < text_.size() && std::strchr(" \t\r\n", text_[position_]) != nullptr) ++position_;
  }

  bool consume(char c) {
    skip_space();
    if (position_ < text_.size() && text_[position_] == c) {
      ++position_;
      return true;
    }
    return false;
  }

  void expect(char c) {
    if (!consume(c)) fail(std::string("expected '") + c + "' at byte " + std::to_string(position_));
  }

  std::string parse_string() {
    skip_space();
    const char quote = position_ < text_.size() ? text_[position_] : '\0';
    if (quote != '\'' && quote != '"') fail("expected a quoted string at byte " + std::to_string(position_));
    const size_t end = text_.find(quote, position_ + 1);
    if (end == std::string_view::npos) fail("unterminated string");
    std::string value(text_.substr(position_ + 1, end - position_ - 1));
    position_ = end + 1;
    return value;
  }

  bool consume_word(std::string_view word) {
    skip_space();
    if (text_.substr(position_, word.size()) != word) return false;
    position_ += word.size();
    return true;
  }

  bool parse_bool() {
    if (consume_word("True")) return true;
    if (consume_word("False")) return false;
    fail("fortran_order must be True or False");
  }

  int64_t parse_int() {
    skip_space();
    const size_t start = position_;
    int64_t value = 0;
    while (position_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[position_]))) {
      if (__builtin_mul_overflow(value, 10, &value) || __builtin_add_overflow(value, text_[position_] - '0', &value))
        fail("dimension too large");
      ++position_;
    }
    if (position_ == start) fail("expected a non-negative integer at byte " + std::to_string(start));
    if (position_ < text_.size() && text_[position_] == 'L') ++position_;  // Python 2 long suffix
    return value;
  }

  std::vector<int64_t> parse_tuple() {
    expect('(');
    std::vector<int64_t> dims;
    bool trailing_comma = false;
    while (!consume(')')) {
      dims.push_back(parse_int());
      trailing_comma = consume(',');
      if (!trailing_comma) {
        expect(')');
        break;
      }
    }
    if (dims.size() == 1 && !trailing_comma) fail("shape (n) is not a tuple; expected (n,)");
    return dims;
  }

  c10::ScalarType parse_descr(const std::string& descr) const {
    if (descr.size() == 3 && std::strchr("<>|=", descr[0]) != nullptr) {
      for (const auto& names : kDtypes) {
        if (names.npy.substr(1) != std::string_view(descr).substr(1)) continue;
        // Byte order is meaningless for one-byte types; multi-byte ones must be little-endian.
        if (c10::elementSize(names.type) == 1 || descr[0] == '<' || descr[0] == '=') return names.type;
        if (descr[0] == '>') throw Error(path_, "big-endian data ('" + descr + "') is not supported");
      }
    }
    throw Error(path_, "unsupported npy dtype '" + descr + "' (supported: " + std::string(kSupportedNpy) + ")");
  }

  const fs::path& path_;
  std::string_view text_;
  size_t position_ = 0;
};

// Parses and validates the header; `bytes` is the start of the file (at least the whole header
// when the file holds it) and `file_size` the size of the whole file.
NpyHeader parse_npy(const fs::path& path, std::string_view bytes, uint64_t file_size) {
  const auto [prefix, data_offset] = npy_layout(path, bytes);
  if (bytes.size() < data_offset) throw Error(path, "truncated npy header");
  NpyHeader header = NpyDictParser(path, bytes.substr(prefix, data_offset - prefix)).parse();
  header.data_offset = data_offset;

  const std::optional<uint64_t> needed = byte_size(header.shape, header.dtype);
  if (!needed) throw Error(path, "npy shape is too large or has a negative dimension");
  const uint64_t present = file_size - data_offset;
  if (present < *needed)
    throw Error(path, "truncated npy data: the shape needs " + std::to_string(*needed) + " bytes, the file holds " +
                          std::to_string(present));
  if (present > *needed)
    throw Error(path, std::to_string(present - *needed) + " unexpected trailing bytes after the npy data");
  return header;
}

std::string npy_header(const torch::Tensor& tensor) {
  std::string shape = "(";
  for (int64_t i = 0; i < tensor.dim(); ++i) shape += (i > 0 ? ", " : "") + std::to_string(tensor.size(i));
  shape += tensor.dim() == 1 ? ",)" : ")";
  std::string dict = "{'descr': '" + std::string(names_of(tensor.scalar_type())->npy) +
                     "', 'fortran_order': False, 'shape': " + shape + ", }";
  // numpy leaves room for the first axis to grow in place; matching it keeps files byte-identical.
  if (tensor.dim() > 0) dict.append(kNpyGrowthDigits - std::to_string(tensor.size(0)).size(), ' ');

  // numpy's rule: version 1.0 unless the padded header length does not fit in 16 bits.
  const size_t text_size = dict.size() + 1;  // + the final '\n'
  size_t prefix = 10;
  size_t padding = kNpyAlign - (prefix + text_size) % kNpyAlign;
  const bool version2 = text_size + padding > 0xFFFF;
  if (version2) {
    prefix = 12;
    padding = kNpyAlign - (prefix + text_size) % kNpyAlign;
  }
  std::string out(kNpyMagic);
  out += version2 ? '\x02' : '\x01';
  out += '\x00';
  append_le(out, text_size + padding, version2 ? 4 : 2);
  out += dict;
  out.append(padding, ' ');
  out += '\n';
  return out;
}

// Opens `in` on the file and reads and validates its header, reading only the header bytes.
NpyHeader open_npy(const fs::path& path, std::ifstream& in) {
  const uint64_t file_size = regular_file_size(path);
  in.open(path, std::ios::binary);
  if (!in) throw Error(path, std::string("cannot read: ") + std::strerror(errno));
  std::string head(static_cast<size_t>(std::min<uint64_t>(file_size, kNpyLongestPrefix)), '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  const size_t data_offset = npy_layout(path, head).data_offset;
  if (data_offset <= file_size && data_offset > head.size()) {
    const size_t already = head.size();
    head.resize(data_offset);
    in.read(head.data() + already, static_cast<std::streamsize>(data_offset - already));
  }
  if (!in) throw Error(path, "read failed");
  return parse_npy(path, head, file_size);
}

}  // namespace

NpyHeader read_npy_header(const fs::path& path) {
  std::ifstream in;
  return open_npy(path, in);
}

torch::Tensor read_npy(const fs::path& path) {
  // Reads the data straight into the tensor, so a large file is not held in memory twice.
  std::ifstream in;
  const NpyHeader header = open_npy(path, in);
  torch::Tensor tensor = torch::empty(header.shape, torch::TensorOptions().dtype(header.dtype));
  in.seekg(static_cast<std::streamoff>(header.data_offset));
  in.read(static_cast<char*>(tensor.data_ptr()), static_cast<std::streamsize>(tensor.nbytes()));
  if (!in) throw Error(path, "read failed (file changed while reading?)");
  if (header.dtype == c10::kBool) check_bool_bytes(path, bytes_of(tensor));
  return tensor;
}

std::string encode_npy(const torch::Tensor& tensor) {
  const torch::Tensor data = storable(tensor, "tensor");
  std::string out = npy_header(data);
  out += bytes_of(data);
  return out;
}

void write_npy(const fs::path& path, const torch::Tensor& tensor) {
  // Streams the header and the data without building the whole file in memory.
  const torch::Tensor data = storable(tensor, path.string());
  AtomicFile file(path);
  file.write(npy_header(data));
  file.write(bytes_of(data));
  file.commit();
}

MappedNpy::MappedNpy(const fs::path& path) {
  const uint64_t size = regular_file_size(path);
  if (size == 0) throw Error(path, "not an npy file (empty)");  // mmap cannot map zero bytes
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path, std::string("cannot open: ") + std::strerror(errno));
  void* mapping = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int map_errno = errno;
  ::close(fd);  // the mapping keeps the file referenced
  if (mapping == MAP_FAILED) throw Error(path, std::string("cannot map: ") + std::strerror(map_errno));
  mapping_ = mapping;
  mapping_size_ = size;
  try {
    const std::string_view bytes(static_cast<const char*>(mapping), size);
    const NpyHeader header = parse_npy(path, bytes, size);
    if (header.dtype == c10::kBool) check_bool_bytes(path, bytes.substr(header.data_offset));
    // No copy: the tensor views the read-only pages. Writing to it faults (SIGSEGV), and it must
    // not be used after this object is destroyed.
    tensor_ = torch::from_blob(static_cast<char*>(mapping) + header.data_offset, header.shape,
                               torch::TensorOptions().dtype(header.dtype));
  } catch (...) {
    ::munmap(mapping_, mapping_size_);
    throw;
  }
}

MappedNpy::~MappedNpy() {
  tensor_ = torch::Tensor();
  if (mapping_ != nullptr) ::munmap(mapping_, mapping_size_);
}

}  // namespace linkstyle
