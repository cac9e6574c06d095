#include "ablate/results/figures.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

#include "ablate/testing/png.h"
#include "ablate/testing/process.h"
#include "ablate/testing/temp_dir.h"

namespace ablate::results {
namespace {

namespace fs = std::filesystem;
using testing::count_colours;
using testing::count_near;
using testing::PngImage;

constexpr uint32_t kFirstSeries = kFigurePalette[0];
constexpr char kNoGnuplot[] =
    "gnuplot is not installed or does not run: install the Debian package gnuplot-nox "
    "(scripts/setup installs it)";

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

struct ArmSpec {
  std::string label;
  std::string variant;
  int kv_heads;
  std::vector<double> values;
  double parameters;
  double throughput = stats::kNaN;
};

// A report of four attention arms (mha, gqa 2, gqa 4, mqa) with curves, parameters and labels
// that would break a careless quoting: <script>, 50%_{x}, "quotes", it's.
Report sample_report(double alpha = 0.05) {
  Report r;
  r.options.sweep = "attn";
  r.options.metric = "final_test_acc";
  r.options.alpha = alpha;
  r.curve_metric = "eval/test_acc";
  const std::vector<ArmSpec> specs = {
      {"variant=mha <script>", "mha", 0, {0.80, 0.82, 0.81}, 4.2e6},
      {"variant=gqa kv_heads=2 50%_{x}", "gqa", 2, {0.78, 0.79, 0.80}, 3.1e6},
      {"variant=gqa kv_heads=4 \"quotes\" it's", "gqa", 4, {0.79, 0.81, 0.80}, 3.6e6},
      {"variant=mqa \\back", "mqa", 1, {0.74, 0.77, 0.75}, 2.8e6},
  };
  for (size_t i = 0; i < specs.size(); ++i) {
    const ArmSpec& s = specs[i];
    ReportArm arm;
    arm.arm_key = "key" + std::to_string(i);
    arm.label = s.label;
    arm.params = {{"attention.kv_heads", std::to_string(s.kv_heads)},
                  {"attention.variant", s.variant}};
    arm.config = {{"attention.variant", s.variant},
                  {"attention.kv_heads", std::to_string(s.kv_heads)},
                  {"model.heads", "8"}};
    arm.seeds = {1, 2, 3};
    arm.values = s.values;
    arm.stats = stats::describe(arm.values, 1 - alpha);
    arm.parameters = s.parameters;
    arm.throughput = s.throughput;
    for (int64_t step = 0; step <= 1000; step += 50) {
      CurvePoint p;
      p.step = step;
      const double progress = 1 - std::exp(-static_cast<double>(step) / 300);
      p.mean = 0.1 + (arm.stats.mean - 0.1) * progress;
      // The last arm has one seed at its first steps: no band there.
      const bool one_seed = i == 3 && step < 200;
      p.n = one_seed ? 1 : 3;
      p.low = one_seed ? stats::kNaN : p.mean - 0.03;
      p.high = one_seed ? stats::kNaN : p.mean + 0.03;
      arm.curve.push_back(p);
    }
    r.arms.push_back(arm);
  }
  r.baseline = 0;
  return r;
}

// A generated sweep of 20 arms: 4 variants x 5 kv_heads values (of 16 heads), with labels long
// enough to be shortened, a curve, parameters, throughput and the model config of each arm.
// Every arm is its own series: its style is series_style(its index).
const std::vector<std::string> kVariants = {"gqa", "dgqa", "pgqa", "wgqa"};
const std::vector<int> kKvHeads = {1, 2, 4, 8, 16};

std::string long_label(const std::string& variant, int kv_heads) {
  return "variant=" + variant + " kv_heads=" + std::to_string(kv_heads) +
         " schedule=cosine-with-linear-warmup-and-a-long-name";
}

Report twenty_arms() {
  Report r;
  r.options.sweep = "grid";
  r.options.metric = "final_val_loss";
  r.options.lower_is_better = true;
  r.lower_is_better = true;
  r.curve_metric = "eval/val_loss";
  for (size_t v = 0; v < kVariants.size(); ++v) {
    for (size_t g = 0; g < kKvHeads.size(); ++g) {
      const size_t i = r.arms.size();
      ReportArm arm;
      arm.arm_key = "arm" + std::to_string(i);
      arm.label = long_label(kVariants[v], kKvHeads[g]);
      arm.params = {{"attention.kv_heads", std::to_string(kKvHeads[g])},
                    {"attention.variant", kVariants[v]}};
      arm.config = {{"attention.variant", kVariants[v]},
                    {"attention.kv_heads", std::to_string(kKvHeads[g])},
                    {"model.heads", "16"},
                    {"model.dim", "512"},
                    {"model.layers", "6"},
                    {"train.precision", "fp32"}};
      arm.seeds = {1, 2, 3};
      const double centre = 3.0 - 0.05 * static_cast<double>(g) - 0.02 * static_cast<double>(v);
      arm.values = {centre - 0.02, centre, centre + 0.02};
      arm.stats = stats::describe(arm.values);
      arm.parameters =
          20e6 + 0.5e6 * static_cast<double>(kKvHeads[g]) + 1e5 * static_cast<double>(v);
      arm.throughput =
          90000 - 2000 * static_cast<double>(kKvHeads[g]) - 500 * static_cast<double>(v);
      for (int64_t step = 0; step <= 2000; step += 100) {
        CurvePoint p;
        p.step = step;
        const double progress =
            1 - std::exp(-static_cast<double>(step) / (300 + 40 * static_cast<double>(i)));
        p.mean = 6.0 - (6.0 - arm.stats.mean) * progress;
        p.n = 3;
        p.low = p.mean - 0.05;
        p.high = p.mean + 0.05;
        arm.curve.push_back(p);
      }
      r.arms.push_back(arm);
    }
  }
  r.baseline = 0;
  return r;
}

const Figure* find(const FigureSet& set, const std::string& name) {
  for (const Figure& f : set.figures) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

bool has_note(const FigureSet& set, const std::string& start) {
  for (const std::string& n : set.notes) {
    if (n.rfind(start, 0) == 0) return true;
  }
  return false;
}

// A drawn PNG: the signature, the asked size, a figure rather than a blank page, and the first
// series colour among its pixels.
void expect_drawn_png(const std::string& path, const FigureOptions& options) {
  SCOPED_TRACE(path);
  ASSERT_TRUE(fs::exists(path));
  const std::string bytes = slurp(path);
  ASSERT_TRUE(testing::has_png_signature(bytes));
  EXPECT_GT(bytes.size(), 5000u);
  const PngImage image = testing::decode_png(bytes);
  EXPECT_EQ(image.width, static_cast<uint32_t>(options.width));
  EXPECT_EQ(image.height, static_cast<uint32_t>(options.height));
  EXPECT_GT(count_colours(image), 30u);
  const size_t white = count_near(image, 0xFFFFFF, 0);
  EXPECT_GT(white, image.pixels() / 2) << "the background is white";
  EXPECT_LT(white, image.pixels() * 99 / 100) << "something is drawn";
  EXPECT_GT(count_near(image, kFirstSeries, 40), 40u) << "the first series' vermilion";
}

class FigureTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(gnuplot_available()) << kNoGnuplot; }
  testing::TempDir dir_{"ablate-figures"};
};

TEST_F(FigureTest, DrawsTheThreeFiguresAsPngAndSvg) {
  const Report report = sample_report();
  const FigureOptions options;
  const FigureSet set = render_figures(report, dir_.str(), options);
  EXPECT_TRUE(set.notes.empty()) << set.notes.front();
  ASSERT_EQ(set.figures.size(), 3u);
  EXPECT_EQ(set.figures[0].name, "learning_curves");
  EXPECT_EQ(set.figures[1].name, "metric_vs_groups");
  EXPECT_EQ(set.figures[2].name, "quality_vs_cost");
  for (const Figure& f : set.figures) {
    SCOPED_TRACE(f.name);
    EXPECT_EQ(f.png_path, dir_.file(f.name + ".png"));
    EXPECT_EQ(f.svg_path, dir_.file(f.name + ".svg"));
    EXPECT_FALSE(f.title.empty());
    EXPECT_NE(f.caption.find("95% t-interval"), std::string::npos) << f.caption;
    EXPECT_NE(f.caption.find("n = 3 seeds per arm"), std::string::npos) << f.caption;
    expect_drawn_png(f.png_path, options);
    const std::string svg = slurp(f.svg_path);
    EXPECT_EQ(svg.rfind("<?xml", 0), 0u);
    EXPECT_NE(svg.find("</svg>"), std::string::npos) << "the SVG is complete";
    std::string compact = svg;  // gnuplot writes colours as rgb(213,  94,   0)
    compact.erase(std::remove(compact.begin(), compact.end(), ' '), compact.end());
    EXPECT_NE(compact.find("rgb(213,94,0)"), std::string::npos) << "the first series' colour";
  }
  // Nothing else is left in the folder: no scratch files, no temporary names.
  size_t files = 0;
  for (const auto& entry : fs::directory_iterator(dir_.path())) {
    (void)entry;
    ++files;
  }
  EXPECT_EQ(files, 6u);
}

// Points of a train.eval_subset are circled, the legend says what a circle is and the caption
// which points read a subset; without subsets none of it.
TEST_F(FigureTest, SubsetCurvePointsAreCircledAndNamedInTheLegendAndCaption) {
  for (const bool panels : {false, true}) {
    SCOPED_TRACE(panels);
    Report report = sample_report();
    for (ReportArm& arm : report.arms) {
      for (size_t k = 0; k + 1 < arm.curve.size(); ++k) arm.curve[k].subset = 1000;
    }
    FigureOptions options;
    if (panels) options.panel_key = "attention.variant";
    const FigureSet set = render_figures(report, dir_.str(), options);
    const Figure* f = find(set, "learning_curves");
    ASSERT_NE(f, nullptr);
    EXPECT_NE(f->caption.find("Circled points are intermediate evaluations of only the first "
                              "1000 held-out examples (train.eval_subset); the others, and each "
                              "run's last point, are of the whole held-out set."),
              std::string::npos)
        << f->caption;
    // The legend's extra entry grows the canvas: no expect_drawn_png, which checks the size.
    const PngImage circled = testing::read_png(f->png_path);
    const std::string svg = slurp(f->svg_path);
    EXPECT_NE(svg.find("circled: the first 1000 held-out examples only (train.eval_subset)"),
              std::string::npos)
        << "the legend names the circles";
    const Report plain = sample_report();
    const FigureSet without = render_figures(plain, dir_.str(), options);
    const Figure* g = find(without, "learning_curves");
    ASSERT_NE(g, nullptr);
    EXPECT_EQ(g->caption.find("Circled"), std::string::npos) << g->caption;
    EXPECT_EQ(slurp(g->svg_path).find("circled"), std::string::npos);
    // The circles are drawn, in the arms' colours: more of the last arm's colour (drawn last, so
    // no other arm's line covers its circles).
    const PngImage plain_png = testing::read_png(g->png_path);
    const uint32_t last = kFigurePalette[3];
    EXPECT_GT(count_near(circled, last, 40), count_near(plain_png, last, 40) + 100);
  }
}

TEST_F(FigureTest, LabelsDrawAsWrittenAndTheBaselineIsMarked) {
  const FigureSet set = render_figures(sample_report(), dir_.str());
  for (const char* name : {"learning_curves", "quality_vs_cost"}) {
    SCOPED_TRACE(name);
    const Figure* f = find(set, name);
    ASSERT_NE(f, nullptr);
    const std::string svg = slurp(f->svg_path);
    // XML-escaped text, never markup; gnuplot escapes '<' and '&' (a bare '>' is valid XML).
    EXPECT_NE(svg.find("variant=mha &lt;script"), std::string::npos);
    EXPECT_EQ(svg.find("<script"), std::string::npos);
    EXPECT_NE(svg.find("(baseline)"), std::string::npos);
    // noenhanced: no subscript, the braces and the percent sign are there.
    EXPECT_NE(svg.find("kv_heads=2 50%_{x}"), std::string::npos);
    const bool quotes = svg.find("\"quotes\" it's") != std::string::npos ||
                        svg.find("&quot;quotes&quot; it&apos;s") != std::string::npos;
    EXPECT_TRUE(quotes) << "the label with quotes";
    EXPECT_NE(svg.find("variant=mqa \\back"), std::string::npos);
  }
  const std::string groups = slurp(find(set, "metric_vs_groups")->svg_path);
  for (const char* series : {">mha<", ">gqa<", ">mqa<"}) {
    EXPECT_NE(groups.find(series), std::string::npos) << series;
  }
}

TEST_F(FigureTest, CaptionsUseTheReportsConfidence) {
  const FigureSet set = render_figures(sample_report(0.01), dir_.str(), {});
  ASSERT_EQ(set.figures.size(), 3u);
  for (const Figure& f : set.figures) {
    EXPECT_NE(f.caption.find("99% t-interval"), std::string::npos) << f.caption;
  }
  EXPECT_NE(set.figures[0].caption.find("only one seed"), std::string::npos)
      << "steps of one seed have no band";
}

TEST_F(FigureTest, WithoutCurvesTheLearningCurvesAreANote) {
  Report report = sample_report();
  report.imported = true;
  report.curve_metric.clear();
  for (ReportArm& arm : report.arms) arm.curve.clear();
  const FigureSet set = render_figures(report, dir_.str());
  ASSERT_EQ(set.notes.size(), 1u);
  EXPECT_EQ(set.notes[0], "learning curves: the metric was not logged as a curve (imported sweep)");
  EXPECT_EQ(find(set, "learning_curves"), nullptr);
  EXPECT_FALSE(fs::exists(dir_.file("learning_curves.png")));
  // Drawn by an earlier report into the same folder: removed, not left to contradict this one.
  ASSERT_EQ(render_figures(sample_report(), dir_.str()).figures.size(), 3u);
  ASSERT_TRUE(fs::exists(dir_.file("learning_curves.svg")));
  render_figures(report, dir_.str());
  EXPECT_FALSE(fs::exists(dir_.file("learning_curves.png")));
  EXPECT_FALSE(fs::exists(dir_.file("learning_curves.svg")));
  EXPECT_TRUE(fs::exists(dir_.file("quality_vs_cost.svg")));
  EXPECT_NE(find(set, "metric_vs_groups"), nullptr);
  EXPECT_NE(find(set, "quality_vs_cost"), nullptr);
}

TEST_F(FigureTest, OneGroupCountSkipsMetricVsGroups) {
  Report report = sample_report();
  // Four gqa arms with 2 groups that differ in learning rate only.
  for (size_t i = 0; i < report.arms.size(); ++i) {
    ReportArm& arm = report.arms[i];
    arm.config["attention.variant"] = "gqa";
    arm.config["attention.kv_heads"] = "2";
    arm.config["optim.lr"] = std::to_string(0.001 * static_cast<double>(i + 1));
    arm.params = {{"optim.lr", arm.config["optim.lr"]}};
  }
  const FigureSet set = render_figures(report, dir_.str());
  ASSERT_EQ(set.notes.size(), 1u);
  EXPECT_EQ(set.notes[0],
            "metric vs groups: every arm has the same group count (2), so there is nothing to "
            "compare");
  EXPECT_EQ(find(set, "metric_vs_groups"), nullptr);
  EXPECT_EQ(set.figures.size(), 2u);
}

TEST_F(FigureTest, CostFallsBackToThroughputAndOtherwiseIsANote) {
  Report report = sample_report();
  for (size_t i = 0; i < report.arms.size(); ++i) {
    report.arms[i].parameters = 1e6;  // the same for every arm
    report.arms[i].throughput = 1000.0 * static_cast<double>(i + 1);
  }
  FigureSet set = render_figures(report, dir_.str());
  const Figure* cost = find(set, "quality_vs_cost");
  ASSERT_NE(cost, nullptr);
  EXPECT_NE(cost->title.find("throughput"), std::string::npos) << cost->title;
  EXPECT_NE(cost->caption.find("throughput"), std::string::npos) << cost->caption;

  for (ReportArm& arm : report.arms) arm.throughput = stats::kNaN;
  set = render_figures(report, dir_.str());
  EXPECT_EQ(find(set, "quality_vs_cost"), nullptr);
  EXPECT_TRUE(has_note(set, "quality vs cost: ")) << ::testing::PrintToString(set.notes);
}

TEST_F(FigureTest, GroupCountsFollowTheVariant) {
  // No attention config at all (an imported sweep of something else): two notes, one figure.
  Report report = sample_report();
  for (ReportArm& arm : report.arms) arm.config.clear();
  const FigureSet set = render_figures(report, dir_.str());
  EXPECT_TRUE(has_note(set, "metric vs groups: the arms have no attention.variant"))
      << ::testing::PrintToString(set.notes);
  // mha = heads (8), mqa = 1, kv_heads 0 = heads: {1, 8} are two counts, so it is drawn.
  Report two = sample_report();
  two.arms.erase(two.arms.begin() + 1, two.arms.begin() + 3);
  two.arms[0].config["attention.kv_heads"] = "3";  // ignored for mha
  EXPECT_NE(find(render_figures(two, dir_.str()), "metric_vs_groups"), nullptr);
  two.arms[1].config["attention.variant"] = "gqa";
  two.arms[1].config["attention.kv_heads"] = "0";  // = model.heads, like the mha arm
  EXPECT_TRUE(has_note(render_figures(two, dir_.str()),
                       "metric vs groups: every arm has the same "
                       "group count (8)"));
}

TEST_F(FigureTest, OneSeedPerArmAndFlatValuesStillDraw) {
  Report report = sample_report();
  for (ReportArm& arm : report.arms) {
    arm.seeds = {1};
    arm.values = {0.5};  // every arm the same: gnuplot must widen an empty y range itself
    arm.stats = stats::describe(arm.values);
    ASSERT_FALSE(arm.stats.t_ci.available);
    for (CurvePoint& p : arm.curve) {
      p.n = 1;
      p.low = p.high = stats::kNaN;
    }
  }
  const FigureSet set = render_figures(report, dir_.str());
  ASSERT_EQ(set.figures.size(), 3u) << ::testing::PrintToString(set.notes);
  EXPECT_NE(set.figures[0].caption.find("n = 1 seed per arm"), std::string::npos)
      << set.figures[0].caption;
  for (const Figure& f : set.figures) expect_drawn_png(f.png_path, FigureOptions{});
}

TEST_F(FigureTest, NothingToDrawWritesNothing) {
  Report report = sample_report();
  report.arms.resize(1);  // one arm: no curve comparison needed, but no groups or cost either
  report.arms[0].curve.clear();
  const FigureSet set = render_figures(report, dir_.file("figures"));
  EXPECT_TRUE(set.figures.empty());
  EXPECT_EQ(set.notes.size(), 3u) << ::testing::PrintToString(set.notes);
  EXPECT_EQ(set.notes[0], "learning curves: no arm logged a curve of the metric");
  EXPECT_FALSE(fs::exists(dir_.file("figures")));
}

TEST_F(FigureTest, OnlyTheAskedFormatsAndSize) {
  FigureOptions options;
  options.svg = false;
  options.width = 640;
  options.height = 400;
  const FigureSet set = render_figures(sample_report(), dir_.file("nested/out"), options);
  ASSERT_EQ(set.figures.size(), 3u);
  for (const Figure& f : set.figures) {
    EXPECT_TRUE(f.svg_path.empty());
    expect_drawn_png(f.png_path, options);
  }
  EXPECT_FALSE(fs::exists(dir_.file("nested/out/learning_curves.svg")));
}

TEST_F(FigureTest, ADirectoryWithQuotesAndSpaces) {
  const std::string odd = dir_.file("it's a \"dir\" $HOME;");
  const FigureSet set = render_figures(sample_report(), odd);
  ASSERT_EQ(set.figures.size(), 3u);
  EXPECT_TRUE(fs::exists(odd + "/quality_vs_cost.png"));
  EXPECT_TRUE(fs::exists(odd + "/quality_vs_cost.svg"));
}

TEST_F(FigureTest, AMissingOrFailingGnuplotThrows) {
  FigureOptions options;
  options.gnuplot = "/nonexistent/gnuplot";
  EXPECT_FALSE(gnuplot_available(options.gnuplot));
  try {
    render_figures(sample_report(), dir_.str(), options);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("gnuplot-nox"), std::string::npos) << e.what();
  }
  options.gnuplot = "false";  // runs, exits 1
  try {
    render_figures(sample_report(), dir_.str(), options);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("exit status 1"), std::string::npos) << e.what();
  }
  // Nothing half-written is left behind.
  EXPECT_TRUE(fs::is_empty(dir_.path()));
}

