// The worlds' built-in style-based generator: build, train, evaluate (see generator_training.hpp).
#include "linkstyle/train/generator_training.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/script.h>
#include <torch/torch.h>

#include "linkstyle/atomic_file.hpp"
#include "linkstyle/errors.hpp"
#include "linkstyle/part_sources.hpp"
#include "linkstyle/train/classifier_training.hpp"
#include "linkstyle/train/training_run.hpp"
#include "linkstyle/worlds/fashion.hpp"
#include "linkstyle/worlds/shapes.hpp"
#include "splitmix.hpp"
#include "train/training_common.hpp"

namespace linkstyle {

namespace fs = std::filesystem;

namespace {

constexpr int64_t kZDim = 64;
constexpr int64_t kShapesFactorCount = 17;  // ShapesWorld::factor_names().size(), checked where used
// The shapes factors that are angles in turns, which the mapping also reads as cosine and sine.
const std::vector<std::string> kCircularFactors = {"main_hue", "secondary_hue", "background_hue", "light_direction"};

// The columns of the circular factors in ShapesWorld::factor_names().
std::vector<int64_t> circular_factor_columns() {
  const auto& names = ShapesWorld::factor_names();
  if (static_cast<int64_t>(names.size()) != kShapesFactorCount)
    throw Error("ShapesWorld", "has " + std::to_string(names.size()) + " factors, the factor generator expects " +
                                   std::to_string(kShapesFactorCount));
  std::vector<int64_t> columns;
  for (const auto& name : kCircularFactors)
    columns.push_back(std::find(names.begin(), names.end(), name) - names.begin());
  return columns;
}
constexpr int64_t kEmbedDim = 64;
constexpr int64_t kWDim = 128;
constexpr int64_t kMappingLayers = 4;
constexpr double kMappingLrMultiplier = 0.01;
constexpr int64_t kResolution = 32;
constexpr int64_t kR1Interval = 16;
constexpr int64_t kHeadChannels = 128;
constexpr int64_t kPixelHeadChannels = 32;  // the pixel head's width after its fromRGB
constexpr int64_t kWAvgSamples = 4096;
constexpr uint64_t kShapesTestSeedBase = uint64_t{1} << 63;
const char* const kArchitecture =
    "style-based generator: mapping z 64 + class embedding 64 -> 4 x FC 128 (lr x0.01) -> w 128; "
    "constant 128x4x4; modulated/demodulated 3x3 convs: 1 at 4 px, 2 each at 8 (128), 16 (64), "
    "32 (32 ch) after bilinear upsampling; modulated 1x1 toRGB skips; no noise; "
    "discriminator: projected, 4 heads over the frozen classifier's stage outputs";
const char* const kRendererArchitecture =
    "style-based generator: z 17 (the shapes factors' normal scores) -> factors (17, centred) + cosine and sine "
    "of 4 circular ones + class embedding 64 -> 4 x FC 128 -> w 128; synthesis as the GAN's: constant 128x4x4; "
    "modulated/demodulated 3x3 convs: 1 at 4 px, 2 each at 8 (128), 16 (64), 32 (32 ch) after bilinear "
    "upsampling; modulated 1x1 toRGB skips; no noise";
const char* const kRendererLogHeader = "step,loss,pixel_l1,feature_l1,learning_rate,seconds";
const char* const kLogHeader = "step,loss_d,loss_g,d_real,d_fake,r1,guidance,fake_accuracy,seconds";

struct Block {
  int64_t resolution, channels;
};
const std::vector<Block>& synthesis_blocks() {
  static const std::vector<Block> blocks = {{4, 128}, {8, 128}, {16, 64}, {32, 32}};
  return blocks;
}

std::string number(double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.9g", value);
  std::string text = buffer;
  if (text.find_first_of(".eE") == std::string::npos) text += ".0";
  return text;
}

void check_world(const std::string& world) {
  if (world != "shapes" && world != "fashion")
    throw Error("--world", "unknown world '" + world + "' (expected shapes or fashion)");
}

}  // namespace

torch::jit::Module build_style_generator(const std::vector<std::string>& class_names, uint64_t seed,
                                         StyleLatent latent) {
  torch::NoGradGuard no_grad;
  at::Generator rng = at::detail::createCPUGenerator(seed);
  auto randn = [&](std::vector<int64_t> shape) { return torch::randn(shape, rng, torch::kFloat); };
  const int64_t classes = static_cast<int64_t>(class_names.size());
  torch::jit::Module m("StyleGenerator");
  c10::List<std::string> names;
  for (const auto& name : class_names) names.push_back(name);
  m.register_attribute("class_names", c10::ListType::ofStrings(), names);
  const bool factors = latent == StyleLatent::kShapesFactors;
  const int64_t z_dim = factors ? kShapesFactorCount : kZDim;
  m.register_attribute("z_dim", c10::IntType::get(), z_dim);
  m.register_attribute("w_dim", c10::IntType::get(), kWDim);
  m.register_attribute("num_classes", c10::IntType::get(), classes);
  m.register_attribute("resolution", c10::IntType::get(), kResolution);
  m.register_buffer("w_avg", torch::zeros({classes, kWDim}));

  // Mapping: weights stored as N(0, 1/lr^2) and scaled by lr / sqrt(fan_in) (equalised lr).
  m.register_parameter("embed", randn({classes, kEmbedDim}), false);
  std::string source;
  int64_t in = kEmbedDim;
  double lr_multiplier = kMappingLrMultiplier;
  if (factors) {
    // z's coordinates are the factors' normal scores: factors = low[c] + span[c] * Phi(z). The
    // mapping reads each factor centred and scaled to unit variance, and the circular ones (the
    // hues, the light's direction) also as a cosine and a sine.
    const auto labels = torch::arange(classes, torch::kLong);
    const auto low = ShapesWorld::factors_of_quantiles(labels, torch::zeros({classes, z_dim}));
    m.register_buffer("factor_low", low);
    m.register_buffer("factor_span", ShapesWorld::factors_of_quantiles(labels, torch::ones({classes, z_dim})) - low);
    m.register_buffer("circular_factors", torch::tensor(circular_factor_columns(), torch::kLong));
    in += z_dim + 2 * static_cast<int64_t>(kCircularFactors.size());
    lr_multiplier = 1.0;  // taught directly, not through a discriminator
    source = R"(
def factors(self, z: Tensor, c: Tensor) -> Tensor:
    u = 0.5 * (1.0 + torch.erf(z * 0.7071067811865476))
    return self.factor_low.index_select(0, c) + self.factor_span.index_select(0, c) * u

def mapping_raw(self, z: Tensor, c: Tensor) -> Tensor:
    f = self.factors(z, c)
    a = f.index_select(1, self.circular_factors) * 6.283185307179586
    x = torch.cat([(f - 0.5) * 3.4641016151377544, torch.cos(a) * 1.4142135623730951, torch.sin(a) * 1.4142135623730951], 1)
)";
  } else {
    in += z_dim;
    source = R"(
def mapping_raw(self, z: Tensor, c: Tensor) -> Tensor:
    x = z * torch.rsqrt(z.square().mean(1, True) + 1e-8)
)";
  }
  source += R"(    e = torch.embedding(self.embed, c)
    e = e * torch.rsqrt(e.square().mean(1, True) + 1e-8)
    x = torch.cat([x, e], 1)
)";
  for (int64_t i = 0; i < kMappingLayers; ++i) {
    const std::string name = "map" + std::to_string(i);
    m.register_parameter(name + "_w", randn({kWDim, in}) / lr_multiplier, false);
    m.register_parameter(name + "_b", torch::zeros({kWDim}), false);
    source += "    x = torch.leaky_relu(torch.linear(x, self." + name + "_w * " +
              number(lr_multiplier / std::sqrt(double(in))) + ", self." + name + "_b * " + number(lr_multiplier) +
              "), 0.2) * " + number(std::sqrt(2.0)) + "\n";
    in = kWDim;
  }
  source += R"(    return x

