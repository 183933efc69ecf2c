#include <algorithm>
#include <cmath>
#include <string>

#include <fmt/format.h>

#include "commands.hpp"
#include "linkstyle/planted_unit_scoring.hpp"
#include "linkstyle/train/classifier_training.hpp"
#include "linkstyle/train/segmenter_training.hpp"
#include "linkstyle/worlds/shapes.hpp"

namespace linkstyle::cli {

namespace {

nlohmann::json metrics_json(const SegmentationMetrics& metrics) {
  nlohmann::json part_iou = nlohmann::json::object();
  const auto& names = ShapesWorld::part_names();
  for (size_t i = 0; i < metrics.part_iou.size() && i < names.size(); ++i)
    part_iou[names[i]] =
        std::isnan(metrics.part_iou[i]) ? nlohmann::json(nullptr) : nlohmann::json(metrics.part_iou[i]);
  return {{"mean_iou", metrics.mean_iou},
          {"pixel_accuracy", metrics.pixel_accuracy},
          {"test_images", metrics.images},
          {"part_iou", part_iou}};
}

// "cap 0.91, stem 0.88, ..." (labels absent from the truth are left out).
std::string part_iou_line(const SegmentationMetrics& metrics) {
  std::string line;
  const auto& names = ShapesWorld::part_names();
  for (size_t i = 0; i < metrics.part_iou.size() && i < names.size(); ++i) {
    if (std::isnan(metrics.part_iou[i])) continue;
    line += fmt::format("{}{} {:.3f}", line.empty() ? "" : ", ", names[i], metrics.part_iou[i]);
  }
  return line;
}

void register_train_classifier(CLI::App& train, GlobalOptions& global) {
  auto options = std::make_shared<ClassifierTrainingOptions>();
  auto output = std::make_shared<std::string>();
  auto fashion_folder = std::make_shared<std::string>();
  auto* classifier =
      train.add_subcommand("classifier", "train the world's classifier (small ResNet) into a TorchScript file");
  classifier->add_option("--world", options->world, "shapes or fashion")
      ->required()
      ->check(CLI::IsMember({"shapes", "fashion"}));
  classifier->add_option("-o,--output", *output, "model file to write")->required();
  classifier->add_option("--steps", options->steps, "training steps")->capture_default_str();
  classifier->add_option("--seed", options->seed)->capture_default_str();
  classifier->add_option("--batch-size", options->batch_size)->capture_default_str();
  classifier->add_option("--checkpoint-every", options->checkpoint_every, "steps between checkpoints")
      ->capture_default_str();
  classifier->add_option("--learning-rate", options->learning_rate, "initial Adam learning rate")
      ->capture_default_str();
  classifier->add_option("--test-images", options->test_images, "shapes test images")->capture_default_str();
  classifier->add_option("--fashion-folder", *fashion_folder, "Fashion-MNIST files (default: Debian's)");
  classifier->add_flag("--planted", options->planted,
                       "shapes: plant units that equal known functions of the factors (docs/worlds.md)");
  classifier->add_option("--planted-weight", options->planted_weight, "weight of the planted units' squared error")
      ->capture_default_str();
  classifier->add_option("--architecture", options->architecture,
                         "resnet (the built-in classifier) or plain (another design, e.g. for a judge)")
      ->check(CLI::IsMember({"resnet", "plain"}))
      ->capture_default_str();
  classifier->add_option("--width", options->width, "plain: channels of the first stage W (then 2W, 4W, 8W = D)")
      ->capture_default_str();
  classifier->fallthrough();
  classifier->callback([options, output, fashion_folder, &global]() {
    configure_runtime(global.runtime);
    options->output = *output;
    options->fashion_folder = *fashion_folder;
    options->command_line = own_command_line();
    const auto result = train_classifier(*options);
    auto summary = result.to_json();
    summary.update({{"world", options->world}, {"test_accuracy", result.test_accuracy}});
    print_summary(
        global, summary,
        fmt::format("wrote {} ({} steps{}, test accuracy {:.2f}%, {:.0f} s)", result.model.string(), result.steps,
                    result.resumed_text(), 100.0 * result.test_accuracy, result.training_seconds));
  });
}

void register_train_segmenter(CLI::App& train, GlobalOptions& global) {
  auto segmenter_options = std::make_shared<SegmenterTrainingOptions>();
  auto segmenter_output = std::make_shared<std::string>();
  auto* segmenter = train.add_subcommand(
      "segmenter", "train the shapes world's part segmenter (small U-Net) into a TorchScript file");
  segmenter->add_option("-o,--output", *segmenter_output, "model file to write")->required();
  segmenter->add_option("--steps", segmenter_options->steps, "training steps")->capture_default_str();
  segmenter->add_option("--seed", segmenter_options->seed)->capture_default_str();
  segmenter->add_option("--batch-size", segmenter_options->batch_size)->capture_default_str();
  segmenter->add_option("--checkpoint-every", segmenter_options->checkpoint_every, "steps between checkpoints")
      ->capture_default_str();
  segmenter->add_option("--learning-rate", segmenter_options->learning_rate, "initial Adam learning rate")
      ->capture_default_str();
  segmenter->add_option("--width", segmenter_options->width, "channels of the first U-Net level (then 2x, 4x)")
      ->capture_default_str();
  segmenter->add_option("--resolution", segmenter_options->resolution, "training image size")->capture_default_str();
  segmenter->add_option("--test-images", segmenter_options->test_images, "held-out test images")->capture_default_str();
  auto no_augment = std::make_shared<bool>(false);
  segmenter->add_flag("--no-augment", *no_augment, "no brightness/contrast/noise jitter of the training images");
  segmenter->fallthrough();
  segmenter->callback([segmenter_options, segmenter_output, no_augment, &global]() {
    configure_runtime(global.runtime);
    segmenter_options->output = *segmenter_output;
    segmenter_options->augment = !*no_augment;
    segmenter_options->command_line = own_command_line();
    const auto result = train_segmenter(*segmenter_options);
    auto summary = metrics_json(result.test);
    summary.update(result.to_json());
    print_summary(global, summary,
                  fmt::format("wrote {} ({} steps{}, mean IoU {:.3f}, pixel accuracy {:.2f}% on {} "
                              "held-out images, {:.0f} s)",
                              result.model.string(), result.steps, result.resumed_text(), result.test.mean_iou,
                              100.0 * result.test.pixel_accuracy, result.test.images, result.training_seconds));
  });
}

}  // namespace

void register_train(CLI::App& app, GlobalOptions& global) {
  auto* train = app.add_subcommand("train", "train a world's built-in models");
  train->require_subcommand(1);
  register_train_classifier(*train, global);
  register_train_segmenter(*train, global);
}

void register_eval(CLI::App& app, GlobalOptions& global) {
  auto* eval = app.add_subcommand("eval", "evaluate a model on a world's test set");
  eval->require_subcommand(1);
  struct Options {
    std::string world, file, fashion_folder;
    int64_t test_images = 2000;
  };
  auto options = std::make_shared<Options>();
  auto* classifier = eval->add_subcommand("classifier", "print a classifier's test accuracy");
  classifier->add_option("--world", options->world, "shapes or fashion")
      ->required()
      ->check(CLI::IsMember({"shapes", "fashion"}));
  classifier->add_option("file", options->file, "classifier TorchScript file")->required();
  classifier->add_option("--test-images", options->test_images, "shapes test images")->capture_default_str();
  classifier->add_option("--fashion-folder", options->fashion_folder, "Fashion-MNIST files (default: Debian's)");
  classifier->fallthrough();
  classifier->callback([options, &global]() {
    const auto device = configure_runtime(global.runtime);
    const auto model = Classifier::load(options->file, device);
    const double accuracy =
        classifier_test_accuracy(model, options->world, options->test_images, options->fashion_folder);
    nlohmann::json summary = {{"model", options->file}, {"world", options->world}, {"test_accuracy", accuracy}};
    std::string line = fmt::format("{}: test accuracy {:.2f}% on {}", options->file, 100.0 * accuracy, options->world);
    if (!model.planted_units().empty()) {
      const auto check = check_planted_units(model, options->test_images, 2024);
      double lowest = 1;
      nlohmann::json planted = nlohmann::json::array();
      for (size_t k = 0; k < check.correlation.size(); ++k) {
        lowest = std::min(lowest, check.correlation[k]);
        planted.push_back({{"unit", model.planted_units()[k].unit},
                           {"target", model.planted_units()[k].name()},
                           {"correlation", check.correlation[k]}});
      }
      summary["planted_units"] = planted;
      summary["largest_free"] = {{"unit", check.largest_free_unit},
                                 {"target", check.largest_free_target},
                                 {"correlation", check.largest_free_correlation}};
      line += fmt::format("; {} planted units, lowest correlation with their targets {:.3f}; largest free unit {} "
                          "({} r = {:+.3f})",
                          planted.size(), lowest, check.largest_free_unit, check.largest_free_target,
                          check.largest_free_correlation);
    }
    print_summary(global, summary, line);
  });

  auto* segmenter =
      eval->add_subcommand("segmenter", "print a shapes segmenter's mean IoU, per-part IoU and pixel accuracy");
  segmenter->add_option("file", options->file, "segmenter TorchScript file")->required();
  segmenter->add_option("--test-images", options->test_images, "held-out test images")->capture_default_str();
  segmenter->fallthrough();
  segmenter->callback([options, &global]() {
    const auto device = configure_runtime(global.runtime);
    auto model = load_segmenter(options->file, device);
    const auto metrics = segmenter_test_metrics(model, options->test_images);
    auto summary = metrics_json(metrics);
    summary["model"] = options->file;
    print_summary(global, summary,
                  fmt::format("{}: mean IoU {:.3f}, pixel accuracy {:.2f}% on {} held-out shapes "
                              "images\nper-part IoU: {}",
                              options->file, metrics.mean_iou, 100.0 * metrics.pixel_accuracy, metrics.images,
                              part_iou_line(metrics)));
  });
}

}  // namespace linkstyle::cli
