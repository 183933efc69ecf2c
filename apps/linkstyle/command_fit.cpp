#include <fmt/format.h>

#include "commands.hpp"
#include "linkstyle/atomic_file.hpp"
#include "linkstyle/errors.hpp"
#include "linkstyle/pairs.hpp"

namespace linkstyle::cli {

void register_fit(CLI::App& app, GlobalOptions& global) {
  struct Options {
    std::string folder = ".";
    std::string method;
    double penalty = -1.0;
    bool recompute = false;
  };
  auto options = std::make_shared<Options>();
  auto* command = app.add_subcommand("fit", "fit the linking network L: r -> w from the study's pairs");
  add_study_option(*command, options->folder);
  command->add_option("--method", options->method, "ols or ridge (default: study.toml)")
      ->check(CLI::IsMember({"ols", "ridge"}));
  command->add_option("--penalty", options->penalty, "ridge penalty (default: study.toml; < 0: by GCV)");
  command->add_flag("--recompute", options->recompute,
                    "recompute the statistics from the shards instead of those saved by `pairs`");
  command->callback([options, &global]() {
    auto study = load_study(options->folder);
    FitOptions fit_options;
    fit_options.device = configure_runtime(global.runtime);
    const std::string method = options->method.empty() ? study.fit.method : options->method;
    fit_options.method = method == "ridge" ? FitMethod::ridge : FitMethod::ordinary_least_squares;
    // A penalty on the command line wins over study.toml.
    const double penalty = options->penalty >= 0.0 ? options->penalty : study.fit.penalty;
    if (penalty >= 0.0) fit_options.penalty = penalty;
    fit_options.rcond = study.fit.rcond;

    auto manifest = PairsManifest::load(study.pairs_folder());
    auto fit = fit_from_pairs(manifest, fit_options, study.pairs.holdout_fraction, options->recompute);
    fit.network.save(study.linking_file());
    nlohmann::json gcv = nlohmann::json::array();
    for (const auto& [alpha, score] : fit.report.gcv_curve) gcv.push_back({{"penalty", alpha}, {"gcv_mse", score}});
    nlohmann::json report = {
        {"linking_network", study.linking_file().string()},
        {"method", fit.report.method},
        {"solver", fit.report.solver},
        {"penalty", fit.report.penalty},
        {"rank", fit.report.rank},
        {"dead_features", fit.report.dead_features},
        {"training_pairs", fit.network.metadata["training_pairs"]},
        {"held_out", fit.held_out},
        {"gcv", gcv},
        {"statistics_reused", fit.statistics_reused},
        {"seconds",
         {{"statistics", fit.seconds_statistics}, {"solve", fit.seconds_solve}, {"metrics", fit.seconds_metrics}}}};
    write_file_atomically(study.fit_report_file(), report.dump(2) + "\n");
    auto summary = report;
    summary["held_out"].erase("r2_per_dim");
    summary["fit_report"] = study.fit_report_file().string();
    print_summary(
        global, summary,
        fmt::format("fit: {} on {} pairs -> {}; held-out R2 {:.4f}, MSE {:.4g}, cosine {:.4f} ({} pairs)",
                    fit.report.method, fit.network.metadata["training_pairs"].get<int64_t>(),
                    study.linking_file().string(), fit.held_out.value("r2", 0.0), fit.held_out.value("mse", 0.0),
                    fit.held_out.value("cosine", 0.0), fit.held_out.value("pairs", 0)));
  });
}

}  // namespace linkstyle::cli