def mapping(self, z: Tensor, c: Tensor, psi: float) -> Tensor:
    w = self.mapping_raw(z, c)
    avg = self.w_avg.index_select(0, c)
    return avg + psi * (w - avg)

def modulated(self, x: Tensor, w: Tensor, affine_w: Tensor, affine_b: Tensor, weight: Tensor, bias: Tensor, demodulate: bool) -> Tensor:
    s = torch.linear(w, affine_w * )" +
            number(1.0 / std::sqrt(double(kWDim))) + R"(, affine_b)
    k = weight * (float(weight.size(1) * weight.size(2) * weight.size(3)) ** -0.5)
    y = torch.conv2d(x * s.unsqueeze(2).unsqueeze(3), k, None, [1, 1], [k.size(2) // 2, k.size(3) // 2])
    if demodulate:
        d = torch.rsqrt(torch.mm(s.square(), k.square().sum([2, 3]).t()) + 1e-8)
        y = y * d.unsqueeze(2).unsqueeze(3)
        return torch.leaky_relu(y + bias.view(1, -1, 1, 1), 0.2) * )" +
            number(std::sqrt(2.0)) + R"(
    return y + bias.view(1, -1, 1, 1)

def synthesis_all(self, w: Tensor) -> Tuple[Tensor, List[Tensor]]:
    x = self.const.unsqueeze(0).expand(w.size(0), -1, -1, -1)
    features: List[Tensor] = []
)";
  const auto& blocks = synthesis_blocks();
  m.register_parameter("const", randn({blocks[0].channels, 4, 4}), false);
  auto add_layer = [&](const std::string& name, int64_t in_channels, int64_t out_channels, int64_t kernel,
                       bool demodulate) {
    m.register_parameter(name + "_aw", randn({in_channels, kWDim}), false);
    m.register_parameter(name + "_ab", torch::ones({in_channels}), false);
    m.register_parameter(name + "_w", randn({out_channels, in_channels, kernel, kernel}), false);
    m.register_parameter(name + "_b", torch::zeros({out_channels}), false);
    return "self.modulated({x}, w, self." + name + "_aw, self." + name + "_ab, self." + name + "_w, self." + name +
           "_b, " + (demodulate ? "True" : "False") + ")";
  };
  auto call_on = [](std::string call, const std::string& x) { return call.replace(call.find("{x}"), 3, x); };
  int64_t channels = blocks[0].channels;
  for (size_t i = 0; i < blocks.size(); ++i) {
    const Block& block = blocks[i];
    const std::string r = std::to_string(block.resolution);
    if (i == 0) {
      source += "    x = " + call_on(add_layer("conv4", channels, channels, 3, true), "x") + "\n";
    } else {
      source += "    x = torch.upsample_bilinear2d(x, [" + r + ", " + r + "], False)\n";
      source += "    x = " + call_on(add_layer("conv" + r + "a", channels, block.channels, 3, true), "x") + "\n";
      source += "    x = " + call_on(add_layer("conv" + r + "b", block.channels, block.channels, 3, true), "x") + "\n";
    }
    channels = block.channels;
    const std::string rgb = call_on(add_layer("rgb" + r, channels, 3, 1, false), "x");
    if (i == 0)
      source += "    img = " + rgb + "\n";
    else
      source += "    img = torch.upsample_bilinear2d(img, [" + r + ", " + r + "], False) + " + rgb + "\n";
    source += "    features.append(x)\n";
  }
  source += R"(    return img, features

def synthesis_raw(self, w: Tensor) -> Tensor:
    return self.synthesis_all(w)[0]

def synthesis(self, w: Tensor) -> Tensor:
    return self.synthesis_all(w)[0].clamp(-1.0, 1.0)

def synthesis_features(self, w: Tensor) -> List[Tensor]:
    return self.synthesis_all(w)[1]

def forward(self, z: Tensor, c: Tensor) -> Tensor:
    return self.synthesis_raw(self.mapping_raw(z, c))
)";
  m.define(source);
  return m;
}

