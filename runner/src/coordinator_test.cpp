#include "ablate/runner/coordinator.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <random>
#include <set>
#include <sstream>

#include "ablate/results/store.h"
#include "ablate/runner/sweep.h"
#include "ablate/testing/temp_dir.h"

namespace ablate::runner {
namespace {
namespace fs = std::filesystem;

using ablate::testing::TempDir;

// What a fake job does: exit code, the summary status it writes ("" = none), or a timeout.
struct Outcome {
  int exit_code = 0;
  std::string summary = "done";
  bool timed_out = false;
};

// A scripted executor: every start is recorded; each poll ends the oldest running job with the
// next outcome scripted for it (default: done), writing summary.json into its run dir as
// `ablate train` would.
class FakeExecutor : public Executor {
 public:
  std::map<std::string, std::vector<Outcome>> script;  // job id -> outcomes per attempt
  std::vector<Launch> started;
  size_t max_running = 0;
  std::function<void(size_t)> on_start;  // called with the number of starts so far

  std::string start(const Launch& launch) override {
    started.push_back(launch);
    running_.push_back(launch);
    max_running = std::max(max_running, running_.size());
    if (on_start) on_start(started.size());
    return "";
  }
  std::vector<Exit> poll(double) override {
    if (running_.empty()) return {};
    Launch l = running_.front();
    running_.erase(running_.begin());
    Outcome o;
    auto& queue = script[l.job_id];
    if (!queue.empty()) {
      o = queue.front();
      queue.erase(queue.begin());
    }
    const fs::path dir = run_dir(l);
    if (!o.summary.empty()) {
      std::ofstream(dir / "summary.json") << "{\"status\": \"" << o.summary
                                          << "\", \"final\": {\"val_loss\": 1.5}, \"best\": {}}\n";
    }
    std::ofstream(dir / "output.txt", std::ios::app) << "last line of " << l.job_id << "\n";
    Exit e;
    e.job_id = l.job_id;
    e.exit_code = o.timed_out ? -1 : o.exit_code;
    e.signal = o.timed_out ? SIGKILL : 0;
    e.timed_out = o.timed_out;
    return {e};
  }
  std::vector<Exit> stop_all(double) override {
    std::vector<Exit> exits;
    for (const auto& l : running_) {
      Exit e;
      e.job_id = l.job_id;
      e.signal = SIGTERM;
      exits.push_back(e);
    }
    running_.clear();
    return exits;
  }
  size_t running() const override { return running_.size(); }

  static fs::path run_dir(const Launch& l) {
    for (size_t i = 0; i + 1 < l.argv.size(); ++i) {
      if (l.argv[i] == "--run-dir") return l.argv[i + 1];
    }
    return {};
  }
  std::vector<std::string> order() const {
    std::vector<std::string> ids;
    for (const auto& l : started) ids.push_back(l.job_id);
    return ids;
  }

 private:
  std::vector<Launch> running_;
};

const char* kStaged =
    "name: staged\n"
    "task: lm\n"
    "base: {model: {dim: 32, depth: 1, heads: 4}, train: {steps: 10, warmup: 1}}\n"
    "seeds: 2\n"
    "grid:\n  - attention.variant: gqa\n    attention.kv_heads: [1, 2]\n"
    "stages:\n"
    "  - {name: pretrain, set: {attention.variant: mha}}\n"
    "  - {name: uptrain, from: pretrain, convert: mean_pool}\n";

struct Fixture {
  TempDir tmp;
  SweepSpec sweep;
  std::vector<JobSpec> jobs;
  std::unique_ptr<results::Store> store;
  RunOptions options;

