#include <fmt/format.h>
#include <torch/torch.h>

#include "linkstyle/errors.hpp"
#include "linkstyle/generation.hpp"
#include "linkstyle/models.hpp"
#include "linkstyle/part_sources.hpp"
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
  if (!request.judge.empty()) {
    if (!fs::exists(request.judge)) throw Error(request.judge, "no such judge file");
    config.judge = fs::absolute(request.judge);
  }
}

// Every class of the study exists in both models; class names that differ are returned.
std::vector<std::string> check_classes(const StudyConfig& config, const Classifier& classifier,
                                       const Generator& generator) {
  const auto& p = config.pairs;
  const std::vector<StudyClass> classes = study_classes(config, generator);
  std::vector<std::string> mismatches;
  for (const StudyClass& study_class : classes) {
    const int64_t c = study_class.generator_class, k = study_class.classifier_class;
    if (c < 0 || c >= generator.num_classes())
      throw SettingError("pairs.classes", fmt::format("class {} is out of range: the generator has {} classes", c,
                                                      generator.num_classes()));
    if (k >= classifier.num_classes())
      throw SettingError(p.classifier_classes.empty() ? "pairs.classes" : "pairs.classifier_classes",
                         fmt::format("generator class {} is classifier class {}, but the classifier has {} classes "
                                     "(map them with pairs.classifier_classes)",
                                     c, k, classifier.num_classes()));
    if (!classifier.class_names().empty() && !generator.class_names().empty() &&
        classifier.class_name(k) != study_class.name)
      mismatches.push_back(fmt::format("{} -> {}", study_class.name, classifier.class_name(k)));
  }
  std::vector<std::string> warnings;
  if (!mismatches.empty())
    warnings.push_back(fmt::format("{} of {} classes have other names in the generator than in the classifier ({}{}): "
                                   "are these the models you meant?",
                                   mismatches.size(), classes.size(), mismatches.front(),
                                   mismatches.size() > 1 ? ", ..." : ""));
  return warnings;
}

// One batch from end to end must be finite: a model that gives NaN or Inf would poison every stage.
void check_models_give_finite_values(const StudyConfig& config, const Classifier& classifier,
                                     const Generator& generator) {
  const int64_t c = config.pairs.classes.empty() ? 0 : config.pairs.classes.front();
  const auto samples = generate_and_encode(generator, classifier, config.pairs.seed, c, 0, 2, config.pairs.psi);
  if (!torch::isfinite(samples.latents).all().item<bool>())
    throw Error(generator.file(), fmt::format("mapping gives NaN or Inf (class {})", c));
  if (!torch::isfinite(samples.features).all().item<bool>())
    throw Error(classifier.file(), "features gives NaN or Inf for generated images");
  if (!torch::isfinite(classifier.head(samples.features)).all().item<bool>())
    throw Error(classifier.file(), "head gives NaN or Inf for generated images");
}

}  // namespace

StudyConfig create_study(const NewStudy& request, std::vector<std::string>* warnings) {
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
  config.sweep.samples_per_class = request.sweep_samples_per_class;
  check_study_settings(config);
  choose_models(request, config);
  // Check the models and classes now, so a study never starts from a broken configuration.
  const auto classifier = Classifier::load(config.classifier, c10::Device(c10::kCPU));
  const auto generator = Generator::load(config.generator, c10::Device(c10::kCPU));
  if (!config.segmenter.empty()) load_segmenter_parts(config.segmenter, c10::Device(c10::kCPU));
  if (!config.judge.empty()) Classifier::load(config.judge, c10::Device(c10::kCPU));
  const auto class_warnings = check_classes(config, classifier, generator);
  check_models_give_finite_values(config, classifier, generator);
  write_study(config);
  load_study(config.folder);  // what was written must read back
  rollback.created.clear();
  if (warnings) {
    warnings->insert(warnings->end(), generator.load_warnings().begin(), generator.load_warnings().end());
    warnings->insert(warnings->end(), class_warnings.begin(), class_warnings.end());
  }
  return config;
}

}  // namespace linkstyle
