#include <filesystem>
#include <iostream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "commands.hpp"
#include "linkstyle/generation.hpp"
#include "linkstyle/linking.hpp"
#include "linkstyle/pairs.hpp"

namespace linkstyle::cli {

void register_info(CLI::App& app, GlobalOptions& global) {
  auto folder = std::make_shared<std::string>(".");
  auto* command = app.add_subcommand("info", "print the study's models, dimensions, classes and progress");
  add_study_option(*command, *folder);
  command->callback([folder, &global]() {
    namespace fs = std::filesystem;
    auto [study, classifier, generator] = load_study_models(*folder, global);
    const auto classes = study_classes(study, generator);
    nlohmann::json classes_json = nlohmann::json::array();
    std::vector<std::string> listed;
    constexpr size_t kListedClasses = 20;
    for (size_t i = 0; i < classes.size(); ++i) {
      const auto& c = classes[i];
      classes_json.push_back(
          {{"generator_class", c.generator_class}, {"classifier_class", c.classifier_class}, {"name", c.name}});
      if (i < kListedClasses) listed.push_back(fmt::format("{} {}", c.generator_class, c.name));
    }
    if (classes.size() > kListedClasses)
      listed.push_back(fmt::format("and {} more (--json lists all)", classes.size() - kListedClasses));
    nlohmann::json summary = {{"study", study.folder.string()},
                              {"classifier",
                               {{"file", classifier.file().string()},
                                {"feature_dim", classifier.feature_dim()},
                                {"num_classes", classifier.num_classes()}}},
                              {"generator",
                               {{"file", generator.file().string()},
                                {"z_dim", generator.z_dim()},
                                {"w_dim", generator.w_dim()},
                                {"num_classes", generator.num_classes()},
                                {"resolution", generator.resolution()},
                                {"synthesis_features", generator.has_synthesis_features()},
                                {"synthesis_with_features", generator.has_synthesis_with_features()}}},
                              {"classes", classes_json}};
    std::string pairs_line = "pairs: none yet";
    if (fs::exists(study.pairs_folder() / "manifest.json")) {
      auto manifest = PairsManifest::load(study.pairs_folder());
      summary["pairs"] = {
          {"rows", manifest.total_rows}, {"shards", manifest.shards.size()}, {"complete", manifest.complete}};
      pairs_line = fmt::format("pairs: {} rows in {} shards{}", manifest.total_rows, manifest.shards.size(),
                               manifest.complete ? "" : " (incomplete)");
    }
    std::string linking_line = "linking network: not fitted";
    if (fs::exists(study.linking_file())) {
      auto network = LinkingNetwork::load(study.linking_file());
      summary["linking"] = network.metadata;
      linking_line = fmt::format("linking network: {} [{} x {}], held-out R2 {:.4f}",
                                 network.metadata.value("method", "?"), network.latent_dim(), network.feature_dim(),
                                 network.metadata.value("held_out", nlohmann::json::object()).value("r2", 0.0));
    }
    if (!global.json) {
      std::cout << fmt::format("study {}\n", study.folder.string())
                << fmt::format("classifier {}: D = {}, {} classes\n", classifier.file().string(),
                               classifier.feature_dim(), classifier.num_classes())
                << fmt::format("generator {}: z_dim = {}, w_dim = {}, {} classes, {}x{}\n", generator.file().string(),
                               generator.z_dim(), generator.w_dim(), generator.num_classes(), generator.resolution(),
                               generator.resolution())
                << fmt::format("{} classes: {}\n", classes.size(), fmt::join(listed, ", ")) << pairs_line << "\n";
    }
    print_summary(global, summary, linking_line);
  });
}

}  // namespace linkstyle::cli
