// Exact counterfactuals of the shapes world (counterfactual.hpp).
#include <torch/script.h>
#include <torch/torch.h>

#include "linkstyle/counterfactual.hpp"
#include "linkstyle/errors.hpp"
#include "linkstyle/worlds/shapes.hpp"

namespace linkstyle {

bool knows_sample_factors(const Generator& generator) {
  if (generator.class_names() != ShapesWorld::class_names()) return false;
  try {
    return torch::jit::load(generator.file().string(), c10::Device(c10::kCPU)).find_method("factors").has_value();
  } catch (const c10::Error&) {
    return false;
  }
}

torch::Tensor exact_counterfactual_images(const Generator& generator, const torch::Tensor& z, int64_t target_class) {
  const torch::NoGradGuard no_grad;
  auto module = torch::jit::load(generator.file().string(), c10::Device(c10::kCPU));
  if (!module.find_method("factors"))
    throw Error(generator.file(), "has no factors(z, c): it does not know its samples' factors");
  const int64_t n = z.size(0);
  const auto labels = torch::full({n}, target_class, torch::kLong);
  const auto factors =
      module.run_method("factors", z.to(torch::kCPU, torch::kFloat32), labels).toTensor().clamp(0.0, 1.0);
  return ShapesWorld(generator.resolution())
      .render_factors(std::vector<int64_t>(size_t(n), target_class), factors.to(torch::kFloat32).contiguous())
      .images;
}

}  // namespace linkstyle
