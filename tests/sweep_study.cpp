#include "sweep_study.hpp"

#include <fstream>

#include <torch/torch.h>

#include "linkstyle/pairs.hpp"
#include "linkstyle/sqlite_database.hpp"
#include "linkstyle/tiny_models.hpp"
#include "test_support.hpp"

namespace linkstyle::testing {

namespace fs = std::filesystem;

SweepSummary SweepStudy::run(int64_t stop_after_chunks, Overlap overlap) const {
  SweepRunOptions options;
  options.progress = false;
  options.stop_requested = stop_after(stop_after_chunks);
  options.overlap = overlap;
  return run_sweep(config, classifier, generator, network, options);
}

SweepStudy make_sweep_study(const fs::path& folder) {
  const auto models = write_tiny_models(folder / "models");
  StudyConfig config;
  config.folder = folder;
  config.classifier = models.classifier;
  config.generator = models.generator;
  config.pairs.samples_per_class = 120;
  config.pairs.batch_size = 64;
  config.sweep.samples_per_class = 2;
  config.sweep.steps = 3;
  config.sweep.units = {0, 3, 5, 7, 9, 11};
  config.sweep.units_per_chunk = 2;
  config.sweep.null_directions = 6;
  config.sweep.null_bins = 2;
  config.sweep.kmeans_parts = 3;
  config.sweep.batch_size = 16;
  config.sweep.strip_units = 1;
  config.sweep.strip_samples = 1;
  write_study(config);
  config = load_study(folder);
  auto classifier = Classifier::load(config.classifier, c10::Device(c10::kCPU));
  auto generator = Generator::load(config.generator, c10::Device(c10::kCPU));
  const auto manifest = generate_pairs(config, classifier, generator);
  auto fit = fit_from_pairs(manifest, FitOptions{}, config.pairs.holdout_fraction, false);
  fs::create_directories(config.linking_file().parent_path());
  fit.network.save(config.linking_file());
  return {config, classifier, generator, fit.network};
}

std::map<std::string, std::string> table_contents(const fs::path& database, const fs::path& scratch) {
  Database db(database, Database::Mode::open_existing);
  std::map<std::string, std::string> contents;
  for (const std::string table : {"parts", "samples", "units", "steps", "part_metrics", "motion", "part_changes",
                                  "null_directions", "null_changes", "selectivity"}) {
    const fs::path file = scratch / (table + ".csv");
    export_csv(db, table, file);  // every table is stored in primary-key order
    std::ifstream in(file);
    contents[table] = std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return contents;
}

}  // namespace linkstyle::testing
