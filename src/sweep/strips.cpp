#include "sweep/strips.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <torch/torch.h>

#include "linkstyle/atomic_file.hpp"
#include "linkstyle/generation.hpp"
#include "linkstyle/image_files.hpp"

namespace linkstyle {

namespace fs = std::filesystem;

std::vector<fs::path> write_sweep_strips(const StudyConfig& study, const Generator& generator,
                                         const LinkingNetwork& network, const TuningSet& tuning,
                                         ResultsDatabase& results, std::vector<int64_t> units) {
  const auto& s = study.sweep;
  for (int64_t unit : results.top_units(s.strip_units)) units.push_back(unit);
  std::sort(units.begin(), units.end());
  units.erase(std::unique(units.begin(), units.end()), units.end());
  const int64_t samples = std::min(s.strip_samples, tuning.size());
  std::vector<fs::path> files;
  if (units.empty() || samples == 0) return files;
  const fs::path folder = study.sweeps_folder() / "strips";
  ensure_writable_directory(folder);
  const torch::NoGradGuard no_grad;
  for (int64_t unit : units) {
    const auto latents = unit_sweep_latents(network, tuning, {unit}, s.steps);
    for (int64_t sample = 0; sample < samples; ++sample) {
      // Spread the strips over the classes: sample k of the tuning set's k-th class block.
      const int64_t per_class = s.samples_per_class;
      const int64_t classes = tuning.size() / per_class;
      const int64_t index = (sample % classes) * per_class + (sample / classes) % per_class;
      const auto w = latents.slice(0, index * s.steps, (index + 1) * s.steps).to(generator.device());
      const auto images = render_latents(generator, w).to(torch::kCPU);
      std::vector<torch::Tensor> panels;
      for (int64_t t = 0; t < s.steps; ++t) panels.push_back(images.slice(0, t, t + 1));
      const fs::path file = folder / fmt::format("unit-{:05d}-sample-{:03d}.png", unit, index);
      write_image_row(file, panels, 96);
      files.push_back(file);
    }
  }
  return files;
}

}  // namespace linkstyle
