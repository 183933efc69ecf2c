#include "models/zip_archive.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <string_view>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include <zlib.h>

#include "linkstyle/errors.hpp"

// The layout below is PKWARE's APPNOTE.TXT (ZIP File Format Specification), sections 4.3 and 4.5.
namespace linkstyle {

namespace fs = std::filesystem;

namespace {

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

constexpr uint64_t kZlibChunk = uint64_t(1) << 30;  // zlib counts in uInt: feed it at most 1 GiB at a time
constexpr size_t kInflateBuffer = size_t(1) << 18;
constexpr size_t kLongestNameShown = 200;

// Whether [offset, offset + length) lies within [0, limit), without overflow.
bool fits(uint64_t offset, uint64_t length, uint64_t limit) { return offset <= limit && length <= limit - offset; }

uint64_t read_le(const unsigned char* bytes, int count) {
  uint64_t value = 0;
  for (int i = 0; i < count; ++i) value |= uint64_t(bytes[i]) << (8 * i);
  return value;
}

// The file's bytes through a read-only mapping.
class MappedFile {
 public:
  explicit MappedFile(const fs::path& file) {
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      throw Error(file, errno == ENOENT ? "file not found" : std::string("cannot open: ") + std::strerror(errno));
    struct stat status {};
    if (::fstat(fd, &status) != 0) {
      const int stat_errno = errno;
      ::close(fd);
      throw Error(file, std::string("cannot read: ") + std::strerror(stat_errno));
    }
    if (S_ISDIR(status.st_mode)) {
      ::close(fd);
      throw Error(file, "is a folder, expected a file");
    }
    size_ = static_cast<uint64_t>(status.st_size);
    if (size_ == 0) {  // mmap cannot map zero bytes
      ::close(fd);
      throw Error(file, "not a zip archive (the file is empty)");
    }
    void* mapping = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    const int map_errno = errno;
    ::close(fd);  // the mapping keeps the file referenced
    if (mapping == MAP_FAILED) throw Error(file, std::string("cannot map: ") + std::strerror(map_errno));
    ::madvise(mapping, size_, MADV_SEQUENTIAL);
    data_ = static_cast<const unsigned char*>(mapping);
  }
  ~MappedFile() { ::munmap(const_cast<unsigned char*>(data_), size_); }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const unsigned char* data() const { return data_; }
  uint64_t size() const { return size_; }

 private:
  const unsigned char* data_ = nullptr;
  uint64_t size_ = 0;
};

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
std::string shown_name(std::string_view name) {
  std::string shown;
  for (const char c : name.substr(0, kLongestNameShown)) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7F || c == '\'' || c == '\\') {
      char escaped[8];
      std::snprintf(escaped, sizeof(escaped), "\\x%02X", byte);
      shown += escaped;
    } else {
      shown += c;
    }
  }
  if (name.size() > kLongestNameShown) shown += "...";
  return "archive entry '" + shown + "'";
}

class ArchiveVerifier {
 public:
  ArchiveVerifier(const fs::path& file, const unsigned char* data, uint64_t size)
      : file_(file), data_(data), size_(size) {}

  int64_t verify() {
    const CentralDirectory directory = find_central_directory();
    if (directory.entries > directory.size / kCentralHeaderSize)
      fail("the end of central directory record counts " + std::to_string(directory.entries) +
           " entries, more than its " + std::to_string(directory.size) + "-byte central directory can hold" + kCorrupt);
    uint64_t position = directory.offset;
    const uint64_t directory_end = directory.offset + directory.size;
    for (uint64_t index = 0; index < directory.entries; ++index) {
      const CentralEntry entry = read_central_entry(index, position, directory_end);
      verify_entry(entry, directory.offset);
    }
    return static_cast<int64_t>(directory.entries);
  }

 private:
  static constexpr const char* kCorrupt = " (the file is corrupt)";
  static constexpr const char* kTruncatedOrCorrupt = " (the file is truncated or corrupt)";

  [[noreturn]] void fail(const std::string& problem) const { throw Error(file_, problem); }

  uint64_t field(uint64_t offset, int count) const { return read_le(data_ + offset, count); }

