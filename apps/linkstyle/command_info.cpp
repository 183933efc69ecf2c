#include <filesystem>
#include <iostream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "commands.hpp"
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
    // The study's classes (pairs.classes; all of the generator's when empty).
    std::vector<int64_t> indices = study.pairs.classes;
    if (indices.empty())
      for (int64_t c = 0; c < generator.num_classes(); ++c) indices.push_back(c);
    nlohmann::json study_classes = nlohmann::json::array();
    std::vector<std::string> listed;
    constexpr size_t kListedClasses = 20;
    for (size_t i = 0; i < indices.size(); ++i) {
      const int64_t classifier_class =
          study.pairs.classifier_classes.empty() ? indices[i] : study.pairs.classifier_classes[i];
      study_classes.push_back({{"generator_class", indices[i]},
                               {"classifier_class", classifier_class},
                               {"name", generator.class_name(indices[i])}});
      if (i < kListedClasses) listed.push_back(fmt::format("{} {}", indices[i], generator.class_name(indices[i])));
    }
    if (indices.size() > kListedClasses)
      listed.push_back(fmt::format("and {} more (--json lists all)", indices.size() - kListedClasses));
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
                              {"classes", study_classes}};
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
                << fmt::format("{} classes: {}\n", indices.size(), fmt::join(listed, ", ")) << pairs_line << "\n";
    }
    print_summary(global, summary, linking_line);
  });
}

}  // namespace linkstyle::cli
