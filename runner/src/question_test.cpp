// The sweep file's report: question checked against the planned arms before anything trains.
#include "ablate/runner/question.h"

#include <gtest/gtest.h>

#include "ablate/testing/errors.h"

namespace ablate::runner {
namespace {

// An lm sweep of four gqa arms (kv_heads 1 and 2, RoPE on and off) with `report` appended.
std::string sweep_with(const std::string& report) {
  return "name: s\n"
         "task: lm\n"
         "seeds: 2\n"
         "grid:\n"
         "  - attention.variant: gqa\n"
         "    attention.kv_heads: [1, 2]\n"
         "    attention.rope: [true, false]\n" +
         report;
}

// The error check_question throws for the sweep (a failed test when it throws none).
ConfigError question_error(const std::string& report) {
  const SweepSpec spec = parse_sweep(sweep_with(report), "s.yaml");
  const std::vector<JobSpec> jobs = expand(spec);
  return testing::thrown<ConfigError>([&] { check_question(spec, jobs); },
                                      ConfigError("", 0, 0, "", ""));
}

void expect_refused(const std::string& report, const std::string& key, const std::string& message) {
  const ConfigError e = question_error(report);
  EXPECT_EQ(e.file(), "s.yaml") << e.what();
  EXPECT_EQ(e.line(), 8) << e.what();  // the report: key
  EXPECT_EQ(e.key(), key) << e.what();
  EXPECT_NE(e.message().find(message), std::string::npos) << e.message() << "\nwanted: " << message;
}

TEST(CheckQuestion, AQuestionTheArmsCanAnswerPasses) {
  for (const std::string report : {
           "",  // no report: block
           "report: {metric: final_val_loss}\n",
           "report: {metric: final_val_loss, baseline: {kv_heads: 2, rope: true}}\n",
           "report: {metric: final_val_loss, compare: attention.rope, reference: false}\n",
           "report: {metric: final_val_loss, compare: kv_heads, where: {rope: true}}\n",
           // A metric no run has written yet is not checked: only the arms are.
           "report: {metric: no_such_metric, baseline: {attention.kv_heads: 1, rope: false}}\n",
       }) {
    const SweepSpec spec = parse_sweep(sweep_with(report), "s.yaml");
    EXPECT_NO_THROW(check_question(spec, expand(spec))) << report;
  }
}

TEST(CheckQuestion, ABaselineTheGridLacksIsRefusedWithTheArms) {
  expect_refused("report: {metric: final_val_loss, baseline: {kv_heads: 4, rope: true}}\n",
                 "report.baseline",
                 "kv_heads=4 rope=true matches no arm of sweep 's'; arms: "
                 "[kv_heads=1 rope=true], [kv_heads=1 rope=false], [kv_heads=2 rope=true], "
                 "[kv_heads=2 rope=false]");
  expect_refused("report: {metric: final_val_loss, baseline: {kv_heads: 2}}\n", "report.baseline",
                 "kv_heads=2 matches 2 arms ([kv_heads=2 rope=true], [kv_heads=2 rope=false])");
}

TEST(CheckQuestion, WhereCompareAndReferenceAreCheckedAgainstTheArms) {
  expect_refused("report: {metric: final_val_loss, where: {variant: mqa}}\n", "report.where",
                 "attention.variant=mqa keeps no arm of sweep 's' (attention.variant has gqa)");
  expect_refused("report: {metric: final_val_loss, compare: model.dim}\n", "report.compare",
                 "model.dim: the report's arms have one level of it");
  expect_refused("report: {metric: final_val_loss, compare: rope, reference: maybe}\n",
                 "report.reference", "maybe: not a level of attention.rope in this report");
  // The where: applies first: inside it the compare key has one level.
  expect_refused("report: {metric: final_val_loss, compare: rope, where: {rope: true}}\n",
                 "report.compare", "one level of it (true)");
}

// An until-decided sweep of nine arms (three variants x three kv_heads) with `report` appended.
std::string until_decided_with(const std::string& seeds, const std::string& report) {
  return "name: u\n"
         "task: lm\n"
         "seeds: " +
         seeds +
         "\n"
         "grid:\n"
         "  - attention.variant: [gqa, kdgqa, dgqa]\n"
         "    attention.kv_heads: [1, 2, 4]\n" +
         report;
}

std::vector<std::string> warnings_of(const std::string& text) {
  const SweepSpec spec = parse_sweep(text, "u.yaml");
  return question_warnings(spec, expand(spec));
}

TEST(QuestionWarnings, ACapBelowTheFirstPossibleDecisionIsWarnedAbout) {
  const std::string question =
      "report: {metric: final_val_loss, baseline: {variant: gqa, kv_heads: 4}}\n";
  // 8 comparisons: the Gaussian mixture at 0.05 / 8 = 0.00625 first decides at 7 seeds
  // ((1 + n)^((n - 1) / 2) >= 160 first at n = 7: 8^3 = 512, 7^2.5 = 129.6).
  const auto w = warnings_of(until_decided_with("{min: 3, max: 6, until: decided}", question));
  ASSERT_EQ(w.size(), 1u);
  EXPECT_NE(w[0].find("u.yaml: seeds: max 6 is below the 7 seeds at which the anytime-valid test "
                      "(gaussian-mixture) of family baseline can decide anything at its level "
                      "0.00625 (8 comparisons)"),
            std::string::npos)
      << w[0];
  EXPECT_TRUE(
      warnings_of(until_decided_with("{min: 3, max: 7, until: decided}", question)).empty());
  // Fixed seeds have no stopping rule to warn about.
  EXPECT_TRUE(warnings_of(until_decided_with("3", question)).empty());
  // An accuracy is bounded: hedged betting, which needs more seeds (15 at 0.00625).
  const auto acc = warnings_of(until_decided_with(
      "{min: 3, max: 10, until: decided}",
      "report: {metric: final_val_acc, baseline: {variant: gqa, kv_heads: 4}}\n"));
  ASSERT_EQ(acc.size(), 1u);
  EXPECT_NE(acc[0].find("below the 15 seeds at which the anytime-valid test (bounded-betting)"),
            std::string::npos)
      << acc[0];
  // Each family at its own level: compare kv_heads makes 6 comparisons in 3 cells; at 0.05 / 6
  // the first decision is possible at 6 seeds (7^2.5 = 129.6 >= 120).
  EXPECT_TRUE(
      warnings_of(
          until_decided_with("{min: 3, max: 6, until: decided}",
                             "report: {metric: final_val_loss, compare: kv_heads, reference: 4}\n"))
          .empty());
  const auto compare = warnings_of(
      until_decided_with("{min: 3, max: 5, until: decided}",
                         "report: {metric: final_val_loss, compare: kv_heads, reference: 4}\n"));
  ASSERT_EQ(compare.size(), 1u);
  EXPECT_NE(compare[0].find("max 5 is below the 6 seeds at which the anytime-valid test "
                            "(gaussian-mixture) of family attention.kv_heads can decide anything "
                            "at its level "
                            "0.00833 (6 comparisons)"),
            std::string::npos)
      << compare[0];
}

TEST(CheckQuestion, BoundedBettingWithoutARangeIsRefusedForSeedsUntilDecided) {
  const SweepSpec spec =
      parse_sweep(until_decided_with("{min: 3, max: 10, until: decided}",
                                     "report: {metric: final_val_loss, method: bounded-betting}\n"),
                  "u.yaml");
  const ConfigError e = testing::thrown<ConfigError>([&] { check_question(spec, expand(spec)); },
                                                     ConfigError("", 0, 0, "", ""));
  EXPECT_EQ(e.key(), "report");
  EXPECT_EQ(e.message(),
            "method: bounded-betting needs the metric's range: final_val_loss has no known "
            "range; give bounds: [low, high]");
}

}  // namespace
}  // namespace ablate::runner
