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

// One process to start for a job.
struct Launch {
  std::string job_id;             // the job's id (the coordinator's key)
  std::vector<std::string> argv;  // program and arguments
  std::string output_file;        // the child's stdout and stderr go here (appended)
  double timeout_s = 0;           // kill after this many seconds; 0 = never
  std::string run_dir;            // the job's run dir (Slurm tasks leave their exit status there)
};

// A process that ended.
struct Exit {
  std::string job_id;
  int exit_code = -1;      // exit status when it exited normally, else -1
  int signal = 0;          // the signal that killed it, else 0
  bool timed_out = false;  // killed by the executor for exceeding Launch::timeout_s
  // The scheduler's final state ("COMPLETED", "CANCELLED", "PREEMPTED", ...); "" locally.
  std::string state;
  // Ended without an outcome of its own (cancelled, preempted, node failure, gone from the
  // scheduler): a retry resumes it from its checkpoint.
  bool lost = false;
};

class Executor {
 public:
  virtual ~Executor() = default;
  // Starts the process and returns its handle ("" when the backend has none yet: see flush()).
  // An executor that has the handle at once records it in Launch::run_dir/launcher.pid before
  // the job may begin, so a later coordinator can stop it if this one dies at any moment.
  virtual std::string start(const Launch& launch) = 0;
  // Processes that ended since the last call; waits up to `wait_s` for the first one.
  virtual std::vector<Exit> poll(double wait_s) = 0;
  // Asks every running process to stop (SIGTERM to its process group), then waits for them.
  virtual std::vector<Exit> stop_all(double grace_s) = 0;
  virtual size_t running() const = 0;
  // Submits what start() has queued, for backends that batch (Slurm submits one array per wave),
  // and returns (job id, handle) for each: the handles go to the run dirs' `launcher.pid`.
  virtual std::vector<std::pair<std::string, std::string>> flush() { return {}; }
  // A job an earlier coordinator started (`handle` from its launcher.pid): true when this
  // executor tracks it again (it still runs, or poll() will report how it ended); false when it
  // cannot, and the caller stops it as an orphan.
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
    double deadline = 0;  // monotonic seconds; 0 = none
    bool timed_out = false;
  };
  std::vector<Exit> reap(bool block);
  std::map<pid_t, Child> children_;
};

// Seconds on a monotonic clock.
double monotonic_seconds();

}  // namespace ablate::runner
