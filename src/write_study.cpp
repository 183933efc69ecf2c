// Writing study.toml: every table with its keys commented, checked by parsing it back.
#include "linkstyle/study.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "linkstyle/atomic_file.hpp"
#include "linkstyle/errors.hpp"
#include "study_parsing.hpp"

namespace linkstyle {

namespace fs = std::filesystem;

namespace {

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

std::string models_table(const StudyConfig& c) {
  return fmt::format(
      R"([models]
classifier = {}   # TorchScript: features(x) -> r, head(r) -> logits
generator = {}    # TorchScript: mapping(z, c, psi) -> w, synthesis(w) -> images
{}{})",
      toml_path(c.folder, c.classifier), toml_path(c.folder, c.generator),
      c.segmenter.empty() ? std::string()
                          : "segmenter = " + toml_path(c.folder, c.segmenter) +
                                "   # TorchScript: segment(images) -> part logits [N, K, H, W]\n",
      c.judge.empty() ? std::string()
                      : "judge = " + toml_path(c.folder, c.judge) +
                            "   # a second classifier trained apart: the counterfactuals' judge\n");
}

std::string pairs_table(const PairsSettings& p) {
  return fmt::format(
      R"([pairs]
classes = {}          # generator classes to sample (empty: all)
{}samples_per_class = {}   # kept (correctly classified) samples per class
psi = {}                 # truncation toward the per-class mean latent
seed = {}
batch_size = {}
shard_size = {}         # rows per .npy shard
holdout_fraction = {}    # share of pairs held out to measure the fit
max_draws_per_class = {}   # give up on a class after this many draws (0: 50 x samples_per_class)
filter = "{}"        # samples kept: "argmax" (the paper), "top-k K", "min-probability P" or "none"
)",
      integer_list(p.classes),
      p.classifier_classes.empty() ? std::string()
                                   : "classifier_classes = " + integer_list(p.classifier_classes) +
                                         "   # the classifier's index of each class\n",
      p.samples_per_class, p.psi, p.seed, p.batch_size, p.shard_size, p.holdout_fraction, p.max_draws_per_class,
      p.filter);
}

std::string fit_table(const FitSettings& f) {
  return fmt::format(
      R"([fit]
method = "{}"            # "ols" (the paper's default) or "ridge"
penalty = {}            # ridge penalty; negative: choose by generalised cross-validation
rcond = {}             # OLS: relative eigenvalue cut-off for the minimum-norm solution
)",
      f.method, f.penalty, f.rcond);
}

std::string sweep_table(const SweepSettings& w) {
  return fmt::format(
      R"([sweep]
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
)",
      w.samples_per_class, w.seed, w.steps, w.direction, integer_list(w.units), w.batch_size, w.units_per_chunk,
      w.parts, w.kmeans_parts, w.null_directions, w.null_bins, w.strip_units, w.strip_samples, w.min_gain,
      w.min_correlation, w.min_specificity, w.significance);
}

std::string counterfactual_table(const CounterfactualSettings& k) {
  return fmt::format(
      R"([counterfactual]
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
      k.method, k.samples, k.seed, k.start, k.shift_seed, k.step_size, k.adam_step_size, k.source_weight,
      k.cosine_weight, k.sparsity_weight, k.max_steps, k.check_interval, k.batch_size, k.path_points, k.path_end,
      k.top_units, k.margin, k.proximity_weight, k.realism_weight, k.realism_neighbours, k.realism_references,
      k.realism_quantile);
}

}  // namespace

void write_study(const StudyConfig& c) {
  const std::string text = "# linkstyle study (see docs/study.md for every key)\n\n" + models_table(c) + "\n" +
                           pairs_table(c.pairs) + "\n" + fit_table(c.fit) + "\n" + sweep_table(c.sweep) + "\n" +
                           counterfactual_table(c.counterfactual);
  // Never write a file that load_study would reject (out-of-range values, a seed beyond int64).
  parse_study(c.folder, text);
  write_file_atomically(c.config_file(), text);
}

}  // namespace linkstyle
