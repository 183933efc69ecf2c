// A study's counterfactual runs: samples, outputs, the results database and resumption
// (counterfactual.hpp).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include <fmt/format.h>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <torch/torch.h>

#include "../quantile.hpp"
#include "linkstyle/atomic_file.hpp"
#include "linkstyle/counterfactual.hpp"
#include "linkstyle/distributed.hpp"
#include "linkstyle/errors.hpp"
#include "linkstyle/generation.hpp"
#include "linkstyle/image_pipeline.hpp"
#include "linkstyle/pairs.hpp"
#include "linkstyle/part_sources.hpp"
#include "linkstyle/progress.hpp"
#include "linkstyle/reconstruct.hpp"
#include "linkstyle/results_database.hpp"
#include "linkstyle/study_lock.hpp"
#include "linkstyle/tensor_io.hpp"
#include "linkstyle/train/generator_training.hpp"
#include "sweep/row_messages.hpp"
#include "sweep/run_identity.hpp"

namespace linkstyle {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// The samples a run explains, in order: their features, images and where they come from.
struct Samples {
  std::vector<int64_t> source;      // classifier class of each
  std::vector<int64_t> latent_id;   // -1 for a user image
  std::vector<std::string> origin;  // "generated" or the image file
  torch::Tensor latents;            // w [N, w_dim] (CPU; undefined for user images)
  torch::Tensor z;                  // z [N, z_dim] (CPU; undefined for user images)
  torch::Tensor images;             // [N, 3, R, R] in [0, 1] (CPU), at the generator's resolution
  torch::Tensor features;           // r [N, D] (CPU)
  int64_t size() const { return int64_t(source.size()); }
};

// The generator class of a classifier class among the study's; with `required` false, -1 when
// it is not among them.
int64_t generator_class_of(const StudyConfig& study, const Generator& generator, int64_t classifier_class,
                           bool required = true) {
  const auto& p = study.pairs;
  if (p.classes.empty()) {
    if (classifier_class < generator.num_classes()) return classifier_class;
  } else {
    for (size_t i = 0; i < p.classes.size(); ++i)
      if ((p.classifier_classes.empty() ? p.classes[i] : p.classifier_classes[i]) == classifier_class)
        return p.classes[i];
  }
  if (!required) return -1;
  throw SettingError("counterfactual.from",
                     fmt::format("class {} is not among the study's classes (pairs.classes), so it has no generated "
                                 "samples; give --image files instead",
                                 classifier_class),
                     study.config_file());
}

// N generated samples of the classifier class `source` that pass the study's pairs filter.
Samples generated_samples(const StudyConfig& study, const CounterfactualModels& models, int64_t source) {
  const auto& k = study.counterfactual;
  const auto& p = study.pairs;
  const int64_t generator_class = generator_class_of(study, models.generator, source);
  const PairsFilter filter = PairsFilter::parse(p.filter);
  const int64_t max_draws = 50 * k.samples;
  std::vector<torch::Tensor> latents, images, features, ids, zs;
  int64_t kept = 0, drawn = 0;
  for (int64_t batch = 0; kept < k.samples; ++batch) {
    if (drawn >= max_draws)
      throw SettingError("counterfactual.samples",
                         fmt::format("only {} of {} generated samples of {} pass pairs.filter \"{}\" after {} draws",
                                     kept, k.samples, models.classifier.class_name(source), p.filter, drawn),
                         study.config_file());
    auto made = generate_and_encode(models.generator, models.classifier, k.seed, generator_class, batch, p.batch_size,
                                    p.psi);
    const auto logits = models.classifier.head(made.features).to(torch::kCPU, torch::kFloat32);
    auto pass = passes_filter(filter, logits, source).to(torch::kCPU).nonzero().squeeze(1);
    if (pass.numel() > k.samples - kept) pass = pass.slice(0, 0, k.samples - kept);
    latents.push_back(made.latents.to(torch::kCPU, torch::kFloat32).index_select(0, pass));
    zs.push_back(draw_latents(k.seed, generator_class, batch, p.batch_size, models.generator.z_dim()).index_select(0, pass));
    images.push_back(made.images.to(torch::kCPU, torch::kFloat32).index_select(0, pass));
    features.push_back(made.features.to(torch::kCPU, torch::kFloat32).index_select(0, pass));
    ids.push_back(pass + batch * p.batch_size);
    kept += pass.numel();
    drawn += p.batch_size;
  }
  Samples samples;
  samples.latents = torch::cat(latents);
  samples.z = torch::cat(zs);
  samples.images = torch::cat(images);
  samples.features = torch::cat(features);
  const auto id = torch::cat(ids);
  for (int64_t i = 0; i < kept; ++i) {
    samples.source.push_back(source);
    samples.latent_id.push_back(id[i].item<int64_t>());
    samples.origin.push_back("generated");
  }
  if (!torch::isfinite(samples.features).all().item<bool>())
    throw Error(models.classifier.file(), "features of generated samples contain NaN/Inf");
  return samples;
}

// The user's images: read and encoded (all of them before anything is written).
Samples image_samples(const CounterfactualModels& models, const std::vector<fs::path>& files,
                      std::optional<int64_t> source, int64_t target) {
  const torch::NoGradGuard no_grad;
  Samples samples;
  std::vector<torch::Tensor> images, features;
  const int64_t side = models.generator.resolution();
  for (const auto& file : files) {
    const auto image = read_image(file);
    const auto r = encode_images(models.classifier, image).to(torch::kCPU, torch::kFloat32);
    if (!torch::isfinite(r).all().item<bool>()) throw Error(file, "the classifier's features of it contain NaN/Inf");
    const int64_t predicted =
        models.classifier.head(r.to(models.classifier.device())).argmax(1).item<int64_t>();
    const int64_t from = source.value_or(predicted);
    if (from == target)
      throw Error(file, fmt::format("is classified as {} already; give --from to explain it from another class",
                                    models.classifier.class_name(target)));
    samples.source.push_back(from);
    samples.latent_id.push_back(-1);
    samples.origin.push_back(file.string());
    features.push_back(r);
    images.push_back(torch::nn::functional::interpolate(
        image, torch::nn::functional::InterpolateFuncOptions().size(std::vector<int64_t>{side, side}).mode(torch::kArea)));
  }
  samples.images = torch::cat(images);
  samples.features = torch::cat(features);
  return samples;
}

std::string file_name_part(const std::string& name, int64_t index) {
  std::string text;
  for (const char c : name) {
    if (std::isalnum(static_cast<unsigned char>(c)))
      text += char(std::tolower(static_cast<unsigned char>(c)));
    else if (!text.empty() && text.back() != '-')
      text += '-';
  }
  while (!text.empty() && text.back() == '-') text.pop_back();
  return text.empty() ? fmt::format("class{}", index) : text;
}

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

// A grid of the run's first samples: each row is original | counterfactual | the path images.
void write_grid(const fs::path& file, const std::vector<fs::path>& rows) {
  std::vector<cv::Mat> images;
  for (const auto& row : rows) {
    const auto pair = cv::imread(row.string() + ".png"), path = cv::imread(row.string() + "-path.png");
    if (pair.empty() || path.empty() || pair.rows != path.rows) continue;
    cv::Mat joined;
    cv::hconcat(std::vector<cv::Mat>{pair, path}, joined);
    if (!images.empty() && joined.cols != images.front().cols) continue;
    images.push_back(joined);
  }
  if (images.empty()) return;
  cv::Mat grid;
  cv::vconcat(images, grid);
  std::vector<unsigned char> png;
  if (!cv::imencode(".png", grid, png)) throw Error(file, "PNG encoding failed");
  write_file_atomically(file, std::string_view(reinterpret_cast<const char*>(png.data()), png.size()));
}

struct RunContext {
  const StudyConfig& study;
  const CounterfactualModels& models;
  const CounterfactualSettings& settings;
  int64_t target = 0;
  std::string run;
  fs::path folder;
  std::vector<double> alphas;
  std::unique_ptr<PartSource> parts;  // the study's segmenter, for generated samples
  int side = 64;                      // pixels per image panel
  std::optional<ClassGeometry> geometry;  // the target's pairs (and Sigma_W for realistic)
  const Classifier* judge = nullptr;      // the study's judge, when it has one
  int64_t judge_target = -1;              // the target's index in the judge
  std::optional<RealismReference> judge_reference;  // the references' images in the judge's features
  int64_t exact_class = -1;  // the target's generator class when exact counterfactuals are drawn
};

double cosine(const torch::Tensor& a, const torch::Tensor& b) {
  const double norms = a.norm().item<double>() * b.norm().item<double>();
  return norms > 0 ? (a * b).sum().item<double>() / norms : std::nan("");
}

std::vector<std::vector<PartMeasures>> measured_parts(const RunContext& context, const torch::Tensor& images) {
  return measure_images(context.models.classifier, *context.parts, images, context.settings.batch_size).parts;
}

// A batch explained: its records, its files (name in the run's folder -> bytes) and tensors.
struct ExplainedBatch {
  std::vector<CounterfactualRecord> records;
  std::vector<std::pair<std::string, std::string>> images;
  std::string tensors_file;
  TensorMap tensors;
  ShiftOptimisation optimisation;  // its checks and times only
};

// Optimises, renders and measures one batch of samples (on any rank of a job).
ExplainedBatch explain_batch(const RunContext& context, const Samples& samples, const std::vector<int64_t>& ids) {
  ExplainedBatch batch;
  ShiftOptimisation& optimisation = batch.optimisation;
  const auto& models = context.models;
  const auto& settings = context.settings;
  const bool realistic = settings.method == "realistic";
  const auto index = torch::tensor(ids, torch::kLong);
  const auto device = models.classifier.device();
  const auto r = samples.features.index_select(0, index).to(device);
  // Samples of one batch share their source (a run of the user's images may mix them: one
  // optimisation per source).
  std::map<int64_t, std::vector<int64_t>> by_source;
  for (size_t i = 0; i < ids.size(); ++i) by_source[samples.source[size_t(ids[i])]].push_back(int64_t(i));
  const int64_t n = int64_t(ids.size()), D = r.size(1);
  auto shift = torch::zeros({n, D}, torch::TensorOptions(torch::kFloat32).device(device));
  auto steps = torch::zeros({n}, torch::kLong);
  auto success = torch::zeros({n}, torch::kBool);
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
    shift.index_copy_(0, rows_index.to(device), part.shift);
    steps.index_copy_(0, rows_index, part.steps);
    success.index_copy_(0, rows_index, part.success);
    optimisation.checks += part.checks;
    optimisation.seconds += part.seconds;
    optimisation.check_seconds += part.check_seconds;
  }

