// Reading study.toml: its text to a StudyConfig, table by table, then the settings' checks.
#include "linkstyle/study.hpp"

#include <set>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "linkstyle/atomic_file.hpp"
#include "linkstyle/errors.hpp"
#include "study_parsing.hpp"

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
      throw Error(file,
                  fmt::format("line {}: a character beyond ASCII; write it as a \\u escape in a \"string\"", line));
  }
}

// The root table of the text: TOML that parses, holding only the five tables.
toml::table parse_root_table(const fs::path& file, const std::string& text) {
  reject_non_ascii(file, text);
  toml::table root;
  try {
    root = toml::parse(text, file.string());
  } catch (const toml::parse_error& error) {
    throw Error(file, fmt::format("line {}: {}", error.source().begin.line, error.description()));
  }
  for (const auto& [key, node] : root) {
    const std::string name(key.str());
    if (name != "models" && name != "pairs" && name != "fit" && name != "sweep" && name != "counterfactual")
      throw Error(file, fmt::format("unknown table or key '{}'", name));
    if (!node.is_table()) throw Error(file, fmt::format("'{}' must be a table", name));
  }
  return root;
}

void read_models_table(const fs::path& file, const fs::path& folder, const toml::table* table, StudyConfig& config) {
  TableReader models(file, table, "models");
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
}

void read_pairs_table(const fs::path& file, const toml::table* table, PairsSettings& p) {
  TableReader pairs(file, table, "pairs");
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
}

void read_fit_table(const fs::path& file, const toml::table* table, FitSettings& f) {
  TableReader fit(file, table, "fit");
  fit.read("method", f.method);
  fit.read("penalty", f.penalty);
  fit.read("rcond", f.rcond);
  fit.reject_unknown_keys();
}

void read_sweep_table(const fs::path& file, const toml::table* table, SweepSettings& w) {
  TableReader sweep(file, table, "sweep");
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
}

void read_counterfactual_table(const fs::path& file, const toml::table* table, CounterfactualSettings& k) {
  TableReader counterfactual(file, table, "counterfactual");
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
}

}  // namespace

// Parses and checks the text of `folder`/study.toml.
StudyConfig parse_study(const fs::path& folder, const std::string& text) {
  const fs::path file = folder / "study.toml";
  const toml::table root = parse_root_table(file, text);
  StudyConfig config;
  config.folder = folder;
  read_models_table(file, folder, root["models"].as_table(), config);
  read_pairs_table(file, root["pairs"].as_table(), config.pairs);
  read_fit_table(file, root["fit"].as_table(), config.fit);
  read_sweep_table(file, root["sweep"].as_table(), config.sweep);
  read_counterfactual_table(file, root["counterfactual"].as_table(), config.counterfactual);
  try {
    check_study_settings(config);
  } catch (const SettingError& error) {
    throw Error(file, fmt::format("'{}' {}", error.setting(), error.problem()));
  }
  return config;
}

StudyConfig load_study(const fs::path& folder) { return parse_study(folder, read_file(folder / "study.toml")); }

}  // namespace linkstyle
