// Fuzzes the pairs manifest reader (PairsManifest::load in src/pairs/pairs_manifest.cpp): the input is the text
// of <pairs folder>/manifest.json. linkstyle::Error is the expected outcome for bad input.
// Findings: a crash or sanitizer report (UBSan: a float-to-integer conversion out of range), any
// other exception, a hang or a huge allocation, and a manifest that loads but that save() cannot
// write or that does not load back the same.
#include "fuzz_support.hpp"
#include "linkstyle/pairs.hpp"

using namespace linkstyle;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::initialise();
  return 0;
}

namespace {

bool same_manifest(const PairsManifest& a, const PairsManifest& b) {
  if (a.models != b.models || a.settings != b.settings || a.feature_dim != b.feature_dim ||
      a.latent_dim != b.latent_dim || a.total_rows != b.total_rows || a.statistics != b.statistics ||
      a.statistics_holdout_fraction != b.statistics_holdout_fraction || a.complete != b.complete ||
      a.shards.size() != b.shards.size() || a.classes.size() != b.classes.size())
    return false;
  for (size_t i = 0; i < a.shards.size(); ++i) {
    const PairShard &s = a.shards[i], &t = b.shards[i];
    if (s.features != t.features || s.latents != t.latents || s.labels != t.labels || s.latent_ids != t.latent_ids ||
        s.rows != t.rows || s.first_row != t.first_row)
      return false;
  }
  for (size_t i = 0; i < a.classes.size(); ++i) {
    const ClassProgress &c = a.classes[i], &d = b.classes[i];
    if (c.generator_class != d.generator_class || c.classifier_class != d.classifier_class || c.name != d.name ||
        c.batches_drawn != d.batches_drawn || c.drawn != d.drawn || c.accepted != d.accepted || c.done != d.done)
      return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto file = fuzz::write_input("pairs/manifest.json", {reinterpret_cast<const char*>(data), size});
  PairsManifest manifest;
  if (!fuzz::accepts([&] { manifest = PairsManifest::load(file.parent_path()); })) return 0;

  // generate_pairs saves a loaded manifest again when it resumes.
  PairsManifest again;
  if (!fuzz::accepts([&] { manifest.save(); })) fuzz::finding("save() rejects a manifest that load() took");
  if (!fuzz::accepts([&] { again = PairsManifest::load(manifest.folder); }))
    fuzz::finding("load() rejects what save() wrote");
  // NaN compares unequal to itself; only a manifest without NaN must compare equal.
  if (!same_manifest(manifest, again) && manifest.statistics_holdout_fraction == manifest.statistics_holdout_fraction)
    fuzz::finding("save() and load() do not round-trip the manifest");
  return 0;
}
