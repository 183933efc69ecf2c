#include "linkstyle/probe.hpp"

#include <algorithm>
#include <map>
#include <optional>

#include <fmt/format.h>
#include <torch/torch.h>

#include "linkstyle/atomic_file.hpp"
#include "linkstyle/errors.hpp"
#include "linkstyle/ground_truth.hpp"
#include "linkstyle/part_sources.hpp"
#include "linkstyle/planted_unit_scoring.hpp"
#include "linkstyle/results_database.hpp"
#include "linkstyle/runtime.hpp"
#include "linkstyle/study_lock.hpp"
#include "linkstyle/worlds/shapes.hpp"

namespace linkstyle {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

void check_probe_settings(const ProbeSettings& settings) {
  if (settings.images < 12) throw SettingError("probe.images", "must be >= 12");
  if (settings.top < 0) throw SettingError("probe.top", "must be >= 0");
}

void check_probe_inputs(const StudyConfig& study, const Classifier& classifier, ResultsDatabase& results) {
  if (!results.is_complete()) throw Error(results.file(), "the sweep is not complete (run `linkstyle sweep`)");
  if (classifier.num_classes() != int64_t(ShapesWorld::class_names().size()))
    throw Error(study.classifier,
                fmt::format("has {} classes; probe needs a classifier of the shapes world ({} classes)",
                            classifier.num_classes(), ShapesWorld::class_names().size()));
  if (results.part_names() != ShapesWorld::part_names())
    throw Error(results.file(),
                "its parts are not the shapes world's (sweep with the shapes segmenter: "
                "models.segmenter = models/shapes/segmenter.pt)");
  if (study.segmenter.empty())
    throw Error(study.config_file(), "probe measures images with the study's segmenter: set models.segmenter");
}

// The labelled expressible units to score (the first `top` when top > 0) and how many are expressible.
std::pair<std::vector<LabelledUnit>, int64_t> units_to_score(ResultsDatabase& results, int64_t top) {
  const auto expressible = results.expressible_units();
  std::vector<LabelledUnit> units;
  for (const auto& unit : expressible)
    if (!unit.part.empty() && (!top || int64_t(units.size()) < top)) units.push_back(unit);
  if (units.empty()) throw Error(results.file(), "no expressible unit has a significant concept: nothing to score");
  return {units, int64_t(expressible.size())};
}

// A correlation over units with its p-value and its Bonferroni correction over `tests` factors.
json match_json(const UnitProfileMatch& m, double tests) {
  return {{"units", m.units},
          {"correlation", m.correlation},
          {"p_value", m.p_value},
          {"p_bonferroni", std::min(1.0, m.p_value * tests)}};
}

json chain_json(const std::vector<FactorChain>& chain) {
  const double tests = double(chain.size());
  json links = json::array();
  for (const auto& link : chain)
    links.push_back({{"factor", link.factor},
                     {"measured_as", link.measured_as},
                     {"measurement", match_json(link.measurement, tests)},
                     {"generator", match_json(link.generator, tests)},
                     {"sweep", match_json(link.sweep, tests)},
                     {"end_to_end", match_json(link.end_to_end, tests)},
                     {"rendered_reliability", match_json(link.rendered_reliability, tests)},
                     {"generated_reliability", match_json(link.generated_reliability, tests)},
                     {"sweep_reliability", match_json(link.sweep_reliability, tests)}});
  return links;
}

std::vector<FactorChain> probe_chain(const StudyConfig& study, const Classifier& classifier, const Generator& generator,
                                     const ProbeSettings& settings, const UnitProbe& probe, const ShapesWorld& world,
                                     const ShapesBatch& rendered, const SweepFactorChanges& changes) {
  // The chain: the same concepts measured on rendered and on generated images.
  const auto segmenter = load_segmenter_parts(study.segmenter, generator.device());
  // Replicates on other images (seed + 1) bound what each comparison can reach.
  const auto generated_concepts = [&](uint64_t seed) {
    return probe_generated_concepts(classifier, generator, *segmenter, settings.images, seed, study.pairs.psi);
  };
  return factor_chain(
      probe, probe_rendered_concepts(classifier, *segmenter, rendered), generated_concepts(settings.seed),
      probe_rendered_concepts(classifier, *segmenter, world.render_class_balanced(settings.images, settings.seed + 1)),
      generated_concepts(settings.seed + 1), changes, settings.seed);
}

// Whole-profile identification against both predictions (partial effects and encodings).
json profile_json(const UnitProbe& probe, const SweepFactorChanges& changes, uint64_t seed) {
  json out;
  for (const bool encoding : {false, true})
    out[encoding ? "encoding" : "partial"] =
        identify_profiles(predicted_factor_changes(probe, changes, encoding), changes.change, seed).to_json();
  return out;
}

json signal_json(const std::vector<FactorSignal>& signal) {
  json out = json::array();
  for (const auto& s : signal) {
    auto row = match_json({s.units, s.correlation, s.p_value}, double(signal.size()));
    row["factor"] = s.factor;
    row["measured_as"] = s.measured_as;
    out.push_back(row);
  }
  return out;
}

// The planted units' sweeps against their known factors (classifiers with planted units only).
std::optional<PlantedAgreement> score_planted_units(const Classifier& classifier, ResultsDatabase& results,
                                                   uint64_t seed) {
  const auto& planted = classifier.planted_units();
  if (planted.empty()) return std::nullopt;
  auto scores = results.concept_scores();
  std::map<int64_t, bool> expressible;
  for (const auto& unit : results.unit_labels()) expressible[unit.unit] = unit.expressible;
  std::vector<std::vector<ConceptScore>> concepts;
  std::vector<bool> unit_expressible;
  for (const auto& unit : planted) {
    concepts.push_back(scores[unit.unit]);
    unit_expressible.push_back(expressible[unit.unit]);
  }
  return planted_agreement(planted, concepts, unit_expressible, results.part_names(), seed);
}

}  // namespace

