#pragma once
// The coordinator of `ablate run` (docs/design.md section 2): registers a sweep's jobs in the
// store, launches ready jobs through an Executor, ingests their run dirs, and records outcomes. It
// is the database's only writer. Re-running it resumes: done jobs are skipped, interrupted ones
// continue from their checkpoints, new ones run.
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "ablate/results/store.h"
#include "ablate/runner/executor.h"
#include "ablate/runner/sweep.h"

namespace ablate::runner {

struct PlanChange;

struct RunOptions {
  std::string workdir = "runs";             // run dirs go to WORKDIR/<sweep>/<job id>/
  std::vector<std::string> devices{"cpu"};  // cpu, or CUDA devices (cuda:0, cuda:1, ...)
  int per_device = 1;                       // jobs at once on each device
  int retries = 0;                          // extra attempts for a failed job, this invocation
  double timeout_s = 0;                     // per attempt; 0 = none
  std::string ablate_binary;                // the `ablate` executable the jobs run
  int cpu_threads = 0;                      // threads to share among CPU jobs; 0 = all cores
  bool progress = true;                     // stderr: progress line on a tty, else job lines
  double ingest_interval_s = 2.0;           // how often running jobs' events are ingested
  int threads_per_job = 0;  // train.threads of CPU jobs; 0 = cpu_threads / CPU slots
  // Return once the ready jobs are submitted, leaving them running (Slurm's --detach); a later
  // run_sweep adopts them through the executor and goes on.
  bool detach = false;
  // Run the sweep's failed and timed-out jobs again, whatever their exit status (bad input is
  // fixed in the file by now), each once more from its checkpoint (`--retries` applies on top).
  bool retry_failed = false;
  // Train the sweep's diverged jobs again from scratch: each is reset first (its run dir moved
  // aside, its results removed; lifecycle.h). Without it a diverged run is a result and stays.
  bool retry_diverged = false;
  // Seeds of one arm trained together in one process, at most this many (ensembles.h): jobs
  // ready at the same time that differ only in seed (the same stage and JobSpec::arm_key) start
  // as one `ablate train --run-dir D1 --run-dir D2 ...`, which takes one slot. 0 = auto:
  // kCpuSeedsPerProcess on the CPU; on a CUDA device as many as fit its memory, from a finished
  // seed's peak_memory_bytes (without one, the arm's first seed runs alone and measures it).
  int seeds_per_process = 0;
  // A CUDA device's memory in bytes (0 = unknown: auto is 1 there); unset: nvidia-smi's answer.
  std::function<int64_t(const std::string& device)> device_memory;
  // Told what registering the sweep changed, before any job is launched (`ablate run` prints it).
  std::function<void(const PlanChange&)> on_registered;
};

// What registering a sweep file changed in the database (RunOptions::on_registered).
struct PlanChange {
  bool created = false;                  // the sweep is new to the database
  int planned = 0;                       // jobs the file plans
  int added = 0;                         // of them, new to the database
  std::vector<std::string> stale;        // jobs registered earlier that the file no longer plans
  std::vector<std::string> newly_stale;  // of them, the ones this file's edit made stale
  std::vector<std::string> reactivated;  // stale jobs the file plans again (results count again)
  std::vector<std::string> retried;      // failed or timed-out jobs that retry_failed runs again
  std::vector<std::string> reset;        // diverged jobs that retry_diverged trains again
};

struct RunSummary {
  std::map<std::string, int> counts;  // final status -> jobs of this sweep
  int launched = 0;                   // processes started by this invocation (an ensemble: 1)
  bool interrupted = false;           // stopped by `interrupt`
};

// Holds a lock file with flock for the coordinator's lifetime: WORKDIR/<sweep>/.lock and
// DB.<sweep>.lock, so a second coordinator on the same sweep (same database or same workdir)
// fails at once with the first one's pid instead of corrupting anything.
class SweepLock {
 public:
  // Locks `file` (created with its folder when absent) for `sweep`.
  SweepLock(const std::string& file, const std::string& sweep);
  ~SweepLock();
  SweepLock(const SweepLock&) = delete;
  SweepLock& operator=(const SweepLock&) = delete;

 private:
  int fd_ = -1;
};

// The two lock files of a sweep.
std::string workdir_lock_file(const std::string& workdir, const std::string& sweep);
std::string database_lock_file(const std::string& database, const std::string& sweep);

// Where a job's run dir lives; checked to stay inside `workdir`.
std::string run_dir_of(const std::string& workdir, const std::string& sweep,
                       const std::string& job_id);

// The environment that holds a CPU job's libraries to `threads` threads: OMP_NUM_THREADS,
// OPENBLAS_NUM_THREADS and MKL_NUM_THREADS. They read it when they load, before `ablate train`'s
// main runs, so only the launcher can set it; LibTorch's own count is train.threads. Without it
// OpenBLAS starts a worker per core beside a 1-thread job, and a job lands at random in a fast or
// a slow mode (issue 19's measurement: 45 or 65 ms a step).
std::vector<std::pair<std::string, std::string>> cpu_thread_environment(int threads);

// The process that trains one job: `ablate train RUN_DIR/config.yaml train.device=DEVICE
// --run-dir RUN_DIR` (plus train.threads and cpu_thread_environment on CPU), its output appended
// to RUN_DIR/output.txt.
Launch job_launch(const std::string& job_id, const std::string& run_dir, const std::string& device,
                  int threads, const RunOptions& options);

// The process that trains `members` together, the seeds of one arm (an ensemble; the first is
// the lead): `ablate train train.device=DEVICE --run-dir D1 --run-dir D2 ...` (plus train.threads
// and cpu_thread_environment on CPU), each member's config from its own Di/config.yaml, the output
// appended to the lead's output.txt. For one member, job_launch's process (with Launch::members
// set).
Launch ensemble_launch(const std::vector<LaunchMember>& members, const std::string& device,
                       int threads, const RunOptions& options);

// Runs the sweep to completion (or until `interrupt` becomes true). Throws std::runtime_error
// for a held lock or an unusable workdir before launching anything.
RunSummary run_sweep(const SweepSpec& sweep, const std::vector<JobSpec>& jobs,
                     results::Store& store, Executor& executor, const RunOptions& options,
                     const std::atomic<bool>* interrupt = nullptr);

// git commit and dirty flag of the source tree the binary was built from ("unknown" when not a
// git checkout).
struct CodeVersion {
  std::string commit = "unknown";
  bool dirty = false;
};
CodeVersion code_version();

}  // namespace ablate::runner
