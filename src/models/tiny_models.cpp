// Tiny TorchScript models that meet the model contract, built in C++ (see tiny_models.hpp).
#include "linkstyle/tiny_models.hpp"

#include <cmath>
#include <string>
#include <vector>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "linkstyle/atomic_file.hpp"
#include "linkstyle/errors.hpp"

namespace linkstyle {

namespace fs = std::filesystem;

namespace {

constexpr int64_t kSamplesPerClass = 256;  // for w_avg and the head's class means
constexpr double kCalibrationPsi = 0.7;
constexpr double kEmbeddingScale = 2.0;  // class embeddings dominate z in the mapping
constexpr double kLeakySlope = 0.2;

// Normal weights scaled by gain / sqrt(fan_in), drawn from the builder's private generator.
torch::Tensor init_weight(at::Generator& rng, c10::IntArrayRef sizes, int64_t fan_in, double gain = 1.0) {
  return torch::randn(sizes, rng, torch::kFloat) * (gain / std::sqrt(static_cast<double>(fan_in)));
}

torch::Tensor zeros(c10::IntArrayRef sizes) { return torch::zeros(sizes, torch::kFloat); }

c10::List<std::string> tiny_class_names(int64_t count) {
  c10::List<std::string> names;
  for (int64_t k = 0; k < count; ++k) names.push_back("class_" + std::to_string(k));
  return names;
}

void check_spec(const fs::path& folder, const TinyModelSpec& spec) {
  auto positive = [&](const char* name, int64_t value) {
    if (value <= 0)
      throw Error(folder, std::string("tiny model spec: ") + name + " must be > 0, got " + std::to_string(value));
  };
  positive("z_dim", spec.z_dim);
  positive("w_dim", spec.w_dim);
  positive("num_classes", spec.num_classes);
  positive("resolution", spec.resolution);
  positive("feature_dim", spec.feature_dim);
  if (spec.resolution % 4 != 0)
    throw Error(folder, "tiny model spec: resolution must be a multiple of 4, got " + std::to_string(spec.resolution));
}

// Spatial sizes of the synthesis stages after the 4x4 start: doubling, the last one clipped to
// the resolution.
std::vector<int64_t> stage_sizes(int64_t resolution) {
  std::vector<int64_t> sizes;
  int64_t side = 4;
  while (side < resolution) {
    side = std::min(side * 2, resolution);
    sizes.push_back(side);
  }
  return sizes;
}

std::string leaky(const std::string& expression) {
  return "torch.leaky_relu(" + expression + ", " + std::to_string(kLeakySlope) + ")";
}

torch::jit::Module build_generator(const TinyModelSpec& spec, at::Generator& rng) {
  const int64_t embed_dim = spec.w_dim;
  const int64_t hidden = 2 * spec.w_dim;
  const int64_t start_channels = 32;
  const std::vector<int64_t> sizes = stage_sizes(spec.resolution);

  torch::jit::Module m("TinyGenerator");
  m.register_attribute("z_dim", c10::IntType::get(), spec.z_dim);
  m.register_attribute("w_dim", c10::IntType::get(), spec.w_dim);
  m.register_attribute("num_classes", c10::IntType::get(), spec.num_classes);
  m.register_attribute("resolution", c10::IntType::get(), spec.resolution);
  m.register_attribute("class_names", c10::ListType::ofStrings(), tiny_class_names(spec.num_classes));

  const double leaky_gain = std::sqrt(2.0 / (1.0 + kLeakySlope * kLeakySlope));
  m.register_parameter("embed", torch::randn({spec.num_classes, embed_dim}, rng, torch::kFloat) * kEmbeddingScale,
                       false);
  m.register_parameter("map1_w", init_weight(rng, {spec.z_dim + embed_dim, hidden}, spec.z_dim + embed_dim, leaky_gain),
                       false);
  m.register_parameter("map1_b", zeros({hidden}), false);
  m.register_parameter("map2_w", init_weight(rng, {hidden, spec.w_dim}, hidden), false);
  m.register_parameter("map2_b", zeros({spec.w_dim}), false);
  m.register_buffer("w_avg", zeros({spec.num_classes, spec.w_dim}));

  m.register_parameter("syn_in_w", init_weight(rng, {spec.w_dim, start_channels * 16}, spec.w_dim, leaky_gain), false);
  m.register_parameter("syn_in_b", zeros({start_channels * 16}), false);
  int64_t channels = start_channels;
  for (size_t i = 0; i < sizes.size(); ++i) {
    const int64_t out = std::max<int64_t>(8, start_channels >> (i + 1));
    m.register_parameter("conv" + std::to_string(i) + "_w",
                         init_weight(rng, {out, channels, 3, 3}, channels * 9, leaky_gain), false);
    m.register_parameter("conv" + std::to_string(i) + "_b", zeros({out}), false);
    channels = out;
  }
  m.register_parameter("rgb_w", init_weight(rng, {3, channels, 3, 3}, channels * 9), false);
  m.register_parameter("rgb_b", zeros({3}), false);
  // A direct path from w to the mean colour, so that classes differ visibly.
  m.register_parameter("colour_w", init_weight(rng, {spec.w_dim, 3}, spec.w_dim), false);

  std::string source = R"(
def mapping(self, z: Tensor, c: Tensor, psi: float) -> Tensor:
    e = self.embed.index_select(0, c)
    h = torch.cat([z, e], 1)
    h = )" + leaky("torch.matmul(h, self.map1_w) + self.map1_b") +
                       R"(
    w = torch.matmul(h, self.map2_w) + self.map2_b
    avg = self.w_avg.index_select(0, c)
    return avg + psi * (w - avg)

def synthesis_features(self, w: Tensor) -> List[Tensor]:
    x = torch.matmul(w, self.syn_in_w) + self.syn_in_b
    x = )" + leaky("x.reshape([w.size(0), " + std::to_string(start_channels) + ", 4, 4])") +
                       R"(
    maps: List[Tensor] = [x]
)";
  for (size_t i = 0; i < sizes.size(); ++i) {
    const std::string side = std::to_string(sizes[i]);
    const std::string conv = "conv" + std::to_string(i);
    source += "    x = torch.upsample_nearest2d(x, [" + side + ", " + side + "])\n";
    source += "    x = " + leaky("torch.conv2d(x, self." + conv + "_w, self." + conv + "_b, [1, 1], [1, 1])") + "\n";
    source += "    maps.append(x)\n";
  }
  source += R"(    return maps

