// The adversarial objective's real images (see training_images.hpp).
#include "train/generator/training_images.hpp"

#include <string>
#include <vector>

#include <torch/torch.h>

#include "linkstyle/errors.hpp"
#include "linkstyle/train/classifier_training.hpp"

namespace linkstyle::generator_training {

RealImages::RealImages(const GeneratorTrainingOptions& options) : options_(options) {
  if (options.world == "fashion")
    fashion_ =
        FashionMnist::load(options.fashion_folder.empty() ? default_fashion_folder() : options.fashion_folder, true);
  else if (options.seed >= (uint64_t{1} << 22))
    throw Error("--seed", "must be < 2^22 for the shapes world, got " + std::to_string(options.seed));
}

RealBatch RealImages::batch(int64_t step, at::Generator& rng) const {
  const int64_t b = options_.batch_size;
  if (options_.world == "fashion") {
    const auto index = torch::randint(fashion_.images.size(0), {b}, rng, torch::kLong);
    return {fashion_.images.index_select(0, index), fashion_.labels.index_select(0, index)};
  }
  const auto labels = torch::randint(classes(), {b}, rng, torch::kLong);
  std::vector<int64_t> l(labels.data_ptr<int64_t>(), labels.data_ptr<int64_t>() + b);
  std::vector<uint64_t> seeds(static_cast<size_t>(b));
  for (int64_t i = 0; i < b; ++i)
    seeds[static_cast<size_t>(i)] = (options_.seed << 40) + static_cast<uint64_t>((step - 1) * b + i);
  auto rendered = world_.render(l, seeds);
  return {rendered.images, rendered.labels};
}

int64_t RealImages::classes() const { return static_cast<int64_t>(world_class_names(options_.world).size()); }

}  // namespace linkstyle::generator_training
