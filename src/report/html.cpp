#include "html.hpp"

#include <cmath>

#include <fmt/format.h>

namespace linkstyle::report {

std::string escape_html(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string script_json(const nlohmann::json& value) {
  // Invalid UTF-8 from a file is replaced rather than thrown on.
  const auto text = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '<') out += "\\u003c";
    else if (c == '>') out += "\\u003e";
    else if (c == '&') out += "\\u0026";
    else out += c;
  }
  return out;
}

std::string format_number(double value, int digits) {
  if (!std::isfinite(value)) return "n/a";
  return fmt::format("{:.{}g}", value, digits);
}

std::string report_page(const std::string& title, const std::string& body, int depth, const std::string& active,
                        bool with_counterfactuals, bool with_shapes_world) {
  std::string up;
  for (int i = 0; i < depth; ++i) up += "../";
  std::vector<std::pair<std::string, std::string>> entries{
      {"index.html", "Overview"}, {"reconstructions.html", "Reconstructions"}, {"units.html", "Units"},
      {"concepts.html", "Concepts"}};
  if (with_counterfactuals) entries.emplace_back("counterfactuals.html", "Counterfactuals");
  if (with_shapes_world) entries.emplace_back("shapes-world.html", "Shapes world");
  std::string navigation;
  for (const auto& [file, name] : entries)
    navigation += fmt::format("<a href=\"{}{}\"{}>{}</a>", up, file, name == active ? " class=\"active\"" : "", name);
  return fmt::format(
      "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      "<title>{} · linkstyle</title><link rel=\"icon\" href=\"data:,\"><link rel=\"stylesheet\" href=\"{}assets/report.css\"></head>\n"
      "<body><nav><span class=\"brand\">linkstyle</span>{}</nav>\n<main>\n<h1>{}</h1>\n{}\n</main></body></html>\n",
      escape_html(title), up, navigation, escape_html(title), body);
}

}  // namespace linkstyle::report
