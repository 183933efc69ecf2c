// Training of the worlds' built-in style-based generator: options, the run and the model card
// (see generator_training.hpp). The network, the objectives and the evaluation live in
// src/train/generator/.
#include "linkstyle/train/generator_training.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/script.h>
#include <torch/torch.h>

#include "linkstyle/errors.hpp"
#include "linkstyle/train/classifier_training.hpp"
#include "linkstyle/train/training_run.hpp"
#include "linkstyle/worlds/fashion.hpp"
#include "train/generator/adversarial_objective.hpp"
#include "train/generator/discriminator.hpp"
#include "train/generator/frozen_classifier.hpp"
#include "train/generator/network.hpp"
#include "train/generator/renderer_objective.hpp"
#include "train/generator/training_images.hpp"
#include "train/training_common.hpp"

namespace linkstyle {

using namespace generator_training;

namespace {

const char* const kArchitecture =
    "style-based generator: mapping z 64 + class embedding 64 -> 4 x FC 128 (lr x0.01) -> w 128; "
    "constant 128x4x4; modulated/demodulated 3x3 convs: 1 at 4 px, 2 each at 8 (128), 16 (64), "
    "32 (32 ch) after bilinear upsampling; modulated 1x1 toRGB skips; no noise; "
    "discriminator: projected, 4 heads over the frozen classifier's stage outputs";
const char* const kRendererArchitecture =
    "style-based generator: z 17 (the shapes factors' normal scores) -> factors (17, centred) + cosine and sine "
    "of 4 circular ones + class embedding 64 -> 4 x FC 128 -> w 128; synthesis as the GAN's: constant 128x4x4; "
    "modulated/demodulated 3x3 convs: 1 at 4 px, 2 each at 8 (128), 16 (64), 32 (32 ch) after bilinear "
    "upsampling; modulated 1x1 toRGB skips; no noise";
const char* const kRendererLogHeader = "step,loss,pixel_l1,feature_l1,learning_rate,seconds";
const char* const kLogHeader = "step,loss_d,loss_g,d_real,d_fake,r1,guidance,fake_accuracy,seconds";

// The model card's architecture: kArchitecture with the discriminator's options.
std::string architecture_of(const GeneratorTrainingOptions& options) {
  std::string text = kArchitecture;
  if (options.minibatch_std_group > 0)
    text += "; minibatch standard deviation over groups of " + std::to_string(options.minibatch_std_group) +
            " before each head's last conv";
  if (options.pixel_head)
    text +=
        "; a pixel head on the augmented images (1x1 fromRGB to " + std::to_string(kPixelHeadChannels) + " channels)";
  return text;
}

void check_options(const GeneratorTrainingOptions& options) {
  training::check_world(options.world);
  if (options.classifier.empty()) throw Error("--classifier", "pass the world's classifier file");
  if (options.batch_size < 2) throw Error("--batch-size", "must be >= 2, got " + std::to_string(options.batch_size));
  if (!(options.learning_rate > 0)) throw Error("--learning-rate", "must be > 0");
  if (!(options.d_learning_rate > 0)) throw Error("--d-learning-rate", "must be > 0");
  if (!(options.r1_gamma >= 0)) throw Error("--r1-gamma", "must be >= 0");
  if (!(options.guidance_weight >= 0)) throw Error("--guidance-weight", "must be >= 0");
  if (options.minibatch_std_group < 0) throw Error("--minibatch-std", "must be >= 0");
  if (options.augment != "all" && options.augment != "translation" && options.augment != "none")
    throw Error("--augment", "must be all, translation or none, got \"" + options.augment + "\"");
  if (options.minibatch_std_group > 0 &&
      options.batch_size % std::min(options.minibatch_std_group, options.batch_size) != 0)
    throw Error("--minibatch-std", "the batch size " + std::to_string(options.batch_size) +
                                       " is not a multiple of the group " +
                                       std::to_string(options.minibatch_std_group));
  if (options.objective != "adversarial" && options.objective != "renderer")
    throw Error("--objective", "must be adversarial or renderer, got \"" + options.objective + "\"");
  if (options.objective == "renderer" && options.world != "shapes")
    throw Error("--objective", "renderer needs the shapes world (its renderer knows every image's factors)");
  if (!(options.feature_weight >= 0)) throw Error("--feature-weight", "must be >= 0");
  if (options.eval_samples_per_class < 0 || options.eval_samples_per_class == 1)
    throw Error("--eval-samples", "must be 0 (no evaluation) or >= 2");
}

TrainingRunOptions run_options(const GeneratorTrainingOptions& options) {
  if (options.objective == "renderer")
    return training_run_options(options, kRendererLogHeader, "train shapes generator (renderer)");
  return training_run_options(options, kLogHeader, "train " + options.world + " generator");
}

nlohmann::json model_card(const GeneratorTrainingOptions& options, const std::string& classifier_fingerprint) {
  const auto& class_names = world_class_names(options.world);
  const bool renderer = options.objective == "renderer";
  nlohmann::json card = {
      {"world", options.world},
      {"w_dim", kWDim},
      {"resolution", kResolution},
      {"num_classes", static_cast<int64_t>(class_names.size())},
      {"class_names", class_names},
      {"classifier", options.classifier.string()},
      {"classifier_fingerprint", classifier_fingerprint},
      {"seed", options.seed},
      {"batch_size", options.batch_size},
      {"learning_rate", options.learning_rate},
  };
  if (renderer) {
    card["objective"] = "renderer: L1 to render(c, factors(z, c)) + feature_weight x L1 of the classifier's stages";
    card["architecture"] = kRendererArchitecture;
    card["z_dim"] = kShapesFactorCount;
    card["z"] =
        "the shapes factors' normal scores: factors(z, c) = low[c] + span[c] * Phi(z), columns as "
        "ShapesWorld::factor_names()";
    card["feature_weight"] = options.feature_weight;
    return card;
  }
  card["objective"] = "adversarial";
  card["architecture"] = architecture_of(options);
  card["z_dim"] = kZDim;
  card["d_learning_rate"] = options.d_learning_rate;
  card["r1_gamma"] = options.r1_gamma;
  card["guidance_weight"] = options.guidance_weight;
  card["minibatch_std_group"] = options.minibatch_std_group;
  card["pixel_head"] = options.pixel_head;
  card["augmentation"] = options.augment == "all"           ? "translation 1/8, brightness, saturation, contrast"
                         : options.augment == "translation" ? "translation 1/8"
                                                            : "none";
  return card;
}

}  // namespace

GeneratorTrainingResult train_generator(const GeneratorTrainingOptions& options) {
  check_options(options);
  TrainingRun run(run_options(options));
  FrozenClassifier classifier = load_frozen_classifier(options);
  const int64_t classes = static_cast<int64_t>(world_class_names(options.world).size());
  torch::jit::Module average;
  if (options.objective == "renderer") {
    average = train_renderer_objective(run, options, classifier);
  } else {
    const RealImages real(options);  // checks the seed and the data before anything is written
    if (options.world == "fashion" && options.eval_samples_per_class > 0)  // the evaluation's split
      FashionMnist::load(options.fashion_folder.empty() ? default_fashion_folder() : options.fashion_folder, false);
    average = train_adversarial_objective(run, options, real, classifier);
  }

  // The shipped model: the weight average, with its per-class w means.
  set_w_avg(average, classes, options.seed);
  average.eval();
  run.save_model(average);
  const Generator shipped = Generator::load(options.output, c10::Device(c10::kCPU));
  nlohmann::json card = model_card(options, classifier.fingerprint);
  if (options.eval_samples_per_class > 0)
    for (const double psi : options.objective == "renderer" ? std::vector<double>{0.7, 1.0} : std::vector<double>{0.7})
      card[psi == 0.7 ? "evaluation" : "evaluation_psi_1"] =
          evaluate_generator(shipped, classifier.checked, options.world, options.eval_samples_per_class, psi, 0,
                             options.fashion_folder)
              .to_json();
  run.write_card(card);
  return {run.result()};
}

}  // namespace linkstyle
