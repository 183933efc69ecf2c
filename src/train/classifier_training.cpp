// Training of the worlds' built-in classifiers (see classifier_training.hpp).
#include "linkstyle/train/classifier_training.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/script.h>
#include <torch/torch.h>

#include "linkstyle/errors.hpp"
#include "linkstyle/planted_units.hpp"
#include "linkstyle/train/training_run.hpp"
#include "linkstyle/worlds/fashion.hpp"
#include "linkstyle/worlds/shapes.hpp"
#include "splitmix.hpp"
#include "train/training_common.hpp"

namespace linkstyle {

namespace fs = std::filesystem;

namespace {

const char* const kLogHeader = "step,loss,train_accuracy,seconds";
const char* const kPlantedLogHeader = "step,loss,train_accuracy,planted_rmse,seconds";

constexpr int64_t kShapesResolution = 64;
constexpr int64_t kGroups = 8;
constexpr uint64_t kShapesTestSeedBase = uint64_t{1} << 63;
constexpr int64_t kEvalBatch = 250;
const char* const kArchitecture =
    "resnet: stem conv3x3 32; 4 stages x 1 basic block (32, 64, 128, 256; stride 2 at stages 2-4; "
    "1x1 projection shortcut); group norm (8 groups); global average pool; linear head";

std::string conv(const std::string& x, const std::string& weight, int64_t stride, int64_t pad) {
  return "torch.conv2d(" + x + ", self." + weight + ", None, [" + std::to_string(stride) + ", " +
         std::to_string(stride) + "], [" + std::to_string(pad) + ", " + std::to_string(pad) + "])";
}

std::string norm(const std::string& x, const std::string& name) {
  return "torch.group_norm(" + x + ", " + std::to_string(kGroups) + ", self." + name + "_g, self." + name +
         "_b, 1e-5, True)";
}

// Group norm with `groups` groups, for the plain network (whose first stage may be narrow).
std::string plain_norm(int64_t groups, const std::string& x, const std::string& name) {
  return "torch.group_norm(" + x + ", " + std::to_string(groups) + ", self." + name + "_g, self." + name +
         "_b, 1e-5, True)";
}

// The plain network's groups: 8 when its first stage has a multiple of 8 channels, else 1 per
// 4 channels or fewer.
int64_t plain_groups(int64_t width) {
  if (width % 8 == 0) return 8;
  for (int64_t g = std::min<int64_t>(width, 4); g > 1; --g)
    if (width % g == 0) return g;
  return 1;
}

// The plain network's channels per stage: width, 2, 4 and 8 x width (D = 8 x width).
std::vector<int64_t> plain_widths(int64_t width) { return {width, 2 * width, 4 * width, 8 * width}; }

std::string plain_architecture(int64_t width) {
  const auto w = plain_widths(width);
  return fmt::format("plain: stem conv3x3 {}; 4 stages x 2 conv3x3 ({}, {}, {}, {}; stride 2 at the first conv of "
                     "stages 2-4), no shortcuts; group norm ({} groups); global average pool; linear head (D = {})",
                     w[0], w[0], w[1], w[2], w[3], plain_groups(width), w[3]);
}

// The linear head and forward of every built-in classifier.
const char* const kHeadSource = R"(
def head(self, r: Tensor) -> Tensor:
    return torch.linear(r, self.head_w, self.head_b)

def forward(self, x: Tensor) -> Tensor:
    return self.head(self.features(x))
)";

// An empty classifier module with the contract's attributes class_names and input_size.
torch::jit::Module classifier_module(const std::string& name, const std::vector<std::string>& class_names,
                                     int64_t input_size) {
  torch::jit::Module m(name);
  c10::List<std::string> names;
  for (const auto& class_name : class_names) names.push_back(class_name);
  m.register_attribute("class_names", c10::ListType::ofStrings(), names);
  m.register_attribute("input_size", c10::IntType::get(), input_size);
  return m;
}

// The forward pass of a built-in classifier from the input to the last stage's output h, as
// TorchScript lines; with collect_stages, each stage's output is appended to `stages`.
std::string resnet_body(const torch::jit::Module& m, bool collect_stages) {
  std::string body = R"(    if x.size(2) != self.input_size or x.size(3) != self.input_size:
        x = torch.upsample_bilinear2d(x, [self.input_size, self.input_size], False)
    x = (x - 0.5) / 0.5
    h = torch.relu()" +
                     norm(conv("x", "stem_w", 1, 1), "stem_n") + ")\n";
  if (collect_stages) body += "    stages: List[Tensor] = []\n";
  for (int stage = 1; stage <= 4; ++stage) {
    const std::string b = "b" + std::to_string(stage);
    const int64_t stride = stage == 1 ? 1 : 2;
    body += "    y = torch.relu(" + norm(conv("h", b + "_c1_w", stride, 1), b + "_n1") + ")\n";
    body += "    y = " + norm(conv("y", b + "_c2_w", 1, 1), b + "_n2") + "\n";
    if (m.hasattr(b + "_p_w"))
      body += "    h = torch.relu(y + " + norm(conv("h", b + "_p_w", stride, 0), b + "_np") + ")\n";
    else
      body += "    h = torch.relu(y + h)\n";
    if (collect_stages) body += "    stages.append(h)\n";
  }
  return body;
}

std::string feature_pyramid_source(const torch::jit::Module& m) {
  return "def feature_pyramid(self, x: Tensor) -> List[Tensor]:\n" + resnet_body(m, true) + "    return stages\n";
}

// The plain network's forward pass from the input to the last stage's output h, as TorchScript
// lines: two convolutions per stage, no shortcut.
std::string plain_body(int64_t groups, bool collect_stages) {
  std::string body = R"(    if x.size(2) != self.input_size or x.size(3) != self.input_size:
        x = torch.upsample_bilinear2d(x, [self.input_size, self.input_size], False)
    x = (x - 0.5) / 0.5
    h = torch.relu()" +
                     plain_norm(groups, conv("x", "stem_w", 1, 1), "stem_n") + ")\n";
  if (collect_stages) body += "    stages: List[Tensor] = []\n";
  for (int stage = 1; stage <= 4; ++stage) {
    const std::string b = "b" + std::to_string(stage);
    body += "    h = torch.relu(" + plain_norm(groups, conv("h", b + "_c1_w", stage == 1 ? 1 : 2, 1), b + "_n1") + ")\n";
    body += "    h = torch.relu(" + plain_norm(groups, conv("h", b + "_c2_w", 1, 1), b + "_n2") + ")\n";
    if (collect_stages) body += "    stages.append(h)\n";
  }
  return body;
}

void check_world(const std::string& world) {
  if (world != "shapes" && world != "fashion")
    throw Error("--world", "unknown world '" + world + "' (expected shapes or fashion)");
}

struct Batch {
  torch::Tensor images, labels, factors;  // factors: shapes only
};

// The training batch of `step` (1-based): a pure function of (seed, step).
class TrainingData {
 public:
  TrainingData(const ClassifierTrainingOptions& options) : options_(options) {
    if (options.world == "fashion") {
      fashion_ =
          FashionMnist::load(options.fashion_folder.empty() ? default_fashion_folder() : options.fashion_folder, true);
    } else {
      // Training seeds: (seed << 40) + index of the image in the run, below 2^63.
      if (options.seed >= (uint64_t{1} << 22))
        throw Error("--seed", "must be < 2^22 for the shapes world, got " + std::to_string(options.seed));
    }
  }

