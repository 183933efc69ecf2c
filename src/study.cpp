#include "linkstyle/study.hpp"

#include <set>
#include <sstream>

#include <fmt/format.h>
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
      if (auto v = node->value_exact<int64_t>()) return out = static_cast<T>(*v), true;
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

}  // namespace

namespace {

// Parses and checks the text of `folder`/study.toml.
StudyConfig parse_study(const fs::path& folder, const std::string& text) {
  const fs::path file = folder / "study.toml";
  toml::table root;
  try {
    root = toml::parse(text, file.string());
  } catch (const toml::parse_error& error) {
    throw Error(file, fmt::format("line {}: {}", error.source().begin.line, error.description()));
  }
  for (const auto& [key, node] : root) {
    const std::string name(key.str());
    if (name != "models" && name != "pairs" && name != "fit")
      throw Error(file, fmt::format("unknown table or key '{}'", name));
    if (!node.is_table()) throw Error(file, fmt::format("'{}' must be a table", name));
  }

  StudyConfig config;
  config.folder = folder;
  TableReader models(file, root["models"].as_table(), "models");
  std::string classifier, generator;
  if (!models.read("classifier", classifier)) models.fail("classifier", "is required");
  if (!models.read("generator", generator)) models.fail("generator", "is required");
  models.reject_unknown_keys();
  config.classifier = resolve(folder, classifier);
  config.generator = resolve(folder, generator);

  PairsSettings& p = config.pairs;
  TableReader pairs(file, root["pairs"].as_table(), "pairs");
  pairs.read("classes", p.classes);
  pairs.read("classifier_classes", p.classifier_classes);
  pairs.read("samples_per_class", p.samples_per_class);
  pairs.read("psi", p.psi);
  int64_t seed = 0;
  if (pairs.read("seed", seed)) {
    if (seed < 0) pairs.fail("seed", "must be >= 0");
    p.seed = static_cast<uint64_t>(seed);
  }
  pairs.read("batch_size", p.batch_size);
  pairs.read("shard_size", p.shard_size);
  pairs.read("holdout_fraction", p.holdout_fraction);
  pairs.read("max_draws_per_class", p.max_draws_per_class);
  pairs.reject_unknown_keys();
  if (p.samples_per_class <= 0) pairs.fail("samples_per_class", "must be > 0");
  if (p.batch_size <= 0) pairs.fail("batch_size", "must be > 0");
  if (p.shard_size <= 0) pairs.fail("shard_size", "must be > 0");
  if (!(p.psi >= 0.0 && p.psi <= 2.0)) pairs.fail("psi", "must be in [0, 2]");
  if (!(p.holdout_fraction >= 0.0 && p.holdout_fraction < 1.0))
    pairs.fail("holdout_fraction", "must be in [0, 1)");
  if (p.max_draws_per_class < 0) pairs.fail("max_draws_per_class", "must be >= 0");
  if (!p.classifier_classes.empty() && p.classifier_classes.size() != p.classes.size())
    pairs.fail("classifier_classes", "must have one entry per class in 'classes'");
  for (int64_t c : p.classes)
    if (c < 0) pairs.fail("classes", "must be >= 0");

  FitSettings& f = config.fit;
  TableReader fit(file, root["fit"].as_table(), "fit");
  fit.read("method", f.method);
  fit.read("penalty", f.penalty);
  fit.read("rcond", f.rcond);
  fit.reject_unknown_keys();
  if (f.method != "ols" && f.method != "ridge") fit.fail("method", "must be \"ols\" or \"ridge\"");
  if (!(f.rcond > 0.0 && f.rcond < 1.0)) fit.fail("rcond", "must be in (0, 1)");
  return config;
}

}  // namespace

StudyConfig load_study(const fs::path& folder) {
  return parse_study(folder, read_file(folder / "study.toml"));
}

namespace {

std::string toml_path(const fs::path& folder, const fs::path& model) {
  // Store paths relative to the study when they live inside it, so a study folder can move.
  std::error_code error;
  auto relative = fs::relative(model, folder, error);
  const std::string text =
      (!error && !relative.empty() && relative.string().rfind("..", 0) != 0) ? relative.string()
                                                                             : fs::absolute(model).string();
  std::ostringstream quoted;
  quoted << toml::value<std::string>(text);
  return quoted.str();
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

[pairs]
classes = {}          # generator classes to sample (empty: all)
{}samples_per_class = {}   # kept (correctly classified) samples per class
psi = {}                 # truncation toward the per-class mean latent
seed = {}
batch_size = {}
shard_size = {}         # rows per .npy shard
holdout_fraction = {}    # share of pairs held out to measure the fit
max_draws_per_class = {}   # give up on a class after this many draws (0: 50 x samples_per_class)

[fit]
method = "{}"            # "ols" (the paper's default) or "ridge"
penalty = {}            # ridge penalty; negative: choose by generalised cross-validation
rcond = {}             # OLS: relative eigenvalue cut-off for the minimum-norm solution
)",
      toml_path(c.folder, c.classifier), toml_path(c.folder, c.generator), integer_list(p.classes),
      p.classifier_classes.empty()
          ? std::string()
          : "classifier_classes = " + integer_list(p.classifier_classes) + "   # the classifier's index of each class\n",
      p.samples_per_class, p.psi, p.seed, p.batch_size, p.shard_size, p.holdout_fraction,
      p.max_draws_per_class, c.fit.method, c.fit.penalty, c.fit.rcond);
  // Never write a file that load_study would reject (out-of-range values, a seed beyond int64).
  parse_study(c.folder, text);
  write_file_atomically(c.config_file(), text);
}

}  // namespace linkstyle
