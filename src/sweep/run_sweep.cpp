#include "linkstyle/sweep.hpp"

#include <chrono>
#include <future>
#include <optional>
#include <set>

#include <fmt/format.h>
#include <torch/torch.h>

#include "linkstyle/atomic_file.hpp"
#include "linkstyle/distributed.hpp"
#include "linkstyle/errors.hpp"
#include "linkstyle/progress.hpp"
#include "linkstyle/results_database.hpp"
#include "linkstyle/runtime.hpp"
#include "linkstyle/study_lock.hpp"
#include "linkstyle/tuning_set.hpp"
#include "sweep/background_thread.hpp"
#include "sweep/null_directions.hpp"
#include "sweep/row_messages.hpp"
#include "sweep/run_identity.hpp"
#include "sweep/strips.hpp"
#include "sweep/unit_statistics.hpp"
#include "sweep/unit_verdicts.hpp"

namespace linkstyle {

namespace fs = std::filesystem;
using nlohmann::json;

json SweepSummary::to_json() const {
  json strip_list = json::array();
  for (const auto& s : strips) strip_list.push_back(s.string());
  return {{"database", database.string()},
          {"part_source", part_source},
          {"units", units},
          {"units_resumed", units_resumed},
          {"expressible", expressible},
          {"labelled", labelled},
          {"images", images},
          {"seconds", seconds},
          {"images_per_second", images_per_second},
          {"batch_size", batch_size},
          {"batch_memory_per_image", batch_memory_per_image},
          {"strips", strip_list},
          {"warnings", warnings}};
}

namespace {

// sweep.units (empty: all D units), checked with the strip units against the classifier.
std::vector<int64_t> units_to_sweep(const StudyConfig& study, const SweepRunOptions& options, int64_t D) {
  std::vector<int64_t> units = study.sweep.units;
  if (units.empty())
    for (int64_t u = 0; u < D; ++u) units.push_back(u);
  for (int64_t u : units)
    if (u >= D)
      throw SettingError("sweep.units", fmt::format("unit {} is out of range [0, {})", u, D), study.config_file());
  for (int64_t u : options.strip_units)
    if (u < 0 || u >= D) throw SettingError("run.strip_units", fmt::format("unit {} is out of range [0, {})", u, D));
  return units;
}

// Refuses settings whose buffers cannot fit in memory, before anything is allocated or written:
// the tuning set, one chunk's latents and measures, and one batch through the models.
void require_sweep_memory(const StudyConfig& study, const Classifier& classifier, const Generator& generator) {
  const auto& s = study.sweep;
  const double classes = double(study.pairs.classes.empty() ? generator.num_classes() : study.pairs.classes.size());
  const double samples = classes * double(s.samples_per_class);
  const double side = double(generator.resolution());
  const double vector_bytes = 4.0 * double(generator.w_dim() + classifier.feature_dim() + classifier.num_classes());
  const fs::path file = study.config_file();
  // The tuning samples' latents, features and logits (their images are rendered a batch at a time).
  require_memory("sweep.samples_per_class", samples * vector_bytes,
                 fmt::format("{:.0f} tuning samples", samples), file);
  // Per swept image: its latent, features, logits and part measures, its pixels and part labels.
  const double chunk_images = double(s.units_per_chunk) * samples * double(s.steps);
  require_memory("sweep.steps", chunk_images * (vector_bytes + 512.0 + 7.0 * side * side),
                 fmt::format("a chunk of {} units x {:.0f} tuning samples x {} steps", s.units_per_chunk, samples,
                             s.steps),
                 file);
  require_memory("sweep.batch_size", batch_memory_bytes(double(s.batch_size), generator.resolution()),
                 fmt::format("a batch of {} images of {}x{}", s.batch_size, generator.resolution(),
                             generator.resolution()),
                 file);
}

// A database of another run that committed nothing (it failed before its first chunk) holds no
// results: it goes, so that the corrected run can start.
void remove_if_empty_run_of_other_settings(const fs::path& file, const std::string& identity) {
  if (!fs::exists(file)) return;
  {
    ResultsDatabase results(file, ResultsDatabase::Mode::create_or_open);
    const auto stored = results.run_identity();
    if (!stored || *stored == identity || !results.swept_units().empty() || !results.swept_null_directions().empty() ||
        results.has_counterfactuals())
      return;
  }
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(file.string() + suffix);
}

// A new database starts the run; an existing one must be of the same run.
void start_or_resume(ResultsDatabase& results, const std::string& identity, const PartSource& parts,
                     const TuningSet& tuning) {
  const auto stored = results.run_identity();
  if (stored && *stored != identity)
    throw Error(results.file(),
                "was made with other sweep settings, models, linking network or tuning features "
                "(another thread count or device changes them); remove it to start again");
  if (!stored) results.start_run(identity, parts.part_names(), tuning.generator_classes, tuning.classifier_classes);
}

// Units that never vary over the tuning samples (all of them, with one sample) have no range to
// sweep and are never tested: say so rather than leave their statistics silently empty.
std::vector<std::string> degenerate_sweep_warnings(const TuningSet& tuning, const std::vector<int64_t>& units) {
  const auto index = torch::tensor(units, torch::kLong);
  const auto constant = (tuning.range_max.index_select(0, index) <= tuning.range_min.index_select(0, index));
  const int64_t count = constant.sum().item<int64_t>();
  if (count == 0) return {};
  return {fmt::format("{} of {} units never vary over {} tuning sample{}: they have no range to sweep and stay "
                      "untested (raise sweep.samples_per_class)",
                      count, units.size(), tuning.size(), tuning.size() == 1 ? "" : "s")};
}

// A chunk of null directions or of units; null directions come first.
struct Chunk {
  bool null;
  std::vector<int64_t> ids;
};

// Images a chunk renders: both ends of each null direction, every step of each unit's sweep.
int64_t images_of(const Chunk& chunk, int64_t samples, int64_t steps) {
  return int64_t(chunk.ids.size()) * samples * (chunk.null ? 2 : steps);
}

// The chunks not yet committed (a chunk commits whole, so its first id tells).
std::vector<Chunk> chunks_to_do(int64_t directions, const std::vector<int64_t>& units, int64_t chunk,
                                const std::set<int64_t>& done_directions, const std::set<int64_t>& done_units) {
  std::vector<Chunk> chunks;
  for (int64_t begin = 0; begin < directions; begin += chunk) {
    std::vector<int64_t> group;
    for (int64_t d = begin; d < std::min(directions, begin + chunk); ++d) group.push_back(d);
    if (!done_directions.count(group.front())) chunks.push_back({true, group});
  }
  const int64_t U = int64_t(units.size());
  for (int64_t begin = 0; begin < U; begin += chunk) {
    std::vector<int64_t> group(units.begin() + begin, units.begin() + std::min(U, begin + chunk));
    if (!done_units.count(group.front())) chunks.push_back({false, group});
  }
  return chunks;
}

// Measures the chunks as one pipeline and records each in one transaction, in order; with
// overlap, chunk k is recorded on another thread while chunk k + 1 is measured.
struct ChunkRunner {
  const StudyConfig& study;
  const SweepModels& models;
  const TuningSet& tuning;
  const NormBins& bins;
  ResultsDatabase* results = nullptr;  // rank 0's only
  int64_t batch_size = 1;
  bool overlap = false;

