// The HTML report as a browser shows it: chromium (headless) takes a screenshot of the page, and
// the decoded pixels must show a page with the figures on it; a 20-arm report fits a 1200-pixel
// window (measured in the page by a script the test adds to a copy of it).
#include <gtest/gtest.h>
#include <zlib.h>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "ablate/results/figures.h"
#include "ablate/results/report.h"
#include "ablate/results/store.h"
#include "ablate/testing/png.h"
#include "ablate/testing/process.h"
#include "ablate/testing/temp_dir.h"
#include "report_test_support.h"

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

// Arm 0 as the baseline and every comparison in its family, as build_report makes them.
void add_baseline_family(Report& r) {
  r.baseline = 0;
  Family family;
  family.name = "baseline";
  family.reference_reason = r.baseline_reason;
  FamilyGroup group;
  group.reference = 0;
  for (size_t i = 0; i < r.comparisons.size(); ++i) {
    r.comparisons[i].family = 0;
    r.comparisons[i].reference = 0;
    group.comparisons.push_back(i);
  }
  family.groups.push_back(group);
  family.tested = r.comparisons.size();
  r.families.push_back(family);
}

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
  add_baseline_family(r);
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

// ----- a 20-arm report in a 1200-pixel window
// -----------------------------------------------------

// Twenty arms of a staged attention sweep, labelled as a real one is: several keys each, some long
// enough to be abbreviated, one with a long path; comparisons with every cell filled and wide.
Report twenty_arm_report() {
  Report r;
  r.options.sweep = "attention-uptrain-grid";
  r.options.metric = "final_val_loss";
  r.options.lower_is_better = true;
  r.lower_is_better = true;
  r.sweep.name = "attention-uptrain-grid";
  r.metric_kind = "final value of eval/val_loss";
  r.baseline_reason = "the only mha arm";
  r.method = {"Welch's t-test against the baseline, Holm-adjusted over 19 comparisons."};
  r.warnings = {
      "2 jobs are not samples (1 diverged, 1 failed or unfinished); they are listed "
      "below"};
  r.provenance = {{"code version", "0123456789abcdef0123456789abcdef01234567 (dirty)"},
                  {"run dirs",
                   "/scratch/users/researcher/ablate/runs/attention-uptrain-grid/"
                   "stage=uptrain/variant=wgqa/kv_heads=2/weight_form=col"}};
  const std::vector<std::string> variants = {"mha", "gqa", "mqa", "dgqa", "pgqa", "wgqa"};
  const std::vector<std::string> forms = {"col", "row", "scalar"};
  const std::vector<std::string> inits = {"random", "mean", "identity"};
  const std::vector<std::string> verdicts = {"better", "worse", "no detectable difference",
                                             "too few seeds"};
  for (size_t i = 0; i < 20; ++i) {
    ReportArm arm;
    const std::string variant = i == 0 ? "mha" : variants[1 + i % 5];
    arm.label = "stage=" + std::string(i < 10 ? "pretrain" : "uptrain") + " variant=" + variant +
                " kv_heads=" + std::to_string(1 << (i % 4)) + " weight_form=" + forms[i % 3] +
                " weight_init=" + inits[i % 3];
    if (i % 7 == 3) {  // over the abbreviation limit: shown cut, full on hover
      arm.label += " ema_window=" + std::to_string(100 * i) + " dgqa_mode=ema noise_scale=1.0e-3" +
                   " parent=[stage=pretrain variant=mha kv_heads=8]";
    }
    if (i == 5) arm.label += " data.path=/datasets/openwebtext/shards/train-00000-of-00128.bin";
    if (i == 6) arm.label += " tag=<b>&amp;\"quoted\"</b>";
    arm.arm_key = arm.label;
    arm.seeds = {1, 2, 3, 4, 5};
    for (int s = 0; s < 5; ++s) arm.values.push_back(3.2 + 0.01 * i + 0.013 * ((s * 7 + i) % 5));
    arm.stats = stats::describe(arm.values, 0.95);
    r.arms.push_back(arm);
    if (i == 0) continue;
    Comparison c;
    c.arm = i;
    c.test = "welch";
    c.verdict = verdicts[i % verdicts.size()];
    c.difference.available = true;
    c.difference.diff = (i % 2 ? -1 : 1) * 0.0123456 * i;
    c.difference.ci = {c.difference.diff - 0.0345678, c.difference.diff + 0.0345678, true};
    c.result.p_value = i % 3 ? 0.0123456 * i : 0.0004;
    c.result.available = true;
    c.p_adjusted = std::min(1.0, c.result.p_value * 19);
    c.hedges_g.value = -1.2345678 * (1 + i % 3);
    c.hedges_g.available = true;
    c.cliffs_delta.value = -0.44;
    c.cliffs_delta.available = true;
    c.prob_improvement.value = 0.2222;
    c.prob_improvement.available = true;
    c.seeds_for_power.available = true;
    c.seeds_for_power.n = static_cast<int64_t>(10 + i);
    if (i == 4) c.note = "paired on the 4 seeds both arms have (1 run without a partner left out)";
    r.comparisons.push_back(c);
  }
  r.excluded = {{"uptrain-wgqa-kv2-col-random-seed3", 3, r.arms[7].label, "diverged",
                 "loss became NaN at step 1200 (/scratch/users/researcher/ablate/runs/"
                 "attention-uptrain-grid/job-0007/events.jsonl)"},
                {"uptrain-dgqa-kv4-row-mean-seed1", 1, r.arms[9].label, "failed",
                 "exit status 1: CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.15 GiB "
                 "total capacity; 75.01 GiB already allocated)"}};
  add_baseline_family(r);
  return r;
}