  // The end of central directory record is the last 22 bytes, before a comment of up to 64 KiB.
  uint64_t find_end_record() const {
    if (size_ >= kEndSize) {
      const uint64_t lowest = size_ > kEndSize + kLongestComment ? size_ - kEndSize - kLongestComment : 0;
      for (uint64_t offset = size_ - kEndSize;; --offset) {
        if (field(offset, 4) == kEndSignature && fits(offset + kEndSize, field(offset + 20, 2), size_)) return offset;
        if (offset == lowest) break;
      }
    }
    fail("not a zip archive, or truncated (no end of central directory record in its last " +
         std::to_string(kEndSize + kLongestComment) + " bytes)");
  }

  CentralDirectory find_central_directory() const {
    const uint64_t end = find_end_record();
    const uint64_t disk = field(end + 4, 2);
    const uint64_t directory_disk = field(end + 6, 2);
    const uint64_t disk_entries = field(end + 8, 2);
    CentralDirectory directory;
    directory.entries = field(end + 10, 2);
    directory.size = field(end + 12, 4);
    directory.offset = field(end + 16, 4);
    directory.limit = end;
    const bool needs_zip64 = disk == kMissing16 || directory_disk == kMissing16 || disk_entries == kMissing16 ||
                             directory.entries == kMissing16 || directory.size == kMissing32 ||
                             directory.offset == kMissing32;
    const bool has_locator = end >= kZip64LocatorSize && field(end - kZip64LocatorSize, 4) == kZip64LocatorSignature;
    if (has_locator) return zip64_central_directory(end - kZip64LocatorSize);
    if (needs_zip64)
      fail(std::string("the end of central directory record calls for a ZIP64 record, which is missing") + kCorrupt);
    if (disk != 0 || directory_disk != 0 || disk_entries != directory.entries)
      fail("the archive spans several disks, which is not supported");
    check_directory_bounds(directory);
    return directory;
  }

  CentralDirectory zip64_central_directory(uint64_t locator) const {
    const uint64_t record = field(locator + 8, 8);
    if (field(locator + 4, 4) != 0 || field(locator + 16, 4) > 1)
      fail("the archive spans several disks, which is not supported");
    if (!fits(record, kZip64EndSize, locator))
      fail(std::string("the ZIP64 end of central directory record is out of bounds") + kTruncatedOrCorrupt);
    if (field(record, 4) != kZip64EndSignature)
      fail(std::string("bad ZIP64 end of central directory signature") + kCorrupt);
    const uint64_t record_size = field(record + 4, 8);
    if (record_size < kZip64EndSize - kZip64EndSizeFieldEnd ||
        !fits(record + kZip64EndSizeFieldEnd, record_size, locator))
      fail(std::string("the ZIP64 end of central directory record has a bad size") + kCorrupt);
    const uint64_t disk = field(record + 16, 4);
    const uint64_t directory_disk = field(record + 20, 4);
    const uint64_t disk_entries = field(record + 24, 8);
    CentralDirectory directory;
    directory.entries = field(record + 32, 8);
    directory.size = field(record + 40, 8);
    directory.offset = field(record + 48, 8);
    directory.limit = record;
    if (disk != 0 || directory_disk != 0 || disk_entries != directory.entries)
      fail("the archive spans several disks, which is not supported");
    check_directory_bounds(directory);
    return directory;
  }

  void check_directory_bounds(const CentralDirectory& directory) const {
    if (!fits(directory.offset, directory.size, directory.limit))
      fail("the central directory (offset " + std::to_string(directory.offset) + ", " + std::to_string(directory.size) +
           " bytes) lies outside the file's " + std::to_string(directory.limit) + " bytes before its end records" +
           kTruncatedOrCorrupt);
  }

  CentralEntry read_central_entry(uint64_t index, uint64_t& position, uint64_t directory_end) const {
    const std::string which = "central directory entry #" + std::to_string(index + 1);
    if (!fits(position, kCentralHeaderSize, directory_end))
      fail(which + " runs past the end of the central directory" + kCorrupt);
    if (field(position, 4) != kCentralHeaderSignature) fail(which + " has a bad signature" + kCorrupt);
    CentralEntry entry;
    entry.flags = static_cast<uint16_t>(field(position + 8, 2));
    entry.method = static_cast<uint16_t>(field(position + 10, 2));
    entry.crc = static_cast<uint32_t>(field(position + 16, 4));
    entry.compressed_size = field(position + 20, 4);
    entry.uncompressed_size = field(position + 24, 4);
    const uint64_t name_length = field(position + 28, 2);
    const uint64_t extra_length = field(position + 30, 2);
    const uint64_t comment_length = field(position + 32, 2);
    entry.start_disk = field(position + 34, 2);
    entry.local_header_offset = field(position + 42, 4);
    const uint64_t variable_length = name_length + extra_length + comment_length;  // at most 3 * 0xFFFF
    if (!fits(position + kCentralHeaderSize, variable_length, directory_end))
      fail(which + " runs past the end of the central directory" + kCorrupt);
    const uint64_t name = position + kCentralHeaderSize;
    entry.name.assign(reinterpret_cast<const char*>(data_ + name), name_length);
    read_zip64_extra(entry, name + name_length, extra_length);
    position = name + variable_length;
    return entry;
  }

