#include "linkstyle/study.hpp"

#include <cmath>
#include <optional>
#include <set>
#include <sstream>
#include <string_view>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <toml++/toml.h>

#include "linkstyle/atomic_file.hpp"
#include "linkstyle/errors.hpp"

namespace linkstyle {

namespace fs = std::filesystem;

namespace {

// Reads typed values from one table and remembers which keys were used, so that any other key
// can be reported as unknown.
class TableReader {
 public:
  TableReader(const fs::path& file, const toml::table* table, std::string name)
      : file_(file), table_(table), name_(std::move(name)) {}

  std::string key_path(const std::string& key) const { return name_ + "." + key; }

  template <typename T>
  bool read(const std::string& key, T& out) {
    known_.insert(key);
    if (table_ == nullptr) return false;
    const toml::node* node = table_->get(key);
    if (node == nullptr) return false;
    if constexpr (std::is_same_v<T, std::string>) {
      if (auto v = node->value_exact<std::string>()) return out = *v, true;
      fail(key, "must be a string");
    } else if constexpr (std::is_same_v<T, double>) {
      if (auto v = node->value<double>()) return out = *v, true;
      fail(key, "must be a number");
    } else if constexpr (std::is_same_v<T, bool>) {
      if (auto v = node->value_exact<bool>()) return out = *v, true;
      fail(key, "must be true or false");
    } else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
      const auto* array = node->as_array();
      if (array == nullptr) fail(key, "must be an array of integers");
      out.clear();
      for (const auto& item : *array) {
        auto v = item.value_exact<int64_t>();
        if (!v) fail(key, "must be an array of integers");
        out.push_back(*v);
      }
      return true;
    } else {
      static_assert(std::is_integral_v<T>);
      if (auto v = node->value_exact<int64_t>()) {
        if (std::is_unsigned_v<T> && *v < 0) fail(key, "must be >= 0");
        return out = static_cast<T>(*v), true;
      }
      fail(key, "must be an integer");
    }
    return false;
  }

  void reject_unknown_keys() const {
    if (table_ == nullptr) return;
    for (const auto& [key, node] : *table_) {
      (void)node;
      if (!known_.count(std::string(key.str())))
        throw Error(file_, fmt::format("unknown key '{}'", key_path(std::string(key.str()))));
    }
  }

  [[noreturn]] void fail(const std::string& key, const std::string& problem) const {
    throw Error(file_, fmt::format("'{}' {}", key_path(key), problem));
  }

 private:
  fs::path file_;
  const toml::table* table_;
  std::string name_;
  std::set<std::string> known_;
};

// The first value that a list holds twice.
std::optional<int64_t> repeated_value(const std::vector<int64_t>& values) {
  std::set<int64_t> seen;
  for (int64_t value : values)
    if (!seen.insert(value).second) return value;
  return std::nullopt;
}

constexpr int64_t kMaxCount = int64_t(1) << 40;

fs::path resolve(const fs::path& folder, const std::string& path) {
  fs::path p(path);
  return p.is_absolute() ? p : folder / p;
}

// toml++ 3.3 tests characters beyond ASCII for Unicode whitespace with undefined behaviour, in
// places that depend on how it recovers from errors. study.toml is therefore ASCII: a path beyond
// ASCII is written with \u escapes (write_study does so).
void reject_non_ascii(const fs::path& file, const std::string& text) {
  int64_t line = 1;
  for (const char ch : text) {
    if (ch == '\n') ++line;
    if (static_cast<unsigned char>(ch) >= 0x80)
      throw Error(file, fmt::format("line {}: a character beyond ASCII; write it as a \\u escape in a \"string\"",
                                    line));
  }
}

// A TOML basic string of `text` (UTF-8) that holds only ASCII: other characters as \u escapes.
std::string ascii_toml_string(const std::string& text) {
  std::string out = "\"";
  for (size_t i = 0; i < text.size();) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if (byte < 0x80) {
      if (byte == '"' || byte == '\\')
        out += std::string("\\") + text[i];
      else if (byte < 0x20 || byte == 0x7F)
        out += fmt::format("\\u{:04X}", byte);
      else
        out += text[i];
      ++i;
      continue;
    }
    const int length = byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : byte >= 0xC0 ? 2 : 0;
    if (length == 0 || i + size_t(length) > text.size()) throw Error(text, "is not valid UTF-8");
    uint32_t code = byte & (0x7F >> length);
    for (int k = 1; k < length; ++k) {
      const auto next = static_cast<unsigned char>(text[i + size_t(k)]);
      if ((next & 0xC0) != 0x80) throw Error(text, "is not valid UTF-8");
      code = code << 6 | (next & 0x3F);
    }
    out += code > 0xFFFF ? fmt::format("\\U{:08X}", code) : fmt::format("\\u{:04X}", code);
    i += size_t(length);
  }
  return out + "\"";
}

}  // namespace