void put32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((v >> shift) & 0xFF);
}

// A grey PNG of `width` x `height`: a figure wider than any window.
void write_grey_png(const std::string& path, uint32_t width, uint32_t height) {
  std::string raw;
  for (uint32_t y = 0; y < height; ++y) {
    raw += '\0';  // filter: none
    for (uint32_t x = 0; x < width; ++x) raw += static_cast<char>(x * 255 / width);
  }
  uLongf size = compressBound(static_cast<uLong>(raw.size()));
  std::string packed(size, '\0');
  ASSERT_EQ(compress(reinterpret_cast<Bytef*>(packed.data()), &size,
                     reinterpret_cast<const Bytef*>(raw.data()), static_cast<uLong>(raw.size())),
            Z_OK);
  packed.resize(size);
  std::string png = testing::kPngSignature;
  auto chunk = [&png](const std::string& type, const std::string& data) {
    put32(png, static_cast<uint32_t>(data.size()));
    const std::string body = type + data;
    png += body;
    put32(png, static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(body.data()),
                                           static_cast<uInt>(body.size()))));
  };
  std::string header;
  put32(header, width);
  put32(header, height);
  header += std::string("\x08\x00\x00\x00\x00", 5);  // 8-bit grey, no interlace
  chunk("IHDR", header);
  chunk("IDAT", packed);
  chunk("IEND", "");
  std::ofstream(path, std::ios::binary) << png;
}

