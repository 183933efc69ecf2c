// bench_sweep: unit-sweep throughput on the shipped shapes models (generator, classifier and
// segmenter in models/shapes), in generated images per second:
//   - raw forward: generator synthesis + classifier features alone, batched (the ceiling);
//   - each stage alone, batched: synthesis, classifier, segmenter, part measures (where time goes);
//   - the batched pipeline (measure_latents: synthesis, classifier, head, segmenter, part measures;
//     on a GPU a batch is encoded, segmented and measured beside the rendering of the next, as in a sweep);
//   - the full sweep (run_sweep on --units units: tuning set, null directions, pipeline, flow,
//     statistics, SQLite rows, selectivity, strips) from a fresh database;
//   - a one-image-at-a-time loop through the same pipeline, as the reference code runs.
// It builds its own study (pairs + fit) in a temporary folder first.
// Usage: bench_sweep [--threads T] [--device cpu|cuda] [--units U] [--stage-units S] [--loop-images N]
//                    [--batch-size B] [--pairs-per-class P]
// The stage figures use the first S units (default 8) of the U in the full sweep.
// On a GPU every timed stage ends with a device synchronisation, so that its figure covers the
// work and not only its launch.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include <fmt/format.h>
#include <opencv2/core.hpp>
#include <torch/torch.h>
#include <unistd.h>

#include "linkstyle/pairs.hpp"
#include "linkstyle/runtime.hpp"
#include "linkstyle/sweep.hpp"
#include "linkstyle/tuning_set.hpp"

namespace fs = std::filesystem;
using namespace linkstyle;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

