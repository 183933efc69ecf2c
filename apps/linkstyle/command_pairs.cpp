#include <chrono>

#include <fmt/format.h>

#include "commands.hpp"
#include "linkstyle/pairs.hpp"

namespace linkstyle::cli {

void register_pairs(CLI::App& app, GlobalOptions& global) {
  auto folder = std::make_shared<std::string>(".");
  auto* command = app.add_subcommand("pairs", "generate (or resume) the paired data (w, r) of a study");
  add_study_option(*command, *folder);
  command->callback([folder, &global]() {
    const auto job = join_launched_job(global);
    auto [study, classifier, generator] = load_study_models(*folder, global);
    const auto started = std::chrono::steady_clock::now();
    // Ctrl-C stops after the shard being written; the same command resumes.
    stop_on_interrupt_signals();
    PairsRunOptions run;
    run.stop_requested = interrupt_requested;
    run.job = job.get();
    auto manifest = generate_pairs(study, classifier, generator, run);
    if (job && !job->is_coordinator()) return;
    if (job) job->finish();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    nlohmann::json classes = nlohmann::json::array();
    int64_t drawn = 0, accepted = 0;
    std::string short_classes;
    for (const auto& c : manifest.classes) {
      const double rate = c.acceptance_rate();
      nlohmann::json rejected = nlohmann::json::object();
      for (const auto& [predicted, times] : c.rejected_predicted_as) rejected[classifier.class_name(predicted)] = times;
      classes.push_back({{"class", c.generator_class},
                         {"name", c.name},
                         {"drawn", c.drawn},
                         {"accepted", c.accepted},
                         {"acceptance_rate", rate},
                         {"rejected_predicted_as", rejected}});
      drawn += c.drawn;
      accepted += c.accepted;
      if (manifest.classes.size() <= 12)
        short_classes += fmt::format("{}{} {:.0f}%", short_classes.empty() ? "" : ", ", c.name, 100 * rate);
      if (c.accepted < study.pairs.samples_per_class)
        fmt::print(stderr, "warning: class {} ({}) kept only {} of {} samples after {} draws; rejected as {}\n",
                   c.generator_class, c.name, c.accepted, study.pairs.samples_per_class, c.drawn,
                   describe_rejections(c, classifier));
      else if (rate < 0.5)
        fmt::print(stderr, "note: class {} ({}) kept {:.0f}% of {} draws; rejected as {}\n", c.generator_class, c.name,
                   100 * rate, c.drawn, describe_rejections(c, classifier));
    }
    if (short_classes.empty())
      short_classes = fmt::format("{:.0f}% over {} classes", drawn ? 100.0 * double(accepted) / double(drawn) : 0.0,
                                  manifest.classes.size());
    print_summary(global,
                  {{"pairs_folder", manifest.folder.string()},
                   {"rows", manifest.total_rows},
                   {"shards", manifest.shards.size()},
                   {"drawn", drawn},
                   {"accepted", accepted},
                   {"filter", study.pairs.filter},
                   {"classes", classes},
                   {"seconds", seconds}},
                  fmt::format("pairs: {} rows in {} shards in {} (acceptance: {}) [{:.1f} s]", manifest.total_rows,
                              manifest.shards.size(), manifest.folder.string(), short_classes, seconds), job.get());
  });
}

}  // namespace linkstyle::cli
