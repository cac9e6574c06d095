// build_report and its renderers on sweeps written through the real path: run dirs with
// summary.json and events.jsonl, ingested into a store. Reference values are from scipy 1.10 and
// statsmodels 0.13 (the snippets are beside each test).
#include "ablate/results/report.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "ablate/results/store.h"
#include "ablate/testing/errors.h"
#include "report_test_support.h"

namespace ablate::results {
namespace {

using namespace test_support;

TEST_F(ReportTest, PairedTTestWhenArmsShareSeedsMatchesScipy) {
  write_sweep(store_, dir_, "s", three_arms());
  const Report r = report("s");
  ASSERT_EQ(r.arms.size(), 3u);
  // mha ignores kv_heads (its stored 4 is not a level), so its label is the variant alone.
  EXPECT_EQ(r.arms[r.baseline].label, "variant=mha");
  EXPECT_NE(r.baseline_reason.find("mha"), std::string::npos);
  // Only the keys that differ between arms are params; model.heads is the same everywhere.
  EXPECT_EQ(r.arms[1].params, (Params{{"attention.kv_heads", "2"}, {"attention.variant", "gqa"}}));
  // baseline: mean 0.81, sd 0.0158113883, t interval (0.79036756838, 0.82963243161)
  const auto& base = r.arms[r.baseline].stats;
  EXPECT_NEAR(base.mean, 0.81, 1e-12);
  EXPECT_NEAR(base.std_dev, 0.015811388300841858, 1e-12);
  EXPECT_NEAR(base.t_ci.low, 0.7903675683852244, 1e-10);
  EXPECT_NEAR(base.t_ci.high, 0.8296324316147755, 1e-10);
  // scipy.stats.ttest_rel(better, base): t 9.797958971132802, p 0.0006081849444633143,
  // CI (0.008599563096708738, 0.015400436903291239); noisy: t -1.9598237397554634,
  // p 0.12157920965640184. statsmodels multipletests holm: [0.0012163698889266286,
  // 0.12157920965640184]
  const Comparison& better = comparison_of(r, "kv_heads=2 variant=gqa");
  EXPECT_EQ(better.test, "paired-t");
  EXPECT_TRUE(better.paired);
  EXPECT_EQ(better.n, 5);
  EXPECT_NEAR(better.result.statistic, 9.797958971132802, 1e-9);
  EXPECT_NEAR(better.result.p_value, 0.0006081849444633143, 1e-12);
  EXPECT_NEAR(better.p_adjusted, 0.0012163698889266286, 1e-12);
  EXPECT_NEAR(better.difference.diff, 0.012, 1e-12);
  EXPECT_NEAR(better.difference.ci.low, 0.008599563096708738, 1e-10);
  EXPECT_NEAR(better.difference.ci.high, 0.015400436903291239, 1e-10);
  EXPECT_EQ(better.verdict, "better");
  EXPECT_TRUE(better.significant);
  EXPECT_EQ(better.hedges_g.name, "hedges_g_paired");
  EXPECT_TRUE(better.seeds_for_power.available);
  const Comparison& noisy = comparison_of(r, "kv_heads=1 variant=gqa");
  EXPECT_NEAR(noisy.result.statistic, -1.9598237397554634, 1e-9);
  EXPECT_NEAR(noisy.p_adjusted, 0.12157920965640184, 1e-12);
  EXPECT_EQ(noisy.verdict, "no detectable difference");
  EXPECT_FALSE(noisy.significant);
  EXPECT_FALSE(r.too_few_seeds);
  EXPECT_TRUE(r.excluded.empty());
}

TEST_F(ReportTest, WelchWhenSeedsDifferMatchesScipy) {
  write_sweep(store_, dir_, "s", three_arms({5, 6, 7, 8, 9}));
  const Report r = report("s");
  // scipy.stats.ttest_ind(better, base, equal_var=False): t 1.1628037994676368,
  // p 0.27853956290319243. The noisy arm still shares the seeds (paired p 0.12157920965640184), so
  // multipletests([0.27853956290319243, 0.12157920965640184], method='holm') gives
  // [0.27853956290319243, 0.24315841931280368].
  const Comparison& better = comparison_of(r, "kv_heads=2 variant=gqa");
  EXPECT_EQ(better.test, "welch");
  EXPECT_FALSE(better.paired);
  EXPECT_EQ(better.n, 10);
  EXPECT_NEAR(better.result.statistic, 1.1628037994676368, 1e-9);
  EXPECT_NEAR(better.result.p_value, 0.27853956290319243, 1e-10);
  EXPECT_NEAR(better.p_adjusted, 0.27853956290319243, 1e-10);
  EXPECT_EQ(better.verdict, "no detectable difference");
  EXPECT_EQ(better.hedges_g.name, "hedges_g");
  // The arm that shares the baseline's seeds is still paired.
  EXPECT_EQ(comparison_of(r, "kv_heads=1 variant=gqa").test, "paired-t");
  EXPECT_NEAR(comparison_of(r, "kv_heads=1 variant=gqa").p_adjusted, 0.24315841931280368, 1e-10);
}

TEST_F(ReportTest, DivergedAndFailedRunsAreExcludedListedAndCounted) {
  auto runs = three_arms();
  runs[8] = {kGqa2, 3, std::nan(""), "diverged"};  // better arm, seed 3
  runs[11] = {kGqa1, 1, 0.0, "failed"};
  write_sweep(store_, dir_, "s", runs);
  const Report r = report("s");
  EXPECT_EQ(r.diverged, 1);
  EXPECT_EQ(r.failed, 1);
  ASSERT_EQ(r.excluded.size(), 2u);
  EXPECT_EQ(r.excluded[0].status, "diverged");
  EXPECT_EQ(r.excluded[0].seed, 3);
  EXPECT_EQ(r.excluded[1].status, "failed");
  EXPECT_NE(r.excluded[1].reason.find("out of memory"), std::string::npos);
  const Comparison& better = comparison_of(r, "kv_heads=2 variant=gqa");
  EXPECT_EQ(r.arms[better.arm].stats.n, 4);
  // The pair of the diverged seed is dropped: scipy ttest_rel on the other 4 pairs gives t 9.0,
  // p 0.002895812161864147.
  EXPECT_EQ(better.test, "paired-t");
  EXPECT_EQ(better.n, 4);
  EXPECT_NEAR(better.result.statistic, 9.0, 1e-9);
  EXPECT_NEAR(better.result.p_value, 0.002895812161864147, 1e-12);
  EXPECT_NE(better.note.find("paired on the 4 seeds both arms have (1 run without a partner "
                             "left out)"),
            std::string::npos)
      << better.note;
  const std::string md = render_markdown(r, {});
  EXPECT_NE(md.find("out of memory"), std::string::npos);
  EXPECT_NE(md.find("2 jobs are not samples (1 diverged, 1 failed"), std::string::npos);
}

TEST_F(ReportTest, OneExcludedJobIsOneJob) {
  auto runs = three_arms();
  runs[8] = {kGqa2, 3, std::nan(""), "diverged"};
  write_sweep(store_, dir_, "s", runs);
  const Report r = report("s");
  ASSERT_EQ(r.excluded.size(), 1u);
  EXPECT_NE(std::find(r.warnings.begin(), r.warnings.end(),
                      "1 job is not a sample (1 diverged, 0 failed or unfinished); it is listed "
                      "below"),
            r.warnings.end());
}

// Jobs the sweep file no longer plans are neither samples nor excluded: they are left out, and
// every format says how many; planned again, they count again.
TEST_F(ReportTest, StaleJobsAreLeftOutWithALine) {
  write_sweep(store_, dir_, "s", three_arms());
  std::vector<std::string> planned;
  for (int i = 0; i < 10; ++i) planned.push_back("job" + std::to_string(i));  // not the kv 1 arm
  store_.sync_plan("s", planned);
  Report r = report("s");
  EXPECT_EQ(r.stale, 5);
  ASSERT_EQ(r.arms.size(), 2u);
  EXPECT_TRUE(r.excluded.empty());
  ASSERT_EQ(r.comparisons.size(), 1u);
  // One comparison left: Holm adjusts nothing (scipy ttest_rel(better, base).pvalue).
  EXPECT_NEAR(r.comparisons[0].p_adjusted, 0.0006081849444633143, 1e-12);
  const std::string line = "5 stale jobs (no longer in the sweep file) left out";
  EXPECT_NE(std::find(r.warnings.begin(), r.warnings.end(), line), r.warnings.end());
  EXPECT_NE(render_markdown(r, {}).find(line), std::string::npos);
  EXPECT_NE(render_html(r, {}).find(line), std::string::npos);
  EXPECT_NE(render_latex(r).find("% " + line), std::string::npos);
  EXPECT_EQ(nlohmann::json::parse(render_json(r))["stale"], 5);
  for (const auto& [k, v] : r.provenance) EXPECT_EQ(v.find("job1"), std::string::npos) << k;

  store_.sync_plan("s", {"job0", "job1", "job2", "job3", "job4", "job5", "job6", "job7", "job8",
                         "job9", "job14"});
  r = report("s");
  EXPECT_NE(std::find(r.warnings.begin(), r.warnings.end(),
                      "4 stale jobs (no longer in the sweep file) left out"),
            r.warnings.end());
  ASSERT_EQ(r.arms.size(), 3u);
  EXPECT_EQ(r.arms[2].stats.n, 1);  // its one planned seed

  store_.sync_plan("s", {});
  EXPECT_NE(testing::thrown_message<ReportError>([&] {
              report("s");
            }).find("sweep 's' has no jobs that its sweep file still plans (15 stale jobs"),
            std::string::npos);
}

TEST_F(ReportTest, TooFewSeedsGivesNoPValues) {
  std::vector<FakeRun> runs;
  for (int64_t s = 0; s < 2; ++s) {
    runs.push_back({kMha, s, kBase[s]});
    runs.push_back({kGqa2, s, kBetter[s]});
  }
  write_sweep(store_, dir_, "s", runs);
  // No arm has the 3 usable runs an automatic baseline needs: the report refuses and says so.
  const std::string refused = testing::thrown_message<ReportError>([&] { report("s"); });
  EXPECT_NE(refused.find("no arm of sweep 's' has the 3 usable runs a baseline needs"),
            std::string::npos)
      << refused;
  EXPECT_NE(refused.find("[variant=mha] 2"), std::string::npos) << refused;
  // A baseline the user names is used, and its comparisons say "too few seeds".
  ReportOptions named;
  named.baseline = {{"attention.variant", "mha"}};
  const Report r = report("s", named);
  ASSERT_EQ(r.comparisons.size(), 1u);
  EXPECT_EQ(r.comparisons[0].verdict, "too few seeds");
  EXPECT_TRUE(r.comparisons[0].test.empty());
  EXPECT_TRUE(std::isnan(r.comparisons[0].p_adjusted));
  EXPECT_TRUE(r.too_few_seeds);
  const auto j = nlohmann::json::parse(render_json(r));
  EXPECT_TRUE(j["comparisons"][0]["p_value"].is_null());
  EXPECT_FALSE(j["comparisons"][0]["significant"].get<bool>());
  EXPECT_NE(render_markdown(r, {}).find("too few seeds"), std::string::npos);
  // With min_seeds 2 the same data is tested.
  ReportOptions o;
  o.min_seeds = 2;
  EXPECT_EQ(report("s", o).comparisons[0].test, "paired-t");
}

TEST_F(ReportTest, BaselineRules) {
  // No mha arm: the gqa arm with kv_heads = heads.
  auto runs = three_arms();
  for (auto& run : runs) {
    if (run.params == kMha)
      run.params = {
          {"attention.kv_heads", "4"}, {"attention.variant", "gqa"}, {"model.heads", "4"}};
  }
  write_sweep(store_, dir_, "full", runs);
  Report r = report("full");
  EXPECT_EQ(r.arms[r.baseline].label, "kv_heads=4");
  EXPECT_NE(r.baseline_reason.find("as many key-value heads"), std::string::npos);
  // Neither rule applies: the first arm.
  std::vector<FakeRun> other;
  for (int64_t s = 0; s < 3; ++s) {
    other.push_back({{{"attention.variant", "kdgqa"}}, s, 0.5});
    other.push_back({{{"attention.variant", "dgqa"}}, s, 0.6});
  }
  write_sweep(store_, dir_, "first", other);
  r = report("first");
  EXPECT_EQ(r.baseline, 0u);
  EXPECT_NE(r.baseline_reason.find("first arm"), std::string::npos);
  // Given: as a config key or a view column, numbers compared as numbers.
  ReportOptions o;
  o.baseline = {{"attention_kv_heads", "2.0"}};
  r = report("full", o);
  EXPECT_EQ(r.arms[r.baseline].label, "kv_heads=2");
  EXPECT_NE(r.baseline_reason.find("command line"), std::string::npos);
  o.baseline = {{"attention.kv_heads", "1"}};
  EXPECT_EQ(report("full", o).arms[report("full", o).baseline].label, "kv_heads=1");
}

TEST_F(ReportTest, BadInputErrorsListWhatExists) {
  write_sweep(store_, dir_, "s", three_arms());
  auto message = [&](const std::string& sweep, ReportOptions o) {
    return testing::thrown_message<ReportError>([&] { report(sweep, o); });
  };
  EXPECT_NE(message("nope", {}).find("sweeps: s"), std::string::npos);
  ReportOptions o;
  o.metric = "test_acc";
  const std::string metric = message("s", o);
  EXPECT_NE(metric.find("no metric 'test_acc'"), std::string::npos) << metric;
  EXPECT_NE(metric.find("did you mean final_test_acc?"), std::string::npos) << metric;
  EXPECT_NE(metric.find("metrics: best_test_acc, final_test_acc, parameters, throughput"),
            std::string::npos)
      << metric;
  // summary.json's settings are not metrics.
  EXPECT_EQ(metric.find("step"), std::string::npos) << metric;
  o.metric = "final_test_ac";
  EXPECT_NE(message("s", o).find("did you mean final_test_acc?"), std::string::npos);
  o = {};
  o.baseline = {{"attention.heads", "4"}};
  const std::string key = message("s", o);
  EXPECT_NE(key.find("not a param"), std::string::npos) << key;
  EXPECT_NE(key.find("attention.kv_heads, attention.variant"), std::string::npos) << key;
  o.baseline = {{"attention.kv_heads", "8"}};
  const std::string none = message("s", o);
  EXPECT_NE(none.find("matches no arm"), std::string::npos) << none;
  EXPECT_NE(none.find("[kv_heads=2 variant=gqa]"), std::string::npos) << none;
  o.baseline = {{"attention.variant", "gqa"}};
  EXPECT_NE(message("s", o).find("matches 2 arms"), std::string::npos);
  o = {};
  o.alpha = 1.5;
  EXPECT_NE(message("s", o).find("alpha"), std::string::npos);
  EXPECT_THROW(parse_test_choice("ttest"), ReportError);
  EXPECT_EQ(parse_test_choice("mann-whitney"), TestChoice::kMannWhitney);
}

// An error names each part of the question where it was given: a baseline from the sweep file
// that --where (typed alone) leaves out must not be reported as a --baseline nobody typed.
TEST_F(ReportTest, ErrorsNameEachPartOfTheQuestionWhereItWasGiven) {
  write_sweep(store_, dir_, "s", three_arms());
  auto error = [&](ReportOptions o) {
    try {
      report("s", o);
    } catch (const ReportError& e) {
      return std::make_pair(std::string(e.what()), e.detail());
    }
    ADD_FAILURE() << "no ReportError";
    return std::make_pair(std::string(), std::string());
  };
  ReportOptions o;
  o.baseline = {{"attention.kv_heads", "1"}};
  o.where = {{"attention.kv_heads", "2"}};
  auto [typed, typed_detail] = error(o);
  EXPECT_EQ(typed.rfind("--baseline attention.kv_heads=1 matches no arm of sweep 's' with "
                        "attention.kv_heads=2; arms: [",
                        0),
            0u)
      << typed;
  EXPECT_EQ(typed.find("chooses another"), std::string::npos) << typed;
  EXPECT_EQ(typed_detail, typed.substr(std::string("--baseline ").size()));
  o.baseline_given_in = "the sweep file's report: block";
  auto [from_file, file_detail] = error(o);
  EXPECT_EQ(from_file.rfind("baseline (given in the sweep file's report: block) "
                            "attention.kv_heads=1 matches no arm",
                            0),
            0u)
      << from_file;
  EXPECT_EQ(from_file.find("--baseline attention"), std::string::npos) << from_file;
  EXPECT_NE(from_file.find("; --baseline KEY=VALUE chooses another"), std::string::npos)
      << from_file;
  EXPECT_EQ(file_detail.rfind("attention.kv_heads=1 matches no arm", 0), 0u) << file_detail;
  // The same for --where, --compare and --reference.
  o = {};
  o.where = {{"attention.kv_heads", "8"}};
  o.where_given_in = "the sweep file's report: block";
  EXPECT_EQ(error(o).first.rfind("where (given in the sweep file's report: block) "
                                 "attention.kv_heads=8 keeps no arm",
                                 0),
            0u)
      << error(o).first;
  o = {};
  CompareSpec spec;
  spec.key = "model.dim";
  spec.key_given_in = "the sweep file's report: block";
  o.compare = {spec};
  EXPECT_EQ(error(o).first.rfind("compare (given in the sweep file's report: block) model.dim: "
                                 "'model.dim' is not a param",
                                 0),
            0u)
      << error(o).first;
  spec.key = "attention.kv_heads";
  spec.key_given_in.clear();
  spec.reference = "8";
  o.compare = {spec};
  EXPECT_EQ(error(o).first.rfind("--reference 8: not a level of attention.kv_heads", 0), 0u)
      << error(o).first;
  o.compare.front().reference_given_in = "the sweep file's report: block";
  EXPECT_EQ(error(o).first.rfind("reference (given in the sweep file's report: block) 8: not a "
                                 "level of attention.kv_heads",
                                 0),
            0u)
      << error(o).first;
}

TEST_F(ReportTest, LowerIsBetterFlipsVerdictAndProbabilityOfImprovement) {
  write_sweep(store_, dir_, "s", three_arms());
  ReportOptions o;
  o.lower_is_better = true;
  const Report r = report("s", o);
  const Comparison& c = comparison_of(r, "kv_heads=2 variant=gqa");
  EXPECT_EQ(c.verdict, "worse");
  EXPECT_GT(c.difference.diff, 0);  // still arm minus baseline
  const Report higher_report = report("s");
  const Comparison& higher = comparison_of(higher_report, "kv_heads=2 variant=gqa");
  EXPECT_NEAR(c.prob_improvement.value, 1 - higher.prob_improvement.value, 1e-12);
  // An accuracy treated as lower-is-better is suspicious: say so.
  ASSERT_FALSE(r.warnings.empty());
  EXPECT_NE(r.warnings[0].find("says higher is better (acc), but --lower-is-better was given"),
            std::string::npos)
      << r.warnings[0];
}

TEST_F(ReportTest, OtherTestsAndCorrections) {
  write_sweep(store_, dir_, "s", three_arms());
  ReportOptions o;
  o.test = TestChoice::kWilcoxon;
  // The differences 0.01, 0.015, 0.01, 0.015, 0.01 tie, so the normal approximation:
  // scipy.stats.wilcoxon(better, base, method='approx').pvalue = 0.039359508888249725.
  Report r = report("s", o);
  const Comparison& w = comparison_of(r, "kv_heads=2 variant=gqa");
  EXPECT_EQ(w.test, "wilcoxon");
  EXPECT_NEAR(w.result.p_value, 0.039359508888249725, 1e-12);
  EXPECT_EQ(w.direction, 1);
  o.test = TestChoice::kMannWhitney;
  EXPECT_EQ(comparison_of(report("s", o), "kv_heads=2 variant=gqa").test, "mann-whitney");
  o.test = TestChoice::kPermutation;
  // Paired permutation over 2^5 sign flips: only the all-positive and all-negative arrangements
  // reach |mean d| = 0.012, so p = 2/32.
  const Report permuted = report("s", o);
  const Comparison& perm = comparison_of(permuted, "kv_heads=2 variant=gqa");
  EXPECT_EQ(perm.test, "permutation");
  EXPECT_TRUE(perm.paired);
  EXPECT_NEAR(perm.result.p_value, 0.0625, 1e-12);
  o.test = TestChoice::kAso;
  r = report("s", o);
  const Comparison& aso = comparison_of(r, "kv_heads=2 variant=gqa");
  EXPECT_EQ(aso.test, "aso");
  EXPECT_TRUE(std::isnan(aso.result.p_value));
  EXPECT_NEAR(aso.result.statistic, aso.aso.eps_min, 0);
  EXPECT_LE(aso.aso.eps_min, aso.aso_reverse.eps_min);
  o.test = TestChoice::kAuto;
  o.correction = stats::Correction::kNone;
  r = report("s", o);
  EXPECT_EQ(comparison_of(r, "kv_heads=2 variant=gqa").p_adjusted,
            comparison_of(r, "kv_heads=2 variant=gqa").result.p_value);
}

TEST_F(ReportTest, JsonCarriesTheContractFields) {
  write_sweep(store_, dir_, "s", three_arms());
  const auto j = nlohmann::json::parse(render_json(report("s")));
  for (const char* key : {"sweep", "metric", "alpha", "correction", "arms", "comparisons"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_EQ(j["sweep"], "s");
  EXPECT_EQ(j["metric"], "final_test_acc");
  EXPECT_EQ(j["correction"], "holm");
  EXPECT_DOUBLE_EQ(j["alpha"].get<double>(), 0.05);
  ASSERT_EQ(j["arms"].size(), 3u);
  for (const auto& arm : j["arms"]) {
    for (const char* key : {"arm", "n", "mean", "std", "ci_low", "ci_high", "iqm"}) {
      EXPECT_TRUE(arm.contains(key)) << key;
    }
    EXPECT_TRUE(arm["arm"].is_object());
  }
  EXPECT_EQ(j["arms"][0]["arm"]["attention.variant"], "mha");
  EXPECT_FALSE(j["arms"][0]["arm"].contains("attention.kv_heads"));  // mha ignores it
  // Typed values: an integer is an integer, not 2.0.
  EXPECT_TRUE(j["arms"][1]["arm"]["attention.kv_heads"].is_number_integer());
  EXPECT_EQ(j["arms"][1]["arm"]["attention.kv_heads"], 2);
  EXPECT_TRUE(j["arms"][1]["params"]["model.heads"].is_number_integer());
  EXPECT_EQ(j["arms"][1]["params"]["model.heads"], 4);
  EXPECT_TRUE(j["lower_is_better"].is_boolean());
  EXPECT_FALSE(j["lower_is_better"].get<bool>());
  EXPECT_EQ(j["direction"], "inferred from the name (acc)");
  ASSERT_EQ(j["comparisons"].size(), 2u);
  for (const auto& c : j["comparisons"]) {
    for (const char* key : {"baseline", "arm", "test", "n", "statistic", "p_value", "p_adjusted",
                            "diff_mean", "diff_ci_low", "diff_ci_high", "hedges_g", "cliffs_delta",
                            "prob_improvement", "significant", "seeds_for_80_power"}) {
      EXPECT_TRUE(c.contains(key)) << key;
    }
  }
  EXPECT_EQ(j["comparisons"][0]["baseline"]["attention.variant"], "mha");
  EXPECT_EQ(j["comparisons"][0]["family"], "baseline");
  EXPECT_EQ(j["comparisons"][0]["reference"]["label"], "variant=mha");
  EXPECT_EQ(j["comparisons"][0]["params"]["attention.kv_heads"], 2);
  ASSERT_EQ(j["families"].size(), 1u);
  EXPECT_EQ(j["families"][0]["name"], "baseline");
  EXPECT_EQ(j["families"][0]["tested"], 2);
  EXPECT_NEAR(j["comparisons"][0]["p_value"].get<double>(), 0.0006081849444633143, 1e-12);
  EXPECT_TRUE(j["comparisons"][0]["significant"].get<bool>());
  // Deterministic: the same store gives the same bytes.
  EXPECT_EQ(render_json(report("s")), render_json(report("s")));
}

TEST_F(ReportTest, CurvesAreMeanAndIntervalAcrossSeeds) {
  std::vector<FakeRun> runs;
  for (int64_t s = 0; s < 3; ++s) {
    runs.push_back({kMha, s, 0.8, "done", {0.5 + 0.01 * s, 0.7 + 0.02 * s}});
    runs.push_back({kGqa2, s, 0.7, "done", {0.4, 0.6}});
  }
  write_sweep(store_, dir_, "s", runs);
  const Report r = report("s");
  EXPECT_EQ(r.curve_metric, "eval/test_acc");
  EXPECT_EQ(r.metric_kind, "final value of eval/test_acc");
  ASSERT_EQ(r.arms[0].curve.size(), 2u);
  EXPECT_EQ(r.arms[0].curve[1].step, 200);
  EXPECT_EQ(r.arms[0].curve[1].n, 3);
  EXPECT_NEAR(r.arms[0].curve[1].mean, 0.72, 1e-12);
  // t interval of {0.70, 0.72, 0.74}: 0.72 -+ t_{0.975, 2} * 0.02 / sqrt(3) = 4.302652729749464 *
  // 0.011547
  EXPECT_NEAR(r.arms[0].curve[1].high - 0.72, 4.302652729749464 * 0.02 / std::sqrt(3.0), 1e-9);
  // Zero spread: a zero-width band.
  EXPECT_NEAR(r.arms[1].curve[0].low, 0.4, 1e-12);
  EXPECT_NEAR(r.arms[1].curve[0].high, 0.4, 1e-12);
}

// Intermediate evaluations of a train.eval_subset ("subset": N on their eval events) are marked
// on the curve, and the report's text says which points they are.
TEST_F(ReportTest, SubsetCurvePointsAreMarkedAndTheMethodSaysSo) {
  std::vector<FakeRun> runs;
  const nlohmann::json subset{{"step", 100}, {"kind", "eval"}, {"subset", 50}};
  for (int64_t s = 0; s < 3; ++s) {
    runs.push_back({kMha, s, 0.8, "done", {0.5, 0.8}, "", -1, {subset}});
    runs.push_back({kGqa2, s, 0.7, "done", {0.4, 0.7}, "", -1, {subset}});
  }
  write_sweep(store_, dir_, "s", runs);
  const Report r = report("s");
  for (const ReportArm& arm : r.arms) {
    ASSERT_EQ(arm.curve.size(), 2u);
    EXPECT_EQ(arm.curve[0].subset, 50) << "step 100 read the first 50 examples";
    EXPECT_EQ(arm.curve[1].subset, 0) << "step 200 read the whole held-out set";
  }
  EXPECT_NEAR(r.arms[0].curve[0].mean, 0.5, 1e-12) << "the subset is no metric of the curve";
  EXPECT_EQ(subset_phrase(r), "the first 50 held-out examples");
  const std::string line =
      "Learning curves: the points marked as subsets are intermediate evaluations of only the "
      "first 50 held-out examples (train.eval_subset)";
  EXPECT_NE(std::find(r.method.begin(), r.method.end(),
                      line + ", the same examples at every step; each run's last evaluation, and "
                             "every final_ and best_ value, is of the whole held-out set."),
            r.method.end());
  // Markdown escapes the underscores.
  EXPECT_NE(render_markdown(r, {}).find("first 50 held-out examples (train.eval\\_subset)"),
            std::string::npos);
  EXPECT_NE(render_html(r, {}).find(line), std::string::npos);

  // Without subsets: no mark and no such line.
  std::vector<FakeRun> whole;
  for (int64_t s = 0; s < 3; ++s) whole.push_back({kMha, s, 0.8, "done", {0.5, 0.8}});
  write_sweep(store_, dir_, "w", whole);
  const Report w = report("w");
  for (const CurvePoint& p : w.arms[0].curve) EXPECT_EQ(p.subset, 0);
  EXPECT_EQ(subset_phrase(w), "");
  EXPECT_EQ(render_markdown(w, {}).find("eval\\_subset"), std::string::npos);
  EXPECT_EQ(render_html(w, {}).find("eval_subset"), std::string::npos);
}

TEST_F(ReportTest, NamesAreEscapedForEachFormat) {
  const Params script = {{"tag", "<script>alert(1)</script>"}};
  const Params percent = {{"tag", "50%_{x}"}};
  std::vector<FakeRun> runs;
  for (int64_t s = 0; s < 3; ++s) {
    runs.push_back({script, s, 0.5 + 0.01 * s});
    runs.push_back({percent, s, 0.6 + 0.01 * s});
  }
  write_sweep(store_, dir_, "<b>50%_{x}</b>", runs);
  const Report r = report("<b>50%_{x}</b>");
  const std::string html = render_html(r, {});
  EXPECT_EQ(html.find("<script>"), std::string::npos);
  EXPECT_EQ(html.find("<b>"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  EXPECT_NE(html.find("&lt;b&gt;50%_{x}&lt;/b&gt;"), std::string::npos);
  const std::string tex = render_latex(r);
  EXPECT_NE(tex.find("tag=50\\%\\_\\{x\\}"), std::string::npos);
  EXPECT_EQ(tex.find("50%"), std::string::npos);  // an unescaped % would comment out the line
  EXPECT_NE(tex.find("\\textless{}script\\textgreater{}"), std::string::npos);
  const std::string md = render_markdown(r, {});
  EXPECT_EQ(md.find("<script>"), std::string::npos);
  EXPECT_NE(md.find("&lt;script&gt;"), std::string::npos);
  EXPECT_NE(md.find("50%\\_{x}"), std::string::npos);
  // A pipe in a value cannot break the Markdown table.
  EXPECT_EQ(escape_markdown("a|b"), "a\\|b");
  const auto j = nlohmann::json::parse(render_json(r));
  EXPECT_EQ(j["sweep"], "<b>50%_{x}</b>");
  EXPECT_EQ(j["arms"][0]["arm"]["tag"], "<script>alert(1)</script>");
}

TEST_F(ReportTest, LatexIsABooktabsTable) {
  write_sweep(store_, dir_, "s", three_arms());
  const std::string tex = render_latex(report("s"));
  for (const char* part :
       {"\\toprule", "\\midrule", "\\bottomrule", "\\begin{tabular}", "\\end{table}", "$\\pm$"}) {
    EXPECT_NE(tex.find(part), std::string::npos) << part;
  }
  EXPECT_EQ(tex.find("±"), std::string::npos);
  // One row per arm between \midrule and \bottomrule.
  const auto body =
      tex.substr(tex.find("\\midrule"), tex.find("\\bottomrule") - tex.find("\\midrule"));
  EXPECT_EQ(std::count(body.begin(), body.end(), '\n'), 4);
}

}  // namespace
}  // namespace ablate::results
