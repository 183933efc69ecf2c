// The range of every study setting (check_study_settings) and the pairs filter's text.
#include "linkstyle/study.hpp"

#include <cmath>
#include <optional>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "linkstyle/errors.hpp"

namespace linkstyle {

namespace {

// The first value that a list holds twice.
std::optional<int64_t> repeated_value(const std::vector<int64_t>& values) {
  std::set<int64_t> seen;
  for (int64_t value : values)
    if (!seen.insert(value).second) return value;
  return std::nullopt;
}

constexpr int64_t kMaxCount = int64_t(1) << 40;

[[noreturn]] void fail(const std::string& setting, const std::string& problem) { throw SettingError(setting, problem); }

void check_pairs_settings(const PairsSettings& p) {
  if (p.samples_per_class <= 0) fail("pairs.samples_per_class", "must be > 0");
  if (p.batch_size <= 0) fail("pairs.batch_size", "must be > 0");
  if (p.shard_size <= 0) fail("pairs.shard_size", "must be > 0");
  if (!(p.psi >= 0.0 && p.psi <= 2.0)) fail("pairs.psi", "must be in [0, 2]");
  if (!(p.holdout_fraction >= 0.0 && p.holdout_fraction < 1.0)) fail("pairs.holdout_fraction", "must be in [0, 1)");
  if (p.max_draws_per_class < 0) fail("pairs.max_draws_per_class", "must be >= 0");
  PairsFilter::parse(p.filter);
  if (!p.classifier_classes.empty() && p.classifier_classes.size() != p.classes.size())
    fail("pairs.classifier_classes", "must have one entry per class in 'classes'");
  for (int64_t c : p.classes)
    if (c < 0) fail("pairs.classes", "must be >= 0");
  if (const auto twice = repeated_value(p.classes))
    fail("pairs.classes", fmt::format("lists class {} twice (its pairs would be drawn twice)", *twice));
}

// Counts stay far below 2^63, so that sums and products of them cannot overflow.
void check_count_limits(const StudyConfig& config) {
  const PairsSettings& p = config.pairs;
  const SweepSettings& w = config.sweep;
  const std::pair<const char*, int64_t> counts[] = {
      {"pairs.samples_per_class", p.samples_per_class},
      {"pairs.batch_size", p.batch_size},
      {"pairs.shard_size", p.shard_size},
      {"pairs.max_draws_per_class", p.max_draws_per_class},
      {"sweep.samples_per_class", w.samples_per_class},
      {"sweep.steps", w.steps},
      {"sweep.batch_size", w.batch_size},
      {"sweep.units_per_chunk", w.units_per_chunk},
      {"sweep.null_directions", w.null_directions},
      {"sweep.null_bins", w.null_bins},
      {"sweep.strip_units", w.strip_units},
      {"sweep.strip_samples", w.strip_samples},
      {"counterfactual.samples", config.counterfactual.samples},
      {"counterfactual.max_steps", config.counterfactual.max_steps},
      {"counterfactual.check_interval", config.counterfactual.check_interval},
      {"counterfactual.batch_size", config.counterfactual.batch_size},
      {"counterfactual.path_points", config.counterfactual.path_points},
      {"counterfactual.top_units", config.counterfactual.top_units},
      {"counterfactual.realism_neighbours", config.counterfactual.realism_neighbours},
      {"counterfactual.realism_references", config.counterfactual.realism_references}};
  for (const auto& [setting, value] : counts)
    if (value > kMaxCount) fail(setting, fmt::format("must be <= 2^40 ({})", kMaxCount));
}

void check_fit_settings(const FitSettings& f) {
  if (f.method != "ols" && f.method != "ridge") fail("fit.method", "must be \"ols\" or \"ridge\"");
  if (!(f.rcond > 0.0 && f.rcond < 1.0)) fail("fit.rcond", "must be in (0, 1)");
  if (!std::isfinite(f.penalty)) fail("fit.penalty", "must be a finite number (negative: choose by cross-validation)");
}

void check_sweep_settings(const StudyConfig& config) {
  const SweepSettings& w = config.sweep;
  if (w.samples_per_class <= 0) fail("sweep.samples_per_class", "must be > 0");
  if (w.steps < 2) fail("sweep.steps", "must be >= 2");
  if (w.direction != "isolated" && w.direction != "conditional")
    fail("sweep.direction", "must be \"isolated\" or \"conditional\"");
  if (w.batch_size <= 0) fail("sweep.batch_size", "must be > 0");
  if (w.units_per_chunk <= 0) fail("sweep.units_per_chunk", "must be > 0");
  if (w.parts != "auto" && w.parts != "segmenter" && w.parts != "kmeans" && w.parts != "none")
    fail("sweep.parts", "must be \"auto\", \"segmenter\", \"kmeans\" or \"none\"");
  if (w.kmeans_parts < 2 || w.kmeans_parts > 64) fail("sweep.kmeans_parts", "must be in [2, 64]");
  if (w.null_directions < 5) fail("sweep.null_directions", "must be >= 5 (the null needs 5 values to be tested)");
  if (w.null_bins < 1) fail("sweep.null_bins", "must be >= 1");
  if (w.strip_units < 0) fail("sweep.strip_units", "must be >= 0");
  if (w.strip_samples < 0) fail("sweep.strip_samples", "must be >= 0");
  if (!(w.min_gain >= 0.0)) fail("sweep.min_gain", "must be >= 0");
  if (!(w.min_correlation >= -1.0 && w.min_correlation <= 1.0)) fail("sweep.min_correlation", "must be in [-1, 1]");
  if (!(w.min_specificity >= 0.0)) fail("sweep.min_specificity", "must be >= 0");
  if (!(w.significance > 0.0 && w.significance < 1.0)) fail("sweep.significance", "must be in (0, 1)");
  if (w.parts == "segmenter" && config.segmenter.empty())
    fail("sweep.parts", "is \"segmenter\" but models.segmenter is not set");
  for (int64_t u : w.units)
    if (u < 0) fail("sweep.units", "must be >= 0");
  if (const auto twice = repeated_value(w.units)) fail("sweep.units", fmt::format("lists unit {} twice", *twice));
}

void check_counterfactual_settings(const CounterfactualSettings& k) {
  if (k.method != "paper" && k.method != "adam" && k.method != "sparse" && k.method != "realistic")
    fail("counterfactual.method", "must be \"paper\", \"adam\", \"sparse\" or \"realistic\"");
  if (k.start != "uniform" && k.start != "zero") fail("counterfactual.start", "must be \"uniform\" or \"zero\"");
  if (k.samples <= 0) fail("counterfactual.samples", "must be > 0");
  const std::pair<const char*, double> positive[] = {{"counterfactual.step_size", k.step_size},
                                                     {"counterfactual.adam_step_size", k.adam_step_size},
                                                     {"counterfactual.path_end", k.path_end},
                                                     {"counterfactual.margin", k.margin}};
  for (const auto& [setting, value] : positive)
    if (!(value > 0.0 && std::isfinite(value))) fail(setting, "must be a finite number > 0");
  const std::pair<const char*, double> weights[] = {{"counterfactual.source_weight", k.source_weight},
                                                    {"counterfactual.cosine_weight", k.cosine_weight},
                                                    {"counterfactual.sparsity_weight", k.sparsity_weight},
                                                    {"counterfactual.proximity_weight", k.proximity_weight},
                                                    {"counterfactual.realism_weight", k.realism_weight}};
  for (const auto& [setting, value] : weights)
    if (!(value >= 0.0 && std::isfinite(value))) fail(setting, "must be a finite number >= 0");
  if (k.max_steps < 1) fail("counterfactual.max_steps", "must be >= 1");
  if (k.check_interval < 1) fail("counterfactual.check_interval", "must be >= 1");
  if (k.batch_size < 1) fail("counterfactual.batch_size", "must be >= 1");
  if (k.path_points < 2) fail("counterfactual.path_points", "must be >= 2");
  if (k.top_units < 1) fail("counterfactual.top_units", "must be >= 1");
  if (!(k.proximity_weight + k.realism_weight > 0.0))
    fail("counterfactual.realism_weight", "and proximity_weight must not both be 0");
  if (k.realism_neighbours < 1) fail("counterfactual.realism_neighbours", "must be >= 1");
  if (k.realism_references < k.realism_neighbours + 2)
    fail("counterfactual.realism_references", "must be >= realism_neighbours + 2");
  if (!(k.realism_quantile > 0.0 && k.realism_quantile <= 1.0))
    fail("counterfactual.realism_quantile", "must be in (0, 1]");
}

}  // namespace

// Throws SettingError naming the first setting out of its range.
void check_study_settings(const StudyConfig& config) {
  check_pairs_settings(config.pairs);
  check_count_limits(config);
  check_fit_settings(config.fit);
  check_sweep_settings(config);
  check_counterfactual_settings(config.counterfactual);
}

PairsFilter PairsFilter::parse(const std::string& text) {
  const auto fail = [&] {
    throw SettingError("pairs.filter", fmt::format("is \"{}\"; expected \"argmax\", \"top-k K\" (K >= 1), "
                                                   "\"min-probability P\" (0 < P <= 1) or \"none\"",
                                                   text));
  };
  PairsFilter filter;
  if (text == "argmax") return filter;
  if (text == "none") {
    filter.kind = Kind::none;
    return filter;
  }
  std::istringstream words(text);
  std::string name, rest;
  if (!(words >> name)) fail();
  if (name == "top-k") {
    filter.kind = Kind::top_k;
    if (!(words >> filter.k) || (words >> rest) || filter.k < 1) fail();
  } else if (name == "min-probability") {
    filter.kind = Kind::min_probability;
    if (!(words >> filter.probability) || (words >> rest) || !(filter.probability > 0.0 && filter.probability <= 1.0))
      fail();
  } else {
    fail();
  }
  return filter;
}

}  // namespace linkstyle
