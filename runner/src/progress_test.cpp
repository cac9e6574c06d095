#include "ablate/runner/progress.h"

#include <gtest/gtest.h>

#include <sstream>

#include "ablate/results/store.h"
#include "ablate/runner/sweep.h"
#include "ablate/testing/temp_dir.h"

namespace ablate::runner {
namespace {

using ablate::testing::TempDir;
using State = JobSteps::State;

const char* kGrid =
    "name: grid\n"
    "task: lm\n"
    "base: {model: {dim: 32, depth: 1, heads: 4}, train: {steps: 100, warmup: 1}}\n"
    "seeds: 2\n"
    "grid:\n"
    "  - attention.variant: gqa\n    attention.kv_heads: [1, 2]\n"
    "  - attention.variant: dgqa\n    attention.kv_heads: 2\n";

TEST(ArmNames, ShortNamesUnlessTwoKeysEndAlike) {
  const auto names = short_key_names({"attention.kv_heads", "model.dim", "attention.dim", "seed"});
  EXPECT_EQ(names.at("attention.kv_heads"), "kv_heads");
  EXPECT_EQ(names.at("model.dim"), "model.dim");
  EXPECT_EQ(names.at("attention.dim"), "attention.dim");
  EXPECT_EQ(names.at("seed"), "seed");
}

TEST(ArmNames, StageThenParamsOrBase) {
  const std::map<std::string, std::string> names{{"attention.kv_heads", "kv_heads"}};
  EXPECT_EQ(arm_label("uptrain", {{"attention.kv_heads", "2"}}, names), "uptrain kv_heads=2");
  EXPECT_EQ(arm_label("", {{"attention.kv_heads", "2"}, {"train.lr", "0.001"}}, names),
            "kv_heads=2 train.lr=0.001");
  EXPECT_EQ(arm_label("pretrain", {}, names), "pretrain");
  EXPECT_EQ(arm_label("", {}, names), "(base)");
}

TEST(ArmNames, FromThePlansVaryingKeys) {
  const auto jobs = expand(parse_sweep(kGrid, "grid.yaml"));
  ASSERT_EQ(jobs.size(), 6u);
  const auto labels = arm_labels(jobs);
  // The keys `ablate plan` shows, in its (schema) order, by their short names; seeds share one.
  EXPECT_EQ(labels.at(jobs[0].id), "variant=gqa kv_heads=1");
  EXPECT_EQ(labels.at(jobs[1].id), "variant=gqa kv_heads=1");
  EXPECT_EQ(labels.at(jobs[2].id), "variant=gqa kv_heads=2");
  EXPECT_EQ(labels.at(jobs[4].id), "variant=dgqa kv_heads=2");
  // Only keys that differ name an arm: not a grid key with one value, nor the kv_heads `ablate
  // plan` shows for an mha pretrain shared by both arms.
  const auto staged = expand(
      parse_sweep("name: staged\ntask: lm\nbase: {model: {dim: 32, depth: 1, heads: 4}}\nseeds: 2\n"
                  "grid:\n  - attention.variant: gqa\n    attention.kv_heads: [1, 2]\n"
                  "stages:\n  - {name: pretrain, set: {attention.variant: mha}}\n"
                  "  - {name: uptrain, from: pretrain, convert: mean_pool}\n",
                  "staged.yaml"));
  std::set<std::string> names;
  for (const auto& [id, label] : arm_labels(staged)) names.insert(label);
  EXPECT_EQ(names, (std::set<std::string>{"pretrain", "uptrain kv_heads=1", "uptrain kv_heads=2"}));
  // A sweep without a grid is one arm.
  const auto base = expand(parse_sweep(
      "name: one\ntask: lm\nbase: {model: {dim: 32, depth: 1, heads: 4}}\nseeds: 2\n", "one.yaml"));
  EXPECT_EQ(arm_labels(base).at(base[1].id), "(base)");
}

TEST(ArmNames, VaryingParamsOfStoredJobsPerStageInSchemaOrder) {
  // As the store keeps them: every field, sorted by key.
  const Params a{{"attention.kv_heads", "1"},
                 {"attention.variant", "gqa"},
                 {"init.from", "/r/1"},
                 {"seed", "0"},
                 {"train.lr", "0.001"}};
  const Params b{{"attention.kv_heads", "2"},
                 {"attention.variant", "dgqa"},
                 {"init.from", "/r/2"},
                 {"seed", "1"},
                 {"train.lr", "0.001"}};
  const Params p{{"attention.kv_heads", "0"}, {"attention.variant", "mha"}, {"seed", "0"}};
  const auto v = varying_params({"up", "up", "pre"}, {a, b, p});
  ASSERT_EQ(v.size(), 3u);
  // Neither the seed nor init.from (a parent's run dir) names an arm; train.lr does not vary;
  // attention.variant comes first, as in the schema (and `ablate plan`), though it sorts after.
  EXPECT_EQ(v[0], (Params{{"attention.variant", "gqa"}, {"attention.kv_heads", "1"}}));
  EXPECT_EQ(v[1], (Params{{"attention.variant", "dgqa"}, {"attention.kv_heads", "2"}}));
  EXPECT_EQ(v[2], Params{});  // the only job of its stage

  // A key a job's variant ignores neither names it nor makes others vary: gqa and mqa keep the
  // default noise_scale the pgqa arms vary, and mqa a kv_heads it does not use.
  const auto arm = [](const char* variant, const char* kv, const char* noise) {
    return Params{{"attention.faithful", "false"},
                  {"attention.kv_heads", kv},
                  {"attention.noise_scale", noise},
                  {"attention.variant", variant}};
  };
  const auto w =
      varying_params({"", "", "", ""}, {arm("gqa", "2", "1.0"), arm("mqa", "2", "1.0"),
                                        arm("pgqa", "2", "0.1"), arm("pgqa", "2", "1.0")});
  EXPECT_EQ(w[0], (Params{{"attention.variant", "gqa"}}));
  EXPECT_EQ(w[1], (Params{{"attention.variant", "mqa"}}));
  EXPECT_EQ(w[2], (Params{{"attention.variant", "pgqa"}, {"attention.noise_scale", "0.1"}}));
  EXPECT_EQ(w[3], (Params{{"attention.variant", "pgqa"}, {"attention.noise_scale", "1.0"}}));
}

TEST(MainMetric, TestAccuracyThenValidationLoss) {
  EXPECT_EQ(main_metric({{"final_test_acc", 0.5}, {"final_test_loss", 1.0}})->name,
            "final_test_acc");
  const auto lm = main_metric({{"final_val_loss", 2.5}, {"final_val_ppl", 12.0}});
  ASSERT_TRUE(lm);
  EXPECT_EQ(lm->name, "final_val_loss");
  EXPECT_DOUBLE_EQ(lm->value, 2.5);
  EXPECT_FALSE(main_metric({{"wall_time_s", 3.0}}));
}

TEST(Formats, Durations) {
  EXPECT_EQ(format_duration(0), "0 s");
  EXPECT_EQ(format_duration(-3), "0 s");
  EXPECT_EQ(format_duration(44.4), "44 s");
  EXPECT_EQ(format_duration(59.6), "1 min 0 s");
  EXPECT_EQ(format_duration(250), "4 min 10 s");
  EXPECT_EQ(format_duration(7500), "2 h 05 min");
  EXPECT_EQ(format_duration(3 * 86400 + 4 * 3600 + 59), "3 d 04 h");
  EXPECT_EQ(format_metric(0.781234), "0.7812");
  EXPECT_EQ(format_metric(2.34567), "2.346");
}

TEST(Formats, ReasonLine) {
  EXPECT_EQ(reason_line("failed", "exit status 1\nlog line"), "exit status 1");
  EXPECT_EQ(reason_line("skipped", "skipped: parent abc failed"), "parent abc failed");
  EXPECT_EQ(reason_line("timed_out", "timed out after 5 s\nlog"), "timed out after 5 s");
  EXPECT_EQ(reason_line("failed", ""), "");
}

TEST(Formats, UtcNowIsIsoToTheSecond) {
  const std::string t = utc_now();
  ASSERT_EQ(t.size(), 20u) << t;
  EXPECT_EQ(t[4], '-');
  EXPECT_EQ(t[10], 'T');
  EXPECT_EQ(t.back(), 'Z');
}

JobSteps steps(State state, bool this_run, int64_t total, int64_t at_start, int64_t now) {
  JobSteps s;
  s.state = state;
  s.this_run = this_run;
  s.total = total;
  s.at_start = at_start;
  s.now = now;
  return s;
}

TEST(Eta, UnknownUntilThisRunTrainedAStep) {
  // Jobs done by earlier runs, and a resumed job that has not passed its checkpoint, say
  // nothing about this run's speed.
  const std::vector<JobSteps> jobs{steps(State::kFinished, false, 100, 0, 100),
                                   steps(State::kRunning, true, 100, 40, 40),
                                   steps(State::kWaiting, false, 100, 0, 0)};
  EXPECT_FALSE(eta_seconds(jobs, 30.0));
  EXPECT_FALSE(eta_seconds({}, 30.0));
}

TEST(Eta, StepsLeftOverThisRunsStepsPerSecond) {
  // This run: 60 steps of a resumed job (40 -> 100, done) and 20 of a running one, in 40 s: 2
  // steps/s. Left: 80 of the running job and 100 of the waiting one: 90 s. The job done before
  // this run and the one that failed count for neither.
  const std::vector<JobSteps> jobs{
      steps(State::kFinished, false, 100, 0, 100), steps(State::kFinished, true, 100, 40, 100),
      steps(State::kRunning, true, 100, 0, 20), steps(State::kWaiting, false, 100, 0, 0),
      steps(State::kFinished, false, 100, 0, 10)};
  const auto eta = eta_seconds(jobs, 40.0);
  ASSERT_TRUE(eta);
  EXPECT_DOUBLE_EQ(*eta, 90.0);
}

TEST(Eta, UnknownTotalsCountAsTheMeanOfTheKnown) {
  // train.epochs: a job's steps are known from its first summary. 10 steps/s; left: (300 - 100)
  // + the waiting job's mean of 300 and 100 = 400 steps: 40 s.
  const std::vector<JobSteps> jobs{steps(State::kRunning, true, 300, 0, 100),
                                   steps(State::kFinished, false, 100, 0, 100),
                                   steps(State::kWaiting, false, 0, 0, 0)};
  ASSERT_TRUE(eta_seconds(jobs, 10.0));
  EXPECT_DOUBLE_EQ(*eta_seconds(jobs, 10.0), 40.0);
  // No total known at all: no estimate.
  EXPECT_FALSE(eta_seconds({steps(State::kRunning, true, 0, 0, 50)}, 10.0));
}

TEST(Lines, Summary) {
  ProgressCounts c;
  c.total = 12;
  c.before = 5;
  c.done_here = 3;
  c.running = 2;
  c.failed = 1;
  EXPECT_EQ(progress_summary(c, 250.0),
            "3/7 done (5 before this run), 2 running, 1 failed, "
            "ETA 4 min 10 s");
  ProgressCounts fresh;
  fresh.total = 4;
  EXPECT_EQ(progress_summary(fresh, std::nullopt), "0/4 done, 0 running, ETA --");
}

TEST(Lines, TerminalLineFitsTheWidth) {
  EXPECT_EQ(progress_line("1/4 done", {"a s0 loss 1", "b s1 loss 2"}, 80),
            "1/4 done | a s0 loss 1 | b s1 loss 2");
  // Notes that do not fit are left out whole; the summary itself is cut to width - 1.
  EXPECT_EQ(progress_line("1/4 done", {"a s0 loss 1", "b s1 loss 2"}, 24),
            "1/4 done | a s0 loss 1");
  EXPECT_EQ(progress_line("1/4 done, 2 running", {}, 10), "1/4 done,");
}

TEST(Lines, JobLine) {
  EXPECT_EQ(job_line("2025-01-02T10:00:00Z", "done", "variant=gqa kv_heads=2", 1,
                     {"final_val_loss 2.346", "", "44 s"}),
            "2025-01-02T10:00:00Z  done       variant=gqa kv_heads=2  seed 1  final_val_loss "
            "2.346  44 s");
  EXPECT_EQ(job_line("T", "interrupted", "(base)", 0, {}), "T  interrupted  (base)  seed 0");
}

// The reporter against a real store: jobs registered, steps and summaries written as ingest
// would, clocks set by the test.
struct Reporter {
  TempDir tmp;
  std::vector<JobSpec> jobs;
  std::unique_ptr<results::Store> store;
  std::ostringstream out;
  double now = 100.0;