// ---------------------------------------------------------------------------------------------
// Figures that scale: 20 arms

// Plot frames in a PNG: the horizontal black edges of at least `min_run` pixels (text and tics
// are shorter, the grid light grey, series coloured), an edge two antialiased rows counted once;
// a frame has two.
size_t count_frames(const PngImage& image, uint32_t min_run = 150) {
  struct Edge {
    uint32_t y, x0, length;
  };
  std::vector<Edge> edges;
  for (uint32_t y = 0; y < image.height; ++y) {
    uint32_t run = 0;
    for (uint32_t x = 0; x <= image.width; ++x) {
      bool dark = false;
      if (x < image.width) {
        const uint32_t c = testing::over_white(image, static_cast<size_t>(y) * image.width + x);
        dark = ((c >> 16) & 0xff) < 110 && ((c >> 8) & 0xff) < 110 && (c & 0xff) < 110;
      }
      if (dark) {
        ++run;
        continue;
      }
      if (run >= min_run) {
        const uint32_t x0 = x - run;
        const bool same = std::any_of(edges.begin(), edges.end(), [&](const Edge& e) {
          return y - e.y <= 2 && std::abs(static_cast<int>(e.x0) - static_cast<int>(x0)) <= 2;
        });
        if (!same) edges.push_back({y, x0, run});
      }
      run = 0;
    }
  }
  return edges.size() / 2;
}