// Measures the page as laid out in the window and writes what it found, as JSON, into a <pre>
// that --dump-dom prints: the page's and every table's scroll and client widths, every element
// that is wider than its box or sticks out past the window's right edge, the first column of the
// first table (text and title), and the smallest font size of a table cell.
constexpr char kMeasure[] = R"(<script>
window.addEventListener('load', function () {
  var root = document.documentElement;
  var out = {window: window.innerWidth, page_scroll: root.scrollWidth,
             page_client: root.clientWidth, tables: [], wide: [], labels: [], min_font: 1000};
  document.querySelectorAll('body *').forEach(function (el) {
    var name = el.tagName.toLowerCase() + (el.className ? '.' + el.className : '');
    if (el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1)
      out.wide.push(name + ': scrollWidth ' + el.scrollWidth + ' > clientWidth ' + el.clientWidth);
    var right = el.getBoundingClientRect().right;
    if (right > root.clientWidth + 1)
      out.wide.push(name + ': right edge ' + right + ' > window ' + root.clientWidth);
  });
  document.querySelectorAll('table').forEach(function (t) {
    out.tables.push({scroll: t.scrollWidth, client: t.clientWidth});
  });
  document.querySelectorAll('td').forEach(function (td) {
    out.min_font = Math.min(out.min_font, parseFloat(getComputedStyle(td).fontSize));
  });
  var first = document.querySelector('table');
  if (first) Array.prototype.forEach.call(first.tBodies[0].rows, function (row) {
    var cell = row.cells[0];
    out.labels.push({text: cell.textContent, title: cell.getAttribute('title') || ''});
  });
  var pre = document.createElement('pre');
  pre.id = 'ablate-measure';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>
)";

std::string unescape_html_text(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    bool entity = false;
    for (const auto& [from, to] :
         std::vector<std::pair<std::string, std::string>>{{"&amp;", "&"},
                                                          {"&lt;", "<"},
                                                          {"&gt;", ">"},
                                                          {"&quot;", "\""},
                                                          {"&nbsp;", "\xC2\xA0"}}) {
      if (s.compare(i, from.size(), from) == 0) {
        out += to;
        i += from.size() - 1;
        entity = true;
        break;
      }
    }
    if (!entity) out += s[i];
  }
  return out;
}

// Loads `html` with the measuring script in chromium at `width` x 900 and returns its JSON.
nlohmann::json measure(const testing::TempDir& dir, const std::string& html, int width) {
  const size_t body_end = html.rfind("</body>");
  if (body_end == std::string::npos) throw std::runtime_error("no </body> in the report");
  const std::string page = dir.file("measured.html");
  std::ofstream(page, std::ios::binary)
      << html.substr(0, body_end) << kMeasure << html.substr(body_end);
  // No --hide-scrollbars: a vertical scroll bar takes its width from the page, as for a reader.
  const testing::ProcessResult run =
      testing::run_process({"chromium", "--headless", "--no-sandbox", "--disable-gpu",
                            "--no-first-run", "--user-data-dir=" + dir.file("measure-profile"),
                            "--window-size=" + std::to_string(width) + ",900",
                            "--virtual-time-budget=5000", "--dump-dom", file_url(page)},
                           120);
  if (!run.started || run.timed_out || run.exit_status != 0) {
    throw std::runtime_error("chromium did not run (" + run.error + "): " + run.output);
  }
  const std::string open = "<pre id=\"ablate-measure\">";
  const size_t from = run.output.find(open);
  const size_t to = run.output.find("</pre>", from);
  if (from == std::string::npos || to == std::string::npos) {
    throw std::runtime_error("the page did not report its measures: " + run.output.substr(0, 2000));
  }
  return nlohmann::json::parse(
      unescape_html_text(run.output.substr(from + open.size(), to - from - open.size())));
}

TEST(BrowserTest, TwentyArmsFitA1200PixelWindowWithEveryLabelInFull) {
  if (!testing::on_path("chromium")) GTEST_SKIP() << kNoChromium;
  testing::TempDir dir("ablate-browser-wide");
  const Report report = twenty_arm_report();
  Figure wide;
  wide.name = "learning_curves";
  wide.title = "A figure wider than the window";
  wide.caption = "2400 pixels wide: it is scaled down to the page.";
  wide.png_path = dir.file("wide.png");
  write_grey_png(wide.png_path, 2400, 300);
  const std::string html = render_html(report, {wide}, {});
  ASSERT_EQ(html.find("<script"), std::string::npos) << "the report itself has no script";

  const nlohmann::json m = measure(dir, html, 1200);
  SCOPED_TRACE(m.dump(1));
  EXPECT_EQ(m["window"], 1200);
  // No horizontal scroll bar on the page, nor in or around any table.
  EXPECT_LE(m["page_scroll"].get<int>(), m["page_client"].get<int>());
  ASSERT_EQ(m["tables"].size(), 2u);  // the arms and the excluded jobs
  for (const auto& t : m["tables"]) EXPECT_LE(t["scroll"].get<int>(), t["client"].get<int>());
  EXPECT_TRUE(m["wide"].empty()) << "wider than their box or the window: " << m["wide"].dump(1);
  // Fitting did not mean shrinking the text out of reach.
  EXPECT_GE(m["min_font"].get<double>(), 12.0);
  // Every arm's label is on the page in full: as its text, or as the title an abbreviation shows
  // on hover.
  ASSERT_EQ(m["labels"].size(), report.arms.size());
  size_t abbreviated = 0;
  for (size_t i = 0; i < report.arms.size(); ++i) {
    const std::string& label = report.arms[i].label;
    const std::string text = m["labels"][i]["text"];
    const std::string title = m["labels"][i]["title"];
    EXPECT_TRUE(text == label || title == label)
        << label << "\nshown: " << text << "\ntitle: " << title;
    if (text != label) ++abbreviated;
  }
  EXPECT_GE(abbreviated, 1u);  // the long labels were cut, so the title carried them
}

