// Training of the worlds' built-in classifiers: options, the run, the planted units' check and
// the model card (see classifier_training.hpp). The networks and the data live in
// src/train/classifier/.
#include "linkstyle/train/classifier_training.hpp"

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/script.h>
#include <torch/torch.h>

#include "linkstyle/errors.hpp"
#include "linkstyle/planted_unit_scoring.hpp"
#include "linkstyle/planted_units.hpp"
#include "linkstyle/train/training_run.hpp"
#include "train/classifier/data.hpp"
#include "train/classifier/networks.hpp"
#include "train/training_common.hpp"

namespace linkstyle {

namespace fs = std::filesystem;

using namespace classifier_training;

namespace {

const char* const kLogHeader = "step,loss,train_accuracy,seconds";
const char* const kPlantedLogHeader = "step,loss,train_accuracy,planted_rmse,seconds";

torch::Tensor call(torch::jit::Module& module, const char* method, const torch::Tensor& x) {
  return module.get_method(method)({x}).toTensor();
}

void check_options(const ClassifierTrainingOptions& options) {
  training::check_world(options.world);
  if (options.batch_size < 1) throw Error("--batch-size", "must be >= 1, got " + std::to_string(options.batch_size));
  if (!(options.learning_rate > 0)) throw Error("--learning-rate", "must be > 0");
  if (options.world == "shapes" && options.test_images < 1)
    throw Error("--test-images", "must be >= 1, got " + std::to_string(options.test_images));
  if (options.planted && options.world != "shapes") throw Error("--planted", "needs the shapes world");
  if (options.planted && !(options.planted_weight > 0)) throw Error("--planted-weight", "must be > 0");
  if (options.architecture != "resnet" && options.architecture != "plain")
    throw Error("--architecture", "must be resnet or plain, not '" + options.architecture + "'");
  if (options.planted && options.architecture != "resnet") throw Error("--planted", "needs --architecture resnet");
  if (options.width < 1 || options.width > 256) throw Error("--width", "must be in [1, 256]");
}

TrainingRunOptions run_options(const ClassifierTrainingOptions& options) {
  return training_run_options(options, options.planted ? kPlantedLogHeader : kLogHeader,
                              "train " + options.world + " classifier");
}

// A flag of a checkpoint that older checkpoints lack (false then).
bool checkpoint_flag(torch::serialize::InputArchive& checkpoint, const std::string& key) {
  c10::IValue value;
  return checkpoint.try_read(key, value) && value.isBool() && value.toBool();
}

// The classifier's part of a training run: the ResNet and its Adam, cross-entropy steps on the
// world's batches at a cosine-decayed learning rate.
class ClassifierSteps final : public TrainingSteps {
 public:
  ClassifierSteps(const ClassifierTrainingOptions& options, const TrainingData& data)
      : options_(options), data_(data), model_(options.learning_rate) {
    if (options.planted) {
      planted_ = default_planted_units();
      std::vector<int64_t> index;
      for (const auto& unit : planted_) index.push_back(unit.unit);
      planted_index_ = torch::tensor(index, torch::kLong);
    }
  }

  void start_fresh() override {
    if (options_.architecture == "plain") {
      model_.start(build_plain_classifier(world_class_names(options_.world), options_.seed, options_.width));
      return;
    }
    model_.start(build_resnet_classifier(world_class_names(options_.world), options_.seed, 32,
                                         options_.planted ? default_planted_units() : std::vector<PlantedUnit>{}));
  }

  void check_settings(torch::serialize::InputArchive& checkpoint, const fs::path& file) override {
    const std::string world = training::read_value(checkpoint, "world").toStringRef();
    const int64_t seed = training::read_value(checkpoint, "seed").toInt();
    const int64_t batch_size = training::read_value(checkpoint, "batch_size").toInt();
    const bool planted = checkpoint_flag(checkpoint, "planted");
    const bool plain = checkpoint_flag(checkpoint, "plain");
    c10::IValue stored_width;
    const int64_t width = checkpoint.try_read("width", stored_width) ? stored_width.toInt() : options_.width;
    if (world != options_.world || seed != static_cast<int64_t>(options_.seed) || batch_size != options_.batch_size ||
        planted != options_.planted || plain != (options_.architecture == "plain") || width != options_.width)
      throw Error(file, "was made for world " + world + ", seed " + std::to_string(seed) + ", batch size " +
                            std::to_string(batch_size) + (planted ? ", --planted" : "") +
                            (plain ? ", --architecture plain --width " + std::to_string(width) : "") +
                            "; rerun with those options or remove the checkpoint folder");
  }

  void restore_state(torch::serialize::InputArchive& checkpoint) override { model_.restore(checkpoint); }
  void save_state(torch::serialize::OutputArchive& checkpoint) override { model_.save(checkpoint); }

  void save_settings(torch::serialize::OutputArchive& checkpoint) override {
    checkpoint.write("seed", c10::IValue(static_cast<int64_t>(options_.seed)));
    checkpoint.write("world", c10::IValue(options_.world));
    checkpoint.write("batch_size", c10::IValue(options_.batch_size));
    checkpoint.write("planted", c10::IValue(options_.planted));
    checkpoint.write("plain", c10::IValue(options_.architecture == "plain"));
    checkpoint.write("width", c10::IValue(options_.width));
  }

