// linkstyle/ground_truth.hpp
//
// WHAT THIS REPRESENTS
//   The check of sweeps against known answers on the shapes world (docs/sweeps.md):
//   - a dataset probe over rendered shapes images:
//     - the correlation of each unit's activation with each of the 17 factors *within* classes
//       (both standardised within each class, then pooled);
//     - the correlation with each class's membership (the 0/1 indicator, over all images);
//     - the partial effect of each unit on each factor: the ridge regression of the within-class
//       standardised factors on all within-class standardised units, which is what a sweep asks
//       (one unit moves, the others stay);
//     - the probe label of a unit: the factor or class with the largest |correlation|;
//   - label agreement: the share of units whose probe label's group is among the groups their
//     sweep label reflects (cap hue -> main_hue; wing area -> scale or class:bird, since a part
//     grows with the object and appears with its class), against chance = the agreement expected
//     when the two labels are paired at random (both marginals kept), with a permutation p-value;
//   - factor signal: per factor with a measurable concept, the correlation over units between
//     the change the probe predicts for a unit's sweep (partial effect x range / unit SD, in
//     factor SDs) and the change the sweep measured (the factor's concept on each sample's own
//     class parts), with a permutation p-value;
//   - the chain (where a sweep keeps or loses the ground truth), per measured factor: the same
//     factor's concept is measured with the study's segmenter on rendered and on generated
//     images, and the partial effects of the units on it are compared over units, link by link:
//     measurement (true factor vs measured concept, rendered images), generator (rendered vs
//     generated images, same measure), sweep (generated images' partial effects vs the sweep's
//     measured change) and end to end (the factor signal); each concept probe's reliability is
//     its correlation with a replicate on other images.
// REQUIRES
//   A classifier that takes shapes images; sweep labels as (part name, measure) with part names
//   from ShapesWorld::part_names(); for the factor signal, a complete sweep database of the study
//   whose parts are the shapes world's; for the concept probes, a segmenter of the shapes world's
//   parts and, for generated images, a generator whose classes are the shapes world's.
// ENSURES
//   Deterministic for a seed and thread count. Only sweep_factor_changes reads (the database).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "linkstyle/models.hpp"
#include "linkstyle/part_measures.hpp"
#include "linkstyle/results_database.hpp"