  const torch::NoGradGuard no_grad;
  const auto shifted = torch::relu(r - shift);
  const auto latents = models.network.apply(shifted);
  auto [images, logits] = render_and_classify(models, latents, settings.batch_size);
  const auto features_after = encode_images(models.classifier, images.to(models.generator.device()))
                                  .to(torch::kCPU, torch::kFloat32);
  const auto probability = logits.softmax(1);
  auto others = logits.clone();
  others.select(1, context.target).fill_(-INFINITY);
  const auto image_margin = (logits.select(1, context.target) - std::get<0>(others.max(1))).to(torch::kDouble);
  const auto realism = context.geometry ? context.geometry->reference.ratios(features_after)
                                        : torch::full({n}, std::nan(""), torch::kDouble);
  torch::Tensor judge_features, judge_probability, judge_class;
  auto judge_realism = torch::full({n}, std::nan(""), torch::kDouble);
  if (context.judge) {
    judge_features = encode_images(*context.judge, images).to(torch::kCPU, torch::kFloat32);
    const auto judge_logits = context.judge->head(judge_features.to(context.judge->device())).to(torch::kCPU);
    judge_probability = judge_logits.softmax(1).select(1, context.judge_target).to(torch::kDouble);
    judge_class = judge_logits.argmax(1);
    if (context.judge_reference) judge_realism = context.judge_reference->ratios(judge_features);
  }

