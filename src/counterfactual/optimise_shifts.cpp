// The batched optimisation of counterfactual shifts (counterfactual.hpp).
#include <chrono>
#include <cmath>
#include <numeric>

#include <fmt/format.h>
#include <torch/torch.h>

#include "linkstyle/counterfactual.hpp"
#include "linkstyle/errors.hpp"
#include "linkstyle/generation.hpp"
#include "splitmix.hpp"

namespace linkstyle {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

constexpr double kAdamBeta1 = 0.9, kAdamBeta2 = 0.999, kAdamEpsilon = 1e-8;

// The rows still being optimised, compacted: a row leaves when its image check succeeds.
// Adam keeps its moments in first/second_moment; realistic keeps there each row's feature-space
// margin goal and its realism anchor rho ([n, 1] each).
struct ActiveRows {
  std::vector<int64_t> sample;  // index into the batch
  torch::Tensor features, reference_latents, shift, first_moment, second_moment;

  void keep(const torch::Tensor& kept_rows) {  // int64 indices into the active rows (classifier device)
    features = features.index_select(0, kept_rows);
    reference_latents = reference_latents.index_select(0, kept_rows);
    shift = shift.index_select(0, kept_rows);
    first_moment = first_moment.index_select(0, kept_rows);
    second_moment = second_moment.index_select(0, kept_rows);
    const auto rows = kept_rows.to(torch::kCPU);
    std::vector<int64_t> kept;
    for (int64_t i = 0; i < rows.size(0); ++i) kept.push_back(sample[size_t(rows[i].item<int64_t>())]);
    sample = std::move(kept);
  }
};

// The loss of every active row and its gradient with respect to the shift.
torch::Tensor loss_gradient(const CounterfactualModels& models, const ActiveRows& rows, int64_t source, int64_t target,
                            const CounterfactualSettings& settings, torch::Tensor& finite) {
  const torch::AutoGradMode enable_grad(true);
  auto shift = rows.shift.detach().requires_grad_(true);
  const auto moved = rows.features - shift;
  const auto logits = models.classifier.head(moved);
  auto loss = -logits.select(1, target) + settings.source_weight * logits.select(1, source);
  if (settings.cosine_weight != 0.0)
    loss = loss - settings.cosine_weight *
                      torch::cosine_similarity(rows.reference_latents, models.network.apply(moved), 1, 1e-8);
  auto gradient = torch::autograd::grad({loss.sum()}, {shift})[0];
  // Checked with the image check, so that the loop does not wait on the device every step.
  finite = finite.logical_and(torch::isfinite(loss).all()).logical_and(torch::isfinite(gradient).all());
  return gradient;
}

// The logit margin z_target - max_{k != target} z_k of each row of logits [n, K].
torch::Tensor logit_margin(const torch::Tensor& logits, int64_t target) {
  auto others = logits.clone();
  others.select(1, target).fill_(-INFINITY);
  return logits.select(1, target) - std::get<0>(others.max(1));
}

// Realistic: one projection of each row that misses its margin goal onto the most violated
// margin constraint, linearised at relu(r - s), in the Sigma_W metric: s += t Sigma_W g with g
// the gradient of z_B - z_k* in s and t = (goal - margin) / g^T Sigma_W g.
void take_realistic_step(const CounterfactualModels& models, ActiveRows& rows, int64_t target,
                         const RealisticTerms& terms, torch::Tensor& finite) {
  const torch::AutoGradMode enable_grad(true);
  auto shift = rows.shift.detach().requires_grad_(true);
  const auto logits = models.classifier.head(torch::relu(rows.features - shift));
  auto others = logits.detach().clone();
  others.select(1, target).fill_(-INFINITY);
  const auto rival = std::get<1>(others.max(1));
  const auto margin = logits.select(1, target) - logits.gather(1, rival.unsqueeze(1)).squeeze(1);
  const auto gradient = torch::autograd::grad({margin.sum()}, {shift})[0];
  const torch::NoGradGuard no_grad;
  const auto direction = gradient.matmul(terms.covariance);
  const auto curvature = (gradient * direction).sum(1, true);
  const auto missing = (rows.first_moment - margin.detach().unsqueeze(1)).clamp_min(0.0);
  const auto length = torch::where(curvature > 1e-12, missing / curvature.clamp_min(1e-12), torch::zeros_like(missing));
  rows.shift.add_(length * direction);
  finite = finite.logical_and(torch::isfinite(margin).all()).logical_and(torch::isfinite(direction).all());
}

void take_step(ActiveRows& rows, const torch::Tensor& gradient, int64_t step, const CounterfactualSettings& settings) {
  if (settings.method == "adam") {
    rows.first_moment.mul_(kAdamBeta1).add_(gradient, 1.0 - kAdamBeta1);
    rows.second_moment.mul_(kAdamBeta2).addcmul_(gradient, gradient, 1.0 - kAdamBeta2);
    const double correction1 = 1.0 - std::pow(kAdamBeta1, double(step));
    const double correction2 = 1.0 - std::pow(kAdamBeta2, double(step));
    const auto denominator = rows.second_moment.div(correction2).sqrt_().add_(kAdamEpsilon);
    rows.shift.addcdiv_(rows.first_moment, denominator, -settings.adam_step_size / correction1);
    return;
  }
  rows.shift.add_(gradient, -settings.step_size);
  if (settings.method == "sparse") {
    // The proximal step of step_size * sparsity_weight * |s|_1: soft thresholding.
    const double threshold = settings.step_size * settings.sparsity_weight;
    rows.shift = rows.shift.sign() * (rows.shift.abs() - threshold).clamp_min_(0.0);
  }
}

}  // namespace

