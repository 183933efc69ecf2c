// models/zip_records.hpp (private)
//
// WHAT THIS REPRESENTS
//   The records of a ZIP archive as PKWARE's APPNOTE.TXT (ZIP File Format Specification, sections
//   4.3 and 4.5) lays them out, and ArchiveVerifier, which walks them for verify_zip_archive: the
//   end records and the central directory (zip_archive.cpp), then each entry's local header and
//   data, whose size and CRC-32 must match the central directory's (zip_entry_check.cpp).
// REQUIRES
//   `data` holds the file's `size` bytes and outlives the verifier.
// ENSURES
//   Every offset and size is checked against the bytes it may lie in before it is read; every
//   problem is a one-line linkstyle::Error(file, problem).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include <zlib.h>

#include "linkstyle/errors.hpp"

namespace linkstyle::zip {

constexpr uint32_t kLocalHeaderSignature = 0x04034b50;
constexpr uint32_t kCentralHeaderSignature = 0x02014b50;
constexpr uint32_t kEndSignature = 0x06054b50;
constexpr uint32_t kZip64EndSignature = 0x06064b50;
constexpr uint32_t kZip64LocatorSignature = 0x07064b50;

// Fixed parts of the records, before their variable-length fields.
constexpr uint64_t kLocalHeaderSize = 30;
constexpr uint64_t kCentralHeaderSize = 46;
constexpr uint64_t kEndSize = 22;
constexpr uint64_t kZip64LocatorSize = 20;
constexpr uint64_t kZip64EndSize = 56;
constexpr uint64_t kZip64EndSizeFieldEnd = 12;  // the record's own size counts the bytes after this
constexpr uint64_t kLongestComment = 0xFFFF;

constexpr uint16_t kZip64ExtraId = 0x0001;
constexpr uint16_t kMissing16 = 0xFFFF;  // "see the ZIP64 record / extra field"
constexpr uint32_t kMissing32 = 0xFFFFFFFF;

constexpr uint16_t kFlagEncrypted = 1u << 0;
constexpr uint16_t kFlagDataDescriptor = 1u << 3;  // the local header's CRC and sizes are zero
constexpr uint16_t kMethodStored = 0;
constexpr uint16_t kMethodDeflated = 8;

// Whether [offset, offset + length) lies within [0, limit), without overflow.
inline bool fits(uint64_t offset, uint64_t length, uint64_t limit) {
  return offset <= limit && length <= limit - offset;
}

inline uint64_t read_le(const unsigned char* bytes, int count) {
  uint64_t value = 0;
  for (int i = 0; i < count; ++i) value |= uint64_t(bytes[i]) << (8 * i);
  return value;
}

// Where the central directory is and how many entries it holds, from the end records.
struct CentralDirectory {
  uint64_t offset = 0;
  uint64_t size = 0;
  uint64_t entries = 0;
  uint64_t limit = 0;  // where the end records start: the directory and the entries' data end before it
};

struct CentralEntry {
  std::string name;
  uint16_t flags = 0;
  uint16_t method = 0;
  uint32_t crc = 0;
  uint64_t compressed_size = 0;
  uint64_t uncompressed_size = 0;
  uint64_t local_header_offset = 0;
  uint64_t start_disk = 0;
};

// An entry's name as a message shows it: one line, control bytes escaped, long names cut short.
std::string shown_name(std::string_view name);

class ArchiveVerifier {
 public:
  ArchiveVerifier(const std::filesystem::path& file, const unsigned char* data, uint64_t size)
      : file_(file), data_(data), size_(size) {}

  int64_t verify();

 private:
  static constexpr const char* kCorrupt = " (the file is corrupt)";
  static constexpr const char* kTruncatedOrCorrupt = " (the file is truncated or corrupt)";

  [[noreturn]] void fail(const std::string& problem) const { throw Error(file_, problem); }

  uint64_t field(uint64_t offset, int count) const { return read_le(data_ + offset, count); }

  // The end records and the central directory (zip_archive.cpp).
  uint64_t find_end_record() const;
  CentralDirectory find_central_directory() const;
  CentralDirectory zip64_central_directory(uint64_t locator) const;
  void check_directory_bounds(const CentralDirectory& directory) const;
  CentralEntry read_central_entry(uint64_t index, uint64_t& position, uint64_t directory_end) const;
  void read_zip64_extra(CentralEntry& entry, uint64_t extra, uint64_t extra_length) const;

  // Each entry's local header and data (zip_entry_check.cpp).
  void verify_entry(const CentralEntry& entry, uint64_t data_limit) const;
  void check_local_sizes(const CentralEntry& entry, uint64_t header) const;
  static uLong crc_of(const unsigned char* bytes, uint64_t length, uLong crc = crc32(0, Z_NULL, 0));
  void check_crc(const CentralEntry& entry, uLong crc) const;
  void inflate_and_check(const CentralEntry& entry, const unsigned char* input) const;

  const std::filesystem::path& file_;
  const unsigned char* data_;
  uint64_t size_;
};

}  // namespace linkstyle::zip