  // Replaces the 32-bit fields that hold 0xFFFFFFFF (0xFFFF for the disk) with their ZIP64 values,
  // which the extra field 0x0001 lists in this order, only for the fields that need them.
  void read_zip64_extra(CentralEntry& entry, uint64_t extra, uint64_t extra_length) const {
    const bool needs[] = {entry.uncompressed_size == kMissing32, entry.compressed_size == kMissing32,
                          entry.local_header_offset == kMissing32, entry.start_disk == kMissing16};
    if (!needs[0] && !needs[1] && !needs[2] && !needs[3]) return;
    uint64_t* const targets[] = {&entry.uncompressed_size, &entry.compressed_size, &entry.local_header_offset,
                                 &entry.start_disk};
    const int widths[] = {8, 8, 8, 4};
    for (uint64_t block = 0; block + 4 <= extra_length;) {
      const uint64_t id = field(extra + block, 2);
      const uint64_t block_size = field(extra + block + 2, 2);
      const uint64_t body = block + 4;
      if (block_size > extra_length - body) break;  // a malformed block: stop, report the missing values below
      if (id == kZip64ExtraId) {
        uint64_t at = 0;
        for (int i = 0; i < 4; ++i) {
          if (!needs[i]) continue;
          if (at + widths[i] > block_size)
            fail(shown_name(entry.name) + " has a ZIP64 extra field too short for its sizes and offset" + kCorrupt);
          *targets[i] = field(extra + body + at, widths[i]);
          at += widths[i];
        }
        return;
      }
      block = body + block_size;
    }
    fail(shown_name(entry.name) + " needs a ZIP64 extra field, which is missing" + kCorrupt);
  }

  void verify_entry(const CentralEntry& entry, uint64_t data_limit) const {
    const std::string name = shown_name(entry.name);
    if (entry.start_disk != 0) fail(name + " is on another disk, which is not supported");
    if ((entry.flags & kFlagEncrypted) != 0) fail(name + " is encrypted, which is not supported");
    if (entry.method != kMethodStored && entry.method != kMethodDeflated)
      fail(name + " uses compression method " + std::to_string(entry.method) +
           ", which is not supported (only stored (0) and deflate (8))");
    const uint64_t header = entry.local_header_offset;
    if (!fits(header, kLocalHeaderSize, data_limit))
      fail(name + " has its local header out of bounds" + kTruncatedOrCorrupt);
    if (field(header, 4) != kLocalHeaderSignature) fail(name + " has a bad local header signature" + kCorrupt);
    const uint64_t name_length = field(header + 26, 2);
    const uint64_t extra_length = field(header + 28, 2);  // may differ from the central directory's
    if (!fits(header + kLocalHeaderSize, name_length + extra_length, data_limit))
      fail(name + " has its local header out of bounds" + kTruncatedOrCorrupt);
    const std::string_view local_name(reinterpret_cast<const char*>(data_ + header + kLocalHeaderSize), name_length);
    if (local_name != entry.name) fail(name + " has a local header that names " + shown_name(local_name) + kCorrupt);
    if (field(header + 8, 2) != entry.method)
      fail(name + " has a local header whose compression method differs from the central directory's" + kCorrupt);
    if ((entry.flags & kFlagDataDescriptor) == 0) check_local_sizes(entry, header);
    const uint64_t data = header + kLocalHeaderSize + name_length + extra_length;
    if (!fits(data, entry.compressed_size, data_limit))
      fail(name + " has its data (" + std::to_string(entry.compressed_size) +
           " bytes) running past the central directory" + kTruncatedOrCorrupt);
    if (entry.method == kMethodStored) {
      if (entry.compressed_size != entry.uncompressed_size)
        fail(name + " is stored, yet its compressed size " + std::to_string(entry.compressed_size) +
             " differs from its size " + std::to_string(entry.uncompressed_size) + kCorrupt);
      check_crc(entry, crc_of(data_ + data, entry.compressed_size));
    } else {
      inflate_and_check(entry, data_ + data);
    }
  }

