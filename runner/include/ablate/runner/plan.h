#pragma once
// What `ablate plan SWEEP.yaml [KEY=VALUE...] [--json]` prints (docs/design.md section 7): the jobs
// of an expanded sweep, before anything runs. Pure: the functions only format (what a database
// holds is read by the caller).
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ablate/runner/sweep.h"

namespace ablate::runner {

// Where the planned jobs stand in a database (`ablate plan` reads --db when it exists): what
// `ablate run` would find there.
struct StoredJobs {
  std::string db;                             // the database read, as the user named it
  bool exists = true;                         // false: no such file yet, every job is new
  std::map<std::string, std::string> status;  // job id -> its status there (planned jobs only)
  int64_t not_planned = 0;                    // jobs of the sweep there that the plan lacks
};

// For people. A header line, then one line per job in `jobs` order (a parent before its
// children):
//   ID  [STATUS]  STAGE  KEY=VALUE ...  seed=N  [after=PARENT_ID]
// with the stage "-" for a sweep without stages and the job's params (JobSpec::params) as
// KEY=VALUE; STATUS only with `stored`: the job's status there, or "new"; then one line per grid
// block (cells, excluded, jobs before deduplication, distinct jobs, new ones), a line for each
// exclude entry that matched no cell, and the total:
//   N jobs (M before deduplication; K shared)
// and with `stored` a line of its counts ("in ablate.db: 9 done, 6 new ...").
std::string plan_text(const SweepSpec& sweep, const std::vector<JobSpec>& jobs,
                      const StoredJobs* stored = nullptr);

// How the jobs would run as processes (ensembles.h) when all of an arm's seeds are ready
// together, `seeds_per_process` (0 = auto) per process at most; one line:
//   processes: 4 (seeds of one arm train together, up to 3 per process)
// and for auto the CPU's count, with what auto does on a GPU. With `stored`, only the jobs not
// done or diverged there ("processes: 9 for the 15 jobs not done ...").
std::string plan_processes_text(const std::vector<JobSpec>& jobs, int seeds_per_process,
                                const StoredJobs* stored = nullptr);

// For programs. One JSON object per line per job, in `jobs` order, and nothing else:
//   {"id": "...", "stage": "uptrain" | null, "arm": "...", "seed": 0,
//    "params": {"attention.kv_heads": 2, ...}, "depends_on": ["PARENT_ID"] | [],
//    "blocks": [1, 3], "config": {"attention": {...}, ..., "seed": 0, "task": "vit"}}
// params and config values are JSON numbers, booleans and strings as the field's type; config is
// every field of the job's task, nested by section, keys sorted (as to_yaml), init.from empty for
// a job with a parent (the executor fills it in). With `stored`, "status": the job's status
// there, or "new".
std::string plan_json(const SweepSpec& sweep, const std::vector<JobSpec>& jobs,
                      const StoredJobs* stored = nullptr);

// What the plan can tell is probably not what the researcher meant, though every job is valid:
// one line per arm, naming the sweep file, the arm and the keys. Today: a robust dgqa whose
// attention.ema_window is not below train.steps (it reallocates only at a window boundary after
// step 0, so it never leaves the uniform allocation and trains exactly as gqa does: a comparison
// with gqa would find "no difference" by construction); and question_warnings (question.h): a
// question whose anytime-valid tests cannot decide within `seeds: max`.
std::vector<std::string> plan_warnings(const SweepSpec& sweep, const std::vector<JobSpec>& jobs);

}  // namespace ablate::runner
