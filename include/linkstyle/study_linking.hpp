// linkstyle/study_linking.hpp
//
// WHAT THIS REPRESENTS
//   A study's linking network: fitted from its pairs (method step 2, `linkstyle fit`) with the
//   study's [fit] settings and saved with its report, or loaded for the stages after it.
// REQUIRES
//   fit: complete pairs in the study's pairs/ folder; fit settings as load_study() checks them.
//   load: a linking file fitted for the study's classifier and generator.
// ENSURES
//   Writes linking/linking.safetensors and linking/fit.json (each atomically): method, solver,
//   penalty, rank, dead features, training pairs, held-out metrics (R^2 overall and per w
//   dimension, MSE, cosine), the GCV curve, whether the saved statistics were reused, timings.
#pragma once

#include <filesystem>

#include <nlohmann/json.hpp>

#include "linkstyle/linking.hpp"
#include "linkstyle/models.hpp"
#include "linkstyle/study.hpp"

namespace linkstyle {

// Returns the report as written to fit.json, whose "warnings" say what makes the fit weaker than
// it looks (fewer training pairs than features, no held-out pairs). `recompute_statistics` reads
// every shard again instead of the statistics `pairs` saved.
nlohmann::json fit_study_linking(const StudyConfig& study, const c10::Device& device, bool recompute_statistics);

// Loads `file` (default: the study's linking file) and checks that it links these models.
LinkingNetwork load_study_linking(const StudyConfig& study, const Classifier& classifier, const Generator& generator,
                                  const std::filesystem::path& file = {});

}  // namespace linkstyle
