// Grids of a generator's images (see sample_grids.hpp and generator_training.hpp).
#include "train/generator/sample_grids.hpp"

#include <string>
#include <utility>
#include <vector>

#include <ATen/CPUGeneratorImpl.h>
#include <opencv2/imgcodecs.hpp>
#include <torch/script.h>
#include <torch/torch.h>

#include "linkstyle/atomic_file.hpp"
#include "linkstyle/errors.hpp"
#include "linkstyle/models.hpp"
#include "linkstyle/train/generator_training.hpp"
#include "linkstyle/worlds/shapes.hpp"
#include "splitmix.hpp"
#include "train/generator/network.hpp"
#include "train/training_common.hpp"

namespace linkstyle::generator_training {

namespace fs = std::filesystem;

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

}  // namespace linkstyle::generator_training

namespace linkstyle {

namespace fs = std::filesystem;

using generator_training::renders_of_latents;
using generator_training::write_grid_png;

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
    throw Error(generator_file,
                "has no factors(z, c): only a generator trained with --objective renderer "
                "knows the factors of its samples");
  if (generator.class_names() != ShapesWorld::class_names())
    throw Error(generator_file, "does not have the shapes world's classes");
  return {std::move(generator), std::move(module)};
}

}  // namespace

void check_render_comparison_grid(const fs::path& generator_file) { load_factor_generator(generator_file); }

void write_render_comparison_grid(const fs::path& generator_file, const fs::path& file, int64_t columns, uint64_t seed,
                                  int64_t zoom) {
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
