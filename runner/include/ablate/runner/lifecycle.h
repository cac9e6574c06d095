#pragma once
// A sweep's life after its jobs ran (docs/design.md section 6): jobs returned to pending with
// their run dirs moved aside (`ablate reset`, `ablate run --retry-diverged`), and stale jobs
// deleted with their run dirs (`ablate prune`). The store's part is in results/store.h; this adds
// the run dirs and the locks. Torch-free.
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "ablate/results/store.h"
#include "ablate/runner/coordinator.h"

namespace ablate::runner {

// Holds a sweep's locks for a command that changes the sweep without running it (reset, prune):
// the database's (DB.<sweep>.lock) and the workdir's (WORKDIR/<sweep>/.lock) of every workdir its
// jobs' run dirs are in, so it is refused while a coordinator (`ablate run`) has the sweep, and no
// coordinator starts meanwhile. Throws std::runtime_error naming the coordinator's pid.
class SweepLocks {
 public:
  SweepLocks(const std::string& database, const std::string& sweep,
             const std::vector<results::JobRow>& jobs);

 private:
  std::vector<std::unique_ptr<SweepLock>> locks_;
};

// Whether an `ablate train` process holds the run dir (its flock on RUN_DIR/.train.lock): a
// worker that a killed coordinator left behind may still write there.
bool run_dir_in_use(const std::string& run_dir);

// The jobs of `all` whose id is in `ids`, followed by every job that descends from one of them
// (a stage that started from its checkpoint), in registration order. A reset takes the
// dependants along: their results came from the run that the reset sets aside.
std::vector<results::JobRow> with_dependants(const std::vector<results::JobRow>& all,
                                             const std::set<std::string>& ids);

// A job that reset_jobs returned to pending.
struct ResetJob {
  std::string id;
  std::string status;    // before the reset
  std::string moved_to;  // where its run dir went; "" when it had none
};

// Returns `jobs` to pending so the next run trains them from scratch: each run dir is moved
// aside to "<run dir>.reset-<UTC time>" (kept, never deleted), then Store::reset_jobs clears the
// outcome, metrics and summaries. Refuses (std::runtime_error, nothing changed) a running job or
// one whose run dir an `ablate train` still holds. The caller holds the sweep's locks.
std::vector<ResetJob> reset_jobs(results::Store& store, const std::string& sweep,
                                 const std::vector<results::JobRow>& jobs);

// Deletes stale jobs: their run dirs first (refused, nothing changed, while an `ablate train`
// holds one; a run dir is only removed where it sits at WORKDIR/<sweep>/<job id>), then their
// rows with params, metrics, summaries and environment (Store::prune_jobs). Returns the run dirs
// removed. The caller holds the sweep's locks.
std::vector<std::string> prune_jobs(results::Store& store, const std::string& sweep,
                                    const std::vector<results::JobRow>& stale);

}  // namespace ablate::runner
