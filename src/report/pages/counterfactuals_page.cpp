// The counterfactuals page: a table of the runs, then each run's shown samples (the original and
// its counterfactual, the path), the target's probability along the paths and the relevant units.
#include <utility>

#include <fmt/format.h>

#include "report/html.hpp"
#include "report/report_pages.hpp"
#include "report/svg_charts.hpp"

namespace linkstyle::report {
namespace fs = std::filesystem;

namespace {

// One row per run: its classes, success rates, realism and Frechet distance.
std::string runs_table(const ReportContext& context) {
  std::string body;
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
  return body;
}

// A shown sample's images (copied into the report) with its figures.
std::string sample_figure(ReportContext& context, const report::CounterfactualRunData& run,
                          const report::CounterfactualSample& s) {
  const auto base = fs::path("images/counterfactuals") / run.run;
  std::string images;
  for (const auto& [file, kind] : {std::pair{s.image, "original | counterfactual"}, std::pair{s.path_image, "path"}}) {
    if (file.empty()) continue;
    const auto target = base / fs::path(file).filename();
    if (context.out.copy_from_study(file, target))
      images += fmt::format("<img loading=\"lazy\" src=\"{}\" alt=\"sample {} {}\">", escape_html(target.generic_string()),
                            s.sample, kind);
  }
  return fmt::format("<figure class=\"counterfactual\">{}<figcaption>sample {}: {} after {} step{} · target "
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
}

std::string run_section(ReportContext& context, const report::CounterfactualRunData& run) {
  std::string body;
  body += fmt::format("<section id=\"run-{0}\"><h2>{0}</h2>", escape_html(run.run));
  std::vector<ChartSeries> curves;
  for (const auto& s : run.shown) {
    body += sample_figure(context, run, s);
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
  return body;
}

}  // namespace

std::string counterfactuals_page(ReportContext& context) {
  std::string body;
  body += "<p>Each run shifts the features of samples of one class until the classifier decides for another; the "
          "image is G(L(relu(r - s))). Paths: the shift scaled by alpha, with the target's probability.</p>";
  body += "<p>Realism: the mean distance of the image's features to their nearest pairs of the target class, over "
          "the target's own (1 is typical of the class; larger is less like it). With a judge (a second classifier "
          "trained apart), the judge's verdict counts a success only when it agrees, and the Frechet distance is in its "
          "features; the reference figure is the target's own pairs against each other at the same size.</p>";
  body += runs_table(context);
  for (const auto& run : context.sweep->counterfactuals) body += run_section(context, run);
  return context.page("Counterfactuals", body, 0, "Counterfactuals");
}

}  // namespace linkstyle::report
