// train/generator/discriminator.hpp (private)
//
// WHAT THIS REPRESENTS
//   The adversarial objective's projected discriminator (spectrally normalised convolutional
//   heads over the frozen classifier's stage outputs, optionally one over the images too) and the
//   differentiable augmentation that both its real and its generated images go through.
// REQUIRES
//   Stage inputs [N, C, S, S] with the channels and sides given at construction (S 4 times a
//   power of 2); class labels [N] int64 in [0, classes); with a minibatch group g > 0, N a
//   multiple of min(g, N). Images in [0, 1].
// ENSURES
//   Parameters and the spectral vectors u are drawn from torch's global generator at construction,
//   in registration order; augment draws only from the generator it is given. The modules'
//   parameter names ("head<i>", "last<i>", "out<i>", "embed<i>") are the discriminator's
//   checkpoint entries.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

namespace linkstyle::generator_training {

constexpr int64_t kHeadChannels = 128;
constexpr int64_t kPixelHeadChannels = 32;  // the pixel head's width after its fromRGB

// A convolution whose weight is divided by its largest singular value (spectral normalisation),
// estimated by one power iteration per training forward pass with a persistent vector u.
struct SpectralConvImpl : torch::nn::Module {
  SpectralConvImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding);

  torch::Tensor forward(const torch::Tensor& x);

  int64_t stride, padding;
  torch::Tensor weight, bias, u;
};
TORCH_MODULE(SpectralConv);

// x [N, C, H, W] with one more channel: the standard deviation of each feature over groups of
// `group` samples (samples i, i + N/group, ...), averaged over features and positions, so that the
// discriminator sees how varied a batch is (a collapsed generator's batches are not). The options
// check ensures that the group divides N.
torch::Tensor with_minibatch_std(const torch::Tensor& x, int64_t group);

// Projected discriminator: one head per classifier stage, each reducing its stage to
// kHeadChannels x 4 x 4 and scoring it with an unconditional 1x1 output plus a class projection.
// With a minibatch group > 0, each head's last convolution also sees with_minibatch_std's channel.
// With a pixel head, the first "stage" is the (augmented) image itself, which its head lifts to
// kPixelHeadChannels with a 1x1 convolution (StyleGAN's fromRGB) before reducing it like the others:
// the classifier's stages keep what tells the classes apart and may drop what does not (a part's
// hue), which the pixel head still sees.
struct ProjectedDiscriminatorImpl : torch::nn::Module {
  ProjectedDiscriminatorImpl(const std::vector<int64_t>& stage_channels, const std::vector<int64_t>& stage_sides,
                             int64_t classes, int64_t minibatch_group, bool pixel_head);

  // Logits [N] of images (augmented, [0, 1]) and their classifier stages: the sum over heads of the
  // spatial mean of each head's score map.
  torch::Tensor forward(const torch::Tensor& images, const std::vector<torch::Tensor>& classifier_stages,
                        const torch::Tensor& classes);

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
torch::Tensor augment(const torch::Tensor& x, at::Generator& rng, const std::string& mode);

}  // namespace linkstyle::generator_training
