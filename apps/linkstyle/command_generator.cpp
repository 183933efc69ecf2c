// `linkstyle train generator` and `linkstyle eval generator`.
#include <array>
#include <cmath>
#include <memory>

#include <fmt/format.h>

#include "commands.hpp"
#include "linkstyle/train/generator_training.hpp"

namespace linkstyle::cli {

namespace {

void register_train_generator(CLI::App& app, GlobalOptions& global) {
  auto options = std::make_shared<GeneratorTrainingOptions>();
  auto paths = std::make_shared<std::array<std::string, 3>>();  // output, classifier, fashion
  auto* train = app.get_subcommand("train")->add_subcommand(
      "generator",
      "train the world's class-conditional style-based generator (32 px): against a projected "
      "discriminator over the frozen classifier, or (shapes) against the renderer");
  train->add_option("--world", options->world, "shapes or fashion")
      ->required()
      ->check(CLI::IsMember({"shapes", "fashion"}));
  train->add_option("--classifier", (*paths)[1], "the world's classifier (TorchScript)")->required();
  train->add_option("-o,--output", (*paths)[0], "model file to write")->required();
  train->add_option("--steps", options->steps, "training steps")->capture_default_str();
  train->add_option("--seed", options->seed)->capture_default_str();
  train->add_option("--batch-size", options->batch_size)->capture_default_str();
  train->add_option("--checkpoint-every", options->checkpoint_every, "steps between checkpoints")
      ->capture_default_str();
  train->add_option("--learning-rate", options->learning_rate, "generator Adam learning rate")->capture_default_str();
  train->add_option("--d-learning-rate", options->d_learning_rate, "discriminator Adam learning rate")
      ->capture_default_str();
  train->add_option("--r1-gamma", options->r1_gamma, "R1 weight")->capture_default_str();
  train->add_option("--guidance-weight", options->guidance_weight, "classifier guidance weight")->capture_default_str();
  train
      ->add_option("--minibatch-std", options->minibatch_std_group,
                   "discriminator sees the feature spread over groups of this many samples (0: off)")
      ->capture_default_str();
  train
      ->add_option("--augment", options->augment,
                   "the discriminator's augmentation: all (translation, brightness, saturation, contrast), "
                   "translation, or none")
      ->capture_default_str();
  train
      ->add_option("--objective", options->objective,
                   "adversarial (a GAN) or renderer (shapes: taught to draw what the renderer draws for the "
                   "factors that z holds)")
      ->capture_default_str()
      ->check(CLI::IsMember({"adversarial", "renderer"}));
  train
      ->add_option("--feature-weight", options->feature_weight,
                   "renderer objective: weight of the classifier-stage L1 beside the pixel L1")
      ->capture_default_str();
  train->add_flag("--pixel-head", options->pixel_head,
                  "the discriminator also sees the images themselves, not only the classifier's stages");
  train
      ->add_option("--eval-samples", options->eval_samples_per_class,
                   "samples per class for the model card's evaluation (0: none)")
      ->capture_default_str();
  train->add_option("--fashion-folder", (*paths)[2], "Fashion-MNIST files (default: Debian's)");
  train->fallthrough();
  train->callback([options, paths, &global]() {
    configure_runtime(global.runtime);
    options->output = (*paths)[0];
    options->classifier = (*paths)[1];
    options->fashion_folder = (*paths)[2];
    options->command_line = own_command_line();
    const auto result = train_generator(*options);
    auto summary = result.to_json();
    summary["world"] = options->world;
    print_summary(global, summary,
                  fmt::format("wrote {} ({} steps{}, {:.0f} s); figures in {}", result.model.string(), result.steps,
                              result.resumed_text(), result.training_seconds, result.card.string()));
  });
}

void register_eval_generator(CLI::App& app, GlobalOptions& global) {
  struct EvalOptions {
    std::string world, file, classifier, fashion_folder, grid, segmenter, render_grid;
    int64_t samples_per_class = 1000;
    double psi = 0.7;
    uint64_t seed = 0;
  };
  auto e = std::make_shared<EvalOptions>();
  auto* eval = app.get_subcommand("eval")->add_subcommand(
      "generator", "print a generator's classifier agreement and diversity (and write a sample grid)");
  eval->add_option("--world", e->world, "shapes or fashion")->required()->check(CLI::IsMember({"shapes", "fashion"}));
  eval->add_option("file", e->file, "generator TorchScript file")->required();
  eval->add_option("--classifier", e->classifier, "the world's classifier")->required();
  eval->add_option("--samples-per-class", e->samples_per_class)->capture_default_str();
  eval->add_option("--psi", e->psi, "truncation")->capture_default_str();
  eval->add_option("--seed", e->seed)->capture_default_str();
  eval->add_option("--grid", e->grid, "also write a sample grid PNG (one row per class)");
  eval->add_option("--render-grid", e->render_grid,
                   "also write renders of the samples' factors above the samples (a generator trained with "
                   "--objective renderer)");
  eval->add_option("--segmenter", e->segmenter,
                   "also compare the part areas per class that this segmenter finds on generated and real images");
  eval->add_option("--fashion-folder", e->fashion_folder, "Fashion-MNIST files (default: Debian's)");
  eval->fallthrough();
  eval->callback([e, &global]() {
    const auto device = configure_runtime(global.runtime);
    const auto generator = Generator::load(e->file, device);
    const auto classifier = Classifier::load(e->classifier, device);
    if (!e->render_grid.empty()) check_render_comparison_grid(e->file);
    const auto result =
        evaluate_generator(generator, classifier, e->world, e->samples_per_class, e->psi, e->seed, e->fashion_folder,
                           e->segmenter);
    if (!e->grid.empty()) write_sample_grid(generator, e->grid, 10, e->psi, e->seed);
    if (!e->render_grid.empty()) write_render_comparison_grid(e->file, e->render_grid, 8, e->seed);
    auto summary = result.to_json();
    summary["model"] = e->file;
    summary["world"] = e->world;
    summary["grid"] = e->grid;
    summary["render_grid"] = e->render_grid;
    const std::string colour =
        std::isfinite(result.colour_diversity_ratio)
            ? fmt::format(", colour diversity {:.1f}% of real", 100.0 * result.colour_diversity_ratio)
            : std::string();
    const std::string areas =
        e->segmenter.empty() ? std::string()
                             : fmt::format(", part areas off by at most {:.1f}% per class", 100.0 * result.part_area_error);
    print_summary(global, summary,
                  fmt::format("{}: classifier agreement {:.2f}% at psi {}, diversity {:.1f}% of real{}, Frechet "
                              "distance {:.3g} (classifier features){} ({} samples per class){}",
                              e->file, 100.0 * result.agreement, result.psi, 100.0 * result.diversity_ratio, colour,
                              result.frechet_distance, areas, result.samples_per_class,
                              e->grid.empty() ? std::string() : "; grid " + e->grid));
  });
}

}  // namespace

void register_generator(CLI::App& app, GlobalOptions& global) {
  register_train_generator(app, global);
  register_eval_generator(app, global);
}

}  // namespace linkstyle::cli
