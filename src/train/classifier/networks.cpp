// The built-in classifiers' networks as TorchScript modules (see classifier_training.hpp and
// networks.hpp).
#include "train/classifier/networks.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "linkstyle/errors.hpp"
#include "linkstyle/planted_units.hpp"
#include "linkstyle/train/classifier_training.hpp"
#include "train/training_common.hpp"

namespace linkstyle::classifier_training {

const char* const kResnetArchitecture =
    "resnet: stem conv3x3 32; 4 stages x 1 basic block (32, 64, 128, 256; stride 2 at stages 2-4; "
    "1x1 projection shortcut); group norm (8 groups); global average pool; linear head";

namespace {

constexpr int64_t kGroups = 8;

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
    body +=
        "    h = torch.relu(" + plain_norm(groups, conv("h", b + "_c1_w", stage == 1 ? 1 : 2, 1), b + "_n1") + ")\n";
    body += "    h = torch.relu(" + plain_norm(groups, conv("h", b + "_c2_w", 1, 1), b + "_n2") + ")\n";
    if (collect_stages) body += "    stages.append(h)\n";
  }
  return body;
}

}  // namespace

std::vector<int64_t> plain_widths(int64_t width) { return {width, 2 * width, 4 * width, 8 * width}; }

std::string plain_architecture(int64_t width) {
  const auto w = plain_widths(width);
  return fmt::format(
      "plain: stem conv3x3 {}; 4 stages x 2 conv3x3 ({}, {}, {}, {}; stride 2 at the first conv of "
      "stages 2-4), no shortcuts; group norm ({} groups); global average pool; linear head (D = {})",
      w[0], w[0], w[1], w[2], w[3], plain_groups(width), w[3]);
}

}  // namespace linkstyle::classifier_training

namespace linkstyle {

namespace fs = std::filesystem;

using namespace classifier_training;

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

torch::jit::Module build_plain_classifier(const std::vector<std::string>& class_names, uint64_t seed, int64_t width,
                                          int64_t input_size) {
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
  m.define("\ndef features(self, x: Tensor) -> Tensor:\n" + plain_body(groups, false) +
           "    return h.mean([2, 3])\n\n" + "def feature_pyramid(self, x: Tensor) -> List[Tensor]:\n" +
           plain_body(groups, true) + "    return stages\n" + kHeadSource);
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

}  // namespace linkstyle
