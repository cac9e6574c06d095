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

}  // namespace
}  // namespace ablate::runner
