#include "ablate/runner/plan.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "ablate/runner/canonical.h"
#include "ablate/runner/ensembles.h"
#include "ablate/runner/schema.h"

namespace ablate::runner {
namespace {

using nlohmann::json;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// Two seeds, a pretrain shared by both arms, a duplicate block and an exclude that matches nothing.
const char* const kSmall =
    "name: small\n"
    "seeds: [0, 1]\n"
    "grid:\n"
    "  - attention.variant: gqa\n"
    "    attention.kv_heads: [1, 2]\n"
    "  - attention.variant: gqa\n"
    "    attention.kv_heads: 2\n"
    "exclude:\n"
    "  - {attention.kv_heads: 4}\n"
    "stages:\n"
    "  - {name: pretrain, set: {attention.variant: mha, attention.kv_heads: 0}}\n"
    "  - {name: uptrain, from: pretrain, convert: mean_pool}\n";

TEST(PlanText, OneLinePerJobThenCountsPerBlockAndTotal) {
  const SweepSpec spec = parse_sweep(kSmall, "sweep.yaml");
  const std::vector<JobSpec> jobs = expand(spec);
  ASSERT_EQ(jobs.size(), 6u);
  const std::string& p0 = jobs[0].id;
  const std::string& p1 = jobs[2].id;
  // The grid sets attention.variant, so it is a param of the uptrain jobs (the pretrain's own set
  // overrides it there). The params column is as wide as the widest.
  const std::string none(42, ' ');
  const std::string expected =
      "sweep small (sweep.yaml): 6 jobs, 2 seeds (0 1), stages pretrain uptrain (from "
      "pretrain)\n" +
      p0 + "  pretrain  " + none + "  seed=0\n" +  //
      jobs[1].id + "  uptrain   attention.variant=gqa attention.kv_heads=1  seed=0  after=" + p0 +
      "\n" +                                       //
      p1 + "  pretrain  " + none + "  seed=1\n" +  //
      jobs[3].id + "  uptrain   attention.variant=gqa attention.kv_heads=1  seed=1  after=" + p1 +
      "\n" +  //
      jobs[4].id + "  uptrain   attention.variant=gqa attention.kv_heads=2  seed=0  after=" + p0 +
      "\n" +  //
      jobs[5].id + "  uptrain   attention.variant=gqa attention.kv_heads=2  seed=1  after=" + p1 +
      "\n" +  //
      "block 1: 2 cells x 2 seeds x 2 stages = 8 jobs; 6 distinct, 6 not in an earlier block\n"
      "block 2: 1 cell x 2 seeds x 2 stages = 4 jobs; 4 distinct, 0 not in an earlier block\n"
      "exclude 1 {attention.kv_heads: 4}: matched 0 cells\n"
      "total: 6 jobs (12 before deduplication; 6 shared)\n";
  EXPECT_EQ(plan_text(spec, jobs), expected);
}

TEST(PlanText, WithADatabaseEachJobSaysWhereItStandsThere) {
  const SweepSpec spec = parse_sweep(kSmall, "sweep.yaml");
  const std::vector<JobSpec> jobs = expand(spec);
  StoredJobs stored;
  stored.db = "my.db";
  stored.status = {{jobs[0].id, "done"},
                   {jobs[2].id, "done"},
                   {jobs[1].id, "failed"},
                   {jobs[3].id, "diverged"},
                   {jobs[4].id, "timed_out"}};
  const auto lines = lines_of(plan_text(spec, jobs, &stored));
  // The status column is as wide as the widest status; a job not in the store is new.
  EXPECT_EQ(lines[1].substr(0, 16 + 2 + 9 + 2 + 8), jobs[0].id + "  done       pretrain");
  EXPECT_EQ(lines[2].substr(16, 13), "  failed     ");
  EXPECT_EQ(lines[5].substr(16, 13), "  timed_out  ");
  EXPECT_EQ(lines[6].substr(16, 13), "  new        ");
  EXPECT_EQ(lines.back(),
            "in my.db: 2 done, 1 diverged, 1 failed, 1 timed_out, 1 new: ablate run trains 1 (and "
            "the 2 failed or timed out as its --retries and --retry-failed allow)");
  // Without a database the table is as before: no status column, no counts.
  EXPECT_EQ(plan_text(spec, jobs).find("done"), std::string::npos);
  for (const auto& job : jobs) stored.status[job.id] = "done";
  stored.not_planned = 3;
  EXPECT_EQ(lines_of(plan_text(spec, jobs, &stored)).back(),
            "in my.db: 6 done: nothing left for ablate run to train; 3 jobs of the sweep there are "
            "no longer planned (stale after ablate run, kept; ablate prune deletes them)");
  StoredJobs missing;
  missing.db = "new.db";
  missing.exists = false;
  const auto none = lines_of(plan_text(spec, jobs, &missing));
  EXPECT_EQ(none.back(), "new.db: no such database yet, so every job is new");
  EXPECT_EQ(none[1].substr(16, 7), "  new  ");
  // For programs: "status" on every job.
  const auto objects = lines_of(plan_json(spec, jobs, &stored));
  EXPECT_EQ(json::parse(objects[0]).at("status"), "done");
  EXPECT_EQ(
      json::parse(
          plan_json(spec, jobs, &missing).substr(0, plan_json(spec, jobs, &missing).find('\n')))
          .at("status"),
      "new");
  EXPECT_FALSE(json::parse(lines_of(plan_json(spec, jobs))[0]).contains("status"));
  // Seeds until decided: the jobs beyond the looks' needs are planned but may never run.
  SweepSpec until = spec;
  until.sequential.enabled = true;
  until.sequential.min = 1;
  until.sequential.max = 2;
  until.report.metric = "final_val_loss";
  stored.status.erase(jobs[5].id);
  EXPECT_NE(plan_text(until, jobs, &stored)
                .find("in my.db: 5 done, 1 new: ablate run trains up to 1 (as many as the looks "
                      "of seeds until decided ask for)"),
            std::string::npos)
      << plan_text(until, jobs, &stored);
  stored.status[jobs[5].id] = "done";
  // The processes: only for the jobs not done or diverged there.
  EXPECT_EQ(plan_processes_text(jobs, 1, &stored), "processes: none (every job is done)\n");
  stored.status[jobs[4].id] = "failed";
  stored.status.erase(jobs[5].id);
  EXPECT_EQ(plan_processes_text(jobs, 2, &stored),
            "processes: 1 for the 2 jobs not done (seeds of one arm train together, up to 2 per "
            "process)\n");
  EXPECT_EQ(plan_processes_text(jobs, 1, &missing), plan_processes_text(jobs, 1));
}

// kSmall: 2 mha pretrains (one arm), then 2 uptrain arms x 2 seeds.
TEST(PlanText, ProcessesWhenTheSeedsOfAnArmTrainTogether) {
  const std::vector<JobSpec> jobs = expand(parse_sweep(kSmall, "sweep.yaml"));
  EXPECT_EQ(plan_processes_text(jobs, 2),
            "processes: 3 (seeds of one arm train together, up to 2 per process)\n");
  EXPECT_EQ(plan_processes_text(jobs, 1), "processes: 6 (one per job)\n");
  const std::string five_seeds = [] {
    std::string text = kSmall;
    text.replace(text.find("seeds: [0, 1]"), 13,
                 "seeds: " + std::to_string(kCpuSeedsPerProcess + 1));
    return text;
  }();
  EXPECT_EQ(plan_processes_text(expand(parse_sweep(five_seeds, "sweep.yaml")), 0),
            "processes: 6 on the CPU (auto: seeds of one arm train together, up to " +
                std::to_string(kCpuSeedsPerProcess) +
                " per process; on a GPU, as many as fit its memory once a first seed alone has "
                "measured it)\n");
}

TEST(PlanText, WithoutStagesOrGrid) {
  const SweepSpec spec = parse_sweep("name: one\nseeds: 2\n", "s.yaml");
  const std::vector<JobSpec> jobs = expand(spec);
  ASSERT_EQ(jobs.size(), 2u);
  EXPECT_EQ(plan_text(spec, jobs), "sweep one (s.yaml): 2 jobs, 2 seeds (0 1)\n" + jobs[0].id +
                                       "  -  seed=0\n" + jobs[1].id +
                                       "  -  seed=1\n"
                                       "block 1: 1 cell x 2 seeds = 2 jobs; 2 distinct, 2 not in "
                                       "an earlier block\n"
                                       "total: 2 jobs (2 before deduplication; 0 shared)\n");
}

TEST(PlanText, ExcludedCellsAreCounted) {
  const SweepSpec spec = parse_sweep(
      "name: x\ngrid:\n  - attention.variant: [gqa, kdgqa]\n    attention.kv_heads: [1, 2]\n"
      "exclude:\n  - {attention.variant: kdgqa, attention.kv_heads: 1}\n",
      "x.yaml");
  const std::string text = plan_text(spec, expand(spec));
  EXPECT_NE(text.find("  -  attention.variant=kdgqa attention.kv_heads=2  seed=0\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("\nblock 1: 4 cells (1 excluded) x 1 seed = 3 jobs; 3 distinct, 3 not in an "
                      "earlier block\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("\nexclude 1 {attention.variant: kdgqa, attention.kv_heads: 1}: matched 1 "
                      "cell\n"),
            std::string::npos)
      << text;
}

TEST(PlanJson, OneObjectPerLinePerJob) {
  const SweepSpec spec = parse_sweep(kSmall, "sweep.yaml");
  const std::vector<JobSpec> jobs = expand(spec);
  const std::vector<std::string> lines = lines_of(plan_json(spec, jobs));
  ASSERT_EQ(lines.size(), jobs.size());
  for (size_t i = 0; i < jobs.size(); ++i) {
    const JobSpec& job = jobs[i];
    EXPECT_EQ(lines[i].rfind("{\"id\":\"" + job.id + "\",\"stage\":", 0), 0u) << lines[i];
    const json o = json::parse(lines[i]);
    EXPECT_EQ(o.size(), 8u);
    EXPECT_EQ(o["id"], job.id);
    EXPECT_EQ(o["stage"], job.stage);
    EXPECT_EQ(o["arm"], job.arm_key);
    EXPECT_EQ(o["seed"], job.seed);
    EXPECT_EQ(o["depends_on"],
              job.parent_id.empty() ? json::array() : json::array({job.parent_id}));
    EXPECT_EQ(o["blocks"].get<std::vector<int>>(), job.blocks);
    // The config is complete and typed: read back as a config file it is the job's config (with
    // a parent's run dir filled in, as the executor does).
    json config = o["config"];
    Config expected = job.config;
    if (!job.parent_id.empty()) {
      config["init"]["from"] = "runs/parent";
      expected.init.from = "runs/parent";
    }
    EXPECT_TRUE(parse_config(config.dump(), "json") == expected) << config.dump();
  }
  const json pretrain = json::parse(lines[0]);
  EXPECT_EQ(pretrain["params"], json::object());
  EXPECT_EQ(pretrain["blocks"], json::array({1, 2}));  // block 2's cell shares it
  EXPECT_EQ(pretrain["config"]["attention"]["variant"], "mha");
  const json uptrain = json::parse(lines[1]);
  EXPECT_EQ(uptrain["params"],
            json::parse(R"({"attention.variant": "gqa", "attention.kv_heads": 1})"));
  // In schema order, as JobSpec::params.
  EXPECT_NE(lines[1].find(R"("params":{"attention.variant":"gqa","attention.kv_heads":1})"),
            std::string::npos)
      << lines[1];
  EXPECT_EQ(uptrain["depends_on"], json::array({jobs[0].id}));
  EXPECT_EQ(uptrain["config"]["init"]["convert"], "mean_pool");
  EXPECT_EQ(uptrain["config"]["init"]["from"], "");
}

TEST(PlanJson, ParamsAreTypedAndAJobWithoutStageHasNull) {
  const SweepSpec spec = parse_sweep(
      "name: t\ntask: vit\nbase: {data.dataset: fashion-mnist}\ngrid:\n"
      "  - {train.lr: [1.0e-3, 2.0e-3], attention.qk_norm: [true, false], attention.variant: "
      "mqa}\n",
      "t.yaml");
  const std::vector<JobSpec> jobs = expand(spec);
  const std::vector<std::string> lines = lines_of(plan_json(spec, jobs));
  ASSERT_EQ(lines.size(), 4u);
  const json o = json::parse(lines[1]);
  EXPECT_TRUE(o["stage"].is_null());
  EXPECT_EQ(o["params"], json::parse(R"({"attention.variant": "mqa", "attention.qk_norm": false,
                                        "train.lr": 0.001})"));
  EXPECT_TRUE(o["params"]["train.lr"].is_number_float());
  EXPECT_TRUE(o["config"]["model"]["patch"].is_number_integer());
  EXPECT_EQ(o["config"]["task"], "vit");
  // Fields of the other task are left out, as in to_yaml.
  EXPECT_FALSE(o["config"]["data"].contains("seq_len"));
  size_t fields = 0;
  for (const auto& [section, value] : o["config"].items())
    fields += value.is_object() ? value.size() : 1;
  size_t expected = 0;
  for (const auto& f : schema()) expected += f.applies_to("vit") ? 1 : 0;
  EXPECT_EQ(fields, expected);
}

TEST(PlanText, TheDesignExampleTotals) {
  const SweepSpec spec = parse_sweep(
      "name: kdgqa-vit\ntask: vit\nbase:\n  data: {dataset: fashion-mnist}\n"
      "  model: {dim: 192, depth: 6, heads: 6, patch: 4}\n"
      "  attention: {variant: gqa, kv_heads: 3}\n"
      "  train: {steps: 2000, batch_size: 128, lr: 1.0e-3, warmup: 100, eval_every: 200}\n"
      "seeds: 5\ngrid:\n"
      "  - attention.variant: [gqa, kdgqa]\n    attention.kv_heads: [1, 2, 3]\n"
      "  - attention.variant: dgqa\n    attention.kv_heads: [2, 3]\n"
      "    attention.ema_window: [100, 300, 500]\n"
      "  - attention.variant: pgqa\n    attention.noise_scale: [0.01, 0.1, 1.0]\n"
      "    zip: {train.lr: [1.0e-3, 5.0e-4, 5.0e-4], train.warmup: [100, 200, 200]}\n"
      "exclude:\n  - {attention.variant: kdgqa, attention.kv_heads: 1}\n"
      "stages:\n  - {name: pretrain, set: {attention.variant: mha, train.steps: 1000}}\n"
      "  - {name: uptrain, from: pretrain, convert: mean_pool, set: {train.steps: 300}}\n",
      "sweep.yaml");
  const std::vector<JobSpec> jobs = expand(spec);
  const std::vector<std::string> lines = lines_of(plan_text(spec, jobs));
  ASSERT_EQ(lines.size(), 1 + 95 + 3 + 1 + 1u);
  EXPECT_EQ(lines.back(), "total: 95 jobs (200 before deduplication; 105 shared)");
  EXPECT_EQ(lines[96],
            "block 1: 6 cells (1 excluded) x 5 seeds x 2 stages = 50 jobs; 30 distinct, 30 not "
            "in an earlier block");
  EXPECT_EQ(lines_of(plan_json(spec, jobs)).size(), 95u);
}

// A robust dgqa whose window is not below the run's steps never reallocates: warned once per arm,
// and only for it (faithful dgqa reallocates at step 0; a shorter window reallocates).
TEST(PlanWarnings, RobustDgqaThatNeverReallocates) {
  const SweepSpec spec = parse_sweep(
      "name: w\n"
      "task: lm\n"
      "seeds: [0, 1]\n"
      "base: {train.steps: 40}\n"
      "grid:\n"
      "  - attention.variant: gqa\n"
      "    attention.kv_heads: 2\n"
      "  - attention.variant: dgqa\n"
      "    attention.kv_heads: 2\n"
      "    attention.ema_window: [10, 40, 100]\n"
      "  - attention.variant: dgqa\n"
      "    attention.kv_heads: 2\n"
      "    attention.faithful: true\n"
      "    attention.allow_noncausal: true\n",
      "w.yaml");
  const auto warnings = plan_warnings(spec, expand(spec));
  ASSERT_EQ(warnings.size(), 2u);  // windows 40 and 100, each once for its two seeds
  EXPECT_NE(warnings[0].find("w.yaml: arm "), std::string::npos) << warnings[0];
  EXPECT_NE(warnings[0].find("attention.ema_window=40"), std::string::npos) << warnings[0];
  EXPECT_NE(warnings[0].find("attention.ema_window 40 >= train.steps 40"), std::string::npos);
  EXPECT_NE(warnings[0].find("train exactly as gqa"), std::string::npos);
  EXPECT_NE(warnings[1].find("attention.ema_window 100 >= train.steps 40"), std::string::npos);
  EXPECT_TRUE(
      plan_warnings(parse_sweep(kSmall, "sweep.yaml"), expand(parse_sweep(kSmall, "sweep.yaml")))
          .empty());
}

}  // namespace
}  // namespace ablate::runner
