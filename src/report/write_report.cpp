#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <fstream>
#include <random>
#include <set>

#include <unistd.h>

#include <fmt/format.h>
#include <torch/torch.h>

#include "../folder_paths.hpp"
#include "html.hpp"
#include "linkstyle/atomic_file.hpp"
#include "linkstyle/errors.hpp"
#include "linkstyle/label_confidence.hpp"
#include "linkstyle/linking.hpp"
#include "linkstyle/pairs.hpp"
#include "linkstyle/reconstruct.hpp"
#include "linkstyle/report.hpp"
#include "linkstyle/study_linking.hpp"
#include "linkstyle/tensor_io.hpp"
#include "linkstyle/tuning_set.hpp"
#include "report_assets.hpp"
#include "report_data.hpp"
#include "svg_charts.hpp"

namespace linkstyle {
namespace fs = std::filesystem;
using json = nlohmann::json;
using report::ChartBar;
using report::ChartFrame;
using report::ChartSeries;
using report::escape_html;
using report::format_number;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string unit_page_name(int64_t unit) { return fmt::format("unit-{:05d}.html", unit); }
std::string strip_name(int64_t unit, int64_t sample) { return fmt::format("unit-{:05d}-sample-{:03d}.png", unit, sample); }

// The report's files, written into a staging folder that replaces report/ at the end.
class ReportFolder {
 public:
  ReportFolder(const StudyConfig& study) : study_(study) {
    final_ = study.folder / "report";
    staging_ = study.folder / fmt::format("report.tmp-{}", ::getpid());
    fs::remove_all(staging_);
    ensure_writable_directory(staging_);
    for (const char* sub : {"assets", "units", "images/strips", "images/reconstructions", "images/counterfactuals"})
      fs::create_directories(staging_ / sub);
  }
  ReportFolder(const ReportFolder&) = delete;
  ReportFolder& operator=(const ReportFolder&) = delete;
  ~ReportFolder() {
    if (!committed_) {
      std::error_code ignored;
      fs::remove_all(staging_, ignored);
    }
  }

  void write(const fs::path& relative, std::string_view bytes) {
    const auto file = staging_ / relative;
    std::ofstream out(file, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) throw Error(file, "cannot write (disk full or not writable?)");
    ++files_;
    if (relative.extension() == ".html") ++pages_;
  }

  // Copies a file of the study (a path relative to the study folder, as the database stores it)
  // into the report; false when it is missing or lies outside the study folder.
  bool copy_from_study(const std::string& study_relative, const fs::path& relative) {
    const auto source = path_inside_folder(study_.folder, study_relative);
    if (!source || !fs::is_regular_file(*source)) return false;
    fs::create_directories((staging_ / relative).parent_path());
    std::error_code error;
    fs::copy_file(*source, staging_ / relative, fs::copy_options::overwrite_existing, error);
    if (error) throw Error(staging_ / relative, "cannot copy " + source->string() + ": " + error.message());
    ++files_;
    return true;
  }

  // Moves the staging folder into place (the old report goes only once the new one is whole).
  void commit() {
    const auto old = study_.folder / fmt::format("report.old-{}", ::getpid());
    std::error_code ignored;
    fs::remove_all(old, ignored);
    if (fs::exists(final_)) fs::rename(final_, old);
    fs::rename(staging_, final_);
    committed_ = true;
    fs::remove_all(old, ignored);
  }

  int64_t bytes() const {
    int64_t total = 0;
    for (const auto& entry : fs::recursive_directory_iterator(final_))
      if (entry.is_regular_file()) total += static_cast<int64_t>(entry.file_size());
    return total;
  }

  const fs::path& folder() const { return final_; }
  int64_t pages() const { return pages_; }
  int64_t files() const { return files_; }

 private:
  const StudyConfig& study_;
  fs::path final_, staging_;
  bool committed_ = false;
  int64_t pages_ = 0, files_ = 0;
};

struct ReportContext {
  const StudyConfig& study;
  const Classifier& classifier;
  const Generator& generator;
  const ReportSettings& settings;
  ReportFolder& out;
  std::optional<report::SweepData> sweep;
  std::optional<LinkingNetwork> network;
  std::vector<int64_t> strip_samples;  // tuning samples shown in the strips (the first: the gallery's)
  bool strips_rendered = false;
  bool shapes_world = false;
  std::set<int64_t> unit_pages;  // units with a page (the swept ones)

  // The unit's number, linked to its page when it has one (from a page at the report's top).
  std::string unit_link(int64_t unit) const {
    if (!unit_pages.count(unit)) return std::to_string(unit);
    return fmt::format("<a href=\"units/{}\">{}</a>", unit_page_name(unit), unit);
  }

