// One run's record: its run dir's files (the lock, log.txt, config.yaml, events.jsonl,
// summary.json, checkpoint/) and the metrics they hold. A single run has one; an ensemble has one
// per member, so every member's run dir is exactly a single run's. Internal to experiments/.
#pragma once

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "ablate/experiments/train.h"
#include "ablate/results/files.h"
#include "ablate/runner/config.h"
#include "run_dir.h"

namespace ablate::experiments {

// What a run's summary says about how it trains, fixed before the first step.
struct RunFacts {
  std::string hash;       // the job id
  std::string causality;  // the lm causality verdict
  std::string unit;       // tokens or images
  std::string device;     // where it trains
  bool bf16 = false;      // autocast to bf16
  int64_t steps = 0;      // optimiser steps of the whole run
  int64_t warmup = 0;     // warm-up steps
  int64_t parameters = 0;
};

class RunRecord {
 public:
  // `label` prefixes its stderr lines ("" for a single run, "seed 3: " in an ensemble).
  RunRecord(const runner::Config& config, const TrainOptions& options, RunFacts facts,
            std::string label);

  // Creates the run dir, takes its lock, opens log.txt and writes config.yaml when absent.
  void open();
  // The checkpoint this run resumes from, if any.
  std::optional<std::filesystem::path> checkpoint() const;
  // True when the checkpoint says done or diverged: result() then holds the stored result.
  bool finished(const std::filesystem::path& checkpoint);
  // Takes step, wall time and metrics from the checkpoint's state.json and drops later events;
  // the caller loads the model and optimiser.
  void resume(const std::filesystem::path& checkpoint);
  // No checkpoint: events of an earlier attempt killed before its first checkpoint go.
  void start_fresh();
  // Opens events.jsonl and writes the "running" summary.
  void begin(const torch::Device& device);

  void say(const std::string& line);
  void emit(const nlohmann::json& event);
  // An evaluation's metrics: the event, the log line, and for a full evaluation (`subset` 0) the
  // best and final values. A subset evaluation (its first `subset` held-out examples,
  // train.eval_subset) is a curve point only: its event says "subset": N, and it counts towards
  // neither best nor final, which stay of the whole held-out split.
  void record_eval(int64_t step, const std::map<std::string, double>& metrics, int64_t subset);
  // Training time and items of one step (throughput in the summary).
  void add_step(double seconds, int64_t items);
  void write_summary(const std::string& status, int64_t step);
  // Written to checkpoint.tmp/ and renamed: a kill never leaves half a checkpoint. A write that
  // fails (a full disk) removes checkpoint.tmp/ and throws DiskError; the previous checkpoint
  // stays as it was.
  void save_checkpoint(int64_t step, const std::string& status, torch::nn::Module& model,
                       torch::optim::Optimizer& optimizer);
  // A NaN or inf loss at `step` (0-based): the diverged event, summary and checkpoint (the
  // weights before that step).
  void diverge(int64_t step, double loss, torch::nn::Module& model,
               torch::optim::Optimizer& optimizer);
  // The end of training at `step`: result and summary "done".
  void done(int64_t step);
  // What decoding costs (lm and s2s, measured after training): fields added to the summary
  // (kv_cache_bytes_per_token, kv_cache_bytes_per_source_token, decode_throughput (tokens/s), ...).
  void set_decode_cost(const nlohmann::json& fields) { decode_cost_ = fields; }

  const runner::Config& config() const { return config_; }
  const TrainOptions& options() const { return options_; }
  int64_t start_step() const { return start_step_; }
  bool diverged() const { return result_.status == "diverged"; }
  TrainResult& result() { return result_; }
  // This process trains the run with n seeds together from start_step() (1: alone). Batched
  // products round differently from single ones, and long training carries that to seed-noise
  // size, so the exact numbers depend on it (README, "Seeds trained together"): the summary's
  // seeds_in_process (this process's) and seeds_in_process_history (every process's).
  void set_seeds_in_process(int64_t n);
  void set_parameters(int64_t n) {  // known once the model is built
    facts_.parameters = n;
    result_.parameters = n;
  }
  double wall_time() const;  // seconds, earlier calls included

 private:
  double throughput() const { return train_seconds_ > 0 ? items_ / train_seconds_ : 0.0; }

  runner::Config config_;
  TrainOptions options_;
  std::filesystem::path dir_;
  RunFacts facts_;
  std::string label_;
  torch::Device device_{torch::kCPU};
  std::unique_ptr<RunDirLock> lock_;
  results::AppendFile log_, events_;  // checked writes: a full disk is a DiskError
  int64_t start_step_ = 0;
  double wall_before_ = 0.0;  // wall time of earlier calls (from the checkpoint)
  std::chrono::steady_clock::time_point wall_start_ = std::chrono::steady_clock::now();
  double train_seconds_ = 0.0, items_ = 0.0;  // this call's training time and items
  nlohmann::json best_ = nlohmann::json::object(), final_ = nlohmann::json::object();
  TrainResult result_;
  nlohmann::json decode_cost_ = nlohmann::json::object();
  // Every process that trained the run: [{"from_step": S, "seeds": N}, ...], kept in the
  // checkpoint's state.json; "seeds": null for steps an older checkpoint does not account for.
  nlohmann::json groupings_ = nlohmann::json::array();
};

}  // namespace ablate::experiments