  Batch batch(int64_t step) const {
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

 private:
  const ClassifierTrainingOptions& options_;
  ShapesWorld world_{kShapesResolution};
  FashionMnist fashion_;
};

torch::Tensor call(torch::jit::Module& module, const char* method, const torch::Tensor& x) {
  return module.get_method(method)({x}).toTensor();
}

// Fraction of correct argmax predictions of `logits_of` over the world's test set.
template <typename Logits>
double test_accuracy(const std::string& world, int64_t test_images, const fs::path& fashion_folder,
                     Logits&& logits_of) {
  check_world(world);
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

void check_options(const ClassifierTrainingOptions& options) {
  check_world(options.world);
  if (options.batch_size < 1) throw Error("--batch-size", "must be >= 1, got " + std::to_string(options.batch_size));
  if (!(options.learning_rate > 0)) throw Error("--learning-rate", "must be > 0");
  if (options.world == "shapes" && options.test_images < 1)
    throw Error("--test-images", "must be >= 1, got " + std::to_string(options.test_images));
  if (options.planted && options.world != "shapes") throw Error("--planted", "needs the shapes world");
  if (options.planted && !(options.planted_weight > 0)) throw Error("--planted-weight", "must be > 0");
  if (options.architecture != "resnet" && options.architecture != "plain")
    throw Error("--architecture", "must be resnet or plain, not '" + options.architecture + "'");
  if (options.planted && options.architecture != "resnet") throw Error("--planted", "needs --architecture resnet");
  if (options.width < 1 || options.width > 256) throw Error("--width", "must be in [1, 256]");
}

TrainingRunOptions run_options(const ClassifierTrainingOptions& options) {
  return training_run_options(options, options.planted ? kPlantedLogHeader : kLogHeader,
                              "train " + options.world + " classifier");
}

// A flag of a checkpoint that older checkpoints lack (false then).
bool checkpoint_flag(torch::serialize::InputArchive& checkpoint, const std::string& key) {
  c10::IValue value;
  return checkpoint.try_read(key, value) && value.isBool() && value.toBool();
}

// The classifier's part of a training run: the ResNet and its Adam, cross-entropy steps on the
// world's batches at a cosine-decayed learning rate.
class ClassifierSteps final : public TrainingSteps {
 public:
  ClassifierSteps(const ClassifierTrainingOptions& options, const TrainingData& data)
      : options_(options), data_(data), model_(options.learning_rate) {
    if (options.planted) {
      planted_ = default_planted_units();
      std::vector<int64_t> index;
      for (const auto& unit : planted_) index.push_back(unit.unit);
      planted_index_ = torch::tensor(index, torch::kLong);
    }
  }

  void start_fresh() override {
    if (options_.architecture == "plain") {
      model_.start(build_plain_classifier(world_class_names(options_.world), options_.seed, options_.width));
      return;
    }
    model_.start(build_resnet_classifier(world_class_names(options_.world), options_.seed, 32,
                                         options_.planted ? default_planted_units() : std::vector<PlantedUnit>{}));
  }

  void check_settings(torch::serialize::InputArchive& checkpoint, const fs::path& file) override {
    const std::string world = training::read_value(checkpoint, "world").toStringRef();
    const int64_t seed = training::read_value(checkpoint, "seed").toInt();
    const int64_t batch_size = training::read_value(checkpoint, "batch_size").toInt();
    const bool planted = checkpoint_flag(checkpoint, "planted");
    const bool plain = checkpoint_flag(checkpoint, "plain");
    c10::IValue stored_width;
    const int64_t width = checkpoint.try_read("width", stored_width) ? stored_width.toInt() : options_.width;
    if (world != options_.world || seed != static_cast<int64_t>(options_.seed) || batch_size != options_.batch_size ||
        planted != options_.planted || plain != (options_.architecture == "plain") || width != options_.width)
      throw Error(file, "was made for world " + world + ", seed " + std::to_string(seed) + ", batch size " +
                            std::to_string(batch_size) + (planted ? ", --planted" : "") +
                            (plain ? ", --architecture plain --width " + std::to_string(width) : "") +
                            "; rerun with those options or remove the checkpoint folder");
  }

  void restore_state(torch::serialize::InputArchive& checkpoint) override { model_.restore(checkpoint); }
  void save_state(torch::serialize::OutputArchive& checkpoint) override { model_.save(checkpoint); }

  void save_settings(torch::serialize::OutputArchive& checkpoint) override {
    checkpoint.write("seed", c10::IValue(static_cast<int64_t>(options_.seed)));
    checkpoint.write("world", c10::IValue(options_.world));
    checkpoint.write("batch_size", c10::IValue(options_.batch_size));
    checkpoint.write("planted", c10::IValue(options_.planted));
    checkpoint.write("plain", c10::IValue(options_.architecture == "plain"));
    checkpoint.write("width", c10::IValue(options_.width));
  }

  StepRecord step(int64_t step) override {
    const Batch batch = data_.batch(step);
    const double learning_rate = training::cosine_learning_rate(options_.learning_rate, step, options_.steps);
    if (!options_.planted) return model_.cross_entropy_step("forward", batch.images, batch.labels, learning_rate);
    // Planted units: the class loss plus the mean squared error of the planted units against
    // their targets, weighted by planted_weight.
    const auto targets = planted_targets(planted_, batch.factors, batch.labels);
    return model_.optimise_step(learning_rate, [&](torch::jit::Module& module) {
      const auto features = call(module, "features", batch.images);
      const auto logits = call(module, "head", features);
      const auto class_loss = torch::nn::functional::cross_entropy(logits, batch.labels);
      const auto planted_error = (features.index_select(1, planted_index_) - targets).pow(2).mean();
      const auto loss = class_loss + options_.planted_weight * planted_error;
      const double accuracy = (logits.detach().argmax(1) == batch.labels).to(torch::kFloat).mean().item<double>();
      const double loss_value = loss.item<double>();
      char fields[128];
      std::snprintf(fields, sizeof fields, "%.6f,%.6f,%.6f", loss_value, accuracy,
                    std::sqrt(planted_error.item<double>()));
      return training::AdamTrainedModule::StepLoss{loss, {{loss_value}, fields}};
    });
  }

  training::AdamTrainedModule& model() { return model_; }

 private:
  const ClassifierTrainingOptions& options_;
  const TrainingData& data_;
  training::AdamTrainedModule model_;
  std::vector<PlantedUnit> planted_;
  torch::Tensor planted_index_;
};

nlohmann::json model_card(const ClassifierTrainingOptions& options, double accuracy) {
  nlohmann::json card = {
      {"world", options.world},
      {"architecture", options.architecture == "plain" ? plain_architecture(options.width) : kArchitecture},
      {"feature_dim", options.architecture == "plain" ? plain_widths(options.width).back() : int64_t{256}},
      {"num_classes", world_class_names(options.world).size()},
      {"class_names", world_class_names(options.world)},
      {"input_size", 32},
      {"seed", options.seed},
      {"batch_size", options.batch_size},
      {"learning_rate", options.learning_rate},
      {"test_accuracy", accuracy},
      {"test_images", options.world == "shapes" ? options.test_images : int64_t{10000}},
  };
  if (options.planted) card["planted_weight"] = options.planted_weight;
  if (options.architecture != "resnet") card["architecture_name"] = options.architecture;
  return card;
}

}  // namespace

const std::vector<std::string>& world_class_names(const std::string& world) {
  check_world(world);
  return world == "shapes" ? ShapesWorld::class_names() : FashionMnist::class_names();
}

torch::jit::Module build_resnet_classifier(const std::vector<std::string>& class_names, uint64_t seed,
                                           int64_t input_size, const std::vector<PlantedUnit>& planted) {
  torch::NoGradGuard no_grad;
  at::Generator rng = at::detail::createCPUGenerator(seed);
  const int64_t classes = static_cast<int64_t>(class_names.size());
  auto m = classifier_module("ResNetClassifier", class_names, input_size);
  if (!planted.empty()) {
    c10::List<std::string> entries;
    for (const auto& entry : planted_attribute(planted, 256)) entries.push_back(entry);
    m.register_attribute("planted_factors", c10::ListType::ofStrings(), entries);
  }

  auto add_norm = [&](const std::string& name, int64_t channels, double gamma) {
    m.register_parameter(name + "_g", torch::full({channels}, gamma, torch::kFloat), false);
    m.register_parameter(name + "_b", torch::zeros({channels}, torch::kFloat), false);
  };
  const int64_t stem = 32;
  m.register_parameter("stem_w", training::kaiming_conv_weight(rng, stem, 3, 3), false);
  add_norm("stem_n", stem, 1.0);

  const std::vector<int64_t> widths = {32, 64, 128, 256};
  int64_t in = stem;
  for (size_t i = 0; i < widths.size(); ++i) {
    const int64_t out = widths[i];
    const std::string b = "b" + std::to_string(i + 1);
    m.register_parameter(b + "_c1_w", training::kaiming_conv_weight(rng, out, in, 3), false);
    add_norm(b + "_n1", out, 1.0);
    m.register_parameter(b + "_c2_w", training::kaiming_conv_weight(rng, out, out, 3), false);
    // Zero-initialised last norm: each block starts as its shortcut (stable early training).
    add_norm(b + "_n2", out, 0.0);
    if (i > 0 || in != out) {
      m.register_parameter(b + "_p_w", training::kaiming_conv_weight(rng, out, in, 1), false);
      add_norm(b + "_np", out, 1.0);
    }
    in = out;
  }
  const std::string source = "\ndef features(self, x: Tensor) -> Tensor:\n" + resnet_body(m, false) +
                             "    return h.mean([2, 3])\n\n" + feature_pyramid_source(m) + kHeadSource;
  m.register_parameter("head_w", torch::randn({classes, in}, rng, torch::kFloat) * (0.01 / std::sqrt(double(in))),
                       false);
  m.register_parameter("head_b", torch::zeros({classes}, torch::kFloat), false);
  m.define(source);
  return m;
}

torch::jit::Module build_plain_classifier(const std::vector<std::string>& class_names, uint64_t seed,
                                          int64_t width, int64_t input_size) {
  const auto widths = plain_widths(width);
  const int64_t groups = plain_groups(width);
  torch::NoGradGuard no_grad;
  at::Generator rng = at::detail::createCPUGenerator(seed);
  const int64_t classes = static_cast<int64_t>(class_names.size());
  auto m = classifier_module("PlainClassifier", class_names, input_size);
  const auto add_norm = [&](const std::string& name, int64_t channels) {
    m.register_parameter(name + "_g", torch::ones({channels}, torch::kFloat), false);
    m.register_parameter(name + "_b", torch::zeros({channels}, torch::kFloat), false);
  };
  int64_t in = widths.front();
  m.register_parameter("stem_w", training::kaiming_conv_weight(rng, in, 3, 3), false);
  add_norm("stem_n", in);
  for (size_t i = 0; i < widths.size(); ++i) {
    const int64_t out = widths[i];
    const std::string b = "b" + std::to_string(i + 1);
    m.register_parameter(b + "_c1_w", training::kaiming_conv_weight(rng, out, in, 3), false);
    add_norm(b + "_n1", out);
    m.register_parameter(b + "_c2_w", training::kaiming_conv_weight(rng, out, out, 3), false);
    add_norm(b + "_n2", out);
    in = out;
  }
  m.register_parameter("head_w", torch::randn({classes, in}, rng, torch::kFloat) * (0.01 / std::sqrt(double(in))),
                       false);
  m.register_parameter("head_b", torch::zeros({classes}, torch::kFloat), false);
  m.define("\ndef features(self, x: Tensor) -> Tensor:\n" + plain_body(groups, false) + "    return h.mean([2, 3])\n\n" +
           "def feature_pyramid(self, x: Tensor) -> List[Tensor]:\n" + plain_body(groups, true) + "    return stages\n" +
           kHeadSource);
  return m;
}

void define_feature_pyramid(torch::jit::Module& classifier, const fs::path& file) {
  if (classifier.find_method("feature_pyramid")) return;
  for (const char* name : {"stem_w", "stem_n_g", "b1_c1_w", "b2_c1_w", "b3_c1_w", "b4_c1_w", "b4_n2_g", "input_size"})
    if (!classifier.hasattr(name))
      throw Error(
          file, std::string("is not a built-in linkstyle classifier (no '") + name + "'), so it has no stages to read");
  try {
    classifier.define(feature_pyramid_source(classifier));
  } catch (const c10::Error& e) {
    throw Error(file, std::string("cannot read its stages: ") + e.what_without_backtrace());
  }
}

double classifier_test_accuracy(const Classifier& classifier, const std::string& world, int64_t test_images,
                                const fs::path& fashion_folder) {
  if (classifier.num_classes() != static_cast<int64_t>(world_class_names(world).size()))
    throw Error(classifier.file(), "has " + std::to_string(classifier.num_classes()) + " classes, the " + world +
                                       " world " + std::to_string(world_class_names(world).size()));
  return test_accuracy(world, test_images, fashion_folder,
                       [&](const torch::Tensor& x) { return classifier.head(classifier.features(x)); });
}

ClassifierTrainingResult train_classifier(const ClassifierTrainingOptions& options) {
  check_options(options);
  TrainingRun run(run_options(options));
  const TrainingData data(options);  // checks the seed and reads the data before anything is written
  ClassifierSteps steps(options, data);
  run.train(steps);

  torch::NoGradGuard no_grad;
  torch::jit::Module& module = steps.model().finish();
  const double accuracy = test_accuracy(options.world, options.test_images, options.fashion_folder,
                                        [&](const torch::Tensor& x) { return call(module, "forward", x); });
  run.save_model(module);
  auto written = Classifier::load(options.output, c10::Device(c10::kCPU));  // the contract holds
  auto card = model_card(options, accuracy);
  if (options.planted) {
    // Each planted unit against its target on held-out renders; a unit the network did not learn
    // to track (r < kPlantingBar) is released as a free unit, so that every planted unit is
    // ground truth; the card lists both.
    constexpr double kPlantingBar = 0.96;
    const uint64_t check_seed = kShapesTestSeedBase >> 1;
    const auto check = check_planted_units(written, options.test_images, check_seed);
    std::vector<PlantedUnit> kept;
    card["planted_units"] = nlohmann::json::array();
    card["not_planted"] = nlohmann::json::array();
    for (size_t k = 0; k < check.correlation.size(); ++k) {
      const auto& unit = written.planted_units()[k];
      const nlohmann::json row = {{"unit", unit.unit}, {"target", unit.name()}, {"test_correlation", check.correlation[k]}};
      if (check.correlation[k] >= kPlantingBar) {
        kept.push_back(unit);
        card["planted_units"].push_back(row);
      } else {
        card["not_planted"].push_back(row);
      }
    }
    card["planting_bar"] = kPlantingBar;
    if (kept.size() < check.correlation.size()) {
      c10::List<std::string> entries;
      for (const auto& entry : planted_attribute(kept, written.feature_dim())) entries.push_back(entry);
      module.setattr("planted_factors", entries);
      run.save_model(module);
      written = Classifier::load(options.output, c10::Device(c10::kCPU));
    }
    if (!kept.empty()) {
      // Released units are free now: check again only when some were released.
      const auto free_check =
          kept.size() < check.correlation.size() ? check_planted_units(written, options.test_images, check_seed) : check;
      card["largest_free_correlation"] = {{"unit", free_check.largest_free_unit},
                                          {"target", free_check.largest_free_target},
                                          {"correlation", free_check.largest_free_correlation}};
    }
  }
  run.write_card(card);
  return {run.result(), accuracy};
}

}  // namespace linkstyle
