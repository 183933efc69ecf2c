#include "linkstyle/reconstruct.hpp"

#include <limits>
#include <map>

#include <fmt/format.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include "linkstyle/atomic_file.hpp"
#include "linkstyle/errors.hpp"
#include "linkstyle/runtime.hpp"
#include "image_files.hpp"

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

namespace {

// The bytes of an image file, or an Error saying why there are none.
std::string image_file_bytes(const fs::path& file) {
  std::error_code error;
  const auto status = fs::status(file, error);
  if (!fs::exists(status)) throw Error(file, "image file not found");
  if (fs::is_directory(status)) throw Error(file, "is a folder, expected an image file");
  if (!fs::is_regular_file(status)) throw Error(file, "is not a regular file (a device or pipe?), expected an image");
  return read_file(file);  // names a file it cannot read ("Permission denied")
}

}  // namespace

torch::Tensor read_image(const fs::path& file) { return decode_image(image_file_bytes(file), file); }

torch::Tensor decode_image(const std::string& bytes, const fs::path& file) {
  check_image_file_is_whole(file, bytes);
  if (bytes.size() > size_t(std::numeric_limits<int>::max())) throw Error(file, "is larger than 2 GiB, too large an image");
  const cv::Mat encoded(1, static_cast<int>(bytes.size()), CV_8U, const_cast<char*>(bytes.data()));
  cv::Mat bgr;
  try {
    bgr = cv::imdecode(encoded, cv::IMREAD_COLOR);
  } catch (const cv::Exception& error) {
    throw Error(file, "cannot decode image: " + error.msg);
  }
  if (bgr.empty()) throw Error(file, "cannot decode image (corrupt or unsupported format)");
  if (bgr.cols < 8 || bgr.rows < 8 || bgr.cols > 16384 || bgr.rows > 16384)
    throw Error(file, fmt::format("image is {}x{}; expected sides between 8 and 16384 pixels", bgr.cols, bgr.rows));
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  auto tensor = torch::from_blob(rgb.data, {rgb.rows, rgb.cols, 3}, torch::kUInt8).clone();
  return tensor.permute({2, 0, 1}).unsqueeze(0).to(torch::kFloat32).div_(255.0);
}

std::string encode_image_row(const std::vector<torch::Tensor>& images, int side) {
  std::vector<cv::Mat> panels;
  for (const auto& image : images) {
    auto hwc = image.detach()
                   .to(torch::kCPU)
                   .squeeze(0)
                   .clamp(0, 1)
                   .mul(255)
                   .round()
                   .to(torch::kUInt8)
                   .permute({1, 2, 0})
                   .contiguous();
    cv::Mat rgb(static_cast<int>(hwc.size(0)), static_cast<int>(hwc.size(1)), CV_8UC3, hwc.data_ptr());
    cv::Mat bgr, scaled;
    cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
    // Nearest neighbour when enlarging shows the generator's true pixels; area when shrinking.
    cv::resize(bgr, scaled, cv::Size(side, side), 0, 0, bgr.cols < side ? cv::INTER_NEAREST : cv::INTER_AREA);
    panels.push_back(scaled);
  }
  cv::Mat row;
  cv::hconcat(panels, row);
  std::vector<unsigned char> png;
  if (!cv::imencode(".png", row, png)) throw Error("image row", "PNG encoding failed");
  return std::string(reinterpret_cast<const char*>(png.data()), png.size());
}

void write_image_row(const fs::path& file, const std::vector<torch::Tensor>& images, int side) {
  write_file_atomically(file, encode_image_row(images, side));
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
