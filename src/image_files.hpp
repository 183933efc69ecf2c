// image_files.hpp (private)
//
// WHAT THIS REPRESENTS
//   Checks that an encoded PNG or JPEG file is whole before it is decoded: the decoders accept a
//   truncated file with a warning on stderr (JPEG, padding the missing rows) or print their own
//   error text (PNG).
// REQUIRES
//   `bytes` is the whole content of `file`.
// ENSURES
//   A PNG must run chunk by chunk, each with a matching CRC-32, to its IEND chunk; a JPEG must run
//   segment by segment and scan by scan to its end-of-image marker. Otherwise linkstyle::Error
//   names the file and the problem. Other formats are left to the decoder.
#pragma once

#include <filesystem>
#include <string_view>

namespace linkstyle {

void check_image_file_is_whole(const std::filesystem::path& file, std::string_view bytes);

}  // namespace linkstyle
