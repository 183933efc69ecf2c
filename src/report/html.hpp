// HTML text for the report and the explorer: escaping, numbers, the page frame.
// Every string that comes from a model, a file or a setting goes through escape_html (text and
// attribute values) or script_json (data inside a <script> element) before it is written.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace linkstyle::report {

// &, <, >, " and ' as character references: safe in text and in quoted attribute values.
std::string escape_html(std::string_view text);

// JSON that can sit inside <script type="application/json">: "<", ">" and "&" written as
// \u003c, \u003e and \u0026 so that no "</script>" or "<!--" can end or change the element.
std::string script_json(const nlohmann::json& value);

// A number for a table: `digits` significant digits, "n/a" when not finite.
std::string format_number(double value, int digits = 3);

// A whole page of the report: the stylesheet and the navigation relative to `depth` (0: the
// report's folder, 1: a subfolder), `active` the navigation entry to highlight.
std::string report_page(const std::string& title, const std::string& body, int depth, const std::string& active,
                        bool with_counterfactuals, bool with_shapes_world);

}  // namespace linkstyle::report