def synthesis_with_features(self, w: Tensor) -> Tuple[Tensor, List[Tensor]]:
    maps = self.synthesis_features(w)
    rgb = torch.conv2d(maps[-1], self.rgb_w, self.rgb_b, [1, 1], [1, 1])
    colour = torch.matmul(w, self.colour_w).unsqueeze(2).unsqueeze(3)
    return torch.tanh(rgb + colour), maps

def synthesis(self, w: Tensor) -> Tensor:
    return self.synthesis_with_features(w)[0]
)";
  m.define(source);
  return m;
}

torch::jit::Module build_classifier(const TinyModelSpec& spec, at::Generator& rng) {
  const int64_t hidden = 16;
  torch::jit::Module m("TinyClassifier");
  m.register_attribute("input_size", c10::IntType::get(), spec.resolution);
  m.register_attribute("class_names", c10::ListType::ofStrings(), tiny_class_names(spec.num_classes));
  const double relu_gain = std::sqrt(2.0);
  m.register_parameter("conv1_w", init_weight(rng, {hidden, 3, 3, 3}, 27, relu_gain), false);
  m.register_parameter("conv1_b", zeros({hidden}), false);
  m.register_parameter("conv2_w", init_weight(rng, {spec.feature_dim, hidden, 3, 3}, hidden * 9, relu_gain), false);
  m.register_parameter("conv2_b", zeros({spec.feature_dim}), false);
  // Set by calibrate_head.
  m.register_parameter("head_w", zeros({spec.num_classes, spec.feature_dim}), false);
  m.register_parameter("head_b", zeros({spec.num_classes}), false);
  m.define(R"(
def features(self, x: Tensor) -> Tensor:
    x = torch.upsample_bilinear2d(x, [self.input_size, self.input_size], False)
    x = (x - 0.5) / 0.5
    h = torch.relu(torch.conv2d(x, self.conv1_w, self.conv1_b, [1, 1], [1, 1]))
    h = torch.avg_pool2d(h, [2, 2])
    h = torch.relu(torch.conv2d(h, self.conv2_w, self.conv2_b, [1, 1], [1, 1]))
    return h.mean([2, 3])

def head(self, r: Tensor) -> Tensor:
    return torch.linear(r, self.head_w, self.head_b)
)");
  return m;
}

torch::Tensor run(const torch::jit::Module& m, const char* method, std::vector<c10::IValue> in) {
  return m.get_method(method)(std::move(in)).toTensor();
}

// Per-class mean of w at psi = 1, stored as w_avg for truncation.
void estimate_w_avg(torch::jit::Module& generator, const TinyModelSpec& spec, at::Generator& rng) {
  auto w_avg = zeros({spec.num_classes, spec.w_dim});
  for (int64_t k = 0; k < spec.num_classes; ++k) {
    const auto z = torch::randn({kSamplesPerClass, spec.z_dim}, rng, torch::kFloat);
    const auto c = torch::full({kSamplesPerClass}, k, torch::kLong);
    w_avg[k] = run(generator, "mapping", {z, c, 1.0}).mean(0);
  }
  generator.setattr("w_avg", w_avg);
}

