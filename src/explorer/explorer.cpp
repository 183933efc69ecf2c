#include "linkstyle/explorer.hpp"
#include "linkstyle/image_files.hpp"

#include "../folder_paths.hpp"

#include <atomic>
#include <chrono>
#include <cmath>
#include <deque>
#include <map>
#include <optional>
#include <mutex>

#include <fmt/format.h>
#include <torch/torch.h>

#include "linkstyle/atomic_file.hpp"
#include "linkstyle/counterfactual.hpp"
#include "linkstyle/errors.hpp"
#include "linkstyle/label_confidence.hpp"
#include "linkstyle/linking.hpp"
#include "linkstyle/models.hpp"
#include "linkstyle/part_sources.hpp"
#include "linkstyle/results_database.hpp"
#include "linkstyle/study_linking.hpp"
#include "linkstyle/tuning_set.hpp"

namespace linkstyle {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::string base64(std::string_view bytes) {
  static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8) | uint8_t(bytes[i + 2]);
    for (int shift : {18, 12, 6, 0}) out += alphabet[(v >> shift) & 63];
  }
  if (i < bytes.size()) {
    uint32_t v = uint8_t(bytes[i]) << 16;
    if (i + 1 < bytes.size()) v |= uint8_t(bytes[i + 1]) << 8;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? alphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

// An image [1, 3, R, R] or [3, R, R] in [0, 1] as a PNG data URL.
std::string png_data_url(const torch::Tensor& image) {
  const auto side = static_cast<int>(image.size(-1));
  return "data:image/png;base64," + base64(encode_image_row({image}, side));
}

// The colours of part labels (part 0, the background, dark grey), as 0..1 RGB.
constexpr float kPartPalette[][3] = {{0.2f, 0.2f, 0.2f},   {0.12f, 0.47f, 0.71f}, {1.0f, 0.5f, 0.05f},
                                     {0.17f, 0.63f, 0.17f}, {0.84f, 0.15f, 0.16f}, {0.58f, 0.4f, 0.74f},
                                     {0.55f, 0.34f, 0.29f}, {0.89f, 0.47f, 0.76f}, {0.5f, 0.5f, 0.5f},
                                     {0.74f, 0.74f, 0.13f}, {0.09f, 0.75f, 0.81f}};
constexpr int64_t kPartColours = 11;

std::string part_colour_hex(int64_t part) {
  const auto& c = kPartPalette[part % kPartColours];
  return fmt::format("#{:02x}{:02x}{:02x}", int(c[0] * 255 + 0.5f), int(c[1] * 255 + 0.5f), int(c[2] * 255 + 0.5f));
}

// Part labels [R, R] as colours [3, R, R] in [0, 1].
torch::Tensor part_colours(const torch::Tensor& labels) {
  const auto table = torch::from_blob(const_cast<float*>(&kPartPalette[0][0]), {kPartColours, 3}, torch::kFloat);
  return table.index_select(0, labels.flatten().to(torch::kLong).remainder(kPartColours))
      .reshape({labels.size(0), labels.size(1), 3})
      .permute({2, 0, 1});
}

json part_colours_of(size_t parts) {
  json colours = json::array();
  for (size_t k = 0; k < parts; ++k) colours.push_back(part_colour_hex(static_cast<int64_t>(k)));
  return colours;
}

int64_t integer_field(const json& request, const char* name) {
  const auto& v = request.at(name);
  if (!v.is_number_integer()) throw ExplorerRequestError(400, fmt::format("'{}' must be an integer", name));
  return v.get<int64_t>();
}

// The study's counterfactual settings with the request's method, if it names one.
CounterfactualSettings settings_of_request(const json& request, CounterfactualSettings settings) {
  if (request.contains("method")) {
    if (!request["method"].is_string()) throw ExplorerRequestError(400, "'method' must be a string");
    settings.method = request["method"].get<std::string>();
    if (settings.method != "paper" && settings.method != "adam" && settings.method != "sparse" &&
        settings.method != "realistic")
      throw ExplorerRequestError(400, "method must be paper, adam, sparse or realistic");
  }
  return settings;
}

// The path's frames: alpha, the image, the target's probability and the top class at each point.
json path_frames(const torch::Tensor& alphas, const torch::Tensor& images, const torch::Tensor& probabilities,
                 int64_t target, const Classifier& classifier) {
  json frames = json::array();
  for (int64_t p = 0; p < images.size(0); ++p) {
    const int64_t top = probabilities[p].argmax().item<int64_t>();
    frames.push_back({{"alpha", alphas[p].item<double>()},
                      {"image", png_data_url(images[p].to(torch::kCPU))},
                      {"target_probability", probabilities[p][target].item<double>()},
                      {"top_class", top},
                      {"top_name", classifier.class_name(top)}});
  }
  return frames;
}

// The `count` units with the largest non-zero |shift|, with their shift and label.
json largest_shifts(const torch::Tensor& shift, int64_t count, const std::vector<json>& unit_labels) {
  const auto [values, order] = shift.abs().topk(std::min<int64_t>(count, shift.numel()));
  json units = json::array();
  for (int64_t i = 0; i < order.numel(); ++i) {
    const int64_t u = order[i].item<int64_t>();
    if (values[i].item<double>() == 0.0) break;
    units.push_back({{"unit", u}, {"shift", shift[u].item<double>()}, {"label", unit_labels[size_t(u)]["label"]}});
  }
  return units;
}

}  // namespace

