#pragma once
// The Slurm executor (`ablate run --backend slurm`): the same Executor interface as the local
// one, so the coordinator, the store, resume and retries are the same code.
//
// - Waves. start() queues launches; flush() submits the queue as one job array (`sbatch
//   --parsable`), one array task per launch (a job, or the seeds of an ensemble),
//   `%max_parallel` as its parallelism limit. The coordinator flushes
//   after each round of launches, so the jobs that are ready together form a wave, and a stage
//   is only submitted once its parent finished (dependencies are waves, not Slurm dependencies:
//   a failed parent then never leaves dependants pending in the queue).
// - Each array task runs `ablate train ... --run-dir DIR` on the shared filesystem (the seeds of
//   an ensemble: `--run-dir D1 --run-dir D2 ...`), appends its output to DIR/output.txt (the
//   lead's, D1), and writes its exit status to every member's DIR/slurm_exit when it ends.
// - poll() asks `squeue` (at most every poll_interval_s) for the tasks it tracks. A task that is
//   no longer pending or running has ended: COMPLETED and FAILED take the exit status from
//   slurm_exit; TIMEOUT is timed_out; OUT_OF_MEMORY is failed (signal 9); CANCELLED, PREEMPTED,
//   NODE_FAIL, BOOT_FAIL and a task Slurm no longer knows without a slurm_exit are `lost`: the
//   coordinator retries them from their checkpoint while retries remain.
// - Handles are "slurm:JOBID_TASK", in every member's launcher.pid; adopt() tracks an earlier
//   coordinator's tasks again (the members of one task as one, the first adopted its lead), so
//   `ablate run --detach` can submit and return and a later `ablate run` picks up where Slurm is.
// - stop_all() cancels the tracked tasks (scancel) and waits for Slurm to report them.
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "ablate/runner/executor.h"