ProbeReport run_probe(const StudyConfig& study, const Classifier& classifier, const Generator& generator,
                      const ProbeSettings& settings) {
  check_probe_settings(settings);
  const double side = double(generator.resolution());
  require_memory("probe.images", 2.0 * double(settings.images) * 12.0 * side * side,
                 fmt::format("{} rendered images of {}x{}", settings.images, generator.resolution(),
                             generator.resolution()));
  const StudyLock lock(study.folder, "sweeps");
  ResultsDatabase results(study.results_database(), ResultsDatabase::Mode::open_existing);
  check_probe_inputs(study, classifier, results);
  const ShapesWorld world(generator.resolution());
  const auto rendered = world.render_class_balanced(settings.images, settings.seed);
  const auto probe = probe_shapes_units(classifier, rendered);
  const auto [units, expressible] = units_to_score(results, settings.top);
  const auto agreement = label_agreement(probe, units, settings.seed);
  const auto factor_agreement = label_agreement(probe, units, settings.seed, 10000, true);
  const auto changes = sweep_factor_changes(results, classifier.feature_dim(), generator.resolution());
  const auto chain = probe_chain(study, classifier, generator, settings, probe, world, rendered, changes);
  results.write_probe(probe.factor_names, probe.correlation, probe.partial);
  const auto planted = score_planted_units(classifier, results, settings.seed);

  ProbeReport out;
  auto& report = out.report;
  report = agreement.to_json();
  report["factor_agreement"] = factor_agreement.to_json();
  report["factor_agreement"].erase("per_unit");
  report["factor_signal"] = json::array();
  report["chain"] = chain_json(chain);
  for (const auto& link : report["chain"]) {
    auto signal = link["end_to_end"];
    signal["factor"] = link["factor"];
    signal["measured_as"] = link["measured_as"];
    report["factor_signal"].push_back(signal);
  }
  report["factor_signal_encoding"] = signal_json(factor_signal(probe, changes, settings.seed, 2000, true));
  report["profile"] = profile_json(probe, changes, settings.seed);
  report["sweep_direction"] = study.sweep.direction;
  if (planted) report["planted"] = planted->to_json();
  report["expressible_units"] = expressible;
  report["probe_images"] = settings.images;
  report["probe_seed"] = settings.seed;
  out.file = study.sweeps_folder() / "ground_truth.json";
  write_file_atomically(out.file, report.dump(2) + "\n");
  return out;
}

