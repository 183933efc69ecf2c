// Training and evaluation of the shapes world's part segmenter (see segmenter_training.hpp).
#include "linkstyle/train/segmenter_training.hpp"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/script.h>
#include <torch/torch.h>

#include "linkstyle/errors.hpp"
#include "linkstyle/train/training_run.hpp"
#include "linkstyle/worlds/shapes.hpp"
#include "splitmix.hpp"
#include "train/training_common.hpp"

namespace linkstyle {

namespace fs = std::filesystem;

namespace {

constexpr int64_t kGroups = 8;
constexpr uint64_t kTestSeedBase = uint64_t{1} << 63;
constexpr uint64_t kAugmentStream = 0x5345474d454e5400ULL;  // "SEGMENT\0"
constexpr int64_t kEvalBatch = 250;
const char* const kLogHeader = "step,loss,pixel_accuracy,seconds";
std::string architecture(int64_t width) {
  return fmt::format(
      "u-net: encoder 3 levels ({}, {}, {} channels; 2 x (conv3x3, group norm 8, relu) each; 2x2 "
      "max pool between levels); decoder 2 levels (bilinear upsampling, concatenated skip, 2 x "
      "(conv3x3, group norm 8, relu); {}, {} channels); 1x1 conv head",
      width, 2 * width, 4 * width, 2 * width, width);
}

// "torch.relu(group_norm(conv3x3(x)))" for the parameters named `name`_w, `name`_g, `name`_b.
std::string conv_norm_relu(const std::string& x, const std::string& name) {
  return "torch.relu(torch.group_norm(torch.conv2d(" + x + ", self." + name + "_w, None, [1, 1], [1, 1]), " +
         std::to_string(kGroups) + ", self." + name + "_g, self." + name + "_b, 1e-5, True))";
}

void check_options(const SegmenterTrainingOptions& options) {
  if (options.batch_size < 1) throw Error("--batch-size", "must be >= 1, got " + std::to_string(options.batch_size));
  if (!(options.learning_rate > 0)) throw Error("--learning-rate", "must be > 0");
  if (options.test_images < 1) throw Error("--test-images", "must be >= 1, got " + std::to_string(options.test_images));
  if (options.width < 8 || options.width % kGroups != 0)
    throw Error("--width", "must be a multiple of 8 and at least 8, got " + std::to_string(options.width));
  if (options.resolution < 16 || options.resolution > 256 || options.resolution % 4 != 0)
    throw Error("--resolution", "must be a multiple of 4 in [16, 256], got " + std::to_string(options.resolution));
  // Training seeds: (seed << 40) + index of the image in the run, below 2^63.
  if (options.seed >= (uint64_t{1} << 22)) throw Error("--seed", "must be < 2^22, got " + std::to_string(options.seed));
}

TrainingRunOptions run_options(const SegmenterTrainingOptions& options) {
  return training_run_options(options, kLogHeader, "train shapes segmenter");
}

struct Batch {
  torch::Tensor images, parts;
};

// The training batch of `step` (1-based): a pure function of (options, step).
Batch training_batch(const ShapesWorld& world, const SegmenterTrainingOptions& options, int64_t step) {
  const int64_t b = options.batch_size;
  const auto classes = static_cast<uint64_t>(ShapesWorld::class_names().size());
  std::vector<int64_t> labels(static_cast<size_t>(b));
  std::vector<uint64_t> seeds(static_cast<size_t>(b));
  for (int64_t i = 0; i < b; ++i) {
    const auto index = static_cast<uint64_t>((step - 1) * b + i);
    labels[static_cast<size_t>(i)] = static_cast<int64_t>(index % classes);
    seeds[static_cast<size_t>(i)] = (options.seed << 40) + index;
  }
  auto rendered = world.render(labels, seeds);
  torch::Tensor images = rendered.images;
  if (options.augment) {
    // Light photometric jitter (the masks are unchanged): contrast around 0.5 in [0.85, 1.15],
    // brightness shift in [-0.08, 0.08], pixel noise with sigma in [0, 0.03].
    at::Generator rng = at::detail::createCPUGenerator(
        splitmix64(splitmix64(options.seed ^ kAugmentStream) + static_cast<uint64_t>(step)));
    const auto contrast = 0.85 + 0.3 * torch::rand({b, 1, 1, 1}, rng, torch::kFloat);
    const auto brightness = 0.16 * torch::rand({b, 1, 1, 1}, rng, torch::kFloat) - 0.08;
    const auto sigma = 0.03 * torch::rand({b, 1, 1, 1}, rng, torch::kFloat);
    const auto noise = torch::randn(images.sizes(), rng, torch::kFloat) * sigma;
    images = ((images - 0.5) * contrast + 0.5 + brightness + noise).clamp(0.0, 1.0);
  }
  return {images.contiguous(), rendered.parts};
}

// Confusion counts [K, K] (row: true label, column: predicted label).
torch::Tensor confusion(const torch::Tensor& predicted, const torch::Tensor& truth, int64_t k) {
  const auto p = predicted.to(torch::kCPU, torch::kLong).reshape({-1});
  const auto t = truth.to(torch::kCPU, torch::kLong).reshape({-1});
  return torch::bincount(t * k + p, {}, k * k).to(torch::kLong).reshape({k, k});
}

SegmentationMetrics metrics_from_confusion(const torch::Tensor& counts, int64_t images) {
  const int64_t k = counts.size(0);
  const auto c = counts.accessor<int64_t, 2>();
  SegmentationMetrics m;
  m.images = images;
  m.part_iou.assign(static_cast<size_t>(k), std::numeric_limits<double>::quiet_NaN());
  m.truth_pixels.assign(static_cast<size_t>(k), 0);
  int64_t correct = 0, total = 0, present = 0;
  double iou_sum = 0;
  for (int64_t i = 0; i < k; ++i) {
    int64_t row = 0, column = 0;
    for (int64_t j = 0; j < k; ++j) {
      row += c[i][j];
      column += c[j][i];
    }
    correct += c[i][i];
    total += row;
    m.truth_pixels[static_cast<size_t>(i)] = row;
    if (row == 0) continue;
    const double iou = static_cast<double>(c[i][i]) / static_cast<double>(row + column - c[i][i]);
    m.part_iou[static_cast<size_t>(i)] = iou;
    iou_sum += iou;
    ++present;
  }
  m.mean_iou = present > 0 ? iou_sum / static_cast<double>(present) : 0.0;
  m.pixel_accuracy = total > 0 ? static_cast<double>(correct) / static_cast<double>(total) : 0.0;
  return m;
}

torch::Tensor segment(torch::jit::Module& module, const torch::Tensor& images) {
  return module.get_method("segment")({images}).toTensor();
}

// The segmenter's part of a training run: the U-Net and its Adam, per-pixel cross-entropy steps
// on rendered batches at a cosine-decayed learning rate.
class SegmenterSteps final : public TrainingSteps {
 public:
  explicit SegmenterSteps(const SegmenterTrainingOptions& options)
      : options_(options), world_(options.resolution), model_(options.learning_rate) {}