  StepRecord step(int64_t step) override {
    const Batch batch = data_.batch(step);
    const double learning_rate = training::cosine_learning_rate(options_.learning_rate, step, options_.steps);
    if (!options_.planted) return model_.cross_entropy_step("forward", batch.images, batch.labels, learning_rate);
    // Planted units: the class loss plus the mean squared error of the planted units against
    // their targets, weighted by planted_weight.
    const auto targets = planted_targets(planted_, batch.factors, batch.labels);
    return model_.optimise_step(learning_rate, [&](torch::jit::Module& module) {
      const auto features = call(module, "features", batch.images);
      const auto logits = call(module, "head", features);
      const auto class_loss = torch::nn::functional::cross_entropy(logits, batch.labels);
      const auto planted_error = (features.index_select(1, planted_index_) - targets).pow(2).mean();
      const auto loss = class_loss + options_.planted_weight * planted_error;
      const double accuracy = (logits.detach().argmax(1) == batch.labels).to(torch::kFloat).mean().item<double>();
      const double loss_value = loss.item<double>();
      char fields[128];
      std::snprintf(fields, sizeof fields, "%.6f,%.6f,%.6f", loss_value, accuracy,
                    std::sqrt(planted_error.item<double>()));
      return training::AdamTrainedModule::StepLoss{loss, {{loss_value}, fields}};
    });
  }

  training::AdamTrainedModule& model() { return model_; }

 private:
  const ClassifierTrainingOptions& options_;
  const TrainingData& data_;
  training::AdamTrainedModule model_;
  std::vector<PlantedUnit> planted_;
  torch::Tensor planted_index_;
};

nlohmann::json model_card(const ClassifierTrainingOptions& options, double accuracy) {
  nlohmann::json card = {
      {"world", options.world},
      {"architecture", options.architecture == "plain" ? plain_architecture(options.width) : kResnetArchitecture},
      {"feature_dim", options.architecture == "plain" ? plain_widths(options.width).back() : int64_t{256}},
      {"num_classes", world_class_names(options.world).size()},
      {"class_names", world_class_names(options.world)},
      {"input_size", 32},
      {"seed", options.seed},
      {"batch_size", options.batch_size},
      {"learning_rate", options.learning_rate},
      {"test_accuracy", accuracy},
      {"test_images", options.world == "shapes" ? options.test_images : int64_t{10000}},
  };
  if (options.planted) card["planted_weight"] = options.planted_weight;
  if (options.architecture != "resnet") card["architecture_name"] = options.architecture;
  return card;
}

}  // namespace

ClassifierTrainingResult train_classifier(const ClassifierTrainingOptions& options) {
  check_options(options);
  TrainingRun run(run_options(options));
  const TrainingData data(options);  // checks the seed and reads the data before anything is written
  ClassifierSteps steps(options, data);
  run.train(steps);

  torch::NoGradGuard no_grad;
  torch::jit::Module& module = steps.model().finish();
  const double accuracy = test_accuracy(options.world, options.test_images, options.fashion_folder,
                                        [&](const torch::Tensor& x) { return call(module, "forward", x); });
  run.save_model(module);
  auto written = Classifier::load(options.output, c10::Device(c10::kCPU));  // the contract holds
  auto card = model_card(options, accuracy);
  if (options.planted) {
    // Each planted unit against its target on held-out renders; a unit the network did not learn
    // to track (r < kPlantingBar) is released as a free unit, so that every planted unit is
    // ground truth; the card lists both.
    constexpr double kPlantingBar = 0.96;
    const uint64_t check_seed = kShapesTestSeedBase >> 1;
    const auto check = check_planted_units(written, options.test_images, check_seed);
    std::vector<PlantedUnit> kept;
    card["planted_units"] = nlohmann::json::array();
    card["not_planted"] = nlohmann::json::array();
    for (size_t k = 0; k < check.correlation.size(); ++k) {
      const auto& unit = written.planted_units()[k];
      const nlohmann::json row = {
          {"unit", unit.unit}, {"target", unit.name()}, {"test_correlation", check.correlation[k]}};
      if (check.correlation[k] >= kPlantingBar) {
        kept.push_back(unit);
        card["planted_units"].push_back(row);
      } else {
        card["not_planted"].push_back(row);
      }
    }
    card["planting_bar"] = kPlantingBar;
    if (kept.size() < check.correlation.size()) {
      c10::List<std::string> entries;
      for (const auto& entry : planted_attribute(kept, written.feature_dim())) entries.push_back(entry);
      module.setattr("planted_factors", entries);
      run.save_model(module);
      written = Classifier::load(options.output, c10::Device(c10::kCPU));
    }
    if (!kept.empty()) {
      // Released units are free now: check again only when some were released.
      const auto free_check = kept.size() < check.correlation.size()
                                  ? check_planted_units(written, options.test_images, check_seed)
                                  : check;
      card["largest_free_correlation"] = {{"unit", free_check.largest_free_unit},
                                          {"target", free_check.largest_free_target},
                                          {"correlation", free_check.largest_free_correlation}};
    }
  }
  run.write_card(card);
  return {run.result(), accuracy};
}

}  // namespace linkstyle