  explicit Fixture(const std::string& text = kStaged) {
    sweep = parse_sweep(text, "sweep.yaml");
    jobs = expand(sweep);
    store = std::make_unique<results::Store>((tmp.path() / "ablate.db").string());
    options.workdir = (tmp.path() / "runs").string();
    options.ablate_binary = "/bin/false";  // never executed by the fake
    options.progress = false;
    options.cpu_threads = 4;
  }
  RunSummary run(Executor& executor, const std::atomic<bool>* interrupt = nullptr) {
    return run_sweep(sweep, jobs, *store, executor, options, interrupt);
  }
  std::string status(const std::string& id) const { return store->job(sweep.name, id)->status; }
  std::vector<const JobSpec*> stage(const std::string& name) const {
    std::vector<const JobSpec*> out;
    for (const auto& j : jobs) {
      if (j.stage == name) out.push_back(&j);
    }
    return out;
  }
};

TEST(Coordinator, RunsEveryJobOnceParentsFirst) {
  Fixture f;
  ASSERT_EQ(f.stage("pretrain").size(), 2u);  // one mha pretrain per seed, shared by both arms
  ASSERT_EQ(f.stage("uptrain").size(), 4u);
  FakeExecutor fake;
  const auto summary = f.run(fake);
  EXPECT_EQ(summary.launched, 6);
  EXPECT_EQ(summary.counts.at("done"), 6);
  const auto order = fake.order();
  EXPECT_EQ(std::set<std::string>(order.begin(), order.end()).size(), 6u);
  for (const auto* child : f.stage("uptrain")) {
    const auto parent = std::find(order.begin(), order.end(), child->parent_id);
    const auto me = std::find(order.begin(), order.end(), child->id);
    EXPECT_LT(parent - order.begin(), me - order.begin());
  }
  // The child's config names its parent's run dir and the conversion.
  for (const auto& l : fake.started) {
    const std::string config = (FakeExecutor::run_dir(l) / "config.yaml").string();
    std::ifstream in(config);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto* spec = &*std::find_if(f.jobs.begin(), f.jobs.end(),
                                      [&](const JobSpec& j) { return j.id == l.job_id; });
    if (!spec->parent_id.empty()) {
      EXPECT_NE(text.find(run_dir_of(f.options.workdir, "staged", spec->parent_id)),
                std::string::npos);
      EXPECT_NE(text.find("mean_pool"), std::string::npos);
    }
    EXPECT_EQ(l.argv[1], "train");
    EXPECT_NE(std::find(l.argv.begin(), l.argv.end(), "train.device=cpu"), l.argv.end());
  }
  // Running again launches nothing: every job is done.
  FakeExecutor again;
  EXPECT_EQ(f.run(again).launched, 0);
  EXPECT_EQ(f.store->status_counts("staged").at("done"), 6);
}

TEST(Coordinator, SlotsLimitConcurrencyAndSplitCpuThreads) {
  Fixture f;
  f.options.per_device = 2;
  FakeExecutor fake;
  f.run(fake);
  EXPECT_EQ(fake.max_running, 2u);
  for (const auto& l : fake.started) {
    EXPECT_NE(std::find(l.argv.begin(), l.argv.end(), "train.threads=2"), l.argv.end());
  }
  Fixture g;
  g.options.devices = {"cuda:0", "cuda:1"};
  g.options.per_device = 1;
  FakeExecutor gpu;
  g.run(gpu);
  std::set<std::string> devices;
  for (const auto& l : gpu.started) {
    for (const auto& a : l.argv) {
      if (a.rfind("train.device=", 0) == 0) devices.insert(a);
    }
    for (const auto& a : l.argv) EXPECT_EQ(a.rfind("train.threads=", 0), std::string::npos);
  }
  EXPECT_EQ(devices, (std::set<std::string>{"train.device=cuda:0", "train.device=cuda:1"}));
}

TEST(Coordinator, AFailedParentSkipsItsChildrenAndOthersGoOn) {
  Fixture f;
  const auto* bad = f.stage("pretrain")[0];
  FakeExecutor fake;
  fake.script[bad->id] = {{1, "", false}};
  const auto summary = f.run(fake);
  EXPECT_EQ(f.status(bad->id), "failed");
  EXPECT_NE(f.store->job("staged", bad->id)->error.find("exit status 1"), std::string::npos);
  EXPECT_NE(f.store->job("staged", bad->id)->error.find("last line of"), std::string::npos);
  for (const auto* child : f.stage("uptrain")) {
    if (child->parent_id == bad->id) {
      EXPECT_EQ(f.status(child->id), "skipped");
      EXPECT_NE(f.store->job("staged", child->id)->error.find(bad->id), std::string::npos);
    } else {
      EXPECT_EQ(f.status(child->id), "done");
    }
  }
  EXPECT_EQ(summary.counts.at("done"), 3);
  EXPECT_EQ(summary.counts.at("skipped"), 2);
}

TEST(Coordinator, RetriesRerunFailedJobsButNotBadInput) {
  Fixture f;
  const auto* flaky = f.stage("pretrain")[0];
  const auto* refused = f.stage("pretrain")[1];
  f.options.retries = 1;
  FakeExecutor fake;
  fake.script[flaky->id] = {{1, "", false}, {0, "done", false}};
  fake.script[refused->id] = {{2, "", false}};  // exit 2: bad input, retrying cannot help
  f.run(fake);
  EXPECT_EQ(f.status(flaky->id), "done");
  EXPECT_EQ(f.store->job("staged", flaky->id)->attempts, 2);
  EXPECT_EQ(f.status(refused->id), "failed");
  EXPECT_EQ(f.store->job("staged", refused->id)->attempts, 1);

  Fixture g;  // without retries the failure stays
  FakeExecutor once;
  once.script[g.stage("pretrain")[0]->id] = {{1, "", false}, {0, "done", false}};
  g.run(once);
  EXPECT_EQ(g.status(g.stage("pretrain")[0]->id), "failed");
}

TEST(Coordinator, TimeoutsAndDivergenceAreOutcomes) {
  Fixture f;
  f.options.timeout_s = 5;
  FakeExecutor fake;
  fake.script[f.stage("pretrain")[0]->id] = {{-1, "", true}};
  fake.script[f.stage("pretrain")[1]->id] = {{0, "diverged", false}};
  f.run(fake);
  EXPECT_EQ(f.status(f.stage("pretrain")[0]->id), "timed_out");
  EXPECT_NE(f.store->job("staged", f.stage("pretrain")[0]->id)->error.find("timed out"),
            std::string::npos);
  EXPECT_EQ(f.status(f.stage("pretrain")[1]->id), "diverged");
  for (const auto& l : fake.started) EXPECT_EQ(l.timeout_s, 5);
  // A diverged parent has nothing to convert: its children are skipped too.
  EXPECT_EQ(f.store->status_counts("staged").at("skipped"), 4);
}

TEST(Coordinator, ExitZeroWithoutADoneSummaryIsAFailure) {
  Fixture f;
  FakeExecutor fake;
  fake.script[f.stage("pretrain")[0]->id] = {{0, "running", false}};
  f.run(fake);
  EXPECT_EQ(f.status(f.stage("pretrain")[0]->id), "failed");
}

TEST(Coordinator, RecoversJobsAKilledCoordinatorLeftRunning) {
  Fixture f;
  // A first coordinator registered the jobs (interrupted before it launched any) ...
  FakeExecutor first;
  std::atomic<bool> stop{true};
  f.run(first, &stop);
  ASSERT_TRUE(first.started.empty());
  // ... then, as if it had launched two and died with kill -9: both still say running, and one
  // of them had finished its run dir.
  const auto* finished = f.stage("pretrain")[0];
  const auto* unfinished = f.stage("pretrain")[1];
  for (const auto* j : {finished, unfinished}) f.store->mark_running("staged", j->id, "h", "cpu");
  const fs::path done_dir = run_dir_of(f.options.workdir, "staged", finished->id);
  fs::create_directories(done_dir);
  std::ofstream(done_dir / "summary.json") << R"({"status": "done", "final": {}, "best": {}})";
  const fs::path other_dir = run_dir_of(f.options.workdir, "staged", unfinished->id);
  fs::remove(other_dir / "summary.json");

  FakeExecutor second;
  f.run(second);
  const auto order = second.order();
  EXPECT_EQ(std::count(order.begin(), order.end(), finished->id), 0);  // not run twice
  EXPECT_EQ(std::count(order.begin(), order.end(), unfinished->id), 1);
  EXPECT_EQ(f.store->status_counts("staged").at("done"), 6);
}

TEST(Coordinator, InterruptStopsLaunchingAndMarksRunningJobsInterrupted) {
  Fixture f;
  f.options.per_device = 2;
  FakeExecutor fake;
  std::atomic<bool> stop{false};
  fake.on_start = [&](size_t n) {
    if (n == 2) stop = true;
  };
  const auto summary = f.run(fake, &stop);
  EXPECT_TRUE(summary.interrupted);
  EXPECT_EQ(summary.launched, 2);  // nothing launched after the interrupt
  const auto counts = f.store->status_counts("staged");
  EXPECT_EQ(counts.at("done"), 1);         // the fake finished one before the interrupt was seen
  EXPECT_EQ(counts.at("interrupted"), 1);  // the other was stopped
  EXPECT_EQ(counts.at("running"), 0);
  FakeExecutor resume;
  f.run(resume);
  EXPECT_EQ(f.store->status_counts("staged").at("done"), 6);
}

TEST(Coordinator, ASecondCoordinatorIsRefused) {
  Fixture f;
  for (const std::string& file : {workdir_lock_file(f.options.workdir, "staged"),
                                  database_lock_file(f.store->path(), "staged")}) {
    SweepLock held(file, "staged");
    FakeExecutor fake;
    try {
      f.run(fake);
      ADD_FAILURE() << "ran while " << file << " was held";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("another coordinator"), std::string::npos);
      EXPECT_NE(std::string(e.what()).find(std::to_string(getpid())), std::string::npos);
    }
    EXPECT_TRUE(fake.started.empty());
  }
}

// Without a terminal (a log file, nohup, Slurm) the coordinator writes a line on stderr as each
// job starts and ends, naming its arm and seed, and for an end its outcome (progress.h).
TEST(Coordinator, WritesALinePerJobStartAndEndWithoutATerminal) {
  if (isatty(STDERR_FILENO)) GTEST_SKIP() << "stderr is a terminal: the progress line instead";
  Fixture f;
  f.options.progress = true;
  const JobSpec* victim = f.stage("pretrain")[0];
  FakeExecutor executor;
  executor.script[victim->id] = {Outcome{1, "", false}};
  std::ostringstream captured;
  std::streambuf* const old = std::cerr.rdbuf(captured.rdbuf());
  f.run(executor);
  std::cerr.rdbuf(old);

  std::vector<std::string> lines;
  std::istringstream in(captured.str());
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  auto count = [&](const std::string& text) {
    return std::count_if(lines.begin(), lines.end(),
                         [&](const std::string& l) { return l.find(text) != std::string::npos; });
  };
  ASSERT_FALSE(lines.empty());
  EXPECT_NE(lines[0].find("sweep staged: 6 jobs, 6 to run"), std::string::npos) << lines[0];
  EXPECT_EQ(count("Z  start      "), 4) << captured.str();  // the victim's children never start
  EXPECT_EQ(count("Z  done       "), 3) << captured.str();
  EXPECT_EQ(count("Z  skipped    uptrain "), 2) << captured.str();
  EXPECT_EQ(
      count("Z  failed     pretrain  seed " + std::to_string(victim->seed) + "  exit status 1  "),
      1)
      << captured.str();
  EXPECT_EQ(count("uptrain kv_heads=2  seed 1  final_val_loss 1.5  "), 1) << captured.str();
  // A job's start comes before its end.
  const auto first = [&](const std::string& text) {
    return std::find_if(lines.begin(), lines.end(),
                        [&](const std::string& l) { return l.find(text) != std::string::npos; }) -
           lines.begin();
  };
  EXPECT_LT(first("start      pretrain  seed 1"), first("done       pretrain  seed 1"));
}

// The text of a file in a run dir ("" when absent).
std::string file_text(const fs::path& file) {
  std::ifstream in(file);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// --retry-failed runs a failed job again whatever its exit status (within one run, --retries
// skips exit status 2: bad input does not fix itself, but the user may have fixed it since), in
// its run dir, and its skipped dependants run once it is done.
TEST(Coordinator, RetryFailedRerunsEveryFailureAndThenItsDependants) {
  Fixture f;
  const auto* refused = f.stage("pretrain")[0];
  const auto* timed_out = f.stage("pretrain")[1];
  f.options.retries = 1;
  FakeExecutor first;
  first.script[refused->id] = {{2, "", false}};
  first.script[timed_out->id] = {{-1, "", true}, {-1, "", true}};
  f.run(first);
  ASSERT_EQ(f.status(refused->id), "failed");
  ASSERT_EQ(f.status(timed_out->id), "timed_out");
  EXPECT_EQ(f.store->job("staged", refused->id)->attempts, 1);  // exit 2: no retry in a run
  EXPECT_EQ(f.store->status_counts("staged").at("skipped"), 4);

  f.options.retries = 0;
  FakeExecutor plain;  // without the flag a failure stays
  EXPECT_EQ(f.run(plain).launched, 0);
  EXPECT_EQ(f.status(refused->id), "failed");

  f.options.retry_failed = true;
  PlanChange change;
  f.options.on_registered = [&](const PlanChange& c) { change = c; };
  FakeExecutor again;
  const auto summary = f.run(again);
  EXPECT_EQ(std::set<std::string>(change.retried.begin(), change.retried.end()),
            (std::set<std::string>{refused->id, timed_out->id}));
  EXPECT_EQ(summary.launched, 6);  // the two failures, then their four dependants
  EXPECT_EQ(f.store->status_counts("staged").at("done"), 6);
  EXPECT_EQ(f.store->job("staged", refused->id)->attempts, 2);
  const auto order = again.order();
  for (const auto* child : f.stage("uptrain")) {
    const auto parent = std::find(order.begin(), order.end(), child->parent_id);
    EXPECT_LT(parent - order.begin(),
              std::find(order.begin(), order.end(), child->id) - order.begin());
  }
  // The same run dir: `ablate train` resumes from its checkpoint there.
  for (const auto& l : again.started) {
    EXPECT_EQ(FakeExecutor::run_dir(l), run_dir_of(f.options.workdir, "staged", l.job_id));
  }
}

TEST(Coordinator, RetryFailedGivesOneMoreAttemptNotUnlimited) {
  Fixture f;
  const auto* refused = f.stage("pretrain")[0];
  FakeExecutor first;
  first.script[refused->id] = {{2, "", false}};
  f.run(first);
  f.options.retry_failed = true;
  f.options.retries = 3;
  FakeExecutor again;
  again.script[refused->id] = {{2, "", false}, {0, "done", false}};
  f.run(again);
  // Failed with exit 2 again: --retries does not retry bad input, --retry-failed ran it once.
  EXPECT_EQ(f.status(refused->id), "failed");
  EXPECT_EQ(f.store->job("staged", refused->id)->attempts, 2);
}

// A diverged run is a result: it stays, even under --retry-failed; --retry-diverged trains it
// again from scratch, its old run dir kept aside and its old numbers gone from the store.
TEST(Coordinator, DivergedStaysUnlessRetryDiverged) {
  Fixture f;
  const auto* bad = f.stage("pretrain")[0];
  FakeExecutor first;
  first.script[bad->id] = {{0, "diverged", false}};
  f.run(first);
  ASSERT_EQ(f.status(bad->id), "diverged");
  const fs::path dir = run_dir_of(f.options.workdir, "staged", bad->id);
  std::ofstream(dir / "checkpoint.marker") << "old run\n";

  f.options.retry_failed = true;
  FakeExecutor retry;
  f.run(retry);
  EXPECT_EQ(f.status(bad->id), "diverged");
  const auto retried = retry.order();
  EXPECT_EQ(std::count(retried.begin(), retried.end(), bad->id), 0);

  f.options.retry_failed = false;
  f.options.retry_diverged = true;
  PlanChange change;
  f.options.on_registered = [&](const PlanChange& c) { change = c; };
  FakeExecutor again;
  f.run(again);
  EXPECT_EQ(change.reset, std::vector<std::string>{bad->id});
  EXPECT_EQ(f.status(bad->id), "done");
  EXPECT_EQ(f.store->job("staged", bad->id)->attempts, 1);  // counted from the reset
  EXPECT_EQ(f.store->status_counts("staged").at("done"), 6);
  EXPECT_FALSE(fs::exists(dir / "checkpoint.marker"));  // a fresh run dir
  int aside = 0;
  for (const auto& e : fs::directory_iterator(dir.parent_path())) {
    const std::string name = e.path().filename().string();
    if (name.rfind(bad->id + ".reset-", 0) == 0) {
      ++aside;
      EXPECT_EQ(file_text(e.path() / "checkpoint.marker"), "old run\n");
    }
  }
  EXPECT_EQ(aside, 1);
}

// data.path is not part of the job id: after the user fixes it in the sweep file, the job's
// config.yaml (and its params in the store) must be the current plan's at the next launch.
TEST(Coordinator, ConfigYamlIsRewrittenFromTheCurrentPlanAtLaunch) {
  auto with_path = [](const std::string& path) {
    std::string text = kStaged;
    const std::string base = "base: {";
    text.replace(text.find(base), base.size(),
                 "base: {data: {dataset: text, path: " + path + "}, ");
    return text;
  };
  Fixture f(with_path("/no/such/corpus.txt"));
  const std::string job = f.stage("pretrain")[0]->id;
  FakeExecutor first;
  first.script[job] = {{2, "", false}};
  f.run(first);
  const fs::path config = run_dir_of(f.options.workdir, "staged", job) + "/config.yaml";
  ASSERT_NE(file_text(config).find("/no/such/corpus.txt"), std::string::npos);

  Fixture fixed_plan(with_path("/data/corpus.txt"));
  ASSERT_EQ(fixed_plan.jobs.size(), f.jobs.size());
  EXPECT_EQ(fixed_plan.stage("pretrain")[0]->id, job);  // the same job
  f.sweep = fixed_plan.sweep;
  f.jobs = fixed_plan.jobs;
  f.options.retry_failed = true;
  FakeExecutor again;
  f.run(again);
  EXPECT_EQ(f.status(job), "done");
  const std::string text = file_text(config);
  EXPECT_NE(text.find("/data/corpus.txt"), std::string::npos) << text;
  EXPECT_EQ(text.find("/no/such"), std::string::npos) << text;
  EXPECT_FALSE(fs::exists(config.string() + ".tmp"));
  for (const auto& [k, v] : f.store->params("staged", job)) {
    if (k == "data.path") {
      EXPECT_EQ(v, "/data/corpus.txt");
    }
  }
}

// The sweep file's current plan defines the sweep: an edit that drops cells makes their jobs
// stale (kept, out of the counts, not run), reverting it makes them active with their results.
TEST(Coordinator, JobsTheFileNoLongerPlansBecomeStaleAndComeBack) {
  Fixture f;
  std::vector<PlanChange> changes;
  f.options.on_registered = [&](const PlanChange& c) { changes.push_back(c); };
  FakeExecutor first;
  f.run(first);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_TRUE(changes[0].created);
  EXPECT_EQ(changes[0].planned, 6);
  EXPECT_EQ(changes[0].added, 6);
  EXPECT_TRUE(changes[0].stale.empty());

  std::string text = kStaged;
  text.replace(text.find("[1, 2]"), 6, "[2, 4]");  // kv_heads 1 dropped, 4 added
  Fixture edited(text);
  const auto full_sweep = f.sweep;
  const auto full_jobs = f.jobs;
  f.sweep = edited.sweep;
  f.jobs = edited.jobs;
  FakeExecutor second;
  const auto summary = f.run(second);
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_FALSE(changes[1].created);
  EXPECT_EQ(changes[1].added, 2);
  EXPECT_EQ(changes[1].stale.size(), 2u);
  EXPECT_EQ(changes[1].newly_stale.size(), 2u);
  EXPECT_EQ(summary.launched, 2);  // only the new cells
  const auto counts = f.store->status_counts("staged");
  EXPECT_EQ(counts.at("done"), 6);  // 2 pretrain + 4 uptrain planned; the 2 stale not counted
  int stale = 0;
  for (const auto& row : f.store->jobs("staged")) stale += row.stale;
  EXPECT_EQ(stale, 2);

  f.sweep = full_sweep;  // reverted
  f.jobs = full_jobs;
  FakeExecutor third;
  EXPECT_EQ(f.run(third).launched, 0);
  EXPECT_EQ(changes[2].reactivated.size(), 2u);
  EXPECT_EQ(changes[2].stale.size(), 2u);  // the kv_heads 4 cells now
  EXPECT_TRUE(changes[2].newly_stale.size() == 2u);
  EXPECT_EQ(f.store->status_counts("staged").at("done"), 6);
}

// A stale job that a killed coordinator left running is recovered (its orphan stopped, its
// outcome recorded), not left running forever, and not launched.
TEST(Coordinator, AStaleJobLeftRunningIsRecoveredNotRun) {
  Fixture f;
  FakeExecutor first;
  std::atomic<bool> stop{true};
  f.run(first, &stop);  // registers only
  const std::string gone = f.stage("uptrain")[0]->id;
  f.store->mark_running("staged", gone, "h", "cpu");
  std::vector<JobSpec> fewer;
  for (const auto& j : f.jobs) {
    if (j.id != gone) fewer.push_back(j);
  }
  f.jobs = fewer;
  FakeExecutor second;
  f.run(second);
  const auto order = second.order();
  EXPECT_EQ(order.size(), 5u);
  EXPECT_EQ(std::count(order.begin(), order.end(), gone), 0);
  const auto row = *f.store->job("staged", gone);
  EXPECT_TRUE(row.stale);
  EXPECT_EQ(row.status, "interrupted");
}

TEST(Coordinator, RunDirsStayInsideTheWorkdir) {
  EXPECT_EQ(run_dir_of("/tmp/w", "s", "abc"), "/tmp/w/s/abc");
  EXPECT_THROW(run_dir_of("/tmp/w", "..", "x"), std::runtime_error);
  EXPECT_THROW(run_dir_of("/tmp/w", "s", "../../etc"), std::runtime_error);
}

}  // namespace
}  // namespace ablate::runner
