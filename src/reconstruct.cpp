#include "linkstyle/reconstruct.hpp"

#include <map>

#include <fmt/format.h>
#include <torch/torch.h>

#include "linkstyle/atomic_file.hpp"
#include "linkstyle/errors.hpp"
#include "linkstyle/image_files.hpp"
#include "linkstyle/runtime.hpp"

namespace linkstyle {

namespace fs = std::filesystem;
using nlohmann::json;

void check_linking_network_matches(const LinkingNetwork& network, const fs::path& network_file,
                                   const Classifier& classifier, const Generator& generator) {
  if (network.feature_dim() != classifier.feature_dim())
    throw Error(network_file, fmt::format("linking network takes {} features but {} has {}", network.feature_dim(),
                                          classifier.file().string(), classifier.feature_dim()));
  if (network.latent_dim() != generator.w_dim())
    throw Error(network_file, fmt::format("linking network gives w of {} dims but {} has w_dim {}",
                                          network.latent_dim(), generator.file().string(), generator.w_dim()));
  const auto& models = network.metadata.value("models", json::object());
  const std::pair<const char*, fs::path> roles[] = {{"classifier", classifier.file()}, {"generator", generator.file()}};
  for (const auto& [role, file] : roles) {
    if (!models.contains(role)) continue;
    const auto expected = models[role].value("fingerprint", "");
    if (!expected.empty() && expected != file_fingerprint(file))
      throw Error(network_file, fmt::format("linking network was fitted for another {} ({}), not {}", role,
                                            models[role].value("file", "?"), file.string()));
  }
}

void check_reconstruction_options(const ReconstructionOptions& options) {
  if (options.display_side <= 0 || options.display_side > 16384)
    throw SettingError("reconstruct.side", "must be in [1, 16384]");
  // Two panels of side x side, 8-bit and float copies on the way to the PNG.
  require_memory("reconstruct.side", 2.0 * 16.0 * double(options.display_side) * double(options.display_side),
                 fmt::format("panels of {}x{} pixels", options.display_side, options.display_side));
}

json reconstruct_images(const Classifier& classifier, const Generator& generator, const LinkingNetwork& network,
                        const std::vector<fs::path>& images, const ReconstructionOptions& options) {
  check_reconstruction_options(options);
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> inputs;
  std::map<std::string, fs::path> stems;
  for (const auto& file : images) {
    auto [previous, fresh] = stems.emplace(file.stem().string(), file);
    if (!fresh)
      throw Error(file, "has the same file name as " + previous->second.string() + ": their outputs would collide");
    inputs.push_back(read_image(file));  // all checked before any output
  }
  ensure_writable_directory(options.output_folder);
  json results = json::array();
  for (size_t i = 0; i < images.size(); ++i) {
    auto x = inputs[i].to(classifier.device());
    auto r = classifier.features(x);
    if (!torch::isfinite(r).all().item<bool>()) throw Error(images[i], "classifier features contain NaN/Inf");
    auto w = network.apply(r).to(generator.device());
    auto reconstruction = generator_to_classifier_range(generator.synthesis(w)).to(classifier.device());
    auto r_reconstruction = classifier.features(reconstruction);
    auto p_original = torch::softmax(classifier.head(r), 1);
    auto p_reconstruction = torch::softmax(classifier.head(r_reconstruction), 1);
    const int64_t top_original = p_original.argmax(1).item<int64_t>();
    const int64_t top_reconstruction = p_reconstruction.argmax(1).item<int64_t>();
    const double cosine = torch::cosine_similarity(r, r_reconstruction, 1, 1e-12).item<double>();

    const std::string stem = images[i].stem().string();
    const fs::path png = options.output_folder / (stem + ".png");
    const fs::path report = options.output_folder / (stem + ".json");
    auto side_input = torch::nn::functional::interpolate(
        x, torch::nn::functional::InterpolateFuncOptions()
               .size(std::vector<int64_t>{generator.resolution(), generator.resolution()})
               .mode(torch::kArea));
    write_image_row(png, {side_input, reconstruction}, options.display_side);
    json result = {{"image", images[i].string()},
                   {"output", png.string()},
                   {"original",
                    {{"class", top_original},
                     {"name", classifier.class_name(top_original)},
                     {"probability", p_original[0][top_original].item<double>()}}},
                   {"reconstruction",
                    {{"class", top_reconstruction},
                     {"name", classifier.class_name(top_reconstruction)},
                     {"probability", p_reconstruction[0][top_reconstruction].item<double>()}}},
                   {"same_class", top_original == top_reconstruction},
                   {"feature_cosine", cosine}};
    write_file_atomically(report, result.dump(2) + "\n");
    results.push_back(result);
  }
  return results;
}

}  // namespace linkstyle