template <typename F>
double images_per_second(int64_t images, const c10::Device& device, F&& run) {
  const auto finish = [&] {
    if (device.is_cuda()) torch::cuda::synchronize();
  };
  run();  // warm-up (allocations, first-call costs)
  finish();
  const auto start = std::chrono::steady_clock::now();
  run();
  finish();
  return double(images) / seconds_since(start);
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 0;
  int64_t units = 32, stage_units = 8, loop_images = 120, batch_size = 128, pairs_per_class = 500;
  RuntimeOptions runtime;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--device") {
      runtime.device = argv[i + 1];
      continue;
    }
    const int64_t value = std::stoll(argv[i + 1]);
    if (flag == "--threads")
      threads = int(value);
    else if (flag == "--units")
      units = value;
    else if (flag == "--stage-units")
      stage_units = value;
    else if (flag == "--loop-images")
      loop_images = value;
    else if (flag == "--batch-size")
      batch_size = value;
    else if (flag == "--pairs-per-class")
      pairs_per_class = value;
    else {
      std::fprintf(stderr, "unknown option %s\n", argv[i]);
      return 2;
    }
  }
  runtime.threads = threads;
  const auto device = configure_runtime(runtime);
  const fs::path models = fs::path(LINKSTYLE_SOURCE_DIR) / "models" / "shapes";
  const fs::path folder = fs::temp_directory_path() / fmt::format("linkstyle-bench-sweep-{}", ::getpid());
  fs::remove_all(folder);
  StudyConfig study;
  study.folder = folder;
  study.classifier = models / "classifier.pt";
  study.generator = models / "generator.pt";
  study.segmenter = models / "segmenter.pt";
  study.pairs.samples_per_class = pairs_per_class;
  study.sweep.batch_size = batch_size;
  study.sweep.strip_units = 2;
  for (int64_t u = 0; u < units; ++u) study.sweep.units.push_back(u);
  fs::create_directories(folder);
  write_study(study);
  study = load_study(folder);
  const auto classifier = Classifier::load(study.classifier, device);
  const auto generator = Generator::load(study.generator, device);
  std::printf(
      "bench_sweep: shipped shapes models on %s, %d thread(s), batch %lld; making a study (%lld pairs per class) ...\n",
      device.str().c_str(), at::get_num_threads(), (long long)batch_size, (long long)pairs_per_class);
  const auto manifest = generate_pairs(study, classifier, generator);
  FitOptions fit;
  auto linking = fit_from_pairs(manifest, fit, study.pairs.holdout_fraction, false);
  fs::create_directories(study.linking_file().parent_path());
  linking.network.save(study.linking_file());
  const auto& network = linking.network;

  const auto tuning = make_tuning_set(study, classifier, generator, network);
  const auto parts = make_part_source(study, generator, tuning.latents, device);
  const SweepModels sweep_models{classifier, generator, network, *parts};
  std::vector<int64_t> unit_list(study.sweep.units.begin(), study.sweep.units.begin() + std::min(units, stage_units));
  const auto latents = unit_sweep_latents(network, tuning, unit_list, study.sweep.steps);
  const int64_t n = latents.size(0);
  const torch::NoGradGuard no_grad;
  auto batched = [&](auto&& body) {
    return [&, body]() {
      for (int64_t s = 0; s < n; s += batch_size) body(latents.slice(0, s, std::min(n, s + batch_size)));
    };
  };
  const double raw = images_per_second(n, device, batched([&](const torch::Tensor& w) {
                                         classifier.features(generator_to_classifier_range(generator.synthesis(w)));
                                       }));
  const auto images = generator_to_classifier_range(generator.synthesis(latents));
  const double synthesis_only =
      images_per_second(n, device, batched([&](const torch::Tensor& w) { generator.synthesis(w); }));
  const double classifier_only = images_per_second(n, device, [&]() {
    for (int64_t s = 0; s < n; s += batch_size) classifier.features(images.slice(0, s, std::min(n, s + batch_size)));
  });
  const double segmenter_only = images_per_second(n, device, [&]() {
    for (int64_t s = 0; s < n; s += batch_size) parts->label(images.slice(0, s, std::min(n, s + batch_size)), latents);
  });
  const auto labels = parts->label(images, latents).contiguous();
  const auto pixels =
      images.to(torch::kCPU).mul(255).round().clamp(0, 255).to(torch::kUInt8).permute({0, 2, 3, 1}).contiguous();
  const int side = int(generator.resolution());
  const double measures_only = images_per_second(n, device, [&]() {
    for (int64_t i = 0; i < n; ++i)
      measure_parts(cv::Mat(side, side, CV_8UC3, pixels[i].data_ptr()),
                    cv::Mat(side, side, CV_32SC1, labels[i].data_ptr()), int(parts->part_names().size()));
  });
  const double pipeline = images_per_second(
      n, device, [&]() { measure_latents(sweep_models, latents, batch_size, true, device.is_cuda()); });
  const auto loop_latents = latents.slice(0, 0, std::min(n, loop_images));
  const double loop =
      images_per_second(loop_latents.size(0), device, [&]() { measure_latents(sweep_models, loop_latents, 1, true); });

  SweepRunOptions options;
  options.progress = false;
  const auto summary = run_sweep(study, classifier, generator, network, options);
  const double full = summary.images_per_second;

  std::printf("images per second (%lld images of %dx%d; %lld units x %lld samples x %lld steps)\n", (long long)n, side,
              side, (long long)unit_list.size(), (long long)tuning.size(), (long long)study.sweep.steps);
  std::printf("  raw forward, synthesis + classifier, batched   %8.1f\n", raw);
  std::printf("    synthesis alone                              %8.1f\n", synthesis_only);
  std::printf("    classifier alone                             %8.1f\n", classifier_only);
  std::printf("    segmenter alone                              %8.1f\n", segmenter_only);
  std::printf("    part measures alone (one thread)             %8.1f\n", measures_only);
  std::printf("  pipeline, batched (+ head, segmenter, measures) %8.1f  = %.0f%% of raw\n", pipeline,
              100 * pipeline / raw);
  std::printf(
      "  full sweep, %lld units + %lld null directions   %8.1f  = %.0f%% of raw, %.1fx the loop (%lld images, %.1f "
      "s)\n",
      (long long)summary.units, (long long)(study.sweep.null_bins * study.sweep.null_directions), full,
      100 * full / raw, full / loop, (long long)summary.images, summary.seconds);
  std::printf("  one image at a time, same pipeline             %8.1f\n", loop);
  fs::remove_all(folder);
  return 0;
}
