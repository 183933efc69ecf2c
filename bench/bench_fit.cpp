// bench_fit: fitting the linking network, N = 30000 pairs, D = 2048, w_dim = 512 (ResNet-50 and
// StyleGAN-XL sizes), against scikit-learn's LinearRegression().fit on the same .npy shards.
//
// Prints: seconds for our fit end to end from the shards (statistics + solve + held-out
// metrics, and the same with all rows for training, as scikit-learn does), seconds when the
// statistics were accumulated during `pairs`, scikit-learn's fit time, the ratio, and the relative
// difference of the coefficients. Usage: bench_fit [--rows N] [--threads T] [--python PATH]
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include <fmt/format.h>
#include <torch/torch.h>

#include "linkstyle/pairs.hpp"
#include "linkstyle/runtime.hpp"
#include "linkstyle/tensor_io.hpp"

namespace fs = std::filesystem;
using namespace linkstyle;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Synthetic pairs that look like the real ones: r = relu of correlated Gaussians (non-negative,
// sparse-ish, a few dead units), w = r A + b + noise. Written as shards, with the statistics of
// the training rows accumulated on the way, as `linkstyle pairs` does.
PairsManifest write_synthetic_pairs(const fs::path& folder, int64_t rows, int64_t d, int64_t w_dim, int64_t shard_rows,
                                    double holdout_fraction) {
  fs::remove_all(folder);
  fs::create_directories(folder);
  auto generator = at::detail::createCPUGenerator(7);
  // Correlated but well-conditioned features (mixing eigenvalues within 0.5 of 1).
  auto mixing = 0.5 * torch::randn({d, d}, generator) / std::sqrt(static_cast<double>(d)) + torch::eye(d);
  auto truth = torch::randn({d, w_dim}, generator) / std::sqrt(static_cast<double>(d));
  PairsManifest manifest;
  manifest.folder = folder;
  manifest.feature_dim = d;
  manifest.latent_dim = w_dim;
  manifest.statistics_holdout_fraction = holdout_fraction;
  manifest.models = {{"classifier", {{"file", "synthetic"}}}, {"generator", {{"file", "synthetic"}}}};
  manifest.settings = {{"synthetic", true}};
  LinkingStatistics statistics(d, w_dim);
  for (int64_t begin = 0, index = 0; begin < rows; begin += shard_rows, ++index) {
    const int64_t n = std::min(shard_rows, rows - begin);
    auto r = torch::relu(torch::mm(torch::randn({n, d}, generator), mixing) + 0.3);
    r.slice(1, 0, 8).zero_();  // dead units, as in real networks
    auto w = torch::mm(r, truth) + 0.1 * torch::randn({n, w_dim}, generator) + 1.0;
    PairShard shard{fmt::format("r-{:05}.npy", index), fmt::format("w-{:05}.npy", index), "", "", n, begin};
    write_npy(folder / shard.features, r);
    write_npy(folder / shard.latents, w);
    std::vector<int64_t> training;
    for (int64_t i = 0; i < n; ++i)
      if (!is_held_out(begin + i, holdout_fraction)) training.push_back(i);
    auto keep = torch::tensor(training, torch::kInt64);
    statistics.add(r.index_select(0, keep), w.index_select(0, keep));
    manifest.shards.push_back(shard);
    manifest.total_rows += n;
  }
  manifest.statistics = "stats.safetensors";
  statistics.save(folder / manifest.statistics);
  manifest.complete = true;
  manifest.save();
  return manifest;
}

double relative_difference(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a.to(torch::kFloat64) - b.to(torch::kFloat64)).norm() / b.to(torch::kFloat64).norm()).item<double>();
}

}  // namespace