namespace {

// A convolution whose weight is divided by its largest singular value (spectral normalisation),
// estimated by one power iteration per training forward pass with a persistent vector u.
struct SpectralConvImpl : torch::nn::Module {
  SpectralConvImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding)
      : stride(stride), padding(padding) {
    weight = register_parameter(
        "weight", torch::randn({out, in, kernel, kernel}) * std::sqrt(2.0 / double(in * kernel * kernel)));
    bias = register_parameter("bias", torch::zeros({out}));
    u = register_buffer("u", torch::nn::functional::normalize(torch::randn({out}),
                                                              torch::nn::functional::NormalizeFuncOptions().dim(0)));
  }

  torch::Tensor forward(const torch::Tensor& x) {
    const auto matrix = weight.view({weight.size(0), -1});
    if (is_training()) {
      torch::NoGradGuard no_grad;
      const auto v = torch::nn::functional::normalize(torch::mv(matrix.t(), u),
                                                      torch::nn::functional::NormalizeFuncOptions().dim(0));
      u.copy_(
          torch::nn::functional::normalize(torch::mv(matrix, v), torch::nn::functional::NormalizeFuncOptions().dim(0)));
    }
    // A copy of u: later forward passes update u in place while this graph still needs it.
    const auto u_now = u.clone();
    const auto v = torch::nn::functional::normalize(torch::mv(matrix.t(), u_now),
                                                    torch::nn::functional::NormalizeFuncOptions().dim(0));
    const auto sigma = torch::dot(u_now, torch::mv(matrix, v));
    return torch::conv2d(x, weight / sigma, bias, {stride, stride}, {padding, padding});
  }

  int64_t stride, padding;
  torch::Tensor weight, bias, u;
};
TORCH_MODULE(SpectralConv);

// x [N, C, H, W] with one more channel: the standard deviation of each feature over groups of
// `group` samples (samples i, i + N/group, ...), averaged over features and positions, so that the
// discriminator sees how varied a batch is (a collapsed generator's batches are not). The options
// check ensures that the group divides N.
torch::Tensor with_minibatch_std(const torch::Tensor& x, int64_t group) {
  const int64_t n = x.size(0), g = std::min(group, n);
  const auto grouped = x.reshape({g, n / g, x.size(1), x.size(2), x.size(3)});
  const auto sd = (grouped - grouped.mean(0)).square().mean(0).add(1e-8).sqrt().mean({1, 2, 3});  // [N/g]
  return torch::cat(
      {x, sd.view({1, -1, 1, 1, 1}).expand({g, n / g, 1, x.size(2), x.size(3)}).reshape({n, 1, x.size(2), x.size(3)})},
      1);
}

// Projected discriminator: one head per classifier stage, each reducing its stage to
// kHeadChannels x 4 x 4 and scoring it with an unconditional 1x1 output plus a class projection.
// With a minibatch group > 0, each head's last convolution also sees with_minibatch_std's channel.
// With a pixel head, the first "stage" is the (augmented) image itself, which its head lifts to
// kPixelHeadChannels with a 1x1 convolution (StyleGAN's fromRGB) before reducing it like the others:
// the classifier's stages keep what tells the classes apart and may drop what does not (a part's
// hue), which the pixel head still sees.
struct ProjectedDiscriminatorImpl : torch::nn::Module {
  ProjectedDiscriminatorImpl(const std::vector<int64_t>& stage_channels, const std::vector<int64_t>& stage_sides,
                             int64_t classes, int64_t minibatch_group, bool pixel_head)
      : minibatch_group(minibatch_group), pixel_head(pixel_head) {
    for (size_t i = 0; i < stage_channels.size(); ++i) {
      torch::nn::Sequential head;
      int64_t channels = stage_channels[i];
      if (pixel_head && i == 0) {
        head->push_back(SpectralConv(channels, kPixelHeadChannels, 1, 1, 0));
        head->push_back(torch::nn::LeakyReLU(torch::nn::LeakyReLUOptions().negative_slope(0.2)));
        channels = kPixelHeadChannels;
      }
      for (int64_t side = stage_sides[i]; side > 4; side /= 2) {
        const int64_t out = std::min<int64_t>(kHeadChannels, channels * 2);
        head->push_back(SpectralConv(channels, out, 4, 2, 1));
        head->push_back(torch::nn::LeakyReLU(torch::nn::LeakyReLUOptions().negative_slope(0.2)));
        channels = out;
      }
      if (minibatch_group > 0) {
        lasts.push_back(
            register_module("last" + std::to_string(i), SpectralConv(channels + 1, kHeadChannels, 3, 1, 1)));
      } else {
        head->push_back(SpectralConv(channels, kHeadChannels, 3, 1, 1));
        head->push_back(torch::nn::LeakyReLU(torch::nn::LeakyReLUOptions().negative_slope(0.2)));
      }
      heads.push_back(register_module("head" + std::to_string(i), head));
      outputs.push_back(register_module("out" + std::to_string(i), SpectralConv(kHeadChannels, 1, 1, 1, 0)));
      embeddings.push_back(register_module("embed" + std::to_string(i), torch::nn::Embedding(classes, kHeadChannels)));
    }
  }

  // Logits [N] of images (augmented, [0, 1]) and their classifier stages: the sum over heads of the
  // spatial mean of each head's score map.
  torch::Tensor forward(const torch::Tensor& images, const std::vector<torch::Tensor>& classifier_stages,
                        const torch::Tensor& classes) {
    std::vector<torch::Tensor> stages;
    if (pixel_head) stages.push_back(images);
    stages.insert(stages.end(), classifier_stages.begin(), classifier_stages.end());
    torch::Tensor total;
    for (size_t i = 0; i < heads.size(); ++i) {
      torch::Tensor h = heads[i]->is_empty() ? stages[i] : heads[i]->forward(stages[i]);
      if (minibatch_group > 0) h = torch::leaky_relu(lasts[i]->forward(with_minibatch_std(h, minibatch_group)), 0.2);
      const torch::Tensor e = embeddings[i]->forward(classes).unsqueeze(2).unsqueeze(3);
      const torch::Tensor score = outputs[i]->forward(h).squeeze(1) + (h * e).sum(1) / std::sqrt(double(kHeadChannels));
      const torch::Tensor logit = score.mean({1, 2});
      total = total.defined() ? total + logit : logit;
    }
    return total;
  }

