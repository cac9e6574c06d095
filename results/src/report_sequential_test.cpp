// `ablate report --sequential` (report.h, "Sequential") on sweeps written through the real path:
// each comparison's e-value, confidence sequence and decision equal what sequential.h gives for
// the same values at the level the family's correction sets, the pairing of nested seeds, the
// method and bounds, the family corrections, the renderers, and that a report without
// --sequential is unchanged.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "ablate/results/decision_log.h"
#include "ablate/results/report.h"
#include "ablate/results/sequential.h"
#include "ablate/testing/errors.h"
#include "report_test_support.h"

namespace ablate::results {
namespace {

using namespace test_support;
using stats::SequentialMethod;

// Ten seeds of a baseline, an arm clearly better (+0.02, small noise) and one like it.
const std::vector<double> kBase10 = {0.80, 0.82,  0.79,  0.81,  0.83,
                                     0.80, 0.815, 0.805, 0.825, 0.795};
const std::vector<double> kNoise10 = {0.004,  -0.003, 0.005,  -0.004, 0.002,
                                      -0.005, 0.003,  -0.002, 0.001,  -0.001};

std::vector<FakeRun> ten_seeds() {
  std::vector<FakeRun> runs;
  for (int64_t s = 0; s < 10; ++s) runs.push_back({kMha, s, kBase10[s]});
  for (int64_t s = 0; s < 10; ++s) runs.push_back({kGqa2, s, kBase10[s] + 0.02 + kNoise10[s]});
  for (int64_t s = 0; s < 10; ++s) runs.push_back({kGqa1, s, kBase10[s] + 3 * kNoise10[s]});
  return runs;
}

ReportOptions sequential_options(std::optional<SequentialMethod> method = std::nullopt) {
  ReportOptions o;
  o.sequential = true;
  o.sequential_method = method;
  return o;
}

void expect_same(const SequentialComparison& q, const stats::SequentialResult& want) {
  ASSERT_TRUE(want.available);
  EXPECT_TRUE(q.available);
  EXPECT_DOUBLE_EQ(q.e_value, want.e_value);
  EXPECT_DOUBLE_EQ(q.e_value_max, want.e_value_max);
  EXPECT_DOUBLE_EQ(q.cs_low, want.cs_low);
  EXPECT_DOUBLE_EQ(q.cs_high, want.cs_high);
  EXPECT_EQ(q.first_decided_at, want.first_decided_at);
  EXPECT_EQ(q.first_equivalent_at, want.first_equivalent_at);
  EXPECT_EQ(q.looks.size(), want.looks.size());
  EXPECT_EQ(q.seeds, static_cast<int64_t>(want.looks.size()));
}

stats::SequentialOptions gaussian_at(double alpha) {
  stats::SequentialOptions o;
  o.alpha = alpha;
  return o;
}

TEST_F(ReportTest, SequentialGaussianMatchesTheLibraryAtAlphaOverK) {
  write_sweep(store_, dir_, "s", ten_seeds());
  const Report r = report("s", sequential_options(SequentialMethod::kGaussianMixture));
  ASSERT_EQ(r.families.size(), 1u);
  EXPECT_EQ(r.families[0].sequential_tested, 2u);
  const auto& base = r.arms[r.baseline].values;
  for (const char* label : {"kv_heads=2 variant=gqa", "kv_heads=1 variant=gqa"}) {
    const Comparison& c = comparison_of(r, label);
    const auto& q = c.sequential;
    // Holm maps to e-Bonferroni: K = 2 comparisons, each CS at alpha / 2.
    EXPECT_DOUBLE_EQ(q.level, 0.025);
    EXPECT_EQ(q.method, "gaussian-mixture");
    EXPECT_TRUE(q.paired);
    const auto want = stats::sequential_paired(r.arms[c.arm].values, base, gaussian_at(0.025));
    expect_same(q, want);
    EXPECT_EQ(q.seeds, 10);
    EXPECT_EQ(q.decided, q.e_value_max >= 2 / 0.05) << label;
    EXPECT_EQ(q.decided, stats::e_bonferroni({q.e_value_max}, 0.025)[0]) << label;
  }
  const auto& better = comparison_of(r, "kv_heads=2 variant=gqa").sequential;
  EXPECT_TRUE(better.decided);
  EXPECT_GT(better.cs_low, 0);
  EXPECT_EQ(better.verdict, "better");
  EXPECT_GE(better.first_decided_at, 5);  // no decision is possible before look 5 (6 at 0.025)
  const auto& noisy = comparison_of(r, "kv_heads=1 variant=gqa").sequential;
  EXPECT_FALSE(noisy.decided);
  EXPECT_EQ(noisy.verdict, "undecided");
  EXPECT_EQ(noisy.first_decided_at, -1);
}

TEST_F(ReportTest, SequentialNoCorrectionIsAlphaAndLowerIsBetterFlipsTheVerdict) {
  write_sweep(store_, dir_, "s", ten_seeds());
  ReportOptions o = sequential_options(SequentialMethod::kGaussianMixture);
  o.correction = stats::Correction::kNone;
  o.lower_is_better = true;
  const Report r = report("s", o);
  const Comparison& c = comparison_of(r, "kv_heads=2 variant=gqa");
  EXPECT_DOUBLE_EQ(c.sequential.level, 0.05);
  expect_same(c.sequential, stats::sequential_paired(r.arms[c.arm].values,
                                                     r.arms[r.baseline].values, gaussian_at(0.05)));
  EXPECT_EQ(c.sequential.verdict, "worse");  // larger, and lower is better
}

TEST_F(ReportTest, SequentialPairsNestedSeedsAndOtherwiseTakesEachArmsSeedsInOrder) {
  std::vector<FakeRun> runs;
  for (int64_t s = 0; s < 10; ++s) runs.push_back({kMha, s, kBase10[s]});
  // A candidate stopped after 6 of the reference's 10 seeds; its seed 2 diverged.
  for (int64_t s = 0; s < 6; ++s) runs.push_back({kGqa2, s, kBase10[s] + 0.02 + kNoise10[s]});
  runs[12] = {kGqa2, 2, std::nan(""), "diverged"};
  // A candidate run on other seeds, 7 of them, given in descending order.
  for (int64_t s = 16; s >= 10; --s) runs.push_back({kGqa1, s, 0.8 + kNoise10[s - 10]});
  write_sweep(store_, dir_, "s", runs);
  const Report r = report("s", sequential_options(SequentialMethod::kGaussianMixture));
  const auto& base = r.arms[r.baseline];

  const Comparison& nested = comparison_of(r, "kv_heads=2 variant=gqa");
  // The fixed-n test pairs the same seeds: the paired t-test on seeds 0, 1, 3, 4, 5 (scipy
  // 1.10 ttest_rel: t = 10.609453782082287, p = 0.0004467711166849754; Welch on all ten
  // reference seeds would say p = 0.022).
  EXPECT_EQ(nested.test, "paired-t");
  EXPECT_TRUE(nested.paired);
  EXPECT_EQ(nested.n, 5);
  EXPECT_NEAR(nested.result.statistic, 10.609453782082287, 1e-9);
  EXPECT_NEAR(nested.result.p_value, 0.0004467711166849754, 1e-12);
  EXPECT_NE(nested.note.find("paired on the 5 seeds both arms have (5 runs without a partner "
                             "left out)"),
            std::string::npos)
      << nested.note;
  EXPECT_TRUE(nested.sequential.paired);
  std::vector<double> x, y;
  for (int64_t s : {0, 1, 3, 4, 5}) {
    x.push_back(kBase10[s] + 0.02 + kNoise10[s]);
    y.push_back(kBase10[s]);
  }
  ASSERT_EQ(r.arms[nested.arm].values.size(), 5u);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(r.arms[nested.arm].values[i], x[i], 1e-12);
  expect_same(nested.sequential,
              stats::sequential_paired(
                  r.arms[nested.arm].values,
                  {base.values[0], base.values[1], base.values[3], base.values[4], base.values[5]},
                  gaussian_at(0.025)));
  EXPECT_EQ(nested.sequential.seeds, 5);
  EXPECT_NE(nested.sequential.note.find("paired on the 5 seeds both arms have (5 runs without a "
                                        "partner left out)"),
            std::string::npos)
      << nested.sequential.note;

  const Comparison& other = comparison_of(r, "kv_heads=1 variant=gqa");
  EXPECT_FALSE(other.sequential.paired);
  EXPECT_EQ(other.test, "welch");  // no seed in common: unpaired, on every value of both arms
  EXPECT_EQ(other.n, 17);
  // Ascending seeds 10..16 against the reference's 0..9: the first 7 of each.
  const auto& arm = r.arms[other.arm];
  EXPECT_EQ(arm.seeds, (std::vector<int64_t>{10, 11, 12, 13, 14, 15, 16}));
  const auto want = stats::sequential_unpaired(arm.values, base.values, gaussian_at(0.025));
  expect_same(other.sequential, want);
  EXPECT_EQ(other.sequential.seeds, 7);
  EXPECT_NE(other.sequential.note.find("unpaired"), std::string::npos);
  EXPECT_NE(other.sequential.note.find("3 runs of the reference wait for a partner"),
            std::string::npos)
      << other.sequential.note;
}

// A sweep whose seeds were added until decided: the fixed-n verdicts do not hold under that
// stopping rule, so the tables and the summary show the anytime-valid ones and say so.
TEST_F(ReportTest, UntilDecidedSweepShowsTheAnytimeValidVerdicts) {
  write_sweep(store_, dir_, "s", ten_seeds());
  SequentialLookRow look;
  look.look = 3;
  look.family = "baseline";
  look.arm_key = arm_key_of(kGqa2);
  look.reference_arm_key = arm_key_of(kMha);
  look.method = "gaussian-mixture";
  look.seeds = 10;
  look.max_seeds = 10;
  look.action = "stop: decided";
  add_sequential_looks(store_, "s", {look});

  const Report seq = report("s", sequential_options(SequentialMethod::kGaussianMixture));
  ASSERT_TRUE(seq.verdicts_anytime_valid());
  const Comparison& noisy = comparison_of(seq, "kv_heads=1 variant=gqa");
  EXPECT_EQ(noisy.verdict, "no detectable difference");  // the fixed-n test's, kept
  EXPECT_EQ(noisy.sequential.verdict, "undecided");
  const std::string md = render_markdown(seq, {});
  EXPECT_NE(md.find("2 compared with the baseline: 1 better, 1 undecided (anytime-valid: the "
                    "sweep added seeds until decided)"),
            std::string::npos)
      << md.substr(0, 400);
  EXPECT_NE(md.find("| Arm | verdict (anytime-valid) | n |"), std::string::npos);
  EXPECT_NE(md.find("| kv\\_heads=1 variant=gqa | undecided | 10 |"), std::string::npos) << md;
  EXPECT_EQ(md.find("| no detectable difference |"), std::string::npos);
  EXPECT_NE(md.find("the verdicts shown are the anytime-valid ones, which do"), std::string::npos);
  EXPECT_NE(render_html(seq, {}).find("verdict (anytime-valid)"), std::string::npos);
  EXPECT_NE(render_latex(seq).find("Verdict (anytime-{}valid)"), std::string::npos);
  // JSON keeps both: the fixed-n verdict and the sequential one, and says which the tables show.
  const auto j = nlohmann::json::parse(render_json(seq));
  EXPECT_EQ(j["until_decided"]["verdicts_shown"], "anytime-valid");
  EXPECT_EQ(nlohmann::json::parse(
                render_json(report("s", ReportOptions{})))["until_decided"]["verdicts_shown"],
            "fixed-n");
  bool seen = false;
  for (const auto& c : j["comparisons"]) {
    if (c["verdict"] == "no detectable difference") {
      EXPECT_EQ(c["sequential"]["verdict"], "undecided");
      seen = true;
    }
  }
  EXPECT_TRUE(seen);

  // Without --sequential the fixed-n verdicts are all there is, and the warning says so.
  const Report plain = report("s", ReportOptions{});
  EXPECT_FALSE(plain.verdicts_anytime_valid());
  const std::string fixed = render_markdown(plain, {});
  EXPECT_NE(fixed.find("| Arm | verdict | n |"), std::string::npos);
  EXPECT_NE(fixed.find("| kv\\_heads=1 variant=gqa | no detectable difference | 10 |"),
            std::string::npos);
  EXPECT_NE(fixed.find("its verdicts are fixed-n too: report with --sequential"),
            std::string::npos);
}

TEST_F(ReportTest, SequentialInfersBoundsForAccuracyAndBets) {
  write_sweep(store_, dir_, "s", ten_seeds());
  const Report r = report("s", sequential_options());
  EXPECT_EQ(r.sequential.method, SequentialMethod::kBoundedBetting);
  ASSERT_TRUE(r.sequential.bounds.has_value());
  EXPECT_EQ(*r.sequential.bounds, std::make_pair(0.0, 1.0));
  EXPECT_NE(r.sequential.bounds_reason.find("acc"), std::string::npos)
      << r.sequential.bounds_reason;
  const Comparison& c = comparison_of(r, "kv_heads=2 variant=gqa");
  EXPECT_EQ(c.sequential.method, "bounded-betting");
  stats::SequentialOptions o;
  o.method = SequentialMethod::kBoundedBetting;
  o.alpha = 0.025;
  expect_same(c.sequential,
              stats::sequential_paired(r.arms[c.arm].values, r.arms[r.baseline].values, o));
  // Given bounds are used as given.
  ReportOptions given = sequential_options();
  given.bounds = std::make_pair(0.5, 1.0);
  const Report g = report("s", given);
  const Comparison& gc = comparison_of(g, "kv_heads=2 variant=gqa");
  o.lower = 0.5;
  expect_same(gc.sequential,
              stats::sequential_paired(g.arms[gc.arm].values, g.arms[g.baseline].values, o));
  // An unbounded metric gets the Gaussian mixture.
  ReportOptions speed = sequential_options();
  speed.metric = "throughput";
  const Report t = report("s", speed);
  EXPECT_EQ(t.sequential.method, SequentialMethod::kGaussianMixture);
  EXPECT_FALSE(t.sequential.bounds.has_value());
}

TEST_F(ReportTest, SequentialRefusesValuesOutsideTheBoundsAndBadOptions) {
  write_sweep(store_, dir_, "s", ten_seeds());
  ReportOptions o = sequential_options();
  o.bounds = std::make_pair(0.0, 0.81);
  std::string msg = ablate::testing::thrown_message<ReportError>([&] { report("s", o); });
  // The first arm is the baseline: seed 1 has 0.82 (job1).
  EXPECT_NE(msg.find("job job1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("seed 1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("0.82"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--bounds"), std::string::npos) << msg;
  ReportOptions bad = sequential_options();
  bad.equivalence_margin = -0.1;
  msg = ablate::testing::thrown_message<ReportError>([&] { report("s", bad); });
  EXPECT_NE(msg.find("--equivalence-margin"), std::string::npos) << msg;
  bad = sequential_options();
  bad.bounds = std::make_pair(1.0, 0.0);
  msg = ablate::testing::thrown_message<ReportError>([&] { report("s", bad); });
  EXPECT_NE(msg.find("LO < HI"), std::string::npos) << msg;
  bad = sequential_options(SequentialMethod::kBoundedBetting);
  bad.metric = "throughput";
  msg = ablate::testing::thrown_message<ReportError>([&] { report("s", bad); });
  EXPECT_NE(msg.find("needs the metric's range"), std::string::npos) << msg;
}

TEST_F(ReportTest, SequentialInferredBoundsRefuseAccuracyInPercent) {
  std::vector<FakeRun> runs;
  for (int64_t s = 0; s < 4; ++s) runs.push_back({kMha, s, 80.0 + static_cast<double>(s)});
  for (int64_t s = 0; s < 4; ++s) runs.push_back({kGqa2, s, 81.0 + static_cast<double>(s)});
  write_sweep(store_, dir_, "s", runs);
  const std::string msg =
      ablate::testing::thrown_message<ReportError>([&] { report("s", sequential_options()); });
  EXPECT_NE(msg.find("outside the bounds [0, 1] (inferred from the name (acc)"), std::string::npos)
      << msg;
  // The Gaussian mixture does not use inferred bounds, so it does not check them.
  EXPECT_NO_THROW(report("s", sequential_options(SequentialMethod::kGaussianMixture)));
}

// Two arms whose last e-values are both in [K / (2 alpha), K / alpha) = [20, 40) with K = 2 and
// alpha = 0.05, and whose largest e-values stay below 40: e-BH decides both, e-Bonferroni none.
// (Gaussian mixture e-values of the differences 0.01 + noise * 0.78 and * 0.9 over 6 seeds,
// from the closed form: 35.6 and 26.4 at look 6, below 18 before.)
TEST_F(ReportTest, SequentialEBhAndEBonferroniDifferOnAConstructedFamily) {
  const std::vector<double> base = {0.80, 0.82, 0.79, 0.81, 0.83, 0.80};
  const std::vector<double> a = {0.81312, 0.82766, 0.8039, 0.81688, 0.84156, 0.8061};
  const std::vector<double> b = {0.8136, 0.8273, 0.8045, 0.8164, 0.8418, 0.8055};
  std::vector<FakeRun> runs;
  for (int64_t s = 0; s < 6; ++s) runs.push_back({kMha, s, base[s]});
  for (int64_t s = 0; s < 6; ++s) runs.push_back({kGqa2, s, a[s]});
  for (int64_t s = 0; s < 6; ++s) runs.push_back({kGqa1, s, b[s]});
  write_sweep(store_, dir_, "s", runs);
  ReportOptions o = sequential_options(SequentialMethod::kGaussianMixture);
  o.correction = stats::Correction::kBonferroni;
  const Report bonf = report("s", o);
  o.correction = stats::Correction::kBenjaminiHochberg;
  const Report bh = report("s", o);
  std::vector<double> e;
  for (const char* label : {"kv_heads=2 variant=gqa", "kv_heads=1 variant=gqa"}) {
    const auto& qb = comparison_of(bonf, label).sequential;
    const auto& qh = comparison_of(bh, label).sequential;
    // The precondition of the construction.
    ASSERT_GE(qh.e_value, 20) << label;
    ASSERT_LT(qh.e_value_max, 40) << label;
    e.push_back(qh.e_value);
    EXPECT_FALSE(qb.decided) << label;
    EXPECT_EQ(qb.first_decided_at, -1) << label;
    EXPECT_DOUBLE_EQ(qb.level, 0.025);
    EXPECT_EQ(qb.verdict, "undecided");
    EXPECT_TRUE(qh.decided) << label;
    EXPECT_EQ(qh.verdict, "better") << label;
    // bh: the CS at alpha (marginal); first_decided_at at alpha / K, which never excluded 0.
    EXPECT_DOUBLE_EQ(qh.level, 0.05);
    const Comparison& c = comparison_of(bh, label);
    const auto at_alpha = stats::sequential_paired(bh.arms[c.arm].values,
                                                   bh.arms[bh.baseline].values, gaussian_at(0.05));
    EXPECT_DOUBLE_EQ(qh.cs_low, at_alpha.cs_low);
    EXPECT_DOUBLE_EQ(qh.e_value, at_alpha.e_value);
    EXPECT_EQ(at_alpha.first_decided_at, 6);  // the CS at alpha excludes 0 at look 6
    EXPECT_EQ(qh.first_decided_at, -1);       // at alpha / 2 it never did
  }
  EXPECT_EQ(stats::e_bh(e, 0.05), (std::vector<bool>{true, true}));
  EXPECT_EQ(stats::e_bonferroni(e, 0.05), (std::vector<bool>{false, false}));
  const std::string md = render_markdown(bh, {});
  EXPECT_NE(md.find("e-BH"), std::string::npos);
}

TEST_F(ReportTest, SequentialEquivalenceMargin) {
  std::vector<FakeRun> runs;
  for (int64_t s = 0; s < 10; ++s) runs.push_back({kMha, s, kBase10[s]});
  for (int64_t s = 0; s < 10; ++s) runs.push_back({kGqa2, s, kBase10[s] + kNoise10[s] / 10});
  write_sweep(store_, dir_, "s", runs);
  ReportOptions o = sequential_options(SequentialMethod::kGaussianMixture);
  o.equivalence_margin = 0.01;
  const Report r = report("s", o);
  ASSERT_EQ(r.comparisons.size(), 1u);
  const Comparison& c = r.comparisons[0];
  stats::SequentialOptions want = gaussian_at(0.05);  // K = 1
  want.equivalence_margin = 0.01;
  expect_same(c.sequential,
              stats::sequential_paired(r.arms[c.arm].values, r.arms[r.baseline].values, want));
  EXPECT_TRUE(c.sequential.equivalent);
  EXPECT_FALSE(c.sequential.decided);
  EXPECT_EQ(c.sequential.verdict, "equivalent (|difference| < 0.01)");
  EXPECT_NE(render_latex(r).find("equivalent ($|\\mathrm{difference}| < 0.01$)"),
            std::string::npos);
}

TEST_F(ReportTest, SequentialJsonWritesInfiniteEndsAsStringsAndNeverAsNull) {
  // Three seeds: the Gaussian CS at alpha / 2 cannot be bounded yet (look 6 is the first that can
  // decide), so both ends are infinite and nothing is decided.
  std::vector<FakeRun> runs;
  for (int64_t s = 0; s < 3; ++s) runs.push_back({kMha, s, kBase[s]});
  for (int64_t s = 0; s < 3; ++s) runs.push_back({kGqa2, s, kBetter[s]});
  for (int64_t s = 0; s < 1; ++s) runs.push_back({kGqa1, s, kNoisy[s]});
  write_sweep(store_, dir_, "s", runs);
  ReportOptions o = sequential_options(SequentialMethod::kGaussianMixture);
  o.baseline = {{"attention.variant", "mha"}};
  const Report r = report("s", o);
  EXPECT_EQ(r.families[0].sequential_tested, 1u);  // the one-seed arm has no sequential result
  const auto j = nlohmann::json::parse(render_json(r));
  ASSERT_EQ(j["comparisons"].size(), 2u);
  const auto& s = j["comparisons"][0]["sequential"];
  EXPECT_EQ(s["cs_low"], "-inf");
  EXPECT_EQ(s["cs_high"], "inf");
  EXPECT_TRUE(s["first_decided_at"].is_null());
  EXPECT_TRUE(s["first_equivalent_at"].is_null());
  EXPECT_EQ(s["decided"], false);
  EXPECT_EQ(s["verdict"], "undecided");
  EXPECT_EQ(s["level"], 0.05);  // K = 1
  EXPECT_EQ(s["seeds"], 3);
  EXPECT_EQ(s["method"], "gaussian-mixture");
  for (const char* key :
       {"method", "paired", "seeds", "level", "e_value", "e_value_max", "cs_low", "cs_high",
        "decided", "equivalent", "first_decided_at", "first_equivalent_at", "verdict", "note"}) {
    EXPECT_TRUE(s.contains(key)) << key;
  }
  const auto& one = j["comparisons"][1]["sequential"];
  EXPECT_EQ(one["verdict"], "not available");
  EXPECT_TRUE(one["e_value"].is_null());
  EXPECT_TRUE(one["cs_low"].is_null());
  EXPECT_NE(one["note"].get<std::string>().find("at least 2"), std::string::npos);
  // The text formats show the infinite ends as signs, not as "inf".
  const std::string md = render_markdown(r, {});
  EXPECT_NE(md.find("## Anytime-valid comparisons"), std::string::npos);
  EXPECT_NE(md.find("\\[−∞, ∞\\]"), std::string::npos) << md;  // Markdown escapes brackets
  EXPECT_NE(render_html(r, {}).find("[−∞, ∞]"), std::string::npos);
  EXPECT_NE(render_latex(r).find("[$-\\infty$, $\\infty$]"), std::string::npos);
}

// Everything a report without --sequential writes, a report with it writes too: only the
// sequential keys, section and method sentences are added.
TEST_F(ReportTest, SequentialOnlyAddsToTheReport) {
  write_sweep(store_, dir_, "s", ten_seeds());
  const Report plain = report("s");
  const Report seq = report("s", sequential_options());
  auto j = nlohmann::json::parse(render_json(seq));
  const auto p = nlohmann::json::parse(render_json(plain));
  EXPECT_FALSE(p.contains("sequential"));
  for (const auto& c : p["comparisons"]) EXPECT_FALSE(c.contains("sequential"));
  for (const auto& f : p["families"]) EXPECT_FALSE(f.contains("sequential_tested"));
  j.erase("sequential");
  for (auto& c : j["comparisons"]) c.erase("sequential");
  for (auto& f : j["families"]) f.erase("sequential_tested");
  ASSERT_GT(j["method"].size(), p["method"].size());
  j["method"] = p["method"];  // the sequential sentences are appended
  for (size_t i = 0; i < p["method"].size(); ++i) {
    EXPECT_EQ(seq.method[i], plain.method[i]);
  }
  EXPECT_EQ(j.dump(), p.dump());
  // Markdown: the plain report, with the section and the sentences added.
  const std::string md_plain = render_markdown(plain, {});
  std::string md = render_markdown(seq, {});
  const auto from = md.find("\n\n## Anytime-valid comparisons");
  const auto to = md.find("\n\n## Figures");
  ASSERT_NE(from, std::string::npos);
  ASSERT_NE(to, std::string::npos);
  md.erase(from, to - from);
  // The summary line adds the anytime-valid verdicts after the fixed tests' counts.
  const std::regex counts(" \\(anytime-valid: [^)]*\\)");
  ASSERT_TRUE(std::regex_search(md, counts)) << md.substr(0, 400);
  md = std::regex_replace(md, counts, "");
  for (size_t i = plain.method.size(); i < seq.method.size(); ++i) {
    const std::string line = "- " + escape_markdown(seq.method[i]) + "\n";
    const auto at = md.find(line);
    ASSERT_NE(at, std::string::npos) << line;
    md.erase(at, line.size());
  }
  EXPECT_EQ(md, md_plain);
  EXPECT_EQ(render_markdown(plain, {}).find("Anytime-valid"), std::string::npos);
  EXPECT_EQ(render_html(plain, {}).find("Anytime-valid"), std::string::npos);
  EXPECT_EQ(render_latex(plain).find("Anytime-valid"), std::string::npos);
}

}  // namespace
}  // namespace ablate::results