// Pixels of the outermost `band` rows and columns that are not white: a legend or label cut off
// by the canvas edge leaves some.
size_t edge_ink(const PngImage& image, uint32_t band = 3) {
  size_t n = 0;
  for (uint32_t y = 0; y < image.height; ++y) {
    for (uint32_t x = 0; x < image.width; ++x) {
      const bool edge = y < band || x < band || y >= image.height - band || x >= image.width - band;
      if (!edge) continue;
      const uint32_t c = testing::over_white(image, static_cast<size_t>(y) * image.width + x);
      n += c != 0xFFFFFF ? 1 : 0;
    }
  }
  return n;
}

// The palette colours (k < 12) of which `image` has at least `min_pixels` pixels.
size_t palette_colours_drawn(const PngImage& image, size_t min_pixels = 30) {
  size_t n = 0;
  for (const uint32_t rgb : kFigurePalette) n += count_near(image, rgb, 4) >= min_pixels ? 1 : 0;
  return n;
}

// What an SVG of gnuplot's says: its size, every <text> with its position, and the titles of its
// legend entries (a titled plot element is a <g id="gnuplot_plot_Nb"><title>...</title>).
struct SvgText {
  std::string text;
  double x = 0, y = 0;
  std::string anchor;  // "start", "middle" or "end"
  bool rotated = false;
};
struct Svg {
  double width = 0, height = 0;
  std::vector<SvgText> texts;
  std::vector<std::string> keys;
};

