// counterfactual/counterfactual_run.hpp (private)
//
// WHAT THIS REPRESENTS
//   The parts of a counterfactual run (run_counterfactuals(), counterfactual.hpp): the samples it
//   explains, what every batch sees (the run's context), a batch explained on any rank and carried
//   to rank 0 as a Message, the files a run writes, and its identity and rows in the results
//   database.
// REQUIRES
//   Models and settings that run_counterfactuals() has checked; rank 0 holds the study's "sweeps"
//   lock while it writes.
// ENSURES
//   A batch's explanation depends only on its samples and the context, so any rank gives the same
//   records and bytes; files are written atomically. Bad input throws linkstyle::Error or
//   SettingError naming the file or the setting.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "linkstyle/counterfactual.hpp"
#include "linkstyle/distributed.hpp"
#include "linkstyle/part_sources.hpp"
#include "linkstyle/results_database.hpp"
#include "linkstyle/study.hpp"
#include "linkstyle/tensor_io.hpp"

namespace linkstyle::counterfactual_run {

// The samples a run explains, in order: their features, images and where they come from.
struct Samples {
  std::vector<int64_t> source;      // classifier class of each
  std::vector<int64_t> latent_id;   // -1 for a user image
  std::vector<std::string> origin;  // "generated" or the image file
  torch::Tensor latents;            // w [N, w_dim] (CPU; undefined for user images)
  torch::Tensor z;                  // z [N, z_dim] (CPU; undefined for user images)
  torch::Tensor images;             // [N, 3, R, R] in [0, 1] (CPU), at the generator's resolution
  torch::Tensor features;           // r [N, D] (CPU)
  int64_t size() const { return int64_t(source.size()); }
};

// The generator class of a classifier class among the study's; with `required` false, -1 when
// it is not among them.
int64_t generator_class_of(const StudyConfig& study, const Generator& generator, int64_t classifier_class,
                           bool required = true);

// N generated samples of the classifier class `source` that pass the study's pairs filter.
Samples generated_samples(const StudyConfig& study, const CounterfactualModels& models, int64_t source);

// The user's images: read and encoded (all of them before anything is written).
Samples image_samples(const CounterfactualModels& models, const std::vector<std::filesystem::path>& files,
                      std::optional<int64_t> source, int64_t target);

// What every batch of a run sees.
struct RunContext {
  const StudyConfig& study;
  const CounterfactualModels& models;
  const CounterfactualSettings& settings;
  int64_t target = 0;
  std::string run;
  std::filesystem::path folder;
  std::vector<double> alphas;
  std::unique_ptr<PartSource> parts;  // the study's segmenter, for generated samples
  int side = 64;                      // pixels per image panel
  std::optional<ClassGeometry> geometry;  // the target's pairs (and Sigma_W for realistic)
  const Classifier* judge = nullptr;      // the study's judge, when it has one
  int64_t judge_target = -1;              // the target's index in the judge
  std::optional<RealismReference> judge_reference;  // the references' images in the judge's features
  int64_t exact_class = -1;  // the target's generator class when exact counterfactuals are drawn
};

// A batch explained: its records, its files (name in the run's folder -> bytes) and tensors.
struct ExplainedBatch {
  std::vector<CounterfactualRecord> records;
  std::vector<std::pair<std::string, std::string>> images;
  std::string tensors_file;
  TensorMap tensors;
  ShiftOptimisation optimisation;  // its checks and times only
};

// Optimises, renders and measures one batch of samples (on any rank of a job).
ExplainedBatch explain_batch(const RunContext& context, const Samples& samples, const std::vector<int64_t>& ids);

// A batch as a Message, for rank 0 to write (every value as its bytes), and back.
Message batch_message(const ExplainedBatch& batch);
ExplainedBatch take_batch(Message& m);

// Writes a batch's files into the run's folder (rank 0).
void write_batch(const RunContext& context, const ExplainedBatch& batch);

// A grid of the run's first samples: each row is original | counterfactual | the path images.
void write_grid(const std::filesystem::path& file, const std::vector<std::filesystem::path>& rows);

// The run's realism over its successful samples (every batch file written so far), in the
// judge's features when the study has one.
CounterfactualRunRealism run_realism(const RunContext& context, const std::filesystem::path& folder);

// Everything that makes the run's results: a stored run resumes only with the same identity.
nlohmann::json identity_of(const StudyConfig& study, const CounterfactualModels& models,
                           const std::filesystem::path& linking_file, const std::string& origin,
                           std::optional<int64_t> source, int64_t target,
                           const std::vector<std::filesystem::path>& images, const Samples& samples);

// The run's row in the results database, started or resumed (`fresh` replaces a stored run of
// another identity; Error naming the database otherwise), and its samples committed already. A
// run with nothing committed keeps no files of an earlier one.
std::set<int64_t> start_or_resume_run(ResultsDatabase& results, const CounterfactualSummary& summary,
                                      const std::string& identity, bool images, std::optional<int64_t> source,
                                      int64_t target, bool fresh);

// The batches still to explain: those of `batch_size` samples, less the samples committed already.
std::vector<std::vector<int64_t>> batches_to_explain(int64_t samples, int64_t batch_size,
                                                     const std::set<int64_t>& done);

// The summary's outcomes, relevant units and realism from the run's rows and files.
void summarise_run(CounterfactualSummary& summary, ResultsDatabase& results, const RunContext& context);

}  // namespace linkstyle::counterfactual_run
