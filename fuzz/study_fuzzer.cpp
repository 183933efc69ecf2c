// Fuzzes the study.toml parser (load_study in src/study.cpp, with toml++ compiled in): the input
// is the text of <folder>/study.toml. linkstyle::Error is the expected outcome for bad input.
// Findings: a crash or sanitizer report, any other exception, a hang or a huge allocation, and a
// study that loads but that write_study rejects or writes differently from what was loaded.
#include <cmath>
#include <cstring>

#include "fuzz_support.hpp"
#include "linkstyle/study.hpp"

using namespace linkstyle;
namespace fs = std::filesystem;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::initialise();
  return 0;
}

namespace {

bool same_number(double a, double b) { return a == b || (std::isnan(a) && std::isnan(b)); }

bool same_path(const fs::path& a, const fs::path& b) { return a.lexically_normal() == b.lexically_normal(); }

bool same_study(const StudyConfig& a, const StudyConfig& b) {
  const PairsSettings &p = a.pairs, &q = b.pairs;
  const SweepSettings &s = a.sweep, &t = b.sweep;
  return same_path(a.classifier, b.classifier) && same_path(a.generator, b.generator) &&
         same_path(a.segmenter, b.segmenter) && p.classes == q.classes &&
         p.classifier_classes == q.classifier_classes && p.samples_per_class == q.samples_per_class &&
         same_number(p.psi, q.psi) && p.seed == q.seed && p.batch_size == q.batch_size &&
         p.shard_size == q.shard_size && same_number(p.holdout_fraction, q.holdout_fraction) &&
         p.max_draws_per_class == q.max_draws_per_class && a.fit.method == b.fit.method &&
         same_number(a.fit.penalty, b.fit.penalty) && same_number(a.fit.rcond, b.fit.rcond) &&
         s.samples_per_class == t.samples_per_class && s.seed == t.seed && s.steps == t.steps && s.units == t.units &&
         s.batch_size == t.batch_size && s.units_per_chunk == t.units_per_chunk && s.parts == t.parts &&
         s.kmeans_parts == t.kmeans_parts && s.null_directions == t.null_directions && s.null_bins == t.null_bins &&
         s.strip_units == t.strip_units && s.strip_samples == t.strip_samples && same_number(s.min_gain, t.min_gain) &&
         same_number(s.min_correlation, t.min_correlation) && same_number(s.min_specificity, t.min_specificity) &&
         same_number(s.significance, t.significance);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto file = fuzz::write_input("study/study.toml", {reinterpret_cast<const char*>(data), size});
  const fs::path folder = file.parent_path();
  StudyConfig config;
  if (!fuzz::accepts([&] { config = load_study(folder); })) return 0;

  // A loaded study is valid: write_study must take it and write what loads back the same.
  StudyConfig again;
  if (!fuzz::accepts([&] { write_study(config); })) fuzz::finding("write_study rejects a study that load_study took");
  if (!fuzz::accepts([&] { again = load_study(folder); })) fuzz::finding("load_study rejects what write_study wrote");
  if (!same_study(config, again)) fuzz::finding("write_study and load_study do not round-trip the study");
  return 0;
}
