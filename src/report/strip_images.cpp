// The strips of the report's unit pages and gallery: each swept unit's sweep, rendered by the
// generator for a few tuning samples of different classes.
#include <algorithm>
#include <map>

#include <torch/torch.h>

#include "linkstyle/image_files.hpp"
#include "linkstyle/tuning_set.hpp"
#include "report_pages.hpp"

namespace linkstyle::report {
namespace fs = std::filesystem;

namespace {

// Tuning samples spread over the generator's classes: the first sample of evenly spaced classes
// (count 0: of every class, at most 6).
std::vector<int64_t> choose_strip_samples(const TuningSet& tuning, int64_t count) {
  std::map<int64_t, int64_t> first_of_class;
  const auto classes = tuning.generator_classes.to(torch::kCPU);
  for (int64_t i = 0; i < tuning.size(); ++i) first_of_class.emplace(classes[i].item<int64_t>(), i);
  std::vector<int64_t> by_class;
  for (const auto& [c, sample] : first_of_class) by_class.push_back(sample);
  std::vector<int64_t> chosen;
  const int64_t wanted = count > 0 ? count : 6;
  const int64_t n = std::min<int64_t>(wanted, static_cast<int64_t>(by_class.size()));
  for (int64_t k = 0; k < n; ++k) chosen.push_back(by_class[static_cast<size_t>(k * static_cast<int64_t>(by_class.size()) / n)]);
  return chosen;
}

}  // namespace

int64_t render_strips(ReportContext& context, const std::vector<int64_t>& units) {
  const auto tuning = make_tuning_set(context.study, context.classifier, context.generator, *context.network);
  context.strip_samples = choose_strip_samples(tuning, context.settings.strip_samples);
  if (context.strip_samples.empty() || units.empty()) return 0;
  TuningSet chosen = tuning;
  const auto index = torch::tensor(context.strip_samples, torch::kLong);
  chosen.features = tuning.features.index_select(0, index);
  chosen.latents = tuning.latents.index_select(0, index);
  chosen.generator_classes = tuning.generator_classes.index_select(0, index);
  chosen.classifier_classes = tuning.classifier_classes.index_select(0, index);
  const int64_t samples = chosen.size(), steps = context.study.sweep.steps;
  const int64_t per_unit = samples * steps;
  const int64_t units_per_batch = std::max<int64_t>(1, context.settings.batch_size / per_unit);
  const int64_t panel_side = context.settings.panel_side > 0 ? context.settings.panel_side
                                                             : std::min<int64_t>(128, context.generator.resolution());
  int64_t written = 0;
  const torch::NoGradGuard no_grad;
  for (size_t first = 0; first < units.size(); first += static_cast<size_t>(units_per_batch)) {
    const std::vector<int64_t> batch(units.begin() + static_cast<std::ptrdiff_t>(first),
                                     units.begin() + static_cast<std::ptrdiff_t>(std::min(units.size(), first + units_per_batch)));
    const auto latents = unit_sweep_latents(*context.network, chosen, batch, steps).to(context.generator.device());
    const auto images = context.generator.synthesis(latents).add(1.0).div(2.0).to(torch::kCPU);  // [U*S*T, 3, R, R]
    for (size_t u = 0; u < batch.size(); ++u)
      for (int64_t s = 0; s < samples; ++s) {
        std::vector<torch::Tensor> row;
        for (int64_t t = 0; t < steps; ++t) row.push_back(images[(static_cast<int64_t>(u) * samples + s) * steps + t]);
        context.out.write(fs::path("images/strips") / strip_name(batch[u], context.strip_samples[s]),
                          encode_image_row(row, static_cast<int>(panel_side)));
        ++written;
      }
  }
  context.strips_rendered = true;
  return written;
}

}  // namespace linkstyle::report