torch::Tensor initial_shifts(uint64_t seed, const std::vector<int64_t>& sample_ids, int64_t feature_dim) {
  std::vector<torch::Tensor> rows;
  for (const int64_t id : sample_ids) {
    auto generator = at::detail::createCPUGenerator(splitmix64(splitmix64(seed) ^ static_cast<uint64_t>(id)));
    rows.push_back(torch::rand({1, feature_dim}, generator, torch::kFloat32));
  }
  return rows.empty() ? torch::zeros({0, feature_dim}) : torch::cat(rows);
}

namespace {

void check_optimisation_inputs(const CounterfactualModels& models, const torch::Tensor& features,
                               const torch::Tensor& initial_shift, const CounterfactualSettings& settings,
                               const RealisticTerms* realistic) {
  if (settings.method == "realistic" && (!realistic || !realistic->covariance.defined() || !realistic->reference))
    throw Error(models.classifier.file(), "the realistic method needs the pairs' within-class covariance, class means "
                                             "and class-B references");
  const Classifier& classifier = models.classifier;
  if (features.dim() != 2 || features.size(1) != classifier.feature_dim() || initial_shift.sizes() != features.sizes())
    throw Error(classifier.file(), fmt::format("counterfactual features must be [n, {}] with a shift of the same shape",
                                               classifier.feature_dim()));
  if (!torch::isfinite(features).all().item<bool>())
    throw Error(classifier.file(), "features contain NaN/Inf: no counterfactual can start from them");
}

// Every row active, at its initial shift; realistic rows start at the unconstrained minimum of
// the two quadratic terms, rho (mean_A - mean_B), with the margin goal at the margin.
ActiveRows start_rows(const CounterfactualModels& models, const torch::Tensor& features, const torch::Tensor& shift,
                      const CounterfactualSettings& settings, const RealisticTerms* realistic) {
  const auto device = models.classifier.device();
  const int64_t n = features.size(0);
  ActiveRows rows;
  rows.sample.resize(size_t(n));
  std::iota(rows.sample.begin(), rows.sample.end(), int64_t(0));
  rows.features = features.to(device, torch::kFloat32);
  rows.reference_latents = models.network.apply(rows.features);
  rows.shift = shift.clone();
  rows.first_moment = torch::zeros_like(rows.shift);
  rows.second_moment = torch::zeros_like(rows.shift);
  const double rho = settings.realism_weight / (settings.proximity_weight + settings.realism_weight);
  if (settings.method == "realistic") {
    rows.shift.add_(rho * realistic->class_shift.to(device).unsqueeze(0));
    rows.first_moment = torch::full({n, 1}, settings.margin, rows.shift.options());
    rows.second_moment = torch::full({n, 1}, rho, rows.shift.options());
  }
  return rows;
}

// The realistic stop rule: class B with the margin, and realistic. A row short of the margin raises
// its feature-space goal by the shortfall (at least a quarter of the margin); a row with the margin
// but unrealistic moves its anchor rho halfway to 1. Returns the rows that give up (CPU bool):
// with the anchor at the class-mean translation already, an unrealistic image has nowhere left to go.
torch::Tensor apply_realistic_stop_rule(ActiveRows& rows, const torch::Tensor& logits, const torch::Tensor& image_features,
                                        int64_t target, const RealisticTerms& realistic,
                                        const CounterfactualSettings& settings, torch::Tensor& reached) {
  const auto device = rows.shift.device();
  const auto image_margin = logit_margin(logits, target).to(torch::kCPU, torch::kDouble);
  const auto realistic_row = realistic.reference->ratios(image_features) <= realistic.reference->threshold;
  const auto has_margin = image_margin >= settings.margin;
  reached = has_margin.logical_and(realistic_row);
  const auto shortfall = (settings.margin - image_margin).clamp_min(0.25 * settings.margin).to(device, torch::kFloat32);
  const auto raise = has_margin.logical_not().to(device).unsqueeze(1);
  rows.first_moment.add_(torch::where(raise, shortfall.unsqueeze(1), torch::zeros_like(rows.first_moment)));
  const auto unrealistic = has_margin.logical_and(realistic_row.logical_not());
  const auto given_up = unrealistic.logical_and((rows.second_moment.squeeze(1) >= 0.999).to(torch::kCPU));
  const auto move = unrealistic.to(device).unsqueeze(1);
  const auto new_rho = torch::where(move, (rows.second_moment + 1.0) / 2.0, rows.second_moment);
  rows.shift.add_((new_rho - rows.second_moment) * realistic.class_shift.to(device).unsqueeze(0));
  rows.second_moment = new_rho;
  return given_up;
}

// Records the rows that reached the target or gave up at `step`, copies their shift (as it was at
// this check; every row's at the last step) into the result and drops them from the active rows.
void retire_rows(ActiveRows& rows, const torch::Tensor& reached, const torch::Tensor& given_up, int64_t step,
                 bool last, ShiftOptimisation& result) {
  const auto device = rows.shift.device();
  auto* steps = result.steps.data_ptr<int64_t>();
  auto* success = result.success.data_ptr<bool>();
  const auto* reached_row = reached.data_ptr<bool>();
  const auto* given_up_row = given_up.data_ptr<bool>();
  std::vector<int64_t> kept, finished;
  for (size_t i = 0; i < rows.sample.size(); ++i) {
    if (given_up_row[i] && !reached_row[i]) {
      steps[rows.sample[i]] = step;
      finished.push_back(int64_t(i));
    } else {
      (reached_row[i] ? finished : kept).push_back(int64_t(i));
    }
  }
  for (const int64_t i : finished)
    if (reached_row[i]) steps[rows.sample[size_t(i)]] = step, success[rows.sample[size_t(i)]] = true;
  if (finished.empty() && !last) return;
  const auto leaving = last ? torch::arange(int64_t(rows.sample.size())) : torch::tensor(finished, torch::kLong);
  std::vector<int64_t> leaving_samples;
  for (int64_t i = 0; i < leaving.size(0); ++i) leaving_samples.push_back(rows.sample[size_t(leaving[i].item<int64_t>())]);
  result.shift.index_copy_(0, torch::tensor(leaving_samples, torch::kLong).to(device),
                           rows.shift.index_select(0, leaving.to(device)));
  if (!last) rows.keep(torch::tensor(kept, torch::kLong).to(device));
}

}  // namespace

