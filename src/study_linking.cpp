#include "linkstyle/study_linking.hpp"

#include <fmt/format.h>
#include <torch/torch.h>

#include "linkstyle/atomic_file.hpp"
#include "linkstyle/errors.hpp"
#include "linkstyle/pairs.hpp"
#include "linkstyle/reconstruct.hpp"
#include "linkstyle/study_lock.hpp"

namespace linkstyle {

namespace {

// What makes a fit weaker than it looks, with the reason.
std::vector<std::string> fit_warnings(const LinkingFit& fit, int64_t feature_dim) {
  std::vector<std::string> warnings;
  const int64_t training_pairs = fit.network.metadata.at("training_pairs").get<int64_t>();
  if (training_pairs <= feature_dim)
    warnings.push_back(fmt::format("{} training pairs for {} features: the fit is underdetermined and will not "
                                   "generalise (make more pairs with pairs.samples_per_class, or use ridge)",
                                   training_pairs, feature_dim));
  if (fit.held_out.value("pairs", int64_t(0)) == 0)
    warnings.push_back("no held-out pairs: the fit's quality is unmeasured (pairs.holdout_fraction is 0 or too small)");
  return warnings;
}

}  // namespace

nlohmann::json fit_study_linking(const StudyConfig& study, const c10::Device& device, bool recompute_statistics) {
  const StudyLock lock(study.folder, "linking");
  FitOptions options;
  options.device = device;
  options.method = study.fit.method == "ridge" ? FitMethod::ridge : FitMethod::ordinary_least_squares;
  if (study.fit.penalty >= 0.0) options.penalty = study.fit.penalty;
  options.rcond = study.fit.rcond;

  const auto manifest = PairsManifest::load(study.pairs_folder());
  const auto fit = fit_from_pairs(manifest, options, study.pairs.holdout_fraction, recompute_statistics);
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
      {"training_pairs", fit.network.metadata.at("training_pairs")},
      {"held_out", fit.held_out},
      {"gcv", gcv},
      {"statistics_reused", fit.statistics_reused},
      {"seconds",
       {{"statistics", fit.seconds_statistics}, {"solve", fit.seconds_solve}, {"metrics", fit.seconds_metrics}}}};
  report["warnings"] = fit_warnings(fit, manifest.feature_dim);
  write_file_atomically(study.fit_report_file(), report.dump(2) + "\n");
  return report;
}

LinkingNetwork load_study_linking(const StudyConfig& study, const Classifier& classifier, const Generator& generator,
                                  const std::filesystem::path& file) {
  const std::filesystem::path linking_file = file.empty() ? study.linking_file() : file;
  if (file.empty() && !std::filesystem::exists(linking_file))
    throw Error(linking_file, "no linking network yet (run `linkstyle fit` first)");
  auto network = LinkingNetwork::load(linking_file);
  check_linking_network_matches(network, linking_file, classifier, generator);
  return network;
}

}  // namespace linkstyle
