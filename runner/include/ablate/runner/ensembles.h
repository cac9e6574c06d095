#pragma once
// Seeds trained together (docs/design.md section 2, "Ensembles"): jobs that differ only in their
// seed (the same stage and arm, JobSpec::arm_key; a stage job each from its own parent) can train
// in one `ablate train --run-dir D1 --run-dir D2 ...` process. How many share a process is
// `--seeds-per-process N` or the sweep file's `seeds_per_process: N`, or `auto`: a constant on
// the CPU, and on a GPU as many as fit its memory, judged from one member's measured peak.
// The rules are pure functions here; the coordinator applies them to the jobs ready at a time,
// `ablate plan` to the whole plan. Torch-free.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ablate/runner/sweep.h"

namespace ablate::runner {

// `auto` on a CPU device: seeds per process. Chosen from the measurement in docs/benchmarks.md:
// the quickstart sweep on 2 cores (--per-device 2) took 183 s with 1, 174 s with 2 and 197 s
// with 3 seeds per process (a training step of 2 members costs 1.8x one, of 3 members 2.9x, and
// 5 processes of 3 leave one slot idle in the last wave).
constexpr int kCpuSeedsPerProcess = 2;
// `auto` on a GPU: at most this many seeds in one process ...
constexpr int kMaxGpuSeedsPerProcess = 64;
// ... filling at most this share of the device's memory (the rest: the CUDA context, the caching
// allocator's fragmentation, a member that peaks above the one measured).
constexpr double kGpuMemoryShare = 0.8;

// The value of `--seeds-per-process` or `seeds_per_process:`: a whole number >= 1, or `auto`
// (returned as 0). Throws std::invalid_argument with what is wrong ("expected a whole number >= 1
// or auto, got 0") for anything else.
int parse_seeds_per_process(const std::string& text);

// "auto" for 0, else the number.
std::string seeds_per_process_text(int seeds_per_process);

// Seeds of one arm that fit a GPU together: floor(kGpuMemoryShare * memory / peak) capped at
// `cap`, at least 1; 1 when the peak or the memory is unknown (<= 0).
int seeds_fitting_gpu(int64_t peak_bytes, int64_t memory_bytes, int cap = kMaxGpuSeedsPerProcess);

// What decides how many ready seeds of one arm start now in one process.
struct SeedsPerProcessInputs {
  int setting = 0;                     // --seeds-per-process / seeds_per_process: (0 = auto)
  bool gpu = false;                    // the slot's device is a CUDA device
  int64_t device_memory = 0;           // its memory in bytes; 0 = unknown
  std::optional<int64_t> peak_memory;  // a finished seed of the arm measured it (bytes)
  bool arm_running = false;            // a seed of the arm (its probe) runs now
};
// How many of an arm's ready seeds to launch now in one process; 0 = none yet. A number given is
// that number; auto on a CPU is kCpuSeedsPerProcess; auto on a GPU of unknown memory is 1; on a
// GPU with a measured peak, seeds_fitting_gpu; without one, the first seed runs alone (a probe:
// 1) and the others wait (0) while it runs, until its summary has the peak.
int seeds_to_launch(const SeedsPerProcessInputs& in);

// Jobs that may share a process, as groups: the same stage and arm_key. Groups in the order of
// their first job, each group's jobs in the order given.
std::vector<std::vector<const JobSpec*>> seed_groups(const std::vector<const JobSpec*>& jobs);

// Every group of `jobs` cut into processes of up to `n` (>= 1) jobs, in order: how `ablate plan`
// counts processes when all of an arm's seeds are ready together.
std::vector<std::vector<const JobSpec*>> processes_of(const std::vector<JobSpec>& jobs, int n);

// The memory in bytes of the CUDA device `device` ("cuda:INDEX"; "cuda" is index 0), from
// `nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits -i INDEX` (MiB); 0 when it
// cannot be told (no nvidia-smi, no such device, not a CUDA device).
int64_t nvidia_smi_memory(const std::string& device);

// Parses nvidia-smi's answer above ("81559\n") to bytes; 0 when it is not one whole number.
int64_t parse_nvidia_smi_memory(const std::string& output);

}  // namespace ablate::runner
