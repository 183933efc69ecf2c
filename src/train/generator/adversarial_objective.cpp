// The adversarial objective of generator training (see adversarial_objective.hpp).
#include "train/generator/adversarial_objective.hpp"

#include <cstdio>
#include <cstring>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "linkstyle/errors.hpp"
#include "linkstyle/train/classifier_training.hpp"
#include "splitmix.hpp"
#include "train/generator/discriminator.hpp"
#include "train/generator/network.hpp"
#include "train/generator/sample_grids.hpp"
#include "train/generator/training_state.hpp"
#include "train/training_common.hpp"

namespace linkstyle::generator_training {

namespace fs = std::filesystem;

namespace {

constexpr int64_t kR1Interval = 16;

torch::Tensor module_state(torch::nn::Module& module) {
  torch::serialize::OutputArchive archive;
  module.save(archive);
  std::ostringstream out;
  archive.save_to(out);
  const std::string bytes = out.str();
  auto tensor = torch::empty({static_cast<int64_t>(bytes.size())}, torch::kByte);
  std::memcpy(tensor.data_ptr(), bytes.data(), bytes.size());
  return tensor;
}

void load_module_state(torch::nn::Module& module, const torch::Tensor& bytes) {
  const auto contiguous = bytes.contiguous();
  std::istringstream in(
      std::string(static_cast<const char*>(contiguous.data_ptr()), static_cast<size_t>(contiguous.numel())));
  torch::serialize::InputArchive archive;
  archive.load_from(in);
  module.load(archive);
}

// The generator's part of a training run: the generator, its weight average, the projected
// discriminator and their Adams; each step trains the discriminator, then the generator, then
// updates the average.
class GeneratorSteps final : public TrainingSteps {
 public:
  GeneratorSteps(const GeneratorTrainingOptions& options, const RealImages& real, FrozenClassifier& classifier)
      : options_(options), real_(real), classifier_(classifier), classes_(real.classes()) {}

  void start_fresh() override {
    make_discriminator();
    generator_ = build_style_generator(world_class_names(options_.world), options_.seed);
    average_ = generator_.clone();
    make_optimisers();
  }

  void check_settings(torch::serialize::InputArchive& checkpoint, const fs::path& file) override;

  void restore_state(torch::serialize::InputArchive& checkpoint) override {
    make_discriminator();
    generator_ = training::module_from_bytes(read_tensor(checkpoint, "generator"));
    average_ = training::module_from_bytes(read_tensor(checkpoint, "average"));
    load_module_state(*discriminator_, read_tensor(checkpoint, "discriminator"));
    make_optimisers();
    load_optimiser(*g_optimizer_, checkpoint, "g_optimizer");
    load_optimiser(*d_optimizer_, checkpoint, "d_optimizer");
  }

  void save_state(torch::serialize::OutputArchive& checkpoint) override {
    checkpoint.write("generator", training::module_bytes(generator_));
    checkpoint.write("average", training::module_bytes(average_));
    checkpoint.write("discriminator", module_state(*discriminator_));
    save_optimiser(*g_optimizer_, checkpoint, "g_optimizer");
    save_optimiser(*d_optimizer_, checkpoint, "d_optimizer");
  }

  void save_settings(torch::serialize::OutputArchive& checkpoint) override {
    checkpoint.write("seed", c10::IValue(static_cast<int64_t>(options_.seed)));
    checkpoint.write("world", c10::IValue(options_.world));
    checkpoint.write("batch_size", c10::IValue(options_.batch_size));
    checkpoint.write("minibatch_std_group", c10::IValue(options_.minibatch_std_group));
    checkpoint.write("pixel_head", c10::IValue(options_.pixel_head));
    checkpoint.write("augment", c10::IValue(options_.augment));
    checkpoint.write("objective", c10::IValue(options_.objective));
    checkpoint.write("classifier_fingerprint", c10::IValue(classifier_.fingerprint));
  }

  StepRecord step(int64_t step) override;

  void after_checkpoint() override { write_preview(average_, classes_, options_.output); }

  torch::jit::Module& average() { return average_; }

 private:
  struct DiscriminatorStep {
    torch::Tensor loss, real, fake;
    double r1 = 0;
  };
  struct GeneratorStep {
    torch::Tensor loss, guidance;
    double accuracy = 0;
  };

  void make_discriminator() {
    discriminator_ = ProjectedDiscriminator(classifier_.stage_channels, classifier_.stage_sides, classes_,
                                            options_.minibatch_std_group, options_.pixel_head);
  }

  void make_optimisers() {
    collect_parameters(generator_, average_, g_parameters_, average_parameters_);
    const auto adam = [](double learning_rate) {
      return torch::optim::AdamOptions(learning_rate).betas({0.0, 0.99}).eps(1e-8);
    };
    g_optimizer_ = std::make_unique<torch::optim::Adam>(g_parameters_, adam(options_.learning_rate));
    d_optimizer_ = std::make_unique<torch::optim::Adam>(discriminator_->parameters(), adam(options_.d_learning_rate));
  }

  torch::Tensor discriminate(const torch::Tensor& augmented, const torch::Tensor& labels) {
    return discriminator_->forward(augmented, stages_of(classifier_.module, augmented), labels);
  }

  DiscriminatorStep discriminator_step(int64_t step, at::Generator& rng);
  GeneratorStep generator_step(at::Generator& rng);
  void update_average(int64_t step);

