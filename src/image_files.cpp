// Image files: whole-file checks of PNG and JPEG data (image_files.hpp) and the images every
// stage reads and writes (linkstyle/image_files.hpp).
#include "linkstyle/image_files.hpp"

#include <cstdint>
#include <limits>
#include <string>

#include <fmt/format.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/torch.h>
#include <zlib.h>

#include "image_files.hpp"
#include "linkstyle/atomic_file.hpp"
#include "linkstyle/errors.hpp"

namespace linkstyle {

namespace fs = std::filesystem;

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

// The bytes of an image file, or an Error saying why there are none.
std::string image_file_bytes(const fs::path& file) {
  std::error_code error;
  const auto status = fs::status(file, error);
  if (!fs::exists(status)) throw Error(file, "image file not found");
  if (fs::is_directory(status)) throw Error(file, "is a folder, expected an image file");
  if (!fs::is_regular_file(status)) throw Error(file, "is not a regular file (a device or pipe?), expected an image");
  return read_file(file);  // names a file it cannot read ("Permission denied")
}

}  // namespace

void check_image_file_is_whole(const fs::path& file, std::string_view bytes) {
  if (bytes.size() >= 8 && bytes.compare(0, 8, std::string_view("\x89PNG\r\n\x1a\n", 8)) == 0) {
    const std::string problem = png_problem(bytes);
    if (!problem.empty()) throw Error(file, problem);
  } else if (bytes.size() >= 3 && bytes.compare(0, 3, "\xFF\xD8\xFF") == 0 && !jpeg_is_complete(bytes)) {
    throw Error(file, "truncated or corrupt JPEG (no end-of-image marker)");
  }
}

torch::Tensor read_image(const fs::path& file) { return decode_image(image_file_bytes(file), file); }

torch::Tensor decode_image(const std::string& bytes, const fs::path& file) {
  check_image_file_is_whole(file, bytes);
  if (bytes.size() > size_t(std::numeric_limits<int>::max())) throw Error(file, "is larger than 2 GiB, too large an image");
  const cv::Mat encoded(1, static_cast<int>(bytes.size()), CV_8U, const_cast<char*>(bytes.data()));
  cv::Mat bgr;
  try {
    bgr = cv::imdecode(encoded, cv::IMREAD_COLOR);
  } catch (const cv::Exception& error) {
    throw Error(file, "cannot decode image: " + error.msg);
  }
  if (bgr.empty()) throw Error(file, "cannot decode image (corrupt or unsupported format)");
  if (bgr.cols < 8 || bgr.rows < 8 || bgr.cols > 16384 || bgr.rows > 16384)
    throw Error(file, fmt::format("image is {}x{}; expected sides between 8 and 16384 pixels", bgr.cols, bgr.rows));
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  auto tensor = torch::from_blob(rgb.data, {rgb.rows, rgb.cols, 3}, torch::kUInt8).clone();
  return tensor.permute({2, 0, 1}).unsqueeze(0).to(torch::kFloat32).div_(255.0);
}

std::string encode_image_row(const std::vector<torch::Tensor>& images, int side) {
  std::vector<cv::Mat> panels;
  for (const auto& image : images) {
    auto hwc = image.detach()
                   .to(torch::kCPU)
                   .squeeze(0)
                   .clamp(0, 1)
                   .mul(255)
                   .round()
                   .to(torch::kUInt8)
                   .permute({1, 2, 0})
                   .contiguous();
    cv::Mat rgb(static_cast<int>(hwc.size(0)), static_cast<int>(hwc.size(1)), CV_8UC3, hwc.data_ptr());
    cv::Mat bgr, scaled;
    cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
    // Nearest neighbour when enlarging shows the generator's true pixels; area when shrinking.
    cv::resize(bgr, scaled, cv::Size(side, side), 0, 0, bgr.cols < side ? cv::INTER_NEAREST : cv::INTER_AREA);
    panels.push_back(scaled);
  }
  cv::Mat row;
  cv::hconcat(panels, row);
  std::vector<unsigned char> png;
  if (!cv::imencode(".png", row, png)) throw Error("image row", "PNG encoding failed");
  return std::string(reinterpret_cast<const char*>(png.data()), png.size());
}

void write_image_row(const fs::path& file, const std::vector<torch::Tensor>& images, int side) {
  write_file_atomically(file, encode_image_row(images, side));
}

}  // namespace linkstyle
