// linkstyle/train/generator_training.hpp
//
// WHAT THIS REPRESENTS
//   The worlds' built-in class-conditional, style-based generator (in the manner of StyleGAN2),
//   built directly as a TorchScript module that meets the generator model contract
//   (docs/model-contract.md), its adversarial training, and its evaluation against the world's
//   classifier.
//   Architecture (equalised learning rate everywhere):
//     mapping: z [N,64] and a learned class embedding (64), each normalised to unit second
//       moment, concatenated, 4 fully connected layers (128, leaky ReLU, learning-rate
//       multiplier 0.01) -> w [N,128]; truncation w_avg[c] + psi (w - w_avg[c]) with w_avg the
//       per-class mean of w;
//     synthesis: learned constant 128x4x4, one modulated/demodulated 3x3 convolution at 4x4,
//       then two per resolution at 8 (128), 16 (64) and 32 (32 channels) after bilinear 2x
//       upsampling; modulated 1x1 toRGB at every resolution summed into a skip image; no noise.
//       synthesis(w) is clamped to [-1, 1]; synthesis_features(w) returns the four block outputs
//       (4, 8, 16, 32 px).
//   Training: non-saturating logistic loss against a projected discriminator: four small
//   spectrally normalised convolutional heads on the frozen world classifier's stage outputs
//   (32 px .. 4 px), each with a class projection (optionally a fifth head on the images
//   themselves, and a minibatch standard deviation channel); differentiable augmentation (translation by
//   up to 1/8 of the side, brightness, saturation, contrast with augment "all"; the translation
//   only with "translation"; none with "none") on real and generated images; lazy
//   R1 on the real images every 16 steps; classifier guidance (cross-entropy of the frozen
//   classifier's logits on the augmented generated images toward the intended class, from the
//   same classifier pass); Adam (betas 0, 0.99); an exponential moving average of the
//   generator's weights is what ships.
// REQUIRES
//   world is "shapes" or "fashion"; classifier names a classifier built by
//   build_resnet_classifier (its stage outputs feed the discriminator) with the world's class
//   count; output names a file in a writable folder; steps, checkpoint_every >= 1, batch_size >= 2,
//   eval_samples_per_class 0 or >= 2.
// ENSURES
//   train_generator() is seeded: initial weights from `seed`; the real batch, latents and
//   augmentation of step s are pure functions of (seed, s), so a resumed run continues the same
//   sequence. Every checkpoint_every steps (and at the end) it writes
//   <output>.checkpoint/checkpoint.pt atomically (generator, its average, discriminator, both
//   optimisers, step, the classifier's fingerprint) and <output>.preview.png (the average at psi 1,
//   one row per class); a rerun with the same output and classifier resumes from it (after kill -9
//   too); another classifier, world, seed, batch size or discriminator option, or fewer steps than reached, is an
//   Error. <output>.log.csv has one row per step (steps 1..steps, no gaps or duplicates across resumes). At the end
//   w_avg is set to the per-class mean of w over 4096 latents per class, the averaged generator is written atomically
//   (loads with Generator::load) with its model card <output>.json (architecture, options, command_line, git_revision,
//   training_seconds, and the evaluation below on `eval_samples_per_class`). evaluate_generator() draws
//   samples_per_class latents per class (seeded) at `psi` and reports the share the classifier assigns to the intended
//   class, and the within-class diversity: the mean pairwise Euclidean distance of classifier features over the samples
//   of a class, averaged over classes, divided by the same figure on as many real images per class (shapes: held-out
//   renders; fashion: the test split, which has about 1000 per class and caps it; the mean pairwise distance does not
//   depend on the count); and the same ratio for the colour diversity: the mean pairwise distance of the images' mean
//   colours in the chroma plane (a = R - (G + B)/2, b = sqrt(3)/2 (G - B): the hue is the angle, the chroma the
//   length), NaN where the real images have no colour (fashion); the Frechet distance of the
//   classifier features (pooled and per class); and, given a segmenter, the part areas per class.
//   Bad options throw linkstyle::Error, before anything
//   is written. Checkpoint, resume, log and card follow TrainingRun (training_run.hpp).
#pragma once

#include <cstdint>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "linkstyle/models.hpp"
#include "linkstyle/train/training_run.hpp"

namespace torch::jit {
struct Module;
}