  std::string page(const std::string& title, const std::string& body, int depth, const std::string& active) const {
    return report::report_page(title, body, depth, active, sweep && !sweep->counterfactuals.empty(), shapes_world);
  }
  std::string class_name(int64_t k) const { return classifier.class_name(k); }
};

std::string note(const std::string& text) { return "<p class=\"note\">" + escape_html(text) + "</p>"; }

std::string table_row(const std::vector<std::string>& cells, bool header = false) {
  std::string row = "<tr>";
  for (const auto& cell : cells) row += header ? "<th>" + cell + "</th>" : "<td>" + cell + "</td>";
  return row + "</tr>";
}

// --- strips ----------------------------------------------------------------------------------

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

// --- overview -----------------------------------------------------------------------------------

// Up to `count` rows of the pairs (every k-th), with their generator classes, and whether held out.
struct PairsSample {
  torch::Tensor features, latents, classes, held_out;
};

PairsSample sample_pairs(const PairsManifest& manifest, int64_t count, double holdout_fraction) {
  const int64_t stride = std::max<int64_t>(1, manifest.total_rows / std::max<int64_t>(1, count));
  std::vector<torch::Tensor> r, w, c;
  std::vector<int64_t> rows;
  for (const auto& shard : manifest.shards) {
    const auto labels = read_npy(manifest.folder / shard.labels).to(torch::kLong);
    const auto features = read_npy(manifest.folder / shard.features);
    const auto latents = read_npy(manifest.folder / shard.latents);
    std::vector<int64_t> picked;
    for (int64_t i = 0; i < shard.rows; ++i)
      if ((shard.first_row + i) % stride == 0) picked.push_back(i), rows.push_back(shard.first_row + i);
    const auto index = torch::tensor(picked, torch::kLong);
    r.push_back(features.index_select(0, index));
    w.push_back(latents.index_select(0, index));
    c.push_back(labels.index_select(0, index));
  }
  PairsSample out;
  if (r.empty()) return out;
  out.features = torch::cat(r).to(torch::kFloat);
  out.latents = torch::cat(w).to(torch::kFloat);
  out.classes = torch::cat(c);
  std::vector<int64_t> held;
  for (auto row : rows) held.push_back(is_held_out(row, holdout_fraction) ? 1 : 0);
  out.held_out = torch::tensor(held, torch::kLong).to(torch::kBool);
  return out;
}

// The first two principal components of x [n, d] (float64), sign fixed so that the largest
// loading is positive.
torch::Tensor principal_components(const torch::Tensor& x) {
  const auto centred = x.to(torch::kDouble) - x.to(torch::kDouble).mean(0, true);
  const auto [u, s, vh] = torch::linalg::svd(centred, false, c10::nullopt);
  auto components = vh.slice(0, 0, 2);  // [2, d]
  const auto largest = components.abs().argmax(1);
  const auto signs = components.gather(1, largest.unsqueeze(1)).sign();
  return centred.matmul((components * signs).t());  // [n, 2]
}

std::string pca_chart(const std::string& title, const torch::Tensor& x, const torch::Tensor& classes,
                      const ReportContext& context) {
  const auto projected = principal_components(x).contiguous();
  std::map<int64_t, ChartSeries> by_class;
  for (int64_t i = 0; i < projected.size(0); ++i) {
    const int64_t c = classes[i].item<int64_t>();
    auto& series = by_class[c];
    if (series.x.empty()) series = {context.generator.class_name(c), {}, {}, report::class_colour(c), true};
    series.x.push_back(projected[i][0].item<double>());
    series.y.push_back(projected[i][1].item<double>());
  }
  std::vector<ChartSeries> series;
  for (auto& [c, s] : by_class) series.push_back(std::move(s));
  return report::xy_chart({title, "PC 1", "PC 2"}, series);
}

std::string overview_page(ReportContext& context) {
  const auto& study = context.study;
  std::string body;
  body += "<h2>Models</h2><table>";
  body += table_row({"", "file", "details"}, true);
  body += table_row({"classifier", escape_html(study.classifier.string()),
                     escape_html(fmt::format("{} features, {} classes", context.classifier.feature_dim(),
                                             context.classifier.num_classes()))});
  body += table_row({"generator", escape_html(study.generator.string()),
                     escape_html(fmt::format("w: {} dimensions, {} classes, {} px", context.generator.w_dim(),
                                             context.generator.num_classes(), context.generator.resolution()))});
  body += table_row({"segmenter", escape_html(study.segmenter.empty() ? "none" : study.segmenter.string()),
                     escape_html(context.sweep ? fmt::format("{} parts", context.sweep->part_names.size()) : "")});
  body += "</table>";
  body += "<h2>Classes</h2><p class=\"classes\">";
  for (int64_t k = 0; k < context.generator.num_classes(); ++k)
    body += fmt::format("<span class=\"class-chip\" style=\"border-color:{}\">{} · {}</span> ", report::class_colour(k), k,
                        escape_html(context.generator.class_name(k)));
  body += "</p>";

  body += "<h2>The linking network's fit</h2>";
  if (!fs::exists(study.fit_report_file())) {
    body += note("No fit yet: run `linkstyle pairs` and `linkstyle fit`.");
    return context.page("Overview", body, 0, "Overview");
  }
  const auto fit = json::parse(read_file(study.fit_report_file()), nullptr, false);
  if (fit.is_discarded() || !fit.contains("held_out")) throw Error(study.fit_report_file(), "is not a fit report");
  const auto& held = fit["held_out"];
  auto number = [](const json& j, const char* key) { return j.contains(key) && j[key].is_number() ? j[key].get<double>() : NAN; };
  body += "<table>";
  body += table_row({"method", "held-out pairs", "R² (overall)", "R² (mean over w dimensions)", "cosine", "MSE"}, true);
  body += table_row({escape_html(fit.value("method", std::string("?"))), format_number(number(held, "pairs"), 6),
                     format_number(number(held, "r2"), 4), format_number(number(held, "r2_mean_over_dims"), 4),
                     format_number(number(held, "cosine"), 4), format_number(number(held, "mse"), 4)});
  body += "</table><div class=\"charts\">";
  if (held.contains("r2_per_dim") && held["r2_per_dim"].is_array()) {
    ChartSeries per_dim{"", {}, {}, "#1f77b4", true};
    for (size_t i = 0; i < held["r2_per_dim"].size(); ++i) {
      per_dim.x.push_back(static_cast<double>(i));
      per_dim.y.push_back(held["r2_per_dim"][i].is_number() ? held["r2_per_dim"][i].get<double>() : NAN);
    }
    body += report::xy_chart({"Held-out R² per w dimension", "w dimension", "R²"}, {per_dim});
  }
  if (!fs::exists(study.pairs_folder() / "manifest.json")) return context.page("Overview", body + "</div>", 0, "Overview");
  const auto manifest = PairsManifest::load(study.pairs_folder());
  const double holdout = context.network->metadata.value("holdout_fraction", study.pairs.holdout_fraction);
  const auto pairs = sample_pairs(manifest, std::max(context.settings.pca_points, context.settings.scatter_points), holdout);
  if (pairs.features.defined() && pairs.features.size(0) > 2) {
    const torch::NoGradGuard no_grad;
    const auto held_rows = pairs.held_out.nonzero().squeeze(1);
    if (held_rows.numel() > 0) {
      const auto r = pairs.features.index_select(0, held_rows);
      const auto w = pairs.latents.index_select(0, held_rows);
      const auto predicted = torch::addmm(context.network->bias.to(torch::kCPU), r, context.network->weight.to(torch::kCPU).t());
      // (row, dimension) values: every dimension of the first rows, up to scatter_points points.
      const auto flat_true = w.flatten().slice(0, 0, context.settings.scatter_points);
      const auto flat_predicted = predicted.flatten().slice(0, 0, context.settings.scatter_points);
      ChartSeries points{"", {}, {}, "#1f77b4", true};
      for (int64_t i = 0; i < flat_true.numel(); ++i)
        points.x.push_back(flat_true[i].item<double>()), points.y.push_back(flat_predicted[i].item<double>());
      ChartFrame frame{fmt::format("Predicted L(r) against true w ({} held-out values)", flat_true.numel()), "true w",
                       "predicted L(r)"};
      frame.diagonal = true;
      body += report::xy_chart(frame, {points});
    }
    body += "</div><h2>PCA of the pairs, coloured by class</h2><div class=\"charts\">";
    const auto rows = std::min<int64_t>(pairs.features.size(0), context.settings.pca_points);
    body += pca_chart(fmt::format("Classifier features r ({} pairs)", rows), pairs.features.slice(0, 0, rows),
                      pairs.classes.slice(0, 0, rows), context);
    body += pca_chart(fmt::format("Generator latents w ({} pairs)", rows), pairs.latents.slice(0, 0, rows),
                      pairs.classes.slice(0, 0, rows), context);
  }
  body += "</div>";
  return context.page("Overview", body, 0, "Overview");
}

// --- reconstructions ----------------------------------------------------------------------------

std::string verdict_text(const json& verdict) {
  if (!verdict.is_object()) return "?";
  const double probability = verdict.value("probability", NAN);
  return fmt::format("{} ({})", verdict.value("name", std::string("?")),
                     std::isfinite(probability) ? fmt::format("{:.2f}%", 100 * probability) : "n/a");
}

std::string reconstructions_page(ReportContext& context) {
  std::string body;
  const auto folder = context.study.reconstructions_folder();
  std::vector<fs::path> reports;
  if (fs::is_directory(folder))
    for (const auto& entry : fs::directory_iterator(folder))
      if (entry.path().extension() == ".json") reports.push_back(entry.path());
  std::sort(reports.begin(), reports.end());
  if (reports.empty()) body += note("No reconstructions yet: run `linkstyle reconstruct --study S image.png ...`.");
  body += "<p>Each row: the image beside G(L(r(image))), the generator's picture of what the classifier sees.</p>";
  body += "<div class=\"cards wide\">";
  for (const auto& file : reports) {
    const auto result = json::parse(read_file(file), nullptr, false);
    if (result.is_discarded()) throw Error(file, "is not valid JSON");
    const auto picture = file.stem().string() + ".png";
    const auto copied = context.out.copy_from_study((fs::relative(file.parent_path(), context.study.folder) / picture).string(),
                                                    fs::path("images/reconstructions") / picture);
    body += "<figure class=\"card\">";
    if (copied)
      body += fmt::format("<img src=\"images/reconstructions/{}\" alt=\"{} and its reconstruction\">", escape_html(picture),
                          escape_html(file.stem().string()));
    body += fmt::format(
        "<figcaption><b>{}</b><br>original: {} · reconstruction: {} · {} · feature cosine {}</figcaption></figure>",
        escape_html(file.stem().string()), escape_html(verdict_text(result.value("original", json()))),
        escape_html(verdict_text(result.value("reconstruction", json()))),
        result.value("same_class", false) ? "same class" : "<span class=\"warn\">class changed</span>",
        format_number(result.value("feature_cosine", NAN), 4));
  }
  body += "</div>";
  return context.page("Reconstructions", body, 0, "Reconstructions");
}

// --- units --------------------------------------------------------------------------------------

std::string strip_src(int64_t unit, int64_t sample, int depth) {
  return fmt::format("{}images/strips/{}", depth ? "../" : "", strip_name(unit, sample));
}

// The strip sample that shows a concept's (or label's) part best: the largest mean area of the part at the
// sweep's first step (the first strip sample when none shows it).
int64_t concept_sample(const ReportContext& context, const std::string& concept_name) {
  if (context.strip_samples.empty()) return 0;
  // The concept's part: the longest part name that begins "<part> <measure>".
  const std::map<int64_t, double>* areas = nullptr;
  size_t longest = 0;
  for (const auto& [part, part_areas] : context.sweep->part_area)
    if (concept_name.rfind(part + " ", 0) == 0 && part.size() > longest) areas = &part_areas, longest = part.size();
  int64_t best = context.strip_samples.front();
  double best_area = 0;
  if (areas)
    for (int64_t sample : context.strip_samples) {
      const auto found = areas->find(sample);
      if (found != areas->end() && found->second > best_area) best = sample, best_area = found->second;
    }
  return best;
}

bool reliable_label(const report::UnitRow& u) { return is_reliable_label(u.label, u.label_confidence); }

json gallery_json(const ReportContext& context) {
  json units = json::array();
  for (const auto& u : context.sweep->units) {
    json concepts = json::array();
    for (size_t i = 0; i < std::min<size_t>(24, u.concepts.size()); ++i)
      concepts.push_back({{"part", u.concepts[i].part}, {"measure", u.concepts[i].measure}, {"z", u.concepts[i].z}});
    units.push_back({{"unit", u.unit},
                     {"label", u.label},
                     {"part", u.label_part},
                     {"measure", u.label_measure},
                     {"expressible", u.expressible},
                     {"gain", std::isfinite(u.gain) ? json(u.gain) : json()},
                     {"correlation", std::isfinite(u.correlation) ? json(u.correlation) : json()},
                     {"label_z", std::isfinite(u.label_z) ? json(u.label_z) : json()},
                     {"confidence", std::isfinite(u.label_confidence) ? json(u.label_confidence) : json()},
                     {"reliable", reliable_label(u)},
                     {"concepts", concepts},
                     {"strip", context.strips_rendered && !context.strip_samples.empty()
                                   ? json(strip_src(u.unit, concept_sample(context, u.label), 0))
                                   : json()}});
  }
  return units;
}

std::string units_page(ReportContext& context) {
  std::string body;
  if (!context.sweep || context.sweep->units.empty()) {
    body += note("No sweep yet: run `linkstyle sweep`.");
    return context.page("Units", body, 0, "Units");
  }
  std::set<std::string> parts(context.sweep->part_names.begin(), context.sweep->part_names.end());
  std::set<std::string> measures;
  for (const auto& u : context.sweep->units)
    for (const auto& c : u.concepts) measures.insert(c.measure);
  std::string part_options = "<option value=\"\">any part</option>", measure_options = "<option value=\"\">any measure</option>";
  for (const auto& p : parts) part_options += fmt::format("<option>{}</option>", escape_html(p));
  for (const auto& m : measures) measure_options += fmt::format("<option>{}</option>", escape_html(m));
  body += fmt::format(
      "<p>Every swept unit: its sweep strip (the unit set from its minimum to its maximum over the tuning samples, "
      "on the sample where its label's part is largest; unlabelled units on the sample of class {}), its label and "
      "strongest significant concepts. Filter and sort; click a unit for its page.</p>"
      "<form id=\"filters\" class=\"filters\" onsubmit=\"return false\">"
      "<label>label <input id=\"filter-label\" type=\"search\" placeholder=\"e.g. roof, area +\"></label>"
      "<label>expressible <select id=\"filter-expressible\"><option value=\"\">any</option><option value=\"yes\">yes</option>"
      "<option value=\"no\">no</option></select></label>"
      "<label>labels <select id=\"filter-reliable\"><option value=\"\">any</option><option value=\"yes\">reliable "
      "only</option></select></label>"
      "<label>concept part <select id=\"filter-part\">{}</select></label>"
      "<label>concept measure <select id=\"filter-measure\">{}</select></label>"
      "<label>sort <select id=\"sort\"><option value=\"unit\">unit</option><option value=\"correlation\">cycle correlation"
      "</option><option value=\"gain\">gain</option><option value=\"label_z\">label |z|</option>"
      "<option value=\"confidence\">label confidence</option></select></label>"
      "<span id=\"gallery-count\"></span></form>"
      "<div id=\"gallery\" class=\"cards\"></div><p><button id=\"show-more\" type=\"button\">show more</button></p>"
      "<script type=\"application/json\" id=\"units-data\">{}</script>"
      "<script src=\"assets/gallery.js\"></script>",
      context.strip_samples.empty() ? "?" : escape_html(context.class_name(context.sweep->sample_classes.count(context.strip_samples.front()) ? context.sweep->sample_classes.at(context.strip_samples.front()) : 0)),
      part_options, measure_options, report::script_json(gallery_json(context)));
  return context.page("Units", body, 0, "Units");
}

std::string unit_page(const ReportContext& context, const report::UnitRow& u) {
  const auto& sweep = *context.sweep;
  std::string body;
  body += fmt::format("<p class=\"unit-label\">label: <b>{}</b> · {} · gain {} · cycle correlation {} · specificity {} · "
                      "logit change {} · class flips {}</p>",
                      escape_html(describe_label(u.label, u.label_confidence)),
                      u.expressible ? "expressible" : "not expressible", format_number(u.gain), format_number(u.correlation),
                      format_number(u.specificity), format_number(u.logit_change), format_number(u.class_flip_rate));
  body += fmt::format("<h2>Sweeps</h2><p>The unit set to {} values from {} to {}, one row per tuning sample.</p>",
                      context.study.sweep.steps, format_number(u.range_min), format_number(u.range_max));
  if (context.strips_rendered)
    for (int64_t sample : context.strip_samples) {
      const auto c = sweep.sample_classes.count(sample) ? sweep.sample_classes.at(sample) : -1;
      body += fmt::format("<figure class=\"strip\"><img src=\"{}\" alt=\"unit {} sample {}\"><figcaption>sample {} (class "
                          "{})</figcaption></figure>",
                          strip_src(u.unit, sample, 1), u.unit, sample, sample,
                          escape_html(c >= 0 ? context.generator.class_name(c) : "?"));
    }
  body += "<div class=\"charts\">";
  const auto curves = sweep.curves.find(u.unit);
  if (curves != sweep.curves.end()) {
    std::vector<ChartSeries> cycle, logits;
    for (const auto& [sample, activation] : curves->second.activation) {
      const auto c = sweep.sample_classes.count(sample) ? sweep.sample_classes.at(sample) : 0;
      cycle.push_back({"", curves->second.values, activation, report::class_colour(c), false});
      logits.push_back({"", curves->second.values, curves->second.class_logit.at(sample), report::class_colour(c), false});
    }
    ChartFrame frame{"Cycle: re-encoded r'_i against the set value v", "set value v", "re-encoded r'_i"};
    frame.diagonal = true;
    body += report::xy_chart(frame, cycle);
    body += report::xy_chart({"Class logit along the sweep (each sample's class)", "set value v", "logit"}, logits);
  }
  body += "</div>";
  const auto changes = sweep.part_changes.find(u.unit);
  if (changes != sweep.part_changes.end()) {
    // One chart per measure (each on its own scale), parts without a value left out.
    std::map<std::string, std::vector<ChartBar>> by_measure;
    for (const auto& c : changes->second)
      if (std::isfinite(c.change)) by_measure[c.measure].push_back({c.part, c.change, c.null_low, c.null_high});
    body += "<h2>Part measures</h2><p>Mean change of each part's measure from the sweep's start to its end; grey: "
            "the central 95% of the same change along random directions (the null).</p><div class=\"charts\">";
    for (const auto& [measure, bars] : by_measure) {
      ChartFrame frame{measure, "change over the sweep", ""};
      frame.width = 360;
      body += report::bar_chart(frame, bars);
    }
    body += "</div>";
  }
  if (!u.concepts.empty()) {
    body += "<h2>Significant concepts</h2><table>" + table_row({"part", "measure", "z", "change"}, true);
    for (const auto& c : u.concepts)
      body += table_row({escape_html(c.part), escape_html(c.measure), format_number(c.z), format_number(c.change)});
    body += "</table>";
  }
  body += "<p><a href=\"../units.html\">all units</a></p>";
  return context.page(fmt::format("Unit {}", u.unit), body, 1, "Units");
}

std::string concepts_page(const ReportContext& context) {
  std::string body;
  if (!context.sweep || context.sweep->concept_top_units.empty()) {
    body += note("No significant concepts yet: run `linkstyle sweep` (concepts need part measures).");
    return context.page("Concepts", body, 0, "Concepts");
  }
  body += "<p>For each part and measure, the units whose sweeps change it most significantly (by |z| against the "
          "null), each shown on the strip sample where the part is largest.</p>";
  for (const auto& [concept_name, units] : context.sweep->concept_top_units) {
    std::string anchor = "concept-";
    for (char c : concept_name) anchor += std::isalnum(static_cast<unsigned char>(c)) ? c : '-';
    body += fmt::format("<h2 id=\"{}\">{}</h2><div class=\"cards\">", escape_html(anchor), escape_html(concept_name));
    const auto sample = concept_sample(context, concept_name);
    for (const auto& [unit, z] : units) {
      body += fmt::format("<a class=\"card\" href=\"units/{}\">", unit_page_name(unit));
      if (context.strips_rendered && !context.strip_samples.empty())
        body += fmt::format("<img loading=\"lazy\" src=\"{}\" alt=\"unit {}\">", strip_src(unit, sample, 0), unit);
      body += fmt::format("<span>unit {} · z {}</span></a>", unit, format_number(z));
    }
    body += "</div>";
  }
  return context.page("Concepts", body, 0, "Concepts");
}

std::string counterfactuals_page(ReportContext& context) {
  std::string body;
  body += "<p>Each run shifts the features of samples of one class until the classifier decides for another; the "
          "image is G(L(relu(r - s))). Paths: the shift scaled by alpha, with the target's probability.</p>";
  body += "<p>Realism: the mean distance of the image's features to their nearest pairs of the target class, over "
          "the target's own (1 is typical of the class; larger is less like it). With a judge (a second classifier "
          "trained apart), the judge's verdict counts a success only when it agrees, and the Frechet distance is in its "
          "features; the reference figure is the target's own pairs against each other at the same size.</p>";
  body += "<table>" + table_row({"run", "method", "from", "to", "samples", "success", "judge agrees", "median realism",
                                 "Frechet (target's own)"},
                                true);
  const auto percent = [](int64_t part, int64_t whole) {
    return whole ? format_number(100.0 * double(part) / double(whole), 3) + "%" : std::string("n/a");
  };
  for (const auto& run : context.sweep->counterfactuals)
    body += table_row({fmt::format("<a href=\"#run-{0}\">{0}</a>", escape_html(run.run)), escape_html(run.method),
                       escape_html(run.source_name.empty() ? run.origin : run.source_name), escape_html(run.target_name),
                       std::to_string(run.samples), percent(run.successes, run.samples),
                       run.judge_successes < 0 ? "no judge" : percent(run.judge_successes, run.samples),
                       format_number(run.median_realism),
                       run.realism_space.empty()
                           ? "n/a"
                           : fmt::format("{} ({}; {})", format_number(run.frechet_distance),
                                         format_number(run.reference_frechet_distance), escape_html(run.realism_space))});
  body += "</table>";
  for (const auto& run : context.sweep->counterfactuals) {
    body += fmt::format("<section id=\"run-{0}\"><h2>{0}</h2>", escape_html(run.run));
    std::vector<ChartSeries> curves;
    for (const auto& s : run.shown) {
      const auto base = fs::path("images/counterfactuals") / run.run;
      std::string images;
      for (const auto& [file, kind] : {std::pair{s.image, "original | counterfactual"}, std::pair{s.path_image, "path"}}) {
        if (file.empty()) continue;
        const auto target = base / fs::path(file).filename();
        if (context.out.copy_from_study(file, target))
          images += fmt::format("<img loading=\"lazy\" src=\"{}\" alt=\"sample {} {}\">", escape_html(target.generic_string()),
                                s.sample, kind);
      }
      body += fmt::format("<figure class=\"counterfactual\">{}<figcaption>sample {}: {} after {} step{} · target "
                          "probability {} · margin {} · realism {} · {} · crossing at alpha {} · {} units carry 90% "
                          "of |s|</figcaption></figure>",
                          images, s.sample, s.success ? "reached" : "<span class=\"warn\">not reached</span>", s.steps,
                          s.steps == 1 ? "" : "s", format_number(s.target_probability), format_number(s.margin),
                          format_number(s.realism),
                          s.judge_class < 0 ? std::string("no judge")
                          : s.judge_class == run.target_class
                              ? fmt::format("the judge agrees (p {})", format_number(s.judge_target_probability))
                              : fmt::format("<span class=\"warn\">the judge disagrees</span> (p {})",
                                            format_number(s.judge_target_probability)),
                          format_number(s.crossing_alpha), s.units_90);
      curves.push_back({fmt::format("sample {}", s.sample), s.alphas, s.target_probabilities,
                        report::class_colour(static_cast<int64_t>(curves.size())), false});
    }
    body += report::xy_chart({"Target probability along the path", "alpha", "p(" + run.target_name + ")"}, curves);
    if (!run.relevant_units.empty()) {
      body += "<table>" + table_row({"relevant unit", "samples", "label", "significant concepts"}, true);
      for (const auto& u : run.relevant_units)
        body += table_row({context.unit_link(u.unit),
                           fmt::format("{} ({}%)", u.samples, format_number(100 * u.share, 3)),
                           escape_html(u.label.empty() ? "none" : u.label), escape_html(u.concepts)});
      body += "</table>";
    }
    body += "</section>";
  }
  return context.page("Counterfactuals", body, 0, "Counterfactuals");
}

std::string json_cell(const json& value) {
  if (value.is_number_float()) return format_number(value.get<double>(), 4);
  if (value.is_string()) return escape_html(value.get<std::string>());
  if (value.is_array()) {
    std::string out;
    for (const auto& v : value) out += (out.empty() ? "" : ", ") + json_cell(v);
    return out;
  }
  if (value.is_object()) {
    std::string out;
    for (const auto& [key, v] : value.items()) out += (out.empty() ? "" : "; ") + escape_html(key) + " " + json_cell(v);
    return out;
  }
  return escape_html(value.dump());
}

// A table of an array of objects: one column per key of the first object.
std::string json_table(const ReportContext& context, const json& rows, size_t limit = 1000) {
  if (!rows.is_array() || rows.empty() || !rows[0].is_object()) return "";
  std::vector<std::string> keys, header;
  for (const auto& [key, value] : rows[0].items()) keys.push_back(key), header.push_back(escape_html(key));
  std::string out = "<table>" + table_row(header, true);
  for (size_t i = 0; i < std::min(limit, rows.size()); ++i) {
    std::vector<std::string> cells;
    for (const auto& key : keys) {
      const auto& value = rows[i].contains(key) ? rows[i][key] : json();
      cells.push_back(key == "unit" && value.is_number_integer()
                          ? context.unit_link(value.get<int64_t>())
                          : json_cell(value));
    }
    out += table_row(cells);
  }
  return out + "</table>";
}

// The probe's chain, as `linkstyle probe` prints it: each link's correlation, * when its
// Bonferroni-corrected p is under 0.05.
std::string chain_table(const json& chain) {
  if (!chain.is_array()) return "";
  const auto link = [](const json& entry, const char* key) -> std::string {
    if (!entry.contains(key) || !entry[key].is_object()) return "";
    const auto& m = entry[key];
    const double r = m.value("correlation", NAN), p = m.value("p_bonferroni", NAN);
    return fmt::format("{}{}", std::isfinite(r) ? fmt::format("{:+.2f}", r) : "n/a", p < 0.05 ? "*" : "");
  };
  std::string out = "<table>" + table_row({"factor", "measured as", "measurement", "generator", "sweep", "end to end",
                                           "reliability (rendered / generated / sweep)"},
                                          true);
  for (const auto& entry : chain) {
    if (!entry.is_object()) continue;
    out += table_row({escape_html(entry.value("factor", std::string())), escape_html(entry.value("measured_as", std::string())),
                      link(entry, "measurement"), link(entry, "generator"), link(entry, "sweep"), link(entry, "end_to_end"),
                      link(entry, "rendered_reliability") + " / " + link(entry, "generated_reliability") + " / " +
                          link(entry, "sweep_reliability")});
  }
  return out + "</table><p class=\"note\">Correlations over units; * Bonferroni-corrected p &lt; 0.05.</p>";
}

// One row per planted unit: its factor, and what each rule named (the set by its size and its
// strongest concepts, as a set can hold dozens).
std::string planted_units_table(const json& units) {
  constexpr size_t kSetShown = 3;
  std::string out = "<table>" + table_row({"unit", "planted factor", "label", "agrees", "top concept", "agrees",
                                           "significant concepts", "any agrees"},
                                          true);
  const auto yes = [](const json& row, const char* key) { return row.value(key, false) ? "yes" : "no"; };
  for (const auto& u : units) {
    const auto set = u.value("concept_set", json::array());
    std::string shown;
    for (size_t i = 0; i < std::min(kSetShown, set.size()); ++i) shown += (i ? ", " : "") + json_cell(set[i]);
    if (set.size() > kSetShown) shown += fmt::format(", ... ({} in all)", set.size());
    const auto label = u.value("label", std::string());
    out += table_row({json_cell(u.value("unit", json())), json_cell(u.value("target", json())),
                      label.empty() ? "none" : escape_html(label), yes(u, "label_agrees"),
                      json_cell(u.value("top", json())), yes(u, "top_agrees"), set.empty() ? "none" : shown,
                      yes(u, "set_agrees")});
  }
  return out + "</table>";
}

std::string shapes_world_page(const ReportContext& context, const json& truth) {
  std::string body;
  body += "<p>The shapes world knows what made each image. <code>linkstyle probe</code> checks the sweep's labels and "
          "measures against it: the chain from the world's factors to what the classifier's units encode, to what "
          "their sweeps change.</p>";
  body += "<table>" + table_row({"labelled units", "agreeing", "agreement", "chance", "p"}, true);
  body += table_row({json_cell(truth.value("units", json())), json_cell(truth.value("agreeing", json())),
                     json_cell(truth.value("agreement", json())), json_cell(truth.value("chance", json())),
                     json_cell(truth.value("p_value", json()))});
  body += "</table>";
  if (truth.contains("planted") && truth["planted"].is_object()) {
    const auto& planted = truth["planted"];
    body += "<h2>Planted units</h2><p>Units the classifier was trained to make equal to known factors: does each "
            "one's sweep name its factor? Label: its significant concept with the largest |z|; top: its concept with "
            "the largest |z|; set: any of its significant concepts.</p><table>" +
            table_row({"rule", "agreeing", "named", "recall", "precision", "chance", "p"}, true);
    for (const char* rule : {"label", "top", "set"}) {
      if (!planted.contains(rule) || !planted[rule].is_object()) continue;
      const auto& r = planted[rule];
      body += table_row({rule, json_cell(r.value("agreeing", json())), json_cell(r.value("named", json())),
                         json_cell(r.value("recall", json())), json_cell(r.value("precision", json())),
                         json_cell(r.value("chance", json())), json_cell(r.value("p_value", json()))});
    }
    body += "</table>";
    if (planted.contains("units") && planted["units"].is_array()) body += planted_units_table(planted["units"]);
  }
  if (truth.contains("profile") && truth["profile"].is_object()) {
    body += "<h2>Profile identification</h2><p>Does each unit's measured concept profile (its sweep's change of "
            "every measured factor's concept) rank its own predicted profile first among all units'? Predicted "
            "from the partial effects (an isolated sweep) and from the within-class correlations (a conditional "
            "sweep); this study's sweep is " +
            escape_html(truth.value("sweep_direction", std::string("isolated"))) + ".</p><table>" +
            table_row({"prediction", "units", "top-1", "chance", "p", "top-10", "chance", "p", "median rank", "chance",
                       "p"},
                      true);
    for (const char* prediction : {"partial", "encoding"}) {
      if (!truth["profile"].contains(prediction)) continue;
      const auto& x = truth["profile"][prediction];
      std::vector<std::string> row = {prediction};
      for (const char* key : {"units", "top1", "chance_top1", "p_top1", "top10", "chance_top10", "p_top10",
                              "median_rank", "chance_median_rank", "p_median_rank"})
        row.push_back(json_cell(x.value(key, json())));
      body += table_row(row);
    }
    body += "</table>";
  }
  if (truth.contains("chain")) body += "<h2>The chain, factor by factor</h2>" + chain_table(truth["chain"]);
  if (truth.contains("factor_signal")) body += "<h2>Factor signal</h2>" + json_table(context, truth["factor_signal"]);
  if (truth.contains("per_unit")) body += "<h2>Labelled units against the probe</h2>" + json_table(context, truth["per_unit"]);
  return context.page("Shapes world", body, 0, "Shapes world");
}

}  // namespace