std::string ProbeReport::summary_line() const {
  const auto& r = report;
  const auto& f = r["factor_agreement"];
  const auto cell = [](const json& m) {
    return fmt::format("{:+.2f}{}", m["correlation"].get<double>(), m["p_bonferroni"].get<double>() < 0.05 ? "*" : " ");
  };
  std::string lines = fmt::format("\n  {:20s} {:22s} {:>12s} {:>10s} {:>7s} {:>11s} {:>27s}", "factor", "measured as",
                                  "measurement", "generator", "sweep", "end to end", "reliability r / g / sweep");
  for (const auto& link : r["chain"])
    lines += fmt::format("\n  {:20s} {:22s} {:>12s} {:>10s} {:>7s} {:>11s} {:>13.2f} / {:.2f} / {:+.2f}",
                         link["factor"].get<std::string>(), link["measured_as"].get<std::string>(),
                         cell(link["measurement"]), cell(link["generator"]), cell(link["sweep"]),
                         cell(link["end_to_end"]), link["rendered_reliability"]["correlation"].get<double>(),
                         link["generated_reliability"]["correlation"].get<double>(),
                         link["sweep_reliability"]["correlation"].get<double>());
  std::string planted;
  if (r.contains("planted")) {
    const auto& p = r["planted"];
    const auto rule = [](const json& x) {
      return fmt::format("{}/{} named ({:.0f}% recall, precision {:.0f}%; chance {:.0f}%, p = {:.4f})",
                         x["agreeing"].get<int64_t>(), x["named"].get<int64_t>(), 100 * x["recall"].get<double>(),
                         100 * x["precision"].get<double>(), 100 * x["chance"].get<double>(),
                         x["p_value"].get<double>());
    };
    planted = fmt::format(
        "\nplanted units ({} of {} measurable): labels name their factor for {}; top concepts {}; sets of "
        "significant concepts {}",
        p["measurable"].get<int64_t>(), p["planted"].get<int64_t>(), rule(p["label"]), rule(p["top"]), rule(p["set"]));
    for (const auto& u : p["units"])
      planted += fmt::format("\n  unit {:3d} {:22s} label {:30s} {}  top {:30s} {}  set of {:2d} {}",
                             u["unit"].get<int64_t>(), u["target"].get<std::string>(),
                             u["label"].get<std::string>().empty() ? "-" : u["label"].get<std::string>(),
                             u["label_agrees"].get<bool>() ? "yes" : "no ", u["top"].get<std::string>(),
                             u["top_agrees"].get<bool>() ? "yes" : "no ", u["concept_set"].size(),
                             u["set_agrees"].get<bool>() ? "yes" : "no");
  }
  const auto significant = [](const json& signals) {
    int64_t count = 0;
    for (const auto& s : signals) count += s["p_bonferroni"].get<double>() < 0.05;
    return fmt::format("{} of {}", count, signals.size());
  };
  std::string profile;
  for (const char* prediction : {"partial", "encoding"}) {
    const auto& x = r["profile"][prediction];
    profile += fmt::format(
        "\n  {:9s} top-1 {:.1f}% (chance {:.1f}%, p = {:.4f}), top-10 {:.1f}% (chance {:.1f}%, p = {:.4f}), median "
        "rank {:.1f} (chance {:.1f}, p = {:.4f}) over {} units",
        prediction, 100 * x["top1"].get<double>(), 100 * x["chance_top1"].get<double>(), x["p_top1"].get<double>(),
        100 * x["top10"].get<double>(), 100 * x["chance_top10"].get<double>(), x["p_top10"].get<double>(),
        x["median_rank"].get<double>(), x["chance_median_rank"].get<double>(), x["p_median_rank"].get<double>(),
        x["units"].get<int64_t>());
  }
  lines += fmt::format(
      "\nend to end significant (Bonferroni p < 0.05): {} factors against partial effects, {} against encodings "
      "({} sweep)\nprofile identification (each unit's measured concept profile ranks its own predicted profile among "
      "all units'):{}",
      significant(r["factor_signal"]), significant(r["factor_signal_encoding"]),
      r["sweep_direction"].get<std::string>(), profile);
  return fmt::format(
      "probe: sweep labels agree with the dataset probe for {}/{} labelled expressible units ({:.1f}%; chance "
      "{:.1f}%, permutation p = {:.4f}); with within-class factors only: {}/{} ({:.1f}%; chance {:.1f}%, p = {:.4f})\n"
      "the chain, link by link (correlation over units of the units' partial effects; * Bonferroni p < 0.05 over {} "
      "factors; reliability: each concept probe, rendered / generated, against a replicate on other images, and the "
      "sweep's change over the even tuning samples against the odd ones):{}{}\n-> {}",
      r["agreeing"].get<int64_t>(), r["units"].get<int64_t>(), 100 * r["agreement"].get<double>(),
      100 * r["chance"].get<double>(), r["p_value"].get<double>(), f["agreeing"].get<int64_t>(),
      f["units"].get<int64_t>(), 100 * f["agreement"].get<double>(), 100 * f["chance"].get<double>(),
      f["p_value"].get<double>(), r["chain"].size(), lines, planted, file.string());
}

}  // namespace linkstyle
