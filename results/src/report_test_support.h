#pragma once
// Synthetic sweeps for the report tests, written through the real path: run dirs with
// summary.json and events.jsonl, ingested into a store as the coordinator would.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "ablate/results/ingest.h"
#include "ablate/results/report.h"
#include "ablate/results/store.h"
#include "ablate/testing/temp_dir.h"

namespace ablate::results::test_support {

using Params = std::vector<std::pair<std::string, std::string>>;

// One run of a synthetic sweep.
struct FakeRun {
  Params params;  // without the seed
  int64_t seed = 0;
  double value = 0;                         // final_test_acc (NaN: diverged)
  std::string status = "done";              // job status after the run
  std::vector<double> curve = {};           // eval/test_acc at steps 100, 200, ...
  std::string stage = "";                   // stage name ("" for a single-stage sweep)
  int parent = -1;                          // index of the run it starts from (-1: none)
  std::vector<nlohmann::json> events = {};  // more events.jsonl lines (attention diagnostics)
  std::string arm_key = "";    // "" = from params (the runner's also holds the parent's arm)
  std::string causality = "";  // summary.json's causality verdict ("" = none written)
};

inline std::string arm_key_of(const Params& params) {
  std::string key;
  for (const auto& [k, v] : params) key += k + "=" + v + ";";
  return std::to_string(std::hash<std::string>{}(key));
}

// Registers `runs` as sweep `name` and ingests a run dir for each, as the coordinator would.
inline void write_sweep(Store& store, const testing::TempDir& dir, const std::string& name,
                        const std::vector<FakeRun>& runs) {
  SweepRecord sweep;
  sweep.name = name;
  sweep.yaml = "name: " + name;
  sweep.config_hash = "hash";
  sweep.code_version = "abc123";
  sweep.provenance = {{"host", "testhost"}};
  store.register_sweep(sweep);
  std::vector<JobRecord> jobs;
  for (size_t i = 0; i < runs.size(); ++i) {
    JobRecord job;
    job.id = "job" + std::to_string(i);
    job.arm_key = runs[i].arm_key.empty() ? arm_key_of(runs[i].params) : runs[i].arm_key;
    job.seed = runs[i].seed;
    job.stage = runs[i].stage;
    if (runs[i].parent >= 0) job.parent_id = "job" + std::to_string(runs[i].parent);
    job.run_dir = dir.file(name + "-" + job.id);
    job.params = runs[i].params;
    job.params.emplace_back("seed", std::to_string(runs[i].seed));
    jobs.push_back(job);
  }
  store.register_jobs(name, jobs);
  for (size_t i = 0; i < runs.size(); ++i) {
    const FakeRun& run = runs[i];
    const JobRecord& job = jobs[i];
    if (run.status == "pending") continue;
    store.mark_running(name, job.id, "testhost", "cpu");
    std::filesystem::create_directories(job.run_dir);
    nlohmann::json summary{{"status", run.status},
                           {"step", 500},
                           {"parameters", 1000 + 10 * i},
                           {"throughput", 50.0},
                           {"torch_version", "1.13.1"}};
    if (!run.causality.empty()) summary["causality"] = run.causality;
    if (std::isfinite(run.value)) {
      summary["final"] = {{"test_acc", run.value}};
      summary["best"] = {{"test_acc", run.value + 0.01}};
    }
    std::ofstream(job.run_dir + "/summary.json") << summary.dump();
    std::ofstream events(job.run_dir + "/events.jsonl");
    for (size_t s = 0; s < run.curve.size(); ++s) {
      events << nlohmann::json{{"step", 100 * (s + 1)},
                               {"kind", "eval"},
                               {"test_acc", run.curve[s]}}
                    .dump()
             << "\n";
    }
    for (const auto& e : run.events) events << e.dump() << "\n";
    events.close();
    ASSERT_TRUE(ingest_run_dir(store, name, job.id, job.run_dir).ok());
    store.mark_finished(name, job.id, run.status, run.status == "done" ? 0 : 1,
                        run.status == "failed" ? "exit status 1: out of memory" : "");
  }
}

inline const Params kMha = {
    {"attention.kv_heads", "4"}, {"attention.variant", "mha"}, {"model.heads", "4"}};
inline const Params kGqa2 = {
    {"attention.kv_heads", "2"}, {"attention.variant", "gqa"}, {"model.heads", "4"}};
inline const Params kGqa1 = {
    {"attention.kv_heads", "1"}, {"attention.variant", "gqa"}, {"model.heads", "4"}};
inline const std::vector<double> kBase = {0.80, 0.82, 0.79, 0.81, 0.83};
inline const std::vector<double> kBetter = {0.81, 0.835, 0.80, 0.825, 0.84};
inline const std::vector<double> kNoisy = {0.78, 0.83, 0.76, 0.80, 0.815};

inline std::vector<FakeRun> three_arms(std::vector<int64_t> better_seeds = {0, 1, 2, 3, 4}) {
  std::vector<FakeRun> runs;
  for (int64_t s = 0; s < 5; ++s) runs.push_back({kMha, s, kBase[s]});
  for (int64_t s = 0; s < 5; ++s) runs.push_back({kGqa2, better_seeds[s], kBetter[s]});
  for (int64_t s = 0; s < 5; ++s) runs.push_back({kGqa1, s, kNoisy[s]});
  return runs;
}

class ReportTest : public ::testing::Test {
 protected:
  Report report(const std::string& sweep, ReportOptions o = {}) {
    o.sweep = sweep;
    if (o.metric.empty()) o.metric = "final_test_acc";
    o.bootstrap_resamples = 999;
    return build_report(store_, o);
  }
  const Comparison& comparison_of(const Report& r, const std::string& label) {
    for (const auto& c : r.comparisons) {
      if (r.arms[c.arm].label == label) return c;
    }
    throw std::runtime_error("no comparison for " + label);
  }

  testing::TempDir dir_;
  Store store_{dir_.file("ablate.db")};
};

}  // namespace ablate::results::test_support