struct Explorer::State {
  StudyConfig study;
  c10::Device device;
  Classifier classifier;
  Generator generator;
  LinkingNetwork network;
  TuningSet tuning;
  std::unique_ptr<PartSource> parts;
  std::vector<json> units;  // per unit: {unit, label, expressible, min, max}
  std::deque<std::pair<std::string, torch::Tensor>> uploads;  // id -> r [1, D]
  int64_t next_upload = 0;
  std::mutex models;  // one model call at a time
  // The counterfactual being optimised: its step and step limit (0 when none runs).
  std::atomic<int64_t> counterfactual_step{0}, counterfactual_steps{0};
  std::map<int64_t, ClassGeometry> geometries;  // realistic: by target class

  State(const StudyConfig& s, const c10::Device& d)
      : study(s),
        device(d),
        classifier(Classifier::load(s.classifier, d)),
        generator(Generator::load(s.generator, d)),
        network(load_study_linking(s, classifier, generator)),
        tuning(make_tuning_set(s, classifier, generator, network)) {
    if (study.sweep.parts != "none") parts = make_part_source(study, generator, tuning.latents, device);
    const auto low = tuning.range_min.to(torch::kCPU), high = tuning.range_max.to(torch::kCPU);
    std::map<int64_t, std::pair<std::string, bool>> labels;  // the label as describe_label gives it
    if (fs::exists(study.results_database())) {
      ResultsDatabase results(study.results_database(), ResultsDatabase::Mode::read_only);
      if (results.has_table("units"))
        for (const auto& row : results.unit_labels())
          labels[row.unit] = {describe_label(row.label, row.label_confidence), row.expressible};
    }
    for (int64_t u = 0; u < classifier.feature_dim(); ++u) {
      const auto found = labels.find(u);
      units.push_back({{"unit", u},
                       {"label", found == labels.end() ? "" : found->second.first},
                       {"expressible", found != labels.end() && found->second.second},
                       {"min", low[u].item<double>()},
                       {"max", high[u].item<double>()}});
    }
  }

  // The features r [1, D] a request starts from.
  torch::Tensor base_features(const json& request) {
    if (request.contains("upload")) {
      if (!request["upload"].is_string()) throw ExplorerRequestError(400, "'upload' must be a string");
      for (const auto& [id, r] : uploads)
        if (id == request["upload"].get<std::string>()) return r;
      throw ExplorerRequestError(404, "unknown upload (uploads are kept for the server's session, the last 32)");
    }
    if (!request.contains("sample")) throw ExplorerRequestError(400, "give 'sample' (a tuning sample) or 'upload'");
    const int64_t sample = integer_field(request, "sample");
    if (sample < 0 || sample >= tuning.size())
      throw ExplorerRequestError(400, fmt::format("sample {} is out of range [0, {})", sample, tuning.size()));
    return tuning.features.slice(0, sample, sample + 1).to(torch::kCPU).clone();
  }

  // The request's r: its sample or upload with the units it sets ({"<unit>": value | null});
  // base_values gets each named unit's own value.
  torch::Tensor request_features(const json& request, json& base_values) {
    auto features = base_features(request);
    if (!request.contains("units")) return features;
    const auto& units = request["units"];
    if (!units.is_object()) throw ExplorerRequestError(400, "'units' must be an object {\"<unit>\": value or null}");
    if (units.size() > 4096) throw ExplorerRequestError(400, "at most 4096 units per request");
    for (const auto& [key, value] : units.items()) {
      const int64_t unit = unit_of(key);
      base_values[key] = features[0][unit].item<double>();
      if (value.is_null()) continue;
      if (!value.is_number() || !std::isfinite(value.get<double>()))
        throw ExplorerRequestError(400, fmt::format("unit {}: the value must be a finite number", unit));
      features[0][unit] = value.get<double>();
    }
    return features;
  }