namespace {

// Parses and checks the text of `folder`/study.toml.
StudyConfig parse_study(const fs::path& folder, const std::string& text) {
  const fs::path file = folder / "study.toml";
  reject_non_ascii(file, text);
  toml::table root;
  try {
    root = toml::parse(text, file.string());
  } catch (const toml::parse_error& error) {
    throw Error(file, fmt::format("line {}: {}", error.source().begin.line, error.description()));
  }
  for (const auto& [key, node] : root) {
    const std::string name(key.str());
    if (name != "models" && name != "pairs" && name != "fit" && name != "sweep" &&
        name != "counterfactual")
      throw Error(file, fmt::format("unknown table or key '{}'", name));
    if (!node.is_table()) throw Error(file, fmt::format("'{}' must be a table", name));
  }

  StudyConfig config;
  config.folder = folder;
  TableReader models(file, root["models"].as_table(), "models");
  std::string classifier, generator, segmenter, judge;
  if (!models.read("classifier", classifier)) models.fail("classifier", "is required");
  if (!models.read("generator", generator)) models.fail("generator", "is required");
  models.read("segmenter", segmenter);
  models.read("judge", judge);
  models.reject_unknown_keys();
  config.classifier = resolve(folder, classifier);
  config.generator = resolve(folder, generator);
  if (!segmenter.empty()) config.segmenter = resolve(folder, segmenter);
  if (!judge.empty()) config.judge = resolve(folder, judge);

  PairsSettings& p = config.pairs;
  TableReader pairs(file, root["pairs"].as_table(), "pairs");
  pairs.read("classes", p.classes);
  pairs.read("classifier_classes", p.classifier_classes);
  pairs.read("samples_per_class", p.samples_per_class);
  pairs.read("psi", p.psi);
  pairs.read("seed", p.seed);
  pairs.read("batch_size", p.batch_size);
  pairs.read("shard_size", p.shard_size);
  pairs.read("holdout_fraction", p.holdout_fraction);
  pairs.read("max_draws_per_class", p.max_draws_per_class);
  pairs.read("filter", p.filter);
  pairs.reject_unknown_keys();
  FitSettings& f = config.fit;
  TableReader fit(file, root["fit"].as_table(), "fit");
  fit.read("method", f.method);
  fit.read("penalty", f.penalty);
  fit.read("rcond", f.rcond);
  fit.reject_unknown_keys();
  SweepSettings& w = config.sweep;
  TableReader sweep(file, root["sweep"].as_table(), "sweep");
  sweep.read("samples_per_class", w.samples_per_class);
  sweep.read("seed", w.seed);
  sweep.read("steps", w.steps);
  sweep.read("direction", w.direction);
  sweep.read("units", w.units);
  sweep.read("batch_size", w.batch_size);
  sweep.read("units_per_chunk", w.units_per_chunk);
  sweep.read("parts", w.parts);
  sweep.read("kmeans_parts", w.kmeans_parts);
  sweep.read("null_directions", w.null_directions);
  sweep.read("null_bins", w.null_bins);
  sweep.read("strip_units", w.strip_units);
  sweep.read("strip_samples", w.strip_samples);
  sweep.read("min_gain", w.min_gain);
  sweep.read("min_correlation", w.min_correlation);
  sweep.read("min_specificity", w.min_specificity);
  sweep.read("significance", w.significance);
  sweep.reject_unknown_keys();
  CounterfactualSettings& k = config.counterfactual;
  TableReader counterfactual(file, root["counterfactual"].as_table(), "counterfactual");
  counterfactual.read("method", k.method);
  counterfactual.read("samples", k.samples);
  counterfactual.read("seed", k.seed);
  counterfactual.read("start", k.start);
  counterfactual.read("shift_seed", k.shift_seed);
  counterfactual.read("step_size", k.step_size);
  counterfactual.read("adam_step_size", k.adam_step_size);
  counterfactual.read("source_weight", k.source_weight);
  counterfactual.read("cosine_weight", k.cosine_weight);
  counterfactual.read("sparsity_weight", k.sparsity_weight);
  counterfactual.read("max_steps", k.max_steps);
  counterfactual.read("check_interval", k.check_interval);
  counterfactual.read("batch_size", k.batch_size);
  counterfactual.read("path_points", k.path_points);
  counterfactual.read("path_end", k.path_end);
  counterfactual.read("top_units", k.top_units);
  counterfactual.read("margin", k.margin);
  counterfactual.read("proximity_weight", k.proximity_weight);
  counterfactual.read("realism_weight", k.realism_weight);
  counterfactual.read("realism_neighbours", k.realism_neighbours);
  counterfactual.read("realism_references", k.realism_references);
  counterfactual.read("realism_quantile", k.realism_quantile);
  counterfactual.reject_unknown_keys();
  try {
    check_study_settings(config);
  } catch (const SettingError& error) {
    throw Error(file, fmt::format("'{}' {}", error.setting(), error.problem()));
  }
  return config;
}

}  // namespace

