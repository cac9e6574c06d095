// The questions a report answers beyond "every arm against one baseline": labels that name only
// the keys that apply, --where, --compare families with their own correction, the metric's
// direction, the baseline's seeds, identical arms, staged arms' parents.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "ablate/results/report.h"
#include "ablate/testing/errors.h"
#include "report/report_parts.h"
#include "report_test_support.h"

namespace ablate::results {
namespace {

using namespace test_support;

// Params as an older runner stored them: every attention key on every arm, so a gqa arm has
// pgqa's noise_scale and dgqa's ema_window at their defaults.
Params arm(const std::string& variant, int kv, const std::string& ema = "100",
           const std::string& noise = "1.0") {
  return {{"attention.ema_window", ema},
          {"attention.kv_heads", std::to_string(kv)},
          {"attention.noise_scale", noise},
          {"attention.variant", variant},
          {"model.heads", "4"}};
}

// Five seeds of `values` (seed s gets values[s]) for one arm.
void add(std::vector<FakeRun>& runs, const Params& params, const std::vector<double>& values) {
  for (size_t s = 0; s < values.size(); ++s) {
    runs.push_back({params, static_cast<int64_t>(s), values[s]});
  }
}

const std::vector<double> kA = {0.80, 0.82, 0.79, 0.81, 0.83};
const std::vector<double> kB = {0.81, 0.835, 0.80, 0.825, 0.84};
const std::vector<double> kC = {0.78, 0.83, 0.76, 0.80, 0.815};
const std::vector<double> kD = {0.805, 0.826, 0.788, 0.822, 0.836};

// mha; gqa kv 1 and 2; dgqa kv 2 with ema_window 100 and 1000; pgqa kv 2 with noise 0.5 and 1.
std::vector<FakeRun> grid() {
  std::vector<FakeRun> runs;
  add(runs, arm("mha", 4), kA);
  add(runs, arm("gqa", 1), kC);
  add(runs, arm("gqa", 2), kB);
  add(runs, arm("dgqa", 2, "100"), kD);
  add(runs, arm("dgqa", 2, "1000"), kC);
  add(runs, arm("pgqa", 2, "100", "0.5"), kB);
  add(runs, arm("pgqa", 2, "100", "1.0"), kA);
  return runs;
}

std::vector<std::string> labels(const Report& r) {
  std::vector<std::string> out;
  for (const auto& a : r.arms) out.push_back(a.label);
  return out;
}

TEST_F(ReportTest, LabelsNameOnlyTheKeysThatVaryAndApplyToTheArmsVariant) {
  write_sweep(store_, dir_, "g", grid());
  const Report r = report("g");
  EXPECT_EQ(labels(r), (std::vector<std::string>{
                           "variant=mha",
                           "kv_heads=1 variant=gqa",
                           "kv_heads=2 variant=gqa",
                           "ema_window=100 kv_heads=2 variant=dgqa",
                           "ema_window=1000 kv_heads=2 variant=dgqa",
                           "kv_heads=2 noise_scale=0.5 variant=pgqa",
                           "kv_heads=2 noise_scale=1.0 variant=pgqa",
                       }));
  // The JSON's params stay complete and typed, the label's keys are those that apply.
  const auto j = nlohmann::json::parse(render_json(r));
  EXPECT_EQ(j["arms"][0]["arm"], (nlohmann::json{{"attention.variant", "mha"}}));
  EXPECT_EQ(j["arms"][0]["params"]["attention.noise_scale"], 1.0);
  EXPECT_EQ(j["arms"][3]["arm"]["attention.ema_window"], 100);
  EXPECT_TRUE(j["arms"][3]["arm"]["attention.ema_window"].is_number_integer());
}

TEST_F(ReportTest, WhereKeepsASubsetAndLabelsByWhatVariesInIt) {
  write_sweep(store_, dir_, "g", grid());
  ReportOptions o;
  o.where = {{"attention_variant", "dgqa"}};
  const Report r = report("g", o);
  EXPECT_EQ(labels(r), (std::vector<std::string>{"ema_window=100", "ema_window=1000"}));
  ASSERT_EQ(r.comparisons.size(), 1u);
  EXPECT_EQ(r.where, (std::vector<std::string>{"attention.variant=dgqa"}));
  EXPECT_NE(detail::summary_sentence(r).find("with attention.variant=dgqa"), std::string::npos);
  o.where = {{"kv_heads", "2.0"}, {"attention.variant", "gqa"}};  // a key by its last part
  EXPECT_EQ(report("g", o).arms.size(), 1u);                      // numbers match as numbers
  o.where = {{"attention.variant", "wgqa"}};
  const std::string none = testing::thrown_message<ReportError>([&] { report("g", o); });
  EXPECT_NE(none.find("keeps no arm"), std::string::npos) << none;
  EXPECT_NE(none.find("attention.variant has dgqa, gqa, mha, pgqa"), std::string::npos) << none;
  o.where = {{"attention.windw", "1"}};
  EXPECT_NE(testing::thrown_message<ReportError>([&] { report("g", o); }).find("not a param"),
            std::string::npos);
}

TEST_F(ReportTest, CompareFamilyComparesLevelsInsideCellsThatDifferOnlyInTheKey) {
  write_sweep(store_, dir_, "g", grid());
  ReportOptions o;
  o.compare = {{"attention.kv_heads", std::nullopt}};
  const Report r = report("g", o);
  // Without --baseline only the --compare family runs; no baseline is chosen.
  EXPECT_FALSE(r.has_baseline());
  ASSERT_EQ(r.families.size(), 1u);
  const Family& f = r.families[0];
  EXPECT_EQ(f.name, "attention.kv_heads");
  // mha ignores kv_heads: not a member. Reference: the first level in the sweep's order.
  EXPECT_EQ(f.reference_value, "1");
  ASSERT_EQ(f.groups.size(), 1u);
  EXPECT_EQ(f.groups[0].label, "variant=gqa");
  EXPECT_EQ(r.arms[f.groups[0].reference].label, "kv_heads=1 variant=gqa");
  ASSERT_EQ(f.groups[0].comparisons.size(), 1u);
  const Comparison& c = r.comparisons[f.groups[0].comparisons[0]];
  EXPECT_EQ(r.arms[c.arm].label, "kv_heads=2 variant=gqa");
  // The same seeds: paired by seed, exactly the paired t-test of the two arms' values.
  EXPECT_EQ(c.test, "paired-t");
  EXPECT_NEAR(c.result.p_value, stats::paired_t_test(kB, kC).p_value, 1e-15);
  EXPECT_NEAR(c.difference.diff, stats::mean(kB) - stats::mean(kC), 1e-15);
  // The dgqa and pgqa cells have no kv_heads=1 arm: named, not silently dropped.
  ASSERT_EQ(f.notes.size(), 4u);
  EXPECT_NE(f.notes[0].find("[ema_window=100 variant=dgqa]: no arm with attention.kv_heads=1"),
            std::string::npos)
      << f.notes[0];
  // --reference picks the level; a value that is not a level is refused with the levels.
  o.compare = {{"attention.kv_heads", std::string("2")}};
  const Report two = report("g", o);
  EXPECT_EQ(two.families[0].reference_value, "2");
  EXPECT_EQ(two.families[0].reference_reason, "given with --reference");
  // A reference from the sweep file's report: block says so.
  o.compare[0].reference_given_in = "the sweep file's report: block";
  EXPECT_EQ(report("g", o).families[0].reference_reason, "given in the sweep file's report: block");
  EXPECT_EQ(two.arms[two.comparisons[0].arm].label, "kv_heads=1 variant=gqa");
  o.compare = {{"attention.kv_heads", std::string("8")}};
  EXPECT_NE(testing::thrown_message<ReportError>([&] { report("g", o); })
                .find("--reference 8: not a level of attention.kv_heads in this report; levels: "
                      "1, 2"),
            std::string::npos);
  o.compare = {{"model.heads", std::nullopt}};
  EXPECT_NE(testing::thrown_message<ReportError>([&] {
              report("g", o);
            }).find("one level of it (4); nothing to compare"),
            std::string::npos);
}

// gqa has no ema_window or noise_scale (its variant ignores them), so every dgqa and pgqa cell
// is compared with the gqa arm whose other keys match: the paper's "each variant against GQA".
TEST_F(ReportTest, ACellWithoutTheReferenceIsComparedWithTheArmItsKeysDoNotApplyTo) {
  std::vector<FakeRun> runs = grid();
  add(runs, arm("dgqa", 1, "100"), kB);
  write_sweep(store_, dir_, "g", runs);
  ReportOptions o;
  o.compare = {{"attention.variant", std::string("gqa")}};
  const Report r = report("g", o);
  ASSERT_EQ(r.families.size(), 1u);
  const Family& f = r.families[0];
  std::vector<std::pair<std::string, std::string>> pairs;  // (arm, reference)
  for (const auto& g : f.groups) {
    for (const size_t i : g.comparisons) {
      const Comparison& c = r.comparisons[i];
      EXPECT_EQ(c.reference, g.reference);
      pairs.emplace_back(r.arms[c.arm].label, r.arms[c.reference].label);
    }
  }
  using P = std::pair<std::string, std::string>;
  EXPECT_EQ(pairs, (std::vector<P>{
                       {"ema_window=100 kv_heads=2 variant=dgqa", "kv_heads=2 variant=gqa"},
                       {"ema_window=1000 kv_heads=2 variant=dgqa", "kv_heads=2 variant=gqa"},
                       {"kv_heads=2 noise_scale=0.5 variant=pgqa", "kv_heads=2 variant=gqa"},
                       {"kv_heads=2 noise_scale=1.0 variant=pgqa", "kv_heads=2 variant=gqa"},
                       {"ema_window=100 kv_heads=1 variant=dgqa", "kv_heads=1 variant=gqa"},
                   }))
      << ::testing::PrintToString(pairs);
  // The pairing is the reference's own runs: dgqa kv 2 window 100 (kD) against gqa kv 2 (kB).
  const Comparison& first = r.comparisons[f.groups[0].comparisons[0]];
  EXPECT_NEAR(first.difference.diff, stats::mean(kD) - stats::mean(kB), 1e-15);
  // Each borrowed reference is said; mha (no kv_heads of its own) has no gqa to borrow.
  const auto said = [&](const std::string& text) {
    return std::any_of(f.notes.begin(), f.notes.end(),
                       [&](const std::string& n) { return n.find(text) != std::string::npos; });
  };
  EXPECT_TRUE(
      said("[ema_window=100 kv_heads=2]: compared with kv_heads=2 variant=gqa "
           "(its variant has no attention.ema_window)"))
      << ::testing::PrintToString(f.notes);
  EXPECT_TRUE(said("the report's arms: no arm with attention.variant=gqa; 1 arm not compared"))
      << ::testing::PrintToString(f.notes);
}

TEST_F(ReportTest, SeveralFamiliesAreCorrectedEachOnItsOwn) {
  write_sweep(store_, dir_, "g", grid());
  ReportOptions o;
  o.baseline = {{"attention.variant", "mha"}};
  o.compare = {{"attention.ema_window", std::nullopt}, {"attention.noise_scale", std::nullopt}};
  const Report r = report("g", o);
  ASSERT_EQ(r.families.size(), 3u);
  EXPECT_EQ(r.families[0].name, "baseline");
  // pgqa noise 1.0 equals mha seed by seed: zero variance, not testable, so 5 tests.
  EXPECT_EQ(r.families[0].tested, 5u);
  EXPECT_EQ(r.families[1].name, "attention.ema_window");
  EXPECT_EQ(r.families[1].tested, 1u);
  EXPECT_EQ(r.families[2].reference_value, "0.5");
  // A family of one test is not adjusted; the baseline family's smallest p is multiplied by 5
  // (Holm's first step).
  const Comparison& ema = r.comparisons[r.families[1].groups[0].comparisons[0]];
  EXPECT_EQ(ema.p_adjusted, ema.result.p_value);
  double smallest = 1, smallest_adjusted = 1;
  for (const auto& c : r.comparisons) {
    if (c.family != 0) continue;
    if (c.result.p_value < smallest) {
      smallest = c.result.p_value;
      smallest_adjusted = c.p_adjusted;
    }
  }
  EXPECT_NEAR(smallest_adjusted, std::min(1.0, 5 * smallest), 1e-12);
  // Each family has its section, with the cell as a group row.
  const std::string md = render_markdown(r, {});
  EXPECT_NE(md.find("## Family: attention.ema\\_window"), std::string::npos);
  EXPECT_NE(md.find("| **kv\\_heads=2 variant=dgqa** |"), std::string::npos) << md;
  // LaTeX: one table per family, and no bare Δ or ± (pdflatex has no glyph for them).
  const std::string tex = render_latex(r);
  EXPECT_EQ(tex.find("Δ"), std::string::npos);
  EXPECT_EQ(tex.find("±"), std::string::npos);
  EXPECT_NE(tex.find("$\\Delta$ vs reference"), std::string::npos);
  size_t tables = 0;
  for (size_t at = tex.find("\\begin{table}"); at != std::string::npos;
       at = tex.find("\\begin{table}", at + 1)) {
    ++tables;
  }
  EXPECT_EQ(tables, 3u);  // the arms, and the two --compare families
  const auto j = nlohmann::json::parse(render_json(r));
  ASSERT_EQ(j["families"].size(), 3u);
  EXPECT_EQ(j["families"][1]["reference_value"], 100);
  EXPECT_EQ(j["comparisons"].size(), 8u);
  EXPECT_EQ(j["comparisons"][6]["family"], "attention.ema_window");
  EXPECT_EQ(j["comparisons"][6]["reference"]["label"], "ema_window=100 kv_heads=2 variant=dgqa");
}

// Three arms against a baseline, each with a modest effect: raw p below 0.05 for some, above
// after Holm over the family.
std::vector<FakeRun> modest_effects() {
  std::vector<FakeRun> runs;
  add(runs, arm("mha", 4), kA);
  add(runs, arm("gqa", 1), {0.806, 0.824, 0.798, 0.812, 0.838});
  add(runs, arm("gqa", 2), {0.802, 0.830, 0.793, 0.821, 0.834});
  add(runs, arm("gqa", 3), {0.799, 0.826, 0.785, 0.815, 0.829});
  return runs;
}

TEST_F(ReportTest, TheCorrectionIsExplainedWhereItChangesAVerdict) {
  write_sweep(store_, dir_, "m", modest_effects());
  const Report r = report("m");
  int explained = 0;
  for (const auto& c : r.comparisons) {
    ASSERT_FALSE(c.test.empty());
    const bool raw = c.result.p_value <= 0.05;
    const bool changed = raw && !c.significant;
    if (changed) {
      ++explained;
      EXPECT_EQ(c.verdict, "no detectable difference");
      const std::string want = "Holm-adjusted over 3 comparisons";
      EXPECT_NE(c.note.find(want), std::string::npos) << c.note;
      EXPECT_NE(c.note.find("p = " + detail::format_number(c.result.p_value, 2)), std::string::npos)
          << c.note;
    } else {
      EXPECT_EQ(c.note.find("adjusted"), std::string::npos) << c.note;
    }
  }
  // The data is built so that the correction changes at least one verdict: the test bites.
  EXPECT_GE(explained, 1);
}

TEST_F(ReportTest, SeedsForPowerArePlannedAtTheAdjustedLevel) {
  write_sweep(store_, dir_, "m", modest_effects());
  for (const auto correction : {stats::Correction::kHolm, stats::Correction::kBonferroni,
                                stats::Correction::kBenjaminiHochberg}) {
    ReportOptions o;
    o.correction = correction;
    const Report r = report("m", o);
    for (const auto& c : r.comparisons) {
      ASSERT_TRUE(c.seeds_for_power.available);
      EXPECT_NEAR(c.power_alpha, 0.05 / 3, 1e-15);
      // A comparison the correction left non-significant never reads "the seeds you ran
      // suffice".
      if (!c.significant) {
        EXPECT_GT(c.seeds_for_power.n, c.n) << r.arms[c.arm].label;
      }
      EXPECT_EQ(c.seeds_for_power.n,
                stats::seeds_for_power(c.hedges_g.value, c.paired, 0.05 / 3, 0.8).n);
    }
  }
  ReportOptions none;
  none.correction = stats::Correction::kNone;
  for (const auto& c : report("m", none).comparisons) EXPECT_EQ(c.power_alpha, 0.05);
}

TEST_F(ReportTest, TheDirectionIsReadFromTheMetricsName) {
  const std::vector<std::pair<std::string, int>> cases = {{"final_val_loss", 1},
                                                          {"best_val_bpb", 1},
                                                          {"eval/ppl", 1},
                                                          {"test_error", 1},
                                                          {"wall_time_s", 1},
                                                          {"peak_memory_bytes", 1},
                                                          {"final_test_acc", 0},
                                                          {"accuracy", 0},
                                                          {"final_rouge1_f1", 0},
                                                          {"rougeL", 0},
                                                          {"bleu", 0},
                                                          {"throughput", 0},
                                                          {"final_val_exact_match", 0},
                                                          {"final_val_loss_unigram", 1},
                                                          {"score", -1},
                                                          {"acc_loss", -1},
                                                          {"terrain", -1}};
  for (const auto& [name, want] : cases) {
    const auto d = infer_direction(name);
    if (want < 0) {
      EXPECT_FALSE(d.lower_is_better.has_value()) << name;
    } else {
      ASSERT_TRUE(d.lower_is_better.has_value()) << name;
      EXPECT_EQ(*d.lower_is_better, want == 1) << name;
    }
  }
  write_sweep(store_, dir_, "s", three_arms());
  ReportOptions o;
  o.metric = "parameters";  // fewer is better, by its name
  const Report r = report("s", o);
  EXPECT_TRUE(r.lower_is_better);
  EXPECT_NE(r.direction_reason.find("inferred from the name (parameters)"), std::string::npos);
  EXPECT_NE(r.method[0].find("lower is better, inferred from the name"), std::string::npos);
  o.metric = "step";  // in summaries, but a name that says nothing: the user must say
  const std::string refused = testing::thrown_message<ReportError>([&] { report("s", o); });
  EXPECT_NE(refused.find("pass --lower-is-better or --higher-is-better"), std::string::npos)
      << refused;
  o.lower_is_better = false;
  EXPECT_EQ(report("s", o).direction_reason, "given (--higher-is-better)");
}

TEST_F(ReportTest, TheAutomaticBaselineHasEnoughUsableRuns) {
  auto runs = three_arms();
  runs[0].status = "diverged";  // mha: 4 usable runs left
  runs[0].value = stats::kNaN;
  runs[1].status = "failed";  // 3 left
  write_sweep(store_, dir_, "s", runs);
  ReportOptions o;
  o.min_seeds = 4;
  const Report r = report("s", o);
  EXPECT_EQ(r.baseline_arm().label, "kv_heads=2 variant=gqa");
  EXPECT_NE(r.baseline_reason.find("first arm of the sweep with at least 4 usable runs"),
            std::string::npos)
      << r.baseline_reason;
  o.min_seeds = 3;
  EXPECT_EQ(report("s", o).baseline_arm().label, "variant=mha");
}

TEST_F(ReportTest, IdenticalArmsAreFlaggedWithTheirAllocation) {
  std::vector<FakeRun> runs;
  add(runs, arm("mha", 4), kA);
  add(runs, arm("gqa", 2), kB);
  add(runs, arm("dgqa", 2), kB);  // the same values seed by seed
  // dgqa's allocation stayed at [2, 2] in both layers at every evaluation.
  for (auto& run : runs) {
    if (run.params[3].second != "dgqa") continue;
    for (int step : {100, 200}) {
      for (int layer : {0, 1}) {
        run.events.push_back(
            {{"step", step}, {"kind", "attention"}, {"layer", layer}, {"alloc", {2, 2}}});
      }
    }
  }
  write_sweep(store_, dir_, "i", runs);
  const Report r = report("i");
  ASSERT_EQ(r.identical.size(), 1u);
  EXPECT_EQ(r.arms[r.identical[0].arm].label, "variant=dgqa");
  EXPECT_EQ(r.arms[r.identical[0].same_as].label, "variant=gqa");
  const std::string warning =
      "[variant=dgqa] is identical to [variant=gqa] on all 5 seeds: its "
      "allocation never left [2, 2]";
  EXPECT_TRUE(std::any_of(r.warnings.begin(), r.warnings.end(), [&](const std::string& w) {
    return w.find(warning) != std::string::npos;
  })) << warning;
  const auto j = nlohmann::json::parse(render_json(r));
  ASSERT_EQ(j["identical"].size(), 1u);
  EXPECT_EQ(j["identical"][0]["same_as"]["label"], "variant=gqa");
  // A reference with more seeds (seeds until decided stops a candidate while its reference goes
  // on): the twin is found on the seeds both have, and the warning says so.
  std::vector<FakeRun> longer = runs;
  longer.push_back({arm("gqa", 2), 5, 0.7});
  longer.push_back({arm("gqa", 2), 6, 0.71});
  write_sweep(store_, dir_, "nested", longer);
  const Report nested = report("nested");
  ASSERT_EQ(nested.identical.size(), 1u);
  EXPECT_EQ(nested.arms[nested.identical[0].same_as].label, "variant=gqa");
  EXPECT_EQ(nested.identical[0].seeds, 5);
  const std::string both =
      "[variant=dgqa] is identical to [variant=gqa] on the 5 seeds both have: its allocation "
      "never left [2, 2]";
  EXPECT_TRUE(std::any_of(nested.warnings.begin(), nested.warnings.end(),
                          [&](const std::string& w) { return w.find(both) != std::string::npos; }))
      << both;
  // An allocation that moved is not blamed: the cause falls back to the generic one.
  for (auto& run : runs) {
    if (!run.events.empty()) run.events.back()["alloc"] = {3, 1};
  }
  write_sweep(store_, dir_, "moved", runs);
  const Report moved = report("moved");
  ASSERT_EQ(moved.identical.size(), 1u);
  EXPECT_EQ(moved.identical[0].cause.find("allocation"), std::string::npos);
}

TEST_F(ReportTest, AnArmThatFailedTheCausalityCheckIsFlaggedWithItsVerdict) {
  std::vector<FakeRun> runs;
  add(runs, arm("mha", 4), kA);
  add(runs, arm("gqa", 2), kB);
  add(runs, arm("kdgqa", 2), kC);
  const std::string leak =
      "leaks the future (in its faithful mode its query allocation uses later positions); "
      "allowed by attention.allow_noncausal";
  for (auto& run : runs) {
    run.causality = run.params[3].second == "kdgqa" ? leak : "causal";
  }
  runs.back().causality = "causal";  // one run of the arm checked causal: the others still count
  write_sweep(store_, dir_, "leak", runs);
  const Report r = report("leak");
  ASSERT_EQ(r.noncausal.size(), 1u);
  EXPECT_EQ(r.arms[r.noncausal[0].arm].label, "variant=kdgqa");
  EXPECT_EQ(r.noncausal[0].jobs, 4);
  EXPECT_EQ(r.noncausal[0].causality, leak);
  const std::string warning =
      "[variant=kdgqa] is not causal: its 4 runs failed the causality "
      "check and trained only because attention.allow_noncausal is set (" +
      leak + ")";
  EXPECT_TRUE(std::any_of(r.warnings.begin(), r.warnings.end(), [&](const std::string& w) {
    return w.find(warning) != std::string::npos;
  })) << warning;
  const auto j = nlohmann::json::parse(render_json(r));
  ASSERT_EQ(j["noncausal"].size(), 1u);
  EXPECT_EQ(j["noncausal"][0]["arm"]["label"], "variant=kdgqa");
  EXPECT_NE(render_markdown(r, {}).find("is not causal"), std::string::npos);
  // Causal arms, and a vit's "not checked", are not flagged.
  for (auto& run : runs) run.causality = "not checked (vit attends both ways)";
  write_sweep(store_, dir_, "vit", runs);
  EXPECT_TRUE(report("vit").noncausal.empty());
}

TEST_F(ReportTest, ArmsEqualButForRoundingAreFlaggedAndOthersAreNot) {
  std::vector<FakeRun> runs;
  add(runs, arm("mha", 4), kA);
  add(runs, arm("gqa", 2), kB);
  std::vector<double> rounded = kB, different = kB;
  for (double& v : rounded) v *= 1 + 3e-8;    // another computation path of the same model
  for (double& v : different) v *= 1 + 1e-4;  // a real, if small, difference
  add(runs, arm("dgqa", 2), rounded);
  add(runs, arm("pgqa", 2), different);
  write_sweep(store_, dir_, "r", runs);
  const Report r = report("r");
  ASSERT_EQ(r.identical.size(), 1u);
  EXPECT_EQ(r.arms[r.identical[0].arm].label, "variant=dgqa");
  EXPECT_NEAR(r.identical[0].relative_difference, 3e-8, 1e-9);
  EXPECT_TRUE(std::any_of(r.warnings.begin(), r.warnings.end(), [](const std::string& w) {
    return w.find(
               "[variant=dgqa] is identical to [variant=gqa] (to within 3e-08 relative: "
               "floating-point rounding) on all 5 seeds") != std::string::npos;
  }));
}

TEST_F(ReportTest, LabelsNameKeysInTheRunnersOrderWhenTheSweepRecordsIt) {
  std::vector<FakeRun> runs;
  add(runs, arm("dgqa", 2, "100"), kA);
  add(runs, arm("dgqa", 4, "1000"), kB);
  write_sweep(store_, dir_, "o", runs);
  EXPECT_EQ(report("o").arms[0].label, "ema_window=100 kv_heads=2");  // alphabetical
  // The runner records its schema's order with the sweep: variant, kv_heads, ..., ema_window.
  SweepRecord again;
  again.name = "o";
  again.yaml = "name: o";
  again.config_hash = "hash";
  again.code_version = "abc123";
  again.provenance = {{"param_order", "attention.variant,attention.kv_heads,attention.ema_window"}};
  store_.register_sweep(again);
  const Report r = report("o");
  EXPECT_EQ(r.arms[0].label, "kv_heads=2 ema_window=100");
  for (const auto& [k, v] : r.provenance) EXPECT_NE(k, "param_order");  // not provenance
}

TEST_F(ReportTest, AStagedArmWhoseKeysMatchAnothersIsNamedByItsParent) {
  // Two pretrain arms (dim 32 and 64) whose uptrain children set dim back to 32: the children's
  // own keys are equal, only their parents tell them apart (the runner's arm key holds the
  // parent's arm).
  std::vector<FakeRun> runs;
  for (const std::string dim : {"32", "64"}) {
    const Params pre = {{"attention.variant", "mha"}, {"model.dim", dim}};
    for (int64_t s = 0; s < 3; ++s) {
      runs.push_back({pre, s, kA[s], "done", {}, "pretrain"});
      const int parent = static_cast<int>(runs.size()) - 1;
      runs.push_back({{{"attention.variant", "gqa"}, {"model.dim", "32"}},
                      s,
                      kB[s],
                      "done",
                      {},
                      "uptrain",
                      parent,
                      {},
                      "uptrain-from-" + dim});
    }
  }
  write_sweep(store_, dir_, "st", runs);
  ReportOptions o;
  o.baseline = {{"stage", "pretrain"}, {"model.dim", "32"}};
  const Report r = report("st", o);
  ASSERT_EQ(r.arms.size(), 4u);
  EXPECT_EQ(r.arms[1].label,
            "stage=uptrain variant=gqa dim=32 <- stage=pretrain variant=mha dim=32");
  EXPECT_EQ(r.arms[3].label,
            "stage=uptrain variant=gqa dim=32 <- stage=pretrain variant=mha dim=64");
}

TEST_F(ReportTest, AStagedArmIsNamedByItsKeysAndItsParentNeverByARunDir) {
  // Two pretrain arms (dim 32 and 64), each the parent of an uptrain arm with the same keys; the
  // uptrain arms differ only in init.from, their parents' run dirs.
  std::vector<FakeRun> runs;
  for (const std::string dim : {"32", "64"}) {
    const Params pre = {{"attention.variant", "mha"}, {"model.dim", dim}};
    for (int64_t s = 0; s < 3; ++s) {
      runs.push_back({pre, s, kA[s], "done", {}, "pretrain"});
      const int parent = static_cast<int>(runs.size()) - 1;
      const Params up = {{"attention.kv_heads", "2"},
                         {"attention.variant", "gqa"},
                         {"init.from", "/runs/pre-" + dim + "-" + std::to_string(s)},
                         {"model.dim", dim}};
      // The seeds' init.from differ; their arm is one, as the runner's arm key leaves it out.
      FakeRun child{up, s, kB[s], "done", {}, "uptrain", parent, {}, "uptrain-" + dim};
      runs.push_back(child);
    }
  }
  write_sweep(store_, dir_, "st", runs);
  const Report r = report("st", [] {
    ReportOptions o;
    o.baseline = {{"stage", "pretrain"}, {"model.dim", "32"}};
    return o;
  }());
  ASSERT_EQ(r.arms.size(), 4u);
  for (const auto& a : r.arms) {
    EXPECT_EQ(a.label.find("/runs/"), std::string::npos) << a.label;
    EXPECT_EQ(a.label.find("init.from"), std::string::npos) << a.label;
  }
  // dim already tells the uptrain arms apart, so the parent is not repeated in the label; the
  // JSON carries it. (kv_heads applies to the gqa arms only, where it is 2 throughout.)
  EXPECT_EQ(r.arms[1].label, "stage=uptrain variant=gqa dim=32");
  EXPECT_EQ(r.arms[1].parent_label, "stage=pretrain variant=mha dim=32");
  const auto j = nlohmann::json::parse(render_json(r));
  EXPECT_EQ(j["arms"][1]["parent"], "stage=pretrain variant=mha dim=32");
}

}  // namespace
}  // namespace ablate::results