  int64_t unit_of(const std::string& key) const {
    size_t used = 0;
    int64_t unit = -1;
    try {
      unit = std::stoll(key, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != key.size() || key.empty() || unit < 0 || unit >= classifier.feature_dim())
      throw ExplorerRequestError(400, fmt::format("unknown unit '{}' (units are 0 to {})", key.substr(0, 40),
                                                  classifier.feature_dim() - 1));
    return unit;
  }

  torch::Tensor latents_of(const torch::Tensor& features) const {
    return torch::addmm(network.bias.to(features.device()), features, network.weight.to(features.device()).t());
  }

  json top_classes(const torch::Tensor& probabilities, int64_t count) const {
    const auto [values, indices] = probabilities.topk(std::min<int64_t>(count, probabilities.size(-1)));
    json top = json::array();
    for (int64_t i = 0; i < values.size(-1); ++i) {
      const int64_t k = indices[0][i].item<int64_t>();
      top.push_back({{"class", k}, {"name", classifier.class_name(k)}, {"probability", values[0][i].item<double>()}});
    }
    return top;
  }
};

Explorer::Explorer(const StudyConfig& study, const c10::Device& device)
    : state_(std::make_unique<State>(study, device)) {}
Explorer::~Explorer() = default;

json Explorer::describe() const {
  const auto& s = *state_;
  json classes = json::array(), sample_classes = json::array(), samples = json::array();
  for (int64_t k = 0; k < s.classifier.num_classes(); ++k) classes.push_back(s.classifier.class_name(k));
  for (int64_t k = 0; k < s.generator.num_classes(); ++k) sample_classes.push_back(s.generator.class_name(k));
  const auto generator_classes = s.tuning.generator_classes.to(torch::kCPU);
  for (int64_t i = 0; i < s.tuning.size(); ++i) {
    const int64_t c = generator_classes[i].item<int64_t>();
    samples.push_back({{"sample", i}, {"class", c}, {"name", s.generator.class_name(c)}});
  }
  return {{"study", s.study.folder.filename().string()},
          {"classes", classes},
          {"sample_classes", sample_classes},
          {"units", s.units},
          {"samples", samples},
          {"has_parts", s.parts != nullptr},
          {"part_names", s.parts ? json(s.parts->part_names()) : json::array()},
          {"part_colours", part_colours_of(s.parts ? s.parts->part_names().size() : 0)},
          {"resolution", s.generator.resolution()}};
}

json Explorer::render(const json& request) {
  const auto start = std::chrono::steady_clock::now();
  if (!request.is_object()) throw ExplorerRequestError(400, "the request must be a JSON object");
  auto& s = *state_;
  std::lock_guard lock(s.models);
  const torch::NoGradGuard no_grad;
  json base_values = json::object();
  const auto features = s.request_features(request, base_values);
  const auto w = s.latents_of(features.to(s.device));
  const auto image = generator_to_classifier_range(s.generator.synthesis(w));
  const auto probabilities = torch::softmax(s.classifier.head(s.classifier.features(image)), 1).to(torch::kCPU);
  json answer = {{"image", png_data_url(image.to(torch::kCPU))},
                 {"top", s.top_classes(probabilities, 5)},
                 {"base_values", base_values},
                 {"parts", nullptr}};
  if (s.parts) answer["parts"] = png_data_url(part_colours(s.parts->label(image, w)[0].to(torch::kCPU)));
  answer["milliseconds"] = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return answer;
}

json Explorer::upload(const std::string& bytes) {
  if (bytes.size() > max_upload_bytes)
    throw ExplorerRequestError(413, fmt::format("the upload is {} bytes; at most {}", bytes.size(), max_upload_bytes));
  if (bytes.empty()) throw ExplorerRequestError(400, "the upload is empty");
  torch::Tensor image;
  try {
    image = decode_image(bytes, "upload");
  } catch (const Error& error) {
    throw ExplorerRequestError(400, error.what());
  }
  auto& s = *state_;
  std::lock_guard lock(s.models);
  const torch::NoGradGuard no_grad;
  const auto r = s.classifier.features(image.to(s.device)).to(torch::kCPU, torch::kFloat);
  if (!torch::isfinite(r).all().item<bool>()) throw ExplorerRequestError(400, "the classifier's features of the upload are not finite");
  const int64_t k = s.classifier.head(r.to(s.device)).argmax(1).item<int64_t>();
  const auto id = fmt::format("upload-{}", s.next_upload++);
  s.uploads.emplace_back(id, r);
  if (s.uploads.size() > 32) s.uploads.pop_front();
  return {{"upload", id}, {"class", k}, {"name", s.classifier.class_name(k)}};
}

json Explorer::counterfactual(const json& request) {
  if (!request.is_object()) throw ExplorerRequestError(400, "the request must be a JSON object");
  if (!request.contains("to")) throw ExplorerRequestError(400, "give 'to', the target class");
  auto& s = *state_;
  const int64_t target = integer_field(request, "to");
  if (target < 0 || target >= s.classifier.num_classes())
    throw ExplorerRequestError(400, fmt::format("class {} is out of range [0, {})", target, s.classifier.num_classes()));
  const auto settings = settings_of_request(request, s.study.counterfactual);
  std::lock_guard lock(s.models);
  // From the sliders' r' when units are set, else from the sample or upload itself.
  json base_values = json::object();
  const auto r = s.request_features(request, base_values).to(s.device);
  int64_t source = 0;
  {
    const torch::NoGradGuard no_grad;
    source = s.classifier.head(r).argmax(1).item<int64_t>();
  }
  if (source == target)
    throw ExplorerRequestError(400, fmt::format("the sample is already classified as {}", s.classifier.class_name(target)));
  const int64_t id = request.contains("sample") ? integer_field(request, "sample") : 0;
  const auto initial = settings.start == "zero" ? torch::zeros({1, r.size(1)})
                                                : initial_shifts(settings.shift_seed, {id}, r.size(1));
  // The target's pairs: realistic's terms and every counterfactual's realism (kept per target).
  std::optional<RealisticTerms> terms;
  const ClassGeometry* geometry = nullptr;
  auto found = s.geometries.find(target);
  try {
    if (found == s.geometries.end())
      found = s.geometries.emplace(target, class_geometry(s.study, s.classifier, target, true)).first;
    geometry = &found->second;
    if (settings.method == "realistic") terms = geometry->terms_for(source, target);
  } catch (const Error& error) {
    if (settings.method == "realistic") throw ExplorerRequestError(400, error.what());
  }
  s.counterfactual_step = 0;
  s.counterfactual_steps = settings.max_steps;
  struct Finished {
    State& s;
    ~Finished() { s.counterfactual_steps = 0; }
  } finished{s};
  const auto result = optimise_shifts({s.classifier, s.generator, s.network}, r, source, target,
                                      settings.method == "realistic" ? torch::zeros_like(r) : initial.to(s.device),
                                      settings, terms ? &*terms : nullptr,
                                      [&s](int64_t step) { s.counterfactual_step = step; });
  const torch::NoGradGuard no_grad;
  const auto alphas = torch::linspace(0.0, settings.path_end, settings.path_points, torch::kFloat).to(s.device);
  const auto shifted = torch::relu(r - alphas.unsqueeze(1) * result.shift);  // [P, D]
  const auto images = generator_to_classifier_range(s.generator.synthesis(s.latents_of(shifted)));
  const auto probabilities = torch::softmax(s.classifier.head(s.classifier.features(images)), 1).to(torch::kCPU);
  const json frames = path_frames(alphas, images, probabilities, target, s.classifier);
  json realism = nullptr, realism_threshold = nullptr;
  if (geometry) {
    const auto image = generator_to_classifier_range(s.generator.synthesis(s.latents_of(torch::relu(r - result.shift))));
    realism = geometry->reference.ratios(s.classifier.features(image))[0].item<double>();
    realism_threshold = geometry->reference.threshold;
  }
  const json units = largest_shifts(result.shift[0].to(torch::kCPU), settings.top_units, s.units);
  return {{"success", result.success[0].item<bool>()},
          {"steps", result.steps[0].item<int64_t>()},
          {"method", settings.method},
          {"realism", realism},
          {"realism_threshold", realism_threshold},
          {"source", s.classifier.class_name(source)},
          {"target", s.classifier.class_name(target)},
          {"frames", frames},
          {"units", units}};
}

json Explorer::counterfactual_progress() const {
  const int64_t steps = state_->counterfactual_steps;
  return {{"running", steps > 0}, {"step", steps > 0 ? int64_t(state_->counterfactual_step) : int64_t{0}},
          {"max_steps", steps}};
}

std::string Explorer::study_file(const std::string& relative, std::string* content_type) const {
  const auto& s = *state_;
  const auto inside = path_inside_folder(s.study.folder, relative);
  if (!inside) throw ExplorerRequestError(403, "the path is outside the study folder");
  const auto& file = *inside;
  if (!fs::is_regular_file(file)) throw ExplorerRequestError(404, "no such file in the study");
  static const std::map<std::string, std::string> types{
      {".png", "image/png"},     {".jpg", "image/jpeg"},          {".html", "text/html; charset=utf-8"},
      {".css", "text/css"},      {".js", "text/javascript"},      {".json", "application/json"},
      {".csv", "text/csv"},      {".svg", "image/svg+xml"},       {".toml", "text/plain; charset=utf-8"}};
  const auto type = types.find(file.extension().string());
  if (content_type) *content_type = type == types.end() ? "application/octet-stream" : type->second;
  return read_file(file);
}

}  // namespace linkstyle
