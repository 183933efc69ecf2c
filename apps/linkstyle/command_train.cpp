#include <string>

#include <fmt/format.h>

#include "commands.hpp"
#include "linkstyle/train/classifier_training.hpp"
#include "train/training_common.hpp"

namespace linkstyle::cli {

void register_train(CLI::App& app, GlobalOptions& global) {
  auto* train = app.add_subcommand("train", "train a world's built-in models");
  train->require_subcommand(1);

  auto options = std::make_shared<ClassifierTrainingOptions>();
  auto output = std::make_shared<std::string>();
  auto fashion_folder = std::make_shared<std::string>();
  auto* classifier = train->add_subcommand(
      "classifier", "train the world's classifier (small ResNet) into a TorchScript file");
  classifier->add_option("--world", options->world, "shapes or fashion")
      ->required()
      ->check(CLI::IsMember({"shapes", "fashion"}));
  classifier->add_option("-o,--output", *output, "model file to write")->required();
  classifier->add_option("--steps", options->steps, "training steps")->capture_default_str();
  classifier->add_option("--seed", options->seed)->capture_default_str();
  classifier->add_option("--batch-size", options->batch_size)->capture_default_str();
  classifier->add_option("--checkpoint-every", options->checkpoint_every,
                         "steps between checkpoints")->capture_default_str();
  classifier->add_option("--learning-rate", options->learning_rate, "initial Adam learning rate")
      ->capture_default_str();
  classifier->add_option("--test-images", options->test_images, "shapes test images")
      ->capture_default_str();
  classifier->add_option("--fashion-folder", *fashion_folder, "Fashion-MNIST files (default: Debian's)");
  classifier->fallthrough();
  classifier->callback([options, output, fashion_folder, &global]() {
    configure_runtime(global.runtime);
    options->output = *output;
    options->fashion_folder = *fashion_folder;
    options->command_line = training::own_command_line();
    const auto result = train_classifier(*options);
    print_summary(global,
                  {{"model", result.model.string()}, {"card", result.card.string()},
                   {"log", result.log.string()}, {"world", options->world}, {"steps", result.steps},
                   {"resumed_from", result.resumed_from}, {"test_accuracy", result.test_accuracy},
                   {"training_seconds", result.training_seconds}},
                  fmt::format("wrote {} ({} steps{}, test accuracy {:.2f}%, {:.0f} s)",
                              result.model.string(), result.steps,
                              result.resumed_from > 0
                                  ? fmt::format(", resumed from step {}", result.resumed_from)
                                  : std::string(),
                              100.0 * result.test_accuracy, result.training_seconds));
  });
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
  classifier->add_option("--test-images", options->test_images, "shapes test images")
      ->capture_default_str();
  classifier->add_option("--fashion-folder", options->fashion_folder,
                         "Fashion-MNIST files (default: Debian's)");
  classifier->fallthrough();
  classifier->callback([options, &global]() {
    const auto device = configure_runtime(global.runtime);
    const auto model = Classifier::load(options->file, device);
    const double accuracy = classifier_test_accuracy(model, options->world, options->test_images,
                                                     options->fashion_folder);
    print_summary(global,
                  {{"model", options->file}, {"world", options->world}, {"test_accuracy", accuracy}},
                  fmt::format("{}: test accuracy {:.2f}% on {}", options->file, 100.0 * accuracy,
                              options->world));
  });
}

}  // namespace linkstyle::cli