int main(int argc, char** argv) {
  int64_t rows = 30000, d = 2048, w_dim = 512;
  int threads = 0;
  std::string python = "/usr/bin/python3";
  bool keep = false;
  fs::path folder = fs::temp_directory_path() / "linkstyle-bench-fit";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--rows")
      rows = std::stoll(argv[i + 1]);
    else if (flag == "--threads")
      threads = std::stoi(argv[i + 1]);
    else if (flag == "--python")
      python = argv[i + 1];
    else if (flag == "--folder")
      folder = argv[i + 1];
    else if (flag == "--keep")
      keep = std::string(argv[i + 1]) == "1";
  }
  configure_runtime({"cpu", threads});
  fmt::print("bench_fit: N = {}, D = {}, w_dim = {}, {} threads\n", rows, d, w_dim, at::get_num_threads());
  auto started = std::chrono::steady_clock::now();
  auto manifest = write_synthetic_pairs(folder / "pairs", rows, d, w_dim, 4096, 0.1);
  fmt::print("  wrote {} shards in {:.1f} s\n", manifest.shards.size(), seconds_since(started));

  // Warm the page cache and the BLAS thread pool, as scikit-learn's run is also warm.
  fit_from_pairs(manifest, {}, 0.0, true);

  FitOptions ols;
  started = std::chrono::steady_clock::now();
  auto all_rows = fit_from_pairs(manifest, ols, 0.0, true);
  const double ours_all = seconds_since(started);
  started = std::chrono::steady_clock::now();
  auto held_out = fit_from_pairs(manifest, ols, 0.1, true);
  const double ours_held_out = seconds_since(started);
  started = std::chrono::steady_clock::now();
  auto reused = fit_from_pairs(manifest, ols, 0.1, false);
  const double ours_reused = seconds_since(started);

  fmt::print("  ours, from the shards, all rows (as scikit-learn): {:.2f} s (statistics {:.2f}, solve {:.2f} [{}])\n",
             ours_all, all_rows.seconds_statistics, all_rows.seconds_solve, all_rows.report.solver);
  fmt::print("  ours, from the shards, 90% train + held-out metrics: {:.2f} s (held-out R2 {:.4f})\n", ours_held_out,
             held_out.held_out.value("r2", 0.0));
  fmt::print("  ours, statistics accumulated during pairs: {:.2f} s (solve {:.2f}, metrics {:.2f})\n", ours_reused,
             reused.seconds_solve, reused.seconds_metrics);

  const std::string command = fmt::format("{} {}/bench/sklearn_fit.py {} {}", python, LINKSTYLE_SOURCE_DIR,
                                          (folder / "pairs").string(), folder.string());
  FILE* pipe = ::popen(command.c_str(), "r");
  std::string output;
  char buffer[4096];
  while (pipe && std::fgets(buffer, sizeof buffer, pipe)) output += buffer;
  if (!pipe || ::pclose(pipe) != 0) {
    fmt::print(stderr, "bench_fit: the scikit-learn reference failed ({})\n", command);
    return 1;
  }
  auto sklearn = nlohmann::json::parse(output);
  const double sklearn_fit = sklearn["fit_seconds"];
  auto coef = read_npy(folder / "sklearn_coef.npy");
  auto intercept = read_npy(folder / "sklearn_intercept.npy");
  auto coef32 = read_npy(folder / "sklearn32_coef.npy");
  const int64_t dead = 8;  // the synthetic data's dead units (columns 0..7)
  fmt::print(
      "  scikit-learn LinearRegression().fit: {:.2f} s on the float32 shards (+ {:.2f} s to load them); "
      "{:.2f} s in float64 (live features)\n",
      sklearn_fit, sklearn["load_seconds"].get<double>(), sklearn["fit64_seconds"].get<double>());
  fmt::print(
      "  speed-up vs scikit-learn (float32), end to end from the shards: {:.1f}x; with statistics from "
      "pairs: {:.1f}x\n",
      sklearn_fit / ours_all, sklearn_fit / ours_reused);
  // Dead units: their centred columns are zero, so any coefficient fits equally well. Ours (like
  // lstsq's minimum-norm solution) are 0; scikit-learn's are arbitrary, so they are left out.
  auto live = [&](const torch::Tensor& a) { return a.slice(1, dead); };
  fmt::print("  coefficients vs scikit-learn float64 on the live units: relative difference A {:.2e}, b {:.2e}\n",
             relative_difference(live(all_rows.network.weight), live(coef)),
             relative_difference(all_rows.network.bias, intercept));
  fmt::print(
      "  coefficients vs scikit-learn float32 (live units): relative difference A {:.2e}; "
      "scikit-learn float32 vs float64: {:.2e}\n",
      relative_difference(live(all_rows.network.weight), live(coef32)), relative_difference(live(coef32), live(coef)));
  fmt::print(
      "  dead units: ours are exactly 0 ({}); scikit-learn's float32 fit on all columns gives them up to {:.3g}\n",
      all_rows.network.weight.slice(1, 0, dead).abs().max().item<double>() == 0.0 ? "yes" : "no",
      coef32.slice(1, 0, dead).abs().max().item<double>());
  if (keep)
    write_npy(folder / "ours_coef.npy", all_rows.network.weight);
  else
    fs::remove_all(folder);
  return 0;
}
