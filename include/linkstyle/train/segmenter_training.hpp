// linkstyle/train/segmenter_training.hpp
//
// WHAT THIS REPRESENTS
//   The shapes world's part segmenter: a small U-Net built directly as a TorchScript module (the
//   trained object is the exported file) that labels every pixel of an image with one of the
//   world's parts, to measure generated images (which parts an image shows, and where):
//     segment(images [N,3,H,W] float in [0,1]) -> logits [N,K,H,W], K = part_names().size() =
//       ShapesWorld::part_names().size() (18, label 0 = background); argmax over dim 1 is the
//       predicted part mask. Fully convolutional: (x - 0.5) / 0.5; encoder of three levels
//       (width, 2 width, 4 width channels, width 32 by default; two conv3x3 + group norm (8 groups) + ReLU each; 2x2
//       max pooling between levels); decoder with bilinear upsampling, concatenated skip connections and two conv3x3 +
//       group norm + ReLU per level (2 width, width channels); 1x1 conv head. H and W should be multiples of 4 (other
//       sizes work, the skips are resized); it is trained at `resolution`. forward(x) = segment(x).
//     attributes part_names (List[str]) and resolution (int, the training resolution).
//   Training data: ShapesWorld at the training resolution (32 by default, the size the
//   project's generators make), fresh rendered batches every step with their part masks.
//   Metrics (segmentation_metrics): per-label IoU = intersection / union of the predicted and
//   true masks, both summed over all images; mean IoU = the mean over the labels that occur in
//   the ground truth (background included); pixel accuracy = fraction of pixels labelled right.
// REQUIRES
//   output names a file in a writable folder; steps >= 1, batch_size >= 1, checkpoint_every >= 1,
//   learning_rate > 0, test_images >= 1, resolution a multiple of 4 in [16, 256], seed < 2^22.
//   A segmenter file for load_segmenter has method segment and attributes part_names (equal to
//   ShapesWorld::part_names()) and resolution.
// ENSURES
//   train_segmenter() minimises the per-pixel cross-entropy with Adam (lr cosine-decayed from
//   learning_rate to 0 over `steps`), seeded: initial weights come from `seed`; the batch of step
//   s is a pure function of (seed, s) (images (seed << 40) + index, labels index % 6, and, with
//   `augment`, a light per-image brightness/contrast jitter and pixel noise drawn from (seed, s)),
//   so a resumed run sees the same data. Training images use shapes seeds below 2^63, the test
//   images (labels i % 6) seeds 2^63 + i: the sets are disjoint. Every checkpoint_every steps
//   (and at the end) it writes <output>.checkpoint/checkpoint.pt atomically (module, Adam state,
//   step, seed, batch size, resolution); a rerun with the same output resumes from it (after
//   kill -9 too). <output>.log.csv holds one row per step (step,loss,pixel_accuracy,seconds),
//   steps 1..steps without gaps or duplicates across resumes. At the end it evaluates the
//   held-out figures, writes the model atomically (parameters without requires_grad) and the
//   model card <output>.json (world, architecture, part_names, resolution, steps, seed,
//   batch_size, learning_rate, augment, command_line, test_images, mean_iou, pixel_accuracy,
//   part_iou, training_seconds, git_revision). Bad options throw linkstyle::Error naming the
//   option, before anything is written; a file that breaks the segmenter contract throws Error
//   naming the file. Checkpoint, resume, log and card follow TrainingRun (training_run.hpp).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <c10/core/Device.h>
#include <torch/types.h>

#include "linkstyle/train/training_run.hpp"

namespace torch::jit {
struct Module;
}

namespace linkstyle {

struct SegmenterTrainingOptions {
  std::filesystem::path output;  // the TorchScript model file to write
  int64_t steps = 3000;
  uint64_t seed = 0;
  int64_t batch_size = 32;
  int64_t checkpoint_every = 100;
  double learning_rate = 2e-3;
  int64_t resolution = 32;
  int64_t width = 32;  // channels of the first level (then 2x, 4x); a multiple of 8
  bool augment = true;
  int64_t test_images = 2000;
  std::string command_line;  // recorded in the model card
  bool progress = true;      // draw a ProgressBar (only on a terminal)
};

struct SegmentationMetrics {
  double mean_iou = 0;                // over the labels present in the ground truth
  double pixel_accuracy = 0;          // in [0, 1]
  std::vector<double> part_iou;       // per label; NaN where the label is absent from the truth
  std::vector<int64_t> truth_pixels;  // per label, ground-truth pixel count
  int64_t images = 0;
};

struct SegmenterTrainingResult : TrainingRunResult {
  SegmentationMetrics test;  // on test_images held-out images
};

SegmenterTrainingResult train_segmenter(const SegmenterTrainingOptions& options);

// The untrained U-Net described above for `part_names`, weights drawn from `seed`.
torch::jit::Module build_unet_segmenter(const std::vector<std::string>& part_names, uint64_t seed,
                                        int64_t resolution = 32, int64_t width = 32);

// Loads a segmenter file onto `device` in evaluation mode and checks the contract above.
torch::jit::Module load_segmenter(const std::filesystem::path& file, c10::Device device = c10::Device(c10::kCPU));

// Metrics of predicted part masks against true ones (both [N,H,W] int64 in [0, num_labels)).
SegmentationMetrics segmentation_metrics(const torch::Tensor& predicted, const torch::Tensor& truth,
                                         int64_t num_labels);

// Metrics of a segmenter on `test_images` held-out shapes images (labels i % 6, seeds 2^63 + i)
// rendered at the segmenter's resolution, on the device its parameters live on.
SegmentationMetrics segmenter_test_metrics(torch::jit::Module& segmenter, int64_t test_images = 2000);

}  // namespace linkstyle