std::string unescape_xml(std::string s) {
  const std::pair<const char*, const char*> entities[] = {
      {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&apos;", "'"}, {"&amp;", "&"}};
  for (const auto& [from, to] : entities) {
    for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + 1)) {
      s.replace(at, std::strlen(from), to);
    }
  }
  return s;
}

Svg read_svg(const std::string& path) {
  const std::string svg = slurp(path);
  Svg out;
  out.width = std::stod(svg.substr(svg.find(" width=\"") + 8));
  out.height = std::stod(svg.substr(svg.find(" height=\"") + 9));
  for (size_t at = svg.find("<text>"); at != std::string::npos; at = svg.find("<text>", at + 1)) {
    SvgText t;
    t.text = unescape_xml(svg.substr(at + 6, svg.find("</text>", at) - at - 6));
    // gnuplot pads tic labels with a space: " 0.5".
    t.text.erase(0, t.text.find_first_not_of(' '));
    t.text.erase(t.text.find_last_not_of(' ') + 1);
    const size_t g = svg.rfind("translate(", at);
    t.rotated = svg.find("rotate(", g) < at;
    t.x = std::stod(svg.substr(g + 10));
    t.y = std::stod(svg.substr(svg.find(',', g) + 1));
    const size_t anchor = svg.find("text-anchor=\"", g) + 13;
    t.anchor = svg.substr(anchor, svg.find('"', anchor) - anchor);
    out.texts.push_back(t);
  }
  // A plot element's group; the first text inside it is its legend entry (gnuplot draws point
  // labels outside every plot's group).
  const std::string group = "<g id=\"gnuplot_plot_";
  for (size_t at = svg.find(group); at != std::string::npos; at = svg.find(group, at + 1)) {
    int depth = 0;
    size_t end = at;
    for (size_t i = at; i < svg.size(); ++i) {
      if (svg.compare(i, 3, "<g ") == 0) ++depth;
      if (svg.compare(i, 4, "</g>") == 0 && --depth == 0) {
        end = i;
        break;
      }
    }
    const size_t text = svg.find("<text>", at);
    if (text < end) {
      out.keys.push_back(unescape_xml(svg.substr(text + 6, svg.find("</text>", text) - text - 6)));
    }
  }
  return out;
}

size_t texts_equal(const Svg& svg, const std::string& text) {
  return static_cast<size_t>(std::count_if(svg.texts.begin(), svg.texts.end(),
                                           [&](const SvgText& t) { return t.text == text; }));
}

// Every text lies inside the canvas, at the 6 px a character of sans 11 takes on average.
void expect_texts_inside(const Svg& svg) {
  for (const SvgText& t : svg.texts) {
    size_t chars = 0;
    for (const char c : t.text) chars += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    const double width = 6.0 * static_cast<double>(chars);
    const double left = t.anchor == "start" ? t.x
                        : t.anchor == "end" ? t.x - width
                                            : t.x - width / 2;
    if (!t.rotated) {  // the y label: it is short beside the plot's height
      EXPECT_GE(left, 0) << t.text;
      EXPECT_LE(left + width, svg.width) << t.text;
    }
    EXPECT_GT(t.y, 8) << t.text;
    EXPECT_LE(t.y, svg.height - 4) << t.text;
  }
}

// A drawn PNG of a figure: no ink on its edges (nothing cut off), at least as large as asked and
// no larger than the caps.
PngImage expect_uncut(const Figure& f, const FigureOptions& options = {}) {
  SCOPED_TRACE(f.name);
  const PngImage image = testing::read_png(f.png_path);
  EXPECT_GE(image.width, static_cast<uint32_t>(options.width));
  EXPECT_GE(image.height, static_cast<uint32_t>(options.height));
  EXPECT_LE(image.width, static_cast<uint32_t>(kMaxCanvasWidth));
  EXPECT_LE(image.height, static_cast<uint32_t>(kMaxCanvasHeight));
  EXPECT_EQ(edge_ink(image), 0u) << "nothing touches the edge of the canvas";
  const Svg svg = read_svg(f.svg_path);
  EXPECT_EQ(svg.width, image.width);
  EXPECT_EQ(svg.height, image.height);
  expect_texts_inside(svg);
  return image;
}

TEST(FigureStyle, TwelveColoursThenDashesAndMarkers) {
  EXPECT_EQ(kFigurePalette[0], 0xD55E00u) << "series 0 is vermilion";
  std::set<uint32_t> colours(kFigurePalette.begin(), kFigurePalette.end());
  EXPECT_EQ(colours.size(), 12u);
  std::set<std::tuple<uint32_t, int, int>> styles;
  for (size_t k = 0; k < 40; ++k) {
    SCOPED_TRACE(k);
    const SeriesStyle s = series_style(k);
    EXPECT_EQ(s.rgb, kFigurePalette[k % 12]);
    EXPECT_EQ(s.dash_type, k < 12 ? 1 : static_cast<int>(k / 12) + 1);
    const SeriesStyle later = series_style(k + 12);
    EXPECT_EQ(later.rgb, s.rgb);
    EXPECT_NE(later.dash_type, s.dash_type);
    EXPECT_NE(later.point_type, s.point_type);
    styles.insert({s.rgb, s.dash_type, s.point_type});
  }
  EXPECT_EQ(styles.size(), 40u) << "every series its own style";
  // The palette's colours are far apart: no antialiased edge of one passes for another.
  for (size_t i = 0; i < 12; ++i) {
    for (size_t j = i + 1; j < 12; ++j) {
      int far = 0;
      for (int shift = 0; shift <= 16; shift += 8) {
        far = std::max(far, std::abs(static_cast<int>((kFigurePalette[i] >> shift) & 0xff) -
                                     static_cast<int>((kFigurePalette[j] >> shift) & 0xff)));
      }
      EXPECT_GE(far, 48) << i << " " << j;
    }
  }
}

// The x of the metric-vs-groups figure: GQKVA 2 x 2 has 2 key/value groups (it sat at 4, with
// MHA, when the figure read attention.kv_heads, which gqkva leaves at 0).
TEST(FigureCost, KeyValueHeadsPerVariant) {
  auto kv = [](std::map<std::string, std::string> c) {
    c["model.heads"] = "4";
    return key_value_heads(c);
  };
  EXPECT_EQ(kv({{"attention.variant", "mha"}}), 4);
  EXPECT_EQ(kv({{"attention.variant", "mqa"}}), 1);
  EXPECT_EQ(kv({{"attention.variant", "gqa"}, {"attention.kv_heads", "2"}}), 2);
  EXPECT_EQ(kv({{"attention.variant", "gqa"}, {"attention.kv_heads", "0"}}), 4);
  EXPECT_EQ(kv({{"attention.variant", "mkva"}, {"attention.kv_heads", "0"}}), 4);
  EXPECT_EQ(kv({{"attention.variant", "gkva"}, {"attention.q_heads", "2"}}), 4);
  EXPECT_EQ(kv({{"attention.variant", "gqkva"},
                {"attention.kv_heads", "0"},
                {"attention.q_groups", "2"},
                {"attention.kv_groups", "2"}}),
            2);
  EXPECT_EQ(kv({{"attention.variant", "gqkva"}}), std::nullopt);
  EXPECT_EQ(kv({{"attention.variant", "novel"}}), std::nullopt);
}

