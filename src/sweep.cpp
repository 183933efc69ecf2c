#include "linkstyle/sweep.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <future>
#include <map>
#include <optional>
#include <set>

#include <ATen/Parallel.h>
#include <c10/core/Event.h>
#include <c10/core/StreamGuard.h>
#include <c10/core/impl/VirtualGuardImpl.h>
#include <fmt/format.h>
#include <opencv2/core.hpp>
#include <torch/torch.h>

#include "linkstyle/atomic_file.hpp"
#include "linkstyle/errors.hpp"
#include "linkstyle/pairs.hpp"
#include "linkstyle/progress.hpp"
#include "linkstyle/reconstruct.hpp"
#include "linkstyle/results_database.hpp"
#include "linkstyle/selectivity.hpp"
#include "splitmix.hpp"

namespace linkstyle {

namespace fs = std::filesystem;
using nlohmann::json;

// ---------------------------------------------------------------------------------------------
// Tuning samples and sweep latents

TuningSet make_tuning_set(const StudyConfig& study, const Classifier& classifier, const Generator& generator,
                          const LinkingNetwork& network) {
  const torch::NoGradGuard no_grad;
  const auto& p = study.pairs;
  const auto& s = study.sweep;
  std::vector<int64_t> classes = p.classes;
  if (classes.empty())
    for (int64_t c = 0; c < generator.num_classes(); ++c) classes.push_back(c);
  std::vector<torch::Tensor> features, generator_classes, classifier_classes;
  for (size_t i = 0; i < classes.size(); ++i) {
    const int64_t c = classes[i];
    const int64_t k = p.classifier_classes.empty() ? c : p.classifier_classes[i];
    if (k >= classifier.num_classes())
      throw Error(study.config_file(), fmt::format("classifier class {} is out of range: the classifier has {} classes",
                                                   k, classifier.num_classes()));
    if (c >= generator.num_classes())
      throw Error(study.config_file(),
                  fmt::format("class {} is out of range: the generator has {} classes", c, generator.num_classes()));
    const auto z = draw_latents(s.seed, c, 0, s.samples_per_class, generator.z_dim()).to(generator.device());
    const auto labels =
        torch::full({s.samples_per_class}, c, torch::TensorOptions(torch::kLong).device(generator.device()));
    const auto w = generator.mapping(z, labels, p.psi);
    for (int64_t start = 0; start < s.samples_per_class; start += s.batch_size) {
      const auto images = generator.synthesis(w.slice(0, start, std::min(start + s.batch_size, s.samples_per_class)));
      features.push_back(classifier.features(generator_to_classifier_range(images).to(classifier.device()))
                             .to(torch::kCPU, torch::kFloat));
    }
    generator_classes.push_back(torch::full({s.samples_per_class}, c, torch::kLong));
    classifier_classes.push_back(torch::full({s.samples_per_class}, k, torch::kLong));
  }
  TuningSet tuning;
  tuning.features = torch::cat(features).contiguous();
  if (!torch::isfinite(tuning.features).all().item<bool>())
    throw Error(classifier.file(), "features() returned NaN or Inf for the tuning samples");
  if (tuning.features.size(1) != network.feature_dim())
    throw Error(study.linking_file(), fmt::format("maps {} features but the classifier has {}", network.feature_dim(),
                                                  tuning.features.size(1)));
  tuning.latents = network.apply(tuning.features).to(torch::kCPU, torch::kFloat).contiguous();
  tuning.generator_classes = torch::cat(generator_classes);
  tuning.classifier_classes = torch::cat(classifier_classes);
  tuning.range_min = std::get<0>(tuning.features.min(0)).contiguous();
  tuning.range_max = std::get<0>(tuning.features.max(0)).contiguous();
  return tuning;
}

namespace {

torch::Tensor sweep_values(const TuningSet& tuning, const std::vector<int64_t>& units, int64_t steps) {
  const auto index = torch::tensor(units, torch::kLong);
  const auto low = tuning.range_min.index_select(0, index).unsqueeze(1);
  const auto high = tuning.range_max.index_select(0, index).unsqueeze(1);
  const auto fraction = torch::linspace(0.0, 1.0, steps, torch::kFloat).unsqueeze(0);
  return low + (high - low) * fraction;  // [U, T]
}

}  // namespace

torch::Tensor unit_sweep_latents(const LinkingNetwork& network, const TuningSet& tuning,
                                 const std::vector<int64_t>& units, int64_t steps) {
  const torch::NoGradGuard no_grad;
  for (int64_t u : units)
    if (u < 0 || u >= tuning.features.size(1))
      throw Error("sweep", fmt::format("unit {} is out of range [0, {})", u, tuning.features.size(1)));
  const auto index = torch::tensor(units, torch::kLong);
  const auto values = sweep_values(tuning, units, steps);                                         // [U, T]
  const auto current = tuning.features.index_select(1, index).t();                                // [U, S]
  const auto columns = network.weight.to(torch::kCPU, torch::kFloat).index_select(1, index).t();  // [U, w_dim]
  const auto delta = values.unsqueeze(1) - current.unsqueeze(2);                                  // [U, S, T]
  const auto latents =
      tuning.latents.unsqueeze(0).unsqueeze(2) + delta.unsqueeze(3) * columns.unsqueeze(1).unsqueeze(2);
  return latents.reshape({-1, tuning.latents.size(1)}).contiguous();
}

// ---------------------------------------------------------------------------------------------
// Rendering and measuring

namespace {

// Runs `work` on a new thread with the process's intra-op thread count (for the overlap).
template <typename F>
auto on_another_thread(F work) {
  return std::async(std::launch::async, [work = std::move(work)]() mutable {
    at::init_num_threads();
    return work();
  });
}

// A view of one image's pixels (no copy).
cv::Mat wrap_pixels(int64_t side, int type, void* data) { return cv::Mat(int(side), int(side), type, data); }

// One batch's classifier outputs, part labels and 8-bit pixels; measure() fills result.parts.
struct EncodedBatch {
  torch::Tensor features, logits, pixels, labels;
  int64_t start = 0;

