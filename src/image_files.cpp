#include "image_files.hpp"

#include <cstdint>
#include <string>

#include <fmt/format.h>
#include <zlib.h>

#include "linkstyle/errors.hpp"

namespace linkstyle {

namespace {

// Whether JPEG data runs from its start marker through its segments and scans to the end-of-image
// marker (libjpeg decodes a truncated file with only a warning, padding the missing rows grey).
bool jpeg_is_complete(std::string_view bytes) {
  const auto byte = [&](size_t i) { return static_cast<uint8_t>(bytes[i]); };
  const auto is_restart = [](uint8_t marker) { return marker >= 0xD0 && marker <= 0xD7; };
  size_t i = 2;  // after the start-of-image marker
  while (i + 2 <= bytes.size()) {
    if (byte(i) != 0xFF) return false;
    const uint8_t marker = byte(i + 1);
    if (marker == 0xD9) return true;  // end of image
    if (marker == 0xFF) {             // fill byte
      i += 1;
      continue;
    }
    if (marker == 0x01 || is_restart(marker)) {
      i += 2;
      continue;
    }
    if (i + 4 > bytes.size()) return false;
    const size_t length = size_t(byte(i + 2)) << 8 | byte(i + 3);
    if (length < 2) return false;
    i += 2 + length;
    if (marker != 0xDA) continue;
    // Start of scan: entropy-coded data runs to the next marker (0xFF00 is a stuffed 0xFF).
    for (;; ++i) {
      if (i + 1 >= bytes.size()) return false;
      if (byte(i) != 0xFF) continue;
      const uint8_t next = byte(i + 1);
      if (next == 0x00 || is_restart(next)) {
        ++i;
        continue;
      }
      if (next != 0xFF) break;
    }
  }
  return false;
}

// Whether PNG data runs chunk by chunk, each with its CRC-32, to the IEND chunk; otherwise the
// problem.
std::string png_problem(std::string_view bytes) {
  const auto big_endian = [&](size_t i) {
    return uint32_t(uint8_t(bytes[i])) << 24 | uint32_t(uint8_t(bytes[i + 1])) << 16 |
           uint32_t(uint8_t(bytes[i + 2])) << 8 | uint32_t(uint8_t(bytes[i + 3]));
  };
  size_t i = 8;  // after the signature
  while (i + 12 <= bytes.size()) {
    const size_t length = big_endian(i);
    const std::string type(bytes.substr(i + 4, 4));
    if (length > bytes.size() - i - 12) return "truncated PNG (chunk " + type + " runs past the end of the file)";
    const auto* data = reinterpret_cast<const Bytef*>(bytes.data() + i + 4);
    if (crc32(crc32(0L, Z_NULL, 0), data, static_cast<uInt>(length + 4)) != big_endian(i + 8 + length))
      return "corrupt PNG (chunk " + type + " fails its CRC check)";
    if (type == "IEND") return "";
    i += 12 + length;
  }
  return "truncated PNG (no IEND chunk)";
}

}  // namespace

void check_image_file_is_whole(const std::filesystem::path& file, std::string_view bytes) {
  if (bytes.size() >= 8 && bytes.compare(0, 8, std::string_view("\x89PNG\r\n\x1a\n", 8)) == 0) {
    const std::string problem = png_problem(bytes);
    if (!problem.empty()) throw Error(file, problem);
  } else if (bytes.size() >= 3 && bytes.compare(0, 3, "\xFF\xD8\xFF") == 0 && !jpeg_is_complete(bytes)) {
    throw Error(file, "truncated or corrupt JPEG (no end-of-image marker)");
  }
}

}  // namespace linkstyle