namespace linkstyle {

class ResultsDatabase;

struct UnitProbe {
  std::vector<std::string> factor_names;  // ShapesWorld::factor_names(), then class_factor(c) per class
  torch::Tensor correlation;              // [D, 17 + C] float64: within-class factors, then membership
  torch::Tensor partial;                  // [D, 17] float64: standardised partial effects
  torch::Tensor feature_sd;               // [D] float64: each unit's within-class standard deviation
  std::vector<int64_t> best_factor;       // per unit, over every column
  std::vector<double> best_correlation;   // signed
};

struct ShapesBatch;

// Probes every unit over rendered shapes images (ShapesWorld::render_class_balanced).
UnitProbe probe_shapes_units(const Classifier& classifier, const ShapesBatch& rendered, int64_t batch_size = 256);
// Renders `images` class-balanced shapes images at `resolution` (seed `seed`) and probes every unit.
UnitProbe probe_shapes_units(const Classifier& classifier, int64_t images, uint64_t seed, int64_t resolution,
                             int64_t batch_size = 256);

// The probe's name for membership of a class: "class:bird".
std::string class_factor(const std::string& class_name);
// The group a shapes factor belongs to ("scale", "main_hue", ..., "class:bird").
std::string factor_group(const std::string& factor);
// The factor groups a concept reflects (none for some, e.g. the background's centre).
std::vector<std::string> concept_groups(const std::string& part_name, const std::string& measure);

// Concept groups paired with factor groups, unit by unit: how many pairs agree (the factor's
// group is among the concept's), how many are expected to agree when the pairing is random with
// both marginals kept (sum over all i, j of agree(i, j) / n), and the share of `permutations`
// random pairings that agree at least as often (p, with the observed pairing counted once).
struct PairedAgreement {
  int64_t agreeing = 0;
  double expected = 0, p_value = 1;
};
PairedAgreement paired_group_agreement(const std::vector<std::vector<std::string>>& concept_groups,
                                       const std::vector<std::string>& factor_groups, uint64_t seed,
                                       int64_t permutations);

struct Agreement {
  int64_t units = 0, agreeing = 0;
  double agreement = 0, chance = 0, p_value = 1;
  nlohmann::json per_unit = nlohmann::json::array();
  nlohmann::json to_json() const;
};

// With factors_only, each unit's probe label is its strongest within-class factor (classes left out).
Agreement label_agreement(const UnitProbe& probe, const std::vector<LabelledUnit>& units, uint64_t seed,
                          int64_t permutations = 10000, bool factors_only = false);

// The factors whose change a sweep measures, with the concept that measures each: the part is the
// sample's class's main or secondary part, or the background.
struct FactorConcept {
  std::string factor, role, measure;  // role: main, secondary or background
  // The part that plays the role in an image of class `label` (0 for the background).
  int64_t part_of_class(int64_t label) const;
};
const std::vector<FactorConcept>& measured_factors();

struct SweepFactorChanges {
  torch::Tensor change;  // [D, measured_factors().size()] float64, mean over samples, NaN where none
  torch::Tensor even_samples, odd_samples;  // the same over the even and the odd tuning samples
  torch::Tensor range;   // [D] float64: max - min of the unit's sweep, NaN for units not swept
};

// Reads a complete sweep database (parts = the shapes world's) of a classifier with `units` units
// at image side `side`, and averages each factor's concept change over the samples.
SweepFactorChanges sweep_factor_changes(ResultsDatabase& results, int64_t units, int64_t side);

struct FactorSignal {
  std::string factor, measured_as;  // e.g. "background_value", "background luminance"
  int64_t units = 0;
  double correlation = 0, p_value = 1;
};

// The change the probe predicts for each unit's sweep, per measured factor [D, F] float64 (in
// factor SDs): the partial effect (the paper's isolated sweep: one unit moves, the others stay)
// or, with `encoding`, the within-class correlation (a conditional sweep: the others follow the
// unit as they do within a class) x the unit's range / its within-class SD.
torch::Tensor predicted_factor_changes(const UnitProbe& probe, const SweepFactorChanges& changes, bool encoding);

// Whole-profile identification: does a unit's measured profile (its sweep's change of every
// measured factor's concept) pick out its own predicted profile among all units'? Each factor
// is standardised over the units (NaN entries count as its mean), the similarity of unit u's
// measured profile with unit v's predicted one is their cosine, and u's rank is 1 + the number
// of units v != u whose similarity is larger. Units without a finite measured or predicted
// entry are left out. Chance: top-1 = 1/U, top-10 = min(10, U)/U, median rank = (U + 1)/2; each
// p is the share of `permutations` random pairings (of units with predicted profiles) that do
// at least as well, with the observed pairing counted once.
struct ProfileIdentification {
  int64_t units = 0;
  double top1 = 0, top10 = 0, median_rank = 0;
  double chance_top1 = 0, chance_top10 = 0, chance_median_rank = 0;
  double p_top1 = 1, p_top10 = 1, p_median_rank = 1;
  std::vector<int64_t> unit, rank;  // per unit identified
  nlohmann::json to_json() const;
};
ProfileIdentification identify_profiles(const torch::Tensor& predicted, const torch::Tensor& measured, uint64_t seed,
                                        int64_t permutations = 2000);

// With `encoding`, against predicted_factor_changes(..., true) (for conditional sweeps).
std::vector<FactorSignal> factor_signal(const UnitProbe& probe, const SweepFactorChanges& changes, uint64_t seed,
                                        int64_t permutations = 2000, bool encoding = false);

// The level of each measured factor's concept on each image [N, measured_factors().size()]
// float64: the measure of the image's own class part (main or secondary) or of the background:
// area (fraction of the image), luminance (/85), entropy (bits), hue (degrees; parts with mean
// saturation >= kMinimumSaturationForHue), saturation, angle (degrees), centre (fraction of the
// side). NaN where the part is missing or under minimum_part_area(side). `classes` [N] index
// ShapesWorld::class_names().
torch::Tensor concept_levels(const std::vector<std::vector<PartMeasures>>& parts, const torch::Tensor& classes,
                             int64_t side);

// The partial effects of every unit on every concept level, as UnitProbe::partial (units and
// levels standardised within classes, ridge 1e-2), each level over the images where it is
// defined; hue and angle levels are first centred on their circular mean within each class.
struct ConceptProbe {
  torch::Tensor partial;        // [D, F] float64, F = measured_factors().size()
  torch::Tensor feature_sd;     // [D] float64: each unit's within-class standard deviation
  std::vector<int64_t> images;  // per level: the images it was defined on
};
ConceptProbe probe_concept_levels(const torch::Tensor& features, const torch::Tensor& levels,
                                  const torch::Tensor& classes);

class PartSource;

// The concept probe over rendered images (their classes), measured with `parts`.
ConceptProbe probe_rendered_concepts(const Classifier& classifier, const PartSource& parts, const ShapesBatch& rendered,
                                     int64_t batch_size = 256);
// The concept probe over `images` generated images, class-balanced over the shapes classes
// (generator class c = shapes class c), latents drawn as the pairs draw them (seed, psi).
ConceptProbe probe_generated_concepts(const Classifier& classifier, const Generator& generator, const PartSource& parts,
                                      int64_t images, uint64_t seed, double psi, int64_t batch_size = 256);

// A correlation over units with its permutation p-value (two-sided).
struct UnitProfileMatch {
  int64_t units = 0;
  double correlation = 0, p_value = 1;
};

struct FactorChain {
  std::string factor, measured_as;
  UnitProfileMatch measurement;  // rendered images: true factor vs the measured concept
  UnitProfileMatch generator;    // the measured concept: rendered vs generated images
  UnitProfileMatch sweep;        // generated images' predicted change vs the sweep's measured change
  UnitProfileMatch end_to_end;   // the factor signal
  // Split-half ceilings: each concept probe against its replicate on fresh images (another seed),
  // and the sweep's measured change over the even tuning samples against the odd ones.
  UnitProfileMatch rendered_reliability, generated_reliability, sweep_reliability;
};

// The replicates are the same concept probes on other images (for the reliabilities).
std::vector<FactorChain> factor_chain(const UnitProbe& truth, const ConceptProbe& rendered,
                                      const ConceptProbe& generated, const ConceptProbe& rendered_replicate,
                                      const ConceptProbe& generated_replicate, const SweepFactorChanges& changes,
                                      uint64_t seed, int64_t permutations = 2000);

}  // namespace linkstyle
