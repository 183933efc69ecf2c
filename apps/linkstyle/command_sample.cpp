#include <filesystem>

#include <fmt/format.h>

#include "commands.hpp"
#include "linkstyle/generation.hpp"

namespace linkstyle::cli {

void register_sample(CLI::App& app, GlobalOptions& global) {
  struct Options {
    std::string folder = ".";
    std::string output;
    int64_t per_class = 2;
    uint64_t seed = 1000;
  };
  auto options = std::make_shared<Options>();
  auto* command = app.add_subcommand("sample", "write generator samples of the study's classes as PNG files");
  add_study_option(*command, options->folder);
  map_setting(global, "sample.per_class",
              command->add_option("--per-class", options->per_class, "images per class")->capture_default_str());
  command->add_option("--seed", options->seed, "latent seed (pick one other than the pairs' seed)")
      ->capture_default_str();
  command->add_option("-o,--output", options->output, "output folder (default: <study>/samples)");
  command->callback([options, &global]() {
    namespace fs = std::filesystem;
    auto [study, classifier, generator] = load_study_models(options->folder, global);
    const fs::path output = options->output.empty() ? study.folder / "samples" : fs::path(options->output);
    const auto files = write_class_samples(study, generator, options->per_class, options->seed, output);
    std::vector<std::string> written;
    for (const auto& file : files) written.push_back(file.string());
    print_summary(global, {{"output", output.string()}, {"images", written}},
                  fmt::format("sample: wrote {} images to {}", written.size(), output.string()));
  });
}

}  // namespace linkstyle::cli