namespace linkstyle {

struct GeneratorTrainingOptions {
  std::string world = "shapes";
  std::filesystem::path classifier;  // the frozen world classifier (TorchScript)
  std::filesystem::path output;
  int64_t steps = 3000;
  uint64_t seed = 0;
  int64_t batch_size = 32;
  int64_t checkpoint_every = 100;
  double learning_rate = 2e-3;            // generator
  double d_learning_rate = 2e-3;          // discriminator
  double r1_gamma = 0.01;                 // R1 weight (lazy, every 16 steps)
  double guidance_weight = 0.5;           // classifier guidance
  int64_t minibatch_std_group = 0;        // discriminator minibatch standard deviation group (0: none)
  bool pixel_head = false;                // a discriminator head on the images themselves, beside the stages'
  std::string augment = "all";            // the discriminator's augmentation: all, translation or none
  // "adversarial" (the GAN above) or "renderer" (shapes only: a StyleLatent::kShapesFactors
  // generator taught to reproduce render(c, factors(z, c)), see below).
  std::string objective = "adversarial";
  double feature_weight = 0.1;            // renderer: weight of the classifier-stage loss
  int64_t eval_samples_per_class = 1000;  // for the model card; 0 skips the evaluation
  std::filesystem::path fashion_folder;
  std::string command_line;
  bool progress = true;
};

struct GeneratorTrainingResult : TrainingRunResult {};

struct GeneratorEvaluation {
  double psi = 0.7;
  int64_t samples_per_class = 0;
  double agreement = 0;  // share assigned to the intended class, all classes
  std::vector<double> agreement_per_class;
  double diversity_generated = 0, diversity_real = 0;
  double diversity_ratio = 0;  // generated / real
  std::vector<double> diversity_ratio_per_class;
  double colour_diversity_generated = 0, colour_diversity_real = 0;
  double colour_diversity_ratio = 0;  // generated / real (NaN without real colour)
  std::vector<double> colour_diversity_ratio_per_class;
  // Frechet distance between Gaussians fitted to the classifier features of generated and real
  // images: all classes pooled, and per class.
  double frechet_distance = 0;
  std::vector<double> frechet_distance_per_class;
  // With a segmenter: per class, the mean share of the image each segmenter part covers
  // ([class][part], parts as the segmenter names them) on generated and on real images, and the
  // part-area error: part_area_error() of the two.
  std::vector<std::string> part_names;
  std::vector<std::vector<double>> part_areas_generated, part_areas_real;
  std::vector<double> part_area_error_per_class;
  double part_area_error = std::numeric_limits<double>::quiet_NaN();  // the largest over classes

  nlohmann::json to_json() const;
};

// What the generator's z holds: a free latent (z 64, normalised to unit second moment; the GAN's),
// or the shapes world's 17 factors as normal scores (z 17: factors = low[c] + span[c] * Phi(z),
// the world's own distribution when z ~ N(0, I); the module then also has factors(z, c) ->
// [N, 17], and its mapping reads each factor f as (f - 0.5) sqrt(12), plus the circular ones as cosine and sine,
// through fully connected layers without a learning-rate multiplier).
enum class StyleLatent { kFree, kShapesFactors };

// The untrained generator described above, weights drawn from `seed`.
torch::jit::Module build_style_generator(const std::vector<std::string>& class_names, uint64_t seed,
                                         StyleLatent latent = StyleLatent::kFree);

GeneratorTrainingResult train_generator(const GeneratorTrainingOptions& options);

GeneratorEvaluation evaluate_generator(const Generator& generator, const Classifier& classifier,
                                       const std::string& world, int64_t samples_per_class = 1000, double psi = 0.7,
                                       uint64_t seed = 0, const std::filesystem::path& fashion_folder = {},
                                       const std::filesystem::path& segmenter = {});

// For a StyleLatent::kShapesFactors generator file: a PNG grid of two rows per class, renders of
// factors(z, c) above the generator's images of the same z at psi 1, `columns` each (zoom as
// above), written atomically. A generator without factors(z, c) is an Error naming its file.
void write_render_comparison_grid(const std::filesystem::path& generator_file, const std::filesystem::path& file,
                                  int64_t columns = 8, uint64_t seed = 0, int64_t zoom = 2);
// The same checks without drawing: an Error naming the file unless it loads as a generator with
// the shapes world's classes and factors(z, c).
void check_render_comparison_grid(const std::filesystem::path& generator_file);

// The share of the object's area given to the wrong part or to none: the sum over the parts other
// than one named "background" of |generated - real|, over the sum of real (0 when that is 0).
// Areas are one per part name; other lengths are an Error.
double part_area_error(const std::vector<double>& generated, const std::vector<double>& real,
                       const std::vector<std::string>& part_names);

// A PNG grid (one row per class, `columns` samples at `psi`, each image scaled up `zoom` times),
// written atomically.
void write_sample_grid(const Generator& generator, const std::filesystem::path& file, int64_t columns = 10,
                       double psi = 0.7, uint64_t seed = 0, int64_t zoom = 2);

}  // namespace linkstyle
