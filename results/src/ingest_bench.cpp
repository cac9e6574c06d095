// Benchmarks of the results store (issue 4): the ingest rate in metric rows per second (target:
// at least 200k rows/s) and the coordinator's overhead per job (target: under 50 ms); and the time
// of a report (issue 5) on 200 jobs x 5,000 metric rows (target: under 2 s, bootstrap included).
//   build/results/results_bench
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "ablate/results/ingest.h"
#include "ablate/results/report.h"
#include "ablate/results/report_writer.h"
#include "ablate/results/store.h"
#include "ablate/testing/temp_dir.h"

namespace ablate::results {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;

using ablate::testing::TempDir;

// One train event as experiments/src/train.cpp writes it: 6 numeric fields.
std::string train_line(int64_t step) {
  const double s = static_cast<double>(step);
  return json{{"step", step},
              {"kind", "train"},
              {"loss", 4.0 / (1.0 + 1e-3 * s)},
              {"lr", 3e-4 * (1.0 - s * 1e-6)},
              {"grad_norm", 0.75 + 1e-5 * s},
              {"step_time_s", 0.0123 + 1e-9 * s},
              {"throughput", 81234.5 - 1e-3 * s},
              {"peak_memory_bytes", int64_t{1} << 30}}
             .dump() +
         "\n";
}

// Every 50 steps an eval event and two attention events (dgqa diagnostics).
std::string eval_lines(int64_t step) {
  std::string text = json{{"step", step},
                          {"kind", "eval"},
                          {"val_loss", 2.0 + 1.0 / step},
                          {"val_ppl", 7.4 + 1.0 / step},
                          {"val_bpb", 2.9 + 1.0 / step}}
                         .dump() +
                     "\n";
  for (size_t layer = 0; layer < 2; ++layer) {
    text += json{{"step", step},          {"kind", "attention"},   {"layer", layer},
                 {"alloc", {3, 1, 2, 2}}, {"alloc_entropy", 1.32}, {"degenerate_steps", 0},
                 {"key_norm_mean", 1.1},  {"key_norm_std", 0.2}}
                .dump() +
            "\n";
  }
  return text;
}

void write_events(const fs::path& run_dir, int64_t steps, bool with_eval) {
  fs::create_directories(run_dir);
  std::ofstream out(run_dir / "events.jsonl", std::ios::binary | std::ios::trunc);
  for (int64_t s = 1; s <= steps; ++s) {
    out << train_line(s);
    if (with_eval && s % 50 == 0) out << eval_lines(s);
  }
}

void write_summary(const fs::path& run_dir, int64_t steps) {
  json s{{"status", "done"},
         {"step", steps},
         {"steps", steps},
         {"final", {{"val_loss", 2.1}, {"val_ppl", 8.2}, {"val_bpb", 3.0}}},
         {"best", {{"val_loss", 2.0}, {"val_ppl", 7.4}, {"val_bpb", 2.9}}},
         {"wall_time_s", 61.5},
         {"parameters", 812345},
         {"throughput", 81234.5},
         {"throughput_unit", "tokens/s"},
         {"peak_memory_bytes", int64_t{1} << 30},
         {"device", "cpu"},
         {"config_hash", "0123456789abcdef"},
         {"causality", "causal"},
         {"allow_noncausal", false},
         {"torch_version", "2.1.0"}};
  std::ofstream(run_dir / "summary.json", std::ios::trunc) << s.dump(2) << "\n";
}

JobRecord job_record(int64_t i, const fs::path& run_dir) {
  JobRecord j;
  char id[17];
  std::snprintf(id, sizeof id, "%016llx", static_cast<unsigned long long>(0x9e3779b9ull * (i + 1)));
  j.id = id;
  j.stage = "train";
  j.arm_key = "arm" + std::to_string(i % 12);
  j.seed = i % 3;
  j.run_dir = run_dir.string();
  // A resolved config's worth of params (the runner stores every key).
  const char* variants[] = {"mha", "gqa", "kdgqa", "dgqa", "pgqa", "wgqa"};
  j.params = {{"task", "lm"},
              {"seed", std::to_string(j.seed)},
              {"attention.variant", variants[i % 6]},
              {"attention.kv_heads", std::to_string(1 << (i % 3))},
              {"attention.qk_norm", "false"},
              {"attention.rope", "true"},
              {"attention.ema_window", "100"},
              {"attention.noise_scale", "0.1"},
              {"model.dim", "128"},
              {"model.depth", "4"},
              {"model.heads", "8"},
              {"data.dataset", "fortunes"},
              {"data.seq_len", "128"},
              {"train.steps", "2000"},
              {"train.batch_size", "32"},
              {"train.lr", "0.0003"},
              {"train.min_lr", "3e-05"},
              {"train.warmup", "100"},
              {"train.eval_every", "250"},
              {"train.log_every", "10"}};
  return j;
}

SweepRecord sweep_record() {
  SweepRecord s;
  s.name = "bench";
  s.yaml = "grid: {}\n";
  s.config_hash = "h";
  s.code_version = "abc";
  return s;
}

// Ingest of a whole run dir into a fresh store, in metric rows per second. range(0) train events
// (6 numeric fields each); range(1) = 1 adds an eval and two attention events every 50 steps.
void BM_IngestRunDir(benchmark::State& state) {
  const int64_t steps = state.range(0);
  TempDir dir;
  const fs::path run_dir = dir.path() / "run";
  write_events(run_dir, steps, state.range(1) != 0);
  write_summary(run_dir, steps);
  const fs::path db = dir.path() / "bench.db";
  const JobRecord job = job_record(0, run_dir);
  int64_t rows = 0;
  for (auto _ : state) {
    state.PauseTiming();
    std::optional<Store> store;
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(db.string() + suffix);
    store.emplace(db.string());
    store->register_sweep(sweep_record());
    store->register_jobs("bench", {job});
    state.ResumeTiming();

    const IngestResult r = ingest_run_dir(*store, "bench", job.id, run_dir.string());
    if (!r.ok()) state.SkipWithError(r.error.c_str());
    rows += r.rows_added;

    state.PauseTiming();
    store.reset();
    state.ResumeTiming();
  }
  state.counters["rows"] = static_cast<double>(rows) / static_cast<double>(state.iterations());
  state.counters["rows/s"] =
      benchmark::Counter(static_cast<double>(rows), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_IngestRunDir)
    ->ArgsProduct({{100000}, {0, 1}})
    ->ArgNames({"events", "eval"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2.0);

// One poll of a running job: 10 new train events appended to a run dir of range(0) lines
// already ingested (the coordinator ingests running jobs every few seconds).
void BM_IngestPoll(benchmark::State& state) {
  TempDir dir;
  const fs::path run_dir = dir.path() / "run";
  write_events(run_dir, state.range(0), false);
  Store store((dir.path() / "bench.db").string());
  store.register_sweep(sweep_record());
  const JobRecord job = job_record(0, run_dir);
  store.register_jobs("bench", {job});
  ingest_run_dir(store, "bench", job.id, run_dir.string());
  int64_t step = state.range(0);
  std::ofstream out(run_dir / "events.jsonl", std::ios::binary | std::ios::app);
  for (auto _ : state) {
    state.PauseTiming();
    for (int i = 0; i < 10; ++i) out << train_line(++step);
    out.flush();
    state.ResumeTiming();
    const IngestResult r = ingest_run_dir(store, "bench", job.id, run_dir.string());
    if (r.rows_added != 60) state.SkipWithError("unexpected row count");
  }
}
BENCHMARK(BM_IngestPoll)->Arg(1000)->Arg(100000)->Unit(benchmark::kMicrosecond)->UseRealTime();

// The coordinator's bookkeeping per job: register_jobs (one job, 20 params; each call rebuilds
// the views), mark_running, mark_finished; with range(0) = 1 also the final ingest of a small run
// dir (200 train events, 4 evals, a summary).
void BM_CoordinatorPerJob(benchmark::State& state) {
  const bool with_ingest = state.range(0) != 0;
  TempDir dir;
  const fs::path run_dir = dir.path() / "run";
  write_events(run_dir, 200, true);
  write_summary(run_dir, 200);
  Store store((dir.path() / "bench.db").string());
  store.register_sweep(sweep_record());
  int64_t i = 0;
  for (auto _ : state) {
    const JobRecord job = job_record(i++, run_dir);
    store.register_jobs("bench", {job});
    store.mark_running("bench", job.id, "host", "cpu");
    if (with_ingest) ingest_run_dir(store, "bench", job.id, run_dir.string());
    store.mark_finished("bench", job.id, "done", 0, "");
  }
  state.counters["jobs"] = static_cast<double>(i);
}
BENCHMARK(BM_CoordinatorPerJob)
    ->Arg(0)
    ->Arg(1)
    ->ArgNames({"ingest"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// register_jobs of a whole 500-job sweep in one batch, per job.
void BM_RegisterBatch(benchmark::State& state) {
  const int64_t n = state.range(0);
  std::vector<JobRecord> jobs;
  for (int64_t i = 0; i < n; ++i) jobs.push_back(job_record(i, "runs/bench"));
  TempDir dir;
  const fs::path db = dir.path() / "bench.db";
  for (auto _ : state) {
    state.PauseTiming();
    std::optional<Store> store;
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(db.string() + suffix);
    store.emplace(db.string());
    store->register_sweep(sweep_record());
    state.ResumeTiming();
    store->register_jobs("bench", jobs);
    state.PauseTiming();
    store.reset();
    state.ResumeTiming();
  }
  // Seconds per job.
  state.counters["s/job"] =
      benchmark::Counter(static_cast<double>(n), benchmark::Counter::kIsIterationInvariantRate |
                                                     benchmark::Counter::kInvert);
}
BENCHMARK(BM_RegisterBatch)->Arg(500)->Unit(benchmark::kMillisecond)->UseRealTime();

// A report of a sweep of 200 jobs (40 arms x 5 seeds), each with about 5,000 metric rows (800
// train events, 16 evals, 32 attention events) and a summary: build_report (stats with 9,999
// bootstrap resamples per arm, tests, the eval/val_loss curves) and the md and json text;
// range(0) = 1 also draws the three figures with gnuplot and writes md, html, tex and json.
void BM_Report(benchmark::State& state) {
  const bool files = state.range(0) != 0;
  TempDir dir;
  Store store((dir.path() / "bench.db").string());
  store.register_sweep(sweep_record());
  std::vector<JobRecord> jobs;
  for (int64_t i = 0; i < 200; ++i) {
    const fs::path run_dir = dir.path() / ("run" + std::to_string(i));
    JobRecord j = job_record(i, run_dir);
    const int64_t arm = i / 5;
    j.arm_key = "arm" + std::to_string(arm);
    j.seed = i % 5;
    for (auto& [k, v] : j.params) {
      if (k == "seed") v = std::to_string(j.seed);
      if (k == "attention.variant") v = arm % 2 ? "gqa" : "dgqa";
      if (k == "attention.kv_heads") v = std::to_string(1 + arm / 2);
    }
    jobs.push_back(j);
    write_events(run_dir, 800, true);
    write_summary(run_dir, 800);
    // Per-job final values so that arms differ and seeds vary.
    json summary = json::parse(std::ifstream(run_dir / "summary.json"));
    summary["final"]["val_loss"] =
        2.0 + 0.01 * static_cast<double>(arm % 7) + 0.003 * static_cast<double>((i * 7919) % 11);
    std::ofstream(run_dir / "summary.json", std::ios::trunc) << summary.dump();
  }
  store.register_jobs("bench", jobs);
  int64_t rows = 0;
  for (const auto& j : jobs) {
    store.mark_running("bench", j.id, "host", "cpu");
    rows += ingest_run_dir(store, "bench", j.id, j.run_dir).rows_added;
    store.mark_finished("bench", j.id, "done", 0, "");
  }
  ReportOptions options;
  options.sweep = "bench";
  options.metric = "final_val_loss";
  options.lower_is_better = true;
  ReportFiles out;
  out.formats = {"md", "html", "tex", "json"};
  out.out_dir = (dir.path() / "report").string();
  size_t bytes = 0;
  for (auto _ : state) {
    const Report report = build_report(store, options);
    if (files) {
      bytes += write_report(report, out).files.size();
    } else {
      bytes += render_json(report).size() + render_markdown(report, {}).size();
    }
  }
  benchmark::DoNotOptimize(bytes);
  state.counters["metric_rows"] = static_cast<double>(rows);
}
BENCHMARK(BM_Report)
    ->Arg(0)
    ->Arg(1)
    ->ArgNames({"files"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace ablate::results

BENCHMARK_MAIN();
