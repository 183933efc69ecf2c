#include "linkstyle/pairs.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include "linkstyle/atomic_file.hpp"
#include "linkstyle/distributed.hpp"
#include "linkstyle/errors.hpp"
#include "linkstyle/generation.hpp"
#include "linkstyle/progress.hpp"
#include "linkstyle/runtime.hpp"
#include "linkstyle/study_lock.hpp"
#include "linkstyle/tensor_io.hpp"
#include "splitmix.hpp"

namespace linkstyle {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string shard_name(const char* prefix, int64_t index, const char* extension) {
  return fmt::format("{}-{:05}.{}", prefix, index, extension);
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
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
  const auto& p = study.pairs;
  std::vector<int64_t> classes = p.classes;
  if (classes.empty())
    for (int64_t c = 0; c < generator.num_classes(); ++c) classes.push_back(c);
  std::vector<ClassProgress> plan;
  for (size_t i = 0; i < classes.size(); ++i) {
    ClassProgress progress;
    progress.generator_class = classes[i];
    progress.classifier_class = p.classifier_classes.empty() ? classes[i] : p.classifier_classes[i];
    if (progress.generator_class >= generator.num_classes())
      throw Error(study.config_file(), fmt::format("class {} is out of range: the generator has {} classes",
                                                   progress.generator_class, generator.num_classes()));
    if (progress.classifier_class >= classifier.num_classes())
      throw Error(study.config_file(), fmt::format("classifier class {} is out of range: the classifier has {} classes",
                                                   progress.classifier_class, classifier.num_classes()));
    progress.name = generator.class_name(progress.generator_class);
    plan.push_back(progress);
  }
  return plan;
}

// Accepted rows waiting to be written as one shard.
struct ShardBuffer {
  std::vector<torch::Tensor> latents, features, labels, latent_ids;
  int64_t rows = 0;
  void clear() { *this = ShardBuffer{}; }
};

// A count of the manifest: a whole number in [0, 2^63) (the JSON library would convert a
// fraction or a number beyond int64 with undefined behaviour).
int64_t count_at(const json& object, const char* key, const fs::path& file) {
  const json& value = object.at(key);
  if (!value.is_number_integer() || (value.is_number_unsigned() && value.get<uint64_t>() > uint64_t(INT64_MAX)) ||
      value.get<int64_t>() < 0)
    throw Error(file, fmt::format("corrupt manifest: '{}' must be a whole number >= 0", key));
  return value.get<int64_t>();
}

// A file name of the manifest: a plain name inside the pairs folder.
std::string file_name_at(const json& object, const char* key, const fs::path& file) {
  const std::string name = object.at(key).get<std::string>();
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
      name.find('\0') != std::string::npos)
    throw Error(file, fmt::format("corrupt manifest: '{}' must be a file name inside the pairs folder", key));
  return name;
}

