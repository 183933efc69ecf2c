// train/generator/sample_grids.hpp (private)
//
// WHAT THIS REPRESENTS
//   Images of a generator laid out as a PNG grid: the training preview beside the model file, and
//   the grid writer behind it and behind the public sample and comparison grids
//   (generator_training.hpp).
// REQUIRES
//   Images [rows * columns, 3, S, S] in [0, 1] on the CPU, zoom >= 1; a generator built by
//   build_style_generator.
// ENSURES
//   Each grid has 2-px white gaps around its cells, each image scaled `zoom` times by nearest
//   neighbour, and is written atomically (Error naming the file when it cannot be encoded or
//   written). The preview draws fixed latents, the same at every checkpoint.
#pragma once

#include <cstdint>
#include <filesystem>

#include <torch/types.h>

namespace torch::jit {
struct Module;
}

namespace linkstyle::generator_training {

// Writes images [rows*columns, 3, S, S] in [0, 1] as a PNG grid (2-px white gaps, `zoom` x
// nearest-neighbour), atomically.
void write_grid_png(const torch::Tensor& images, int64_t rows, int64_t columns, int64_t zoom,
                    const std::filesystem::path& file);

// A grid of `generator` at psi = 1 (fixed latents, 8 per class, one row per class) beside the
// model file, rewritten at every checkpoint so that a long run can be watched.
void write_preview(torch::jit::Module& generator, int64_t classes, const std::filesystem::path& output);

}  // namespace linkstyle::generator_training
