// The ZIP archive check, entry by entry: the local header against the central directory, then the
// data (stored or deflated) against its recorded size and CRC-32.
#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include <zlib.h>

#include "linkstyle/errors.hpp"
#include "models/zip_records.hpp"

namespace linkstyle::zip {

namespace {

constexpr uint64_t kZlibChunk = uint64_t(1) << 30;  // zlib counts in uInt: feed it at most 1 GiB at a time
constexpr size_t kInflateBuffer = size_t(1) << 18;

}  // namespace

void ArchiveVerifier::verify_entry(const CentralEntry& entry, uint64_t data_limit) const {
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
void ArchiveVerifier::check_local_sizes(const CentralEntry& entry, uint64_t header) const {
  const uint64_t compressed = field(header + 18, 4);
  const uint64_t uncompressed = field(header + 22, 4);
  const bool sizes_differ = (compressed != kMissing32 && compressed != entry.compressed_size) ||
                            (uncompressed != kMissing32 && uncompressed != entry.uncompressed_size);
  if (field(header + 14, 4) != entry.crc || sizes_differ)
    fail(shown_name(entry.name) + " has a local header whose CRC or sizes differ from the central directory's" +
         kCorrupt);
}

uLong ArchiveVerifier::crc_of(const unsigned char* bytes, uint64_t length, uLong crc) {
  while (length > 0) {
    const uint64_t chunk = std::min(length, kZlibChunk);
    crc = crc32(crc, bytes, static_cast<uInt>(chunk));
    bytes += chunk;
    length -= chunk;
  }
  return crc;
}

void ArchiveVerifier::check_crc(const CentralEntry& entry, uLong crc) const {
  if (crc != entry.crc) fail(shown_name(entry.name) + " fails its CRC check" + kCorrupt);
}

void ArchiveVerifier::inflate_and_check(const CentralEntry& entry, const unsigned char* input) const {
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

}  // namespace linkstyle::zip
