// The pairs folder as a run works on it: its manifest started or resumed, shards committed, and
// a complete folder's shards checked against its manifest (pairs/pairs_folder.hpp).
#include "pairs/pairs_folder.hpp"

#include <string>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include "linkstyle/atomic_file.hpp"
#include "linkstyle/errors.hpp"
#include "linkstyle/generation.hpp"
#include "linkstyle/tensor_io.hpp"

namespace linkstyle {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string shard_name(const char* prefix, int64_t index, const char* extension) {
  return fmt::format("{}-{:05}.{}", prefix, index, extension);
}

json model_identity(const fs::path& file) {
  return {{"file", fs::absolute(file).lexically_normal().string()}, {"fingerprint", file_fingerprint(file)}};
}

// The settings that determine the data: resuming with any of them changed would mix two data sets.
json settings_json(const PairsSettings& p, const std::vector<ClassProgress>& classes) {
  std::vector<int64_t> generator_classes, classifier_classes;
  for (const auto& c : classes) {
    generator_classes.push_back(c.generator_class);
    classifier_classes.push_back(c.classifier_class);
  }
  json settings = {{"seed", p.seed},
          {"psi", p.psi},
          {"batch_size", p.batch_size},
          {"shard_size", p.shard_size},
          {"samples_per_class", p.samples_per_class},
          {"max_draws_per_class", p.max_draws_per_class},
          {"classes", generator_classes},
          {"classifier_classes", classifier_classes}};
  // The default filter is left out, so that pairs made before the setting existed still resume.
  if (p.filter != PairsSettings{}.filter) settings["filter"] = p.filter;
  return settings;
}

std::vector<ClassProgress> plan_classes(const StudyConfig& study, const Classifier& classifier,
                                        const Generator& generator) {
  std::vector<ClassProgress> plan;
  for (const StudyClass& study_class : study_classes(study, classifier, generator)) {
    ClassProgress progress;
    progress.generator_class = study_class.generator_class;
    progress.classifier_class = study_class.classifier_class;
    progress.name = study_class.name;
    plan.push_back(progress);
  }
  return plan;
}

}  // namespace

PairsManifest start_or_resume_pairs(const StudyConfig& study, const Classifier& classifier,
                                    const Generator& generator) {
  const auto& p = study.pairs;
  const fs::path folder = study.pairs_folder();
  ensure_writable_directory(folder);
  // Temporary files of a killed run are never part of the data.
  for (const auto& entry : fs::directory_iterator(folder))
    if (entry.path().filename().string().find(".tmp-") != std::string::npos) fs::remove(entry.path());

  PairsManifest fresh;
  fresh.folder = folder;
  fresh.classes = plan_classes(study, classifier, generator);
  fresh.models = {{"classifier", model_identity(classifier.file())}, {"generator", model_identity(generator.file())}};
  fresh.settings = settings_json(p, fresh.classes);
  fresh.feature_dim = classifier.feature_dim();
  fresh.latent_dim = generator.w_dim();
  fresh.statistics_holdout_fraction = p.holdout_fraction;

  PairsManifest state = fresh;
  if (fs::exists(folder / "manifest.json")) {
    state = PairsManifest::load(folder);
    if (state.settings != fresh.settings || state.statistics_holdout_fraction != p.holdout_fraction)
      throw Error(state.file(), "was made with other settings than study.toml; remove " + folder.string() +
                                    " to start again, or restore the settings");
    for (const char* role : {"classifier", "generator"})
      if (state.models[role]["fingerprint"] != fresh.models[role]["fingerprint"])
        throw Error(state.file(), fmt::format("was made with another {} ({}); remove {} to start again", role,
                                              state.models[role]["file"].get<std::string>(), folder.string()));
  }
  // A run killed between committing a shard and removing the previous statistics leaves them.
  for (const auto& entry : fs::directory_iterator(folder)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("stats-", 0) == 0 && name != state.statistics) fs::remove(entry.path());
  }
  return state;
}

void commit_shard(PairsManifest& state, ShardBuffer& buffer, LinkingStatistics& statistics, double holdout_fraction) {
  const fs::path& folder = state.folder;
  const int64_t index = static_cast<int64_t>(state.shards.size());
  PairShard shard{shard_name("r", index, "npy"),
                  shard_name("w", index, "npy"),
                  shard_name("class", index, "npy"),
                  shard_name("latent", index, "npy"),
                  buffer.rows,
                  state.total_rows};
  auto features = torch::cat(buffer.features), latents = torch::cat(buffer.latents);
  write_npy(folder / shard.features, features);
  write_npy(folder / shard.latents, latents);
  write_npy(folder / shard.labels, torch::cat(buffer.labels));
  write_npy(folder / shard.latent_ids, torch::cat(buffer.latent_ids));
  std::vector<int64_t> training_rows;
  for (int64_t i = 0; i < shard.rows; ++i)
    if (!is_held_out(shard.first_row + i, holdout_fraction)) training_rows.push_back(i);
  auto rows = torch::tensor(training_rows, torch::kInt64);
  statistics.add(features.index_select(0, rows), latents.index_select(0, rows), folder / shard.features);
  const std::string previous_statistics = state.statistics;
  state.statistics = shard_name("stats", index, "safetensors");
  statistics.save(folder / state.statistics);
  state.shards.push_back(shard);
  state.total_rows += shard.rows;
  state.save();  // the commit point
  if (!previous_statistics.empty() && previous_statistics != state.statistics) fs::remove(folder / previous_statistics);
  buffer.clear();
}

void verify_pair_shards(const PairsManifest& manifest) {
  const auto expect = [&](const std::string& name, c10::ScalarType dtype, const std::vector<int64_t>& shape) {
    const fs::path file = manifest.folder / name;
    const NpyHeader header = read_npy_header(file);
    if (header.dtype != dtype || header.shape != shape)
      throw Error(file, fmt::format("has shape {} ({}), but manifest.json lists {} ({})", fmt::join(header.shape, "x"),
                                    c10::toString(header.dtype), fmt::join(shape, "x"), c10::toString(dtype)));
  };
  int64_t rows = 0;
  for (const auto& shard : manifest.shards) {
    if (shard.first_row != rows)
      throw Error(manifest.file(), fmt::format("shard {} starts at row {}, expected {}", shard.features,
                                               shard.first_row, rows));
    expect(shard.features, torch::kFloat32, {shard.rows, manifest.feature_dim});
    expect(shard.latents, torch::kFloat32, {shard.rows, manifest.latent_dim});
    expect(shard.labels, torch::kInt64, {shard.rows});
    expect(shard.latent_ids, torch::kInt64, {shard.rows});
    rows += shard.rows;
  }
  if (rows != manifest.total_rows)
    throw Error(manifest.file(), fmt::format("its shards hold {} rows, but it lists {}", rows, manifest.total_rows));
  if (!manifest.statistics.empty() && !fs::is_regular_file(manifest.folder / manifest.statistics))
    throw Error(manifest.folder / manifest.statistics, "file not found (listed in manifest.json)");
}

}  // namespace linkstyle
