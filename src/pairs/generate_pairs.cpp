// The pairs' generation: batches drawn (on any rank), filtered and kept until each class has its
// samples, shard by shard (pairs.hpp).
#include "linkstyle/pairs.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>

#include <fmt/format.h>
#include <torch/torch.h>

#include "linkstyle/distributed.hpp"
#include "linkstyle/errors.hpp"
#include "linkstyle/generation.hpp"
#include "linkstyle/progress.hpp"
#include "linkstyle/runtime.hpp"
#include "linkstyle/study_lock.hpp"
#include "pairs/pairs_folder.hpp"
#include "splitmix.hpp"

namespace linkstyle {

namespace fs = std::filesystem;

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

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

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

// Batches drawn ahead of their turn, by (class position, batch index). A batch depends only on
// its class and index, so drawing it early changes nothing; rank 0 keeps them in order.
struct BatchesAhead {
  BatchesAhead(const PairsManifest& state, const PairsSettings& p, int64_t max_draws, DistributedJob* job,
               const DistributedJob::Compute& draw)
      : state(state), p(p), max_draws(max_draws), job(job), draw(draw) {}

  const PairsManifest& state;
  const PairsSettings& p;
  const int64_t max_draws;
  DistributedJob* const job;
  const DistributedJob::Compute& draw;
  const size_t ranks = job ? size_t(job->size()) : 1;
  std::map<std::pair<size_t, int64_t>, Message> ahead;

  // The next batch of the class at position `current`, drawn in a round when it is not drawn yet.
  Message take(size_t current) {
    const ClassProgress& c = state.classes[current];
    if (!ahead.count({current, c.batches_drawn})) draw_round(current);
    auto batch = ahead.extract({current, c.batches_drawn});
    return std::move(batch.mapped());
  }

  // The class's batches drawn beyond its end are dropped.
  void drop_class(size_t current) { ahead.erase(ahead.lower_bound({current, 0}), ahead.lower_bound({current + 1, 0})); }

  // The batches class c is still expected to need at its acceptance rate so far (at least 1).
  int64_t expected_batches(const ClassProgress& c) const {
    const double rate = c.drawn > 0 ? std::max(c.acceptance_rate(), 1.0 / double(c.drawn)) : 1.0;
    const double draws = std::min(double(p.samples_per_class - c.accepted) / rate, double(max_draws - c.drawn));
    return std::max<int64_t>(1, int64_t(std::ceil(draws / double(p.batch_size))));
  }

  // A round: from the current class on, each class's next batches up to what it is expected to
  // need, then further batches of the current class; one batch per rank.
  void draw_round(size_t current) {
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
    auto drawn = job ? job->run_round(std::move(items), draw) : std::vector<Message>{draw(items[0])};
    for (size_t i = 0; i < drawn.size(); ++i) ahead.emplace(keys[i], std::move(drawn[i]));
  }
};

// The error of a class that ended with no pair kept: what the classifier predicted instead.
SettingError filter_kept_none(const StudyConfig& study, const ClassProgress& c, const Classifier& classifier,
                              const fs::path& folder) {
  const auto& p = study.pairs;
  return SettingError("pairs.filter",
                      fmt::format("\"{}\" kept none of the {} samples drawn for class {} ({}); the classifier "
                                  "predicted {} instead. Choose a looser filter (\"top-k 5\", "
                                  "\"min-probability 0.05\", \"none\") or check pairs.classifier_classes, and "
                                  "remove {}",
                                  p.filter, c.drawn, c.classifier_class, classifier.class_name(c.classifier_class),
                                  describe_rejections(c, classifier), folder.string()),
                      study.config_file());
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
  BatchesAhead batches(state, p, max_draws, options.job, draw);
  for (size_t current = 0; current < state.classes.size(); ++current) {
    auto& c = state.classes[current];
    while (!c.done) {
      progress.set_label(fmt::format("pairs: class {} ({}/{} draws, filter {})", c.generator_class, c.drawn,
                                     max_draws, p.filter));
      Message batch = batches.take(current);
      const auto recording = std::chrono::steady_clock::now();
      accepted_total += keep_batch(c, p, filter, classifier, generator, batch, buffer);
      c.done = c.accepted >= p.samples_per_class || c.drawn >= max_draws;
      if (c.done && c.accepted == 0) throw filter_kept_none(study, c, classifier, state.folder);
      progress.set(accepted_total);
      if (buffer.rows >= p.shard_size) commit();
      if (options.job) options.job->add_seconds_recording(seconds_since(recording));
    }
    batches.drop_class(current);
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

}  // namespace linkstyle
