#include "ablate/runner/coordinator.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <random>
#include <set>
#include <sstream>

#include "ablate/results/store.h"
#include "ablate/runner/ensembles.h"
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

// A scripted executor: every start is recorded; each poll ends the oldest running process. Each
// of its jobs (one, or the members of an ensemble) takes the next outcome scripted for it
// (default: done) and gets summary.json in its run dir as `ablate train` would write it; the
// process exits with the first member's timeout or non-zero exit status, else 0.
class FakeExecutor : public Executor {
 public:
  std::map<std::string, std::vector<Outcome>> script;  // job id -> outcomes per attempt
  std::map<std::string, double> peak;                  // job id -> its summary's peak_memory_bytes
  std::vector<Launch> started;
  size_t max_running = 0;
  std::function<void(size_t)> on_start;  // called with the number of starts so far
  bool hold = false;                     // processes run on until stop_all

  std::string start(const Launch& launch) override {
    started.push_back(launch);
    running_.push_back(launch);
    max_running = std::max(max_running, running_.size());
    if (on_start) on_start(started.size());
    return "";
  }
  std::vector<Exit> poll(double) override {
    if (running_.empty() || hold) return {};
    Launch l = running_.front();
    running_.erase(running_.begin());
    Exit e;
    e.job_id = l.job_id;
    e.members = l.members;
    e.exit_code = 0;
    for (const auto& member : members_of(l)) {
      const Outcome o = train(member);
      if (e.exit_code == 0 && !e.timed_out) {
        e.exit_code = o.timed_out ? -1 : o.exit_code;
        e.signal = o.timed_out ? SIGKILL : 0;
        e.timed_out = o.timed_out;
      }
    }
    std::ofstream(run_dir(l) / "output.txt", std::ios::app) << "last line of " << l.job_id << "\n";
    return {e};
  }
  std::vector<Exit> stop_all(double) override {
    std::vector<Exit> exits;
    for (const auto& l : running_) {
      Exit e;
      e.job_id = l.job_id;
      e.members = l.members;
      e.signal = SIGTERM;
      exits.push_back(e);
    }
    running_.clear();
    return exits;
  }
  size_t running() const override { return running_.size(); }

  // The lead's run dir (the first --run-dir).
  static fs::path run_dir(const Launch& l) {
    for (size_t i = 0; i + 1 < l.argv.size(); ++i) {
      if (l.argv[i] == "--run-dir") return l.argv[i + 1];
    }
    return {};
  }
  // Every --run-dir of the command line.
  static std::vector<std::string> run_dirs(const Launch& l) {
    std::vector<std::string> dirs;
    for (size_t i = 0; i + 1 < l.argv.size(); ++i) {
      if (l.argv[i] == "--run-dir") dirs.push_back(l.argv[i + 1]);
    }
    return dirs;
  }
  // The jobs each process trained, in launch order.
  std::vector<std::vector<std::string>> processes() const {
    std::vector<std::vector<std::string>> out;
    for (const auto& l : started) {
      out.emplace_back();
      for (const auto& m : members_of(l)) out.back().push_back(m.job_id);
    }
    return out;
  }
  // Every job started, in launch order.
  std::vector<std::string> order() const {
    std::vector<std::string> ids;
    for (const auto& p : processes()) ids.insert(ids.end(), p.begin(), p.end());
    return ids;
  }

