// Training and evaluation of the shapes world's part segmenter (see segmenter_training.hpp).
#include "linkstyle/train/segmenter_training.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/script.h>
#include <torch/torch.h>

#include "linkstyle/atomic_file.hpp"
#include "linkstyle/errors.hpp"
#include "linkstyle/progress.hpp"
#include "linkstyle/worlds/shapes.hpp"
#include "splitmix.hpp"
#include "train/training_common.hpp"

namespace linkstyle {

namespace fs = std::filesystem;
using training::with_suffix;

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

torch::Tensor conv_weight(at::Generator& rng, int64_t out, int64_t in, int64_t kernel) {
  const double fan_in = static_cast<double>(in * kernel * kernel);
  return torch::randn({out, in, kernel, kernel}, rng, torch::kFloat) * std::sqrt(2.0 / fan_in);
}

// "torch.relu(group_norm(conv3x3(x)))" for the parameters named `name`_w, `name`_g, `name`_b.
std::string conv_norm_relu(const std::string& x, const std::string& name) {
  return "torch.relu(torch.group_norm(torch.conv2d(" + x + ", self." + name + "_w, None, [1, 1], [1, 1]), " +
         std::to_string(kGroups) + ", self." + name + "_g, self." + name + "_b, 1e-5, True))";
}

void check_options(const SegmenterTrainingOptions& options) {
  if (options.output.empty()) throw Error("--output", "pass the model file to write (-o FILE)");
  if (options.steps < 1) throw Error("--steps", "must be >= 1, got " + std::to_string(options.steps));
  if (options.batch_size < 1) throw Error("--batch-size", "must be >= 1, got " + std::to_string(options.batch_size));
  if (options.checkpoint_every < 1)
    throw Error("--checkpoint-every", "must be >= 1, got " + std::to_string(options.checkpoint_every));
  if (!(options.learning_rate > 0)) throw Error("--learning-rate", "must be > 0");
  if (options.test_images < 1) throw Error("--test-images", "must be >= 1, got " + std::to_string(options.test_images));
  if (options.width < 8 || options.width % kGroups != 0)
    throw Error("--width", "must be a multiple of 8 and at least 8, got " + std::to_string(options.width));
  if (options.resolution < 16 || options.resolution > 256 || options.resolution % 4 != 0)
    throw Error("--resolution", "must be a multiple of 4 in [16, 256], got " + std::to_string(options.resolution));
  // Training seeds: (seed << 40) + index of the image in the run, below 2^63.
  if (options.seed >= (uint64_t{1} << 22)) throw Error("--seed", "must be < 2^22, got " + std::to_string(options.seed));
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

struct Checkpoint {
  int64_t step = 0;
  double seconds = 0;
};

void write_checkpoint(const fs::path& file, const torch::jit::Module& module, const torch::optim::Adam& optimizer,
                      const SegmenterTrainingOptions& options, const Checkpoint& state) {
  torch::serialize::OutputArchive archive;
  archive.write("module", training::module_bytes(module));
  torch::serialize::OutputArchive optimizer_archive;
  optimizer.save(optimizer_archive);
  archive.write("optimizer", optimizer_archive);
  archive.write("step", c10::IValue(state.step));
  archive.write("seconds", c10::IValue(state.seconds));
  archive.write("seed", c10::IValue(static_cast<int64_t>(options.seed)));
  archive.write("batch_size", c10::IValue(options.batch_size));
  archive.write("resolution", c10::IValue(options.resolution));
  archive.write("augment", c10::IValue(options.augment));
  archive.write("width", c10::IValue(options.width));
  AtomicFile out(file);
  archive.save_to(out.stream());
  out.commit();
}

nlohmann::json part_iou_json(const SegmentationMetrics& m) {
  nlohmann::json out = nlohmann::json::object();
  const auto& names = ShapesWorld::part_names();
  for (size_t i = 0; i < m.part_iou.size() && i < names.size(); ++i)
    out[names[i]] = std::isnan(m.part_iou[i]) ? nlohmann::json(nullptr) : nlohmann::json(m.part_iou[i]);
  return out;
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
    m.register_parameter(name + "_w", conv_weight(rng, out, in, 3), false);
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
  SegmenterTrainingResult result;
  result.model = options.output;
  result.card = with_suffix(options.output, ".json");
  result.log = with_suffix(options.output, ".log.csv");
  const fs::path checkpoint_folder = with_suffix(options.output, ".checkpoint");
  result.checkpoint = checkpoint_folder / "checkpoint.pt";
  ensure_writable_directory(fs::absolute(options.output).parent_path());
  ensure_writable_directory(checkpoint_folder);

  const ShapesWorld world(options.resolution);
  const auto& part_names = ShapesWorld::part_names();
  torch::manual_seed(options.seed);
  torch::jit::Module module;
  Checkpoint state;
  bool resumed = false;
  torch::serialize::InputArchive optimizer_archive;
  if (fs::exists(result.checkpoint)) {
    try {
      torch::serialize::InputArchive archive;
      archive.load_from(result.checkpoint.string());
      c10::IValue value;
      archive.read("seed", value);
      const int64_t seed = value.toInt();
      archive.read("batch_size", value);
      const int64_t batch_size = value.toInt();
      archive.read("resolution", value);
      const int64_t resolution = value.toInt();
      archive.read("augment", value);
      const bool augment = value.toBool();
      const int64_t width = archive.try_read("width", value) ? value.toInt() : 32;  // older checkpoints: 32
      if (width != options.width)
        throw Error(result.checkpoint, "was made for width " + std::to_string(width) +
                                           "; rerun with that --width or remove the checkpoint folder");
      if (seed != static_cast<int64_t>(options.seed) || batch_size != options.batch_size ||
          resolution != options.resolution || augment != options.augment)
        throw Error(result.checkpoint, "was made for seed " + std::to_string(seed) + ", batch size " +
                                           std::to_string(batch_size) + ", resolution " + std::to_string(resolution) +
                                           (augment ? ", with" : ", without") +
                                           " augmentation; rerun with those options or remove the checkpoint folder");
      archive.read("step", value);
      state.step = value.toInt();
      archive.read("seconds", value);
      state.seconds = value.toDouble();
      torch::Tensor bytes;
      archive.read("module", bytes);
      module = training::module_from_bytes(bytes);
      archive.read("optimizer", optimizer_archive);
      resumed = true;
    } catch (const c10::Error& e) {
      throw Error(result.checkpoint, std::string("cannot read the checkpoint: ") + e.what_without_backtrace());
    }
  } else {
    module = build_unet_segmenter(part_names, options.seed, options.resolution, options.width);
  }
  result.resumed_from = state.step;
  module.train();

  std::vector<torch::Tensor> parameters;
  for (const auto& p : module.parameters()) {
    p.requires_grad_(true);
    parameters.push_back(p);
  }
  torch::optim::Adam optimizer(parameters, torch::optim::AdamOptions(options.learning_rate));
  if (resumed) optimizer.load(optimizer_archive);

  if (resumed && fs::exists(result.log))
    training::truncate_log(result.log, state.step, kLogHeader);
  else
    write_file_atomically(result.log, std::string(kLogHeader) + "\n");
  std::ofstream log(result.log, std::ios::app);
  if (!log) throw Error(result.log, "cannot open for appending");

  ProgressBar bar("train shapes segmenter", options.steps);
  if (!options.progress) bar.finish();
  const auto run_start = std::chrono::steady_clock::now();
  const double seconds_before = state.seconds;
  auto elapsed = [&] {
    return seconds_before + std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count();
  };
  for (int64_t step = state.step + 1; step <= options.steps; ++step) {
    const double lr = training::cosine_learning_rate(options.learning_rate, step, options.steps);
    for (auto& group : optimizer.param_groups()) static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr);
    const Batch batch = training_batch(world, options, step);
    const torch::Tensor logits = segment(module, batch.images);
    const torch::Tensor loss = torch::nn::functional::cross_entropy(logits, batch.parts);
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
    const double loss_value = loss.item<double>();
    if (!std::isfinite(loss_value))
      throw Error(options.output, "training diverged at step " + std::to_string(step) + " (loss is not finite)");
    const double accuracy = (logits.detach().argmax(1) == batch.parts).to(torch::kFloat).mean().item<double>();
    state.step = step;
    state.seconds = elapsed();
    char row[160];
    std::snprintf(row, sizeof row, "%lld,%.6f,%.6f,%.3f\n", static_cast<long long>(step), loss_value, accuracy,
                  state.seconds);
    log << row << std::flush;
    if (step % options.checkpoint_every == 0 || step == options.steps)
      write_checkpoint(result.checkpoint, module, optimizer, options, state);
    if (options.progress) bar.set(step);
  }
  bar.finish();
  log.close();
  result.steps = state.step;
  result.training_seconds = state.seconds;

  // The exported model: plain parameters, evaluation mode.
  torch::NoGradGuard no_grad;
  for (auto& p : parameters) p.requires_grad_(false);
  module.eval();
  result.test = segmenter_test_metrics(module, options.test_images);
  training::save_module_atomically(module, options.output);
  load_segmenter(options.output);  // the contract holds
  nlohmann::json card = {
      {"world", "shapes"},
      {"architecture", architecture(options.width)},
      {"width", options.width},
      {"part_names", part_names},
      {"num_parts", part_names.size()},
      {"resolution", options.resolution},
      {"steps", result.steps},
      {"seed", options.seed},
      {"batch_size", options.batch_size},
      {"learning_rate", options.learning_rate},
      {"augment", options.augment},
      {"command_line", options.command_line},
      {"test_images", options.test_images},
      {"mean_iou", result.test.mean_iou},
      {"pixel_accuracy", result.test.pixel_accuracy},
      {"part_iou", part_iou_json(result.test)},
      {"training_seconds", result.training_seconds},
      {"git_revision", training::git_revision()},
  };
  write_file_atomically(result.card, card.dump(2) + "\n");
  return result;
}

}  // namespace linkstyle