  int64_t minibatch_group;
  bool pixel_head;
  std::vector<torch::nn::Sequential> heads;
  std::vector<SpectralConv> lasts;  // with a minibatch group only
  std::vector<SpectralConv> outputs;
  std::vector<torch::nn::Embedding> embeddings;
};
TORCH_MODULE(ProjectedDiscriminator);

// Differentiable augmentation of images in [0, 1], drawn from `rng`: with "all", brightness,
// saturation and contrast, then a translation by up to 1/8 of the side (zero padding); with
// "translation", the translation only; with "none", the images as they are.
torch::Tensor augment(const torch::Tensor& x, at::Generator& rng, const std::string& mode) {
  if (mode == "none") return x;
  const int64_t n = x.size(0);
  auto uniform = [&](std::vector<int64_t> shape) { return torch::rand(shape, rng, torch::kFloat); };
  torch::Tensor y = x;
  if (mode == "all") {
    y = y + (uniform({n, 1, 1, 1}) - 0.5);
    const torch::Tensor grey = y.mean(1, true);
    y = (y - grey) * (uniform({n, 1, 1, 1}) * 2.0) + grey;
    const torch::Tensor mean = y.mean({1, 2, 3}, true);
    y = (y - mean) * (uniform({n, 1, 1, 1}) + 0.5) + mean;
  }
  // Integer shifts as windows of the zero-padded batch (twice differentiable, for R1).
  const int64_t max_shift = x.size(3) / 8;
  const torch::Tensor shifts = torch::randint(0, 2 * max_shift + 1, {n, 2}, rng, torch::kLong);
  const auto shift = shifts.accessor<int64_t, 2>();
  const torch::Tensor padded = torch::constant_pad_nd(y, {max_shift, max_shift, max_shift, max_shift}, 0.0);
  std::vector<torch::Tensor> windows;
  windows.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    windows.push_back(padded[i].narrow(1, shift[i][0], x.size(2)).narrow(2, shift[i][1], x.size(3)));
  return torch::stack(windows);
}

struct RealBatch {
  torch::Tensor images, labels;
};

// Real images of a world at 32 px in [0, 1]; the batch of a step is a pure function of (seed, step).
class RealImages {
 public:
  explicit RealImages(const GeneratorTrainingOptions& options) : options_(options) {
    if (options.world == "fashion")
      fashion_ =
          FashionMnist::load(options.fashion_folder.empty() ? default_fashion_folder() : options.fashion_folder, true);
    else if (options.seed >= (uint64_t{1} << 22))
      throw Error("--seed", "must be < 2^22 for the shapes world, got " + std::to_string(options.seed));
  }