 private:
  Outcome train(const LaunchMember& member) {
    Outcome o;
    auto& queue = script[member.job_id];
    if (!queue.empty()) {
      o = queue.front();
      queue.erase(queue.begin());
    }
    if (!o.summary.empty()) {
      std::ofstream(fs::path(member.run_dir) / "summary.json")
          << "{\"status\": \"" << o.summary << "\", \"final\": {\"val_loss\": 1.5}, \"best\": {}"
          << (peak.count(member.job_id)
                  ? ", \"peak_memory_bytes\": " + std::to_string(peak.at(member.job_id))
                  : "")
          << "}\n";
    }
    return o;
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
    options.seeds_per_process = 1;  // one process per job, unless a test groups seeds
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
  // The libraries' own thread counts match LibTorch's (they read them before main runs).
  const std::vector<std::pair<std::string, std::string>> two = {
      {"OMP_NUM_THREADS", "2"}, {"OPENBLAS_NUM_THREADS", "2"}, {"MKL_NUM_THREADS", "2"}};
  for (const auto& l : fake.started) {
    EXPECT_NE(std::find(l.argv.begin(), l.argv.end(), "train.threads=2"), l.argv.end());
    EXPECT_EQ(l.env, two);
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
    EXPECT_TRUE(l.env.empty());
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

// ----- seeds trained together (ensembles.h) -----

// 3 seeds x 2 arms, no stages.
const char* kArms =
    "name: arms\n"
    "task: lm\n"
    "base: {model: {dim: 32, depth: 1, heads: 4}, train: {steps: 10, warmup: 1}}\n"
    "seeds: 3\n"
    "grid:\n  - attention.variant: gqa\n    attention.kv_heads: [1, 2]\n";

// The staged sweep with 3 seeds: 3 mha pretrains, then 2 arms x 3 seeds of uptrain.
std::string staged_with_seeds(int seeds) {
  std::string text = kStaged;
  text.replace(text.find("seeds: 2"), 8, "seeds: " + std::to_string(seeds));
  return text;
}

const JobSpec& spec_of(const Fixture& f, const std::string& id) {
  return *std::find_if(f.jobs.begin(), f.jobs.end(), [&](const JobSpec& j) { return j.id == id; });
}

// Every process trained seeds of one stage and arm, each once.
void expect_one_arm_per_process(const Fixture& f, const FakeExecutor& fake) {
  std::set<std::string> seen;
  for (const auto& process : fake.processes()) {
    std::set<int64_t> seeds;
    for (const auto& id : process) {
      EXPECT_EQ(spec_of(f, id).stage, spec_of(f, process[0]).stage);
      EXPECT_EQ(spec_of(f, id).arm_key, spec_of(f, process[0]).arm_key);
      seeds.insert(spec_of(f, id).seed);
      EXPECT_TRUE(seen.insert(id).second) << id << " started twice";
    }
    EXPECT_EQ(seeds.size(), process.size());
  }
}

// Per stage and arm, the sizes of its processes in launch order.
std::map<std::string, std::vector<size_t>> sizes_per_arm(const Fixture& f,
                                                         const FakeExecutor& fake) {
  std::map<std::string, std::vector<size_t>> sizes;
  for (const auto& p : fake.processes()) {
    sizes[spec_of(f, p[0]).stage + " " + spec_of(f, p[0]).arm_key].push_back(p.size());
  }
  return sizes;
}

std::vector<size_t> process_sizes(const FakeExecutor& fake) {
  std::vector<size_t> sizes;
  for (const auto& p : fake.processes()) sizes.push_back(p.size());
  return sizes;
}

TEST(CoordinatorEnsembles, ThreeSeedsOfTwoArmsAreTwoProcessesOfThree) {
  Fixture f(kArms);
  f.options.seeds_per_process = 3;
  FakeExecutor fake;
  const auto summary = f.run(fake);
  EXPECT_EQ(summary.launched, 2);
  EXPECT_EQ(process_sizes(fake), (std::vector<size_t>{3, 3}));
  expect_one_arm_per_process(f, fake);
  EXPECT_NE(spec_of(f, fake.processes()[0][0]).arm_key, spec_of(f, fake.processes()[1][0]).arm_key);
  EXPECT_EQ(summary.counts.at("done"), 6);
  for (const auto& l : fake.started) {
    // One `ablate train` with a --run-dir per member, each with its config.yaml.
    std::vector<std::string> dirs;
    for (const auto& m : l.members) dirs.push_back(m.run_dir);
    EXPECT_EQ(FakeExecutor::run_dirs(l), dirs);
    for (const auto& d : dirs) EXPECT_TRUE(fs::exists(fs::path(d) / "config.yaml")) << d;
    EXPECT_EQ(l.output_file, dirs.front() + "/output.txt");
    EXPECT_EQ(l.job_id, l.members.front().job_id);
  }
  FakeExecutor again;  // nothing left
  EXPECT_EQ(f.run(again).launched, 0);
}

TEST(CoordinatorEnsembles, TwoPerProcessGivesTwoAndOnePerArm) {
  Fixture f(kArms);
  f.options.seeds_per_process = 2;
  f.options.per_device = 2;
  FakeExecutor fake;
  const auto summary = f.run(fake);
  EXPECT_EQ(summary.launched, 4);
  EXPECT_EQ(process_sizes(fake), (std::vector<size_t>{2, 1, 2, 1}));
  expect_one_arm_per_process(f, fake);
  EXPECT_EQ(fake.max_running, 2u);  // an ensemble takes one slot
  EXPECT_EQ(f.store->status_counts("arms").at("done"), 6);
}

// Auto on the CPU: kCpuSeedsPerProcess seeds of an arm per process.
TEST(CoordinatorEnsembles, AutoOnTheCpuIsTheConstant) {
  Fixture f(staged_with_seeds(kCpuSeedsPerProcess + 1));
  f.options.seeds_per_process = 0;
  FakeExecutor fake;
  f.run(fake);
  const auto sizes = sizes_per_arm(f, fake);
  ASSERT_EQ(sizes.size(), 3u);  // the pretrain and two uptrain arms
  for (const auto& [arm, list] : sizes) {
    EXPECT_EQ(list, (std::vector<size_t>{kCpuSeedsPerProcess, 1})) << arm;
  }
  expect_one_arm_per_process(f, fake);
}

// An uptrain member starts only once its own parent is done, and starts from its own parent.
TEST(CoordinatorEnsembles, AStagesMembersWaitForTheirOwnParents) {
  Fixture f(staged_with_seeds(3));
  f.options.seeds_per_process = 2;
  f.options.per_device = 4;
  FakeExecutor fake;
  f.run(fake);
  const auto processes = fake.processes();
  auto process_of = [&](const std::string& id) {
    for (size_t p = 0; p < processes.size(); ++p) {
      if (std::find(processes[p].begin(), processes[p].end(), id) != processes[p].end()) return p;
    }
    ADD_FAILURE() << id << " never started";
    return processes.size();
  };
  // Pretrains [s0 s1] and [s2] start together; [s0 s1] ends first, so each uptrain arm starts
  // [s0 s1] while s2's pretrain still runs, and s2's uptrains after it.
  EXPECT_EQ(process_sizes(fake), (std::vector<size_t>{2, 1, 2, 2, 1, 1}));
  expect_one_arm_per_process(f, fake);
  for (const auto* child : f.stage("uptrain")) {
    EXPECT_LT(process_of(child->parent_id), process_of(child->id));
    const std::string config =
        file_text(run_dir_of(f.options.workdir, "staged", child->id) + "/config.yaml");
    EXPECT_NE(config.find("from: " + run_dir_of(f.options.workdir, "staged", child->parent_id)),
              std::string::npos)
        << config;
  }
  EXPECT_EQ(f.store->status_counts("staged").at("done"), 9);
}

// A parent that failed skips its own children; its siblings' children still train together.
TEST(CoordinatorEnsembles, AFailedParentSkipsOnlyItsOwnChildren) {
  Fixture f(staged_with_seeds(3));
  f.options.seeds_per_process = 3;
  const auto* bad = f.stage("pretrain")[1];
  FakeExecutor fake;
  fake.script[bad->id] = {{1, "", false}};
  f.run(fake);
  EXPECT_EQ(f.status(bad->id), "failed");
  EXPECT_EQ(process_sizes(fake), (std::vector<size_t>{3, 2, 2}));
  for (const auto* child : f.stage("uptrain")) {
    EXPECT_EQ(f.status(child->id), child->parent_id == bad->id ? "skipped" : "done") << child->id;
  }
}

// Each member is finished from its own run dir: its summary's status when it has one, whatever
// the process did after; the process's outcome otherwise, with the lead's output as the reason.
TEST(CoordinatorEnsembles, EachMemberEndsAsItsOwnSummarySays) {
  Fixture f(kArms);
  f.options.seeds_per_process = 3;
  FakeExecutor fake;
  const std::vector<JobSpec>& jobs = f.jobs;
  const JobSpec& diverged = jobs[0];
  const JobSpec& done = jobs[1];
  const JobSpec& failed = jobs[2];
  ASSERT_EQ(diverged.arm_key, failed.arm_key);
  fake.script[diverged.id] = {{0, "diverged", false}};
  fake.script[done.id] = {{0, "done", false}};
  fake.script[failed.id] = {{1, "", false}};  // no summary; the process exits 1
  f.run(fake);
  EXPECT_EQ(f.status(diverged.id), "diverged");
  EXPECT_EQ(f.status(done.id), "done");
  EXPECT_EQ(f.status(failed.id), "failed");
  const auto row = *f.store->job("arms", failed.id);
  EXPECT_EQ(row.exit_code, 1);
  EXPECT_NE(row.error.find("exit status 1 (3 seeds in one process; its output is in job " +
                           diverged.id + "'s run dir)"),
            std::string::npos)
      << row.error;
  EXPECT_NE(row.error.find("last line of " + diverged.id), std::string::npos) << row.error;
  EXPECT_EQ(f.store->job("arms", done.id)->error, "");
  // The other arm's process was not touched by this one's failure.
  EXPECT_EQ(f.store->status_counts("arms").at("done"), 4);

  // A timed-out process: the member that had finished is done, the others timed out.
  Fixture g(kArms);
  g.options.seeds_per_process = 3;
  g.options.timeout_s = 5;
  FakeExecutor slow;
  slow.script[g.jobs[0].id] = {{0, "done", false}};
  slow.script[g.jobs[1].id] = {{-1, "", true}};
  slow.script[g.jobs[2].id] = {{-1, "", true}};
  g.run(slow);
  EXPECT_EQ(g.status(g.jobs[0].id), "done");
  EXPECT_EQ(g.status(g.jobs[1].id), "timed_out");
  EXPECT_EQ(g.status(g.jobs[2].id), "timed_out");
  EXPECT_NE(g.store->job("arms", g.jobs[2].id)->error.find("timed out after 5 s"),
            std::string::npos);
}

// Ctrl-C while an ensemble runs: the seed that had finished is done, the others interrupted; the
// next run trains only those, together.
TEST(CoordinatorEnsembles, ARerunAfterAnInterruptRelaunchesOnlyUnfinishedMembers) {
  Fixture f(kArms);
  f.options.seeds_per_process = 3;
  std::atomic<bool> stop{false};
  FakeExecutor fake;
  fake.on_start = [&](size_t) {
    const auto& lead = fake.started.back().members.front();
    std::ofstream(fs::path(lead.run_dir) / "summary.json")
        << R"({"status": "done", "final": {"val_loss": 1.5}, "best": {}})";
    fake.hold = true;
    stop = true;
  };
  const auto summary = f.run(fake, &stop);
  EXPECT_TRUE(summary.interrupted);
  ASSERT_EQ(process_sizes(fake), (std::vector<size_t>{3}));
  const auto first = fake.processes()[0];
  EXPECT_EQ(f.status(first[0]), "done");
  EXPECT_EQ(f.status(first[1]), "interrupted");
  EXPECT_EQ(f.status(first[2]), "interrupted");

  FakeExecutor resume;
  f.run(resume);
  const auto processes = resume.processes();
  ASSERT_EQ(processes.size(), 2u);
  EXPECT_EQ(processes[0], (std::vector<std::string>{first[1], first[2]}));
  EXPECT_EQ(processes[1].size(), 3u);  // the other arm
  EXPECT_EQ(f.store->status_counts("arms").at("done"), 6);
}

// A coordinator killed while an ensemble ran: its finished seed is ingested as done, the others
// train again together.
TEST(CoordinatorEnsembles, RecoveryRelaunchesOnlyUnfinishedMembers) {
  Fixture f(kArms);
  f.options.seeds_per_process = 3;
  FakeExecutor first;
  std::atomic<bool> stop{true};
  f.run(first, &stop);  // registers only
  std::vector<std::string> arm;
  for (const auto& j : f.jobs) {
    if (j.arm_key == f.jobs[0].arm_key) arm.push_back(j.id);
  }
  ASSERT_EQ(arm.size(), 3u);
  for (const auto& id : arm) {
    f.store->mark_running("arms", id, "h", "cpu");
    fs::create_directories(run_dir_of(f.options.workdir, "arms", id));
  }
  std::ofstream(run_dir_of(f.options.workdir, "arms", arm[1]) + "/summary.json")
      << R"({"status": "done", "final": {}, "best": {}})";
  FakeExecutor second;
  f.run(second);
  const auto processes = second.processes();
  ASSERT_EQ(processes.size(), 2u);
  EXPECT_EQ(processes[0], (std::vector<std::string>{arm[0], arm[2]}));
  EXPECT_EQ(f.store->job("arms", arm[1])->attempts, 1);  // the killed run's; not launched again
  EXPECT_EQ(f.store->status_counts("arms").at("done"), 6);
}

// --retries: a failed member trains again (in the next ready group), a finished one does not;
// --retry-failed runs every failed member of an ensemble again, together.
TEST(CoordinatorEnsembles, RetriesRunOnlyTheFailedMembersAgain) {
  Fixture f(kArms);
  f.options.seeds_per_process = 3;
  f.options.retries = 1;
  FakeExecutor fake;
  fake.script[f.jobs[1].id] = {{1, "", false}, {0, "done", false}};
  f.run(fake);
  EXPECT_EQ(process_sizes(fake), (std::vector<size_t>{3, 1, 3}));
  EXPECT_EQ(fake.processes()[1], (std::vector<std::string>{f.jobs[1].id}));
  EXPECT_EQ(f.store->job("arms", f.jobs[1].id)->attempts, 2);
  EXPECT_EQ(f.store->job("arms", f.jobs[0].id)->attempts, 1);
  EXPECT_EQ(f.store->status_counts("arms").at("done"), 6);

  Fixture g(kArms);
  g.options.seeds_per_process = 3;
  FakeExecutor refused;  // exit 2 for the whole process: bad input, no summaries
  for (const auto& j : g.jobs) refused.script[j.id] = {{2, "", false}};
  g.run(refused);
  EXPECT_EQ(g.store->status_counts("arms").at("failed"), 6);
  g.options.retry_failed = true;
  FakeExecutor again;
  g.run(again);
  EXPECT_EQ(process_sizes(again), (std::vector<size_t>{3, 3}));
  EXPECT_EQ(g.store->status_counts("arms").at("done"), 6);
}

// --retry-diverged trains a diverged member again from scratch, alone or with what else of its
// arm is ready; its finished siblings stay.
TEST(CoordinatorEnsembles, RetryDivergedTrainsOnlyTheDivergedMember) {
  Fixture f(kArms);
  f.options.seeds_per_process = 3;
  FakeExecutor fake;
  fake.script[f.jobs[2].id] = {{0, "diverged", false}};
  f.run(fake);
  ASSERT_EQ(f.status(f.jobs[2].id), "diverged");
  f.options.retry_diverged = true;
  FakeExecutor again;
  f.run(again);
  EXPECT_EQ(again.processes(), (std::vector<std::vector<std::string>>{{f.jobs[2].id}}));
  EXPECT_EQ(f.store->status_counts("arms").at("done"), 6);
}

// Auto on a GPU: the arm's first seed runs alone and measures its peak; the others wait for it,
// then start together, as many as fit 0.8 of the device's memory.
TEST(CoordinatorEnsembles, AutoOnAGpuProbesOneSeedThenFillsTheMemory) {
  Fixture f(staged_with_seeds(5));
  f.options.seeds_per_process = 0;
  f.options.devices = {"cuda:0"};
  f.options.per_device = 2;
  std::vector<std::string> asked;
  f.options.device_memory = [&](const std::string& device) {
    asked.push_back(device);
    return int64_t{10} << 30;
  };
  FakeExecutor fake;
  for (const auto& j : f.jobs) fake.peak[j.id] = j.stage == "pretrain" ? 3.0e9 : 2.5e9;
  f.run(fake);
  // pretrain: a probe, then floor(0.8 * 10 GiB / 3e9) = 2 per process; each uptrain arm: a
  // probe, then at most floor(0.8 * 10 GiB / 2.5e9) = 3 of the seeds whose parents are done.
  const auto sizes = sizes_per_arm(f, fake);
  ASSERT_EQ(sizes.size(), 3u);
  for (const auto& [arm, list] : sizes) {
    if (arm.rfind("pretrain", 0) == 0) {
      EXPECT_EQ(list, (std::vector<size_t>{1, 2, 2}));
    } else {
      EXPECT_EQ(list.front(), 1u);
      EXPECT_LE(*std::max_element(list.begin(), list.end()), 3u);
      EXPECT_LT(list.size(), 5u);  // some seeds did train together
    }
  }
  expect_one_arm_per_process(f, fake);
  EXPECT_EQ(asked, std::vector<std::string>{"cuda:0"});  // once per device
  EXPECT_EQ(f.store->status_counts("staged").at("done"), 15);

  // The probe's peak is in the store: the next run's seeds of the arm start together at once.
  Fixture g(staged_with_seeds(1));
  g.options.seeds_per_process = 0;
  g.options.devices = {"cuda:0"};
  g.options.device_memory = [](const std::string&) { return int64_t{10} << 30; };
  FakeExecutor probe;
  probe.peak[g.jobs[0].id] = 1.0e9;
  g.run(probe);
  const Fixture five(staged_with_seeds(5));
  g.sweep = five.sweep;
  g.jobs = five.jobs;
  FakeExecutor rest;
  g.run(rest);
  EXPECT_EQ(process_sizes(rest).front(), 4u);  // the 4 new pretrain seeds, floor(8.6 / 1)

  // A device whose memory cannot be told: one seed per process.
  Fixture h(kArms);
  h.options.seeds_per_process = 0;
  h.options.devices = {"cuda:0"};
  h.options.device_memory = [](const std::string&) { return int64_t{0}; };
  FakeExecutor unknown;
  h.run(unknown);
  EXPECT_EQ(process_sizes(unknown), std::vector<size_t>(6, 1));
}

TEST(Coordinator, RunDirsStayInsideTheWorkdir) {
  EXPECT_EQ(run_dir_of("/tmp/w", "s", "abc"), "/tmp/w/s/abc");
  EXPECT_THROW(run_dir_of("/tmp/w", "..", "x"), std::runtime_error);
  EXPECT_THROW(run_dir_of("/tmp/w", "s", "../../etc"), std::runtime_error);
}

}  // namespace
}  // namespace ablate::runner

namespace ablate::runner {
namespace {

TEST(LocalExecutor, AChildGetsTheLaunchEnvironmentOverTheCoordinators) {
  EXPECT_EQ(child_environment({}).size(), [] {
    size_t n = 0;
    for (char** e = environ; *e != nullptr; ++e) ++n;
    return n;
  }());
  setenv("ABLATE_TEST_KEPT", "kept", 1);
  setenv("OPENBLAS_NUM_THREADS", "8", 1);
  testing::TempDir dir;
  Launch l;
  l.job_id = "env";
  l.argv = {
      "/bin/sh", "-c",
      "echo \"$OPENBLAS_NUM_THREADS $OMP_NUM_THREADS $ABLATE_TEST_KEPT\" > " + dir.file("env.txt")};
  l.output_file = dir.file("output.txt");
  l.env = cpu_thread_environment(1);
  LocalExecutor executor;
  executor.start(l);
  std::vector<Exit> ended;
  while (ended.empty()) ended = executor.poll(5.0);
  EXPECT_EQ(ended.front().exit_code, 0);
  std::ifstream in(dir.file("env.txt"));
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "1 1 kept");  // replaced, added, inherited
  unsetenv("ABLATE_TEST_KEPT");
  unsetenv("OPENBLAS_NUM_THREADS");
}

TEST(LocalExecutor, AProgramThatCannotStartSaysWhichAndWhy) {
  testing::TempDir dir;
  Launch l;
  l.job_id = "missing";
  l.argv = {dir.file("no-such-program"), "--help"};
  l.output_file = dir.file("output.txt");
  LocalExecutor executor;
  executor.start(l);
  std::vector<Exit> ended;
  while (ended.empty()) ended = executor.poll(5.0);
  EXPECT_EQ(ended.front().exit_code, 127);
  std::ifstream in(dir.file("output.txt"));
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line,
            "executor: cannot run " + dir.file("no-such-program") + ": No such file or directory");
}

}  // namespace
}  // namespace ablate::runner