  Reporter() {
    jobs = expand(parse_sweep(kGrid, "grid.yaml"));
    store = std::make_unique<results::Store>(tmp.file("ablate.db"));
    results::SweepRecord sweep;
    sweep.name = "grid";
    sweep.yaml = kGrid;
    sweep.config_hash = "h";
    sweep.code_version = "c";
    store->register_sweep(sweep);
    std::vector<results::JobRecord> records;
    for (const auto& j : jobs) {
      results::JobRecord r;
      r.id = j.id;
      r.arm_key = j.arm_key;
      r.seed = j.seed;
      r.run_dir = tmp.file(j.id);
      records.push_back(r);
    }
    store->register_jobs("grid", records);
  }
  std::unique_ptr<Progress> make(ProgressMode mode,
                                 const std::map<std::string, std::string>& status = {}) {
    auto p = std::make_unique<Progress>(mode, out, *store, "grid", jobs, status, 120);
    p->set_clocks([this] { return now; }, [] { return std::string("T"); });
    return p;
  }
  void step(size_t job, int64_t step, double loss) {
    auto& st = store->statement("INSERT OR REPLACE INTO metrics VALUES (?, 'train/loss', ?, ?)");
    st.bind(1, store->job_pk("grid", jobs[job].id));
    st.bind(2, step);
    st.bind(3, loss);
    st.exec();
  }
  void finish(size_t job, const std::string& status, const std::string& error = "") {
    store->mark_finished("grid", jobs[job].id, status, status == "done" ? 0 : 1, error);
  }
  std::string take() {
    std::string s = out.str();
    out.str("");
    return s;
  }
};

TEST(Reporter, LogLinesForEachStartAndEnd) {
  Reporter r;
  auto p = r.make(ProgressMode::kLog);
  p->begin();
  EXPECT_EQ(r.take(), "T  sweep grid: 6 jobs, 6 to run\n");
  r.store->mark_running("grid", r.jobs[0].id, "host", "cpu");
  p->started(r.jobs[0].id, "cpu");
  EXPECT_EQ(r.take(),
            "T  start      variant=gqa kv_heads=1  seed 0  on cpu  (job " + r.jobs[0].id + ")\n");
  r.now += 10;
  r.step(0, 100, 2.0);
  r.store->set_summaries("grid", r.jobs[0].id, {{"final_val_loss", 2.34567}});
  r.finish(0, "done");
  p->ended(r.jobs[0].id, "done", "");
  // 100 steps in 10 s; 500 steps left: 50 s.
  const std::string done = r.take();
  EXPECT_EQ(done.rfind("T  done       variant=gqa kv_heads=1  seed 0  final_val_loss 2.346  ", 0),
            0u)
      << done;
  EXPECT_NE(done.find(" s  [1/6 done, ETA 50 s]\n"), std::string::npos) << done;

  r.store->mark_running("grid", r.jobs[5].id, "host", "cpu");
  p->started(r.jobs[5].id, "cpu");
  r.take();
  r.finish(5, "failed", "exit status 1\nTraceback line\nthe last line");
  p->ended(r.jobs[5].id, "failed", "exit status 1\nTraceback line\nthe last line");
  const std::string failed = r.take();
  EXPECT_EQ(failed.rfind("T  failed     variant=dgqa kv_heads=2  seed 1  exit status 1  ", 0), 0u)
      << failed;
  EXPECT_NE(failed.find("(job " + r.jobs[5].id + ")  [1/6 done, 1 failed, ETA "), std::string::npos)
      << failed;
  EXPECT_EQ(failed.find("Traceback"), std::string::npos) << failed;  // one line per event
}

TEST(Reporter, OnResumeEarlierRunsDoNotCount) {
  Reporter r;
  // Two jobs done before this run; one interrupted at step 40 of 100 (its steps are not this
  // run's).
  r.step(2, 40, 3.0);
  auto p =
      r.make(ProgressMode::kLog,
             {{r.jobs[0].id, "done"}, {r.jobs[1].id, "diverged"}, {r.jobs[2].id, "interrupted"}});
  p->begin();
  EXPECT_EQ(r.take(), "T  sweep grid: 6 jobs, 2 done before this run, 4 to run\n");
  EXPECT_EQ(p->counts().done_here, 0);
  EXPECT_FALSE(p->eta());
  r.store->mark_running("grid", r.jobs[2].id, "host", "cpu");
  p->started(r.jobs[2].id, "cpu");
  EXPECT_FALSE(p->eta()) << "the resumed job's 40 earlier steps are not this run's";
  r.now += 30;
  r.step(2, 70, 2.5);  // 30 steps in 30 s; left: 30 + 3 x 100
  ASSERT_TRUE(p->eta());
  EXPECT_DOUBLE_EQ(*p->eta(), 330.0);
}

TEST(Reporter, TerminalLineRedrawnWithRunningJobsAndEndsAbove) {
  Reporter r;
  auto p = r.make(ProgressMode::kTerminal, {{r.jobs[0].id, "done"}});
  p->begin();
  EXPECT_EQ(r.take(), "");  // the log's header is not for a terminal
  r.store->mark_running("grid", r.jobs[1].id, "host", "cpu");
  p->started(r.jobs[1].id, "cpu");
  EXPECT_EQ(r.take(), "");  // nor are start lines
  p->tick();
  EXPECT_EQ(r.take(),
            "\r0/5 done (1 before this run), 1 running, ETA -- | variant=gqa kv_heads=1 s1"
            "\033[K");
  r.now += 0.5;
  p->tick();
  EXPECT_EQ(r.take(), "");  // at most once a second
  r.now += 4.5;
  r.step(1, 50, 2.25);
  p->tick();
  EXPECT_EQ(r.take(),
            "\r0/5 done (1 before this run), 1 running, ETA 45 s | variant=gqa "
            "kv_heads=1 s1 50/100 loss 2.25\033[K");
  r.finish(1, "timed_out", "timed out after 5 s\nlog");
  p->ended(r.jobs[1].id, "timed_out", "timed out after 5 s\nlog");
  const std::string ended = r.take();
  EXPECT_EQ(
      ended.rfind("\r\033[KT  timed_out  variant=gqa kv_heads=1  seed 1  timed out after 5 s", 0),
      0u)
      << ended;
  EXPECT_EQ(ended.find(" done"), std::string::npos) << "the terminal's line carries the counts";
  p->finish();  // the final counts stay on the screen
  EXPECT_EQ(r.take(), "\r0/5 done (1 before this run), 0 running, 1 failed\033[K\n");
}

TEST(Reporter, OffSaysNothing) {
  Reporter r;
  auto p = r.make(ProgressMode::kOff);
  p->begin();
  r.store->mark_running("grid", r.jobs[0].id, "host", "cpu");
  p->started(r.jobs[0].id, "cpu");
  r.finish(0, "done");
  p->ended(r.jobs[0].id, "done", "");
  p->tick();
  p->finish();
  EXPECT_EQ(r.out.str(), "");
  EXPECT_EQ(p->counts().done_here, 1);
}

}  // namespace
}  // namespace ablate::runner