  // The exact counterfactuals: the samples' own factors drawn as the target.
  torch::Tensor exact_images, exact_features;
  if (context.exact_class >= 0 && samples.z.defined()) {
    exact_images = exact_counterfactual_images(models.generator, samples.z.index_select(0, index), context.exact_class);
    exact_features = encode_images(models.classifier, exact_images).to(torch::kCPU, torch::kFloat32);
  }

  // The path r - alpha s, one sample at a time: a sample's strip is encoded as soon as it is
  // rendered, so that a batch never holds more than one sample's path images.
  const int64_t P = int64_t(context.alphas.size());
  const auto alpha = torch::tensor(context.alphas, torch::kFloat32).to(device);
  const auto originals = samples.images.index_select(0, index);
  const auto r_cpu = r.to(torch::kCPU), shift_cpu = shift.to(torch::kCPU);
  std::vector<std::vector<PartMeasures>> original_parts, counterfactual_parts, round_trip_parts, exact_parts;
  const bool measure = context.parts && samples.latents.defined();
  if (measure) {
    original_parts = measured_parts(context, originals);
    counterfactual_parts = measured_parts(context, images);
    if (exact_images.defined()) exact_parts = measured_parts(context, exact_images);
  }

  std::vector<CounterfactualRecord>& records = batch.records;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t id = ids[size_t(i)];
    CounterfactualRecord record;
    record.sample = id;
    record.source_class = samples.source[size_t(id)];
    record.latent_id = samples.latent_id[size_t(id)];
    record.origin = samples.origin[size_t(id)];
    record.success = success[i].item<bool>();
    record.steps = steps[i].item<int64_t>();
    const auto s = shift_cpu[i];
    record.shift_l1 = s.abs().sum().item<double>();
    record.shift_l2 = s.norm().item<double>();
    record.units_90 = units_carrying(s.abs(), 0.9);
    record.pixel_distance = (originals[i] - images[i]).abs().mean().item<double>();
    record.feature_distance = (features_after[i] - r_cpu[i]).norm().item<double>();
    const double r_norm = r_cpu[i].norm().item<double>();
    record.relative_feature_distance = r_norm > 0 ? record.feature_distance / r_norm : std::nan("");
    record.source_probability = probability[i][record.source_class].item<double>();
    record.target_probability = probability[i][context.target].item<double>();
    record.counterfactual_class = logits[i].argmax().item<int64_t>();
    record.realism = realism[i].item<double>();
    record.margin = image_margin[i].item<double>();
    record.judge_target_probability = std::nan("");
    if (context.judge) {
      record.judge_class = judge_class[i].item<int64_t>();
      record.judge_target_probability = judge_probability[i].item<double>();
    }
    record.judge_realism = judge_realism[i].item<double>();
    record.exact_shift_cosine =
        exact_features.defined() ? cosine(s, r_cpu[i] - exact_features[i]) : std::nan("");

