// The report (linkstyle/report.hpp) and the explorer (linkstyle/explorer.hpp) without a browser:
// escaping, charts, the pages a study gets, the staging of the report folder, and the explorer's
// answers to good and bad requests. tests/browser checks both in Chromium.
#include <fstream>
#include <regex>

#include <gtest/gtest.h>

#include "linkstyle/errors.hpp"
#include "linkstyle/explorer.hpp"
#include "linkstyle/report.hpp"
#include "report/html.hpp"
#include "report/svg_charts.hpp"
#include "sweep_study.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using linkstyle::testing::make_sweep_study;
using linkstyle::testing::ScratchDir;
using nlohmann::json;

namespace linkstyle {
namespace {

std::string read_text(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

TEST(ReportHtml, EscapesMarkupAndKeepsScriptDataInert) {
  EXPECT_EQ(report::escape_html("<img src=x onerror='a(\"b\")'>&"),
            "&lt;img src=x onerror=&#39;a(&quot;b&quot;)&#39;&gt;&amp;");
  const auto data = report::script_json({{"label", "</script><script>alert(1)</script><!--"}});
  EXPECT_EQ(data.find('<'), std::string::npos);
  EXPECT_EQ(json::parse(data)["label"], "</script><script>alert(1)</script><!--");
  EXPECT_EQ(report::format_number(NAN), "n/a");
  EXPECT_EQ(report::format_number(0.123456, 3), "0.123");
}

TEST(ReportCharts, SkipNonFinitePointsAndEscapeLabels) {
  report::ChartSeries series{"<b>", {0, 1, NAN, 3}, {1, 2, 3, INFINITY}, "#123456", false};
  const auto svg = report::xy_chart({"title <x>", "x", "y"}, {series});
  EXPECT_NE(svg.find("title &lt;x&gt;"), std::string::npos);
  EXPECT_EQ(svg.find("<b>"), std::string::npos);
  const std::regex polyline("<polyline points=\"([^\"]*)\"");
  std::smatch match;
  ASSERT_TRUE(std::regex_search(svg, match, polyline));
  const auto points = match[1].str();
  EXPECT_EQ(std::count(points.begin(), points.end(), ','), 2) << points;  // (0,1) and (1,2) only
  EXPECT_NE(report::xy_chart({"empty", "", ""}, {}).find("no data"), std::string::npos);
}

// Counts the non-overlapping occurrences of `what` in `text`.
size_t occurrences(const std::string& text, const std::string& what) {
  size_t count = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++count;
  return count;
}

TEST(ReportCharts, BarPanelsShareTheirRowsAndKeepEveryValue) {
  // Five panels, four to a row of the grid: two rows of panels, each with the row labels once.
  std::vector<report::BarPanel> panels;
  for (int p = 0; p < 5; ++p)
    panels.push_back({p == 0 ? "area <px>" : "measure " + std::to_string(p),
                      {{"up", 2.0 + p, -1, 1}, {"down", -1.123456, NAN, NAN}, {"elsewhere", 5, -1, 1}}});
  const auto svg = report::bar_panels("changes & bands", {"up", "down"}, panels, "change over the sweep");
  EXPECT_EQ(occurrences(svg, "<svg"), 1u);
  EXPECT_NE(svg.find("changes &amp; bands"), std::string::npos);
  EXPECT_NE(svg.find("area &lt;px&gt;"), std::string::npos);
  EXPECT_EQ(svg.find("<px>"), std::string::npos);
  EXPECT_EQ(occurrences(svg, "class=\"row-labels\""), 2u);
  EXPECT_EQ(occurrences(svg, "<text y=\"10\">up</text>"), 2u);
  EXPECT_EQ(occurrences(svg, "change over the sweep"), 1u);
  // A bar per panel and row, each with its value; the bar whose label is no row is left out.
  EXPECT_EQ(occurrences(svg, "class=\"bar-up\""), 5u);
  EXPECT_EQ(occurrences(svg, "class=\"bar-down\""), 5u);
  EXPECT_EQ(occurrences(svg, "<title>down: -1.123</title>"), 5u);
  EXPECT_EQ(svg.find("elsewhere"), std::string::npos);
  // One band per panel (the other interval is NaN), drawn as one path per panel.
  EXPECT_EQ(occurrences(svg, "class=\"null-bands\""), 5u);
  // Styles come from the stylesheet, and coordinates carry one decimal at most.
  EXPECT_EQ(svg.find("style="), std::string::npos);
  EXPECT_FALSE(std::regex_search(svg, std::regex("[0-9]\\.[0-9]{2,}\"")));
}

class ReportOfAStudy : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new ScratchDir("report-study");
    study_ = new testing::SweepStudy(make_sweep_study(dir_->path()));
    study_->run();
  }
  static void TearDownTestSuite() {
    delete study_;
    delete dir_;
  }
  static ScratchDir* dir_;
  static testing::SweepStudy* study_;
};
ScratchDir* ReportOfAStudy::dir_ = nullptr;
testing::SweepStudy* ReportOfAStudy::study_ = nullptr;

TEST_F(ReportOfAStudy, WritesEveryPageWithLocalAssetsOnly) {
  const auto& s = *study_;
  const auto summary = write_study_report(s.config, s.classifier, s.generator);
  const auto folder = s.config.folder / "report";
  EXPECT_EQ(summary.folder, folder);
  EXPECT_EQ(summary.units, 6);
  EXPECT_EQ(summary.strips, 6 * 3);  // 6 units x one strip sample for each of the 3 classes
  for (const char* page : {"index.html", "reconstructions.html", "units.html", "concepts.html", "assets/report.css",
                           "assets/gallery.js"})
    EXPECT_TRUE(fs::exists(folder / page)) << page;
  EXPECT_FALSE(fs::exists(folder / "counterfactuals.html"));  // no runs
  EXPECT_FALSE(fs::exists(folder / "shapes-world.html"));     // no probe
  int64_t unit_pages = 0;
  for (const auto& entry : fs::directory_iterator(folder / "units")) ++unit_pages, (void)entry;
  EXPECT_EQ(unit_pages, 6);
  int64_t bytes = 0;
  for (const auto& entry : fs::recursive_directory_iterator(folder)) {
    if (!entry.is_regular_file()) continue;
    bytes += static_cast<int64_t>(entry.file_size());
    if (entry.path().extension() != ".html") continue;
    const auto html = read_text(entry.path());
    EXPECT_EQ(html.find("http://"), std::string::npos) << entry.path();
    EXPECT_EQ(html.find("https://"), std::string::npos) << entry.path();
  }
  EXPECT_EQ(summary.bytes, bytes);
  const auto units = read_text(folder / "units.html");
  const std::regex data("<script type=\"application/json\" id=\"units-data\">([^<]*)</script>");
  std::smatch match;
  ASSERT_TRUE(std::regex_search(units, match, data));
  EXPECT_EQ(json::parse(match[1].str()).size(), 6u);
  const auto unit_page = read_text(folder / "units" / "unit-00003.html");
  EXPECT_NE(unit_page.find("images/strips/unit-00003-sample-"), std::string::npos);
  EXPECT_NE(unit_page.find("<svg class=\"chart\""), std::string::npos);
}

TEST_F(ReportOfAStudy, AFailedRunKeepsThePreviousReportAndLeavesNoStaging) {
  const auto& s = *study_;
  write_study_report(s.config, s.classifier, s.generator);
  const auto index = read_text(s.config.folder / "report" / "index.html");
  const auto reconstructions = s.config.reconstructions_folder();
  fs::create_directories(reconstructions);
  { std::ofstream(reconstructions / "broken.json") << "{not json"; }
  EXPECT_THROW(write_study_report(s.config, s.classifier, s.generator), Error);
  fs::remove_all(reconstructions);
  EXPECT_EQ(read_text(s.config.folder / "report" / "index.html"), index);
  for (const auto& entry : fs::directory_iterator(s.config.folder))
    EXPECT_EQ(entry.path().filename().string().rfind("report.", 0), std::string::npos) << entry.path();
  ReportSettings bad;
  bad.strip_samples = -1;
  EXPECT_THROW(write_study_report(s.config, s.classifier, s.generator, bad), SettingError);
}

TEST_F(ReportOfAStudy, ShapesWorldPageShowsPlantedRulesAndProfiles) {
  const auto& s = *study_;
  const auto truth_file = s.config.sweeps_folder() / "ground_truth.json";
  {
    std::ofstream(truth_file) << R"({"units": 3, "agreeing": 1, "agreement": 0.33, "chance": 0.1, "p_value": 0.2,
      "sweep_direction": "conditional",
      "planted": {"planted": 1, "measurable": 1,
        "label": {"agreeing": 0, "named": 1, "recall": 0, "precision": 0, "chance": 0.1, "p_value": 1},
        "top": {"agreeing": 0, "named": 1, "recall": 0, "precision": 0, "chance": 0.1, "p_value": 1},
        "set": {"agreeing": 1, "named": 1, "recall": 1, "precision": 1, "chance": 0.5, "p_value": 0.5},
        "units": [{"unit": 0, "target": "scale", "label": "", "label_agrees": false, "top": "cap hue +",
                   "top_agrees": false, "set_agrees": true,
                   "concept_set": ["cap hue +", "wing area +", "cap area +", "tail area -", "beak area +"]}]},
      "profile": {"partial": {"units": 3, "top1": 0.25, "chance_top1": 0.333, "p_top1": 0.5},
                  "encoding": {"units": 3, "top1": 0.75, "chance_top1": 0.333, "p_top1": 0.01}}})";
  }
  write_study_report(s.config, s.classifier, s.generator);
  fs::remove(truth_file);
  const auto page = read_text(s.config.folder / "report" / "shapes-world.html");
  EXPECT_NE(page.find("<td>set</td>"), std::string::npos);
  // The set by its strongest three and its size; no label is "none".
  EXPECT_NE(page.find("cap hue +, wing area +, cap area +, ... (5 in all)"), std::string::npos);
  EXPECT_EQ(page.find("tail area -"), std::string::npos);
  EXPECT_NE(page.find("<td>none</td>"), std::string::npos);
  EXPECT_NE(page.find("Profile identification"), std::string::npos);
  EXPECT_NE(page.find("this study's sweep is conditional"), std::string::npos);
  EXPECT_NE(page.find("<td>encoding</td><td>3</td><td>0.75</td>"), std::string::npos);
}

