// A batch of counterfactuals explained: the shifts optimised, the images rendered and judged, the
// exact counterfactuals, the path of each sample, its record and the batch's files
// (counterfactual/counterfactual_run.hpp).
#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <tuple>

#include <fmt/format.h>
#include <torch/torch.h>

#include "counterfactual/counterfactual_run.hpp"
#include "linkstyle/generation.hpp"
#include "linkstyle/image_files.hpp"
#include "linkstyle/image_pipeline.hpp"

namespace linkstyle::counterfactual_run {

namespace fs = std::filesystem;

namespace {

// Units carrying `share` of |s|_1: the fewest with the largest |s_i| whose sum reaches it.
int64_t units_carrying(const torch::Tensor& magnitudes, double share) {
  const auto sorted = std::get<0>(magnitudes.to(torch::kDouble).sort(0, true));
  const double total = sorted.sum().item<double>();
  if (total <= 0.0) return 0;
  const auto reached = (sorted.cumsum(0) >= share * total * (1.0 - 1e-12)).nonzero();
  return reached.numel() ? reached[0][0].item<int64_t>() + 1 : sorted.size(0);
}

// The first alpha where the target's logit beats every other class, linearly interpolated
// between path points; NaN when it never does.
double crossing_alpha(const std::vector<double>& alphas, const std::vector<double>& margins) {
  for (size_t k = 0; k < margins.size(); ++k) {
    if (margins[k] <= 0.0) continue;
    if (k == 0) return alphas[0];
    const double t = -margins[k - 1] / (margins[k] - margins[k - 1]);
    return alphas[k - 1] + t * (alphas[k] - alphas[k - 1]);
  }
  return std::nan("");
}

// Images of `latents` [M, w_dim] in chunks, and the classifier's logits of them (CPU).
std::pair<torch::Tensor, torch::Tensor> render_and_classify(const CounterfactualModels& models,
                                                            const torch::Tensor& latents, int64_t chunk) {
  std::vector<torch::Tensor> images, logits;
  for (int64_t first = 0; first < latents.size(0); first += chunk) {
    const auto part = latents.slice(0, first, std::min(latents.size(0), first + chunk));
    const auto rendered = render_latents(models.generator, part.to(models.generator.device()));
    logits.push_back(models.classifier.head(encode_images(models.classifier, rendered)).to(torch::kCPU, torch::kFloat32));
    images.push_back(rendered.to(torch::kCPU, torch::kFloat32));
  }
  return {torch::cat(images), torch::cat(logits)};
}

double cosine(const torch::Tensor& a, const torch::Tensor& b) {
  const double norms = a.norm().item<double>() * b.norm().item<double>();
  return norms > 0 ? (a * b).sum().item<double>() / norms : std::nan("");
}

std::vector<std::vector<PartMeasures>> measured_parts(const RunContext& context, const torch::Tensor& images) {
  return measure_images(context.models.classifier, *context.parts, images, context.settings.batch_size).parts;
}

// A batch's counterfactuals on their way to records, files and tensors.
struct BatchCounterfactuals {
  torch::Tensor index;  // the samples' ids [n] (CPU)
  torch::Tensor r;      // their features [n, D] (classifier's device)
  torch::Tensor shift, steps, success;
  torch::Tensor shifted, latents;  // relu(r - s) and L(relu(r - s))
  torch::Tensor images, logits, features_after, probability, image_margin, realism;
  torch::Tensor judge_features, judge_probability, judge_class, judge_realism;
  torch::Tensor exact_images, exact_features;
  torch::Tensor alpha, originals, r_cpu, shift_cpu;
  std::vector<std::vector<PartMeasures>> original_parts, counterfactual_parts, exact_parts;
  bool measure = false;
};

// The batch's shifts, one optimisation per source class.
void optimise_batch(const RunContext& context, const Samples& samples, const std::vector<int64_t>& ids,
                    BatchCounterfactuals& b, ShiftOptimisation& optimisation) {
  const auto& models = context.models;
  const auto& settings = context.settings;
  const bool realistic = settings.method == "realistic";
  b.index = torch::tensor(ids, torch::kLong);
  const auto device = models.classifier.device();
  b.r = samples.features.index_select(0, b.index).to(device);
  const auto& r = b.r;
  // Samples of one batch share their source (a run of the user's images may mix them: one
  // optimisation per source).
  std::map<int64_t, std::vector<int64_t>> by_source;
  for (size_t i = 0; i < ids.size(); ++i) by_source[samples.source[size_t(ids[i])]].push_back(int64_t(i));
  const int64_t n = int64_t(ids.size()), D = r.size(1);
  b.shift = torch::zeros({n, D}, torch::TensorOptions(torch::kFloat32).device(device));
  b.steps = torch::zeros({n}, torch::kLong);
  b.success = torch::zeros({n}, torch::kBool);
  for (const auto& [source, rows] : by_source) {
    std::vector<int64_t> sample_ids;
    for (const int64_t i : rows) sample_ids.push_back(ids[size_t(i)]);
    const auto rows_index = torch::tensor(rows, torch::kLong);
    std::optional<RealisticTerms> terms;
    if (realistic) terms = context.geometry->terms_for(source, context.target);
    auto part = optimise_shifts(models, r.index_select(0, rows_index.to(device)), source, context.target,
                                settings.start == "zero" || realistic
                                    ? torch::zeros({int64_t(rows.size()), D})
                                    : initial_shifts(settings.shift_seed, sample_ids, D),
                                settings, terms ? &*terms : nullptr);
    b.shift.index_copy_(0, rows_index.to(device), part.shift);
    b.steps.index_copy_(0, rows_index, part.steps);
    b.success.index_copy_(0, rows_index, part.success);
    optimisation.checks += part.checks;
    optimisation.seconds += part.seconds;
    optimisation.check_seconds += part.check_seconds;
  }
}

// The counterfactual images of relu(r - s), the classifier's verdict on them and their realism.
void render_counterfactuals(const RunContext& context, BatchCounterfactuals& b) {
  const auto& models = context.models;
  const int64_t n = b.r.size(0);
  b.shifted = torch::relu(b.r - b.shift);
  b.latents = models.network.apply(b.shifted);
  std::tie(b.images, b.logits) = render_and_classify(models, b.latents, context.settings.batch_size);
  b.features_after = encode_images(models.classifier, b.images.to(models.generator.device()))
                         .to(torch::kCPU, torch::kFloat32);
  b.probability = b.logits.softmax(1);
  auto others = b.logits.clone();
  others.select(1, context.target).fill_(-INFINITY);
  b.image_margin = (b.logits.select(1, context.target) - std::get<0>(others.max(1))).to(torch::kDouble);
  b.realism = context.geometry ? context.geometry->reference.ratios(b.features_after)
                               : torch::full({n}, std::nan(""), torch::kDouble);
}

// The judge's verdict on the counterfactual images and their realism in its features.
void judge_counterfactuals(const RunContext& context, BatchCounterfactuals& b) {
  const int64_t n = b.r.size(0);
  b.judge_realism = torch::full({n}, std::nan(""), torch::kDouble);
  if (context.judge) {
    b.judge_features = encode_images(*context.judge, b.images).to(torch::kCPU, torch::kFloat32);
    const auto judge_logits = context.judge->head(b.judge_features.to(context.judge->device())).to(torch::kCPU);
    b.judge_probability = judge_logits.softmax(1).select(1, context.judge_target).to(torch::kDouble);
    b.judge_class = judge_logits.argmax(1);
    if (context.judge_reference) b.judge_realism = context.judge_reference->ratios(b.judge_features);
  }
}

// The exact counterfactuals: the samples' own factors drawn as the target.
void draw_exact_counterfactuals(const RunContext& context, const Samples& samples, BatchCounterfactuals& b) {
  const auto& models = context.models;
  if (context.exact_class >= 0 && samples.z.defined()) {
    b.exact_images = exact_counterfactual_images(models.generator, samples.z.index_select(0, b.index),
                                                 context.exact_class);
    b.exact_features = encode_images(models.classifier, b.exact_images).to(torch::kCPU, torch::kFloat32);
  }
}

// What the path and the records start from: the alphas, the originals, r and s on the CPU, and
// the parts of the originals, the counterfactuals and the exact counterfactuals.
void prepare_records(const RunContext& context, const Samples& samples, BatchCounterfactuals& b) {
  const auto device = context.models.classifier.device();
  b.alpha = torch::tensor(context.alphas, torch::kFloat32).to(device);
  b.originals = samples.images.index_select(0, b.index);
  b.r_cpu = b.r.to(torch::kCPU);
  b.shift_cpu = b.shift.to(torch::kCPU);
  b.measure = context.parts && samples.latents.defined();
  if (b.measure) {
    b.original_parts = measured_parts(context, b.originals);
    b.counterfactual_parts = measured_parts(context, b.images);
    if (b.exact_images.defined()) b.exact_parts = measured_parts(context, b.exact_images);
  }
}

// Sample i's record: its outcome, the shift's size, the distances, and the verdicts on its image.
CounterfactualRecord sample_record(const RunContext& context, const Samples& samples, const BatchCounterfactuals& b,
                                   int64_t id, int64_t i) {
  const auto& r_cpu = b.r_cpu;
  CounterfactualRecord record;
  record.sample = id;
  record.source_class = samples.source[size_t(id)];
  record.latent_id = samples.latent_id[size_t(id)];
  record.origin = samples.origin[size_t(id)];
  record.success = b.success[i].item<bool>();
  record.steps = b.steps[i].item<int64_t>();
  const auto s = b.shift_cpu[i];
  record.shift_l1 = s.abs().sum().item<double>();
  record.shift_l2 = s.norm().item<double>();
  record.units_90 = units_carrying(s.abs(), 0.9);
  record.pixel_distance = (b.originals[i] - b.images[i]).abs().mean().item<double>();
  record.feature_distance = (b.features_after[i] - r_cpu[i]).norm().item<double>();
  const double r_norm = r_cpu[i].norm().item<double>();
  record.relative_feature_distance = r_norm > 0 ? record.feature_distance / r_norm : std::nan("");
  record.source_probability = b.probability[i][record.source_class].item<double>();
  record.target_probability = b.probability[i][context.target].item<double>();
  record.counterfactual_class = b.logits[i].argmax().item<int64_t>();
  record.realism = b.realism[i].item<double>();
  record.margin = b.image_margin[i].item<double>();
  record.judge_target_probability = std::nan("");
  if (context.judge) {
    record.judge_class = b.judge_class[i].item<int64_t>();
    record.judge_target_probability = b.judge_probability[i].item<double>();
  }
  record.judge_realism = b.judge_realism[i].item<double>();
  record.exact_shift_cosine =
      b.exact_features.defined() ? cosine(s, r_cpu[i] - b.exact_features[i]) : std::nan("");
  return record;
}

// Sample i's path r - alpha s: the target's probability, the class and the margin at each point
// into the record, with the alpha where it crosses; returns the path's images [P, 3, R, R].
torch::Tensor follow_path(const RunContext& context, const BatchCounterfactuals& b, int64_t i,
                          CounterfactualRecord& record) {
  const auto& models = context.models;
  const int64_t P = int64_t(context.alphas.size());
  const auto path_features = torch::relu(b.r[i].unsqueeze(0) - b.alpha.view({P, 1}) * b.shift[i].unsqueeze(0));
  auto [path_images, path_logits] =
      render_and_classify(models, models.network.apply(path_features), context.settings.batch_size);
  const auto path_probability = path_logits.softmax(1).select(1, context.target).to(torch::kDouble);
  const auto path_class = path_logits.argmax(1);
  auto path_others = path_logits.clone();
  path_others.select(1, context.target).fill_(-INFINITY);
  const auto margin = (path_logits.select(1, context.target) - std::get<0>(path_others.max(1))).to(torch::kDouble);
  std::vector<double> margins;
  for (int64_t k = 0; k < P; ++k) {
    record.path_probability.push_back(path_probability[k].item<double>());
    record.path_class.push_back(path_class[k].item<int64_t>());
    margins.push_back(margin[k].item<double>());
  }
  record.crossing_alpha = crossing_alpha(context.alphas, margins);
  return path_images;
}

// Sample i's two image rows (original | counterfactual [| exact] and the path) into the batch's
// files, named in its record.
void add_sample_images(const RunContext& context, const BatchCounterfactuals& b, const std::vector<int64_t>& ids,
                       int64_t i, const torch::Tensor& path_images, CounterfactualRecord& record,
                       ExplainedBatch& batch) {
  const int64_t id = ids[size_t(i)];
  const int64_t P = int64_t(context.alphas.size());
  const std::string stem = fmt::format("sample-{:05d}", id);
  std::vector<torch::Tensor> panels = {b.originals[i].unsqueeze(0), b.images[i].unsqueeze(0)};
  if (b.exact_images.defined()) panels.push_back(b.exact_images[i].unsqueeze(0));
  batch.images.emplace_back(stem + ".png", encode_image_row(panels, context.side));
  std::vector<torch::Tensor> path;
  for (int64_t k = 0; k < P; ++k) path.push_back(path_images[k].unsqueeze(0));
  batch.images.emplace_back(stem + "-path.png", encode_image_row(path, context.side));
  const fs::path relative = fs::path("counterfactuals") / context.run;
  record.image = (relative / (stem + ".png")).string();
  record.path_image = (relative / (stem + "-path.png")).string();
  record.tensors = (relative / fmt::format("batch-{:05d}.safetensors", ids.front())).string();
}

// Sample i of the batch explained: its record, its path and its images.
void explain_sample(const RunContext& context, const Samples& samples, const BatchCounterfactuals& b,
                    const std::vector<int64_t>& ids, int64_t i, ExplainedBatch& batch) {
  const int64_t id = ids[size_t(i)];
  CounterfactualRecord record = sample_record(context, samples, b, id, i);
  const auto s = b.shift_cpu[i];
  const auto path_images = follow_path(context, b, i, record);
  const int64_t D = b.r.size(1);
  const auto top = s.abs().topk(std::min<int64_t>(context.settings.top_units, D));
  for (int64_t k = 0; k < std::get<1>(top).size(0); ++k) {
    const int64_t unit = std::get<1>(top)[k].item<int64_t>();
    if (s[unit].item<double>() == 0.0) break;  // a sparse shift may move fewer units
    record.top_units.emplace_back(unit, s[unit].item<double>());
  }
  if (b.measure) {
    record.original_parts = b.original_parts[size_t(i)];
    record.counterfactual_parts = b.counterfactual_parts[size_t(i)];
    // alpha = 0 is the round trip G(L(r)) when the path starts there.
    if (context.alphas.front() == 0.0) record.round_trip_parts = measured_parts(context, path_images.slice(0, 0, 1))[0];
    if (!b.exact_parts.empty()) record.exact_parts = b.exact_parts[size_t(i)];
  }
  add_sample_images(context, b, ids, i, path_images, record, batch);
  batch.records.push_back(std::move(record));
}

// The batch's tensors file: features, shifts, latents and outcomes (and the judge's features).
void add_batch_tensors(const RunContext& context, const Samples& samples, const BatchCounterfactuals& b,
                       const std::vector<int64_t>& ids, ExplainedBatch& batch) {
  batch.tensors = {{"sample", b.index},
                   {"features", b.r_cpu},
                   {"shift", b.shift_cpu},
                   {"shifted_features", b.shifted.to(torch::kCPU)},
                   {"latents", b.latents.to(torch::kCPU)},
                   {"counterfactual_features", b.features_after},
                   {"success", b.success}};
  if (samples.latents.defined()) batch.tensors["original_latents"] = samples.latents.index_select(0, b.index);
  if (b.exact_features.defined()) batch.tensors["exact_features"] = b.exact_features;
  if (b.judge_features.defined()) {
    // The judge's features of the counterfactuals, the originals and the exact counterfactuals:
    // what realism figures in an independent feature space are computed from.
    batch.tensors["judge_features"] = b.judge_features;
    batch.tensors["original_judge_features"] =
        encode_images(*context.judge, b.originals).to(torch::kCPU, torch::kFloat32);
    if (b.exact_images.defined())
      batch.tensors["exact_judge_features"] = encode_images(*context.judge, b.exact_images).to(torch::kCPU, torch::kFloat32);
  }
  batch.tensors_file = fmt::format("batch-{:05d}.safetensors", ids.front());
}

}  // namespace

ExplainedBatch explain_batch(const RunContext& context, const Samples& samples, const std::vector<int64_t>& ids) {
  ExplainedBatch batch;
  BatchCounterfactuals b;
  optimise_batch(context, samples, ids, b, batch.optimisation);

  const torch::NoGradGuard no_grad;
  render_counterfactuals(context, b);
  judge_counterfactuals(context, b);
  draw_exact_counterfactuals(context, samples, b);

  // The path r - alpha s, one sample at a time: a sample's strip is encoded as soon as it is
  // rendered, so that a batch never holds more than one sample's path images.
  prepare_records(context, samples, b);
  for (int64_t i = 0; i < int64_t(ids.size()); ++i) explain_sample(context, samples, b, ids, i, batch);
  add_batch_tensors(context, samples, b, ids, batch);
  return batch;
}

}  // namespace linkstyle::counterfactual_run