    const auto path_features = torch::relu(r[i].unsqueeze(0) - alpha.view({P, 1}) * shift[i].unsqueeze(0));
    auto [path_images, path_logits] = render_and_classify(models, models.network.apply(path_features), settings.batch_size);
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
    const auto top = s.abs().topk(std::min<int64_t>(settings.top_units, D));
    for (int64_t k = 0; k < std::get<1>(top).size(0); ++k) {
      const int64_t unit = std::get<1>(top)[k].item<int64_t>();
      if (s[unit].item<double>() == 0.0) break;  // a sparse shift may move fewer units
      record.top_units.emplace_back(unit, s[unit].item<double>());
    }
    if (measure) {
      record.original_parts = original_parts[size_t(i)];
      record.counterfactual_parts = counterfactual_parts[size_t(i)];
      // alpha = 0 is the round trip G(L(r)) when the path starts there.
      if (context.alphas.front() == 0.0) record.round_trip_parts = measured_parts(context, path_images.slice(0, 0, 1))[0];
      if (!exact_parts.empty()) record.exact_parts = exact_parts[size_t(i)];
    }
    const std::string stem = fmt::format("sample-{:05d}", id);
    std::vector<torch::Tensor> panels = {originals[i].unsqueeze(0), images[i].unsqueeze(0)};
    if (exact_images.defined()) panels.push_back(exact_images[i].unsqueeze(0));
    batch.images.emplace_back(stem + ".png", encode_image_row(panels, context.side));
    std::vector<torch::Tensor> path;
    for (int64_t k = 0; k < P; ++k) path.push_back(path_images[k].unsqueeze(0));
    batch.images.emplace_back(stem + "-path.png", encode_image_row(path, context.side));
    const fs::path relative = fs::path("counterfactuals") / context.run;
    record.image = (relative / (stem + ".png")).string();
    record.path_image = (relative / (stem + "-path.png")).string();
    record.tensors = (relative / fmt::format("batch-{:05d}.safetensors", ids.front())).string();
    records.push_back(std::move(record));
  }
  batch.tensors = {{"sample", index},
                   {"features", r_cpu},
                   {"shift", shift_cpu},
                   {"shifted_features", shifted.to(torch::kCPU)},
                   {"latents", latents.to(torch::kCPU)},
                   {"counterfactual_features", features_after},
                   {"success", success}};
  if (samples.latents.defined()) batch.tensors["original_latents"] = samples.latents.index_select(0, index);
  if (exact_features.defined()) batch.tensors["exact_features"] = exact_features;
  if (judge_features.defined()) {
    // The judge's features of the counterfactuals, the originals and the exact counterfactuals:
    // what realism figures in an independent feature space are computed from.
    batch.tensors["judge_features"] = judge_features;
    batch.tensors["original_judge_features"] = encode_images(*context.judge, originals).to(torch::kCPU, torch::kFloat32);
    if (exact_images.defined())
      batch.tensors["exact_judge_features"] = encode_images(*context.judge, exact_images).to(torch::kCPU, torch::kFloat32);
  }
  batch.tensors_file = fmt::format("batch-{:05d}.safetensors", ids.front());
  return batch;
}

// Whether the study's pairs are complete and hold pairs of the classifier class `target`.
bool target_has_pairs(const StudyConfig& study, int64_t target) {
  if (!fs::exists(study.pairs_folder() / "manifest.json")) return false;
  const auto manifest = PairsManifest::load(study.pairs_folder());
  if (!manifest.complete) return false;
  for (const auto& c : manifest.classes)
    if (c.classifier_class == target && c.accepted > 0) return true;
  return false;
}

// The judge's index of a class name (case-insensitive); Error naming the judge when it lacks it.
int64_t judge_class_of(const Classifier& judge, const std::string& name) {
  try {
    return resolve_classifier_class(judge, name, "models.judge");
  } catch (const SettingError&) {
    throw Error(judge.file(), fmt::format("has no class '{}': a judge must know the classifier's classes", name));
  }
}

