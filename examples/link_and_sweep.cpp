// link_and_sweep: the method from start to end, in the fewest calls of linkstyle's public API.
//
//   1. load a classifier and a class-conditional generator (two TorchScript files)
//   2. let the generator make paired data: w -> image -> r = classifier features
//   3. fit the linking network L: r -> w (least squares) and measure it on held-out pairs
//   4. reconstruct an image as the classifier sees it: image -> r -> L(r) -> G
//   5. sweep a few classifier units through their range and label what they change
//
// Everything is written into a study folder, the same layout the `linkstyle` command uses, so the
// command line can go on from here (e.g. `linkstyle export --study <folder> units`).
//
// Usage: link_and_sweep <study folder> [classifier.pt generator.pt]
//        (default models: the shipped shapes-world pair, run from the repository root)
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <stdexcept>
#include <string>

#include <torch/torch.h>

#include "linkstyle/generation.hpp"
#include "linkstyle/image_files.hpp"
#include "linkstyle/linking.hpp"
#include "linkstyle/models.hpp"
#include "linkstyle/pairs.hpp"
#include "linkstyle/reconstruct.hpp"
#include "linkstyle/results_database.hpp"
#include "linkstyle/runtime.hpp"
#include "linkstyle/study.hpp"
#include "linkstyle/sweep.hpp"

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  if (argc != 2 && argc != 4) {
    std::fprintf(stderr, "usage: %s <study folder> [classifier.pt generator.pt]\n", argv[0]);
    return 2;
  }
  try {
    // The study: which models, and sizes small enough for a run of seconds on one CPU core.
    linkstyle::StudyConfig study;
    study.folder = argv[1];
    study.classifier = fs::absolute(argc == 4 ? argv[2] : "models/shapes/classifier.pt");
    study.generator = fs::absolute(argc == 4 ? argv[3] : "models/shapes/generator.pt");
    study.pairs.samples_per_class = 150;  // kept (correctly classified) pairs per class
    study.sweep.units = {0, 1, 2};        // the classifier units to sweep
    study.sweep.steps = 3;                // activation values per unit: min, middle, max
    study.sweep.samples_per_class = 1;    // tuning samples each sweep starts from
    study.sweep.null_directions = 8;      // random directions that the units are compared with
    study.sweep.null_bins = 1;            // ... in one bin of activation range (there are few units)
    study.sweep.strip_units = 1;          // one PNG strip of the best unit's sweep
    // study.toml is the record of these settings; reading it back checks every value.
    fs::create_directories(study.folder);
    linkstyle::write_study(study);
    study = linkstyle::load_study(study.folder);

    // 1. The models, on the CPU with every core, or LINKSTYLE_THREADS (libtorch would use one).
    const c10::Device device = linkstyle::configure_runtime(linkstyle::RuntimeOptions{});
    const auto classifier = linkstyle::Classifier::load(study.classifier, device);
    const auto generator = linkstyle::Generator::load(study.generator, device);
    std::printf("models: classifier with %lld features, generator with %lld classes and w of %lld\n",
                static_cast<long long>(classifier.feature_dim()), static_cast<long long>(generator.num_classes()),
                static_cast<long long>(generator.w_dim()));

    // 2. Pairs (w, r): sampled per class, kept when the classifier agrees with the class asked for,
    //    written to <study>/pairs as .npy shards. A rerun resumes instead of starting again.
    const auto pairs = linkstyle::generate_pairs(study, classifier, generator);
    std::printf("pairs: %lld rows in %s\n", static_cast<long long>(pairs.total_rows), pairs.folder.c_str());

    // 3. The linking network w = A r + b, fitted by ordinary least squares on the training rows
    //    (the statistics were gathered while the pairs were made) and measured on the held-out rows.
    linkstyle::FitOptions fit_options;
    fit_options.rcond = study.fit.rcond;
    const auto fit = linkstyle::fit_from_pairs(pairs, fit_options, study.pairs.holdout_fraction, false);
    fit.network.save(study.linking_file());
    const double r2 = fit.held_out.value("r2", NAN);
    std::printf("fit: held-out R^2 %.3f, cosine(w, L(r)) %.3f -> %s\n", r2, fit.held_out.value("cosine", NAN),
                study.linking_file().c_str());

    // 4. A reconstruction. Any image file works; here the generator draws one of class 0 itself.
    torch::NoGradGuard no_grad;
    const auto w = linkstyle::class_latents(generator, /*seed=*/2024, /*generator_class=*/0, /*batch_index=*/0,
                                            /*count=*/1, study.pairs.psi);
    const auto image = linkstyle::render_latents(generator, w);
    const fs::path image_file = study.folder / "example-image.png";
    linkstyle::write_image_row(image_file, {image}, static_cast<int>(generator.resolution()));
    linkstyle::ReconstructionOptions reconstruction;
    reconstruction.output_folder = study.reconstructions_folder();
    const auto seen = linkstyle::reconstruct_images(classifier, generator, fit.network, {image_file}, reconstruction);
    std::printf("reconstruction: %s -> %s (same class: %s, cosine(r, r') %.3f) -> %s\n",
                seen[0]["original"]["name"].get<std::string>().c_str(),
                seen[0]["reconstruction"]["name"].get<std::string>().c_str(),
                seen[0]["same_class"].get<bool>() ? "yes" : "no", seen[0]["feature_cosine"].get<double>(),
                seen[0]["output"].get<std::string>().c_str());

    // 5. The sweeps: each unit is set to `steps` values over its range, mapped with L, rendered,
    //    re-encoded and measured; results go to <study>/sweeps/results.sqlite.
    linkstyle::SweepRunOptions sweep_options;
    sweep_options.progress = false;
    const auto sweep = linkstyle::run_sweep(study, classifier, generator, fit.network, sweep_options);
    std::printf("sweep: %lld units, %lld images, parts from %s -> %s\n", static_cast<long long>(sweep.units),
                static_cast<long long>(sweep.images), sweep.part_source.c_str(), sweep.database.c_str());

    // What the sweep found, one line per unit, read from the results database (docs/sweeps.md).
    linkstyle::ResultsDatabase results(sweep.database, linkstyle::ResultsDatabase::Mode::open_existing);
    const auto units = results.unit_labels();
    for (const auto& unit : units)
      std::printf("  unit %3lld: %s, label '%s'\n", static_cast<long long>(unit.unit),
                  unit.expressible ? "expressible" : "not expressible", unit.label.c_str());
    const auto units_found = static_cast<int64_t>(units.size());

    // The example checks its own result, so that it can serve as a test.
    if (!std::isfinite(r2)) throw std::runtime_error("the held-out R^2 is not finite");
    if (units_found != static_cast<int64_t>(study.sweep.units.size()))
      throw std::runtime_error("the results database does not hold every swept unit");
    std::printf("done: held-out R^2 %.3f, %lld units swept, study in %s\n", r2, static_cast<long long>(units_found),
                study.folder.c_str());
  } catch (const std::exception& error) {
    std::fprintf(stderr, "error: %s\n", error.what());
    return 1;
  }
  return 0;
}