// A class index written as a JSON key: decimal digits, below 2^40.
int64_t class_key(const std::string& key, const fs::path& file) {
  if (key.empty() || key.size() > 12 || key.find_first_not_of("0123456789") != std::string::npos)
    throw Error(file, fmt::format("corrupt manifest: '{}' is not a class index", key));
  return std::stoll(key);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
PairsManifest PairsManifest::load(const fs::path& pairs_folder) {
  PairsManifest m;
  m.folder = pairs_folder;
  const fs::path file = m.file();
  json j;
  try {
    j = json::parse(read_file(file));
    if (j.at("format") != "linkstyle-pairs-1") throw Error(file, "not a linkstyle pairs manifest");
    m.models = j.at("models");
    m.settings = j.at("settings");
    const auto count = [&](const json& object, const char* key) { return count_at(object, key, file); };
    const auto name = [&](const json& object, const char* key) { return file_name_at(object, key, file); };
    m.feature_dim = count(j, "feature_dim");
    m.latent_dim = count(j, "latent_dim");
    m.total_rows = count(j, "total_rows");
    m.statistics = j.at("statistics").get<std::string>();
    if (!m.statistics.empty()) m.statistics = name(j, "statistics");
    m.statistics_holdout_fraction = j.at("statistics_holdout_fraction");
    m.complete = j.at("complete");
    for (const auto& s : j.at("shards"))
      m.shards.push_back({name(s, "features"), name(s, "latents"), name(s, "labels"), name(s, "latent_ids"),
                          count(s, "rows"), count(s, "first_row")});
    for (const auto& c : j.at("classes")) {
      ClassProgress progress{count(c, "generator_class"), count(c, "classifier_class"), c.at("name"),
                             count(c, "batches_drawn"), count(c, "drawn"), count(c, "accepted"), c.at("done"), {}};
      if (c.contains("rejected_predicted_as"))
        for (const auto& [predicted, times] : c.at("rejected_predicted_as").items())
          progress.rejected_predicted_as[class_key(predicted, file)] =
              count(c.at("rejected_predicted_as"), predicted.c_str());
      m.classes.push_back(std::move(progress));
    }
  } catch (const json::exception& error) {
    throw Error(file, std::string("corrupt manifest: ") + error.what());
  }
  return m;
}

void PairsManifest::save() const {
  json shards_json = json::array(), classes_json = json::array();
  for (const auto& s : shards)
    shards_json.push_back({{"features", s.features},
                           {"latents", s.latents},
                           {"labels", s.labels},
                           {"latent_ids", s.latent_ids},
                           {"rows", s.rows},
                           {"first_row", s.first_row}});
  for (const auto& c : classes) {
    json rejected = json::object();
    for (const auto& [predicted, times] : c.rejected_predicted_as) rejected[std::to_string(predicted)] = times;
    classes_json.push_back({{"generator_class", c.generator_class},
                            {"classifier_class", c.classifier_class},
                            {"name", c.name},
                            {"batches_drawn", c.batches_drawn},
                            {"drawn", c.drawn},
                            {"accepted", c.accepted},
                            {"done", c.done},
                            {"acceptance_rate", c.acceptance_rate()},
                            {"rejected_predicted_as", rejected}});
  }
  json j = {{"format", "linkstyle-pairs-1"}, {"models", models},
            {"settings", settings},          {"feature_dim", feature_dim},
            {"latent_dim", latent_dim},      {"total_rows", total_rows},
            {"statistics", statistics},      {"statistics_holdout_fraction", statistics_holdout_fraction},
            {"complete", complete},          {"shards", shards_json},
            {"classes", classes_json}};
  write_file_atomically(file(), j.dump(2) + "\n");
}

// ---------------------------------------------------------------------------------------------
namespace {

// The manifest to continue: a fresh one, or the folder's own when it was made with the same
// settings and models. Leftovers of a killed run (temporary files, superseded statistics) go.
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

// Writes the buffer as the next shard, adds its training rows to the statistics and commits the
// manifest.
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

}  // namespace

torch::Tensor passes_filter(const PairsFilter& filter, const torch::Tensor& logits, int64_t target) {
  const auto n = logits.size(0);
  switch (filter.kind) {
    case PairsFilter::Kind::argmax:
      return logits.argmax(1) == target;
    case PairsFilter::Kind::top_k: {
      // Ranked among the top k: fewer than k classes score higher.
      const auto own = logits.select(1, target).unsqueeze(1);
      return (logits > own).sum(1) < filter.k;
    }
    case PairsFilter::Kind::min_probability:
      return logits.softmax(1).select(1, target) >= filter.probability;
    case PairsFilter::Kind::none:
      break;
  }
  return torch::ones({n}, torch::kBool);
}

namespace {

// One batch of a class, drawn on any rank: item (generator class, batch index) -> its latents w,
// features r and logits, float32 on the CPU.
Message draw_batch(const PairsSettings& p, const Classifier& classifier, const Generator& generator, Message& item) {
  const torch::NoGradGuard no_grad;
  const int64_t generator_class = item.take_int(), batch = item.take_int();
  const auto samples = generate_and_encode(generator, classifier, p.seed, generator_class, batch, p.batch_size, p.psi);
  const auto logits = classifier.head(samples.features);
  Message drawn;
  drawn.put(samples.latents.to(torch::kCPU, torch::kFloat32))
      .put(samples.features.to(torch::kCPU, torch::kFloat32))
      .put(logits.to(torch::kCPU, torch::kFloat32));
  return drawn;
}

// Keeps the samples of the class's next batch (drawn by draw_batch) that pass the filter (up to
// the class's target); returns how many were kept.
int64_t keep_batch(ClassProgress& c, const PairsSettings& p, const PairsFilter& filter, const Classifier& classifier,
                   const Generator& generator, Message& drawn, ShardBuffer& buffer) {
  const auto w = drawn.take_tensor(), r = drawn.take_tensor(), logits = drawn.take_tensor();
  if (!torch::isfinite(w).all().item<bool>())
    throw Error(generator.file(), fmt::format("mapping produced NaN/Inf for class {}", c.generator_class));
  if (!torch::isfinite(r).all().item<bool>())
    throw Error(classifier.file(),
                fmt::format("features contain NaN/Inf for generated images of class {}", c.generator_class));
  const auto passes = passes_filter(filter, logits, c.classifier_class);
  auto kept = passes.nonzero().squeeze(1);
  // Samples after the one that completes the class are not judged: they count neither way.
  int64_t judged = p.batch_size;
  const int64_t wanted = p.samples_per_class - c.accepted;
  if (kept.numel() >= wanted) {
    kept = kept.slice(0, 0, wanted);
    judged = kept[wanted - 1].item<int64_t>() + 1;
  }
  const auto predicted = logits.argmax(1);
  const auto rejected = predicted.slice(0, 0, judged).masked_select(~passes.slice(0, 0, judged));
  const auto* rejected_class = rejected.data_ptr<int64_t>();
  for (int64_t i = 0; i < rejected.numel(); ++i) c.rejected_predicted_as[rejected_class[i]] += 1;
  if (kept.numel() > 0) {
    buffer.latents.push_back(w.index_select(0, kept));
    buffer.features.push_back(r.index_select(0, kept));
    buffer.labels.push_back(torch::full({kept.numel()}, c.generator_class, torch::kInt64));
    buffer.latent_ids.push_back(kept + c.batches_drawn * p.batch_size);
    buffer.rows += kept.numel();
  }
  c.batches_drawn += 1;
  c.drawn += judged;
  c.accepted += kept.numel();
  return kept.numel();
}

// The batch size defines the data (latent ids and seeds go by batch), so it is never changed: a
// batch that would take more than the memory budget, measured on the models, is refused with the
// largest batch that fits.
void require_batch_within_budget(const StudyConfig& study, const Classifier& classifier, const Generator& generator,
                                 int64_t probe_class) {
  const auto& p = study.pairs;
  const torch::NoGradGuard no_grad;
  const BatchMemory memory = measure_batch_memory([&](int64_t images) {
    generate_and_encode(generator, classifier, splitmix64(p.seed ^ 0x70726f6265ULL), probe_class, 0, images, p.psi);
  });
  const double budget = memory_budget_bytes();
  if (memory.bytes(p.batch_size) <= budget) return;
  throw SettingError("pairs.batch_size",
                     fmt::format("a batch of {} takes about {} (measured: {} per image), more than the memory "
                                 "budget of {} (--memory-budget); use at most {}",
                                 p.batch_size, memory_text(memory.bytes(p.batch_size)),
                                 memory_text(memory.per_image_bytes), memory_text(budget),
                                 memory.largest_batch(budget, p.batch_size)),
                     study.config_file());
}

// A folder this run made goes again when the run ends without writing anything into it.
struct EmptyFolderRemover {
  fs::path folder;
  bool made_here;
  ~EmptyFolderRemover() {
    std::error_code ignored;
    if (made_here && fs::is_empty(folder, ignored)) fs::remove(folder, ignored);
  }
};

// A complete study's shards must still be what its manifest lists: every file there, of the
// listed dtype and shape (the headers and sizes are read, not the data), and the rows adding up.
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

}  // namespace

PairsManifest generate_pairs(const StudyConfig& study, const Classifier& classifier, const Generator& generator,
                             const PairsRunOptions& options) {
  const auto& p = study.pairs;
  const DistributedJob::Compute draw = [&](Message& item) { return draw_batch(p, classifier, generator, item); };
  if (options.job && !options.job->is_coordinator()) {
    options.job->serve(draw);
    return {};
  }
  const StudyLock lock(study.folder, "pairs");
  require_memory("pairs.batch_size", batch_memory_bytes(double(p.batch_size), generator.resolution()),
                 fmt::format("a batch of {} images of {}x{}", p.batch_size, generator.resolution(),
                             generator.resolution()),
                 study.config_file());
  const EmptyFolderRemover remove_if_left_empty{study.pairs_folder(), !fs::exists(study.pairs_folder())};
  PairsManifest state = start_or_resume_pairs(study, classifier, generator);
  if (state.complete) {
    verify_pair_shards(state);
    return state;
  }
  require_batch_within_budget(study, classifier, generator, state.classes.front().generator_class);
  LinkingStatistics statistics(state.feature_dim, state.latent_dim);
  if (!state.statistics.empty()) statistics = LinkingStatistics::load(state.folder / state.statistics);

  const PairsFilter filter = PairsFilter::parse(p.filter);
  const int64_t max_draws = p.max_draws_per_class > 0 ? p.max_draws_per_class : 50 * p.samples_per_class;
  int64_t target_total = 0, accepted_total = 0;
  for (const auto& c : state.classes) target_total += p.samples_per_class, accepted_total += c.accepted;
  ProgressBar progress("pairs", target_total);
  progress.set(accepted_total);
  ShardBuffer buffer;
  const auto commit = [&] {
    commit_shard(state, buffer, statistics, p.holdout_fraction);
    stop_if_requested(options.stop_requested, "pairs");
  };
  torch::NoGradGuard no_grad;
  // Batches drawn ahead of their turn, by (class position, batch index). A batch depends only on
  // its class and index, so drawing it early changes nothing; rank 0 keeps them in order.
  std::map<std::pair<size_t, int64_t>, Message> ahead;
  const size_t ranks = options.job ? size_t(options.job->size()) : 1;
  // The batches class c is still expected to need at its acceptance rate so far (at least 1).
  const auto expected_batches = [&](const ClassProgress& c) {
    const double rate = c.drawn > 0 ? std::max(c.acceptance_rate(), 1.0 / double(c.drawn)) : 1.0;
    const double draws = std::min(double(p.samples_per_class - c.accepted) / rate, double(max_draws - c.drawn));
    return std::max<int64_t>(1, int64_t(std::ceil(draws / double(p.batch_size))));
  };
  // A round: from the current class on, each class's next batches up to what it is expected to
  // need, then further batches of the current class; one batch per rank.
  const auto draw_round = [&](size_t current) {
    std::vector<Message> items;
    std::vector<std::pair<size_t, int64_t>> keys;
    const auto plan = [&](size_t k, int64_t until) {
      int64_t next = state.classes[k].batches_drawn;
      for (; items.size() < ranks && next < until; ++next) {
        if (ahead.count({k, next})) continue;
        items.emplace_back().put(state.classes[k].generator_class).put(next);
        keys.emplace_back(k, next);
      }
    };
    for (size_t k = current; k < state.classes.size() && items.size() < ranks; ++k)
      if (!state.classes[k].done) plan(k, state.classes[k].batches_drawn + expected_batches(state.classes[k]));
    plan(current, std::numeric_limits<int64_t>::max());
    auto drawn = options.job ? options.job->run_round(std::move(items), draw) : std::vector<Message>{draw(items[0])};
    for (size_t i = 0; i < drawn.size(); ++i) ahead.emplace(keys[i], std::move(drawn[i]));
  };
  for (size_t current = 0; current < state.classes.size(); ++current) {
    auto& c = state.classes[current];
    while (!c.done) {
      progress.set_label(fmt::format("pairs: class {} ({}/{} draws, filter {})", c.generator_class, c.drawn,
                                     max_draws, p.filter));
      if (!ahead.count({current, c.batches_drawn})) draw_round(current);
      auto batch = ahead.extract({current, c.batches_drawn});
      const auto recording = std::chrono::steady_clock::now();
      accepted_total += keep_batch(c, p, filter, classifier, generator, batch.mapped(), buffer);
      c.done = c.accepted >= p.samples_per_class || c.drawn >= max_draws;
      if (c.done && c.accepted == 0)
        throw SettingError("pairs.filter",
                           fmt::format("\"{}\" kept none of the {} samples drawn for class {} ({}); the classifier "
                                       "predicted {} instead. Choose a looser filter (\"top-k 5\", "
                                       "\"min-probability 0.05\", \"none\") or check pairs.classifier_classes, and "
                                       "remove {}",
                                       p.filter, c.drawn, c.classifier_class, classifier.class_name(c.classifier_class),
                                       describe_rejections(c, classifier), state.folder.string()),
                           study.config_file());
      progress.set(accepted_total);
      if (buffer.rows >= p.shard_size) commit();
      if (options.job) options.job->add_seconds_recording(seconds_since(recording));
    }
    // The class's batches drawn beyond its end are dropped.
    ahead.erase(ahead.lower_bound({current, 0}), ahead.lower_bound({current + 1, 0}));
  }
  if (options.job) options.job->finish();
  if (buffer.rows > 0) commit();
  progress.finish();
  state.complete = true;
  state.save();
  return state;
}

std::string describe_rejections(const ClassProgress& c, const Classifier& classifier, size_t most) {
  std::vector<std::pair<int64_t, int64_t>> ranked;  // (times, class)
  for (const auto& [predicted, times] : c.rejected_predicted_as) ranked.emplace_back(times, predicted);
  std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  std::string text;
  for (size_t i = 0; i < ranked.size() && i < most; ++i)
    text += fmt::format("{}{} {} ({}x)", i ? ", " : "", ranked[i].second, classifier.class_name(ranked[i].second),
                        ranked[i].first);
  if (ranked.size() > most) text += fmt::format(" and {} other classes", ranked.size() - most);
  return text.empty() ? "nothing (no sample was rejected)" : text;
}

// ---------------------------------------------------------------------------------------------
namespace {

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
