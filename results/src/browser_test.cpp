// The HTML report as a browser shows it: chromium (headless) takes a screenshot of the page, and
// the decoded pixels must show a page with the figures on it.
#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <fstream>

#include "ablate/results/figures.h"
#include "ablate/results/report.h"
#include "ablate/testing/png.h"
#include "ablate/testing/process.h"
#include "ablate/testing/temp_dir.h"

namespace ablate::results {
namespace {

using testing::count_colours;
using testing::count_near;
using testing::PngImage;

constexpr char kNoChromium[] =
    "chromium is not installed: install the Debian package chromium (scripts/setup installs it)";
constexpr char kNoGnuplot[] =
    "gnuplot is not installed or does not run: install the Debian package gnuplot-nox "
    "(scripts/setup installs it)";

// Three attention arms with curves, a comparison each and a label that must stay text.
Report browser_report() {
  Report r;
  r.options.sweep = "attn";
  r.options.metric = "final_test_acc";
  r.sweep.name = "attn";
  r.metric_kind = "final value of eval/test_acc";
  r.curve_metric = "eval/test_acc";
  r.baseline_reason = "the only mha arm";
  r.method = {"Welch's t-test against the baseline, Holm-adjusted."};
  r.provenance = {{"code version", "abc123"}};
  struct Spec {
    const char* label;
    const char* variant;
    int kv_heads;
    std::vector<double> values;
    double parameters;
  };
  const std::vector<Spec> specs = {
      {"variant=mha <script>", "mha", 0, {0.80, 0.82, 0.81}, 4.2e6},
      {"variant=gqa kv_heads=2", "gqa", 2, {0.78, 0.79, 0.80}, 3.1e6},
      {"variant=mqa", "mqa", 1, {0.74, 0.77, 0.75}, 2.8e6},
  };
  for (size_t i = 0; i < specs.size(); ++i) {
    ReportArm arm;
    arm.arm_key = specs[i].label;
    arm.label = specs[i].label;
    arm.config = {{"attention.variant", specs[i].variant},
                  {"attention.kv_heads", std::to_string(specs[i].kv_heads)},
                  {"model.heads", "8"}};
    arm.params = {{"attention.kv_heads", arm.config["attention.kv_heads"]},
                  {"attention.variant", specs[i].variant}};
    arm.seeds = {1, 2, 3};
    arm.values = specs[i].values;
    arm.stats = stats::describe(arm.values, 0.95);
    arm.parameters = specs[i].parameters;
    for (int64_t step = 0; step <= 1000; step += 50) {
      const double mean = 0.1 + (arm.stats.mean - 0.1) * (1 - std::exp(-step / 300.0));
      arm.curve.push_back({step, mean, mean - 0.03, mean + 0.03, 3});
    }
    r.arms.push_back(arm);
    if (i > 0) {
      Comparison c;
      c.arm = i;
      c.test = "welch";
      c.verdict = "no detectable difference";
      r.comparisons.push_back(c);
    }
  }
  return r;
}

// A file: URL of an absolute path, percent-encoding everything but unreserved characters and /.
std::string file_url(const std::string& path) {
  std::string url = "file://";
  for (const unsigned char c : path) {
    if (std::isalnum(c) || c == '/' || c == '-' || c == '_' || c == '.' || c == '~') {
      url += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      url += buf;
    }
  }
  return url;
}

// Writes `html` to DIR/NAME.html and returns chromium's screenshot of it, 1200 x 2400.
PngImage screenshot(const testing::TempDir& dir, const std::string& name, const std::string& html) {
  const std::string page = dir.file(name + ".html");
  const std::string shot = dir.file(name + ".png");
  {
    std::ofstream out(page, std::ios::binary);
    out << html;
  }
  // Its own profile folder: no user profile is read or locked, parallel tests do not collide.
  const testing::ProcessResult run = testing::run_process(
      {"chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
       "--no-first-run", "--user-data-dir=" + dir.file(name + "-profile"),
       "--window-size=1200,2400", "--screenshot=" + shot, file_url(page)},
      120);
  EXPECT_TRUE(run.started) << kNoChromium << " (" << run.error << ")";
  EXPECT_FALSE(run.timed_out) << "chromium took longer than 120 s: " << run.output;
  EXPECT_EQ(run.exit_status, 0) << run.output;
  return testing::read_png(shot);
}

TEST(BrowserTest, TheHtmlReportShowsItsFigures) {
  ASSERT_TRUE(testing::on_path("chromium")) << kNoChromium;
  ASSERT_TRUE(gnuplot_available()) << kNoGnuplot;
  testing::TempDir dir("ablate-browser");
  const Report report = browser_report();
  const FigureSet set = render_figures(report, dir.file("figures"));
  ASSERT_EQ(set.figures.size(), 3u) << ::testing::PrintToString(set.notes);

  const std::string html = render_html(report, set.figures, set.notes);
  // Self-contained: the figures are inlined, never referenced by path.
  EXPECT_NE(html.find("src=\"data:image/png;base64,"), std::string::npos);
  EXPECT_EQ(html.find(dir.file("figures")), std::string::npos);
  EXPECT_EQ(html.find("<script>"), std::string::npos);

  const PngImage with = screenshot(dir, "with", html);
  const PngImage without = screenshot(dir, "without", render_html(report, {}, {}));
  ASSERT_EQ(with.width, 1200u);
  ASSERT_EQ(with.height, 2400u);

  // A page, not a blank or error screen: text and tables give many colours, and white is not all.
  EXPECT_GT(count_colours(without), 20u);
  EXPECT_LT(count_near(without, 0xFFFFFF, 0), without.pixels() * 995 / 1000);
  EXPECT_GT(count_colours(with), 200u);
  EXPECT_LT(count_near(with, 0xFFFFFF, 0), with.pixels() * 98 / 100);

  // The figures' first (vermilion) and second (blue) series are on the page with them and (almost)
  // nowhere without them.
  for (const uint32_t colour : {kFigurePalette[0], kFigurePalette[1]}) {
    SCOPED_TRACE(colour);
    const size_t on = count_near(with, colour, 40);
    const size_t off = count_near(without, colour, 40);
    EXPECT_GT(on, 300u);
    EXPECT_LT(off, 20u);
  }
}

}  // namespace
}  // namespace ablate::results
