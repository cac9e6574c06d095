// Seeds until decided: the sweep file's `seeds: {until: decided}` and `report:`, the pure rules
// of the coordinator's rounds, and whole runs with a scripted executor.
#include "ablate/runner/until_decided.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>

#include "ablate/results/decision_log.h"
#include "ablate/testing/errors.h"
#include "ablate/testing/temp_dir.h"

namespace ablate::runner {
namespace {
namespace fs = std::filesystem;
using ablate::testing::TempDir;

ConfigError error_of(const std::string& yaml) {
  return testing::thrown<ConfigError>([&] { parse_sweep(yaml, "s.yaml"); },
                                      ConfigError("", 0, 0, "", ""));
}

void expect_error(const ConfigError& e, int line, const std::string& key,
                  const std::string& message) {
  EXPECT_EQ(e.line(), line) << e.what();
  EXPECT_EQ(e.key(), key) << e.what();
  EXPECT_NE(e.message().find(message), std::string::npos) << e.message() << "\nwanted: " << message;
}

const char* const kQuestion =
    "report:\n"
    "  metric: final_val_loss\n"
    "  baseline: {attention.variant: mha}\n"
    "  direction: lower\n"
    "  alpha: 0.1\n"
    "  correction: bh\n"
    "  equivalence_margin: 0.01\n"
    "  bounds: [0, 10]\n";

TEST(UntilDecidedParse, SeedsMappingAndReportBlock) {
  const std::string text = std::string("name: s\ntask: lm\n") +
                           "seeds: {min: 3, max: 6, step: 2, until: decided}\n"
                           "grid:\n  - attention.variant: [mha, mqa]\n" +
                           kQuestion;
  const SweepSpec spec = parse_sweep(text, "s.yaml");
  EXPECT_TRUE(spec.sequential.enabled);
  EXPECT_EQ(spec.sequential.min, 3);
  EXPECT_EQ(spec.sequential.max, 6);
  EXPECT_EQ(spec.sequential.step, 2);
  EXPECT_EQ(spec.sequential.at.line, 3);
  EXPECT_EQ(spec.seeds, (std::vector<int64_t>{0, 1, 2, 3, 4, 5}));
  const ReportQuestion& q = spec.report;
  EXPECT_TRUE(q.given);
  EXPECT_EQ(q.metric, "final_val_loss");
  ASSERT_EQ(q.baseline.size(), 1u);
  EXPECT_EQ(q.baseline[0].first, "attention.variant");
  EXPECT_EQ(q.baseline[0].second, "mha");
  EXPECT_EQ(q.direction, "lower");
  EXPECT_DOUBLE_EQ(q.alpha, 0.1);
  EXPECT_EQ(q.correction, "bh");
  EXPECT_DOUBLE_EQ(q.equivalence_margin, 0.01);
  EXPECT_TRUE(q.has_bounds);
  EXPECT_DOUBLE_EQ(q.upper, 10);
  EXPECT_EQ(q.at.line, 6);
  // Every seed an arm may run is expanded; the rounds choose among them.
  EXPECT_EQ(expand(spec).size(), 12u);
  // The report's options: the question with the stopping rule's Bonferroni over e-values.
  const results::ReportOptions o = question_options(spec);
  EXPECT_TRUE(o.sequential);
  EXPECT_EQ(o.metric, "final_val_loss");
  EXPECT_EQ(o.lower_is_better, std::optional<bool>(true));
  EXPECT_EQ(o.correction, results::stats::Correction::kBonferroni);
  EXPECT_DOUBLE_EQ(o.equivalence_margin, 0.01);
  ASSERT_TRUE(o.bounds.has_value());
  EXPECT_DOUBLE_EQ(o.bounds->second, 10);
  // A fixed sweep keeps its seeds and has no rule.
  const SweepSpec fixed = parse_sweep("name: f\nseeds: 2\n", "f.yaml");
  EXPECT_FALSE(fixed.sequential.enabled);
  EXPECT_FALSE(fixed.report.given);
}

TEST(UntilDecidedParse, MistakesNameTheLineAndKey) {
  const std::string report = "report: {metric: final_val_loss}\n";
  expect_error(error_of("name: s\nseeds: {min: 3, max: 9}\n" + report), 2, "seeds",
               "needs until: decided");
  expect_error(error_of("name: s\nseeds: {max: 9, until: forever}\n" + report), 2, "seeds.until",
               "expected decided");
  expect_error(error_of("name: s\nseeds: {min: 5, max: 4, until: decided}\n" + report), 2, "seeds",
               "min (5) is larger than max (4)");
  expect_error(error_of("name: s\nseeds: {min: 1, until: decided}\n" + report), 2, "seeds.min",
               "expected a whole number >= 2");
  expect_error(error_of("name: s\nseeds: {mx: 9, until: decided}\n" + report), 2, "seeds.mx",
               "did you mean max?");
  expect_error(error_of("name: s\nseeds: {until: decided}\n"), 2, "seeds", "needs a report: block");
  expect_error(error_of("name: s\nreport: {baseline: {attention.variant: mha}}\n"), 2,
               "report.metric", "missing");
  expect_error(error_of("name: s\nreport: {metric: m, metrc: n}\n"), 2, "report.metrc",
               "did you mean metric?");
  expect_error(error_of("name: s\nreport: {metric: m, direction: down}\n"), 2, "report.direction",
               "expected lower or higher");
  expect_error(error_of("name: s\nreport: {metric: m, alpha: 1.5}\n"), 2, "report.alpha",
               "must be in [1e-9, 1)");
  expect_error(error_of("name: s\nreport: {metric: m, bounds: [1, 0]}\n"), 2, "report.bounds",
               "low must be below high");
  expect_error(error_of("name: s\nreport: {metric: m, correction: fdr}\n"), 2, "report.correction",
               "expected holm, bonferroni, bh or none");
  expect_error(error_of("name: s\nreport:\n  metric: m\n  baseline: {attention.varient: mha}\n"), 4,
               "report.baseline.attention.varient", "did you mean attention.variant?");
  expect_error(error_of("name: s\nreport: {metric: m, reference: '2'}\n"), 2, "report.reference",
               "needs compare:");
  // The view's column names and a key's ending name config keys too, as in ablate report.
  EXPECT_NO_THROW(parse_sweep(
      "name: s\nreport: {metric: m, compare: [kv_heads], where: {attention_variant: gqa}}\n",
      "s.yaml"));
}

TEST(UntilDecidedParse, CommandLineRuleContinuesTheFilesSeeds) {
  SweepSpec spec = parse_sweep("name: s\nseeds: [5, 2]\nreport: {metric: m}\n", "s.yaml");
  until_decided_from_command_line(spec, 5);
  EXPECT_TRUE(spec.sequential.enabled);
  EXPECT_EQ(spec.sequential.min, 2);
  EXPECT_EQ(spec.sequential.max, 5);
  EXPECT_EQ(spec.seeds, (std::vector<int64_t>{5, 2, 0, 1, 3}));
  SweepSpec low = parse_sweep("name: s\nseeds: 4\nreport: {metric: m}\n", "s.yaml");
  EXPECT_THROW(until_decided_from_command_line(low, 3), ConfigError);
  SweepSpec no_question = parse_sweep("name: s\nseeds: 4\n", "s.yaml");
  EXPECT_THROW(until_decided_from_command_line(no_question, 9), ConfigError);
}

LookComparison comparison(const std::string& arm, const std::string& reference, bool decided) {
  LookComparison c;
  c.row.arm_key = arm;
  c.row.reference_arm_key = reference;
  c.decided = decided;
  c.row.decided = decided;
  return c;
}

// seeds: {min, max, step, until: decided}
SequentialSeeds until_decided(int64_t min, int64_t max, int64_t step) {
  SequentialSeeds rule;
  rule.enabled = true;
  rule.min = min;
  rule.max = max;
  rule.step = step;
  return rule;
}

TEST(UntilDecidedRule, UndecidedArmsGrowAndReferencesFollow) {
  const SequentialSeeds rule = until_decided(3, 6, 2);
  const SeedCounts now{{"A", 3}, {"B", 3}, {"C", 3}};
  const std::vector<LookComparison> looks{comparison("B", "A", false), comparison("C", "A", true)};
  const SeedCounts next = next_seed_counts(now, looks, rule);
  EXPECT_EQ(next, (SeedCounts{{"A", 5}, {"B", 5}, {"C", 3}}));
  EXPECT_EQ(look_action(looks[0], now, next, rule), "add 2 seeds");
  EXPECT_EQ(look_action(looks[1], now, next, rule), "stop: decided");
  // The cap: 5 + 2 is cut to 6; at 6 nothing grows and the round is the last.
  const SeedCounts capped = next_seed_counts(next, looks, rule);
  EXPECT_EQ(capped, (SeedCounts{{"A", 6}, {"B", 6}, {"C", 3}}));
  EXPECT_EQ(look_action(looks[0], next, capped, rule), "add 1 seed");
  EXPECT_EQ(next_seed_counts(capped, looks, rule), capped);
  EXPECT_EQ(look_action(looks[0], capped, capped, rule), "stop: 6 seeds, the most");
  // A chain: D is compared with B, B with A; D undecided pulls B and then A up.
  const std::vector<LookComparison> chain{comparison("B", "A", true), comparison("D", "B", false)};
  const SeedCounts pulled = next_seed_counts({{"A", 3}, {"B", 3}, {"D", 3}}, chain, rule);
  EXPECT_EQ(pulled, (SeedCounts{{"A", 5}, {"B", 5}, {"D", 5}}));
}

// 12 comparisons at 0.05 / 12: the Gaussian mixture cannot decide before 7 seeds, whatever the
// data, so a cap of 6 gives such a comparison nothing but wasted jobs.
TEST(UntilDecidedRule, AComparisonThatCannotDecideWithinTheCapGetsNoSeeds) {
  const SequentialSeeds rule = until_decided(4, 6, 2);
  const SeedCounts now{{"A", 4}, {"B", 4}, {"C", 4}};
  LookComparison hopeless = comparison("B", "A", false);
  hopeless.first_possible = 7;
  hopeless.row.level = 0.05 / 12;
  LookComparison possible = comparison("C", "A", false);
  possible.first_possible = 6;
  const std::vector<LookComparison> looks{hopeless, possible};
  const SeedCounts next = next_seed_counts(now, looks, rule);
  EXPECT_EQ(next, (SeedCounts{{"A", 6}, {"B", 4}, {"C", 6}}));
  EXPECT_EQ(look_action(hopeless, now, next, rule),
            "stop: cannot decide within 6 seeds (its test needs 7 seeds at level 0.004167; raise "
            "seeds: max)");
  EXPECT_EQ(look_action(possible, now, next, rule), "add 2 seeds");
  // Unknown (-1) is no reason to stop.
  LookComparison unknown = comparison("B", "A", false);
  EXPECT_EQ(next_seed_counts(now, {unknown}, rule), (SeedCounts{{"A", 6}, {"B", 6}, {"C", 4}}));
}

const char* const kStaged =
    "name: staged\n"
    "task: lm\n"
    "base: {model: {dim: 32, depth: 1, heads: 4}, train: {steps: 10, warmup: 1}}\n"
    "seeds: {min: 2, max: 4, until: decided}\n"
    "grid:\n  - attention.variant: gqa\n    attention.kv_heads: [1, 2]\n"
    "stages:\n"
    "  - {name: pretrain, set: {attention.variant: mha}}\n"
    "  - {name: uptrain, from: pretrain, convert: mean_pool}\n"
    "report: {metric: final_val_loss, where: {stage: uptrain}}\n";

TEST(UntilDecidedRule, PlannedJobsTakeEachArmsFirstSeedsWithTheirParents) {
  const SweepSpec spec = parse_sweep(kStaged, "s.yaml");
  const std::vector<JobSpec> all = expand(spec);
  ASSERT_EQ(all.size(), 12u);  // 4 pretrain + 2 arms x 4 seeds
  std::string kv1, kv2;
  for (const auto& j : all) {
    if (j.stage == "uptrain") (j.config.attention.kv_heads == 1 ? kv1 : kv2) = j.arm_key;
  }
  // kv 1 at 2 seeds, kv 2 at 4: the pretrain arm runs its first 2 seeds and the parents of kv 2.
  const auto plan = planned_jobs(spec, all, {{kv1, 2}, {kv2, 4}});
  std::map<std::string, std::vector<int64_t>> seeds;
  for (const auto& j : plan) {
    seeds[j.stage == "pretrain" ? "pretrain" : j.arm_key == kv1 ? "kv1" : "kv2"].push_back(j.seed);
  }
  EXPECT_EQ(seeds["pretrain"], (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(seeds["kv1"], (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(seeds["kv2"], (std::vector<int64_t>{0, 1, 2, 3}));
  // A parent is always planned before its child (the order of `all`).
  for (size_t i = 0; i < plan.size(); ++i) {
    if (plan[i].parent_id.empty()) continue;
    bool before = false;
    for (size_t k = 0; k < i; ++k) before = before || plan[k].id == plan[i].parent_id;
    EXPECT_TRUE(before) << plan[i].id;
  }
  // Arms without a count run the rule's min.
  EXPECT_EQ(planned_jobs(spec, all, {}).size(), 6u);
}

// A scripted executor: each job finishes at once with final val_loss = value(job).
class ValueExecutor : public Executor {
 public:
  std::function<double(const std::string& job_id)> value;
  std::vector<std::string> trained;
  std::vector<size_t> members;  // per process started: the seeds it trains

  std::string start(const Launch& launch) override {
    members.push_back(members_of(launch).size());
    running_.push_back(launch);
    return "";
  }
  std::vector<Exit> poll(double) override {
    if (running_.empty()) return {};
    Launch l = running_.front();
    running_.erase(running_.begin());
    Exit e;
    e.job_id = l.job_id;
    e.members = l.members;
    for (const auto& m : members_of(l)) {
      trained.push_back(m.job_id);
      std::ofstream(fs::path(m.run_dir) / "summary.json")
          << "{\"status\": \"done\", \"final\": {\"val_loss\": " << value(m.job_id)
          << "}, \"best\": {}}\n";
    }
    return {e};
  }
  std::vector<Exit> stop_all(double) override {
    running_.clear();
    return {};
  }
  size_t running() const override { return running_.size(); }

 private:
  std::vector<Launch> running_;
};

const char* const kThreeArms =
    "name: three\n"
    "task: lm\n"
    "base: {model: {dim: 32, depth: 1, heads: 4}, train: {steps: 10, warmup: 1}}\n"
    "seeds: {min: 3, max: 12, step: 1, until: decided}\n"
    "grid:\n  - attention.variant: mha\n  - attention.variant: gqa\n"
    "    attention.kv_heads: [1, 2]\n"
    "report: {metric: final_val_loss, baseline: {attention.variant: mha}}\n";

struct Sweep3 {
  TempDir tmp;
  SweepSpec sweep = parse_sweep(kThreeArms, "three.yaml");
  std::vector<JobSpec> jobs = expand(sweep);
  results::Store store{(tmp.path() / "ablate.db").string()};
  RunOptions options;
  ValueExecutor executor;
  std::map<std::string, const JobSpec*> by_id;

  Sweep3() {
    options.workdir = (tmp.path() / "runs").string();
    options.ablate_binary = "/bin/false";  // never executed by the fake
    options.progress = false;
    options.seeds_per_process = 1;
    for (const auto& j : jobs) by_id[j.id] = &j;
    // mha: 2.0 + noise; kv 1: clearly worse (+0.5); kv 2: the same model as mha (+0).
    executor.value = [this](const std::string& id) {
      const JobSpec& j = *by_id.at(id);
      // Independent noise per arm and seed (a shared seed does not make two models equal).
      std::mt19937_64 gen(static_cast<uint64_t>(j.seed) * 7919 +
                          static_cast<uint64_t>(j.config.attention.kv_heads) * 104729 + 17);
      const double noise = std::normal_distribution<double>(0.0, 0.05)(gen);
      const double shift = j.config.attention.variant == "mha" ? 0.0
                           : j.config.attention.kv_heads == 1  ? 0.5
                                                               : 0.0;
      return 2.0 + shift + noise;
    };
  }
  std::map<int64_t, int64_t> seeds_of(int kv_heads, const std::string& variant) {
    std::map<int64_t, int64_t> seeds;  // seed -> 1 for every registered job of the arm
    for (const auto& row : store.jobs(sweep.name)) {
      const JobSpec& j = *by_id.at(row.id);
      if (j.config.attention.variant == variant &&
          (variant == "mha" || j.config.attention.kv_heads == kv_heads)) {
        seeds[row.seed] = 1;
      }
    }
    return seeds;
  }
};

TEST(UntilDecidedRun, ADifferenceStopsEarlyANullRunsToTheCapAndARerunAddsNothing) {
  Sweep3 r;
  std::vector<LookReport> looks;
  const RunSummary summary =
      run_until_decided(r.sweep, r.jobs, r.store, r.executor, r.options, nullptr,
                        [&](const LookReport& l) { looks.push_back(l); });
  // kv 1 differs by 10 standard deviations: the Gaussian mixture decides at its first possible
  // look at K = 2 (alpha / K = 0.025): 6 seeds. kv 2 equals mha seed by seed: never decided, so it
  // and its reference run all 12.
  EXPECT_EQ(r.seeds_of(1, "gqa").size(), 6u);
  EXPECT_EQ(r.seeds_of(2, "gqa").size(), 12u);
  EXPECT_EQ(r.seeds_of(0, "mha").size(), 12u);
  EXPECT_EQ(summary.counts.at("done"), 30);
  EXPECT_EQ(r.executor.trained.size(), 30u);
  ASSERT_EQ(looks.size(), 10u);  // after 3, 4, ..., 12 seeds
  const auto log = results::sequential_looks(r.store, "three");
  ASSERT_EQ(log.size(), 20u);  // two comparisons per look
  // The look at which kv 1 was decided, and what it did.
  int64_t decided_at = -1;
  for (const auto& row : log) {
    if (row.arm_label.find("kv_heads=1") != std::string::npos && row.decided && decided_at < 0) {
      decided_at = row.seeds;
      EXPECT_EQ(row.action, "stop: decided");
      EXPECT_GT(row.cs_low, 0);  // kv 1 minus mha: +0.5, inside a CS that excludes 0
      EXPECT_LT(row.cs_low, 0.5);
      EXPECT_GT(row.cs_high, 0.5);
      EXPECT_GE(row.e_value, 2 / 0.05);
      EXPECT_DOUBLE_EQ(row.level, 0.025);
    }
  }
  EXPECT_EQ(decided_at, 6);
  const auto last = results::last_sequential_look(r.store, "three");
  ASSERT_EQ(last.size(), 2u);
  EXPECT_EQ(last[0].look, 10);
  for (const auto& row : last) {
    if (row.arm_label.find("kv_heads=2") != std::string::npos) {
      EXPECT_FALSE(row.decided);
      EXPECT_EQ(row.seeds, 12);
      EXPECT_EQ(row.action, "stop: 12 seeds, the most");
      EXPECT_LT(row.cs_low, 0);
      EXPECT_GT(row.cs_high, 0);
    }
  }
  // Again: nothing to train, no new look in the log.
  const size_t trained = r.executor.trained.size();
  run_until_decided(r.sweep, r.jobs, r.store, r.executor, r.options);
  EXPECT_EQ(r.executor.trained.size(), trained);
  EXPECT_EQ(results::sequential_looks(r.store, "three").size(), 20u);
}

// A cap below the first look that can decide (6 seeds at 0.05 / 2) trains nothing past the
// first round, and the log says why, not "add 1 seed" up to the cap.
TEST(UntilDecidedRun, ACapTooLowToDecideStopsAtTheFirstLookAndSaysWhy) {
  Sweep3 r;
  r.sweep.sequential.max = 5;
  run_until_decided(r.sweep, r.jobs, r.store, r.executor, r.options);
  EXPECT_EQ(r.executor.trained.size(), 9u);  // 3 arms x the first 3 seeds
  const auto log = results::sequential_looks(r.store, "three");
  ASSERT_EQ(log.size(), 2u);
  for (const auto& row : log) {
    EXPECT_EQ(row.action,
              "stop: cannot decide within 5 seeds (its test needs 6 seeds at level 0.025; raise "
              "seeds: max)");
  }
}

TEST(UntilDecidedRun, AnInterruptedRoundResumesFromTheDatabase) {
  Sweep3 r;
  // Stop after the first round's look: the state is the registered jobs.
  std::atomic<bool> stop{false};
  int looks = 0;
  run_until_decided(r.sweep, r.jobs, r.store, r.executor, r.options, &stop, [&](const LookReport&) {
    if (++looks == 2) stop = true;
  });
  EXPECT_EQ(looks, 2);
  // A fresh coordinator carries on to the same end as one uninterrupted run.
  run_until_decided(r.sweep, r.jobs, r.store, r.executor, r.options);
  EXPECT_EQ(r.seeds_of(1, "gqa").size(), 6u);
  EXPECT_EQ(r.seeds_of(2, "gqa").size(), 12u);
  EXPECT_EQ(r.executor.trained.size(), 30u);  // no job trained twice
  EXPECT_EQ(results::last_sequential_look(r.store, "three").front().look, 10);
}

// A round's new seeds of an arm are ready together, so they train together (ensembles).
TEST(UntilDecidedRun, ARoundsNewSeedsOfAnArmTrainTogether) {
  Sweep3 r;
  r.sweep.sequential.step = 2;
  r.options.seeds_per_process = 2;
  run_until_decided(r.sweep, r.jobs, r.store, r.executor, r.options);
  // kv 1 decided at the first look that can (6 seeds: 3, then 5, then 7 > 6: the look at 7
  // seeds); kv 2 and mha go on to the cap of 12, 2 seeds a round after the first 3.
  EXPECT_EQ(r.seeds_of(1, "gqa").size(), 7u);
  EXPECT_EQ(r.seeds_of(2, "gqa").size(), 12u);
  EXPECT_EQ(r.executor.trained.size(), 31u);  // every job once
  // Round 1: 3 seeds per arm as 2 + 1; every later round: 2 seeds of an arm in one process, but
  // the cap's last seed (11 + 1 = 12) alone.
  size_t pairs = 0;
  for (size_t m : r.executor.members) pairs += m == 2 ? 1 : 0;
  EXPECT_GE(pairs, 3u + 2u * 4u);
  EXPECT_LT(r.executor.members.size(), r.executor.trained.size());
}

}  // namespace
}  // namespace ablate::runner
