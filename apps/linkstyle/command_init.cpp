#include <filesystem>

#include <fmt/format.h>

#include "commands.hpp"

namespace linkstyle::cli {

void register_init(CLI::App& app, GlobalOptions& global) {
  auto request = std::make_shared<NewStudy>();
  auto folder = std::make_shared<std::string>();
  auto* command = app.add_subcommand("init", "create a study folder with study.toml");
  command->add_option("folder", *folder, "study folder to create")->required();
  command->add_option("--classifier", request->classifier, "classifier TorchScript file");
  command->add_option("--generator", request->generator, "generator TorchScript file");
  command->add_option("--segmenter", request->segmenter,
                      "part segmenter TorchScript file (segment(images) -> [N,K,H,W]) for the sweep measures");
  command->add_option("--judge", request->judge,
                      "a second classifier trained apart (same class names): judges the counterfactuals");
  map_setting(global, "sweep.samples_per_class",
              command
                  ->add_option("--sweep-samples-per-class", request->sweep_samples_per_class,
                               "tuning samples per class of the sweeps")
                  ->capture_default_str());
  map_setting(
      global, "init.tiny",
      command->add_flag("--tiny", request->tiny, "build small random models into <folder>/models and use them"));
  command->add_option("--tiny-seed", request->tiny_seed, "seed of the tiny models")->capture_default_str();
  map_setting(
      global, "pairs.classes",
      command->add_option("--classes", request->pairs.classes, "generator classes (default: all)")->delimiter(','));
  map_setting(global, "pairs.samples_per_class",
              command->add_option("--samples-per-class", request->pairs.samples_per_class)->capture_default_str());
  map_setting(global, "pairs.psi",
              command->add_option("--psi", request->pairs.psi, "truncation")->capture_default_str());
  command->add_option("--seed", request->pairs.seed)->capture_default_str();
  map_setting(global, "pairs.batch_size",
              command->add_option("--batch-size", request->pairs.batch_size)->capture_default_str());
  map_setting(global, "pairs.shard_size",
              command->add_option("--shard-size", request->pairs.shard_size)->capture_default_str());
  command->add_flag("--force", request->force, "overwrite an existing study.toml");
  command->callback([request, folder, &global]() {
    request->folder = *folder;
    std::vector<std::string> warnings;
    const auto config = create_study(*request, &warnings);  // tiny models are built with torch's default threads
    configure_runtime(global.runtime);
    print_warnings(warnings);
    print_summary(global,
                  {{"study", config.folder.string()},
                   {"config", config.config_file().string()},
                   {"classifier", config.classifier.string()},
                   {"generator", config.generator.string()}},
                  fmt::format("wrote {} (classifier {}, generator {})", config.config_file().string(),
                              config.classifier.string(), config.generator.string()));
  });
}

}  // namespace linkstyle::cli