TEST_F(ReportOfAStudy, ExplorerAnswersAndRefusesBadRequests) {
  Explorer explorer(study_->config, c10::Device(c10::kCPU));
  const auto described = explorer.describe();
  ASSERT_EQ(described["units"].size(), static_cast<size_t>(study_->classifier.feature_dim()));
  EXPECT_EQ(described["samples"].size(), 6u);
  const auto plain = explorer.render({{"sample", 0}, {"units", {{"3", nullptr}}}});
  EXPECT_EQ(plain["image"].get<std::string>().rfind("data:image/png;base64,", 0), 0u);
  const double own = plain["base_values"]["3"].get<double>();
  const auto moved = explorer.render({{"sample", 0}, {"units", {{"3", own + 50.0}}}});
  EXPECT_NE(moved["image"], plain["image"]);
  EXPECT_EQ(explorer.render({{"sample", 0}, {"units", {{"3", own}}}})["image"], plain["image"]);
  auto status_of = [&](const std::function<void()>& call) {
    try {
      call();
    } catch (const ExplorerRequestError& error) {
      return error.status();
    }
    return 200;
  };
  EXPECT_EQ(status_of([&] { explorer.render({{"sample", 0}, {"units", {{"100000", 1.0}}}}); }), 400);
  EXPECT_EQ(status_of([&] { explorer.render({{"sample", 0}, {"units", {{"3x", 1.0}}}}); }), 400);
  EXPECT_EQ(status_of([&] { explorer.render({{"sample", 0}, {"units", {{"3", "NaN"}}}}); }), 400);
  EXPECT_EQ(status_of([&] { explorer.render({{"sample", 0}, {"units", {{"3", NAN}}}}); }), 400);
  EXPECT_EQ(status_of([&] { explorer.render({{"sample", 99}}); }), 400);
  EXPECT_EQ(status_of([&] { explorer.render({{"upload", "upload-7"}}); }), 404);
  EXPECT_EQ(status_of([&] { explorer.upload(std::string(Explorer::max_upload_bytes + 1, '\0')); }), 413);
  EXPECT_EQ(status_of([&] { explorer.upload("not an image"); }), 400);
  EXPECT_EQ(status_of([&] { explorer.study_file("../../etc/passwd", nullptr); }), 403);
  EXPECT_EQ(status_of([&] { explorer.study_file("/etc/passwd", nullptr); }), 403);
  EXPECT_EQ(status_of([&] { explorer.study_file("no-such-file.png", nullptr); }), 404);
  std::string type;
  EXPECT_EQ(explorer.study_file("study.toml", &type), read_text(study_->config.config_file()));
  EXPECT_EQ(status_of([&] { explorer.counterfactual({{"sample", 0}, {"to", 99}}); }), 400);
  EXPECT_EQ(status_of([&] { explorer.counterfactual({{"sample", 0}, {"to", 1}, {"method", "magic"}}); }), 400);
  EXPECT_EQ(explorer.counterfactual_progress()["running"], false);
}

