// `linkstyle render`: real images of a built-in world as PNG files (inputs for reconstruct).
#include <cctype>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "commands.hpp"
#include "linkstyle/atomic_file.hpp"
#include "linkstyle/errors.hpp"
#include "linkstyle/reconstruct.hpp"
#include "linkstyle/worlds/fashion.hpp"
#include "linkstyle/worlds/shapes.hpp"

namespace linkstyle::cli {

void register_render(CLI::App& app, GlobalOptions& global) {
  struct Options {
    std::string world, output, fashion_folder;
    int64_t count = 6, resolution = 64;
    uint64_t seed = 0;
  };
  auto options = std::make_shared<Options>();
  auto* command = app.add_subcommand("render",
                                     "write real images of a built-in world as PNG files, with their labels (and, for "
                                     "shapes, factors) in images.json");
  command->add_option("--world", options->world, "shapes or fashion")
      ->required()
      ->check(CLI::IsMember({"shapes", "fashion"}));
  command->add_option("-o,--output", options->output, "output folder")->required();
  command->add_option("--count", options->count, "images (shapes: classes in turn)")->capture_default_str();
  command->add_option("--seed", options->seed, "shapes: scene seed; fashion: first test image")->capture_default_str();
  command->add_option("--resolution", options->resolution, "shapes: image side")->capture_default_str();
  command->add_option("--fashion-folder", options->fashion_folder, "Fashion-MNIST files (default: Debian's)");
  command->callback([options, &global]() {
    namespace fs = std::filesystem;
    if (options->count < 1) throw Error("--count", "must be >= 1");
    torch::Tensor images, labels, factors;
    std::vector<std::string> class_names;
    if (options->world == "shapes") {
      const ShapesWorld world(options->resolution);
      auto batch = world.render_class_balanced(options->count, options->seed);
      images = batch.images;
      labels = batch.labels;
      factors = batch.factors;
      class_names = ShapesWorld::class_names();
    } else {
      const auto test = FashionMnist::load(
          options->fashion_folder.empty() ? default_fashion_folder() : fs::path(options->fashion_folder), false);
      if (options->seed + static_cast<uint64_t>(options->count) > static_cast<uint64_t>(test.images.size(0)))
        throw Error("--seed", fmt::format("images {}..{} run past the {} test images", options->seed,
                                          options->seed + options->count - 1, test.images.size(0)));
      images = test.images.narrow(0, static_cast<int64_t>(options->seed), options->count);
      labels = test.labels.narrow(0, static_cast<int64_t>(options->seed), options->count);
      class_names = FashionMnist::class_names();
    }
    const fs::path output = options->output;
    ensure_writable_directory(output);
    nlohmann::json listing = nlohmann::json::array();
    std::vector<std::string> written;
    for (int64_t i = 0; i < options->count; ++i) {
      const int64_t label = labels[i].item<int64_t>();
      std::string class_name = class_names[static_cast<size_t>(label)];
      for (char& ch : class_name)  // "T-shirt/top" -> "T-shirt_top": one plain file name
        if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-') ch = '_';
      const std::string name = fmt::format("{}-{}-{}.png", options->world, i, class_name);
      write_image_row(output / name, {images.slice(0, i, i + 1)}, static_cast<int>(images.size(2)));
      nlohmann::json entry = {{"file", name}, {"label", label}, {"class", class_names[static_cast<size_t>(label)]}};
      if (factors.defined()) {
        const auto row = factors[i].contiguous();
        entry["factors"] = std::vector<float>(row.data_ptr<float>(), row.data_ptr<float>() + row.numel());
      }
      listing.push_back(entry);
      written.push_back((output / name).string());
    }
    nlohmann::json document = {{"world", options->world}, {"images", listing}};
    if (factors.defined()) document["factor_names"] = ShapesWorld::factor_names();
    write_file_atomically(output / "images.json", document.dump(2) + "\n");
    print_summary(global, {{"output", output.string()}, {"images", written}},
                  fmt::format("render: wrote {} {} images to {}", written.size(), options->world, output.string()));
  });
}

}  // namespace linkstyle::cli