  void measure(MeasuredImages& result, int num_parts) const {
    const int64_t side = pixels.size(1);
    at::parallel_for(0, pixels.size(0), 4, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const cv::Mat rgb = wrap_pixels(side, CV_8UC3, pixels[i].data_ptr());
        const cv::Mat label = wrap_pixels(side, CV_32SC1, labels[i].data_ptr());
        result.parts[size_t(start + i)] = measure_parts(rgb, label, num_parts);
      }
    });
  }
};

// images [n, 3, side, side] in [0, 1] on any device; latents for sources that read them. All the
// device's work is queued before the first copy back, so that a GPU runs it without waiting.
EncodedBatch encode_batch(const Classifier& classifier, const PartSource& parts, const torch::Tensor& images,
                          const torch::Tensor& latents, int64_t start, const fs::path& source) {
  const auto r = classifier.features(images.to(classifier.device()));
  const auto logits = classifier.head(r);
  const auto labels = parts.label(images, latents);
  // Quantised where the images are (a GPU copies a quarter of the bytes back).
  const auto pixels = images.mul(255).round().clamp(0, 255).to(torch::kUInt8).permute({0, 2, 3, 1});
  EncodedBatch batch;
  batch.start = start;
  batch.features = r.to(torch::kCPU, torch::kFloat);
  batch.logits = logits.to(torch::kCPU, torch::kFloat);
  batch.labels = labels.contiguous().to(torch::kCPU, torch::kInt);
  batch.pixels = pixels.contiguous().to(torch::kCPU);
  const int64_t side = images.size(2);
  if (images.size(3) != side || batch.labels.size(1) != side || batch.labels.size(2) != side)
    throw Error(source, "images and part labels differ in size");
  return batch;
}

// A stream of `device` other than its current one, for the work that runs beside the generator's
// (none on a CPU, whose work has no streams).
std::optional<c10::Stream> side_stream(const c10::Device& device) {
  if (!device.is_cuda()) return std::nullopt;
  return c10::impl::VirtualGuardImpl(device.type()).getStreamFromGlobalPool(device);
}

// One group's results as its batches come in.
struct GroupInProgress {
  MeasuredImages result;
  std::vector<torch::Tensor> features, logits, images, labels;
  int64_t batches_left = 0;
};

}  // namespace

void measure_latent_groups(const SweepModels& models, int64_t groups,
                           const std::function<torch::Tensor(int64_t group)>& latents_of,
                           const std::function<void(int64_t group, MeasuredImages&& measured)>& on_measured,
                           int64_t batch_size, bool keep_images, bool overlap) {
  const torch::NoGradGuard no_grad;
  if (batch_size < 1) throw Error("measure latents", "the batch size must be >= 1");
  const int64_t side = models.generator.resolution();
  const int num_parts = int(models.parts.part_names().size());
  std::map<int64_t, GroupInProgress> in_progress;  // node-based: workers hold references into it
  const auto keep = [&](int64_t group, const EncodedBatch& batch) {
    auto& g = in_progress.at(group);
    g.features.push_back(batch.features);
    g.logits.push_back(batch.logits);
    if (keep_images) {
      g.images.push_back(batch.pixels);
      g.labels.push_back(batch.labels);
    }
    if (--g.batches_left > 0) return;
    g.result.features = torch::cat(g.features);
    g.result.logits = torch::cat(g.logits);
    if (keep_images) {
      g.result.images = torch::cat(g.images);
      g.result.labels = torch::cat(g.labels);
    }
    auto measured = std::move(g.result);
    in_progress.erase(group);
    on_measured(group, std::move(measured));
  };
  const auto encode_and_measure = [&models, num_parts](MeasuredImages& result, const torch::Tensor& images,
                                                       const torch::Tensor& w, int64_t start) {
    auto batch = encode_batch(models.classifier, models.parts, images, w, start, models.generator.file());
    batch.measure(result, num_parts);
    return batch;
  };
  // With overlap, batch k is encoded, segmented and measured on another thread (on a GPU, in a
  // stream of its own that waits for batch k's synthesis) while batch k + 1 is rendered, across
  // the groups' boundaries too. Declared after in_progress: an exception waits for the worker
  // before the results it writes to go away.
  std::future<EncodedBatch> encoding;
  int64_t encoding_group = -1;
  std::optional<c10::Stream> encode_stream;
  const c10::Device device = models.generator.device();
  for (int64_t group = 0; group < groups; ++group) {
    // One copy of the group's latents to the generator's device; to a GPU from pinned memory, so
    // that it does not wait for the batches already queued there.
    auto host_latents = latents_of(group).to(torch::kFloat);
    if (device.is_cuda() && host_latents.device().is_cpu()) host_latents = host_latents.pin_memory();
    const auto latents = host_latents.to(device, torch::kFloat, /*non_blocking=*/true);
    const int64_t n = latents.size(0);
    if (n < 1) throw Error("measure latents", fmt::format("group {} has no latents", group));
    auto& current = in_progress[group];
    current.result.parts.resize(size_t(n));
    current.batches_left = (n + batch_size - 1) / batch_size;
    for (int64_t start = 0; start < n; start += batch_size) {
      const auto w = latents.slice(0, start, std::min(n, start + batch_size));
      const auto generated = generator_to_classifier_range(models.generator.synthesis(w));
      if (generated.size(2) != side)
        throw Error(models.generator.file(), "synthesis returned images of another size than its resolution");
      if (encoding.valid()) keep(encoding_group, encoding.get());
      if (!overlap) {
        keep(group, encode_and_measure(current.result, generated, w, start));
        continue;
      }
      if (!encode_stream) encode_stream = side_stream(device);
      std::optional<c10::Event> rendered;
      if (encode_stream) {
        const c10::impl::VirtualGuardImpl guard(device.type());
        rendered.emplace(device.type());
        rendered->record(guard.getStream(device));
        // The images and latents were made on the generator's stream and are read on this one.
        guard.recordDataPtrOnStream(generated.storage().data_ptr(), *encode_stream);
        guard.recordDataPtrOnStream(w.storage().data_ptr(), *encode_stream);
      }
      encoding_group = group;
      encoding = on_another_thread([&encode_and_measure, &result = current.result, generated, w, start,
                                    stream = encode_stream, rendered = std::move(rendered)]() {
        std::optional<c10::StreamGuard> on_stream;
        if (stream) {
          on_stream.emplace(*stream);
          rendered->block(*stream);
        }
        return encode_and_measure(result, generated, w, start);
      });
    }
  }
  if (encoding.valid()) keep(encoding_group, encoding.get());
}