  // Without a data descriptor, the local header repeats the CRC and sizes (0xFFFFFFFF sizes are
  // in its own ZIP64 extra field, not compared here).
  void check_local_sizes(const CentralEntry& entry, uint64_t header) const {
    const uint64_t compressed = field(header + 18, 4);
    const uint64_t uncompressed = field(header + 22, 4);
    const bool sizes_differ = (compressed != kMissing32 && compressed != entry.compressed_size) ||
                              (uncompressed != kMissing32 && uncompressed != entry.uncompressed_size);
    if (field(header + 14, 4) != entry.crc || sizes_differ)
      fail(shown_name(entry.name) + " has a local header whose CRC or sizes differ from the central directory's" +
           kCorrupt);
  }

  static uLong crc_of(const unsigned char* bytes, uint64_t length, uLong crc = crc32(0, Z_NULL, 0)) {
    while (length > 0) {
      const uint64_t chunk = std::min(length, kZlibChunk);
      crc = crc32(crc, bytes, static_cast<uInt>(chunk));
      bytes += chunk;
      length -= chunk;
    }
    return crc;
  }

  void check_crc(const CentralEntry& entry, uLong crc) const {
    if (crc != entry.crc) fail(shown_name(entry.name) + " fails its CRC check" + kCorrupt);
  }

  void inflate_and_check(const CentralEntry& entry, const unsigned char* input) const {
    const std::string name = shown_name(entry.name);
    z_stream stream{};
    if (inflateInit2(&stream, -MAX_WBITS) != Z_OK) fail(name + ": zlib cannot start inflating");
    struct InflateEnd {
      z_stream& stream;
      ~InflateEnd() { inflateEnd(&stream); }
    } inflate_end{stream};
    std::vector<unsigned char> output(kInflateBuffer);
    uint64_t input_left = entry.compressed_size;
    uint64_t produced = 0;
    uLong crc = crc32(0, Z_NULL, 0);
    for (int status = Z_OK; status != Z_STREAM_END;) {
      if (stream.avail_in == 0 && input_left > 0) {
        const uint64_t chunk = std::min(input_left, kZlibChunk);
        stream.next_in = const_cast<Bytef*>(input);
        stream.avail_in = static_cast<uInt>(chunk);
        input += chunk;
        input_left -= chunk;
      }
      stream.next_out = output.data();
      stream.avail_out = static_cast<uInt>(output.size());
      status = inflate(&stream, Z_NO_FLUSH);
      if (status != Z_OK && status != Z_STREAM_END) {
        if (status == Z_BUF_ERROR)  // no progress with fresh room: every input byte is used
          fail(name + " has a deflate stream cut short" + kTruncatedOrCorrupt);
        const std::string detail = stream.msg != nullptr ? std::string(" (zlib: ") + stream.msg + ")" : "";
        fail(name + " holds a corrupt deflate stream" + detail);
      }
      const uint64_t produced_now = output.size() - stream.avail_out;
      crc = crc_of(output.data(), produced_now, crc);
      produced += produced_now;
      if (produced > entry.uncompressed_size)
        fail(name + " inflates to more than the " + std::to_string(entry.uncompressed_size) +
             " bytes its central directory records" + kCorrupt);
    }
    const uint64_t unused = stream.avail_in + input_left;
    if (unused != 0)
      fail(name + " has a deflate stream that ends " + std::to_string(unused) +
           " bytes before its recorded compressed size" + kCorrupt);
    if (produced != entry.uncompressed_size)
      fail(name + " inflates to " + std::to_string(produced) + " bytes where its central directory records " +
           std::to_string(entry.uncompressed_size) + kCorrupt);
    check_crc(entry, crc);
  }

  const fs::path& file_;
  const unsigned char* data_;
  uint64_t size_;
};

}  // namespace

int64_t verify_zip_archive(const fs::path& file) {
  const MappedFile mapped(file);
  return ArchiveVerifier(file, mapped.data(), mapped.size()).verify();
}

}  // namespace linkstyle
