#include "linkstyle/worlds/world_images.hpp"

#include <cctype>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "linkstyle/atomic_file.hpp"
#include "linkstyle/errors.hpp"
#include "linkstyle/image_files.hpp"
#include "linkstyle/worlds/fashion.hpp"
#include "linkstyle/worlds/shapes.hpp"

namespace linkstyle {

namespace fs = std::filesystem;

namespace {

struct WorldImages {
  torch::Tensor images, labels, factors;  // factors: shapes only
  std::vector<std::string> class_names;
};

WorldImages world_images(const WorldImagesRequest& request) {
  if (request.count < 1) throw SettingError("render.count", "must be >= 1");
  if (request.world == "shapes") {
    const ShapesWorld world(request.resolution);
    auto batch = world.render_class_balanced(request.count, request.seed);
    return {batch.images, batch.labels, batch.factors, ShapesWorld::class_names()};
  }
  if (request.world != "fashion") throw SettingError("render.world", "must be shapes or fashion");
  const auto test =
      FashionMnist::load(request.fashion_folder.empty() ? default_fashion_folder() : request.fashion_folder, false);
  if (request.seed + static_cast<uint64_t>(request.count) > static_cast<uint64_t>(test.images.size(0)))
    throw SettingError("render.seed", fmt::format("images {}..{} run past the {} test images", request.seed,
                                                  request.seed + request.count - 1, test.images.size(0)));
  return {test.images.narrow(0, static_cast<int64_t>(request.seed), request.count),
          test.labels.narrow(0, static_cast<int64_t>(request.seed), request.count), torch::Tensor(),
          FashionMnist::class_names()};
}

// "T-shirt/top" -> "T-shirt_top": one plain file name.
std::string file_name_part(std::string name) {
  for (char& ch : name)
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-') ch = '_';
  return name;
}

}  // namespace

std::vector<fs::path> write_world_images(const WorldImagesRequest& request) {
  const auto rendered = world_images(request);
  ensure_writable_directory(request.output);
  nlohmann::json listing = nlohmann::json::array();
  std::vector<fs::path> written;
  for (int64_t i = 0; i < request.count; ++i) {
    const int64_t label = rendered.labels[i].item<int64_t>();
    const std::string& class_name = rendered.class_names[static_cast<size_t>(label)];
    const std::string name = fmt::format("{}-{}-{}.png", request.world, i, file_name_part(class_name));
    write_image_row(request.output / name, {rendered.images.slice(0, i, i + 1)},
                    static_cast<int>(rendered.images.size(2)));
    nlohmann::json entry = {{"file", name}, {"label", label}, {"class", class_name}};
    if (rendered.factors.defined()) {
      const auto row = rendered.factors[i].contiguous();
      entry["factors"] = std::vector<float>(row.data_ptr<float>(), row.data_ptr<float>() + row.numel());
    }
    listing.push_back(entry);
    written.push_back(request.output / name);
  }
  nlohmann::json document = {{"world", request.world}, {"images", listing}};
  if (rendered.factors.defined()) document["factor_names"] = ShapesWorld::factor_names();
  write_file_atomically(request.output / "images.json", document.dump(2) + "\n");
  return written;
}

}  // namespace linkstyle