TEST(FigureCost, KvCacheBytesPerTokenByHand) {
  // 4 layers, d = 256, H = 8: head dim 32; fp32 4 bytes. 2 x 4 x G x 32 x 4 = 1024 G.
  const std::map<std::string, std::string> base = {
      {"model.layers", "4"}, {"model.dim", "256"}, {"model.heads", "8"}};
  auto with = [&](std::map<std::string, std::string> extra) {
    std::map<std::string, std::string> c = base;
    for (auto& [k, v] : extra) c[k] = v;
    return kv_cache_bytes_per_token(c);
  };
  EXPECT_EQ(with({{"attention.variant", "mha"}}), 8192.0);
  EXPECT_EQ(with({{"attention.variant", "mha"}, {"attention.kv_heads", "2"}}), 8192.0)
      << "mha ignores kv_heads";
  EXPECT_EQ(with({{"attention.variant", "gqa"}, {"attention.kv_heads", "2"}}), 2048.0);
  EXPECT_EQ(with({{"attention.variant", "gqa"}, {"attention.kv_heads", "0"}}), 8192.0)
      << "0 means model.heads";
  EXPECT_EQ(with({{"attention.variant", "mqa"}}), 1024.0);
  EXPECT_EQ(with({{"attention.variant", "mha"}, {"train.precision", "bf16"}}), 4096.0);
  EXPECT_EQ(
      with(
          {{"attention.variant", "gqa"}, {"attention.kv_heads", "4"}, {"train.precision", "fp16"}}),
      2048.0);
  EXPECT_EQ(with({{"attention.variant", "mqa"}, {"train.precision", "fp32"}}), 1024.0);
  EXPECT_EQ(with({{"attention.variant", "mqa"}, {"train.precision", "auto"}}), 1024.0);
  for (const char* v : {"kdgqa", "dgqa", "pgqa", "wgqa"}) {
    EXPECT_EQ(with({{"attention.variant", v}, {"attention.kv_heads", "4"}}), 4096.0) << v;
  }
  EXPECT_EQ(with({{"attention.variant", "gkva"}, {"attention.q_heads", "2"}}), 8192.0)
      << "gkva keeps H key/value heads";
  EXPECT_EQ(with({{"attention.variant", "mkva"}}), 8192.0);
  EXPECT_EQ(with({{"attention.variant", "gqkva"},
                  {"attention.q_groups", "2"},
                  {"attention.kv_groups", "4"}}),
            4096.0);
  // 2 layers of d = 96 with 3 heads of 32, bf16: 2 x 2 x 1 x 32 x 2.
  EXPECT_EQ(kv_cache_bytes_per_token({{"attention.variant", "mqa"},
                                      {"model.layers", "2"},
                                      {"model.dim", "96"},
                                      {"model.heads", "3"},
                                      {"train.precision", "bf16"}}),
            256.0);
  // Unknown: the config does not say.
  EXPECT_TRUE(std::isnan(with({{"attention.variant", "gqa"}}))) << "gqa without kv_heads";
  EXPECT_TRUE(std::isnan(with({{"attention.variant", "gqkva"}})));
  EXPECT_TRUE(std::isnan(with({{"attention.variant", "mystery"}})));
  EXPECT_TRUE(std::isnan(with({})));
  EXPECT_TRUE(std::isnan(kv_cache_bytes_per_token({{"attention.variant", "mha"}})));
  EXPECT_TRUE(std::isnan(with({{"attention.variant", "mha"}, {"model.layers", "four"}})));
  EXPECT_TRUE(std::isnan(with({{"attention.variant", "gqa"}, {"attention.kv_heads", "-2"}})));
  // ablate's own key for the layer count.
  EXPECT_EQ(kv_cache_bytes_per_token({{"attention.variant", "mqa"},
                                      {"model.depth", "2"},
                                      {"model.dim", "96"},
                                      {"model.heads", "3"}}),
            512.0);
}

TEST(FigureCost, ParsesItsNames) {
  for (const CostAxis c :
       {CostAxis::kAuto, CostAxis::kParameters, CostAxis::kThroughput, CostAxis::kKvCache}) {
    EXPECT_EQ(parse_cost_axis(to_string(c)), c);
  }
  EXPECT_EQ(parse_cost_axis("kv_cache"), CostAxis::kKvCache);
  try {
    parse_cost_axis("flops");
    FAIL() << "expected an error";
  } catch (const ReportError& e) {
    EXPECT_NE(std::string(e.what()).find("kv-cache"), std::string::npos) << e.what();
  }
}

TEST_F(FigureTest, TwentyArmsLearningCurvesArePanelsPerVariant) {
  Report report = twenty_arms();
  // One pgqa arm diverges: with one y range for every panel, every panel has its high tics.
  for (CurvePoint& p : report.arms[10].curve) {
    p.mean = 6.0 + 2.5 * static_cast<double>(p.step) / 2000;
    p.low = p.mean - 0.05;
    p.high = p.mean + 0.05;
  }
  const FigureSet set = render_figures(report, dir_.str());
  EXPECT_TRUE(set.notes.empty()) << ::testing::PrintToString(set.notes);
  const Figure* f = find(set, "learning_curves");
  ASSERT_NE(f, nullptr);
  const PngImage image = expect_uncut(*f);
  EXPECT_EQ(count_frames(image), 4u) << "one panel per variant";
  EXPECT_GT(image.width, 800u) << "the canvas grew with the panels";
  EXPECT_EQ(palette_colours_drawn(image), 12u);
  EXPECT_NE(f->caption.find("one panel per value of attention.variant"), std::string::npos)
      << f->caption;
  const Svg svg = read_svg(f->svg_path);
  // The panel's title says its variant and the long token every arm of it shares, once.
  const std::string shared = " schedule=cosine-with-linear-warmup-and-a-long-name";
  std::vector<const SvgText*> titles;
  for (const std::string& v : kVariants) {
    ASSERT_EQ(texts_equal(svg, "variant=" + v + shared), 1u) << v;
    titles.push_back(&*std::find_if(svg.texts.begin(), svg.texts.end(), [&](const SvgText& t) {
      return t.text == "variant=" + v + shared;
    }));
  }
  // Two titles of a row are a title's width apart (8 px a character): they do not overlap, and
  // each lies inside the canvas.
  const double title_width = 8.0 * static_cast<double>(titles[0]->text.size());
  EXPECT_GE(std::abs(titles[1]->x - titles[0]->x), title_width);
  for (const SvgText* t : titles) {
    EXPECT_GE(t->x - title_width / 2, 0) << t->text;
    EXPECT_LE(t->x + title_width / 2, svg.width) << t->text;
  }
  EXPECT_EQ(texts_equal(svg, "8"), 4u) << "the same y tics in every panel";
  // One legend entry per arm, inside its panel: the panel's variant and the shared token left
  // out of the label, which is then short enough to be whole, and distinct.
  ASSERT_EQ(svg.keys.size(), 20u);
  for (size_t panel = 0; panel < 4; ++panel) {
    const auto first = svg.keys.begin() + static_cast<std::ptrdiff_t>(panel * 5);
    EXPECT_EQ(std::set<std::string>(first, first + 5).size(), 5u) << "distinct in their panel";
  }
  EXPECT_EQ(svg.keys[0], "kv_heads=1 (baseline)");
  EXPECT_EQ(svg.keys[1], "kv_heads=2");
  for (const std::string& key : svg.keys) {
    EXPECT_EQ(key.find("variant="), std::string::npos) << key;
    EXPECT_EQ(key.find("schedule="), std::string::npos) << key;
    EXPECT_EQ(key.find("\u2026"), std::string::npos) << key << " is whole";
  }
}

