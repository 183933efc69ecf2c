// bench_counterfactual: counterfactuals on the shipped shapes models (the demo's: the faithful
// generator at psi 1, the classifier), batched against one sample at a time (the reference
// code's way), same models, settings and threads:
//   - the optimisation alone (optimise_shifts): the time per counterfactual both ways, the
//     speed-up, and the share of the time in the image-domain checks;
//   - the whole run (run_counterfactuals: samples, optimisation, path, PNGs, database) per
//     counterfactual.
// It builds its own study (pairs + fit) in a temporary folder first.
// Usage: bench_counterfactual [--threads T] [--device cpu|cuda] [--samples N] [--batch-size B]
//                             [--pairs-per-class P] [--from A] [--to B] [--max-steps S]
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include <fmt/format.h>
#include <torch/torch.h>
#include <unistd.h>

#include "linkstyle/counterfactual.hpp"
#include "linkstyle/generation.hpp"
#include "linkstyle/pairs.hpp"
#include "linkstyle/runtime.hpp"

namespace fs = std::filesystem;
using namespace linkstyle;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  int64_t samples = 32, batch_size = 32, pairs_per_class = 500, max_steps = 2000;
  std::string from = "mushroom", to = "tree";
  RuntimeOptions runtime;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--device")
      runtime.device = value;
    else if (flag == "--from")
      from = value;
    else if (flag == "--to")
      to = value;
    else if (flag == "--threads")
      runtime.threads = std::stoi(value);
    else if (flag == "--samples")
      samples = std::stoll(value);
    else if (flag == "--batch-size")
      batch_size = std::stoll(value);
    else if (flag == "--pairs-per-class")
      pairs_per_class = std::stoll(value);
    else if (flag == "--max-steps")
      max_steps = std::stoll(value);
    else {
      std::fprintf(stderr, "unknown option %s\n", argv[i]);
      return 2;
    }
  }
  const auto device = configure_runtime(runtime);
  const auto finish = [&] {
    if (device.is_cuda()) torch::cuda::synchronize();
  };
  const fs::path models = fs::path(LINKSTYLE_SOURCE_DIR) / "models" / "shapes";
  const fs::path folder = fs::temp_directory_path() / fmt::format("linkstyle-bench-counterfactual-{}", ::getpid());
  fs::remove_all(folder);
  StudyConfig study;
  study.folder = folder;
  study.classifier = models / "classifier.pt";
  study.generator = models / "faithful_generator.pt";
  study.pairs.samples_per_class = pairs_per_class;
  study.pairs.psi = 1.0;
  study.counterfactual.samples = samples;
  study.counterfactual.batch_size = batch_size;
  study.counterfactual.max_steps = max_steps;
  fs::create_directories(folder);
  write_study(study);
  study = load_study(folder);
  const auto classifier = Classifier::load(study.classifier, device);
  const auto generator = Generator::load(study.generator, device);
  std::printf("bench_counterfactual: shipped shapes models on %s, %d thread(s); making a study (%lld pairs per class) ...\n",
              device.str().c_str(), at::get_num_threads(), (long long)pairs_per_class);
  const auto manifest = generate_pairs(study, classifier, generator);
  auto linking = fit_from_pairs(manifest, FitOptions{}, study.pairs.holdout_fraction, false);
  fs::create_directories(study.linking_file().parent_path());
  linking.network.save(study.linking_file());
  const CounterfactualModels cf_models{classifier, generator, linking.network};
  const int64_t source = resolve_classifier_class(classifier, from, "from");
  const int64_t target = resolve_classifier_class(classifier, to, "to");

  // The same samples both ways: the first `samples` generated ones of the source class.
  const auto made = generate_and_encode(generator, classifier, study.counterfactual.seed, source, 0, samples, 1.0);
  std::vector<int64_t> ids;
  for (int64_t i = 0; i < samples; ++i) ids.push_back(i);
  const auto r = made.features;
  const auto s0 = initial_shifts(0, ids, r.size(1));
  auto start = std::chrono::steady_clock::now();
  ShiftOptimisation batched;
  for (int64_t first = 0; first < samples; first += batch_size) {
    const int64_t last = std::min(samples, first + batch_size);
    const auto part = optimise_shifts(cf_models, r.slice(0, first, last), source, target, s0.slice(0, first, last),
                                      study.counterfactual);
    batched.check_seconds += part.check_seconds;
    batched.checks += part.checks;
    batched.success = batched.success.defined() ? torch::cat({batched.success, part.success}) : part.success;
    batched.steps = batched.steps.defined() ? torch::cat({batched.steps, part.steps}) : part.steps;
  }
  finish();
  const double batched_seconds = seconds_since(start);
  start = std::chrono::steady_clock::now();
  double loop_check_seconds = 0;
  int64_t loop_agree = 0;
  for (int64_t i = 0; i < samples; ++i) {
    const auto one = optimise_shifts(cf_models, r.slice(0, i, i + 1), source, target, s0.slice(0, i, i + 1),
                                     study.counterfactual);
    loop_check_seconds += one.check_seconds;
    loop_agree += one.steps[0].item<int64_t>() == batched.steps[i].item<int64_t>();
  }
  finish();
  const double loop_seconds = seconds_since(start);
  const auto steps = batched.steps.to(torch::kDouble);
  std::printf("%s -> %s, %lld samples, method %s, max %lld steps: %lld reach the target, median %.0f steps, "
              "mean %.1f; the loop takes the same steps for %lld/%lld\n",
              classifier.class_name(source).c_str(), classifier.class_name(target).c_str(), (long long)samples,
              study.counterfactual.method.c_str(), (long long)max_steps,
              (long long)batched.success.sum().item<int64_t>(), steps.median().item<double>(),
              steps.mean().item<double>(), (long long)loop_agree, (long long)samples);
  std::printf("optimisation, batched (%lld per batch): %.4f s per counterfactual, %.0f%% in image checks\n",
              (long long)batch_size, batched_seconds / double(samples), 100.0 * batched.check_seconds / batched_seconds);
  std::printf("optimisation, one at a time:         %.4f s per counterfactual, %.0f%% in image checks\n",
              loop_seconds / double(samples), 100.0 * loop_check_seconds / loop_seconds);
  std::printf("speed-up of the batch over the loop: %.2fx\n", loop_seconds / batched_seconds);

  CounterfactualRunOptions options;
  options.progress = false;
  const auto run = run_counterfactuals(study, cf_models, study.linking_file(), {from, to, {}, false}, options);
  std::printf("whole run (samples, optimisation, path of %lld points, PNGs, database): %.4f s per counterfactual, "
              "%lld/%lld reach the target\n",
              (long long)study.counterfactual.path_points, run.seconds_per_counterfactual, (long long)run.successes,
              (long long)run.samples);
  fs::remove_all(folder);
  return 0;
}