// The run's realism over its successful samples (every batch file written so far), in the
// judge's features when the study has one.
CounterfactualRunRealism run_realism(const RunContext& context, const fs::path& folder) {
  CounterfactualRunRealism realism;
  const bool judged = context.judge && context.judge_reference;
  realism.space = judged ? "judge" : "classifier";
  const RealismReference& reference = judged ? *context.judge_reference : context.geometry->reference;
  std::vector<torch::Tensor> rows;
  for (const auto& entry : fs::directory_iterator(folder)) {
    const auto name = entry.path().filename().string();
    if (name.rfind("batch-", 0) != 0 || entry.path().extension() != ".safetensors") continue;
    const auto content = read_safetensors(entry.path());
    const auto& tensors = content.tensors;
    const auto features = tensors.find(judged ? "judge_features" : "counterfactual_features");
    const auto success = tensors.find("success");
    if (features == tensors.end() || success == tensors.end()) continue;
    rows.push_back(features->second.index_select(0, success->second.to(torch::kBool).nonzero().squeeze(1)));
  }
  const auto features = rows.empty() ? torch::zeros({0, reference.features.size(1)}) : torch::cat(rows);
  realism.samples = features.size(0);
  const int64_t m = reference.features.size(0);
  realism.frechet_distance = realism.reference_frechet_distance = std::nan("");
  if (realism.samples >= 2 && m - realism.samples >= 2) {
    const auto references = reference.features.to(torch::kCPU);
    realism.frechet_distance = frechet_distance(features, references);
    realism.reference_frechet_distance =
        frechet_distance(references.slice(0, 0, realism.samples), references.slice(0, realism.samples, m));
  }
  return realism;
}

// Writes a batch's files into the run's folder (rank 0).
void write_batch(const RunContext& context, const ExplainedBatch& batch) {
  for (const auto& [name, png] : batch.images) write_file_atomically(context.folder / name, png);
  write_safetensors(context.folder / batch.tensors_file, batch.tensors, {{"run", context.run}});
}

// A batch as a Message, for rank 0 to write (every value as its bytes).
Message batch_message(const ExplainedBatch& batch) {
  Message m;
  m.put(int64_t(batch.records.size()));
  for (const auto& r : batch.records) {
    m.put(r.sample).put(r.source_class).put(r.latent_id).put(r.origin).put(int64_t(r.success)).put(r.steps);
    m.put(r.units_90).put(r.counterfactual_class).put(r.judge_class);
    m.put(std::vector<double>{r.shift_l1, r.shift_l2, r.pixel_distance, r.feature_distance,
                              r.relative_feature_distance, r.source_probability, r.target_probability,
                              r.crossing_alpha, r.realism, r.margin, r.judge_target_probability, r.judge_realism,
                              r.exact_shift_cosine});
    m.put(r.image).put(r.path_image).put(r.tensors).put(r.path_probability).put(r.path_class);
    std::vector<int64_t> units;
    std::vector<double> shifts;
    for (const auto& [unit, shift] : r.top_units) units.push_back(unit), shifts.push_back(shift);
    m.put(units).put(shifts);
    put_part_measures(m, {r.original_parts, r.counterfactual_parts, r.round_trip_parts, r.exact_parts});
  }
  m.put(int64_t(batch.images.size()));
  for (const auto& [name, png] : batch.images) m.put(name).put(png);
  m.put(batch.tensors_file).put(int64_t(batch.tensors.size()));
  for (const auto& [name, tensor] : batch.tensors) m.put(name).put(tensor);
  m.put(batch.optimisation.checks).put(batch.optimisation.seconds).put(batch.optimisation.check_seconds);
  return m;
}

ExplainedBatch take_batch(Message& m) {
  ExplainedBatch batch;
  for (int64_t i = m.take_int(); i > 0; --i) {
    CounterfactualRecord r;
    r.sample = m.take_int(), r.source_class = m.take_int(), r.latent_id = m.take_int();
    r.origin = m.take_string();
    r.success = m.take_int() != 0;
    r.steps = m.take_int(), r.units_90 = m.take_int(), r.counterfactual_class = m.take_int();
    r.judge_class = m.take_int();
    const auto v = m.take_doubles();
    if (v.size() != 13) throw Error("message", "a counterfactual's measures are of the wrong size");
    r.shift_l1 = v[0], r.shift_l2 = v[1], r.pixel_distance = v[2], r.feature_distance = v[3];
    r.relative_feature_distance = v[4], r.source_probability = v[5], r.target_probability = v[6];
    r.crossing_alpha = v[7], r.realism = v[8], r.margin = v[9], r.judge_target_probability = v[10];
    r.judge_realism = v[11], r.exact_shift_cosine = v[12];
    r.image = m.take_string(), r.path_image = m.take_string(), r.tensors = m.take_string();
    r.path_probability = m.take_doubles();
    r.path_class = m.take_ints();
    const auto units = m.take_ints();
    const auto shifts = m.take_doubles();
    for (size_t k = 0; k < units.size() && k < shifts.size(); ++k) r.top_units.emplace_back(units[k], shifts[k]);
    auto parts = take_part_measures(m);
    if (parts.size() != 4) throw Error("message", "a counterfactual's parts are of the wrong size");
    r.original_parts = std::move(parts[0]), r.counterfactual_parts = std::move(parts[1]);
    r.round_trip_parts = std::move(parts[2]), r.exact_parts = std::move(parts[3]);
    batch.records.push_back(std::move(r));
  }
  for (int64_t i = m.take_int(); i > 0; --i) {
    std::string name = m.take_string();
    batch.images.emplace_back(std::move(name), m.take_string());
  }
  batch.tensors_file = m.take_string();
  for (int64_t i = m.take_int(); i > 0; --i) {
    std::string name = m.take_string();
    batch.tensors[name] = m.take_tensor();
  }
  batch.optimisation.checks = m.take_int();
  batch.optimisation.seconds = m.take_double();
  batch.optimisation.check_seconds = m.take_double();
  return batch;
}

