// linkstyle/report.hpp
//
// WHAT THIS REPRESENTS
//   The static HTML report of a study (report/ in the study folder; docs/report.md): pages for
//   the overview (models, classes, the fit with predicted against true latents, PCA of r and w),
//   reconstructions, a gallery of every unit and a page per unit (sweep strips for several
//   samples and classes, the cycle curve, the part measures' changes against the null's spread,
//   the class logit along the sweep), concepts (top units per part and measure), counterfactuals
//   and the shapes world's ground truth, from whatever stages the study has run.
// REQUIRES
//   A study whose models load; the other stages are optional (a page says which command fills it).
// ENSURES
//   The report opens from disk with no network: every asset (stylesheet, script, images) is in
//   the folder, charts are SVG written here, and every string from a model, a file or a setting is
//   escaped. It is written into a fresh folder beside report/ and moved into place at the end, so
//   a failed run leaves the previous report (or none), never half of one. Deterministic for a
//   study and settings (the strips are rendered by the generator on the study's device).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "linkstyle/models.hpp"
#include "linkstyle/study.hpp"

namespace linkstyle {

struct ReportSettings {
  int64_t strip_samples = 0;            // strips per unit, of tuning samples of different classes (0: one per class, at most 6)
  int64_t panel_side = 0;               // pixels per step in the strips (0: the generator's, at most 128)
  int64_t scatter_points = 1500;        // held-out pairs in the predicted-against-true chart
  int64_t pca_points = 1500;            // pairs in each PCA chart
  int64_t counterfactual_samples = 4;   // samples shown per counterfactual run
  int64_t batch_size = 64;              // generator batch for the strips
};

struct ReportSummary {
  std::filesystem::path folder, index;
  int64_t pages = 0, units = 0, strips = 0, files = 0;
  int64_t bytes = 0;
  double seconds = 0, strip_seconds = 0;
  nlohmann::json to_json() const;
};

ReportSummary write_study_report(const StudyConfig& study, const Classifier& classifier, const Generator& generator,
                                 const ReportSettings& settings = {});

}  // namespace linkstyle