MeasuredImages measure_latents(const SweepModels& models, const torch::Tensor& latents, int64_t batch_size,
                               bool keep_images, bool overlap) {
  MeasuredImages result;
  measure_latent_groups(
      models, 1, [&](int64_t) { return latents; },
      [&](int64_t, MeasuredImages&& measured) { result = std::move(measured); }, batch_size, keep_images, overlap);
  return result;
}

MeasuredImages measure_images(const Classifier& classifier, const PartSource& parts, const torch::Tensor& images,
                              int64_t batch_size) {
  const torch::NoGradGuard no_grad;
  if (parts.needs_latents()) throw Error("measure images", "the " + parts.kind() + " parts need generator latents");
  if (images.dim() != 4 || images.size(1) != 3 || images.size(2) != images.size(3))
    throw Error("measure images", "expects images [N, 3, R, R]");
  const int64_t n = images.size(0);
  const int num_parts = int(parts.part_names().size());
  MeasuredImages result;
  result.parts.resize(size_t(n));
  std::vector<torch::Tensor> features, logits;
  for (int64_t start = 0; start < n; start += batch_size) {
    const auto batch = encode_batch(classifier, parts, images.slice(0, start, std::min(n, start + batch_size)),
                                    torch::Tensor(), start, classifier.file());
    features.push_back(batch.features);
    logits.push_back(batch.logits);
    batch.measure(result, num_parts);
  }
  result.features = torch::cat(features);
  result.logits = torch::cat(logits);
  return result;
}

const std::vector<std::string>& concept_measures() {
  static const std::vector<std::string> names = {"area",       "luminance",    "entropy", "hue",
                                                 "saturation", "eccentricity", "angle",   "centre_x",
                                                 "centre_y",   "flow_x",       "flow_y"};
  return names;
}

double wrap_degrees(double delta, double period) {
  delta = std::fmod(delta + period / 2, period);
  if (delta < 0) delta += period;
  return delta - period / 2;
}

double minimum_part_area(int64_t side) { return 20.0 * double(side * side) / (128.0 * 128.0); }

namespace {

enum Measure {
  kArea,
  kLuminance,
  kEntropy,
  kHue,
  kSaturation,
  kEccentricity,
  kAngle,
  kCentreX,
  kCentreY,
  kFlowX,
  kFlowY
};
constexpr int kMeasures = 11;

const PartMeasures* find_part(const std::vector<PartMeasures>& parts, int part) {
  for (const auto& p : parts)
    if (p.part == part) return &p;
  return nullptr;
}

}  // namespace

torch::Tensor endpoint_changes(const std::vector<PartMeasures>& first, const std::vector<PartMeasures>& last,
                               const std::vector<PartMotion>& motion, const torch::Tensor& mean_area, int64_t num_parts,
                               int64_t side, double min_area) {
  auto changes = torch::full({num_parts, kMeasures}, NAN, torch::kDouble);
  auto c = changes.accessor<double, 2>();
  const auto area = mean_area.to(torch::kDouble).contiguous();
  const double* mean = area.data_ptr<double>();
  for (int64_t p = 0; p < num_parts; ++p) {
    if (!(mean[p] >= min_area)) continue;
    const PartMeasures* a = find_part(first, int(p));
    const PartMeasures* b = find_part(last, int(p));
    const double area_first = a ? a->area : 0.0, area_last = b ? b->area : 0.0;
    c[p][kArea] = (area_last - area_first) / (area_first > 0 ? area_first : 1.0);
    if (a && b) {
      c[p][kLuminance] = (b->luminance - a->luminance) / 85.0;
      c[p][kEntropy] = b->entropy - a->entropy;
      if (a->saturation >= kMinimumSaturationForHue && b->saturation >= kMinimumSaturationForHue)
        c[p][kHue] = wrap_degrees(b->hue_degrees - a->hue_degrees, 360.0);
      c[p][kSaturation] = b->saturation - a->saturation;
      c[p][kEccentricity] = b->eccentricity - a->eccentricity;
      c[p][kAngle] = wrap_degrees(b->angle_degrees - a->angle_degrees, 180.0);
      c[p][kCentreX] = (b->centre_x - a->centre_x) / double(side);
      c[p][kCentreY] = (b->centre_y - a->centre_y) / double(side);
    }
    for (const auto& m : motion)
      if (m.part == int(p) && m.area > 0) {
        c[p][kFlowX] = m.dx / double(side);
        c[p][kFlowY] = m.dy / double(side);
      }
  }
  return changes;
}

std::unique_ptr<PartSource> make_part_source(const StudyConfig& study, const Generator& generator,
                                             const TuningSet& tuning, const c10::Device& device) {
  std::string kind = study.sweep.parts;
  if (kind == "auto")
    kind = !study.segmenter.empty() ? "segmenter" : generator.has_synthesis_features() ? "kmeans" : "none";
  if (kind == "segmenter") {
    if (study.segmenter.empty())
      throw Error(study.config_file(), "sweep.parts is \"segmenter\" but models.segmenter is not set");
    return load_segmenter_parts(study.segmenter, device);
  }
  if (kind == "kmeans")
    return fit_kmeans_parts(generator, tuning.latents.to(generator.device()), study.sweep.kmeans_parts,
                            study.sweep.seed);
  return whole_image_parts();
}

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
          {"strips", strip_list}};
}

// ---------------------------------------------------------------------------------------------
// The run

