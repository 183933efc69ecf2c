// The classifier trainer's training batches and test sets (see data.hpp and
// classifier_training.hpp).
#include "train/classifier/data.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "linkstyle/errors.hpp"
#include "splitmix.hpp"
#include "train/training_common.hpp"

namespace linkstyle::classifier_training {

namespace fs = std::filesystem;

namespace {

constexpr int64_t kShapesResolution = 64;
constexpr int64_t kEvalBatch = 250;

}  // namespace

TrainingData::TrainingData(const ClassifierTrainingOptions& options) : options_(options), world_(kShapesResolution) {
  if (options.world == "fashion") {
    fashion_ =
        FashionMnist::load(options.fashion_folder.empty() ? default_fashion_folder() : options.fashion_folder, true);
  } else {
    // Training seeds: (seed << 40) + index of the image in the run, below 2^63.
    if (options.seed >= (uint64_t{1} << 22))
      throw Error("--seed", "must be < 2^22 for the shapes world, got " + std::to_string(options.seed));
  }
}

Batch TrainingData::batch(int64_t step) const {
  const int64_t b = options_.batch_size;
  if (options_.world == "shapes") {
    std::vector<int64_t> labels(static_cast<size_t>(b));
    std::vector<uint64_t> seeds(static_cast<size_t>(b));
    const int64_t classes = static_cast<int64_t>(ShapesWorld::class_names().size());
    for (int64_t i = 0; i < b; ++i) {
      const uint64_t index = static_cast<uint64_t>((step - 1) * b + i);
      labels[static_cast<size_t>(i)] = static_cast<int64_t>(index % static_cast<uint64_t>(classes));
      seeds[static_cast<size_t>(i)] = (options_.seed << 40) + index;
    }
    auto rendered = world_.render(labels, seeds);
    return {rendered.images, rendered.labels, rendered.factors};
  }
  at::Generator rng =
      at::detail::createCPUGenerator(splitmix64(splitmix64(options_.seed) + static_cast<uint64_t>(step)));
  const int64_t n = fashion_.images.size(0);
  const auto index = torch::randint(n, {b}, rng, torch::kLong);
  auto images = fashion_.images.index_select(0, index);
  const auto labels = fashion_.labels.index_select(0, index);
  // Random horizontal flip, then a random 32x32 crop of the image padded by 2 px.
  const auto flip = torch::rand({b}, rng, torch::kFloat) < 0.5;
  images = torch::where(flip.view({b, 1, 1, 1}), images.flip({3}), images);
  const auto padded = torch::constant_pad_nd(images, {2, 2, 2, 2}, 0.0);
  const auto offsets = torch::randint(5, {b, 2}, rng, torch::kLong);
  const auto offset = offsets.accessor<int64_t, 2>();
  std::vector<torch::Tensor> crops;
  crops.reserve(static_cast<size_t>(b));
  for (int64_t i = 0; i < b; ++i) crops.push_back(padded[i].narrow(1, offset[i][0], 32).narrow(2, offset[i][1], 32));
  return {torch::stack(crops).contiguous(), labels, {}};
}

double test_accuracy(const std::string& world, int64_t test_images, const fs::path& fashion_folder,
                     const std::function<torch::Tensor(const torch::Tensor&)>& logits_of) {
  training::check_world(world);
  torch::NoGradGuard no_grad;
  torch::Tensor images, labels;
  int64_t count = 0;
  FashionMnist fashion;
  if (world == "fashion") {
    fashion = FashionMnist::load(fashion_folder.empty() ? default_fashion_folder() : fashion_folder, false);
    count = fashion.images.size(0);
  } else {
    if (test_images < 1) throw Error("--test-images", "must be >= 1");
    count = test_images;
  }
  const ShapesWorld shapes(kShapesResolution);
  const int64_t classes = static_cast<int64_t>(ShapesWorld::class_names().size());
  int64_t correct = 0;
  for (int64_t start = 0; start < count; start += kEvalBatch) {
    const int64_t n = std::min(kEvalBatch, count - start);
    torch::Tensor x, y;
    if (world == "fashion") {
      x = fashion.images.narrow(0, start, n);
      y = fashion.labels.narrow(0, start, n);
    } else {
      std::vector<int64_t> l(static_cast<size_t>(n));
      std::vector<uint64_t> s(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) {
        l[static_cast<size_t>(i)] = (start + i) % classes;
        s[static_cast<size_t>(i)] = kShapesTestSeedBase + static_cast<uint64_t>(start + i);
      }
      auto batch = shapes.render(l, s);
      x = batch.images;
      y = batch.labels;
    }
    const torch::Tensor logits = logits_of(x);
    correct += (logits.argmax(1).cpu() == y).sum().item<int64_t>();
  }
  return static_cast<double>(correct) / static_cast<double>(count);
}

}  // namespace linkstyle::classifier_training

namespace linkstyle {

namespace fs = std::filesystem;

const std::vector<std::string>& world_class_names(const std::string& world) {
  training::check_world(world);
  return world == "shapes" ? ShapesWorld::class_names() : FashionMnist::class_names();
}

double classifier_test_accuracy(const Classifier& classifier, const std::string& world, int64_t test_images,
                                const fs::path& fashion_folder) {
  if (classifier.num_classes() != static_cast<int64_t>(world_class_names(world).size()))
    throw Error(classifier.file(), "has " + std::to_string(classifier.num_classes()) + " classes, the " + world +
                                       " world " + std::to_string(world_class_names(world).size()));
  return classifier_training::test_accuracy(world, test_images, fashion_folder, [&](const torch::Tensor& x) {
    return classifier.head(classifier.features(x));
  });
}

}  // namespace linkstyle
