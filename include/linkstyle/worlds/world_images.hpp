// linkstyle/worlds/world_images.hpp
//
// WHAT THIS REPRESENTS
//   `linkstyle render`: real images of a built-in world (shapes or fashion) as PNG files, inputs
//   for reconstructions, listed with their labels (and, for shapes, their factors) in images.json.
// REQUIRES
//   world "shapes" or "fashion"; count >= 1; for fashion, images seed .. seed + count - 1 exist in
//   the test set.
// ENSURES
//   Files are named <world>-<i>-<class>.png (the class name with anything but letters, digits and
//   '-' replaced by '_'); images.json is written last, atomically. Errors name the setting
//   ("render.count", "render.seed") or the file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace linkstyle {

struct WorldImagesRequest {
  std::string world;                     // "shapes" or "fashion"
  std::filesystem::path output;          // folder
  std::filesystem::path fashion_folder;  // Fashion-MNIST files (empty: Debian's)
  int64_t count = 6;                     // images (shapes: the classes in turn)
  int64_t resolution = 64;               // shapes: image side
  uint64_t seed = 0;                     // shapes: scene seed; fashion: first test image
};

std::vector<std::filesystem::path> write_world_images(const WorldImagesRequest& request);

}  // namespace linkstyle