// The whole path at 20 arms: a sweep in a store, build_report with a baseline family and two
// --compare families (group rows per cell), real gnuplot figures (the learning curves as panels,
// wider than the window), rendered as HTML and laid out by Chromium at 1200 pixels.
TEST(BrowserTest, ATwentyArmSweepWithFamiliesAndFiguresFitsA1200PixelWindow) {
  if (!testing::on_path("chromium")) GTEST_SKIP() << kNoChromium;
  ASSERT_TRUE(gnuplot_available()) << kNoGnuplot;
  testing::TempDir dir("ablate-browser-sweep");
  Store store(dir.file("ablate.db"));
  std::vector<test_support::FakeRun> runs;
  const std::vector<std::string> variants = {"gqa", "dgqa", "pgqa", "wgqa"};
  for (size_t v = 0; v < variants.size(); ++v) {
    for (const int kv : {1, 2, 4, 8, 16}) {
      const test_support::Params params = {{"attention.kv_heads", std::to_string(kv)},
                                           {"attention.variant", variants[v]},
                                           {"model.heads", "16"}};
      for (int64_t seed = 0; seed < 3; ++seed) {
        const double value = 3.0 - 0.01 * kv - 0.02 * static_cast<double>(v) +
                             0.004 * static_cast<double>((seed * 7 + kv) % 5);
        std::vector<double> curve;
        for (int step = 1; step <= 4; ++step) curve.push_back(value + 0.5 / step);
        runs.push_back({params, seed, value, "done", curve});
      }
    }
  }
  test_support::write_sweep(store, dir, "uptrain-grid-with-long-names", runs);
  ReportOptions options;
  options.sweep = "uptrain-grid-with-long-names";
  options.metric = "final_test_acc";  // the fake runs' summary name
  options.bootstrap_resamples = 199;
  options.baseline = {{"attention.variant", "gqa"}, {"attention.kv_heads", "16"}};
  options.compare = {{"attention.kv_heads", std::string("16")},
                     {"attention.variant", std::string("gqa")}};
  const Report report = build_report(store, options);
  ASSERT_EQ(report.arms.size(), 20u);
  ASSERT_EQ(report.families.size(), 3u);
  const FigureSet figures = render_figures(report, dir.file("figures"));
  ASSERT_FALSE(figures.figures.empty());
  const std::string html = render_html(report, figures.figures, figures.notes);
  ASSERT_EQ(html.find("<script"), std::string::npos);
  EXPECT_NE(html.find("class=\"group\""), std::string::npos) << "family tables group by cell";

  const nlohmann::json m = measure(dir, html, 1200);
  SCOPED_TRACE(m.dump(1));
  EXPECT_LE(m["page_scroll"].get<int>(), m["page_client"].get<int>());
  ASSERT_EQ(m["tables"].size(), 3u);  // the arms, and one per --compare family
  for (const auto& t : m["tables"]) EXPECT_LE(t["scroll"].get<int>(), t["client"].get<int>());
  EXPECT_TRUE(m["wide"].empty()) << "wider than their box or the window: " << m["wide"].dump(1);
  EXPECT_GE(m["min_font"].get<double>(), 12.0);
}

}  // namespace
}  // namespace ablate::results
