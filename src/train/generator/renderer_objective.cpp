// The renderer objective of generator training (see renderer_objective.hpp).
#include "train/generator/renderer_objective.hpp"

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "linkstyle/errors.hpp"
#include "linkstyle/worlds/shapes.hpp"
#include "splitmix.hpp"
#include "train/generator/network.hpp"
#include "train/generator/sample_grids.hpp"
#include "train/generator/training_state.hpp"
#include "train/training_common.hpp"

namespace linkstyle::generator_training {

namespace fs = std::filesystem;

namespace {

// The renderer objective: a StyleLatent::kShapesFactors generator taught to draw what the shapes
// renderer draws for the same class and factors. Each step draws classes and z ~ N(0, I) (pure
// functions of (seed, step)), renders the factors the generator's own factors(z, c) reads off z, and
// takes an Adam step on the L1 distance of the images plus feature_weight times the L1 distance of
// the frozen classifier's stage outputs (each divided by the rendered stage's mean magnitude). The
// learning rate warms up over 100 steps, then decays on a cosine; the weight average ships.
class RendererSteps final : public TrainingSteps {
 public:
  RendererSteps(const GeneratorTrainingOptions& options, FrozenClassifier& classifier)
      : options_(options), classifier_(classifier), classes_(static_cast<int64_t>(ShapesWorld::class_names().size())) {}

  void start_fresh() override {
    generator_ = build_style_generator(ShapesWorld::class_names(), options_.seed, StyleLatent::kShapesFactors);
    average_ = generator_.clone();
    make_optimiser();
  }

  void check_settings(torch::serialize::InputArchive& checkpoint, const fs::path& file) override {
    c10::IValue value;
    const std::string objective = checkpoint.try_read("objective", value) ? value.toStringRef() : "adversarial";
    const int64_t seed = training::read_value(checkpoint, "seed").toInt();
    const int64_t batch_size = training::read_value(checkpoint, "batch_size").toInt();
    if (objective != options_.objective)
      throw Error(file, "was made for objective " + objective + "; rerun with it or remove the checkpoint folder");
    const double feature_weight = training::read_value(checkpoint, "feature_weight").toDouble();
    const double learning_rate = training::read_value(checkpoint, "learning_rate").toDouble();
    if (seed != static_cast<int64_t>(options_.seed) || batch_size != options_.batch_size ||
        feature_weight != options_.feature_weight || learning_rate != options_.learning_rate)
      throw Error(file, "was made for seed " + std::to_string(seed) + ", batch size " + std::to_string(batch_size) +
                            ", feature weight " + number(feature_weight) + ", learning rate " + number(learning_rate) +
                            "; rerun with those options or remove the checkpoint folder");
    check_classifier_fingerprint(checkpoint, file, classifier_, options_);
  }

  void restore_state(torch::serialize::InputArchive& checkpoint) override {
    generator_ = training::module_from_bytes(read_tensor(checkpoint, "generator"));
    average_ = training::module_from_bytes(read_tensor(checkpoint, "average"));
    make_optimiser();
    load_optimiser(*optimizer_, checkpoint, "optimizer");
  }

  void save_state(torch::serialize::OutputArchive& checkpoint) override {
    checkpoint.write("generator", training::module_bytes(generator_));
    checkpoint.write("average", training::module_bytes(average_));
    save_optimiser(*optimizer_, checkpoint, "optimizer");
  }

  void save_settings(torch::serialize::OutputArchive& checkpoint) override {
    checkpoint.write("objective", c10::IValue(options_.objective));
    checkpoint.write("seed", c10::IValue(static_cast<int64_t>(options_.seed)));
    checkpoint.write("world", c10::IValue(options_.world));
    checkpoint.write("batch_size", c10::IValue(options_.batch_size));
    checkpoint.write("feature_weight", c10::IValue(options_.feature_weight));
    checkpoint.write("learning_rate", c10::IValue(options_.learning_rate));
    checkpoint.write("classifier_fingerprint", c10::IValue(classifier_.fingerprint));
  }

  StepRecord step(int64_t step) override {
    at::Generator rng = at::detail::createCPUGenerator(
        splitmix64(splitmix64(options_.seed ^ 0x72656e64ULL) + static_cast<uint64_t>(step)));
    const int64_t b = options_.batch_size;
    const auto labels = torch::randint(classes_, {b}, rng, torch::kLong);
    const auto z = torch::randn({b, kShapesFactorCount}, rng, torch::kFloat);
    torch::Tensor target;
    std::vector<torch::Tensor> target_stages;
    {
      torch::NoGradGuard no_grad;
      target = renders_of_latents(generator_, world_, z, labels);
      target_stages = stages_of(classifier_.module, target);
    }
    const double learning_rate = learning_rate_at(step);
    for (auto& group : optimizer_->param_groups())
      static_cast<torch::optim::AdamOptions&>(group.options()).lr(learning_rate);
    const auto images = (generator_.forward({z, labels}).toTensor() + 1.0) * 0.5;
    const auto pixel = (images - target).abs().mean();
    const auto stages = stages_of(classifier_.module, images);
    torch::Tensor feature = torch::zeros({});
    for (size_t k = 0; k < stages.size(); ++k)
      feature = feature + (stages[k] - target_stages[k]).abs().mean() / (target_stages[k].abs().mean() + 1e-8);
    const auto loss = pixel + feature * options_.feature_weight;
    optimizer_->zero_grad();
    loss.backward();
    optimizer_->step();
    update_average(step);
    const double value = loss.item<double>();
    char fields[160];
    std::snprintf(fields, sizeof fields, "%.6f,%.6f,%.6f,%.6g", value, pixel.item<double>(), feature.item<double>(),
                  learning_rate);
    return {{value}, fields};
  }

  void after_checkpoint() override { write_preview(average_, classes_, options_.output); }

  torch::jit::Module& average() { return average_; }

 private:
  static constexpr int64_t kWarmupSteps = 100;

  double learning_rate_at(int64_t step) const {
    if (step <= kWarmupSteps) return options_.learning_rate * static_cast<double>(step) / kWarmupSteps;
    return training::cosine_learning_rate(options_.learning_rate, step - kWarmupSteps,
                                          std::max<int64_t>(1, options_.steps - kWarmupSteps));
  }

  void make_optimiser() {
    collect_parameters(generator_, average_, parameters_, average_parameters_);
    optimizer_ = std::make_unique<torch::optim::Adam>(
        parameters_, torch::optim::AdamOptions(options_.learning_rate).betas({0.9, 0.99}).eps(1e-8));
  }

  // Weight average with a horizon that grows from a few steps to about 500.
  void update_average(int64_t step) { update_weight_average(parameters_, average_parameters_, step, 0.998); }

  const GeneratorTrainingOptions& options_;
  FrozenClassifier& classifier_;
  const int64_t classes_;
  const ShapesWorld world_{kResolution};
  torch::jit::Module generator_, average_;
  std::vector<torch::Tensor> parameters_, average_parameters_;
  std::unique_ptr<torch::optim::Adam> optimizer_;
};

}  // namespace

torch::jit::Module train_renderer_objective(TrainingRun& run, const GeneratorTrainingOptions& options,
                                            FrozenClassifier& classifier) {
  RendererSteps steps(options, classifier);
  run.train(steps);
  return steps.average();
}

}  // namespace linkstyle::generator_training
