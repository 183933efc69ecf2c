// The generator objectives' shared state: checkpoint entries and the weight average (see
// training_state.hpp).
#include "train/generator/training_state.hpp"

#include <algorithm>

namespace linkstyle::generator_training {

torch::Tensor read_tensor(torch::serialize::InputArchive& archive, const std::string& key) {
  torch::Tensor tensor;
  archive.read(key, tensor);
  return tensor;
}

void load_optimiser(torch::optim::Adam& optimiser, torch::serialize::InputArchive& archive, const std::string& key) {
  torch::serialize::InputArchive optimiser_archive;
  archive.read(key, optimiser_archive);
  optimiser.load(optimiser_archive);
}

void save_optimiser(const torch::optim::Adam& optimiser, torch::serialize::OutputArchive& archive,
                    const std::string& key) {
  torch::serialize::OutputArchive optimiser_archive;
  optimiser.save(optimiser_archive);
  archive.write(key, optimiser_archive);
}

void collect_parameters(const torch::jit::Module& trained, const torch::jit::Module& average,
                        std::vector<torch::Tensor>& trained_parameters,
                        std::vector<torch::Tensor>& average_parameters) {
  trained_parameters.clear();
  for (const auto& p : trained.parameters()) {
    p.requires_grad_(true);
    trained_parameters.push_back(p);
  }
  average_parameters.clear();
  for (const auto& p : average.parameters()) {
    p.requires_grad_(false);
    average_parameters.push_back(p);
  }
}

void update_weight_average(const std::vector<torch::Tensor>& trained, std::vector<torch::Tensor>& average, int64_t step,
                           double max_beta) {
  torch::NoGradGuard no_grad;
  const double beta = std::min(max_beta, (1.0 + step) / (10.0 + step));
  for (size_t i = 0; i < trained.size(); ++i) average[i].mul_(beta).add_(trained[i].detach(), 1.0 - beta);
}

}  // namespace linkstyle::generator_training
