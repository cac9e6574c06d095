#include "ablate/results/figures.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

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