json identity_of(const StudyConfig& study, const CounterfactualModels& models, const fs::path& linking_file,
                 const std::string& origin, std::optional<int64_t> source, int64_t target,
                 const std::vector<fs::path>& images, const Samples& samples) {
  const auto& k = study.counterfactual;
  json identity = {
      {"classifier", file_fingerprint(models.classifier.file())},
      {"generator", file_fingerprint(models.generator.file())},
      {"linking", file_fingerprint(linking_file)},
      {"segmenter", study.segmenter.empty() ? "" : file_fingerprint(study.segmenter)},
      {"judge", study.judge.empty() ? "" : file_fingerprint(study.judge)},
      {"origin", origin},
      {"source", source ? json(*source) : json(nullptr)},
      {"target", target},
      {"settings",
       {{"method", k.method}, {"samples", k.samples}, {"seed", k.seed}, {"shift_seed", k.shift_seed},
        {"step_size", k.step_size}, {"adam_step_size", k.adam_step_size}, {"source_weight", k.source_weight},
        {"cosine_weight", k.cosine_weight}, {"sparsity_weight", k.sparsity_weight}, {"max_steps", k.max_steps},
        {"check_interval", k.check_interval}, {"batch_size", k.batch_size}, {"path_points", k.path_points},
        {"path_end", k.path_end}, {"top_units", k.top_units}, {"realism_neighbours", k.realism_neighbours},
        {"realism_references", k.realism_references}, {"realism_quantile", k.realism_quantile}}},
      {"pairs", {{"psi", study.pairs.psi}, {"filter", study.pairs.filter}, {"batch_size", study.pairs.batch_size}}}};
  // Named only when not the paper's, so that runs stored before the setting existed still resume.
  if (k.start != "uniform") identity["settings"]["start"] = k.start;
  if (k.method == "realistic") {
    identity["settings"]["margin"] = k.margin;
    identity["settings"]["proximity_weight"] = k.proximity_weight;
    identity["settings"]["realism_weight"] = k.realism_weight;
  }
  json files = json::array();
  for (const auto& image : images) files.push_back({{"file", image.string()}, {"fingerprint", file_fingerprint(image)}});
  identity["images"] = files;
  // The samples themselves (another device or thread count may keep others): a resumed run
  // explains the same ones.
  identity["samples"] = {{"features", tensor_fingerprint(samples.features)}, {"latent_ids", samples.latent_id}};
  return identity;
}

}  // namespace

int64_t resolve_classifier_class(const Classifier& classifier, const std::string& text, const std::string& setting) {
  const auto lower = [](std::string value) {
    for (auto& c : value) c = char(std::tolower(static_cast<unsigned char>(c)));
    return value;
  };
  for (int64_t k = 0; k < classifier.num_classes(); ++k)
    if (lower(classifier.class_name(k)) == lower(text)) return k;
  if (!text.empty() && text.find_first_not_of("0123456789") == std::string::npos && text.size() < 12) {
    const int64_t k = std::stoll(text);
    if (k < classifier.num_classes()) return k;
  }
  std::string known;
  for (int64_t k = 0; k < std::min<int64_t>(classifier.num_classes(), 12); ++k)
    known += fmt::format("{}{} {}", k ? ", " : "", k, classifier.class_name(k));
  if (classifier.num_classes() > 12) known += fmt::format(", ... ({} classes)", classifier.num_classes());
  throw SettingError(setting, fmt::format("'{}' is not a class of {} (classes: {})", text,
                                          classifier.file().string(), known));
}