namespace {

const char* kSchema = R"(
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS parts (part INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS samples (sample INTEGER PRIMARY KEY, generator_class INTEGER NOT NULL,
  classifier_class INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS units (unit INTEGER PRIMARY KEY, range_min REAL, range_max REAL, gain REAL,
  correlation REAL, off_unit_correlation_p99 REAL, specificity REAL, logit_change REAL, class_flip_rate REAL,
  expressible INTEGER, label TEXT, label_part TEXT, label_measure TEXT, label_z REAL, significant_concepts INTEGER);
CREATE TABLE IF NOT EXISTS steps (unit INTEGER NOT NULL, sample INTEGER NOT NULL, step INTEGER NOT NULL,
  value REAL, activation REAL, other_change REAL, class_logit REAL, top_class INTEGER,
  PRIMARY KEY (unit, sample, step)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS part_metrics (unit INTEGER NOT NULL, sample INTEGER NOT NULL, step INTEGER NOT NULL,
  part INTEGER NOT NULL, area REAL, luminance REAL, entropy REAL, centre_x REAL, centre_y REAL, major_axis REAL,
  minor_axis REAL, angle REAL, eccentricity REAL, hue REAL, saturation REAL,
  PRIMARY KEY (unit, sample, step, part)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS motion (unit INTEGER NOT NULL, sample INTEGER NOT NULL, part INTEGER NOT NULL,
  dx REAL, dy REAL, PRIMARY KEY (unit, sample, part)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS part_changes (unit INTEGER NOT NULL, part INTEGER NOT NULL, measure TEXT NOT NULL,
  change REAL, samples INTEGER, PRIMARY KEY (unit, part, measure)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS null_directions (direction INTEGER PRIMARY KEY, bin INTEGER NOT NULL, norm REAL NOT NULL);
CREATE TABLE IF NOT EXISTS null_changes (direction INTEGER NOT NULL, part INTEGER NOT NULL, measure TEXT NOT NULL,
  change REAL, samples INTEGER, PRIMARY KEY (direction, part, measure)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS selectivity (unit INTEGER NOT NULL, part INTEGER NOT NULL, measure TEXT NOT NULL,
  change REAL, z REAL, p REAL, p_empirical REAL, significant INTEGER, PRIMARY KEY (unit, part, measure)) WITHOUT ROWID;
CREATE VIEW IF NOT EXISTS concept_top_units AS
  SELECT * FROM (SELECT parts.name AS part_name, selectivity.measure, selectivity.unit, selectivity.z,
    selectivity.change, ROW_NUMBER() OVER (PARTITION BY selectivity.part, selectivity.measure
                                          ORDER BY abs(selectivity.z) DESC) AS rank
    FROM selectivity JOIN parts ON parts.part = selectivity.part WHERE selectivity.significant = 1)
  WHERE rank <= 10;
)";

struct SweepContext {
  const StudyConfig& study;
  const SweepModels& models;
  const TuningSet& tuning;
  Database& database;
  int64_t num_parts = 0, side = 0, steps = 0;
  double min_area = 0;
  bool overlap = false;
};

// Per-sample endpoint changes of groups of `per_group` images (one group per sample and sweep),
// averaged over samples: [G, P, M] mean and [G, P, M] count, with the motion of every group.
struct GroupChanges {
  torch::Tensor mean, count;                                 // [G, P, M] float64 / int64
  std::vector<std::vector<std::vector<PartMotion>>> motion;  // [sweep][sample]
};

GroupChanges group_changes(const SweepContext& context, const MeasuredImages& measured, int64_t sweeps, int64_t samples,
                           int64_t per_group) {
  const int64_t P = context.num_parts;
  const int64_t side = context.side;
  auto sum = torch::zeros({sweeps, P, kMeasures}, torch::kDouble);
  auto count = torch::zeros({sweeps, P, kMeasures}, torch::kLong);
  GroupChanges result;
  result.motion.assign(sweeps, std::vector<std::vector<PartMotion>>(samples));
  std::vector<torch::Tensor> changes(sweeps * samples);
  at::parallel_for(0, sweeps * samples, 1, [&](int64_t begin, int64_t end) {
    for (int64_t g = begin; g < end; ++g) {
      const int64_t first = g * per_group, last = first + per_group - 1;
      auto mean_area = torch::zeros({P}, torch::kDouble);
      auto area = mean_area.accessor<double, 1>();
      for (int64_t i = first; i <= last; ++i)
        for (const auto& part : measured.parts[i]) area[part.part] += part.area / double(per_group);
      const cv::Mat first_rgb = wrap_pixels(side, CV_8UC3, measured.images[first].data_ptr());
      const cv::Mat last_rgb = wrap_pixels(side, CV_8UC3, measured.images[last].data_ptr());
      const cv::Mat first_labels = wrap_pixels(side, CV_32SC1, measured.labels[first].data_ptr());
      auto motion = measure_part_motion(first_rgb, last_rgb, first_labels, int(P));
      changes[g] =
          endpoint_changes(measured.parts[first], measured.parts[last], motion, mean_area, P, side, context.min_area);
      result.motion[g / samples][g % samples] = std::move(motion);
    }
  });
  for (int64_t g = 0; g < sweeps * samples; ++g) {
    const auto defined = torch::isfinite(changes[g]);
    sum[g / samples] += torch::where(defined, changes[g], torch::zeros_like(changes[g]));
    count[g / samples] += defined.to(torch::kLong);
  }
  result.mean = sum / count.to(torch::kDouble);  // NaN where no sample defines it
  result.count = count;
  return result;
}

void insert_changes(Database& database, const char* table, const char* key, int64_t id, const torch::Tensor& mean,
                    const torch::Tensor& count) {
  Database::Statement insert(database, fmt::format("INSERT INTO {} ({}, part, measure, change, samples) "
                                                   "VALUES (?, ?, ?, ?, ?)",
                                                   table, key));
  const auto m = mean.accessor<double, 2>();
  const auto c = count.accessor<int64_t, 2>();
  for (int64_t p = 0; p < mean.size(0); ++p)
    for (int64_t k = 0; k < kMeasures; ++k) {
      if (c[p][k] == 0) continue;
      insert.bind(1, id).bind(2, p).bind(3, concept_measures()[k]).bind_finite(4, m[p][k]).bind(5, c[p][k]);
      insert.run();
    }
}

// A chunk is swept in two parts: measure_latent_groups renders, encodes, segments and measures its
// images (the generator's share) from its latents (`*_sweep_latents`), and `record_*` computes flow
// and statistics and writes all its rows in one transaction (the CPU's share), which may run
// beside the next chunks' measures.
int64_t record_unit_chunk(const SweepContext& context, const std::vector<int64_t>& units,
                          const MeasuredImages& measured) {
  const torch::NoGradGuard no_grad;
  const auto& tuning = context.tuning;
  const int64_t U = int64_t(units.size()), S = tuning.size(), T = context.steps;
  const int64_t D = tuning.features.size(1);
  const auto values = sweep_values(tuning, units, T);  // [U, T]
  const auto r = measured.features.to(torch::kDouble).reshape({U, S, T, D});
  const auto logits = measured.logits.reshape({U, S, T, -1});
  const auto changes = group_changes(context, measured, U, S, T);

  // Cycle statistics, within samples (values are centred over the steps, activations per sample).
  const auto v = values.to(torch::kDouble);
  const auto vc = v - v.mean(1, true);                               // [U, T]
  const auto rc = r - r.mean(2, true);                               // [U, S, T, D]
  const auto v_ss = vc.pow(2).sum(1) * double(S);                    // [U]
  const auto cov = (rc * vc.unsqueeze(1).unsqueeze(3)).sum({1, 2});  // [U, D]
  const auto r_ss = rc.pow(2).sum({1, 2});                           // [U, D]
  const auto corr_all = cov / (v_ss.unsqueeze(1) * r_ss).sqrt();     // [U, D]
  const auto unit_index = torch::tensor(units, torch::kLong);
  const auto own = [&](const torch::Tensor& x) {  // x[u, ..., units[u]] for x [U, ..., D]
    auto shape = x.sizes().vec();
    shape.back() = 1;
    std::vector<int64_t> view(x.dim(), 1);
    view[0] = U;
    return x.gather(x.dim() - 1, unit_index.view(view).expand(shape)).squeeze(-1);
  };
  const auto delta = (r.select(2, T - 1) - r.select(2, 0)).abs();  // [U, S, D]
  const auto moved = (r - r.select(2, 0).unsqueeze(2)).abs();      // [U, S, T, D]
  const double others_count = std::max<double>(1.0, double(D - 1));
  const auto moved_other = ((moved.sum(3) - own(moved)) / others_count).contiguous();  // [U, S, T]
  const auto own_change = own(delta).mean(1);                                          // [U]
  const auto other_change = ((delta.sum(2) - own(delta)) / others_count).mean(1);      // [U]
  const auto activation = own(r).contiguous();                                         // [U, S, T]
  const auto gain = (own(cov) / v_ss).contiguous();
  const auto correlation = own(corr_all).contiguous();
  const auto sample_class = tuning.classifier_classes.view({1, S, 1, 1}).expand({U, S, T, 1});
  const auto class_logit = logits.gather(3, sample_class).squeeze(3).to(torch::kDouble).contiguous();  // [U, S, T]
  const auto top = logits.argmax(3).contiguous();                                                      // [U, S, T]
  const auto logit_change = (class_logit.select(2, T - 1) - class_logit.select(2, 0)).mean(1);
  const auto flip_rate = (top.select(2, T - 1) != top.select(2, 0)).to(torch::kDouble).mean(1);
  const auto va = values.to(torch::kDouble).contiguous();
  const auto a_value = va.accessor<double, 2>();
  const auto a_activation = activation.accessor<double, 3>();
  const auto a_moved = moved_other.accessor<double, 3>();
  const auto a_logit = class_logit.accessor<double, 3>();
  const auto a_top = top.accessor<int64_t, 3>();

  Database& db = context.database;
  db.in_transaction([&] {
    Database::Statement unit_row(db,
                                 "INSERT INTO units (unit, range_min, range_max, gain, correlation, "
                                 "off_unit_correlation_p99, specificity, logit_change, class_flip_rate) "
                                 "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
    Database::Statement step_row(db,
                                 "INSERT INTO steps (unit, sample, step, value, activation, other_change, "
                                 "class_logit, top_class) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    Database::Statement part_row(db,
                                 "INSERT INTO part_metrics (unit, sample, step, part, area, luminance, entropy, "
                                 "centre_x, centre_y, major_axis, minor_axis, angle, eccentricity, hue, saturation) "
                                 "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    Database::Statement motion_row(db, "INSERT INTO motion (unit, sample, part, dx, dy) VALUES (?, ?, ?, ?, ?)");
    for (int64_t u = 0; u < U; ++u) {
      const int64_t unit = units[u];
      auto others = torch::cat({corr_all[u].slice(0, 0, unit), corr_all[u].slice(0, unit + 1)}).abs();
      others = torch::where(torch::isfinite(others), others, torch::zeros_like(others));
      const double off_p99 = others.numel() ? torch::quantile(others, 0.99).item<double>() : 0.0;
      for (int64_t s = 0; s < S; ++s) {
        for (int64_t t = 0; t < T; ++t) {
          const int64_t image = (u * S + s) * T + t;
          step_row.bind(1, unit)
              .bind(2, s)
              .bind(3, t)
              .bind(4, a_value[u][t])
              .bind_finite(5, a_activation[u][s][t])
              .bind_finite(6, a_moved[u][s][t])
              .bind_finite(7, a_logit[u][s][t])
              .bind(8, a_top[u][s][t]);
          step_row.run();
          for (const auto& m : measured.parts[image]) {
            part_row.bind(1, unit)
                .bind(2, s)
                .bind(3, t)
                .bind(4, m.part)
                .bind(5, m.area)
                .bind_finite(6, m.luminance)
                .bind_finite(7, m.entropy)
                .bind_finite(8, m.centre_x)
                .bind_finite(9, m.centre_y)
                .bind_finite(10, m.major_axis)
                .bind_finite(11, m.minor_axis)
                .bind_finite(12, m.angle_degrees)
                .bind_finite(13, m.eccentricity)
                .bind_finite(14, m.hue_degrees)
                .bind_finite(15, m.saturation);
            part_row.run();
          }
        }
        for (const auto& m : changes.motion[u][s]) {
          if (m.area <= 0) continue;
          motion_row.bind(1, unit).bind(2, s).bind(3, m.part).bind_finite(4, m.dx).bind_finite(5, m.dy);
          motion_row.run();
        }
      }
      unit_row.bind(1, unit)
          .bind(2, tuning.range_min[unit].item<double>())
          .bind(3, tuning.range_max[unit].item<double>())
          .bind_finite(4, gain[u].item<double>())
          .bind_finite(5, correlation[u].item<double>())
          .bind_finite(6, off_p99)
          .bind_finite(7, (own_change[u] / other_change[u]).item<double>())
          .bind_finite(8, logit_change[u].item<double>())
          .bind(9, flip_rate[u].item<double>());
      unit_row.run();
      insert_changes(db, "part_changes", "unit", unit, changes.mean[u], changes.count[u]);
    }
  });
  return U * S * T;
}

torch::Tensor null_direction(uint64_t seed, int64_t direction, int64_t dim) {
  auto generator = at::detail::createCPUGenerator(splitmix64(splitmix64(seed ^ 0x6e756c6cULL) ^ uint64_t(direction)));
  // The positive orthant: like a unit sweep, which raises one activation from its minimum, a
  // null sweep raises a random mix of activations (r >= 0 after the ReLU).
  auto u = torch::randn({dim}, generator, torch::kFloat).abs();
  return u / u.norm();
}

// Latents of random directions, both ends only, ordered (direction, sample, end).
torch::Tensor null_sweep_latents(const SweepContext& context, const std::vector<int64_t>& directions,
                                 const NormBins& bins) {
  const torch::NoGradGuard no_grad;
  const auto& tuning = context.tuning;
  const int64_t S = tuning.size(), D = tuning.features.size(1);
  const int64_t per_bin = context.study.sweep.null_directions;
  std::vector<torch::Tensor> rows;
  for (int64_t d : directions) {
    const double norm = bins.norm[d / per_bin];
    const auto step = null_direction(context.study.sweep.seed, d, D) * float(norm);
    rows.push_back(torch::stack({tuning.features, tuning.features + step}, 1).reshape({2 * S, D}));
  }
  return context.models.network.apply(torch::cat(rows));
}

int64_t record_null_chunk(const SweepContext& context, const std::vector<int64_t>& directions, const NormBins& bins,
                          const MeasuredImages& measured) {
  const torch::NoGradGuard no_grad;
  const int64_t S = context.tuning.size();
  const int64_t per_bin = context.study.sweep.null_directions;
  const auto changes = group_changes(context, measured, int64_t(directions.size()), S, 2);
  Database& db = context.database;
  db.in_transaction([&] {
    Database::Statement row(db, "INSERT INTO null_directions (direction, bin, norm) VALUES (?, ?, ?)");
    for (size_t i = 0; i < directions.size(); ++i) {
      const int64_t d = directions[i];
      row.bind(1, d).bind(2, d / per_bin).bind(3, bins.norm[d / per_bin]);
      row.run();
      insert_changes(db, "null_changes", "direction", d, changes.mean[int64_t(i)], changes.count[int64_t(i)]);
    }
  });
  return int64_t(directions.size()) * 2 * S;
}

// The run's identity: everything that changes the rows (not the thresholds, which only change the
// final verdicts, nor the strips).
// FNV-1a of a tensor's float32 bytes: tells whether recomputed inputs are the same as before.
std::string tensor_fingerprint(const torch::Tensor& tensor) {
  const auto data = tensor.to(torch::kCPU, torch::kFloat).contiguous();
  return fmt::format("{:016x}", fnv1a64(data.data_ptr(), size_t(data.numel()) * sizeof(float)));
}

json run_identity(const StudyConfig& study, const std::vector<int64_t>& units, const PartSource& parts,
                  const TuningSet& tuning) {
  const auto& s = study.sweep;
  return {{"tuning_features", tensor_fingerprint(tuning.features)},
          {"classifier", file_fingerprint(study.classifier)},
          {"generator", file_fingerprint(study.generator)},
          {"linking", file_fingerprint(study.linking_file())},
          {"parts", parts.identity()},
          {"classes", study.pairs.classes},
          {"classifier_classes", study.pairs.classifier_classes},
          {"psi", study.pairs.psi},
          {"samples_per_class", s.samples_per_class},
          {"seed", s.seed},
          {"steps", s.steps},
          {"units", units},
          {"batch_size", s.batch_size},
          {"units_per_chunk", s.units_per_chunk},
          {"null_directions", s.null_directions},
          {"null_bins", s.null_bins},
          {"null", "r0 -> r0 + n u, u uniform on the positive orthant of the unit sphere"}};
}

std::set<int64_t> done_ids(Database& db, const std::string& sql) {
  std::set<int64_t> done;
  Database::Statement query(db, sql);
  while (query.step()) done.insert(query.column_int(0));
  return done;
}

// Recomputes expressibility, selectivity and labels from the rows (cheap; every run does it).
std::pair<int64_t, int64_t> finalize(const StudyConfig& study, Database& db, const std::vector<int64_t>& units,
                                     const NormBins& bins, int64_t num_parts) {
  const auto& s = study.sweep;
  const int64_t C = num_parts * kMeasures;
  const int64_t U = int64_t(units.size()), B = int64_t(bins.norm.size()), M = s.null_directions;
  std::map<std::string, int64_t> measure_index;
  for (int64_t k = 0; k < kMeasures; ++k) measure_index[concept_measures()[k]] = k;
  std::map<int64_t, int64_t> unit_row;
  for (int64_t i = 0; i < U; ++i) unit_row[units[i]] = i;
  auto profile = torch::full({U, C}, NAN, torch::kDouble);
  auto null_values = torch::full({B, M, C}, NAN, torch::kDouble);
  {
    Database::Statement q(db, "SELECT unit, part, measure, change FROM part_changes");
    auto a = profile.accessor<double, 2>();
    while (q.step())
      if (!q.is_null(3) && unit_row.count(q.column_int(0)))
        a[unit_row[q.column_int(0)]][q.column_int(1) * kMeasures + measure_index.at(q.column_text(2))] =
            q.column_double(3);
  }
  {
    Database::Statement q(db, "SELECT direction, part, measure, change FROM null_changes");
    auto a = null_values.accessor<double, 3>();
    while (q.step()) {
      const int64_t d = q.column_int(0);
      if (!q.is_null(3) && d / M < B)
        a[d / M][d % M][q.column_int(1) * kMeasures + measure_index.at(q.column_text(2))] = q.column_double(3);
    }
  }
  std::vector<int64_t> unit_bins(U);
  for (int64_t i = 0; i < U; ++i) {
    unit_bins[i] = std::max<int64_t>(bins.unit_bin[i], 0);
    if (bins.unit_bin[i] < 0) profile[i].fill_(NAN);  // a unit that never varies is not tested
  }
  const auto result = score_selectivity(profile, unit_bins, null_values, s.significance);

  std::map<int64_t, std::string> part_names;
  {
    Database::Statement q(db, "SELECT part, name FROM parts");
    while (q.step()) part_names[q.column_int(0)] = q.column_text(1);
  }
  int64_t expressible = 0, labelled = 0;
  db.in_transaction([&] {
    db.execute("DELETE FROM selectivity");
    Database::Statement insert(db,
                               "INSERT INTO selectivity (unit, part, measure, change, z, p, p_empirical, significant) "
                               "VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    Database::Statement update(db,
                               "UPDATE units SET expressible = ?, label = ?, label_part = ?, label_measure = ?, "
                               "label_z = ?, significant_concepts = ? WHERE unit = ?");
    Database::Statement read(db, "SELECT gain, correlation, specificity FROM units WHERE unit = ?");
    const auto z = result.z.accessor<double, 2>();
    const auto pn = result.p_normal.accessor<double, 2>();
    const auto pe = result.p_empirical.accessor<double, 2>();
    const auto sig = result.significant.accessor<bool, 2>();
    const auto prof = profile.accessor<double, 2>();
    for (int64_t i = 0; i < U; ++i) {
      read.bind(1, units[i]);
      const bool present = read.step();
      bool is_expressible = false;
      if (present && !read.is_null(0) && !read.is_null(1) && !read.is_null(2))
        is_expressible = read.column_double(0) >= s.min_gain && read.column_double(1) >= s.min_correlation &&
                         read.column_double(2) >= s.min_specificity;
      read.reset();
      if (!present) continue;  // not swept yet
      int64_t significant = 0;
      for (int64_t c = 0; c < C; ++c) {
        if (!std::isfinite(z[i][c])) continue;
        significant += sig[i][c];
        insert.bind(1, units[i])
            .bind(2, c / kMeasures)
            .bind(3, concept_measures()[c % kMeasures])
            .bind_finite(4, prof[i][c])
            .bind(5, z[i][c])
            .bind(6, pn[i][c])
            .bind(7, pe[i][c])
            .bind(8, int64_t(sig[i][c]));
        insert.run();
      }
      expressible += is_expressible;
      update.bind(1, int64_t(is_expressible));
      const int64_t label = result.label[i];
      if (label >= 0) {
        ++labelled;
        const std::string part = part_names[label / kMeasures], measure = concept_measures()[label % kMeasures];
        update.bind(2, fmt::format("{} {} {}", part, measure, z[i][label] > 0 ? "+" : "-"))
            .bind(3, part)
            .bind(4, measure)
            .bind(5, z[i][label]);
      } else {
        update.bind(2, std::string("none")).bind_null(3).bind_null(4).bind_null(5);
      }
      update.bind(6, significant).bind(7, units[i]);
      update.run();
    }
  });
  return {expressible, labelled};
}

std::vector<fs::path> write_strips(const StudyConfig& study, const SweepContext& context, Database& db,
                                   std::vector<int64_t> units) {
  const auto& s = study.sweep;
  {
    Database::Statement q(db, "SELECT unit FROM units ORDER BY expressible DESC, correlation DESC, unit LIMIT ?");
    q.bind(1, s.strip_units);
    while (q.step()) units.push_back(q.column_int(0));
  }
  std::sort(units.begin(), units.end());
  units.erase(std::unique(units.begin(), units.end()), units.end());
  const int64_t samples = std::min(s.strip_samples, context.tuning.size());
  std::vector<fs::path> files;
  if (units.empty() || samples == 0) return files;
  const fs::path folder = study.sweeps_folder() / "strips";
  ensure_writable_directory(folder);
  const torch::NoGradGuard no_grad;
  for (int64_t unit : units) {
    const auto latents = unit_sweep_latents(context.models.network, context.tuning, {unit}, s.steps);
    for (int64_t sample = 0; sample < samples; ++sample) {
      // Spread the strips over the classes: sample k of the tuning set's k-th class block.
      const int64_t per_class = s.samples_per_class;
      const int64_t classes = context.tuning.size() / per_class;
      const int64_t index = (sample % classes) * per_class + (sample / classes) % per_class;
      const auto w = latents.slice(0, index * s.steps, (index + 1) * s.steps).to(context.models.generator.device());
      const auto images = generator_to_classifier_range(context.models.generator.synthesis(w)).to(torch::kCPU);
      std::vector<torch::Tensor> panels;
      for (int64_t t = 0; t < s.steps; ++t) panels.push_back(images.slice(0, t, t + 1));
      const fs::path file = folder / fmt::format("unit-{:05d}-sample-{:03d}.png", unit, index);
      write_image_row(file, panels, 96);
      files.push_back(file);
    }
  }
  return files;
}

}  // namespace

SweepSummary run_sweep(const StudyConfig& study, const Classifier& classifier, const Generator& generator,
                       const LinkingNetwork& network, const SweepRunOptions& options) {
  const auto start_time = std::chrono::steady_clock::now();
  const auto& s = study.sweep;
  const TuningSet tuning = make_tuning_set(study, classifier, generator, network);
  const int64_t D = tuning.features.size(1);
  std::vector<int64_t> units = s.units;
  if (units.empty())
    for (int64_t u = 0; u < D; ++u) units.push_back(u);
  for (int64_t u : units)
    if (u >= D) throw Error(study.config_file(), fmt::format("sweep.units: unit {} is out of range [0, {})", u, D));
  for (int64_t u : options.strip_units)
    if (u < 0 || u >= D) throw Error("--strip-units", fmt::format("unit {} is out of range [0, {})", u, D));
  if (std::set<int64_t>(units.begin(), units.end()).size() != units.size())
    throw Error(study.config_file(), "sweep.units lists a unit twice");
  const auto part_source = make_part_source(study, generator, tuning, classifier.device());
  const SweepModels models{classifier, generator, network, *part_source};

  ensure_writable_directory(study.sweeps_folder());
  Database db(study.results_database(), Database::Mode::create_or_open);
  db.execute(kSchema);
  const std::string identity = run_identity(study, units, *part_source, tuning).dump();
  {
    const auto stored = db.query_text("SELECT value FROM meta WHERE key = 'run'");
    if (stored && *stored != identity)
      throw Error(db.file(),
                  "was made with other sweep settings, models, linking network or tuning features "
                  "(another thread count or device changes them); remove it to start again");
    if (!stored) {
      db.in_transaction([&] {
        Database::Statement meta(db, "INSERT INTO meta (key, value) VALUES (?, ?)");
        meta.bind(1, std::string("run")).bind(2, identity);
        meta.run();
        Database::Statement part(db, "INSERT INTO parts (part, name) VALUES (?, ?)");
        for (size_t p = 0; p < part_source->part_names().size(); ++p) {
          part.bind(1, int64_t(p)).bind(2, part_source->part_names()[p]);
          part.run();
        }
        Database::Statement sample(db,
                                   "INSERT INTO samples (sample, generator_class, classifier_class) VALUES (?, ?, ?)");
        for (int64_t i = 0; i < tuning.size(); ++i) {
          sample.bind(1, i)
              .bind(2, tuning.generator_classes[i].item<int64_t>())
              .bind(3, tuning.classifier_classes[i].item<int64_t>());
          sample.run();
        }
      });
    }
  }

  // Units that never vary over the tuning samples have nothing to sweep: they stay out of the
  // norm bins (their bin is -1) and are never tested.
  std::vector<double> live_ranges;
  std::vector<int64_t> live_index(units.size(), -1);
  for (size_t i = 0; i < units.size(); ++i) {
    const double range = (tuning.range_max[units[i]] - tuning.range_min[units[i]]).item<double>();
    if (range > 0) live_index[i] = int64_t(live_ranges.size()), live_ranges.push_back(range);
  }
  NormBins bins = assign_norm_bins(live_ranges, s.null_bins);
  {
    std::vector<int64_t> unit_bin(units.size(), -1);
    for (size_t i = 0; i < units.size(); ++i)
      if (live_index[i] >= 0) unit_bin[i] = bins.unit_bin[live_index[i]];
    bins.unit_bin = unit_bin;
  }
  const int64_t directions = int64_t(bins.norm.size()) * s.null_directions;

  SweepContext context{study, models, tuning, db};
  context.num_parts = int64_t(part_source->part_names().size());
  context.side = generator.resolution();
  context.steps = s.steps;
  context.min_area = minimum_part_area(context.side);
  context.overlap =
      options.overlap == Overlap::always || (options.overlap == Overlap::automatic && generator.device().is_cuda());

  const auto done_units = done_ids(db, "SELECT unit FROM units");
  const auto done_directions = done_ids(db, "SELECT direction FROM null_directions");
  SweepSummary summary;
  summary.database = db.file();
  summary.part_source = part_source->kind();
  summary.units = int64_t(units.size());
  for (int64_t u : units) summary.units_resumed += done_units.count(u);

  const int64_t chunk = s.units_per_chunk;
  const int64_t total_images = (directions - int64_t(done_directions.size())) * 2 * tuning.size() +
                               (summary.units - summary.units_resumed) * tuning.size() * s.steps;
  ProgressBar bar("sweep", total_images);
  if (!options.progress) bar.set_total(0);
  int64_t chunks_run = 0;
  auto after_chunk = [&](int64_t images) {
    summary.images += images;
    if (options.progress) bar.set(summary.images);
    if (options.stop_after_chunks >= 0 && ++chunks_run >= options.stop_after_chunks) throw SweepInterrupted();
  };
  // The chunks still to do, null directions first; each is measured, then recorded. The chunks
  // are measured as one pipeline; with overlap, chunk k is recorded on another thread while
  // chunk k + 1 is measured.
  struct Chunk {
    bool null;
    std::vector<int64_t> ids;
  };
  std::vector<Chunk> chunks;
  for (int64_t begin = 0; begin < directions; begin += chunk) {
    std::vector<int64_t> group;
    for (int64_t d = begin; d < std::min(directions, begin + chunk); ++d) group.push_back(d);
    if (!done_directions.count(group.front())) chunks.push_back({true, group});
  }
  for (int64_t begin = 0; begin < summary.units; begin += chunk) {
    std::vector<int64_t> group(units.begin() + begin, units.begin() + std::min(summary.units, begin + chunk));
    if (!done_units.count(group.front())) chunks.push_back({false, group});
  }
  const auto latents_of = [&](int64_t k) {
    const auto& c = chunks[size_t(k)];
    return c.null ? null_sweep_latents(context, c.ids, bins) : unit_sweep_latents(network, tuning, c.ids, s.steps);
  };
  const auto record = [&](const Chunk& c, const MeasuredImages& measured) {
    return c.null ? record_null_chunk(context, c.ids, bins, measured) : record_unit_chunk(context, c.ids, measured);
  };
  std::future<int64_t> recording;
  const auto on_measured = [&](int64_t k, MeasuredImages&& measured) {
    const auto& c = chunks[size_t(k)];
    if (recording.valid()) after_chunk(recording.get());
    if (context.overlap)
      recording = on_another_thread([&record, &c, measured = std::move(measured)] { return record(c, measured); });
    else
      after_chunk(record(c, measured));
  };
  measure_latent_groups(models, int64_t(chunks.size()), latents_of, on_measured, s.batch_size, true, context.overlap);
  if (recording.valid()) after_chunk(recording.get());
  bar.finish();
  const auto swept = std::chrono::steady_clock::now();
  summary.seconds = std::chrono::duration<double>(swept - start_time).count();
  summary.images_per_second = summary.seconds > 0 ? double(summary.images) / summary.seconds : 0.0;
  std::tie(summary.expressible, summary.labelled) = finalize(study, db, units, bins, context.num_parts);
  summary.strips = write_strips(study, context, db, options.strip_units);
  db.execute(
      fmt::format("INSERT OR REPLACE INTO meta (key, value) VALUES ('complete', '1'), "
                  "('part_source', '{}')",
                  part_source->kind()));
  write_file_atomically(study.sweeps_folder() / "summary.json", summary.to_json().dump(2) + "\n");
  return summary;
}

}  // namespace linkstyle