json ReportSummary::to_json() const {
  return {{"folder", folder.string()}, {"index", index.string()}, {"pages", pages},   {"units", units},
          {"strips", strips},          {"files", files},          {"bytes", bytes},   {"seconds", seconds},
          {"strip_seconds", strip_seconds}};
}

ReportSummary write_study_report(const StudyConfig& study, const Classifier& classifier, const Generator& generator,
                                 const ReportSettings& settings) {
  const auto start = Clock::now();
  if (settings.strip_samples < 0)
    throw SettingError("report.strip_samples", fmt::format("must be 0 or more, got {}", settings.strip_samples));
  if (settings.batch_size < 1)
    throw SettingError("report.batch_size", fmt::format("must be at least 1, got {}", settings.batch_size));
  if (settings.panel_side < 0) throw SettingError("report.panel_side", fmt::format("must be 0 or more, got {}", settings.panel_side));
  if (settings.panel_side > 1024) throw SettingError("report.panel_side", "must be at most 1024 pixels");
  ReportFolder out(study);
  ReportContext context{study, classifier, generator, settings, out, {}, {}, {}, false, false, {}};
  context.sweep = report::read_sweep_data(study, settings.counterfactual_samples);
  const auto truth_file = study.sweeps_folder() / "ground_truth.json";
  json truth;
  if (fs::exists(truth_file)) {
    truth = json::parse(read_file(truth_file), nullptr, false);
    if (truth.is_discarded() || !truth.is_object()) throw Error(truth_file, "is not valid JSON");
    context.shapes_world = true;
  }
  if (fs::exists(study.linking_file())) context.network = load_study_linking(study, classifier, generator);

  ReportSummary summary;
  std::vector<int64_t> units;
  if (context.sweep)
    for (const auto& u : context.sweep->units) units.push_back(u.unit), context.unit_pages.insert(u.unit);
  if (context.network && !units.empty()) {
    const auto strips_start = Clock::now();
    summary.strips = render_strips(context, units);
    summary.strip_seconds = seconds_since(strips_start);
  }
  out.write("assets/report.css", report::report_stylesheet());
  out.write("assets/gallery.js", report::gallery_script());
  out.write("index.html", context.network ? overview_page(context)
                                          : context.page("Overview", note("No fit yet: run `linkstyle pairs` and `linkstyle fit`."), 0, "Overview"));
  out.write("reconstructions.html", reconstructions_page(context));
  out.write("units.html", units_page(context));
  if (context.sweep)
    for (const auto& u : context.sweep->units) out.write(fs::path("units") / unit_page_name(u.unit), unit_page(context, u));
  out.write("concepts.html", concepts_page(context));
  if (context.sweep && !context.sweep->counterfactuals.empty()) out.write("counterfactuals.html", counterfactuals_page(context));
  if (context.shapes_world) out.write("shapes-world.html", shapes_world_page(context, truth));
  out.commit();

  summary.folder = out.folder();
  summary.index = out.folder() / "index.html";
  summary.pages = out.pages();
  summary.files = out.files();
  summary.units = static_cast<int64_t>(units.size());
  summary.bytes = out.bytes();
  summary.seconds = seconds_since(start);
  return summary;
}

}  // namespace linkstyle