TEST_F(ReportOfAStudy, ExplorerCounterfactualsStartFromTheSlidersAndMeasureRealism) {
  Explorer explorer(study_->config, c10::Device(c10::kCPU));
  // The first class the sample is not classified as already.
  nlohmann::json from_sample;
  int64_t target = 0;
  for (; target < 3 && from_sample.is_null(); ++target) {
    try {
      from_sample = explorer.counterfactual({{"sample", 0}, {"to", target}, {"method", "realistic"}});
    } catch (const ExplorerRequestError&) {
    }
  }
  --target;
  ASSERT_FALSE(from_sample.is_null());
  EXPECT_EQ(from_sample["method"], "realistic");
  ASSERT_TRUE(from_sample["realism"].is_number()) << from_sample.dump().substr(0, 300);
  EXPECT_GT(from_sample["realism_threshold"].get<double>(), 0.0);
  // The sliders' r' is another start: unit 3 set off its own value gives another path.
  const double own = explorer.render({{"sample", 0}, {"units", {{"3", nullptr}}}})["base_values"]["3"].get<double>();
  const auto from_sliders =
      explorer.counterfactual({{"sample", 0}, {"units", {{"3", own + 0.5}}}, {"to", target}, {"method", "realistic"}});
  EXPECT_NE(from_sliders["frames"][0]["image"], from_sample["frames"][0]["image"]);
  EXPECT_EQ(explorer.counterfactual_progress()["running"], false);
}

TEST_F(ReportOfAStudy, CommandsRefuseBadInputWithOneLine) {
  const auto missing = testing::run_cli("report --study /no/such/study");
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.output.find("/no/such/study"), std::string::npos) << missing.output;
  EXPECT_EQ(std::count(missing.output.begin(), missing.output.end(), '\n'), 1) << missing.output;
  const auto study = study_->config.folder.string();
  const auto remote = testing::run_cli("serve --study " + study + " --host 0.0.0.0 --port 0");
  EXPECT_NE(remote.exit_code, 0);
  EXPECT_NE(remote.output.find("--allow-remote"), std::string::npos) << remote.output;
  const auto panel = testing::run_cli("report --study " + study + " --panel-size -1");
  EXPECT_NE(panel.exit_code, 0);
  EXPECT_NE(panel.output.find("--panel-size"), std::string::npos) << panel.output;
}

}  // namespace
}  // namespace linkstyle
