#include "sweep/run_identity.hpp"

#include <fmt/format.h>
#include <torch/torch.h>

#include "linkstyle/models.hpp"
#include "splitmix.hpp"

namespace linkstyle {

std::string tensor_fingerprint(const torch::Tensor& tensor) {
  const auto data = tensor.to(torch::kCPU, torch::kFloat).contiguous();
  return fmt::format("{:016x}", fnv1a64(data.data_ptr(), size_t(data.numel()) * sizeof(float)));
}

nlohmann::json sweep_run_identity(const StudyConfig& study, const LinkingNetwork& network,
                                  const std::vector<int64_t>& units, const PartSource& parts, const TuningSet& tuning) {
  const auto& s = study.sweep;
  return {{"tuning_features", tensor_fingerprint(tuning.features)},
          {"classifier", file_fingerprint(study.classifier)},
          {"generator", file_fingerprint(study.generator)},
          {"linking", {{"weight", tensor_fingerprint(network.weight)}, {"bias", tensor_fingerprint(network.bias)}}},
          {"parts", parts.identity()},
          {"classes", study.pairs.classes},
          {"classifier_classes", study.pairs.classifier_classes},
          {"psi", study.pairs.psi},
          {"samples_per_class", s.samples_per_class},
          {"seed", s.seed},
          {"steps", s.steps},
          {"units", units},
          {"units_per_chunk", s.units_per_chunk},
          {"null_directions", s.null_directions},
          {"null_bins", s.null_bins},
          {"direction", s.direction},
          {"null", "r0 - t s u -> r0 + (1 - t) s u, u with a unit's share of the diagonal"}};
}

}  // namespace linkstyle
