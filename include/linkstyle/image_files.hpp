// linkstyle/image_files.hpp
//
// WHAT THIS REPRESENTS
//   Image files as every stage reads and writes them: a PNG or JPEG (any format OpenCV decodes)
//   as a float RGB tensor [1, 3, H, W] in [0, 1], and rows of such images as one PNG.
// REQUIRES
//   Images readable by OpenCV, with sides between 8 and 16384 pixels; tensors [N, 3, H, W] in
//   [0, 1] (values outside are clamped) for the rows.
// ENSURES
//   A PNG or JPEG must be whole (every chunk or segment to its end marker) before it is decoded.
//   Bad input throws linkstyle::Error naming the file; rows are written atomically.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <torch/types.h>

namespace linkstyle {

// Reads an image as float RGB [1,3,H,W] in [0,1]; Error naming the file when unreadable or odd.
torch::Tensor read_image(const std::filesystem::path& file);
// The same from a file's bytes (an upload); `file` names it in errors.
torch::Tensor decode_image(const std::string& bytes, const std::filesystem::path& file);
// Writes images [N,3,H,W] in [0,1] side by side as one PNG (atomically), each scaled to `side`.
void write_image_row(const std::filesystem::path& file, const std::vector<torch::Tensor>& images, int side);
// The same row as PNG bytes.
std::string encode_image_row(const std::vector<torch::Tensor>& images, int side);

}  // namespace linkstyle
