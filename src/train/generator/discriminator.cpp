// The projected discriminator and its augmentation (see discriminator.hpp).
#include "train/generator/discriminator.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace linkstyle::generator_training {

SpectralConvImpl::SpectralConvImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding)
    : stride(stride), padding(padding) {
  weight = register_parameter("weight",
                              torch::randn({out, in, kernel, kernel}) * std::sqrt(2.0 / double(in * kernel * kernel)));
  bias = register_parameter("bias", torch::zeros({out}));
  u = register_buffer(
      "u", torch::nn::functional::normalize(torch::randn({out}), torch::nn::functional::NormalizeFuncOptions().dim(0)));
}

torch::Tensor SpectralConvImpl::forward(const torch::Tensor& x) {
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

torch::Tensor with_minibatch_std(const torch::Tensor& x, int64_t group) {
  const int64_t n = x.size(0), g = std::min(group, n);
  const auto grouped = x.reshape({g, n / g, x.size(1), x.size(2), x.size(3)});
  const auto sd = (grouped - grouped.mean(0)).square().mean(0).add(1e-8).sqrt().mean({1, 2, 3});  // [N/g]
  return torch::cat(
      {x, sd.view({1, -1, 1, 1, 1}).expand({g, n / g, 1, x.size(2), x.size(3)}).reshape({n, 1, x.size(2), x.size(3)})},
      1);
}

ProjectedDiscriminatorImpl::ProjectedDiscriminatorImpl(const std::vector<int64_t>& stage_channels,
                                                       const std::vector<int64_t>& stage_sides, int64_t classes,
                                                       int64_t minibatch_group, bool pixel_head)
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
      lasts.push_back(register_module("last" + std::to_string(i), SpectralConv(channels + 1, kHeadChannels, 3, 1, 1)));
    } else {
      head->push_back(SpectralConv(channels, kHeadChannels, 3, 1, 1));
      head->push_back(torch::nn::LeakyReLU(torch::nn::LeakyReLUOptions().negative_slope(0.2)));
    }
    heads.push_back(register_module("head" + std::to_string(i), head));
    outputs.push_back(register_module("out" + std::to_string(i), SpectralConv(kHeadChannels, 1, 1, 1, 0)));
    embeddings.push_back(register_module("embed" + std::to_string(i), torch::nn::Embedding(classes, kHeadChannels)));
  }
}

torch::Tensor ProjectedDiscriminatorImpl::forward(const torch::Tensor& images,
                                                  const std::vector<torch::Tensor>& classifier_stages,
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

}  // namespace linkstyle::generator_training