  const GeneratorTrainingOptions& options_;
  const RealImages& real_;
  FrozenClassifier& classifier_;
  const int64_t classes_;
  ProjectedDiscriminator discriminator_{nullptr};
  torch::jit::Module generator_, average_;
  std::vector<torch::Tensor> g_parameters_, average_parameters_;
  std::unique_ptr<torch::optim::Adam> g_optimizer_, d_optimizer_;
};

void GeneratorSteps::check_settings(torch::serialize::InputArchive& checkpoint, const fs::path& file) {
  const std::string world = training::read_value(checkpoint, "world").toStringRef();
  const int64_t seed = training::read_value(checkpoint, "seed").toInt();
  const int64_t batch_size = training::read_value(checkpoint, "batch_size").toInt();
  // Checkpoints from before an option was added were made without it.
  c10::IValue value;
  const int64_t minibatch_group = checkpoint.try_read("minibatch_std_group", value) ? value.toInt() : 0;
  const bool pixel_head = checkpoint.try_read("pixel_head", value) ? value.toBool() : false;
  const std::string augmentation = checkpoint.try_read("augment", value) ? value.toStringRef() : "all";
  const std::string objective = checkpoint.try_read("objective", value) ? value.toStringRef() : "adversarial";
  if (objective != options_.objective)
    throw Error(file, "was made for objective " + objective + "; rerun with it or remove the checkpoint folder");
  if (world != options_.world || seed != static_cast<int64_t>(options_.seed) || batch_size != options_.batch_size ||
      minibatch_group != options_.minibatch_std_group || pixel_head != options_.pixel_head ||
      augmentation != options_.augment)
    throw Error(file, "was made for world " + world + ", seed " + std::to_string(seed) + ", batch size " +
                          std::to_string(batch_size) + ", minibatch std group " + std::to_string(minibatch_group) +
                          ", " + (pixel_head ? "a" : "no") + " pixel head" + ", augmentation " + augmentation +
                          "; rerun with those options or remove the checkpoint folder");
  check_classifier_fingerprint(checkpoint, file, classifier_, options_);
}

GeneratorSteps::DiscriminatorStep GeneratorSteps::discriminator_step(int64_t step, at::Generator& rng) {
  const RealBatch batch = real_.batch(step, rng);
  const auto z = torch::randn({options_.batch_size, kZDim}, rng, torch::kFloat);
  torch::Tensor fake;
  {
    torch::NoGradGuard no_grad;
    fake = (generator_.forward({z, batch.labels}).toTensor() + 1.0) * 0.5;
  }
  DiscriminatorStep d;
  d.real = discriminate(augment(batch.images, rng, options_.augment), batch.labels);
  d.fake = discriminate(augment(fake, rng, options_.augment), batch.labels);
  d.loss = torch::softplus(d.fake).mean() + torch::softplus(-d.real).mean();
  if (options_.r1_gamma > 0 && step % kR1Interval == 0) {
    const auto images = batch.images.detach().requires_grad_(true);
    const auto scores = discriminate(augment(images, rng, options_.augment), batch.labels);
    const auto gradient = torch::autograd::grad({scores.sum()}, {images}, {}, true, true)[0];
    const auto r1 = gradient.square().sum({1, 2, 3}).mean();
    d.r1 = r1.item<double>();
    d.loss = d.loss + r1 * (options_.r1_gamma * 0.5 * kR1Interval);
  }
  d_optimizer_->zero_grad();
  d.loss.backward();
  d_optimizer_->step();
  return d;
}

GeneratorSteps::GeneratorStep GeneratorSteps::generator_step(at::Generator& rng) {
  const auto labels = torch::randint(classes_, {options_.batch_size}, rng, torch::kLong);
  const auto z = torch::randn({options_.batch_size, kZDim}, rng, torch::kFloat);
  const auto images = (generator_.forward({z, labels}).toTensor() + 1.0) * 0.5;
  const auto augmented = augment(images, rng, options_.augment);
  const auto stages = stages_of(classifier_.module, augmented);
  for (auto& p : discriminator_->parameters()) p.requires_grad_(false);
  const auto scores = discriminator_->forward(augmented, stages, labels);
  for (auto& p : discriminator_->parameters()) p.requires_grad_(true);
  const auto logits = classifier_.module.get_method("head")({stages.back().mean({2, 3})}).toTensor();
  GeneratorStep g;
  g.guidance = torch::nn::functional::cross_entropy(logits, labels);
  g.loss = torch::softplus(-scores).mean() + g.guidance * options_.guidance_weight;
  g_optimizer_->zero_grad();
  g.loss.backward();
  g_optimizer_->step();
  g.accuracy = (logits.argmax(1) == labels).to(torch::kFloat).mean().item<double>();
  return g;
}

// Weight average with a horizon that grows from a few steps to about 200.
void GeneratorSteps::update_average(int64_t step) {
  update_weight_average(g_parameters_, average_parameters_, step, 0.995);
}

StepRecord GeneratorSteps::step(int64_t step) {
  at::Generator rng =
      at::detail::createCPUGenerator(splitmix64(splitmix64(options_.seed ^ 0x67616eULL) + static_cast<uint64_t>(step)));
  const DiscriminatorStep d = discriminator_step(step, rng);
  const GeneratorStep g = generator_step(rng);
  update_average(step);
  const double d_value = d.loss.item<double>(), g_value = g.loss.item<double>();
  char fields[192];
  std::snprintf(fields, sizeof fields, "%.5f,%.5f,%.5f,%.5f,%.5f,%.5f,%.4f", d_value, g_value,
                d.real.mean().item<double>(), d.fake.mean().item<double>(), d.r1, g.guidance.item<double>(),
                g.accuracy);
  return {{d_value, g_value}, fields};
}

}  // namespace

torch::jit::Module train_adversarial_objective(TrainingRun& run, const GeneratorTrainingOptions& options,
                                               const RealImages& real, FrozenClassifier& classifier) {
  GeneratorSteps steps(options, real, classifier);
  run.train(steps);
  return steps.average();
}

}  // namespace linkstyle::generator_training
