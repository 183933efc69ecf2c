#include <fmt/format.h>
#include <torch/torch.h>

#include "linkstyle/errors.hpp"
#include "linkstyle/models.hpp"
#include "linkstyle/study.hpp"
#include "linkstyle/tiny_models.hpp"

namespace linkstyle {

namespace fs = std::filesystem;

namespace {

// Removes what a failed creation made, unless released.
struct Rollback {
  fs::path created;  // cleared on success
  ~Rollback() {
    std::error_code ignored;
    if (!created.empty()) fs::remove_all(created, ignored);
  }
};

void choose_models(const NewStudy& request, StudyConfig& config) {
  if (request.tiny) {
    if (!request.classifier.empty() || !request.generator.empty())
      throw SettingError("init.tiny", "builds its own models; do not pass --classifier/--generator with it");
    TinyModelSpec spec;
    spec.seed = request.tiny_seed;
    const auto paths = write_tiny_models(config.folder / "models", spec);
    config.classifier = paths.classifier;
    config.generator = paths.generator;
  } else {
    if (request.classifier.empty() || request.generator.empty())
      throw Error("init", "pass --classifier and --generator (or --tiny for small built-in models)");
    config.classifier = fs::absolute(request.classifier);
    config.generator = fs::absolute(request.generator);
  }
  if (!request.segmenter.empty()) {
    if (!fs::exists(request.segmenter)) throw Error(request.segmenter, "no such segmenter file");
    config.segmenter = fs::absolute(request.segmenter);
  }
}

}  // namespace

StudyConfig create_study(const NewStudy& request) {
  StudyConfig config;
  config.folder = request.folder;
  config.pairs = request.pairs;
  if (fs::exists(config.config_file()) && !request.force)
    throw Error(config.config_file(), "already exists (use --force to overwrite)");
  Rollback rollback;
  if (!fs::exists(config.folder))
    rollback.created = config.folder;
  else if (request.tiny && !fs::exists(config.folder / "models"))
    rollback.created = config.folder / "models";
  choose_models(request, config);
  config.sweep.samples_per_class = request.sweep_samples_per_class;
  // Check the models and classes now, so a study never starts from a broken configuration.
  const auto classifier = Classifier::load(config.classifier, c10::Device(c10::kCPU));
  const auto generator = Generator::load(config.generator, c10::Device(c10::kCPU));
  for (int64_t c : config.pairs.classes)
    if (c < 0 || c >= generator.num_classes())
      throw SettingError("pairs.classes", fmt::format("class {} is out of range: the generator has {} classes", c,
                                                      generator.num_classes()));
  write_study(config);
  load_study(config.folder);  // what was written must read back
  rollback.created.clear();
  return config;
}

}  // namespace linkstyle