  void start_fresh() override {
    model_.start(build_unet_segmenter(ShapesWorld::part_names(), options_.seed, options_.resolution, options_.width));
  }

  void check_settings(torch::serialize::InputArchive& checkpoint, const fs::path& file) override {
    const int64_t seed = training::read_value(checkpoint, "seed").toInt();
    const int64_t batch_size = training::read_value(checkpoint, "batch_size").toInt();
    const int64_t resolution = training::read_value(checkpoint, "resolution").toInt();
    const bool augment = training::read_value(checkpoint, "augment").toBool();
    c10::IValue value;
    const int64_t width = checkpoint.try_read("width", value) ? value.toInt() : 32;  // older checkpoints: 32
    if (width != options_.width)
      throw Error(file, "was made for width " + std::to_string(width) +
                            "; rerun with that --width or remove the checkpoint folder");
    if (seed != static_cast<int64_t>(options_.seed) || batch_size != options_.batch_size ||
        resolution != options_.resolution || augment != options_.augment)
      throw Error(file, "was made for seed " + std::to_string(seed) + ", batch size " + std::to_string(batch_size) +
                            ", resolution " + std::to_string(resolution) + (augment ? ", with" : ", without") +
                            " augmentation; rerun with those options or remove the checkpoint folder");
  }

  void restore_state(torch::serialize::InputArchive& checkpoint) override { model_.restore(checkpoint); }
  void save_state(torch::serialize::OutputArchive& checkpoint) override { model_.save(checkpoint); }

  void save_settings(torch::serialize::OutputArchive& checkpoint) override {
    checkpoint.write("seed", c10::IValue(static_cast<int64_t>(options_.seed)));
    checkpoint.write("batch_size", c10::IValue(options_.batch_size));
    checkpoint.write("resolution", c10::IValue(options_.resolution));
    checkpoint.write("augment", c10::IValue(options_.augment));
    checkpoint.write("width", c10::IValue(options_.width));
  }