  int64_t record(const Chunk& chunk, const MeasuredImages& measured) const {
    const int64_t num_parts = int64_t(models.parts.part_names().size());
    if (chunk.null)
      results->write_null_chunk(null_chunk_rows(null_chunk(chunk), measured, tuning.size(), num_parts));
    else
      results->write_unit_chunk(unit_chunk_rows(tuning, chunk.ids, study.sweep.steps, measured, num_parts));
    return images_of(chunk, tuning.size(), study.sweep.steps);
  }

  NullChunk null_chunk(const Chunk& chunk) const {
    return {chunk.ids, bins, study.sweep.null_directions, study.sweep.seed};
  }

  torch::Tensor latents_of(const Chunk& c) const {
    return c.null ? null_sweep_latents(models.network, tuning, null_chunk(c))
                  : unit_sweep_latents(models.network, tuning, c.ids, study.sweep.steps);
  }

  // Measures one chunk on any rank of a job and returns its rows (row_messages.hpp).
  Message measure_chunk(Message& item) const {
    Chunk chunk;
    chunk.null = item.take_int() != 0;
    chunk.ids = item.take_ints();
    const int64_t batch = item.take_int();
    const int64_t num_parts = int64_t(models.parts.part_names().size());
    const auto measured = measure_latents(models, latents_of(chunk), batch, true, overlap);
    Message rows;
    if (chunk.null)
      put_null_rows(rows, null_chunk_rows(null_chunk(chunk), measured, tuning.size(), num_parts));
    else
      put_unit_rows(rows, unit_chunk_rows(tuning, chunk.ids, study.sweep.steps, measured, num_parts));
    return rows;
  }

