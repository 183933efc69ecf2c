// linkstyle/worlds/fashion.hpp
//
// WHAT THIS REPRESENTS
//   Fashion-MNIST as a world the classifiers can see: 28x28 grey clothing images in ten classes,
//   presented as 32x32 RGB, plus the IDX reader (the format of the MNIST family) it is built on.
// REQUIRES
//   IDX files: two zero bytes, a type byte (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
//   0x0D float32, 0x0E float64), a dims-count byte, big-endian uint32 dims, big-endian data;
//   plain or gzip-compressed (recognised by the gzip magic 1f 8b, whatever the file name).
//   FashionMnist::load needs the four files of Debian's dataset-fashion-mnist package
//   ({train,t10k}-{images-idx3,labels-idx1}-ubyte.gz) in `folder`.
// ENSURES
//   read_idx returns a contiguous CPU tensor of the matching dtype (uint8 -> kByte, int8 -> kChar,
//   int16 -> kShort, int32 -> kInt, float32 -> kFloat, float64 -> kDouble) and the file's shape.
//   It throws linkstyle::Error("<path>", "<problem>") for a missing file, a bad magic, an unknown
//   type, a truncated header or data, trailing bytes, more than 2^31 elements, or a corrupt gzip
//   stream. FashionMnist::load checks images and labels against each other (count, 28x28, labels
//   in [0, 10)) and names the Debian package when the data folder or a file is missing.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <torch/types.h>

namespace linkstyle {

// Reads an IDX file, plain or gzip-compressed.
torch::Tensor read_idx(const std::filesystem::path& path);

// Where Debian's dataset-fashion-mnist package installs the data: /usr/share/datasets/fashion-mnist.
std::filesystem::path default_fashion_folder();

struct FashionMnist {
  torch::Tensor images;  // [N, 3, 32, 32] float32 in [0, 1]: the grey image /255, zero-padded by
                         // 2 px on every side, the same in all three channels
  torch::Tensor labels;  // [N] int64 in [0, 10), indexes class_names()

  // T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal, Shirt, Sneaker, Bag, Ankle boot.
  static const std::vector<std::string>& class_names();

  // The training split (60000 images) or, with train = false, the test split (10000, "t10k").
  // Takes "<name>.gz", or the uncompressed "<name>" when only that is present.
  static FashionMnist load(const std::filesystem::path& folder = default_fashion_folder(), bool train = true);
};

}  // namespace linkstyle