  StepRecord step(int64_t step) override {
    const Batch batch = training_batch(world_, options_, step);
    const double learning_rate = training::cosine_learning_rate(options_.learning_rate, step, options_.steps);
    return model_.cross_entropy_step("segment", batch.images, batch.parts, learning_rate);
  }

  training::AdamTrainedModule& model() { return model_; }

 private:
  const SegmenterTrainingOptions& options_;
  const ShapesWorld world_;
  training::AdamTrainedModule model_;
};

nlohmann::json part_iou_json(const SegmentationMetrics& m) {
  nlohmann::json out = nlohmann::json::object();
  const auto& names = ShapesWorld::part_names();
  for (size_t i = 0; i < m.part_iou.size() && i < names.size(); ++i)
    out[names[i]] = std::isnan(m.part_iou[i]) ? nlohmann::json(nullptr) : nlohmann::json(m.part_iou[i]);
  return out;
}

nlohmann::json model_card(const SegmenterTrainingOptions& options, const SegmentationMetrics& test) {
  const auto& part_names = ShapesWorld::part_names();
  return {
      {"world", "shapes"},
      {"architecture", architecture(options.width)},
      {"width", options.width},
      {"part_names", part_names},
      {"num_parts", part_names.size()},
      {"resolution", options.resolution},
      {"seed", options.seed},
      {"batch_size", options.batch_size},
      {"learning_rate", options.learning_rate},
      {"augment", options.augment},
      {"test_images", options.test_images},
      {"mean_iou", test.mean_iou},
      {"pixel_accuracy", test.pixel_accuracy},
      {"part_iou", part_iou_json(test)},
  };
}

}  // namespace

torch::jit::Module build_unet_segmenter(const std::vector<std::string>& part_names, uint64_t seed, int64_t resolution,
                                        int64_t width) {
  if (width < 8 || width % kGroups != 0)
    throw Error("segmenter", fmt::format("width must be a multiple of {} and at least 8, got {}", kGroups, width));
  torch::NoGradGuard no_grad;
  at::Generator rng = at::detail::createCPUGenerator(seed);
  torch::jit::Module m("UNetSegmenter");
  c10::List<std::string> names;
  for (const auto& name : part_names) names.push_back(name);
  m.register_attribute("part_names", c10::ListType::ofStrings(), names);
  m.register_attribute("resolution", c10::IntType::get(), resolution);
  auto add_conv = [&](const std::string& name, int64_t in, int64_t out) {
    m.register_parameter(name + "_w", training::kaiming_conv_weight(rng, out, in, 3), false);
    m.register_parameter(name + "_g", torch::ones({out}, torch::kFloat), false);
    m.register_parameter(name + "_b", torch::zeros({out}, torch::kFloat), false);
  };
  const int64_t c1 = width, c2 = 2 * width, c3 = 4 * width;
  add_conv("e1a", 3, c1);
  add_conv("e1b", c1, c1);
  add_conv("e2a", c1, c2);
  add_conv("e2b", c2, c2);
  add_conv("e3a", c2, c3);
  add_conv("e3b", c3, c3);
  add_conv("d2a", c3 + c2, c2);
  add_conv("d2b", c2, c2);
  add_conv("d1a", c2 + c1, c1);
  add_conv("d1b", c1, c1);
  const auto k = static_cast<int64_t>(part_names.size());
  m.register_parameter("head_w", torch::randn({k, c1, 1, 1}, rng, torch::kFloat) * (0.1 / std::sqrt(double(c1))),
                       false);
  m.register_parameter("head_b", torch::zeros({k}, torch::kFloat), false);
  m.define(R"(
def segment(self, x: Tensor) -> Tensor:
    x = (x - 0.5) / 0.5
    e1 = )" +
           conv_norm_relu("x", "e1a") + R"(
    e1 = )" +
           conv_norm_relu("e1", "e1b") + R"(
    h = torch.max_pool2d(e1, [2, 2], [2, 2])
    e2 = )" +
           conv_norm_relu("h", "e2a") + R"(
    e2 = )" +
           conv_norm_relu("e2", "e2b") + R"(
    h = torch.max_pool2d(e2, [2, 2], [2, 2])
    h = )" +
           conv_norm_relu("h", "e3a") + R"(
    h = )" +
           conv_norm_relu("h", "e3b") + R"(
    h = torch.cat([torch.upsample_bilinear2d(h, [e2.size(2), e2.size(3)], False), e2], 1)
    h = )" +
           conv_norm_relu("h", "d2a") + R"(
    h = )" +
           conv_norm_relu("h", "d2b") + R"(
    h = torch.cat([torch.upsample_bilinear2d(h, [e1.size(2), e1.size(3)], False), e1], 1)
    h = )" +
           conv_norm_relu("h", "d1a") + R"(
    h = )" +
           conv_norm_relu("h", "d1b") + R"(
    return torch.conv2d(h, self.head_w, self.head_b)