  // The chunks over the ranks of a job, a chunk per rank at a time, recorded in order by rank 0.
  void run_over(DistributedJob& job, const std::vector<Chunk>& chunks,
                const std::function<void(int64_t images)>& after_chunk) const {
    const auto item = [&](int64_t k) {
      const auto& c = chunks[size_t(k)];
      Message message;
      message.put(int64_t(c.null)).put(c.ids).put(batch_size);
      return message;
    };
    const auto record_rows = [&](int64_t k, Message& rows) {
      const auto& c = chunks[size_t(k)];
      if (c.null) {
        results->write_null_chunk(take_null_rows(rows));
      } else {
        std::vector<std::vector<PartMeasures>> parts;
        results->write_unit_chunk(take_unit_rows(rows, parts));
      }
      after_chunk(images_of(c, tuning.size(), study.sweep.steps));
    };
    run_items_in_order(&job, int64_t(chunks.size()), item, [&](Message& m) { return measure_chunk(m); },
                       record_rows);
  }

  void run(const std::vector<Chunk>& chunks, const std::function<void(int64_t images)>& after_chunk) const {
    const auto latents_of = [&](int64_t k) { return this->latents_of(chunks[size_t(k)]); };
    std::future<int64_t> recording;
    const auto on_measured = [&](int64_t k, MeasuredImages&& measured) {
      const auto& c = chunks[size_t(k)];
      if (recording.valid()) after_chunk(recording.get());
      if (overlap)
        recording = on_another_thread([this, &c, measured = std::move(measured)] { return record(c, measured); });
      else
        after_chunk(record(c, measured));
    };
    measure_latent_groups(models, int64_t(chunks.size()), latents_of, on_measured, batch_size, true, overlap);
    if (recording.valid()) after_chunk(recording.get());
  }
};

// sweep.batch_size images per call at most; fewer where such a batch would take more memory
// than the budget, as measured on tuning latents.
struct BatchChoice {
  BatchMemory memory;
  double budget = 0;
  int64_t size = 0;
};

BatchChoice choose_batch_size(const SweepModels& models, const TuningSet& tuning, int64_t largest) {
  BatchChoice choice;
  choice.memory = measure_batch_memory([&](int64_t n) {
    measure_latents(models, tuning.latents.index_select(0, torch::arange(n) % tuning.size()), n, false, false);
  });
  choice.budget = memory_budget_bytes();
  choice.size = choice.memory.largest_batch(choice.budget, largest);
  return choice;
}

// The summary's figures known before the first chunk: warnings, batch size, database, units resumed.
SweepSummary start_summary(const TuningSet& tuning, const std::vector<int64_t>& units, const BatchChoice& batch,
                           int64_t configured_batch_size, const ResultsDatabase& results, const PartSource& part_source,
                           const std::set<int64_t>& done_units) {
  SweepSummary summary;
  summary.warnings = degenerate_sweep_warnings(tuning, units);
  summary.batch_size = batch.size;
  summary.batch_memory_per_image = batch.memory.per_image_bytes;
  if (batch.size < configured_batch_size)
    summary.warnings.push_back(fmt::format("batches of {} images instead of sweep.batch_size = {}: one image takes "
                                           "about {}, and the memory budget is {} (--memory-budget)",
                                           batch.size, configured_batch_size, memory_text(batch.memory.per_image_bytes),
                                           memory_text(batch.budget)));
  summary.database = results.file();
  summary.part_source = part_source.kind();
  summary.units = int64_t(units.size());
  for (int64_t u : units) summary.units_resumed += done_units.count(u);
  return summary;
}

// Rank 0's last work: every unit's verdicts, the strips, and the run marked complete.
void finish_sweep(const StudyConfig& study, const SweepModels& models, const TuningSet& tuning, const NormBins& bins,
                  const std::vector<int64_t>& units, const std::vector<int64_t>& strip_units, ResultsDatabase& results,
                  SweepSummary& summary) {
  const auto counts = write_unit_verdicts(results, study.sweep, units, bins,
                                          int64_t(models.parts.part_names().size()), models.generator.resolution());
  summary.expressible = counts.expressible;
  summary.labelled = counts.labelled;
  summary.strips = write_sweep_strips(study, models.generator, models.network, tuning, results, strip_units);
  results.mark_complete(models.parts.kind());
}

}  // namespace

SweepSummary run_sweep(const StudyConfig& study, const Classifier& classifier, const Generator& generator,
                       const LinkingNetwork& network, const SweepRunOptions& options) {
  const auto start_time = std::chrono::steady_clock::now();
  const auto& s = study.sweep;
  require_sweep_memory(study, classifier, generator);
  DistributedJob* job = options.job;
  std::optional<StudyLock> lock;
  if (!job || job->is_coordinator()) lock.emplace(study.folder, "sweeps");
  const TuningSet tuning = make_tuning_set(study, classifier, generator, network);
  const auto units = units_to_sweep(study, options, tuning.features.size(1));
  const auto part_source = make_part_source(study, generator, tuning.latents, classifier.device());
  const SweepModels models{classifier, generator, network, *part_source};
  // Units that never vary over the tuning samples have nothing to sweep: they stay out of the
  // norm bins (their bin is -1) and are never tested.
  const NormBins bins = sweep_norm_bins(tuning, network, units, s.null_bins);
  const bool overlap =
      options.overlap == Overlap::always || (options.overlap == Overlap::automatic && generator.device().is_cuda());
  if (job && !job->is_coordinator()) {
    // A worker measures the chunks rank 0 hands it, in the batches rank 0 chose.
    const ChunkRunner runner{study, models, tuning, bins, nullptr, 1, overlap};
    job->serve([&](Message& item) { return runner.measure_chunk(item); });
    return {};
  }
  // sweep.batch_size images per call at most; fewer where such a batch would take more memory
  // than the budget, as measured on tuning latents. The batch size changes results only by
  // floating-point rounding, so it is not part of the run's identity.
  const BatchChoice batch = choose_batch_size(models, tuning, s.batch_size);
  const int64_t batch_size = batch.size;

  ensure_writable_directory(study.sweeps_folder());
  const std::string identity = sweep_run_identity(study, network, units, *part_source, tuning).dump();
  remove_if_empty_run_of_other_settings(study.results_database(), identity);
  ResultsDatabase results(study.results_database(), ResultsDatabase::Mode::create_or_open);
  start_or_resume(results, identity, *part_source, tuning);
  const int64_t directions = int64_t(bins.norm.size()) * s.null_directions;

  const auto done_units = results.swept_units();
  SweepSummary summary = start_summary(tuning, units, batch, s.batch_size, results, *part_source, done_units);
  const auto chunks = chunks_to_do(directions, units, s.units_per_chunk, results.swept_null_directions(), done_units);
  int64_t total_images = 0;
  for (const auto& chunk : chunks) total_images += images_of(chunk, tuning.size(), s.steps);
  ProgressBar bar("sweep", total_images);
  if (!options.progress) bar.set_total(0);
  const ChunkRunner runner{study, models, tuning, bins, &results, batch_size, overlap};
  const auto after_chunk = [&](int64_t images) {
    summary.images += images;
    if (options.progress) bar.set(summary.images);
    stop_if_requested(options.stop_requested, "sweep");
  };
  if (job) {
    runner.run_over(*job, chunks, after_chunk);
    job->finish();  // the verdicts and strips are rank 0's alone
  } else {
    runner.run(chunks, after_chunk);
  }
  bar.finish();
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
  summary.images_per_second = summary.seconds > 0 ? double(summary.images) / summary.seconds : 0.0;
  finish_sweep(study, models, tuning, bins, units, options.strip_units, results, summary);
  write_file_atomically(study.sweeps_folder() / "summary.json", summary.to_json().dump(2) + "\n");
  return summary;
}

}  // namespace linkstyle
