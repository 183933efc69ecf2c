#include <filesystem>

#include <fmt/format.h>

#include "commands.hpp"
#include "linkstyle/errors.hpp"
#include "linkstyle/reconstruct.hpp"
#include "linkstyle/study_linking.hpp"

namespace linkstyle::cli {

void register_reconstruct(CLI::App& app, GlobalOptions& global) {
  struct Options {
    std::string folder = ".";
    std::string output;
    std::string linking;
    std::vector<std::string> images;
    int side = 256;
  };
  auto options = std::make_shared<Options>();
  auto* command = app.add_subcommand("reconstruct", "show how the classifier sees images: x -> r -> L(r) -> G");
  add_study_option(*command, options->folder);
  command->add_option("images", options->images, "image files (PNG, JPEG, ...)")->required();
  command->add_option("-o,--output", options->output, "output folder (default: <study>/reconstructions)");
  command->add_option("--linking", options->linking, "linking network (default: <study>/linking/linking.safetensors)");
  map_setting(global, "reconstruct.side",
              command->add_option("--side", options->side, "pixels per panel in the PNG")->capture_default_str());
  command->callback([options, &global]() {
    namespace fs = std::filesystem;
    ReconstructionOptions reconstruction;
    reconstruction.display_side = options->side;
    check_reconstruction_options(reconstruction);
    auto [study, classifier, generator] = load_study_models(options->folder, global);
    const auto network = load_study_linking(study, classifier, generator, options->linking);
    reconstruction.output_folder = options->output.empty() ? study.reconstructions_folder() : fs::path(options->output);
    std::vector<fs::path> images(options->images.begin(), options->images.end());
    auto results = reconstruct_images(classifier, generator, network, images, reconstruction);
    int64_t same = 0;
    double cosine = 0.0;
    for (const auto& r : results) same += r["same_class"].get<bool>(), cosine += r["feature_cosine"].get<double>();
    const double n = static_cast<double>(results.size());
    print_summary(global,
                  {{"output", reconstruction.output_folder.string()},
                   {"images", results},
                   {"same_class_rate", same / n},
                   {"mean_feature_cosine", cosine / n}},
                  fmt::format("reconstruct: {} images -> {}; same top-1 class for {}/{}, mean cosine(r, r') {:.3f}",
                              results.size(), reconstruction.output_folder.string(), same, results.size(), cosine / n));
  });
}

}  // namespace linkstyle::cli
