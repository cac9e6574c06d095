#pragma once
// Executors run jobs as processes behind one interface (like leveldb's Env): the local one forks
// `ablate train` children, the Slurm one (slurm.h) submits them as job arrays, tests use a
// scripted fake. The coordinator only talks to this interface, so crashes, resumes and backends
// share one code path.
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace ablate::runner {

// One job of a process: several seeds of one arm may train together in one process (an
// ensemble, ensembles.h).
struct LaunchMember {
  std::string job_id;
  std::string run_dir;
};

// One process to start for a job, or for the jobs of an ensemble.
struct Launch {
  std::string job_id;             // the (lead) job's id: the coordinator's key for the process
  std::vector<std::string> argv;  // program and arguments
  // Variables set in the process's environment on top of the coordinator's (NAME, value): the
  // thread counts of the BLAS and OpenMP, which they read when they load, before main runs.
  std::vector<std::pair<std::string, std::string>> env;
  std::string output_file;  // the child's stdout and stderr go here (appended)
  double timeout_s = 0;     // kill after this many seconds; 0 = never
  std::string run_dir;      // the (lead) job's run dir
  // Every job the process trains, the lead (job_id, run_dir) first; the handle goes into each
  // one's run dir (launcher.pid), and Slurm tasks leave their exit status in each. Empty: the
  // one job above.
  std::vector<LaunchMember> members;
};

// The jobs of `launch`: its members, or its one job.
std::vector<LaunchMember> members_of(const Launch& launch);

// The environment a launched process gets: the coordinator's, with each of `set` replacing a
// variable of the same name or added ("NAME=value" entries).
std::vector<std::string> child_environment(
    const std::vector<std::pair<std::string, std::string>>& set);

// A process that ended.
struct Exit {
  std::string job_id;  // Launch::job_id: the lead
  // Launch::members, so that the coordinator finishes every job of the process; empty: job_id.
  std::vector<LaunchMember> members;
  int exit_code = -1;      // exit status when it exited normally, else -1
  int signal = 0;          // the signal that killed it, else 0
  bool timed_out = false;  // killed by the executor for exceeding Launch::timeout_s
  // The scheduler's final state ("COMPLETED", "CANCELLED", "PREEMPTED", ...); "" locally.
  std::string state;
  // Ended without an outcome of its own (cancelled, preempted, node failure, gone from the
  // scheduler): a retry resumes it from its checkpoint.
  bool lost = false;
};

// The jobs of the process that ended: its members, or its one job (with no run dir).
std::vector<LaunchMember> members_of(const Exit& exit);

class Executor {
 public:
  virtual ~Executor() = default;
  // Starts the process and returns its handle ("" when the backend has none yet: see flush()).
  // An executor that has the handle at once records it in the launcher.pid of every member's run
  // dir before the process may begin, so a later coordinator can stop it if this one dies at any
  // moment.
  virtual std::string start(const Launch& launch) = 0;
  // Processes that ended since the last call; waits up to `wait_s` for the first one.
  virtual std::vector<Exit> poll(double wait_s) = 0;
  // Asks every running process to stop (SIGTERM to its process group), then waits for them.
  virtual std::vector<Exit> stop_all(double grace_s) = 0;
  virtual size_t running() const = 0;
  // Submits what start() has queued, for backends that batch (Slurm submits one array per wave),
  // and returns (job id, handle) for each job, every member of a process with the process's
  // handle: the handles go to the run dirs' `launcher.pid`.
  virtual std::vector<std::pair<std::string, std::string>> flush() { return {}; }
  // A job an earlier coordinator started (`handle` from its launcher.pid): true when this
  // executor tracks it again (it still runs, or poll() will report how it ended); false when it
  // cannot, and the caller stops it as an orphan. The members of one process share a handle:
  // adopted in the order they were launched (the lead first), they are one process again.
  virtual bool adopt(const std::string& job_id, const std::string& handle,
                     const std::string& run_dir) {
    (void)job_id, (void)handle, (void)run_dir;
    return false;
  }
};

// Forks each job into its own process group (so Ctrl-C on the terminal reaches the coordinator,
// which decides), enforces timeouts, and reaps children. No destructor throws: it stops what
// still runs.
class LocalExecutor : public Executor {
 public:
  LocalExecutor() = default;
  ~LocalExecutor() override;
  LocalExecutor(const LocalExecutor&) = delete;
  LocalExecutor& operator=(const LocalExecutor&) = delete;

  std::string start(const Launch& launch) override;
  std::vector<Exit> poll(double wait_s) override;
  std::vector<Exit> stop_all(double grace_s) override;
  size_t running() const override { return children_.size(); }

 private:
  struct Child {
    std::string job_id;
    std::vector<LaunchMember> members;
    double deadline = 0;  // monotonic seconds; 0 = none
    bool timed_out = false;
  };
  std::vector<Exit> reap(bool block);
  std::map<pid_t, Child> children_;
};

// Seconds on a monotonic clock.
double monotonic_seconds();

}  // namespace ablate::runner
