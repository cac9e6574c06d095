#pragma once
#include <functional>
// What `ablate plan` and `ablate run` check before anything is written (docs/design.md section
// 3): the sweep file, every job's config (runner::validate, the rules a job would refuse), the
// data each job reads (experiments/data_check.h) and the devices. Every problem is reported at
// once, each with its file, line and column. Torch-free: CUDA devices are asked about through
// `ablate-train` (train_process.h).
#include <string>
#include <vector>

#include "ablate/runner/sweep.h"

namespace ablate::cli {

struct CheckedSweep {
  runner::SweepSpec sweep;
  std::vector<runner::JobSpec> jobs;
};

// What to check beyond the file and the configs: things of the machine the jobs will run on.
struct MachineChecks {
  bool data = true;  // each job's data.path (and data.val_path) holds its dataset's files
  // Each job's train.device exists on this machine. Off for sweeps: `ablate run` replaces a job's
  // train.device with the device of the slot it gives the job (--devices), checked on its own.
  bool devices = false;
  std::vector<std::string> devices_flag;  // `ablate run --devices`, checked as key --devices
};

// load_sweep and expand with the checks above. Throws one runner::ConfigError listing every
// problem (runner::kMaxConfigProblems at most).
// `before_expand` may change the parsed sweep first (`ablate run --until decided`).
CheckedSweep checked_sweep(const std::string& file, const std::vector<std::string>& overrides,
                           const MachineChecks& machine,
                           const std::function<void(runner::SweepSpec&)>& before_expand = nullptr);

}  // namespace ablate::cli
