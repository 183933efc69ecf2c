// The overview page: the models, the classes, the linking network's fit (held-out figures,
// predicted against true latents) and the PCA of the pairs.
#include <algorithm>
#include <cmath>
#include <map>

#include <fmt/format.h>
#include <torch/torch.h>

#include "linkstyle/atomic_file.hpp"
#include "linkstyle/errors.hpp"
#include "linkstyle/pairs.hpp"
#include "linkstyle/tensor_io.hpp"
#include "report/html.hpp"
#include "report/report_pages.hpp"
#include "report/svg_charts.hpp"

namespace linkstyle::report {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

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

std::string models_and_classes(const ReportContext& context) {
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
  return body;
}

// The fit's held-out figures, and the charts' row begun with the held-out R² per w dimension.
std::string fit_figures(const json& fit) {
  std::string body;
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
  return body;
}

// Predicted against true latents over the sample's held-out pairs (closing the fit's charts), then
// the PCA of r and of w coloured by class.
std::string pairs_charts(const ReportContext& context, const PairsSample& pairs) {
  std::string body;
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
  return body;
}

}  // namespace

std::string overview_page(ReportContext& context) {
  const auto& study = context.study;
  std::string body = models_and_classes(context);

  body += "<h2>The linking network's fit</h2>";
  if (!fs::exists(study.fit_report_file())) {
    body += note("No fit yet: run `linkstyle pairs` and `linkstyle fit`.");
    return context.page("Overview", body, 0, "Overview");
  }
  const auto fit = json::parse(read_file(study.fit_report_file()), nullptr, false);
  if (fit.is_discarded() || !fit.contains("held_out")) throw Error(study.fit_report_file(), "is not a fit report");
  body += fit_figures(fit);
  if (!fs::exists(study.pairs_folder() / "manifest.json")) return context.page("Overview", body + "</div>", 0, "Overview");
  const auto manifest = PairsManifest::load(study.pairs_folder());
  const double holdout = context.network->metadata.value("holdout_fraction", study.pairs.holdout_fraction);
  const auto pairs = sample_pairs(manifest, std::max(context.settings.pca_points, context.settings.scatter_points), holdout);
  if (pairs.features.defined() && pairs.features.size(0) > 2) body += pairs_charts(context, pairs);
  body += "</div>";
  return context.page("Overview", body, 0, "Overview");
}

}  // namespace linkstyle::report