TEST_F(FigureTest, APanelKeyChoosesThePanels) {
  FigureOptions options;
  options.panel_key = "kv_heads";  // the unique config key ending in .kv_heads
  FigureSet set = render_figures(twenty_arms(), dir_.str(), options);
  EXPECT_TRUE(set.notes.empty()) << ::testing::PrintToString(set.notes);
  const Figure* f = find(set, "learning_curves");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(count_frames(expect_uncut(*f, options)), 5u);
  const Svg svg = read_svg(f->svg_path);
  // In ascending numeric order, left to right.
  double last_x = -1;
  for (const int g : kKvHeads) {
    // Each panel's four arms share the long schedule token: the title says it.
    const std::string title =
        "kv_heads=" + std::to_string(g) + " schedule=cosine-with-linear-warmup-and-a-long-name";
    ASSERT_EQ(texts_equal(svg, title), 1u) << title;
    const auto it = std::find_if(svg.texts.begin(), svg.texts.end(),
                                 [&](const SvgText& t) { return t.text == title; });
    if (g != 8) {
      EXPECT_GT(it->x, last_x) << title;  // 8 starts the second row
    }
    last_x = it->x;
  }
  // Four arms a panel is one plot's worth, but the asked key still splits them.
  Report four = sample_report();
  options.panel_key = "attention.variant";
  set = render_figures(four, dir_.str(), options);
  EXPECT_EQ(count_frames(testing::read_png(find(set, "learning_curves")->png_path)), 3u);
  // A key no arm has: one plot, and a note that says why.
  options.panel_key = "optim.nonexistent";
  set = render_figures(twenty_arms(), dir_.str(), options);
  ASSERT_EQ(set.notes.size(), 1u);
  EXPECT_EQ(set.notes[0],
            "learning curves: no arm has the config key optim.nonexistent; drawn as one plot");
  Report two_lrs = twenty_arms();
  two_lrs.arms[0].config["optim.lr"] = "0.001";
  two_lrs.arms[1].config["sched.lr"] = "0.002";
  options.panel_key = "lr";
  EXPECT_EQ(render_figures(two_lrs, dir_.str(), options).notes,
            std::vector<std::string>{"learning curves: the panel key lr is ambiguous (optim.lr, "
                                     "sched.lr); drawn as one plot"});
  options.panel_key = "optim.nonexistent";
  set = render_figures(twenty_arms(), dir_.str(), options);
  f = find(set, "learning_curves");
  ASSERT_NE(f, nullptr);
  const PngImage one = expect_uncut(*f);
  EXPECT_EQ(count_frames(one), 1u);
  EXPECT_EQ(palette_colours_drawn(one), 12u);
  EXPECT_EQ(read_svg(f->svg_path).keys.size(), 20u);
}

TEST_F(FigureTest, FewArmsOrOneVariantAreOnePlot) {
  FigureSet set = render_figures(sample_report(), dir_.str());
  EXPECT_EQ(count_frames(testing::read_png(find(set, "learning_curves")->png_path)), 1u);
  Report report = twenty_arms();
  for (ReportArm& arm : report.arms) arm.config["attention.variant"] = "gqa";
  set = render_figures(report, dir_.str());
  const Figure* f = find(set, "learning_curves");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(count_frames(expect_uncut(*f)), 1u);
}

TEST_F(FigureTest, TwentyArmsQualityVsCostHasALegendNotPointLabels) {
  const FigureSet set = render_figures(twenty_arms(), dir_.str());
  const Figure* f = find(set, "quality_vs_cost");
  ASSERT_NE(f, nullptr);
  const PngImage image = expect_uncut(*f);
  EXPECT_EQ(palette_colours_drawn(image, 20), 12u);
  EXPECT_GT(image.height, 480u) << "the canvas grew with the legend";
  const Svg svg = read_svg(f->svg_path);
  ASSERT_EQ(svg.keys.size(), 20u) << "a legend entry per arm";
  EXPECT_EQ(std::set<std::string>(svg.keys.begin(), svg.keys.end()).size(), 20u);
  size_t arm_texts = 0;
  for (const SvgText& t : svg.texts) arm_texts += t.text.find("kv_heads=") != std::string::npos;
  EXPECT_EQ(arm_texts, 20u) << "the legend's text only: no label beside a point";
  EXPECT_NE(f->caption.find("legend"), std::string::npos) << f->caption;

  // Four arms: a label beside each point and no legend.
  const FigureSet four = render_figures(sample_report(), dir_.str());
  const Figure* few = find(four, "quality_vs_cost");
  ASSERT_NE(few, nullptr);
  const Svg labelled = read_svg(few->svg_path);
  EXPECT_TRUE(labelled.keys.empty());
  size_t labels = 0;
  for (const SvgText& t : labelled.texts) labels += t.text.rfind("variant=", 0) == 0;
  EXPECT_EQ(labels, 4u);
  // The x tics (2.8M to 4.2M parameters, the range padded by a tenth) are round numbers written
  // as a reader writes them, not gnuplot's fixed decimals (3.00M).
  std::vector<std::string> tics;
  for (const SvgText& t : labelled.texts) {
    if (!t.rotated && t.anchor == "middle" && !t.text.empty() &&
        t.text.find_first_not_of("0123456789.M") == std::string::npos) {
      tics.push_back(t.text);
    }
  }
  EXPECT_EQ(tics,
            (std::vector<std::string>{"2.8M", "3M", "3.2M", "3.4M", "3.6M", "3.8M", "4M", "4.2M"}))
      << ::testing::PrintToString(tics);
}

// Labels that differ only in their middle words (an uptrain sweep's weight_form x weight_init):
// the legend leaves out whole words, those every label has first, never cutting inside a word
// ("weight…lar" left a reader guessing which form it was), and keeps them apart.
TEST_F(FigureTest, ShortenedLegendEntriesAreWholeWordsAndStayApart) {
  Report report = twenty_arms();
  report.arms.resize(9);
  const std::vector<std::string> forms = {"scalar", "row", "col"};
  const std::vector<std::string> inits = {"mean", "random", "orthogonal"};
  std::set<std::string> words_of_labels;
  for (size_t i = 0; i < 9; ++i) {
    ReportArm& arm = report.arms[i];
    arm.label = "stage=uptrain variant=wgqa kv_heads=2 weight_form=" + forms[i % 3] +
                " weight_init=" + inits[i / 3] + " steps=200 convert=wgqa";
    std::istringstream words(arm.label);
    for (std::string w; words >> w;) words_of_labels.insert(w);
  }
  words_of_labels.insert("(baseline)");
  const FigureSet set = render_figures(report, dir_.str());
  const Figure* f = find(set, "quality_vs_cost");
  ASSERT_NE(f, nullptr);
  const Svg svg = read_svg(f->svg_path);
  ASSERT_EQ(svg.keys.size(), 9u);
  EXPECT_EQ(std::set<std::string>(svg.keys.begin(), svg.keys.end()).size(), 9u) << "apart";
  bool shortened = false;
  for (const std::string& key : svg.keys) {
    std::istringstream words(key);
    for (std::string w; words >> w;) {
      if (w == "\u2026") {
        shortened = true;
        continue;
      }
      EXPECT_EQ(words_of_labels.count(w), 1u) << "'" << w << "' of " << key << " is no word";
    }
  }
  EXPECT_TRUE(shortened) << ::testing::PrintToString(svg.keys);
  // The words left out are those every label has; the two that tell the arms apart stay.
  for (const std::string& key : svg.keys) {
    EXPECT_NE(key.find("weight_form="), std::string::npos) << key;
    EXPECT_NE(key.find("weight_init="), std::string::npos) << key;
  }
}