// Throws SettingError naming the first setting out of its range.
void check_study_settings(const StudyConfig& config) {
  const auto fail = [](const std::string& setting, const std::string& problem) {
    throw SettingError(setting, problem);
  };
  const PairsSettings& p = config.pairs;
  const FitSettings& f = config.fit;
  const SweepSettings& w = config.sweep;
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
  // Counts stay far below 2^63, so that sums and products of them cannot overflow.
  const std::pair<const char*, int64_t> counts[] = {{"pairs.samples_per_class", p.samples_per_class},
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

  if (f.method != "ols" && f.method != "ridge") fail("fit.method", "must be \"ols\" or \"ridge\"");
  if (!(f.rcond > 0.0 && f.rcond < 1.0)) fail("fit.rcond", "must be in (0, 1)");
  if (!std::isfinite(f.penalty)) fail("fit.penalty", "must be a finite number (negative: choose by cross-validation)");

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

  const CounterfactualSettings& k = config.counterfactual;
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

StudyConfig load_study(const fs::path& folder) { return parse_study(folder, read_file(folder / "study.toml")); }

namespace {

std::string toml_path(const fs::path& folder, const fs::path& model) {
  // Store paths relative to the study when they live inside it, so a study folder can move.
  std::error_code error;
  auto relative = fs::relative(model, folder, error);
  const std::string text = (!error && !relative.empty() && relative.string().rfind("..", 0) != 0)
                               ? relative.string()
                               : fs::absolute(model).string();
  return ascii_toml_string(text);
}

std::string integer_list(const std::vector<int64_t>& values) {
  return "[" + fmt::format("{}", fmt::join(values, ", ")) + "]";
}

}  // namespace

void write_study(const StudyConfig& c) {
  const auto& p = c.pairs;
  std::string text = fmt::format(
      R"(# linkstyle study (see docs/study.md for every key)

[models]
classifier = {}   # TorchScript: features(x) -> r, head(r) -> logits
generator = {}    # TorchScript: mapping(z, c, psi) -> w, synthesis(w) -> images
{}{}
[pairs]
classes = {}          # generator classes to sample (empty: all)
{}samples_per_class = {}   # kept (correctly classified) samples per class
psi = {}                 # truncation toward the per-class mean latent
seed = {}
batch_size = {}
shard_size = {}         # rows per .npy shard
holdout_fraction = {}    # share of pairs held out to measure the fit
max_draws_per_class = {}   # give up on a class after this many draws (0: 50 x samples_per_class)
filter = "{}"        # samples kept: "argmax" (the paper), "top-k K", "min-probability P" or "none"

[fit]
method = "{}"            # "ols" (the paper's default) or "ridge"
penalty = {}            # ridge penalty; negative: choose by generalised cross-validation
rcond = {}             # OLS: relative eigenvalue cut-off for the minimum-norm solution

[sweep]
samples_per_class = {}   # tuning samples per class (not filtered)
seed = {}              # their latent seed
steps = {}               # activation values per unit, from the unit's min to its max
direction = "{}"    # "isolated" (the paper's: the unit alone moves) or "conditional" (along its within-class covariance)
units = {}              # units to sweep (empty: all)
batch_size = {}
units_per_chunk = {}     # units per database transaction (what a resumed run redoes at most)
parts = "{}"          # "auto" (segmenter if set, else k-means on the generator's feature maps), "segmenter", "kmeans", "none"
kmeans_parts = {}
null_directions = {}    # random directions per norm bin (selectivity null)
null_bins = {}
strip_units = {}         # strip PNGs of this many top units
strip_samples = {}
min_gain = {}         # expressible units: cycle gain (slope of r'_i on the set value) at least this,
min_correlation = {}  # cycle correlation at least this,
min_specificity = {}  # and |change of r'_i| at least this x the mean |change| of the other units
significance = {}     # false discovery rate of the selectivity tests (over all units x concepts)

[counterfactual]
method = "{}"        # "paper" (gradient descent), "adam", "sparse" (descent + L1 penalty on the shift) or "realistic"
samples = {}          # generated samples of the source class (kept if classified as it)
seed = {}            # their latent seed
start = "{}"       # initial shift: "uniform" (the paper's s ~ U[0, 1)) or "zero"
shift_seed = {}         # seed of the uniform initial shift
step_size = {}        # gradient step of paper and sparse (the paper: 0.5)
adam_step_size = {}  # Adam's learning rate
source_weight = {}    # loss = -z_B(r - s) + source_weight z_A(r - s) - cosine_weight cos(L(r), L(r - s))
cosine_weight = {}
sparsity_weight = {}  # sparse: + sparsity_weight |s|_1
max_steps = {}       # give up after this many steps (the paper: 2000)
check_interval = {}     # classify G(L(relu(r - s))) every this many steps (the paper: 1)
batch_size = {}        # samples optimised together (a resumed run redoes at most one batch)
path_points = {}       # points of the path r - alpha s for alpha in [0, path_end]
path_end = {}
top_units = {}         # relevant units: the top units by |s| of each sample
margin = {}           # realistic: stop when z_B - max other logit of the image is at least this (and it is realistic)
proximity_weight = {} # realistic: weight of |s|^2 in the within-class Mahalanobis metric
realism_weight = {}   # realistic: weight of |s - (mean_A - mean_B)|^2 in that metric
realism_neighbours = {}  # realism: mean distance to this many nearest class-B pairs ...
realism_references = {}  # ... of the first this many class-B pairs, over B's own median
realism_quantile = {}  # realistic: realistic when the ratio is within this quantile of B's own
)",
      toml_path(c.folder, c.classifier), toml_path(c.folder, c.generator),
      c.segmenter.empty() ? std::string()
                          : "segmenter = " + toml_path(c.folder, c.segmenter) +
                                "   # TorchScript: segment(images) -> part logits [N, K, H, W]\n",
      c.judge.empty() ? std::string()
                      : "judge = " + toml_path(c.folder, c.judge) +
                            "   # a second classifier trained apart: the counterfactuals' judge\n",
      integer_list(p.classes),
      p.classifier_classes.empty() ? std::string()
                                   : "classifier_classes = " + integer_list(p.classifier_classes) +
                                         "   # the classifier's index of each class\n",
      p.samples_per_class, p.psi, p.seed, p.batch_size, p.shard_size, p.holdout_fraction, p.max_draws_per_class, p.filter,
      c.fit.method, c.fit.penalty, c.fit.rcond, c.sweep.samples_per_class, c.sweep.seed, c.sweep.steps, c.sweep.direction,
      integer_list(c.sweep.units), c.sweep.batch_size, c.sweep.units_per_chunk, c.sweep.parts, c.sweep.kmeans_parts,
      c.sweep.null_directions, c.sweep.null_bins, c.sweep.strip_units, c.sweep.strip_samples, c.sweep.min_gain,
      c.sweep.min_correlation, c.sweep.min_specificity, c.sweep.significance, c.counterfactual.method,
      c.counterfactual.samples, c.counterfactual.seed, c.counterfactual.start, c.counterfactual.shift_seed, c.counterfactual.step_size,
      c.counterfactual.adam_step_size, c.counterfactual.source_weight, c.counterfactual.cosine_weight,
      c.counterfactual.sparsity_weight, c.counterfactual.max_steps, c.counterfactual.check_interval,
      c.counterfactual.batch_size, c.counterfactual.path_points, c.counterfactual.path_end, c.counterfactual.top_units,
      c.counterfactual.margin, c.counterfactual.proximity_weight, c.counterfactual.realism_weight,
      c.counterfactual.realism_neighbours, c.counterfactual.realism_references, c.counterfactual.realism_quantile);
  // Never write a file that load_study would reject (out-of-range values, a seed beyond int64).
  parse_study(c.folder, text);
  write_file_atomically(c.config_file(), text);
}

}  // namespace linkstyle