// Data-dependent output scale: rescales the two colour paths so that each contributes a
// pre-tanh standard deviation of kOutputStd over samples at psi = 1 (few saturated pixels),
// and sets the output bias so that each channel is centred.
void normalise_output(torch::jit::Module& generator, const TinyModelSpec& spec, at::Generator& rng) {
  constexpr double kOutputStd = 0.5;
  const int64_t n = kSamplesPerClass;
  const auto z = torch::randn({n * spec.num_classes, spec.z_dim}, rng, torch::kFloat);
  const auto c = torch::arange(spec.num_classes, torch::kLong).repeat_interleave(n);
  const auto w = run(generator, "mapping", {z, c, 1.0});
  const auto maps = generator.get_method("synthesis_features")({w}).toTensorVector();
  const auto rgb_w = generator.attr("rgb_w").toTensor();
  const auto colour_w = generator.attr("colour_w").toTensor();
  const auto rgb = torch::conv2d(maps.back(), rgb_w, {}, 1, 1);
  const auto colour = torch::matmul(w, colour_w);
  const double rgb_scale = kOutputStd / std::max(rgb.std().item<double>(), 1e-6);
  const double colour_scale = kOutputStd / std::max(colour.std().item<double>(), 1e-6);
  generator.setattr("rgb_w", rgb_w * rgb_scale);
  generator.setattr("colour_w", colour_w * colour_scale);
  // Centre each output channel over all samples (mid-grey on average).
  const auto mean = rgb.mean({0, 2, 3}) * rgb_scale + colour.mean(0) * colour_scale;
  generator.setattr("rgb_b", (-mean).contiguous());
}

// Head = Gaussian class posterior with a shared isotropic covariance sigma^2 I in r space:
//   log p(k|r) = -||r - mu_k||^2 / (2 sigma^2) + const(r)
//             = [r . (mu_k - m) - (||mu_k||^2 - ||m||^2) / 2] / sigma^2 + const'(r),
// with m the mean of the class means (centring only keeps the logits small; the argmax and
// the softmax are unchanged).
void calibrate_head(torch::jit::Module& classifier, const torch::jit::Module& generator, const TinyModelSpec& spec,
                    at::Generator& rng) {
  std::vector<torch::Tensor> means;
  torch::Tensor squared_deviation = torch::zeros({}, torch::kDouble);
  for (int64_t k = 0; k < spec.num_classes; ++k) {
    const auto z = torch::randn({kSamplesPerClass, spec.z_dim}, rng, torch::kFloat);
    const auto c = torch::full({kSamplesPerClass}, k, torch::kLong);
    const auto w = run(generator, "mapping", {z, c, kCalibrationPsi});
    const auto images = ((run(generator, "synthesis", {w}) + 1.0) / 2.0).clamp(0.0, 1.0);
    const auto r = run(classifier, "features", {images}).to(torch::kDouble);
    const auto mu = r.mean(0);
    squared_deviation = squared_deviation + (r - mu).pow(2).sum();
    means.push_back(mu);
  }
  const auto mu = torch::stack(means);  // [K,D]
  const auto centre = mu.mean(0);
  const double count = static_cast<double>(spec.num_classes * kSamplesPerClass * spec.feature_dim);
  const double variance = std::max(squared_deviation.item<double>() / count, 1e-8);
  const auto weight = (mu - centre) / variance;
  const auto bias = -0.5 * (mu.pow(2).sum(1) - centre.pow(2).sum()) / variance;
  classifier.setattr("head_w", weight.to(torch::kFloat).contiguous());
  classifier.setattr("head_b", bias.to(torch::kFloat).contiguous());
}

void save(const torch::jit::Module& module, const fs::path& target) {
  AtomicFile file(target);
  try {
    module.save(file.stream());
  } catch (const c10::Error& e) {
    throw Error(target, std::string("cannot serialise the model: ") + e.what_without_backtrace());
  }
  file.commit();
}

}  // namespace

TinyModelPaths write_tiny_models(const fs::path& folder, const TinyModelSpec& spec) {
  check_spec(folder, spec);
  ensure_writable_directory(folder);
  torch::NoGradGuard no_grad;
  at::Generator rng = at::detail::createCPUGenerator(spec.seed);

  torch::jit::Module generator = build_generator(spec, rng);
  torch::jit::Module classifier = build_classifier(spec, rng);
  estimate_w_avg(generator, spec, rng);
  normalise_output(generator, spec, rng);
  calibrate_head(classifier, generator, spec, rng);
  generator.eval();
  classifier.eval();

  TinyModelPaths paths{folder / "tiny_classifier.pt", folder / "tiny_generator.pt"};
  save(classifier, paths.classifier);
  save(generator, paths.generator);
  return paths;
}

}  // namespace linkstyle
