// Fashion-MNIST as a world: the Debian package's IDX files read into padded RGB images (see
// fashion.hpp).
#include "linkstyle/worlds/fashion.hpp"

#include <algorithm>
#include <array>
#include <string>

#include <ATen/Parallel.h>
#include <torch/types.h>

#include "linkstyle/errors.hpp"

namespace linkstyle {

namespace fs = std::filesystem;

namespace {

constexpr const char* kPackage = "dataset-fashion-mnist";
constexpr int64_t kSide = 28;
constexpr int64_t kPadded = 32;
constexpr int64_t kPad = (kPadded - kSide) / 2;
constexpr int64_t kClasses = 10;

// "<name>.gz", or "<name>" when only the uncompressed file is there.
fs::path data_file(const fs::path& folder, const std::string& name) {
  const fs::path gz = folder / (name + ".gz");
  const fs::path plain = folder / name;
  std::error_code ignored;
  if (fs::exists(gz, ignored) || !fs::exists(plain, ignored)) return gz;
  return plain;
}

torch::Tensor read_part(const fs::path& path) {
  std::error_code ignored;
  if (!fs::exists(path, ignored))
    throw Error(path, std::string("Fashion-MNIST file not found (the Debian package ") + kPackage +
                          " provides it: apt-get install " + kPackage + ")");
  return read_idx(path);
}

// [N, 28, 28] uint8 -> [N, 3, 32, 32] float32: /255, a 2-pixel zero border, three equal channels.
torch::Tensor to_padded_rgb(const torch::Tensor& grey) {
  const int64_t count = grey.size(0);
  torch::Tensor rgb = torch::empty({count, 3, kPadded, kPadded}, torch::kFloat);
  std::array<float, 256> scale{};
  for (size_t v = 0; v < scale.size(); ++v) scale[v] = static_cast<float>(v) / 255.0f;

  const uint8_t* in = grey.data_ptr<uint8_t>();
  float* out = rgb.data_ptr<float>();
  at::parallel_for(0, count, 256, [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n) {
      float* plane = out + n * 3 * kPadded * kPadded;
      const uint8_t* image = in + n * kSide * kSide;
      std::fill(plane, plane + kPad * kPadded, 0.0f);
      for (int64_t y = 0; y < kSide; ++y) {
        float* row = plane + (y + kPad) * kPadded;
        std::fill(row, row + kPad, 0.0f);
        for (int64_t x = 0; x < kSide; ++x) row[kPad + x] = scale[image[y * kSide + x]];
        std::fill(row + kPad + kSide, row + kPadded, 0.0f);
      }
      std::fill(plane + (kPad + kSide) * kPadded, plane + kPadded * kPadded, 0.0f);
      std::copy(plane, plane + kPadded * kPadded, plane + kPadded * kPadded);
      std::copy(plane, plane + kPadded * kPadded, plane + 2 * kPadded * kPadded);
    }
  });
  return rgb;
}

}  // namespace

fs::path default_fashion_folder() { return "/usr/share/datasets/fashion-mnist"; }

const std::vector<std::string>& FashionMnist::class_names() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                 "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return names;
}

FashionMnist FashionMnist::load(const fs::path& folder, bool train) {
  std::error_code error;
  if (!fs::is_directory(folder, error))
    throw Error(folder, std::string("Fashion-MNIST data folder not found (the Debian package ") + kPackage +
                            " provides it: apt-get install " + kPackage + ")");
  const std::string split = train ? "train" : "t10k";
  const fs::path images_path = data_file(folder, split + "-images-idx3-ubyte");
  const fs::path labels_path = data_file(folder, split + "-labels-idx1-ubyte");

  // The labels are tiny; read them first so their errors come without decoding the images.
  const torch::Tensor labels = read_part(labels_path);
  if (labels.scalar_type() != c10::kByte || labels.dim() != 1)
    throw Error(labels_path, "expected a 1-d uint8 IDX file of labels, found " + std::to_string(labels.dim()) + "-d " +
                                 c10::toString(labels.scalar_type()));
  const uint8_t* label_data = labels.data_ptr<uint8_t>();
  for (int64_t i = 0; i < labels.numel(); ++i)
    if (label_data[i] >= kClasses)
      throw Error(labels_path, "label " + std::to_string(label_data[i]) + " at index " + std::to_string(i) +
                                   " is outside [0, " + std::to_string(kClasses) + ")");

  const torch::Tensor grey = read_part(images_path);
  if (grey.scalar_type() != c10::kByte || grey.dim() != 3 || grey.size(1) != kSide || grey.size(2) != kSide) {
    std::string shape;
    for (int64_t i = 0; i < grey.dim(); ++i) shape += (i > 0 ? " x " : "") + std::to_string(grey.size(i));
    throw Error(images_path, "expected uint8 images of N x 28 x 28, found " +
                                 std::string(c10::toString(grey.scalar_type())) + " " + shape);
  }
  if (grey.size(0) != labels.size(0))
    throw Error(images_path, "holds " + std::to_string(grey.size(0)) + " images but " + labels_path.string() +
                                 " holds " + std::to_string(labels.size(0)) + " labels");

  FashionMnist data;
  data.images = to_padded_rgb(grey);
  data.labels = labels.to(torch::kLong);
  return data;
}

}  // namespace linkstyle
