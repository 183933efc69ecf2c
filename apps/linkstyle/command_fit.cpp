#include <fmt/format.h>

#include "commands.hpp"
#include "linkstyle/study_linking.hpp"

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
  map_setting(global, "fit.method",
              command->add_option("--method", options->method, "ols or ridge (default: study.toml)")
                  ->check(CLI::IsMember({"ols", "ridge"})));
  auto* penalty = command->add_option("--penalty", options->penalty, "ridge penalty (default: study.toml; < 0: by GCV)");
  map_setting(global, "fit.penalty", penalty);
  command->add_flag("--recompute", options->recompute,
                    "recompute the statistics from the shards instead of those saved by `pairs`");
  command->callback([options, &global, penalty]() {
    auto study = load_study(options->folder);
    if (!options->method.empty()) study.fit.method = options->method;
    // A penalty on the command line wins over study.toml (and is checked like it).
    if (penalty->count()) study.fit.penalty = options->penalty;
    check_study_settings(study);
    const auto report = fit_study_linking(study, configure_runtime(global.runtime), options->recompute);
    auto summary = report;
    summary["held_out"].erase("r2_per_dim");
    summary["fit_report"] = study.fit_report_file().string();
    print_warnings(report["warnings"]);
    const auto& held_out = report["held_out"];
    print_summary(global, summary,
                  fmt::format("fit: {} on {} pairs -> {}; held-out R2 {:.4f}, MSE {:.4g}, cosine {:.4f} ({} pairs)",
                              report["method"].get<std::string>(), report["training_pairs"].get<int64_t>(),
                              study.linking_file().string(), held_out.value("r2", 0.0), held_out.value("mse", 0.0),
                              held_out.value("cosine", 0.0), held_out.value("pairs", 0)));
  });
}

}  // namespace linkstyle::cli
