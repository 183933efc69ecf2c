// The ZIP archive check: the file through a read-only mapping, its end records and central
// directory (ZIP64 included); each entry's data is checked in zip_entry_check.cpp.
#include "models/zip_archive.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <string_view>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "linkstyle/errors.hpp"
#include "models/zip_records.hpp"

namespace linkstyle {

namespace fs = std::filesystem;

namespace {

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

}  // namespace

namespace zip {

constexpr size_t kLongestNameShown = 200;

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

int64_t ArchiveVerifier::verify() {
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

// The end of central directory record is the last 22 bytes, before a comment of up to 64 KiB.
uint64_t ArchiveVerifier::find_end_record() const {
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

CentralDirectory ArchiveVerifier::find_central_directory() const {
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

CentralDirectory ArchiveVerifier::zip64_central_directory(uint64_t locator) const {
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

void ArchiveVerifier::check_directory_bounds(const CentralDirectory& directory) const {
  if (!fits(directory.offset, directory.size, directory.limit))
    fail("the central directory (offset " + std::to_string(directory.offset) + ", " + std::to_string(directory.size) +
         " bytes) lies outside the file's " + std::to_string(directory.limit) + " bytes before its end records" +
         kTruncatedOrCorrupt);
}

CentralEntry ArchiveVerifier::read_central_entry(uint64_t index, uint64_t& position, uint64_t directory_end) const {
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
void ArchiveVerifier::read_zip64_extra(CentralEntry& entry, uint64_t extra, uint64_t extra_length) const {
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

}  // namespace zip

int64_t verify_zip_archive(const fs::path& file) {
  const MappedFile mapped(file);
  return zip::ArchiveVerifier(file, mapped.data(), mapped.size()).verify();
}

}  // namespace linkstyle