json CounterfactualSummary::to_json() const {
  json units = json::array();
  for (const auto& u : relevant_units)
    units.push_back(
        {{"unit", u.unit}, {"samples", u.samples}, {"share", u.share}, {"label", u.label}, {"concepts", u.concepts}});
  return {{"run", run},
          {"folder", folder.string()},
          {"database", database.string()},
          {"method", method},
          {"from", source_name},
          {"to", target_name},
          {"samples", samples},
          {"resumed", resumed},
          {"successes", successes},
          {"success_rate", success_rate},
          {"median_steps", std::isfinite(median_steps) ? json(median_steps) : json(nullptr)},
          {"p90_steps", std::isfinite(p90_steps) ? json(p90_steps) : json(nullptr)},
          {"seconds", seconds},
          {"seconds_per_counterfactual", seconds_per_counterfactual},
          {"check_share", check_share},
          {"realism",
           {{"space", realism.space},
            {"samples", realism.samples},
            {"frechet_distance", std::isfinite(realism.frechet_distance) ? json(realism.frechet_distance) : json(nullptr)},
            {"reference_frechet_distance", std::isfinite(realism.reference_frechet_distance)
                                               ? json(realism.reference_frechet_distance)
                                               : json(nullptr)}}},
          {"relevant_units", units}};
}

