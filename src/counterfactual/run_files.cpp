// The files a counterfactual run writes into its folder (a batch's images and tensors, the grid)
// and the run's realism read back from them (counterfactual/counterfactual_run.hpp).
#include <cmath>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <torch/torch.h>

#include "counterfactual/counterfactual_run.hpp"
#include "frechet_distance.hpp"
#include "linkstyle/atomic_file.hpp"
#include "linkstyle/errors.hpp"

namespace linkstyle::counterfactual_run {

namespace fs = std::filesystem;

// A grid of the run's first samples: each row is original | counterfactual | the path images.
void write_grid(const fs::path& file, const std::vector<fs::path>& rows) {
  std::vector<cv::Mat> images;
  for (const auto& row : rows) {
    const auto pair = cv::imread(row.string() + ".png"), path = cv::imread(row.string() + "-path.png");
    if (pair.empty() || path.empty() || pair.rows != path.rows) continue;
    cv::Mat joined;
    cv::hconcat(std::vector<cv::Mat>{pair, path}, joined);
    if (!images.empty() && joined.cols != images.front().cols) continue;
    images.push_back(joined);
  }
  if (images.empty()) return;
  cv::Mat grid;
  cv::vconcat(images, grid);
  std::vector<unsigned char> png;
  if (!cv::imencode(".png", grid, png)) throw Error(file, "PNG encoding failed");
  write_file_atomically(file, std::string_view(reinterpret_cast<const char*>(png.data()), png.size()));
}

// The run's realism over its successful samples (every batch file written so far), in the
// judge's features when the study has one.
CounterfactualRunRealism run_realism(const RunContext& context, const fs::path& folder) {
  CounterfactualRunRealism realism;
  const bool judged = context.judge && context.judge_reference;
  realism.space = judged ? "judge" : "classifier";
  const RealismReference& reference = judged ? *context.judge_reference : context.geometry->reference;
  std::vector<torch::Tensor> rows;
  for (const auto& entry : fs::directory_iterator(folder)) {
    const auto name = entry.path().filename().string();
    if (name.rfind("batch-", 0) != 0 || entry.path().extension() != ".safetensors") continue;
    const auto content = read_safetensors(entry.path());
    const auto& tensors = content.tensors;
    const auto features = tensors.find(judged ? "judge_features" : "counterfactual_features");
    const auto success = tensors.find("success");
    if (features == tensors.end() || success == tensors.end()) continue;
    rows.push_back(features->second.index_select(0, success->second.to(torch::kBool).nonzero().squeeze(1)));
  }
  const auto features = rows.empty() ? torch::zeros({0, reference.features.size(1)}) : torch::cat(rows);
  realism.samples = features.size(0);
  const int64_t m = reference.features.size(0);
  realism.frechet_distance = realism.reference_frechet_distance = std::nan("");
  if (realism.samples >= 2 && m - realism.samples >= 2) {
    const auto references = reference.features.to(torch::kCPU);
    realism.frechet_distance = frechet_distance(features, references);
    realism.reference_frechet_distance =
        frechet_distance(references.slice(0, 0, realism.samples), references.slice(0, realism.samples, m));
  }
  return realism;
}

// Writes a batch's files into the run's folder (rank 0).
void write_batch(const RunContext& context, const ExplainedBatch& batch) {
  for (const auto& [name, png] : batch.images) write_file_atomically(context.folder / name, png);
  write_safetensors(context.folder / batch.tensors_file, batch.tensors, {{"run", context.run}});
}

}  // namespace linkstyle::counterfactual_run