def forward(self, x: Tensor) -> Tensor:
    return self.segment(x)
)");
  return m;
}

torch::jit::Module load_segmenter(const fs::path& file, c10::Device device) {
  if (!fs::exists(file)) throw Error(file, "no such file");
  torch::jit::Module module;
  try {
    module = torch::jit::load(file.string(), device);
  } catch (const c10::Error& e) {
    throw Error(file, std::string("cannot load the TorchScript module: ") + e.what_without_backtrace());
  }
  if (!module.find_method("segment")) throw Error(file, "has no method segment (not a segmenter)");
  if (!module.hasattr("part_names") || !module.hasattr("resolution"))
    throw Error(file, "lacks the attributes part_names and resolution (not a segmenter)");
  std::vector<std::string> names;
  try {
    for (const auto& name : module.attr("part_names").toListRef()) names.push_back(name.toStringRef());
    (void)module.attr("resolution").toInt();
  } catch (const c10::Error&) {
    throw Error(file, "part_names must be List[str] and resolution int");
  }
  if (names != ShapesWorld::part_names())
    throw Error(file, "its part_names (" + std::to_string(names.size()) + ") are not the shapes world's parts");
  module.eval();
  return module;
}

SegmentationMetrics segmentation_metrics(const torch::Tensor& predicted, const torch::Tensor& truth,
                                         int64_t num_labels) {
  if (num_labels < 1) throw Error("segmentation_metrics", "num_labels must be >= 1");
  if (predicted.sizes() != truth.sizes() || predicted.dim() != 3)
    throw Error("segmentation_metrics", "predicted and true masks must both be [N,H,W]");
  const auto low = std::min(predicted.min().item<int64_t>(), truth.min().item<int64_t>());
  const auto high = std::max(predicted.max().item<int64_t>(), truth.max().item<int64_t>());
  if (low < 0 || high >= num_labels)
    throw Error("segmentation_metrics", "labels must lie in [0, " + std::to_string(num_labels) + ")");
  return metrics_from_confusion(confusion(predicted, truth, num_labels), predicted.size(0));
}

SegmentationMetrics segmenter_test_metrics(torch::jit::Module& segmenter, int64_t test_images) {
  if (test_images < 1) throw Error("--test-images", "must be >= 1");
  torch::NoGradGuard no_grad;
  const int64_t resolution = segmenter.attr("resolution").toInt();
  c10::Device device(c10::kCPU);
  for (const auto& p : segmenter.parameters()) {
    device = p.device();
    break;
  }
  const ShapesWorld world(resolution);
  const auto k = static_cast<int64_t>(ShapesWorld::part_names().size());
  const auto classes = static_cast<int64_t>(ShapesWorld::class_names().size());
  auto counts = torch::zeros({k, k}, torch::kLong);
  for (int64_t start = 0; start < test_images; start += kEvalBatch) {
    const int64_t n = std::min(kEvalBatch, test_images - start);
    std::vector<int64_t> labels(static_cast<size_t>(n));
    std::vector<uint64_t> seeds(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      labels[static_cast<size_t>(i)] = (start + i) % classes;
      seeds[static_cast<size_t>(i)] = kTestSeedBase + static_cast<uint64_t>(start + i);
    }
    const auto batch = world.render(labels, seeds);
    const auto logits = segment(segmenter, batch.images.to(device));
    if (logits.dim() != 4 || logits.size(1) != k)
      throw Error("segmenter", "segment() must return [N," + std::to_string(k) + ",H,W] logits");
    counts += confusion(logits.argmax(1), batch.parts, k);
  }
  return metrics_from_confusion(counts, test_images);
}

SegmenterTrainingResult train_segmenter(const SegmenterTrainingOptions& options) {
  check_options(options);
  TrainingRun run(run_options(options));
  SegmenterSteps steps(options);
  run.train(steps);

  torch::NoGradGuard no_grad;
  torch::jit::Module& module = steps.model().finish();
  const SegmentationMetrics test = segmenter_test_metrics(module, options.test_images);
  run.save_model(module);
  load_segmenter(options.output);  // the contract holds
  run.write_card(model_card(options, test));
  return {run.result(), test};
}

}  // namespace linkstyle
