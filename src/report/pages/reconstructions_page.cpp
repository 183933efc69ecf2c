// The reconstructions page: each image of `linkstyle reconstruct` beside G(L(r(image))), with the
// classifier's verdicts on both.
#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "linkstyle/atomic_file.hpp"
#include "linkstyle/errors.hpp"
#include "report/html.hpp"
#include "report/report_pages.hpp"

namespace linkstyle::report {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::string verdict_text(const json& verdict) {
  if (!verdict.is_object()) return "?";
  const double probability = verdict.value("probability", NAN);
  return fmt::format("{} ({})", verdict.value("name", std::string("?")),
                     std::isfinite(probability) ? fmt::format("{:.2f}%", 100 * probability) : "n/a");
}

}  // namespace

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

}  // namespace linkstyle::report