  RealBatch batch(int64_t step, at::Generator& rng) const {
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

  int64_t classes() const { return static_cast<int64_t>(world_class_names(options_.world).size()); }

 private:
  const GeneratorTrainingOptions& options_;
  ShapesWorld world_{kResolution};
  FashionMnist fashion_;
};

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

// The model card's architecture: kArchitecture with the discriminator's options.
std::string architecture_of(const GeneratorTrainingOptions& options) {
  std::string text = kArchitecture;
  if (options.minibatch_std_group > 0)
    text += "; minibatch standard deviation over groups of " + std::to_string(options.minibatch_std_group) +
            " before each head's last conv";
  if (options.pixel_head)
    text +=
        "; a pixel head on the augmented images (1x1 fromRGB to " + std::to_string(kPixelHeadChannels) + " channels)";
  return text;
}

std::vector<torch::Tensor> stages_of(torch::jit::Module& classifier, const torch::Tensor& x) {
  const auto list = classifier.get_method("feature_pyramid")({x}).toTensorList();
  return std::vector<torch::Tensor>(list.begin(), list.end());
}

// Mean pairwise Euclidean distance between rows of `features`.
double mean_pairwise_distance(const torch::Tensor& features) {
  const int64_t n = features.size(0);
  if (n < 2) return 0.0;
  const auto f = features.to(torch::kDouble);
  const auto distances = torch::cdist(f, f);
  return distances.sum().item<double>() / static_cast<double>(n * (n - 1));
}

// Per-class w mean over kWAvgSamples latents, stored in the generator's w_avg buffer.
void set_w_avg(torch::jit::Module& generator, int64_t classes, uint64_t seed) {
  torch::NoGradGuard no_grad;
  at::Generator rng = at::detail::createCPUGenerator(splitmix64(seed ^ 0x77617667ULL));
  auto w_avg = generator.attr("w_avg").toTensor();
  for (int64_t c = 0; c < classes; ++c) {
    const auto z = torch::randn({kWAvgSamples, generator.attr("z_dim").toInt()}, rng, torch::kFloat);
    const auto labels = torch::full({kWAvgSamples}, c, torch::kLong);
    const auto w = generator.get_method("mapping_raw")({z, labels}).toTensor();
    w_avg[c].copy_(w.mean(0));
  }
}

void write_grid_png(const torch::Tensor& images, int64_t rows, int64_t columns, int64_t zoom, const fs::path& file);

// A grid of `generator` at psi = 1 (fixed latents, 8 per class, one row per class) beside the
// model file, rewritten at every checkpoint so that a long run can be watched.
void write_preview(torch::jit::Module& generator, int64_t classes, const fs::path& output) {
  torch::NoGradGuard no_grad;
  constexpr int64_t kColumns = 8;
  at::Generator preview_rng = at::detail::createCPUGenerator(0x70726576ULL);
  const auto z = torch::randn({classes * kColumns, generator.attr("z_dim").toInt()}, preview_rng, torch::kFloat);
  const auto labels = torch::arange(classes, torch::kLong).repeat_interleave(kColumns);
  generator.eval();
  const auto images = ((generator.forward({z, labels}).toTensor() + 1.0) * 0.5).clamp(0.0, 1.0);
  write_grid_png(images, classes, kColumns, 2, training::with_suffix(output, ".preview.png"));
}

// Writes images [rows*columns, 3, S, S] in [0, 1] as a PNG grid (2-px white gaps, `zoom` x
// nearest-neighbour), atomically.
void write_grid_png(const torch::Tensor& images, int64_t rows, int64_t columns, int64_t zoom, const fs::path& file) {
  const int64_t classes = rows;
  const int64_t side = images.size(2), pad = 2;
  const int64_t cell = side * zoom + pad;
  auto grid = torch::ones({3, classes * cell + pad, columns * cell + pad});
  for (int64_t i = 0; i < classes * columns; ++i) {
    const auto image = torch::nn::functional::interpolate(images[i].unsqueeze(0),
                                                          torch::nn::functional::InterpolateFuncOptions()
                                                              .size(std::vector<int64_t>{side * zoom, side * zoom})
                                                              .mode(torch::kNearest))[0];
    const int64_t row = i / columns, column = i % columns;
    grid.narrow(1, pad + row * cell, side * zoom).narrow(2, pad + column * cell, side * zoom).copy_(image);
  }
  const auto bytes = (grid.permute({1, 2, 0}).flip({2}) * 255.0).round().clamp(0, 255).to(torch::kByte).contiguous();
  const cv::Mat mat(static_cast<int>(bytes.size(0)), static_cast<int>(bytes.size(1)), CV_8UC3, bytes.data_ptr());
  std::vector<unsigned char> png;
  if (!cv::imencode(".png", mat, png)) throw Error(file, "cannot encode the PNG");
  write_file_atomically(file, std::string(png.begin(), png.end()));
}

void check_options(const GeneratorTrainingOptions& options) {
  check_world(options.world);
  if (options.classifier.empty()) throw Error("--classifier", "pass the world's classifier file");
  if (options.batch_size < 2) throw Error("--batch-size", "must be >= 2, got " + std::to_string(options.batch_size));
  if (!(options.learning_rate > 0)) throw Error("--learning-rate", "must be > 0");
  if (!(options.d_learning_rate > 0)) throw Error("--d-learning-rate", "must be > 0");
  if (!(options.r1_gamma >= 0)) throw Error("--r1-gamma", "must be >= 0");
  if (!(options.guidance_weight >= 0)) throw Error("--guidance-weight", "must be >= 0");
  if (options.minibatch_std_group < 0) throw Error("--minibatch-std", "must be >= 0");
  if (options.augment != "all" && options.augment != "translation" && options.augment != "none")
    throw Error("--augment", "must be all, translation or none, got \"" + options.augment + "\"");
  if (options.minibatch_std_group > 0 &&
      options.batch_size % std::min(options.minibatch_std_group, options.batch_size) != 0)
    throw Error("--minibatch-std", "the batch size " + std::to_string(options.batch_size) +
                                       " is not a multiple of the group " +
                                       std::to_string(options.minibatch_std_group));
  if (options.objective != "adversarial" && options.objective != "renderer")
    throw Error("--objective", "must be adversarial or renderer, got \"" + options.objective + "\"");
  if (options.objective == "renderer" && options.world != "shapes")
    throw Error("--objective", "renderer needs the shapes world (its renderer knows every image's factors)");
  if (!(options.feature_weight >= 0)) throw Error("--feature-weight", "must be >= 0");
  if (options.eval_samples_per_class < 0 || options.eval_samples_per_class == 1)
    throw Error("--eval-samples", "must be 0 (no evaluation) or >= 2");
}

TrainingRunOptions run_options(const GeneratorTrainingOptions& options) {
  if (options.objective == "renderer")
    return training_run_options(options, kRendererLogHeader, "train shapes generator (renderer)");
  return training_run_options(options, kLogHeader, "train " + options.world + " generator");
}

// The frozen world classifier whose stages the discriminator reads.
struct FrozenClassifier {
  Classifier checked;         // through the public adapter, for the evaluation
  torch::jit::Module module;  // the same file, with feature_pyramid
  std::string fingerprint;
  // The discriminator heads' inputs: the images (with a pixel head), then the classifier's stages.
  std::vector<int64_t> stage_channels, stage_sides;
};

FrozenClassifier load_frozen_classifier(const GeneratorTrainingOptions& options) {
  FrozenClassifier frozen{Classifier::load(options.classifier, c10::Device(c10::kCPU)), {}, {}, {}, {}};
  const int64_t classes = static_cast<int64_t>(world_class_names(options.world).size());
  if (frozen.checked.num_classes() != classes)
    throw Error(options.classifier, "has " + std::to_string(frozen.checked.num_classes()) + " classes, the " +
                                        options.world + " world " + std::to_string(classes));
  frozen.module = torch::jit::load(options.classifier.string());
  define_feature_pyramid(frozen.module, options.classifier);
  frozen.module.eval();
  for (const auto& p : frozen.module.parameters()) p.requires_grad_(false);
  frozen.fingerprint = file_fingerprint(options.classifier);
  if (options.pixel_head) {
    frozen.stage_channels.push_back(3);
    frozen.stage_sides.push_back(kResolution);
  }
  torch::NoGradGuard no_grad;  // stage shapes from one probe
  for (const auto& s : stages_of(frozen.module, torch::zeros({1, 3, kResolution, kResolution}))) {
    frozen.stage_channels.push_back(s.size(1));
    frozen.stage_sides.push_back(s.size(2));
  }
  return frozen;
}

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

// The renders of the factors that a StyleLatent::kShapesFactors generator reads off z [N, 17]
// for classes `labels` [N] (int64, CPU): images [N, 3, R, R] in [0, 1].
torch::Tensor renders_of_latents(torch::jit::Module& generator, const ShapesWorld& world, const torch::Tensor& z,
                                 const torch::Tensor& labels) {
  torch::NoGradGuard no_grad;
  const auto factors = generator.run_method("factors", z, labels).toTensor().clamp(0.0, 1.0);
  const std::vector<int64_t> l(labels.data_ptr<int64_t>(), labels.data_ptr<int64_t>() + labels.numel());
  return world.render_factors(l, factors).images;
}

// Error naming the checkpoint `file` when it was made with another classifier than this run's.
void check_classifier_fingerprint(torch::serialize::InputArchive& checkpoint, const fs::path& file,
                                  const FrozenClassifier& classifier, const GeneratorTrainingOptions& options) {
  const std::string fingerprint = training::read_value(checkpoint, "classifier_fingerprint").toStringRef();
  if (fingerprint != classifier.fingerprint)
    throw Error(file, "was made with another classifier (fingerprint " + fingerprint + ", " +
                          options.classifier.string() + " has " + classifier.fingerprint +
                          "); pass that classifier or remove the checkpoint folder");
}

// The parameters of a generator in training (made to require gradients) and of its weight
// average (made not to), in the same order.
void collect_parameters(const torch::jit::Module& trained, const torch::jit::Module& average,
                        std::vector<torch::Tensor>& trained_parameters, std::vector<torch::Tensor>& average_parameters) {
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

// One step of the weight average, with a horizon that grows from a few steps to 1 / (1 - max_beta).
void update_weight_average(const std::vector<torch::Tensor>& trained, std::vector<torch::Tensor>& average,
                           int64_t step, double max_beta) {
  torch::NoGradGuard no_grad;
  const double beta = std::min(max_beta, (1.0 + step) / (10.0 + step));
  for (size_t i = 0; i < trained.size(); ++i) average[i].mul_(beta).add_(trained[i].detach(), 1.0 - beta);
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

nlohmann::json model_card(const GeneratorTrainingOptions& options, const std::string& classifier_fingerprint) {
  const auto& class_names = world_class_names(options.world);
  const bool renderer = options.objective == "renderer";
  nlohmann::json card = {
      {"world", options.world},
      {"w_dim", kWDim},
      {"resolution", kResolution},
      {"num_classes", static_cast<int64_t>(class_names.size())},
      {"class_names", class_names},
      {"classifier", options.classifier.string()},
      {"classifier_fingerprint", classifier_fingerprint},
      {"seed", options.seed},
      {"batch_size", options.batch_size},
      {"learning_rate", options.learning_rate},
  };
  if (renderer) {
    card["objective"] = "renderer: L1 to render(c, factors(z, c)) + feature_weight x L1 of the classifier's stages";
    card["architecture"] = kRendererArchitecture;
    card["z_dim"] = kShapesFactorCount;
    card["z"] =
        "the shapes factors' normal scores: factors(z, c) = low[c] + span[c] * Phi(z), columns as "
        "ShapesWorld::factor_names()";
    card["feature_weight"] = options.feature_weight;
    return card;
  }
  card["objective"] = "adversarial";
  card["architecture"] = architecture_of(options);
  card["z_dim"] = kZDim;
  card["d_learning_rate"] = options.d_learning_rate;
  card["r1_gamma"] = options.r1_gamma;
  card["guidance_weight"] = options.guidance_weight;
  card["minibatch_std_group"] = options.minibatch_std_group;
  card["pixel_head"] = options.pixel_head;
  card["augmentation"] = options.augment == "all"           ? "translation 1/8, brightness, saturation, contrast"
                         : options.augment == "translation" ? "translation 1/8"
                                                            : "none";
  return card;
}

}  // namespace

GeneratorTrainingResult train_generator(const GeneratorTrainingOptions& options) {
  check_options(options);
  TrainingRun run(run_options(options));
  FrozenClassifier classifier = load_frozen_classifier(options);
  const int64_t classes = static_cast<int64_t>(world_class_names(options.world).size());
  torch::jit::Module average;
  if (options.objective == "renderer") {
    RendererSteps steps(options, classifier);
    run.train(steps);
    average = steps.average();
  } else {
    const RealImages real(options);  // checks the seed and the data before anything is written
    if (options.world == "fashion" && options.eval_samples_per_class > 0)  // the evaluation's split
      FashionMnist::load(options.fashion_folder.empty() ? default_fashion_folder() : options.fashion_folder, false);
    GeneratorSteps steps(options, real, classifier);
    run.train(steps);
    average = steps.average();
  }

  // The shipped model: the weight average, with its per-class w means.
  set_w_avg(average, classes, options.seed);
  average.eval();
  run.save_model(average);
  const Generator shipped = Generator::load(options.output, c10::Device(c10::kCPU));
  nlohmann::json card = model_card(options, classifier.fingerprint);
  if (options.eval_samples_per_class > 0)
    for (const double psi : options.objective == "renderer" ? std::vector<double>{0.7, 1.0} : std::vector<double>{0.7})
      card[psi == 0.7 ? "evaluation" : "evaluation_psi_1"] =
          evaluate_generator(shipped, classifier.checked, options.world, options.eval_samples_per_class, psi, 0,
                             options.fashion_folder)
              .to_json();
  run.write_card(card);
  return {run.result()};
}

namespace {

// Ratio of two diversities, NaN where the reference has none.
double diversity_ratio(double generated, double real) {
  return real > 1e-9 ? generated / real : std::numeric_limits<double>::quiet_NaN();
}

// Mean colours [N, C] of images [N, C, H, W] in [0, 1] (CPU, float64).
torch::Tensor mean_colours(const torch::Tensor& images) { return images.mean({2, 3}).to(torch::kCPU, torch::kDouble); }

// Mean pairwise distance of mean colours [N, C] in the chroma plane (0 without three channels).
double colour_diversity(const torch::Tensor& mean) {
  if (mean.size(1) != 3) return 0.0;
  const auto r = mean.select(1, 0), g = mean.select(1, 1), b = mean.select(1, 2);
  return mean_pairwise_distance(torch::stack({r - (g + b) * 0.5, (g - b) * (std::sqrt(3.0) / 2)}, 1));
}

}  // namespace

double part_area_error(const std::vector<double>& generated, const std::vector<double>& real,
                       const std::vector<std::string>& part_names) {
  if (generated.size() != part_names.size() || real.size() != part_names.size())
    throw Error("part_area_error", "needs one area per part name");
  double difference = 0, total = 0;
  for (size_t k = 0; k < part_names.size(); ++k) {
    if (part_names[k] == "background") continue;
    difference += std::fabs(generated[k] - real[k]);
    total += real[k];
  }
  return total > 0 ? difference / total : 0.0;
}

double frechet_distance(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.dim() != 2 || b.dim() != 2 || a.size(1) != b.size(1) || a.size(0) < 2 || b.size(0) < 2)
    throw Error("frechet_distance", "needs two feature sets [N, D] with the same D and N >= 2");
  const auto moments = [](const torch::Tensor& x) {
    const auto x64 = x.to(torch::kCPU, torch::kDouble);
    const auto mean = x64.mean(0);
    const auto centred = x64 - mean;
    return std::pair{mean, centred.t().mm(centred) / static_cast<double>(x64.size(0) - 1)};
  };
  const auto [mean_a, cov_a] = moments(a);
  const auto [mean_b, cov_b] = moments(b);
  if (!torch::isfinite(cov_a).all().item<bool>() || !torch::isfinite(cov_b).all().item<bool>())
    throw Error("frechet_distance", "the features are not all finite");
  try {
    const auto [values, vectors] = torch::linalg_eigh(cov_a);
    const auto root_a = vectors.mm(torch::diag(values.clamp_min(0).sqrt())).mm(vectors.t());
    auto product = root_a.mm(cov_b).mm(root_a);
    product = (product + product.t()) * 0.5;
    const double cross = torch::linalg_eigvalsh(product).clamp_min(0).sqrt().sum().item<double>();
    return std::max(0.0, (mean_a - mean_b).square().sum().item<double>() + cov_a.trace().item<double>() +
                             cov_b.trace().item<double>() - 2.0 * cross);
  } catch (const c10::Error& error) {
    throw Error("frechet_distance", std::string("the eigendecomposition failed: ") + error.what_without_backtrace());
  }
}

nlohmann::json GeneratorEvaluation::to_json() const {
  // NaN is not JSON: a ratio without a reference is null.
  const auto number = [](double x) { return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(); };
  nlohmann::json per_class = nlohmann::json::array();
  for (double x : colour_diversity_ratio_per_class) per_class.push_back(number(x));
  nlohmann::json json = {{"psi", psi},
          {"samples_per_class", samples_per_class},
          {"agreement", agreement},
          {"agreement_per_class", agreement_per_class},
          {"diversity_generated", diversity_generated},
          {"diversity_real", diversity_real},
          {"diversity_ratio", diversity_ratio},
          {"diversity_ratio_per_class", diversity_ratio_per_class},
          {"colour_diversity_generated", colour_diversity_generated},
          {"colour_diversity_real", colour_diversity_real},
          {"colour_diversity_ratio", number(colour_diversity_ratio)},
          {"colour_diversity_ratio_per_class", per_class},
          {"frechet_distance", frechet_distance},
          {"frechet_distance_per_class", frechet_distance_per_class}};
  if (!part_names.empty()) {
    json["part_names"] = part_names;
    json["part_areas_generated"] = part_areas_generated;
    json["part_areas_real"] = part_areas_real;
    json["part_area_error_per_class"] = part_area_error_per_class;
    json["part_area_error"] = part_area_error;
  }
  return json;
}

GeneratorEvaluation evaluate_generator(const Generator& generator, const Classifier& classifier,
                                       const std::string& world, int64_t samples_per_class, double psi, uint64_t seed,
                                       const fs::path& fashion_folder, const fs::path& segmenter) {
  check_world(world);
  std::unique_ptr<PartSource> parts;
  if (!segmenter.empty()) parts = load_segmenter_parts(segmenter, classifier.device());
  const int64_t classes = static_cast<int64_t>(world_class_names(world).size());
  for (const auto& [file, count] :
       {std::pair{generator.file(), generator.num_classes()}, std::pair{classifier.file(), classifier.num_classes()}})
    if (count != classes)
      throw Error(file,
                  "has " + std::to_string(count) + " classes, the " + world + " world " + std::to_string(classes));
  if (samples_per_class < 2) throw Error("--samples-per-class", "must be >= 2");
  torch::NoGradGuard no_grad;
  GeneratorEvaluation e;
  e.psi = psi;
  e.samples_per_class = samples_per_class;
  FashionMnist test;
  if (world == "fashion")
    test = FashionMnist::load(fashion_folder.empty() ? default_fashion_folder() : fashion_folder, false);
  const ShapesWorld shapes(kResolution);
  at::Generator rng = at::detail::createCPUGenerator(splitmix64(seed ^ 0x6576616cULL));
  constexpr int64_t kChunk = 250;
  int64_t agreeing = 0;
  std::vector<torch::Tensor> all_generated, all_real;
  if (parts) e.part_names = parts->part_names();
  // Per part, the mean share of the image it covers, from labels [N, R, R].
  const auto part_areas = [&](const torch::Tensor& labels) {
    const auto counts = torch::bincount(labels.reshape({-1}).to(torch::kLong), {},
                                        static_cast<int64_t>(e.part_names.size()))
                            .to(torch::kDouble);
    const auto shares = counts / static_cast<double>(labels.numel());
    return std::vector<double>(shares.data_ptr<double>(), shares.data_ptr<double>() + shares.numel());
  };
  for (int64_t c = 0; c < classes; ++c) {
    std::vector<torch::Tensor> generated, real, generated_colours, generated_parts;
    int64_t class_agreeing = 0;
    for (int64_t start = 0; start < samples_per_class; start += kChunk) {
      const int64_t n = std::min(kChunk, samples_per_class - start);
      const auto z = torch::randn({n, generator.z_dim()}, rng, torch::kFloat);
      const auto labels = torch::full({n}, c, torch::kLong);
      const auto images = generator_to_classifier_range(generator.synthesis(generator.mapping(z, labels, psi)));
      const auto r = classifier.features(images);
      class_agreeing += (classifier.head(r).argmax(1).cpu() == c).sum().item<int64_t>();
      generated.push_back(r.cpu());
      generated_colours.push_back(mean_colours(images));
      if (parts) generated_parts.push_back(parts->label(images, {}));
    }
    torch::Tensor real_images;
    if (world == "fashion") {
      const auto index = (test.labels == c).nonzero().squeeze(1);
      real_images = test.images.index_select(0, index.narrow(0, 0, std::min(samples_per_class, index.size(0))));
    } else {
      std::vector<int64_t> labels(static_cast<size_t>(samples_per_class), c);
      std::vector<uint64_t> seeds(static_cast<size_t>(samples_per_class));
      for (int64_t i = 0; i < samples_per_class; ++i)
        seeds[static_cast<size_t>(i)] = kShapesTestSeedBase + static_cast<uint64_t>(c * samples_per_class + i);
      real_images = shapes.render(labels, seeds).images;
    }
    for (int64_t start = 0; start < real_images.size(0); start += kChunk)
      real.push_back(
          classifier.features(real_images.narrow(0, start, std::min(kChunk, real_images.size(0) - start))).cpu());
    if (parts) {
      std::vector<torch::Tensor> real_parts;
      for (int64_t start = 0; start < real_images.size(0); start += kChunk)
        real_parts.push_back(
            parts->label(real_images.narrow(0, start, std::min(kChunk, real_images.size(0) - start)), {}));
      e.part_areas_generated.push_back(part_areas(torch::cat(generated_parts)));
      e.part_areas_real.push_back(part_areas(torch::cat(real_parts)));
      e.part_area_error_per_class.push_back(
          part_area_error(e.part_areas_generated.back(), e.part_areas_real.back(), e.part_names));
    }
    const auto generated_features = torch::cat(generated), real_features = torch::cat(real);
    all_generated.push_back(generated_features);
    all_real.push_back(real_features);
    e.frechet_distance_per_class.push_back(frechet_distance(generated_features, real_features));
    const double g = mean_pairwise_distance(generated_features);
    const double d = mean_pairwise_distance(real_features);
    e.agreement_per_class.push_back(static_cast<double>(class_agreeing) / static_cast<double>(samples_per_class));
    e.diversity_ratio_per_class.push_back(d > 0 ? g / d : 0.0);
    e.diversity_generated += g / static_cast<double>(classes);
    e.diversity_real += d / static_cast<double>(classes);
    const double colour_g = colour_diversity(torch::cat(generated_colours));
    const double colour_d = colour_diversity(mean_colours(real_images));
    e.colour_diversity_ratio_per_class.push_back(diversity_ratio(colour_g, colour_d));
    e.colour_diversity_generated += colour_g / static_cast<double>(classes);
    e.colour_diversity_real += colour_d / static_cast<double>(classes);
    agreeing += class_agreeing;
  }
  e.agreement = static_cast<double>(agreeing) / static_cast<double>(samples_per_class * classes);
  e.frechet_distance = frechet_distance(torch::cat(all_generated), torch::cat(all_real));
  if (parts)
    e.part_area_error = *std::max_element(e.part_area_error_per_class.begin(), e.part_area_error_per_class.end());
  e.diversity_ratio = e.diversity_real > 0 ? e.diversity_generated / e.diversity_real : 0.0;
  e.colour_diversity_ratio = diversity_ratio(e.colour_diversity_generated, e.colour_diversity_real);
  return e;
}

void write_sample_grid(const Generator& generator, const fs::path& file, int64_t columns, double psi, uint64_t seed,
                       int64_t zoom) {
  if (columns < 1 || zoom < 1) throw Error(file, "a sample grid needs columns >= 1 and zoom >= 1");
  torch::NoGradGuard no_grad;
  const int64_t classes = generator.num_classes();
  at::Generator rng = at::detail::createCPUGenerator(splitmix64(seed ^ 0x67726964ULL));
  const auto z = torch::randn({classes * columns, generator.z_dim()}, rng, torch::kFloat);
  const auto labels = torch::arange(classes, torch::kLong).repeat_interleave(columns);
  const auto images = generator_to_classifier_range(generator.synthesis(generator.mapping(z, labels, psi))).cpu();
  write_grid_png(images, classes, columns, zoom, file);
}

namespace {

// A generator file that knows its samples' factors: the checked Generator and its module.
std::pair<Generator, torch::jit::Module> load_factor_generator(const fs::path& generator_file) {
  Generator generator = Generator::load(generator_file, c10::Device(c10::kCPU));
  auto module = torch::jit::load(generator_file.string());
  if (!module.find_method("factors"))
    throw Error(generator_file, "has no factors(z, c): only a generator trained with --objective renderer "
                                "knows the factors of its samples");
  if (generator.class_names() != ShapesWorld::class_names())
    throw Error(generator_file, "does not have the shapes world's classes");
  return {std::move(generator), std::move(module)};
}

}  // namespace

void check_render_comparison_grid(const fs::path& generator_file) { load_factor_generator(generator_file); }

void write_render_comparison_grid(const fs::path& generator_file, const fs::path& file, int64_t columns,
                                  uint64_t seed, int64_t zoom) {
  if (columns < 1 || zoom < 1) throw Error(file, "a sample grid needs columns >= 1 and zoom >= 1");
  auto [generator, module] = load_factor_generator(generator_file);
  torch::NoGradGuard no_grad;
  module.eval();
  const int64_t classes = generator.num_classes();
  at::Generator rng = at::detail::createCPUGenerator(splitmix64(seed ^ 0x72656e67ULL));
  const auto z = torch::randn({classes * columns, generator.z_dim()}, rng, torch::kFloat);
  const auto labels = torch::arange(classes, torch::kLong).repeat_interleave(columns);
  const auto rendered = renders_of_latents(module, ShapesWorld(generator.resolution()), z, labels);
  const auto generated = generator_to_classifier_range(generator.synthesis(generator.mapping(z, labels, 1.0))).cpu();
  const auto rows = torch::stack({rendered.view({classes, columns, 3, rendered.size(2), rendered.size(3)}),
                                  generated.view({classes, columns, 3, generated.size(2), generated.size(3)})},
                                 1);
  write_grid_png(rows.reshape({-1, 3, rendered.size(2), rendered.size(3)}), 2 * classes, columns, zoom, file);
}

}  // namespace linkstyle
