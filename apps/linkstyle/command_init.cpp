#include <filesystem>

#include <fmt/format.h>

#include "commands.hpp"
#include "linkstyle/errors.hpp"
#include "linkstyle/tiny_models.hpp"

namespace linkstyle::cli {

void register_init(CLI::App& app, GlobalOptions& global) {
  struct Options {
    std::string folder;
    std::string classifier, generator, segmenter;
    bool tiny = false;
    bool force = false;
    PairsSettings pairs;
    uint64_t tiny_seed = 0;
    int64_t sweep_samples_per_class = SweepSettings().samples_per_class;
  };
  auto options = std::make_shared<Options>();
  auto* command = app.add_subcommand("init", "create a study folder with study.toml");
  command->add_option("folder", options->folder, "study folder to create")->required();
  command->add_option("--classifier", options->classifier, "classifier TorchScript file");
  command->add_option("--generator", options->generator, "generator TorchScript file");
  command->add_option("--segmenter", options->segmenter,
                      "part segmenter TorchScript file (segment(images) -> [N,K,H,W]) for the sweep measures");
  command
      ->add_option("--sweep-samples-per-class", options->sweep_samples_per_class,
                   "tuning samples per class of the sweeps")
      ->capture_default_str();
  command->add_flag("--tiny", options->tiny, "build small random models into <folder>/models and use them");
  command->add_option("--tiny-seed", options->tiny_seed, "seed of the tiny models")->capture_default_str();
  command->add_option("--classes", options->pairs.classes, "generator classes (default: all)")->delimiter(',');
  command->add_option("--samples-per-class", options->pairs.samples_per_class)->capture_default_str();
  command->add_option("--psi", options->pairs.psi, "truncation")->capture_default_str();
  command->add_option("--seed", options->pairs.seed)->capture_default_str();
  command->add_option("--batch-size", options->pairs.batch_size)->capture_default_str();
  command->add_option("--shard-size", options->pairs.shard_size)->capture_default_str();
  command->add_flag("--force", options->force, "overwrite an existing study.toml");
  command->callback([options, &global]() {
    namespace fs = std::filesystem;
    StudyConfig config;
    config.folder = options->folder;
    config.pairs = options->pairs;
    if (fs::exists(config.config_file()) && !options->force)
      throw Error(config.config_file(), "already exists (use --force to overwrite)");
    // A failed init leaves nothing behind: it removes the study folder (or tiny models) it created.
    struct Rollback {
      fs::path created;  // cleared on success
      ~Rollback() {
        std::error_code ignored;
        if (!created.empty()) fs::remove_all(created, ignored);
      }
    } rollback;
    if (!fs::exists(config.folder))
      rollback.created = config.folder;
    else if (options->tiny && !fs::exists(config.folder / "models"))
      rollback.created = config.folder / "models";
    if (options->tiny) {
      if (!options->classifier.empty() || !options->generator.empty())
        throw Error("--tiny", "builds its own models; do not pass --classifier/--generator with it");
      TinyModelSpec spec;
      spec.seed = options->tiny_seed;
      auto paths = write_tiny_models(config.folder / "models", spec);
      config.classifier = paths.classifier;
      config.generator = paths.generator;
    } else {
      if (options->classifier.empty() || options->generator.empty())
        throw Error("init", "pass --classifier and --generator (or --tiny for small built-in models)");
      config.classifier = fs::absolute(options->classifier);
      config.generator = fs::absolute(options->generator);
    }
    if (!options->segmenter.empty()) {
      if (!fs::exists(options->segmenter)) throw Error(options->segmenter, "no such segmenter file");
      config.segmenter = fs::absolute(options->segmenter);
    }
    config.sweep.samples_per_class = options->sweep_samples_per_class;
    configure_runtime(global.runtime);
    // Check the models and classes now, so a study never starts from a broken configuration.
    auto classifier = Classifier::load(config.classifier, c10::Device(c10::kCPU));
    auto generator = Generator::load(config.generator, c10::Device(c10::kCPU));
    for (int64_t c : config.pairs.classes)
      if (c < 0 || c >= generator.num_classes())
        throw Error("--classes",
                    fmt::format("class {} is out of range: the generator has {} classes", c, generator.num_classes()));
    write_study(config);
    load_study(config.folder);  // what we wrote must read back
    rollback.created.clear();
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
