// The style generator as a TorchScript module (see generator_training.hpp and network.hpp).
#include "train/generator/network.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "linkstyle/errors.hpp"
#include "linkstyle/train/generator_training.hpp"
#include "linkstyle/worlds/shapes.hpp"
#include "splitmix.hpp"

namespace linkstyle::generator_training {

namespace {

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
constexpr int64_t kMappingLayers = 4;
constexpr double kMappingLrMultiplier = 0.01;
constexpr int64_t kWAvgSamples = 4096;

struct Block {
  int64_t resolution, channels;
};
const std::vector<Block>& synthesis_blocks() {
  static const std::vector<Block> blocks = {{4, 128}, {8, 128}, {16, 64}, {32, 32}};
  return blocks;
}

// Normal weights of `shape` drawn from `rng`.
torch::Tensor normal_weights(at::Generator& rng, std::vector<int64_t> shape) {
  return torch::randn(shape, rng, torch::kFloat);
}

// An empty generator module with the contract's attributes and a zero w_avg.
torch::jit::Module style_generator_module(const std::vector<std::string>& class_names, int64_t z_dim) {
  const int64_t classes = static_cast<int64_t>(class_names.size());
  torch::jit::Module m("StyleGenerator");
  c10::List<std::string> names;
  for (const auto& name : class_names) names.push_back(name);
  m.register_attribute("class_names", c10::ListType::ofStrings(), names);
  m.register_attribute("z_dim", c10::IntType::get(), z_dim);
  m.register_attribute("w_dim", c10::IntType::get(), kWDim);
  m.register_attribute("num_classes", c10::IntType::get(), classes);
  m.register_attribute("resolution", c10::IntType::get(), kResolution);
  m.register_buffer("w_avg", torch::zeros({classes, kWDim}));
  return m;
}

// The factor generator's buffers and the start of its mapping_raw: z's coordinates are the
// factors' normal scores, factors = low[c] + span[c] * Phi(z). The mapping reads each factor
// centred and scaled to unit variance, and the circular ones (the hues, the light's direction)
// also as a cosine and a sine.
std::string factor_mapping_source(torch::jit::Module& m, int64_t classes, int64_t z_dim) {
  const auto labels = torch::arange(classes, torch::kLong);
  const auto low = ShapesWorld::factors_of_quantiles(labels, torch::zeros({classes, z_dim}));
  m.register_buffer("factor_low", low);
  m.register_buffer("factor_span", ShapesWorld::factors_of_quantiles(labels, torch::ones({classes, z_dim})) - low);
  m.register_buffer("circular_factors", torch::tensor(circular_factor_columns(), torch::kLong));
  return R"(
def factors(self, z: Tensor, c: Tensor) -> Tensor:
    u = 0.5 * (1.0 + torch.erf(z * 0.7071067811865476))
    return self.factor_low.index_select(0, c) + self.factor_span.index_select(0, c) * u

def mapping_raw(self, z: Tensor, c: Tensor) -> Tensor:
    f = self.factors(z, c)
    a = f.index_select(1, self.circular_factors) * 6.283185307179586
    x = torch.cat([(f - 0.5) * 3.4641016151377544, torch.cos(a) * 1.4142135623730951, torch.sin(a) * 1.4142135623730951], 1)
)";
}

// What the mapping's fully connected layers read.
struct MappingInput {
  std::string source;        // mapping_raw up to x = [input, embedding]
  int64_t width = 0;         // of x
  double lr_multiplier = 0;  // the layers' learning-rate multiplier
};

// The class embedding and mapping_raw up to x = [input, embedding].
MappingInput mapping_input(torch::jit::Module& m, at::Generator& rng, bool factors, int64_t classes, int64_t z_dim) {
  // Mapping: weights stored as N(0, 1/lr^2) and scaled by lr / sqrt(fan_in) (equalised lr).
  m.register_parameter("embed", normal_weights(rng, {classes, kEmbedDim}), false);
  std::string source;
  int64_t in = kEmbedDim;
  double lr_multiplier = kMappingLrMultiplier;
  if (factors) {
    source = factor_mapping_source(m, classes, z_dim);
    in += z_dim + 2 * static_cast<int64_t>(kCircularFactors.size());
    lr_multiplier = 1.0;  // taught directly, not through a discriminator
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
  return {source, in, lr_multiplier};
}

// The mapping's fully connected layers map0..map3 (leaky ReLU), as the lines of mapping_raw
// after its input.
std::string mapping_layers_source(torch::jit::Module& m, at::Generator& rng, int64_t in, double lr_multiplier) {
  std::string source;
  for (int64_t i = 0; i < kMappingLayers; ++i) {
    const std::string name = "map" + std::to_string(i);
    m.register_parameter(name + "_w", normal_weights(rng, {kWDim, in}) / lr_multiplier, false);
    m.register_parameter(name + "_b", torch::zeros({kWDim}), false);
    source += "    x = torch.leaky_relu(torch.linear(x, self." + name + "_w * " +
              number(lr_multiplier / std::sqrt(double(in))) + ", self." + name + "_b * " + number(lr_multiplier) +
              "), 0.2) * " + number(std::sqrt(2.0)) + "\n";
    in = kWDim;
  }
  return source;
}

// The end of mapping_raw, mapping (with truncation), the modulated convolution and the start of
// synthesis_all.
std::string mapping_and_modulation_source() {
  return R"(    return x

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
}

// The learned constant and the synthesis blocks (convolutions and toRGB skips), as the body of
// synthesis_all after its start.
std::string synthesis_layers_source(torch::jit::Module& m, at::Generator& rng) {
  std::string source;
  const auto& blocks = synthesis_blocks();
  m.register_parameter("const", normal_weights(rng, {blocks[0].channels, 4, 4}), false);
  auto add_layer = [&](const std::string& name, int64_t in_channels, int64_t out_channels, int64_t kernel,
                       bool demodulate) {
    m.register_parameter(name + "_aw", normal_weights(rng, {in_channels, kWDim}), false);
    m.register_parameter(name + "_ab", torch::ones({in_channels}), false);
    m.register_parameter(name + "_w", normal_weights(rng, {out_channels, in_channels, kernel, kernel}), false);
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
  return source;
}

// The end of synthesis_all and the methods built on it.
const char* const kSynthesisMethodsSource = R"(    return img, features

def synthesis_raw(self, w: Tensor) -> Tensor:
    return self.synthesis_all(w)[0]

def synthesis(self, w: Tensor) -> Tensor:
    return self.synthesis_all(w)[0].clamp(-1.0, 1.0)

def synthesis_features(self, w: Tensor) -> List[Tensor]:
    return self.synthesis_all(w)[1]

def forward(self, z: Tensor, c: Tensor) -> Tensor:
    return self.synthesis_raw(self.mapping_raw(z, c))
)";

}  // namespace

std::string number(double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.9g", value);
  std::string text = buffer;
  if (text.find_first_of(".eE") == std::string::npos) text += ".0";
  return text;
}

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

torch::Tensor renders_of_latents(torch::jit::Module& generator, const ShapesWorld& world, const torch::Tensor& z,
                                 const torch::Tensor& labels) {
  torch::NoGradGuard no_grad;
  const auto factors = generator.run_method("factors", z, labels).toTensor().clamp(0.0, 1.0);
  const std::vector<int64_t> l(labels.data_ptr<int64_t>(), labels.data_ptr<int64_t>() + labels.numel());
  return world.render_factors(l, factors).images;
}

}  // namespace linkstyle::generator_training

namespace linkstyle {

torch::jit::Module build_style_generator(const std::vector<std::string>& class_names, uint64_t seed,
                                         StyleLatent latent) {
  using namespace generator_training;
  torch::NoGradGuard no_grad;
  at::Generator rng = at::detail::createCPUGenerator(seed);
  const int64_t classes = static_cast<int64_t>(class_names.size());
  const bool factors = latent == StyleLatent::kShapesFactors;
  const int64_t z_dim = factors ? kShapesFactorCount : kZDim;
  torch::jit::Module m = style_generator_module(class_names, z_dim);
  const MappingInput input = mapping_input(m, rng, factors, classes, z_dim);
  std::string source = input.source;
  source += mapping_layers_source(m, rng, input.width, input.lr_multiplier);
  source += mapping_and_modulation_source();
  source += synthesis_layers_source(m, rng);
  source += kSynthesisMethodsSource;
  m.define(source);
  return m;
}

}  // namespace linkstyle
