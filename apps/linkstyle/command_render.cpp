// `linkstyle render`: real images of a built-in world as PNG files (inputs for reconstruct).
#include <fmt/format.h>

#include "commands.hpp"
#include "linkstyle/worlds/world_images.hpp"

namespace linkstyle::cli {

void register_render(CLI::App& app, GlobalOptions& global) {
  auto request = std::make_shared<WorldImagesRequest>();
  auto* command = app.add_subcommand("render",
                                     "write real images of a built-in world as PNG files, with their labels (and, for "
                                     "shapes, factors) in images.json");
  command->add_option("--world", request->world, "shapes or fashion")
      ->required()
      ->check(CLI::IsMember({"shapes", "fashion"}));
  command->add_option("-o,--output", request->output, "output folder")->required();
  map_setting(
      global, "render.count",
      command->add_option("--count", request->count, "images (shapes: classes in turn)")->capture_default_str());
  map_setting(global, "render.seed",
              command->add_option("--seed", request->seed, "shapes: scene seed; fashion: first test image")
                  ->capture_default_str());
  command->add_option("--resolution", request->resolution, "shapes: image side")->capture_default_str();
  command->add_option("--fashion-folder", request->fashion_folder, "Fashion-MNIST files (default: Debian's)");
  command->callback([request, &global]() {
    const auto files = write_world_images(*request);
    std::vector<std::string> written;
    for (const auto& file : files) written.push_back(file.string());
    print_summary(
        global, {{"output", request->output.string()}, {"images", written}},
        fmt::format("render: wrote {} {} images to {}", written.size(), request->world, request->output.string()));
  });
}

}  // namespace linkstyle::cli
