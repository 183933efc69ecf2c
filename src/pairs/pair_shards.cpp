// Reading the pairs' shards (memory-mapped, checked against the manifest) and fitting the linking
// network from them (pairs.hpp).
#include "linkstyle/pairs.hpp"

#include <chrono>
#include <map>

#include <fmt/format.h>
#include <torch/torch.h>

#include "linkstyle/errors.hpp"
#include "linkstyle/tensor_io.hpp"

namespace linkstyle {

namespace fs = std::filesystem;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Refuses a shard holding NaN or Inf, naming its first such row.
void require_finite_rows(const torch::Tensor& rows, const fs::path& file) {
  const auto bad = (~torch::isfinite(rows)).any(1).nonzero();
  if (bad.numel() > 0) throw Error(file, fmt::format("row {} holds NaN or Inf", bad[0][0].item<int64_t>()));
}

}  // namespace

void for_each_pair_shard(const PairsManifest& manifest,
                         const std::function<void(const torch::Tensor&, const torch::Tensor&, int64_t)>& visit) {
  for (const auto& shard : manifest.shards) {
    MappedNpy features(manifest.folder / shard.features);
    MappedNpy latents(manifest.folder / shard.latents);
    const auto& r = features.tensor();
    const auto& w = latents.tensor();
    if (r.dim() != 2 || r.size(0) != shard.rows || r.size(1) != manifest.feature_dim ||
        r.scalar_type() != torch::kFloat32)
      throw Error(manifest.folder / shard.features, fmt::format("expected float32 [{}, {}] as listed in manifest.json",
                                                                shard.rows, manifest.feature_dim));
    if (w.dim() != 2 || w.size(0) != shard.rows || w.size(1) != manifest.latent_dim ||
        w.scalar_type() != torch::kFloat32)
      throw Error(manifest.folder / shard.latents,
                  fmt::format("expected float32 [{}, {}] as listed in manifest.json", shard.rows, manifest.latent_dim));
    require_finite_rows(r, manifest.folder / shard.features);
    require_finite_rows(w, manifest.folder / shard.latents);
    visit(r, w, shard.first_row);
  }
}

void for_each_labelled_pair_shard(
    const PairsManifest& manifest,
    const std::function<void(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&, int64_t)>& visit) {
  std::map<int64_t, const PairShard*> shard_at;
  for (const auto& shard : manifest.shards) shard_at[shard.first_row] = &shard;
  for_each_pair_shard(manifest, [&](const torch::Tensor& r, const torch::Tensor& w, int64_t first_row) {
    const PairShard& shard = *shard_at.at(first_row);
    MappedNpy labels_file(manifest.folder / shard.labels);
    const auto& labels = labels_file.tensor();
    if (labels.dim() != 1 || labels.size(0) != shard.rows || labels.scalar_type() != torch::kInt64)
      throw Error(manifest.folder / shard.labels, fmt::format("expected int64 [{}] as listed in manifest.json", shard.rows));
    visit(r, w, labels, first_row);
  });
}

LinkingFit fit_from_pairs(const PairsManifest& manifest, const FitOptions& options, double holdout_fraction,
                          bool recompute_statistics) {
  if (!manifest.complete)
    throw Error(manifest.file(), "the pairs are incomplete: run `linkstyle pairs` to finish them first");
  if (manifest.total_rows == 0) throw Error(manifest.file(), "holds no pairs");
  LinkingFit fit;
  auto started = std::chrono::steady_clock::now();
  LinkingStatistics statistics(manifest.feature_dim, manifest.latent_dim);
  auto split_rows = [&](int64_t first_row, int64_t rows, bool held_out) {
    std::vector<int64_t> selected;
    for (int64_t i = 0; i < rows; ++i)
      if (is_held_out(first_row + i, holdout_fraction) == held_out) selected.push_back(i);
    return torch::tensor(selected, torch::kInt64);
  };
  if (!recompute_statistics && !manifest.statistics.empty() &&
      manifest.statistics_holdout_fraction == holdout_fraction) {
    statistics = LinkingStatistics::load(manifest.folder / manifest.statistics);
    fit.statistics_reused = true;
  } else {
    for_each_pair_shard(manifest, [&](const torch::Tensor& r, const torch::Tensor& w, int64_t first_row) {
      auto rows = split_rows(first_row, r.size(0), false);
      if (rows.numel() == r.size(0))  // no held-out rows here: use the mapped data without a copy
        statistics.add(r.to(options.device), w.to(options.device), manifest.folder.string());
      else
        statistics.add(r.index_select(0, rows).to(options.device), w.index_select(0, rows).to(options.device),
                       manifest.folder.string());
    });
  }
  fit.seconds_statistics = seconds_since(started);

  started = std::chrono::steady_clock::now();
  fit.network = solve_linking_network(statistics, options, &fit.report);
  fit.seconds_solve = seconds_since(started);

  started = std::chrono::steady_clock::now();
  LinkingMetrics metrics;
  if (holdout_fraction > 0.0) {
    for_each_pair_shard(manifest, [&](const torch::Tensor& r, const torch::Tensor& w, int64_t first_row) {
      auto rows = split_rows(first_row, r.size(0), true);
      metrics.add(fit.network.apply(r.index_select(0, rows).to(options.device)), w.index_select(0, rows));
    });
  }
  fit.held_out = metrics.summary();
  fit.seconds_metrics = seconds_since(started);

  fit.network.metadata["models"] = manifest.models;
  fit.network.metadata["feature_dim"] = manifest.feature_dim;
  fit.network.metadata["latent_dim"] = manifest.latent_dim;
  fit.network.metadata["holdout_fraction"] = holdout_fraction;
  auto held_out = fit.held_out;
  held_out.erase("r2_per_dim");  // kept in fit.json; the header stays small
  fit.network.metadata["held_out"] = held_out;
  return fit;
}

}  // namespace linkstyle