ShiftOptimisation optimise_shifts(const CounterfactualModels& models, const torch::Tensor& features, int64_t source,
                                  int64_t target, const torch::Tensor& initial_shift,
                                  const CounterfactualSettings& settings, const RealisticTerms* realistic,
                                  const std::function<void(int64_t step)>& on_step) {
  const auto start = Clock::now();
  const bool is_realistic = settings.method == "realistic";
  check_optimisation_inputs(models, features, initial_shift, settings, realistic);
  const Classifier& classifier = models.classifier;
  const auto device = classifier.device();
  const int64_t n = features.size(0);
  const torch::NoGradGuard no_grad;
  ShiftOptimisation result;
  result.shift = initial_shift.to(device, torch::kFloat32).clone();
  result.steps = torch::full({n}, settings.max_steps, torch::kLong);
  result.success = torch::zeros({n}, torch::kBool);
  ActiveRows rows = start_rows(models, features, result.shift, settings, realistic);
  auto finite = torch::ones({}, torch::TensorOptions(torch::kBool).device(device));

  for (int64_t step = 1; step <= settings.max_steps && !rows.sample.empty(); ++step) {
    if (is_realistic)
      take_realistic_step(models, rows, target, *realistic, finite);
    else
      take_step(rows, loss_gradient(models, rows, source, target, settings, finite), step, settings);
    if (on_step) on_step(step);
    if (step % settings.check_interval != 0 && step != settings.max_steps) continue;
    const auto check_start = Clock::now();
    result.checks += 1;
    if (!finite.item<bool>())
      throw Error(classifier.file(), fmt::format("the counterfactual loss or its gradient became NaN/Inf by step {} "
                                                 "({} -> {}): the head's logits are not finite there",
                                                 step, classifier.class_name(source), classifier.class_name(target)));
    const auto latents = models.network.apply(torch::relu(rows.features - rows.shift));
    const auto images = render_latents(models.generator, latents.to(models.generator.device()));
    const auto image_features = encode_images(classifier, images);
    const auto logits = classifier.head(image_features);
    auto reached = (logits.argmax(1) == target).to(torch::kCPU);
    auto given_up = torch::zeros_like(reached);
    if (is_realistic) given_up = apply_realistic_stop_rule(rows, logits, image_features, target, *realistic, settings, reached);
    retire_rows(rows, reached, given_up, step, step == settings.max_steps, result);
    result.check_seconds += seconds_since(check_start);
  }
  result.seconds = seconds_since(start);
  return result;
}

}  // namespace linkstyle
