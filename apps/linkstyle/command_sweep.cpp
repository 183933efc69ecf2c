#include <filesystem>

#include <fmt/format.h>

#include "commands.hpp"
#include "linkstyle/atomic_file.hpp"
#include "linkstyle/errors.hpp"
#include "linkstyle/ground_truth.hpp"
#include "linkstyle/reconstruct.hpp"
#include "linkstyle/results_database.hpp"
#include "linkstyle/sweep.hpp"
#include "linkstyle/worlds/shapes.hpp"

namespace linkstyle::cli {

namespace fs = std::filesystem;

namespace {

LinkingNetwork load_study_linking(const StudyConfig& study, const Classifier& classifier, const Generator& generator) {
  if (!fs::exists(study.linking_file()))
    throw Error(study.linking_file(), "no linking network yet (run `linkstyle fit` first)");
  auto network = LinkingNetwork::load(study.linking_file());
  check_linking_network_matches(network, study.linking_file(), classifier, generator);
  return network;
}

void register_sweep_command(CLI::App& app, GlobalOptions& global) {
  struct Options {
    std::string folder = ".";
    std::vector<int64_t> units, strip_units;
    int64_t steps = 0, samples_per_class = 0, batch_size = 0;
    std::string parts;
  };
  auto options = std::make_shared<Options>();
  auto* command = app.add_subcommand(
      "sweep",
      "sweep every unit (or --units) through its range, re-encode and measure the images -> sweeps/results.sqlite");
  add_study_option(*command, options->folder);
  command->add_option("--units", options->units, "units to sweep (default: sweep.units of study.toml, empty = all)")
      ->delimiter(',');
  command->add_option("--steps", options->steps, "values per unit (default: sweep.steps)");
  command->add_option("--samples-per-class", options->samples_per_class,
                      "tuning samples per class (default: sweep.samples_per_class)");
  command->add_option("--batch-size", options->batch_size, "images per forward call (default: sweep.batch_size)");
  command->add_option("--parts", options->parts, "auto, segmenter, kmeans or none (default: sweep.parts)");
  command->add_option("--strip-units", options->strip_units, "also write strip PNGs of these units")->delimiter(',');
  command->callback([options, &global]() {
    auto [study, classifier, generator] = load_study_models(options->folder, global);
    auto& s = study.sweep;
    if (!options->units.empty()) s.units = options->units;
    if (options->steps) s.steps = options->steps;
    if (options->samples_per_class) s.samples_per_class = options->samples_per_class;
    if (options->batch_size) s.batch_size = options->batch_size;
    if (!options->parts.empty()) s.parts = options->parts;
    if (s.steps < 2) throw Error("--steps", "must be >= 2");
    if (s.samples_per_class < 1) throw Error("--samples-per-class", "must be >= 1");
    if (s.batch_size < 1) throw Error("--batch-size", "must be >= 1");
    if (s.parts != "auto" && s.parts != "segmenter" && s.parts != "kmeans" && s.parts != "none")
      throw Error("--parts", "must be auto, segmenter, kmeans or none");
    for (int64_t u : options->units)
      if (u < 0 || u >= classifier.feature_dim())
        throw Error("--units", fmt::format("unit {} is out of range [0, {})", u, classifier.feature_dim()));
    const auto network = load_study_linking(study, classifier, generator);
    SweepRunOptions run;
    run.strip_units = options->strip_units;
    const auto summary = run_sweep(study, classifier, generator, network, run);
    print_summary(
        global, summary.to_json(),
        fmt::format("sweep: {} units ({} resumed), {} images at {:.0f}/s; {} expressible, {} with a significant "
                    "concept; parts from {}; results in {}",
                    summary.units, summary.units_resumed, summary.images, summary.images_per_second,
                    summary.expressible, summary.labelled, summary.part_source, summary.database.string()));
  });
}

void register_export_command(CLI::App& app, GlobalOptions& global) {
  struct Options {
    std::string folder = ".";
    std::vector<std::string> tables;
    std::string output;
  };
  auto options = std::make_shared<Options>();
  auto* command = app.add_subcommand("export", "write tables of the sweep results as CSV");
  add_study_option(*command, options->folder);
  command->add_option("tables", options->tables,
                      "tables (units, steps, part_metrics, motion, part_changes, selectivity, null_directions, "
                      "null_changes, parts, samples, probe, concept_top_units; default: units)");
  command->add_option("-o,--output", options->output, "output folder (default: <study>/sweeps/csv)");
  command->callback([options, &global]() {
    const auto study = load_study(options->folder);
    Database db(study.results_database(), Database::Mode::open_existing);
    const fs::path folder = options->output.empty() ? study.sweeps_folder() / "csv" : fs::path(options->output);
    std::vector<std::string> tables = options->tables.empty() ? std::vector<std::string>{"units"} : options->tables;
    // Check every name before writing anything.
    for (const auto& table : tables) {
      if (table.empty() || table.find_first_not_of("abcdefghijklmnopqrstuvwxyz_") != std::string::npos)
        throw Error("export", "'" + table + "' is not a table name");
      if (!db.has_table(table)) throw Error(db.file(), "has no table '" + table + "'");
    }
    ensure_writable_directory(folder);
    nlohmann::json written = nlohmann::json::object();
    for (const auto& table : tables) {
      const fs::path file = folder / (table + ".csv");
      written[table] = {{"file", file.string()}, {"rows", export_csv(db, table, file)}};
    }
    print_summary(global, written, fmt::format("export: {} table(s) -> {}", tables.size(), folder.string()));
  });
}

void register_probe_command(CLI::App& app, GlobalOptions& global) {
  struct Options {
    std::string folder = ".";
    int64_t images = 6000, top = 0;
    uint64_t seed = 7;
  };
  auto options = std::make_shared<Options>();
  auto* command = app.add_subcommand(
      "probe",
      "shapes world: probe every unit against the rendered factors, score the sweep labels against it and trace "
      "the ground truth link by link (measurement, generator, sweep)");
  add_study_option(*command, options->folder);
  command->add_option("--images", options->images, "rendered images for the probe")->capture_default_str();
  command->add_option("--seed", options->seed, "their seed")->capture_default_str();
  command->add_option("--top", options->top, "score only the top N expressible units by cycle correlation (0: all)")
      ->capture_default_str();
  command->callback([options, &global]() {
    auto [study, classifier, generator] = load_study_models(options->folder, global);
    if (options->images < 12) throw Error("--images", "must be >= 12");
    if (options->top < 0) throw Error("--top", "must be >= 0");
    Database db(study.results_database(), Database::Mode::open_existing);
    if (db.query_text("SELECT value FROM meta WHERE key = 'complete'").value_or("0") != "1")
      throw Error(db.file(), "the sweep is not complete (run `linkstyle sweep`)");
    if (classifier.num_classes() != int64_t(ShapesWorld::class_names().size()))
      throw Error(study.classifier,
                  fmt::format("has {} classes; probe needs a classifier of the shapes world ({} classes)",
                              classifier.num_classes(), ShapesWorld::class_names().size()));
    {
      std::vector<std::string> names;
      Database::Statement q(db, "SELECT name FROM parts ORDER BY part");
      while (q.step()) names.push_back(q.column_text(0));
      if (names != ShapesWorld::part_names())
        throw Error(db.file(),
                    "its parts are not the shapes world's (sweep with the shapes segmenter: "
                    "models.segmenter = models/shapes/segmenter.pt)");
    }
    if (study.segmenter.empty())
      throw Error(study.config_file(), "probe measures images with the study's segmenter: set models.segmenter");
    const ShapesWorld world(generator.resolution());
    const auto rendered = world.render_class_balanced(options->images, options->seed);
    const auto probe = probe_shapes_units(classifier, rendered);
    std::vector<LabelledUnit> units;
    int64_t expressible = 0;
    {
      Database::Statement q(db,
                            "SELECT unit, label_part, label_measure FROM units WHERE expressible = 1 "
                            "ORDER BY correlation DESC, unit");
      while (q.step()) {
        ++expressible;
        if (q.is_null(1)) continue;
        if (options->top && int64_t(units.size()) >= options->top) continue;
        units.push_back({q.column_int(0), q.column_text(1), q.column_text(2)});
      }
    }
    if (units.empty()) throw Error(db.file(), "no expressible unit has a significant concept: nothing to score");
    const auto agreement = label_agreement(probe, units, options->seed);
    const auto factor_agreement = label_agreement(probe, units, options->seed, 10000, true);
    // The chain: the same concepts measured on rendered and on generated images.
    const auto segmenter = load_segmenter_parts(study.segmenter, generator.device());
    // Replicates on other images (seed + 1) bound what each comparison can reach.
    const auto generated_concepts = [&](uint64_t seed) {
      return probe_generated_concepts(classifier, generator, *segmenter, options->images, seed, study.pairs.psi);
    };
    const auto chain = factor_chain(
        probe, probe_rendered_concepts(classifier, *segmenter, rendered), generated_concepts(options->seed),
        probe_rendered_concepts(classifier, *segmenter,
                                world.render_class_balanced(options->images, options->seed + 1)),
        generated_concepts(options->seed + 1),
        sweep_factor_changes(db, classifier.feature_dim(), generator.resolution()), options->seed);
    db.in_transaction([&] {
      db.execute(
          "DROP TABLE IF EXISTS probe; CREATE TABLE probe (unit INTEGER NOT NULL, factor TEXT NOT NULL, "
          "correlation REAL, partial REAL, PRIMARY KEY (unit, factor)) WITHOUT ROWID;");
      Database::Statement insert(db, "INSERT INTO probe (unit, factor, correlation, partial) VALUES (?, ?, ?, ?)");
      const auto c = probe.correlation.accessor<double, 2>();
      const auto b = probe.partial.accessor<double, 2>();
      for (int64_t d = 0; d < probe.correlation.size(0); ++d)
        for (size_t f = 0; f < probe.factor_names.size(); ++f) {
          insert.bind(1, d).bind(2, probe.factor_names[f]).bind_finite(3, c[d][int64_t(f)]);
          if (int64_t(f) < probe.partial.size(1))
            insert.bind_finite(4, b[d][int64_t(f)]);
          else
            insert.bind_null(4);
          insert.run();
        }
    });
    auto report = agreement.to_json();
    report["factor_agreement"] = factor_agreement.to_json();
    report["factor_agreement"].erase("per_unit");
    report["factor_signal"] = nlohmann::json::array();
    report["chain"] = nlohmann::json::array();
    // Bonferroni over the factors tested.
    const double tests = double(chain.size());
    const auto corrected = [tests](const UnitProfileMatch& m) { return std::min(1.0, m.p_value * tests); };
    const auto match_json = [&](const UnitProfileMatch& m) {
      return nlohmann::json{
          {"units", m.units}, {"correlation", m.correlation}, {"p_value", m.p_value}, {"p_bonferroni", corrected(m)}};
    };
    const auto cell = [&](const UnitProfileMatch& m) {
      return fmt::format("{:+.2f}{}", m.correlation, corrected(m) < 0.05 ? "*" : " ");
    };
    std::string signal_lines =
        fmt::format("\n  {:20s} {:22s} {:>12s} {:>10s} {:>7s} {:>11s} {:>20s}", "factor", "measured as", "measurement",
                    "generator", "sweep", "end to end", "reliability r / g");
    for (const auto& link : chain) {
      auto signal = match_json(link.end_to_end);
      signal["factor"] = link.factor;
      signal["measured_as"] = link.measured_as;
      report["factor_signal"].push_back(signal);
      report["chain"].push_back({{"factor", link.factor},
                                 {"measured_as", link.measured_as},
                                 {"measurement", match_json(link.measurement)},
                                 {"generator", match_json(link.generator)},
                                 {"sweep", match_json(link.sweep)},
                                 {"end_to_end", match_json(link.end_to_end)},
                                 {"rendered_reliability", match_json(link.rendered_reliability)},
                                 {"generated_reliability", match_json(link.generated_reliability)}});
      signal_lines += fmt::format("\n  {:20s} {:22s} {:>12s} {:>10s} {:>7s} {:>11s} {:>13.2f} / {:.2f}", link.factor,
                                  link.measured_as, cell(link.measurement), cell(link.generator), cell(link.sweep),
                                  cell(link.end_to_end), link.rendered_reliability.correlation,
                                  link.generated_reliability.correlation);
    }
    report["expressible_units"] = expressible;
    report["probe_images"] = options->images;
    report["probe_seed"] = options->seed;
    const fs::path file = study.sweeps_folder() / "ground_truth.json";
    write_file_atomically(file, report.dump(2) + "\n");
    report["file"] = file.string();
    print_summary(global, report,
                  fmt::format("probe: sweep labels agree with the dataset probe for {}/{} labelled expressible units "
                              "({:.1f}%; chance {:.1f}%, permutation p = {:.4f}); with within-class factors only: "
                              "{}/{} ({:.1f}%; chance {:.1f}%, p = {:.4f})\n"
                              "the chain, link by link (correlation over units of the units' partial effects; * "
                              "Bonferroni p < 0.05 over {} "
                              "factors; reliability: each concept probe, rendered / generated, against a replicate on "
                              "other images):{}\n-> {}",
                              agreement.agreeing, agreement.units, 100 * agreement.agreement, 100 * agreement.chance,
                              agreement.p_value, factor_agreement.agreeing, factor_agreement.units,
                              100 * factor_agreement.agreement, 100 * factor_agreement.chance, factor_agreement.p_value,
                              chain.size(), signal_lines, file.string()));
  });
}

}  // namespace

void register_sweep(CLI::App& app, GlobalOptions& global) {
  register_sweep_command(app, global);
  register_export_command(app, global);
  register_probe_command(app, global);
}

}  // namespace linkstyle::cli
