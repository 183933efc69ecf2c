// The concepts page: for each part and measure, the units whose sweeps change it most significantly.
#include <cctype>

#include <fmt/format.h>

#include "report/html.hpp"
#include "report/report_pages.hpp"

namespace linkstyle::report {

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

}  // namespace linkstyle::report