namespace ablate::runner {

// sbatch is missing, a partition does not exist, Slurm refused a submission: the message has
// Slurm's own words. Before anything was submitted this is bad input (exit status 2).
class SlurmError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct SlurmOptions {
  std::string job_name = "ablate";  // --job-name of the arrays (the sweep's name is appended)
  std::string partition;            // --partition; "" = the cluster's default
  std::string time_limit;           // --time ("HH:MM:SS", "MM", ...); "" = from the timeout
  int gpus_per_task = 0;            // --gpus-per-task; 0 = CPU tasks
  int cpus_per_task = 0;            // --cpus-per-task (and the task's train.threads); 0 = default
  std::string memory;               // --mem per task ("8G"); "" = the partition's default
  std::string account;              // --account; "" = the user's default
  int max_parallel = 0;             // the array's %N limit; 0 = no limit
  std::vector<std::string> extra;   // more #SBATCH lines, verbatim ("--qos=high", "--exclusive")
  std::string script_dir;           // where the sbatch scripts and Slurm's own logs go
  double poll_interval_s = 5.0;     // squeue at most this often (the controller is shared)
  std::string sbatch = "sbatch";    // the commands, found on PATH (tests put fakes first)
  std::string squeue = "squeue";
  std::string scancel = "scancel";
};

// "" when `value` may be written into a batch script as one #SBATCH option's value (`one_word`:
// partition, time, mem, account, the output folder) or as a whole #SBATCH line (`one_word`
// false: an `sbatch:` line, which must start with '-'); else why not, in words. A control
// character (a newline would start a new line of the script, which bash runs) is never allowed,
// nor are bytes that are not UTF-8; a space or a quote is not allowed in one word (sbatch splits
// #SBATCH lines at spaces).
std::string slurm_text_problem(const std::string& value, bool one_word);

// Every text of `options` that reaches the batch script (partition, time, mem, account, the
// #SBATCH lines, job name and script folder), checked by slurm_text_problem: throws SlurmError
// naming the first bad one. `ablate run --backend slurm` calls it before --dry-run prints a script
// and before anything is written.
void check_slurm_texts(const SlurmOptions& options);

// The sbatch script of one wave: #SBATCH lines from `options` (time from timeout_s when
// options.time_limit is empty: whole minutes, rounded up, at least 1), then a `case` on
// SLURM_ARRAY_TASK_ID that runs launches[i] for task i, every argument shell-quoted, and writes
// its exit status to every member's run dir. Pure.
std::string sbatch_script(const SlurmOptions& options, const std::string& name,
                          const std::vector<Launch>& launches);

// `sbatch --parsable` prints "JOBID" or "JOBID;CLUSTER"; the job id, or SlurmError.
std::string parse_sbatch_output(const std::string& out);

// Lines "JOBID_TASK STATE" (squeue --noheader --array --states=all --format='%i %T') ->
// task -> state. Lines of other forms are skipped.
std::map<std::string, std::string> parse_squeue(const std::string& out);

// What a final Slurm state means for the job; `pending` for PENDING, RUNNING and the other
// states of a task that has not ended.
struct SlurmOutcome {
  bool ended = false;
  bool timed_out = false;  // TIMEOUT
  bool lost = false;       // CANCELLED, PREEMPTED, NODE_FAIL, BOOT_FAIL, DEADLINE, REVOKED
  bool out_of_memory = false;
};
SlurmOutcome slurm_outcome(const std::string& state);

// One Slurm job on one whole node of `o`'s partition (`--nodes=1 --exclusive`, so it sees the
// node's cores as the array tasks will share them; `o`'s account and #SBATCH lines apply, its
// per-task CPUs, GPUs and memory do not), waited for (`sbatch --wait`): what `ablate calibrate
// --backend slurm` measures with. Its script and output go to o.script_dir. Returns the job's
// stdout; SlurmError with the job's stderr when sbatch refuses it or it fails.
struct NodeJob {
  std::string name;               // the job's --job-name, and its files' names
  std::vector<std::string> argv;  // what it runs (absolute paths: it starts in this folder)
  std::vector<std::pair<std::string, std::string>> env;  // set for it
  std::string time_limit = "30";  // --time: a calibration takes minutes at most
};
std::string run_node_job(const SlurmOptions& o, const NodeJob& job);

class SlurmExecutor : public Executor {
 public:
  explicit SlurmExecutor(SlurmOptions options);
  ~SlurmExecutor() override = default;
  SlurmExecutor(const SlurmExecutor&) = delete;
  SlurmExecutor& operator=(const SlurmExecutor&) = delete;

  // Checks that sbatch runs and accepts the options (`sbatch --test-only`), before anything is
  // registered or submitted; SlurmError with Slurm's message otherwise.
  void check() const;

  std::string start(const Launch& launch) override;  // queues; "" (the handle comes at flush)
  std::vector<std::pair<std::string, std::string>> flush() override;
  std::vector<Exit> poll(double wait_s) override;
  std::vector<Exit> stop_all(double grace_s) override;
  size_t running() const override { return queued_.size() + tasks_.size(); }
  bool adopt(const std::string& job_id, const std::string& handle,
             const std::string& run_dir) override;

  // The scripts flush() submitted, in order (for --dry-run and tests).
  const std::vector<std::string>& scripts() const { return scripts_; }

 private:
  struct Task {
    std::string job_id;                 // the lead
    std::string run_dir;                // the lead's: its slurm_exit tells the task's status
    std::vector<LaunchMember> members;  // every job of the task, the lead first
    int missing = 0;                    // consecutive squeue answers without this task
  };
  std::vector<Exit> query();

  SlurmOptions options_;
  std::vector<Launch> queued_;
  std::map<std::string, Task> tasks_;  // "JOBID_TASK" -> task
  std::vector<std::string> scripts_;
  double next_query_ = 0;  // monotonic seconds
  int waves_ = 0;
};

}  // namespace ablate::runner
