// Helpers shared by the trainers (see training_common.hpp).
#include "train/training_common.hpp"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "linkstyle/errors.hpp"

namespace linkstyle::training {

namespace fs = std::filesystem;

void check_world(const std::string& world) {
  if (world != "shapes" && world != "fashion")
    throw Error("--world", "unknown world '" + world + "' (expected shapes or fashion)");
}

fs::path with_suffix(const fs::path& file, const std::string& suffix) { return fs::path(file.string() + suffix); }

torch::Tensor module_bytes(const torch::jit::Module& module) {
  std::ostringstream out;
  module.save(out);
  const std::string bytes = out.str();
  auto tensor = torch::empty({static_cast<int64_t>(bytes.size())}, torch::kByte);
  std::memcpy(tensor.data_ptr(), bytes.data(), bytes.size());
  return tensor;
}

torch::jit::Module module_from_bytes(const torch::Tensor& bytes) {
  const auto contiguous = bytes.contiguous();
  std::istringstream in(
      std::string(static_cast<const char*>(contiguous.data_ptr()), static_cast<size_t>(contiguous.numel())));
  return torch::jit::load(in);
}

c10::IValue read_value(torch::serialize::InputArchive& archive, const std::string& key) {
  c10::IValue value;
  archive.read(key, value);
  return value;
}

double cosine_learning_rate(double base, int64_t step, int64_t steps) {
  constexpr double kPi = 3.14159265358979323846;
  const double progress = static_cast<double>(step - 1) / static_cast<double>(steps);
  return base * 0.5 * (1.0 + std::cos(kPi * progress));
}

torch::Tensor kaiming_conv_weight(at::Generator& rng, int64_t out, int64_t in, int64_t kernel) {
  const double fan_in = static_cast<double>(in * kernel * kernel);
  return torch::randn({out, in, kernel, kernel}, rng, torch::kFloat) * std::sqrt(2.0 / fan_in);
}

void AdamTrainedModule::start(torch::jit::Module module) {
  module_ = std::move(module);
  module_.train();
  parameters_.clear();
  for (const auto& p : module_.parameters()) {
    p.requires_grad_(true);
    parameters_.push_back(p);
  }
  optimizer_ = std::make_unique<torch::optim::Adam>(parameters_, torch::optim::AdamOptions(learning_rate_));
}

void AdamTrainedModule::restore(torch::serialize::InputArchive& checkpoint) {
  torch::Tensor bytes;
  checkpoint.read("module", bytes);
  start(module_from_bytes(bytes));
  torch::serialize::InputArchive optimizer_archive;
  checkpoint.read("optimizer", optimizer_archive);
  optimizer_->load(optimizer_archive);
}

void AdamTrainedModule::save(torch::serialize::OutputArchive& checkpoint) const {
  checkpoint.write("module", module_bytes(module_));
  torch::serialize::OutputArchive optimizer_archive;
  optimizer_->save(optimizer_archive);
  checkpoint.write("optimizer", optimizer_archive);
}

StepRecord AdamTrainedModule::optimise_step(double learning_rate,
                                            const std::function<StepLoss(torch::jit::Module&)>& loss_of) {
  for (auto& group : optimizer_->param_groups())
    static_cast<torch::optim::AdamOptions&>(group.options()).lr(learning_rate);
  StepLoss step = loss_of(module_);
  optimizer_->zero_grad();
  step.loss.backward();
  optimizer_->step();
  return step.record;
}

StepRecord AdamTrainedModule::cross_entropy_step(const char* method, const torch::Tensor& inputs,
                                                 const torch::Tensor& targets, double learning_rate) {
  return optimise_step(learning_rate, [&](torch::jit::Module& module) {
    const torch::Tensor logits = module.get_method(method)({inputs}).toTensor();
    const torch::Tensor loss = torch::nn::functional::cross_entropy(logits, targets);
    const double loss_value = loss.item<double>();
    const double accuracy = (logits.detach().argmax(1) == targets).to(torch::kFloat).mean().item<double>();
    char fields[96];
    std::snprintf(fields, sizeof fields, "%.6f,%.6f", loss_value, accuracy);
    return StepLoss{loss, {{loss_value}, fields}};
  });
}

torch::jit::Module& AdamTrainedModule::finish() {
  for (auto& p : parameters_) p.requires_grad_(false);
  module_.eval();
  return module_;
}

}  // namespace linkstyle::training