TEST_F(FigureTest, TwentyArmsMetricVsGroupsIsOnePlotOfFourSeries) {
  const FigureSet set = render_figures(twenty_arms(), dir_.str());
  const Figure* f = find(set, "metric_vs_groups");
  ASSERT_NE(f, nullptr);
  const PngImage image = expect_uncut(*f);
  EXPECT_EQ(count_frames(image), 1u);
  EXPECT_EQ(read_svg(f->svg_path).keys, (std::vector<std::string>{"gqa", "dgqa", "pgqa", "wgqa"}));
}

TEST_F(FigureTest, MoreSeriesThanColoursInMetricVsGroupsArePanels) {
  // 4 variants x 4 learning rates x 2 group counts: 16 series of two points.
  Report report = twenty_arms();
  report.arms.clear();
  const Report model = twenty_arms();
  for (size_t v = 0; v < 4; ++v) {
    for (int lr = 1; lr <= 4; ++lr) {
      for (const int g : {2, 8}) {
        ReportArm arm = model.arms[v * 5 + 1];
        arm.config["attention.kv_heads"] = std::to_string(g);
        arm.config["optim.lr"] = std::to_string(lr) + "e-4";
        arm.params = {{"attention.kv_heads", std::to_string(g)},
                      {"attention.variant", kVariants[v]},
                      {"optim.lr", arm.config["optim.lr"]}};
        arm.label = "variant=" + kVariants[v] + " kv_heads=" + std::to_string(g) +
                    " lr=" + arm.config["optim.lr"];
        report.arms.push_back(arm);
      }
    }
  }
  const FigureSet set = render_figures(report, dir_.str());
  const Figure* f = find(set, "metric_vs_groups");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(count_frames(expect_uncut(*f)), 4u);
  const Svg svg = read_svg(f->svg_path);
  for (const std::string& v : kVariants) EXPECT_EQ(texts_equal(svg, "variant=" + v), 1u) << v;
  ASSERT_EQ(svg.keys.size(), 16u);
  EXPECT_EQ(svg.keys[0], "lr=1e-4");  // keys as the arm labels name them
  EXPECT_NE(f->caption.find("one panel per variant"), std::string::npos) << f->caption;
}

TEST_F(FigureTest, CostAxisIsAnOption) {
  Report report = twenty_arms();
  FigureOptions options;
  options.cost = CostAxis::kKvCache;
  FigureSet set = render_figures(report, dir_.str(), options);
  EXPECT_TRUE(set.notes.empty()) << ::testing::PrintToString(set.notes);
  const Figure* f = find(set, "quality_vs_cost");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->title, "final_val_loss vs KV-cache bytes per token");
  EXPECT_NE(f->caption.find("KV-cache bytes per token at inference"), std::string::npos)
      << f->caption;
  Svg svg = read_svg(f->svg_path);
  EXPECT_EQ(texts_equal(svg, "KV-cache bytes per token"), 1u) << "the x axis label";
  // 6 layers x 32 head dim x 4 bytes x 2 = 1536 bytes per key/value head: 1536 to 24576 on a
  // log-2 axis, whole numbers in full.
  EXPECT_EQ(texts_equal(svg, "1536"), 1u);
  EXPECT_EQ(texts_equal(svg, "24576"), 1u);
  EXPECT_EQ(texts_equal(svg, "1.54k"), 0u);
  expect_uncut(*f, options);

  // A value the runs recorded is used where the config's formula knows nothing (an s2s model
  // caches at its decoder sites only): no arm is left out.
  {
    Report recorded = report;
    for (size_t i = 0; i < recorded.arms.size(); ++i) {
      recorded.arms[i].config.erase("model.layers");
      recorded.arms[i].kv_cache = 1000.0 * static_cast<double>(i + 1);
    }
    const FigureSet with_recorded = render_figures(recorded, dir_.str(), options);
    EXPECT_TRUE(with_recorded.notes.empty()) << ::testing::PrintToString(with_recorded.notes);
    ASSERT_NE(find(with_recorded, "quality_vs_cost"), nullptr);
  }

  // Two arms without model.layers: left out, and the note and caption say so.
  report.arms[3].config.erase("model.layers");
  report.arms[7].config.erase("model.layers");
  set = render_figures(report, dir_.str(), options);
  ASSERT_EQ(set.notes.size(), 1u);
  EXPECT_EQ(set.notes[0],
            "quality vs cost: 2 arms without a known KV-cache bytes per token left out (" +
                long_label("gqa", 8) + ", " + long_label("dgqa", 4) + ")");
  f = find(set, "quality_vs_cost");
  ASSERT_NE(f, nullptr);
  EXPECT_NE(f->caption.find("2 arms without a known KV-cache bytes per token left out"),
            std::string::npos)
      << f->caption;
  EXPECT_EQ(read_svg(f->svg_path).keys.size(), 18u);

  // None known: no figure, and why.
  for (ReportArm& arm : report.arms) arm.config.erase("model.heads");
  set = render_figures(report, dir_.str(), options);
  EXPECT_EQ(find(set, "quality_vs_cost"), nullptr);
  EXPECT_TRUE(has_note(set, "quality vs cost: KV-cache bytes per token is known for no arm"))
      << ::testing::PrintToString(set.notes);

  // Throughput, asked for although parameters differ.
  options.cost = CostAxis::kThroughput;
  set = render_figures(twenty_arms(), dir_.str(), options);
  f = find(set, "quality_vs_cost");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->title, "final_val_loss vs training throughput (tokens or images per second)");
  // Parameters, asked for although they are all the same: drawn at one x.
  report = twenty_arms();
  for (ReportArm& arm : report.arms) arm.parameters = 1e6;
  options.cost = CostAxis::kParameters;
  set = render_figures(report, dir_.str(), options);
  f = find(set, "quality_vs_cost");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->title, "final_val_loss vs parameters");
  // The default falls back to throughput.
  set = render_figures(report, dir_.str());
  f = find(set, "quality_vs_cost");
  ASSERT_NE(f, nullptr);
  EXPECT_NE(f->title.find("throughput"), std::string::npos) << f->title;
}

// ---------------------------------------------------------------------------------------------
// The PNG decoder of ablate/testing/png.h

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

std::string chunk(const std::string& name, const std::string& data) {
  const std::string body = name + data;
  const uLong crc =
      crc32(0L, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size()));
  return be32(static_cast<uint32_t>(data.size())) + body + be32(static_cast<uint32_t>(crc));
}

