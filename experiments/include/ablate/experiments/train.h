#pragma once
// One training run (docs/design.md sections 2 and 5): builds the dataset and the model from a
// resolved config, trains, and writes the run directory:
//   config.yaml    the resolved config (canonical form; its hash is the job id)
//   events.jsonl   one JSON object per line, appended and flushed as training goes
//   summary.json   status, final and best metrics, wall time, parameters, throughput, memory
//   checkpoint/    model.pt, optimizer.pt, state.json; replaced atomically
//   log.txt        human-readable log
// Running again on the same run dir resumes from the checkpoint and gives the same final
// metrics as an uninterrupted run (bit-identical on CPU): every random draw of step t comes from
// a generator seeded by (seed, t), and the checkpoint holds the model, optimiser and dynamic
// attention state.
// Torch-free header: the command line includes it without LibTorch.
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "ablate/runner/config.h"

namespace ablate::experiments {

// Bad input found when the run starts (a run dir holding another config, a causality check
// that fails, a parent checkpoint that does not fit): exit status 2, nothing trained.
struct RunError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct TrainOptions {
  std::string run_dir;     // the run directory (created when absent)
  bool progress = true;    // a progress line on stderr when it is a terminal
  int64_t stop_after = 0;  // stop (as a kill would) after this many steps of this call; 0 = no
  bool quiet = false;      // no log lines on stderr (tests)
  // Tests: the run's weights become NaN before this step (1-based), so the step diverges; 0 =
  // never. Checks that a diverging ensemble member leaves the others unchanged.
  int64_t poison_at_step = 0;
};

struct TrainResult {
  std::string status;                   // done | diverged | stopped
  int64_t step = 0;                     // last completed optimiser step
  int64_t resumed_from = 0;             // checkpoint step this call started from (0 = fresh)
  int64_t diverged_step = -1;           // step whose loss was NaN or inf
  std::map<std::string, double> final;  // metrics of the last evaluation
  std::map<std::string, double> best;   // best value of each evaluation metric
  int64_t parameters = 0;               // model parameters
};

// Trains `config` in options.run_dir. Throws runner::ConfigError / DataError / RunError on bad
// input before anything is written.
TrainResult train(const runner::Config& config, const TrainOptions& options);

// Seeds trained together (docs/design.md, "Ensembles"): members[i] is trained as
// train(members[i].config, members[i].options) would train it, each in its own run dir with the
// same files, but all in one process as one batched model. The configs must differ in `seed`
// (and in init.from, each member starting from its own parent) only; RunError otherwise, before
// anything is written. A member that diverges is frozen while the others go on; a member whose
// run dir already holds a finished run is reported as it stands. Results are in members' order.
struct Member {
  runner::Config config;  // the member's resolved config
  TrainOptions options;   // its run dir; progress, quiet and stop_after apply to the whole call
};
std::vector<TrainResult> train_ensemble(const std::vector<Member>& members);

// Why the device `name` (train.device, or one of `ablate run --devices`) cannot be used on this
// machine, or "" when it can. Written to follow "train.device = " or "--devices ": "cuda:3, but
// this machine has 1 CUDA device (cuda:0)"; "cuda, but this machine has no CUDA device"; on a
// build without CUDA, every CUDA device. auto and cpu always can. (Torch-free here: the command
// line checks devices before anything is written; choose_device refuses the same names.)
std::string device_problem(const std::string& name);

// The language-model causality check run before training: perturbs tokens after position t of a
// random batch and requires the logits at positions <= t to stay bit-identical, on fresh copies
// of the model in training mode. Returns the largest change seen (0 when causal).
double lm_causality_leak(const runner::Config& config);

}  // namespace ablate::experiments