CounterfactualSummary run_counterfactuals(const StudyConfig& study, const CounterfactualModels& models,
                                          const fs::path& linking_file, const CounterfactualRequest& request,
                                          const CounterfactualRunOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  check_study_settings(study);
  const auto& settings = study.counterfactual;
  const Classifier& classifier = models.classifier;
  if (classifier.num_classes() < 2) throw Error(classifier.file(), "the head gives fewer than 2 classes: nothing to cross");
  const int64_t target = resolve_classifier_class(classifier, request.to, "counterfactual.to");
  std::optional<int64_t> source;
  if (!request.from.empty()) source = resolve_classifier_class(classifier, request.from, "counterfactual.from");
  if (source && *source == target)
    throw SettingError("counterfactual.to", fmt::format("is the source class {} too: a counterfactual crosses to "
                                                        "another class",
                                                        classifier.class_name(target)));
  const bool images = !request.images.empty();
  if (!images && !source) throw SettingError("counterfactual.from", "is needed for generated samples (or give images)");

  // Everything is read and checked before anything of the run is written.
  const Samples samples = images ? image_samples(models, request.images, source, target)
                                 : generated_samples(study, models, *source);
  CounterfactualSummary summary;
  summary.method = settings.method;
  summary.source_name = source ? classifier.class_name(*source) : "images";
  summary.target_name = classifier.class_name(target);
  summary.run = fmt::format("{}-to-{}-{}{}", source && !images ? file_name_part(summary.source_name, *source) : "images",
                            file_name_part(summary.target_name, target), settings.method,
                            settings.start == "uniform" || settings.method == "realistic"
                                ? ""
                                : "-" + settings.start + "-start");
  summary.folder = study.counterfactuals_folder() / summary.run;
  summary.database = study.results_database();
  const std::string identity =
      identity_of(study, models, linking_file, images ? "images" : "generated", source, target, request.images, samples)
          .dump();

  RunContext context{study, models, settings, target, summary.run, summary.folder, {}, nullptr, 64, {}, nullptr, -1, {}, -1};
  const auto alphas = torch::linspace(0.0, settings.path_end, settings.path_points, torch::kDouble);
  for (int64_t k = 0; k < settings.path_points; ++k) context.alphas.push_back(alphas[k].item<double>());
  if (!study.segmenter.empty() && !images) context.parts = load_segmenter_parts(study.segmenter, classifier.device());
  context.side = int(std::clamp<int64_t>(models.generator.resolution(), 64, 256));
  // The target's pairs measure every counterfactual's realism (and give realistic its geometry).
  const bool realistic = settings.method == "realistic";
  if (realistic || target_has_pairs(study, target))
    context.geometry = class_geometry(study, classifier, target, realistic);
  if (realistic)
    for (const int64_t from : std::set<int64_t>(samples.source.begin(), samples.source.end()))
      context.geometry->terms_for(from, target);  // every source has pairs, before anything is written
  std::optional<Classifier> judge;
  if (!study.judge.empty()) {
    judge = Classifier::load(study.judge, classifier.device());
    context.judge = &*judge;
    context.judge_target = judge_class_of(*judge, classifier.class_name(target));
    if (context.geometry) {
      std::vector<torch::Tensor> reference;
      const auto& latents = context.geometry->reference_latents;
      for (int64_t first = 0; first < latents.size(0); first += settings.batch_size) {
        const auto part = latents.slice(0, first, std::min(latents.size(0), first + settings.batch_size));
        reference.push_back(
            encode_images(*judge, render_latents(models.generator, part.to(models.generator.device()))).to(torch::kCPU));
      }
      context.judge_reference =
          RealismReference::of(torch::cat(reference), settings.realism_neighbours, settings.realism_quantile);
    }
  }
  if (!images && knows_sample_factors(models.generator))
    context.exact_class = generator_class_of(study, models.generator, target, false);
  // A batch of sample ids -> the batch explained, on whichever rank takes it.
  const DistributedJob::Compute explain = [&](Message& item) {
    return batch_message(explain_batch(context, samples, item.take_ints()));
  };
  DistributedJob* job = options.job;
  if (job && !job->is_coordinator()) {
    job->serve(explain);
    return {};
  }

  ensure_writable_directory(study.results_database().parent_path());
  // One writer of the results database at a time: sweeps, probes and counterfactuals.
  const StudyLock lock(study.folder, "sweeps");
  ResultsDatabase results(study.results_database(), ResultsDatabase::Mode::create_or_open);
  const auto stored = results.counterfactual_run_identity(summary.run);
  if (stored && *stored != identity && !request.fresh)
    throw Error(results.file(), fmt::format("holds counterfactuals {} made with other settings, models or images; "
                                            "pass --fresh to replace them",
                                            summary.run));
  const bool new_run = !stored || *stored != identity;
  if (new_run)
    results.start_counterfactual_run({summary.run, settings.method, images ? "images" : "generated",
                                      source.value_or(-1), target, summary.source_name, summary.target_name, identity,
                                      (fs::path("counterfactuals") / summary.run).string()});
  const auto done = results.counterfactual_samples(summary.run);
  // A run with nothing committed keeps no files of an earlier one (the rows go first).
  if (done.empty()) {
    std::error_code ignored;
    fs::remove_all(summary.folder, ignored);
  }
  ensure_writable_directory(summary.folder);

  summary.resumed = int64_t(done.size());
  ProgressBar progress(fmt::format("counterfactual {}", summary.run), samples.size());
  progress.set(summary.resumed);
  // The batches still to explain: those of counterfactual.batch_size samples, less the samples
  // committed already.
  std::vector<std::vector<int64_t>> batches;
  for (int64_t first = 0; first < samples.size(); first += settings.batch_size) {
    std::vector<int64_t> ids;
    for (int64_t id = first; id < std::min(samples.size(), first + settings.batch_size); ++id)
      if (!done.count(id)) ids.push_back(id);
    if (!ids.empty()) batches.push_back(std::move(ids));
  }
  ShiftOptimisation totals;
  int64_t explained = 0;
  const auto record = [&](int64_t, Message& message) {
    const ExplainedBatch batch = take_batch(message);
    write_batch(context, batch);
    results.write_counterfactuals(summary.run, context.alphas, batch.records);
    totals.checks += batch.optimisation.checks;
    totals.seconds += batch.optimisation.seconds;
    totals.check_seconds += batch.optimisation.check_seconds;
    explained += int64_t(batch.records.size());
    progress.set(summary.resumed + explained);
    if (explained < samples.size() - summary.resumed) stop_if_requested(options.stop_requested, "counterfactual");
  };
  try {
    run_items_in_order(
        job, int64_t(batches.size()), [&](int64_t k) { return Message().put(batches[size_t(k)]); }, explain,
        record);
  } catch (const Error&) {
    // Nothing of a run that committed nothing stays behind (a NaN loss, a full disk, a lost rank).
    if (done.empty() && explained == 0) {
      results.remove_counterfactual_run(summary.run);
      std::error_code ignored;
      fs::remove_all(summary.folder, ignored);
    }
    throw;
  }
  if (job) job->finish();
  progress.finish();

  std::vector<fs::path> grid_rows;
  for (int64_t id = 0; id < std::min<int64_t>(samples.size(), 8); ++id)
    grid_rows.push_back(summary.folder / fmt::format("sample-{:05d}", id));
  write_grid(summary.folder / "grid.png", grid_rows);

  std::vector<double> steps;
  for (const auto& [succeeded, taken] : results.counterfactual_outcomes(summary.run)) {
    summary.samples += 1;
    if (succeeded) summary.successes += 1, steps.push_back(double(taken));
  }
  summary.success_rate = summary.samples ? double(summary.successes) / double(summary.samples) : 0.0;
  summary.median_steps = quantile(steps, 0.5);
  summary.p90_steps = quantile(steps, 0.9);
  summary.relevant_units = results.counterfactual_relevant_units(summary.run, 20);
  if (context.geometry) {
    summary.realism = run_realism(context, summary.folder);
    results.write_counterfactual_run_realism(summary.run, summary.realism);
  }
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  summary.seconds_per_counterfactual = explained ? summary.seconds / double(explained) : 0.0;
  summary.check_share = totals.seconds > 0 ? totals.check_seconds / totals.seconds : 0.0;
  return summary;
}

}  // namespace linkstyle