int paeth(int a, int b, int c) {
  const int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

// An independent PNG encoder: row y uses filter filters[y % size], so every filter type is
// exercised against known pixels.
std::string encode_png(uint32_t width, uint32_t height, int type, int depth,
                       const std::vector<uint8_t>& samples, const std::vector<int>& filters,
                       const std::string& extra_chunks = "") {
  const int channels = type == 0 ? 1 : type == 2 ? 3 : type == 3 ? 1 : type == 4 ? 2 : 4;
  const size_t bpp = static_cast<size_t>(channels * depth / 8);
  const size_t stride = width * bpp;
  std::string raw;
  for (uint32_t y = 0; y < height; ++y) {
    const int f = filters[y % filters.size()];
    raw += static_cast<char>(f);
    for (size_t i = 0; i < stride; ++i) {
      const int x = samples[y * stride + i];
      const int a = i >= bpp ? samples[y * stride + i - bpp] : 0;
      const int b = y > 0 ? samples[(y - 1) * stride + i] : 0;
      const int c = y > 0 && i >= bpp ? samples[(y - 1) * stride + i - bpp] : 0;
      const int pred = f == 0 ? 0 : f == 1 ? a : f == 2 ? b : f == 3 ? (a + b) / 2 : paeth(a, b, c);
      raw += static_cast<char>((x - pred) & 0xff);
    }
  }
  uLongf size = compressBound(raw.size());
  std::string z(size, '\0');
  EXPECT_EQ(compress2(reinterpret_cast<Bytef*>(z.data()), &size,
                      reinterpret_cast<const Bytef*>(raw.data()), raw.size(), 9),
            Z_OK);
  z.resize(size);
  std::string ihdr = be32(width) + be32(height);
  ihdr += static_cast<char>(depth);
  ihdr += static_cast<char>(type);
  ihdr += std::string(3, '\0');
  // Two IDAT chunks: the decoder must join them.
  const size_t half = z.size() / 2;
  return std::string(testing::kPngSignature, 8) + chunk("IHDR", ihdr) + extra_chunks +
         chunk("IDAT", z.substr(0, half)) + chunk("tEXt", std::string("Comment\0x", 9)) +
         chunk("IDAT", z.substr(half)) + chunk("IEND", "");
}

std::vector<uint8_t> noise(size_t n, uint32_t seed) {
  std::vector<uint8_t> v(n);
  for (auto& b : v) {
    seed = seed * 1664525u + 1013904223u;
    b = static_cast<uint8_t>(seed >> 24);
  }
  return v;
}

TEST(PngDecoder, RgbaWithEveryFilterType) {
  const uint32_t w = 13, h = 11;
  const std::vector<uint8_t> rgba = noise(w * h * 4, 7);
  const PngImage image = testing::decode_png(encode_png(w, h, 6, 8, rgba, {0, 1, 2, 3, 4}));
  EXPECT_EQ(image.width, w);
  EXPECT_EQ(image.height, h);
  EXPECT_EQ(image.rgba, rgba);
  EXPECT_EQ(image.pixel(1, 0)[0], rgba[4]);
}

TEST(PngDecoder, RgbGreyGreyAlphaPaletteAnd16Bit) {
  const uint32_t w = 9, h = 10;
  const std::vector<int> filters = {4, 3, 2, 1, 0};
  {
    const std::vector<uint8_t> rgb = noise(w * h * 3, 1);
    const PngImage image = testing::decode_png(encode_png(w, h, 2, 8, rgb, filters));
    for (size_t p = 0; p < image.pixels(); ++p) {
      ASSERT_EQ(image.rgba[p * 4], rgb[p * 3]);
      ASSERT_EQ(image.rgba[p * 4 + 1], rgb[p * 3 + 1]);
      ASSERT_EQ(image.rgba[p * 4 + 2], rgb[p * 3 + 2]);
      ASSERT_EQ(image.rgba[p * 4 + 3], 255);
    }
  }
  {
    const std::vector<uint8_t> grey = noise(w * h, 2);
    const PngImage image = testing::decode_png(encode_png(w, h, 0, 8, grey, filters));
    for (size_t p = 0; p < image.pixels(); ++p) {
      ASSERT_EQ(image.pixel(p % w, p / w),
                (std::array<uint8_t, 4>{grey[p], grey[p], grey[p], 255}));
    }
  }
  {
    const std::vector<uint8_t> ga = noise(w * h * 2, 3);
    const PngImage image = testing::decode_png(encode_png(w, h, 4, 8, ga, filters));
    for (size_t p = 0; p < image.pixels(); ++p) {
      const uint8_t g = ga[p * 2], a = ga[p * 2 + 1];
      ASSERT_EQ(image.pixel(p % w, p / w), (std::array<uint8_t, 4>{g, g, g, a}));
    }
  }
  {
    std::vector<uint8_t> index = noise(w * h, 4);
    for (auto& i : index) i %= 3;
    const std::string plte = chunk("PLTE", std::string("\xff\x00\x00\x00\xff\x00\x00\x00\xff", 9));
    const std::string trns = chunk("tRNS", std::string("\xff\x80", 2));
    const PngImage image = testing::decode_png(encode_png(w, h, 3, 8, index, filters, plte + trns));
    const std::array<std::array<uint8_t, 4>, 3> colours = {
        {{255, 0, 0, 255}, {0, 255, 0, 128}, {0, 0, 255, 255}}};
    for (size_t p = 0; p < image.pixels(); ++p) {
      ASSERT_EQ(image.pixel(p % w, p / w), colours[index[p]]);
    }
  }
  {
    const std::vector<uint8_t> rgb16 = noise(w * h * 6, 5);
    const PngImage image = testing::decode_png(encode_png(w, h, 2, 16, rgb16, filters));
    for (size_t p = 0; p < image.pixels(); ++p) {
      ASSERT_EQ(image.rgba[p * 4], rgb16[p * 6]);  // the high byte of each sample
      ASSERT_EQ(image.rgba[p * 4 + 2], rgb16[p * 6 + 4]);
    }
  }
}

TEST(PngDecoder, RejectsBrokenFiles) {
  const std::vector<uint8_t> rgb = noise(4 * 4 * 3, 9);
  const std::string good = encode_png(4, 4, 2, 8, rgb, {1});
  EXPECT_NO_THROW(testing::decode_png(good));
  EXPECT_THROW(testing::decode_png("GIF89a"), std::runtime_error);
  EXPECT_THROW(testing::decode_png(good.substr(0, good.size() - 20)), std::runtime_error);
  std::string bad_crc = good;
  bad_crc[20] ^= 1;  // inside IHDR
  EXPECT_THROW(testing::decode_png(bad_crc), std::runtime_error);
  std::string bad_filter = encode_png(4, 4, 2, 8, rgb, {5});
  EXPECT_THROW(testing::decode_png(bad_filter), std::runtime_error);
}

TEST(PngDecoder, CountsColours) {
  PngImage image;
  image.width = 2;
  image.height = 2;
  image.rgba = {255, 0, 0, 255, 250, 5, 0, 255, 255, 255, 255, 255, 0, 0, 0, 0};
  EXPECT_EQ(count_colours(image), 4u);
  EXPECT_EQ(count_near(image, 0xFF0000, 0), 1u);
  EXPECT_EQ(count_near(image, 0xFF0000, 5), 2u);
  EXPECT_EQ(count_near(image, 0xFFFFFF, 0), 2u) << "a transparent pixel shows white";
}

TEST(PngDecoder, ReadsAGnuplotSolidFill) {
  ASSERT_TRUE(gnuplot_available()) << kNoGnuplot;
  testing::TempDir dir("ablate-png");
  const std::string png = dir.file("red.png");
  {
    std::ofstream script(dir.file("red.gp"));
    script << "set terminal pngcairo size 120,80 background rgb '#FFFFFF'\n"
              "set output '"
           << png
           << "'\n"
              "unset border\nunset tics\nunset key\nset margins 0,0,0,0\n"
              "set object 1 rectangle from screen 0,0 to screen 0.5,1 fc rgb '#FF0000' "
              "fs solid 1.0 noborder\n"
              "plot [0:1][0:1] -1\n";
  }
  const testing::ProcessResult run = testing::run_process({"gnuplot", dir.file("red.gp")}, 60);
  ASSERT_TRUE(run.started) << run.error;
  ASSERT_EQ(run.exit_status, 0) << run.output;
  const PngImage image = testing::read_png(png);
  EXPECT_EQ(image.width, 120u);
  EXPECT_EQ(image.height, 80u);
  EXPECT_EQ(image.pixel(10, 40), (std::array<uint8_t, 4>{255, 0, 0, 255}));
  EXPECT_EQ(image.pixel(110, 40), (std::array<uint8_t, 4>{255, 255, 255, 255}));
  // The left half is red, the right half white, give or take the antialiased edge rows and
  // columns (gnuplot maps screen 0..1 to pixel centres).
  const size_t red = count_near(image, 0xFF0000, 0);
  EXPECT_GE(red, 57u * 78);
  EXPECT_LE(red, 60u * 80);
  EXPECT_GE(count_near(image, 0xFFFFFF, 0), 58u * 80);
  EXPECT_GE(red + count_near(image, 0xFFFFFF, 0), 115u * 78);
}

}  // namespace
}  // namespace ablate::results
