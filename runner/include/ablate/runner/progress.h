#pragma once
// How `ablate run` tells its course (docs/design.md section 7), and what `ablate status` shares
// with it: arms named by their varying keys, a job's main metric, durations.
//
// On a terminal (stderr is a tty) one line on stderr is redrawn about once a second:
//   3/7 done (5 before this run), 2 running, 1 failed, ETA 4 min 10 s | variant=gqa kv_heads=2
//   s1 120/300 loss 2.310 | ...
// with the jobs done in this run over those left to run when it started, and an ETA from the
// steps per second of this run's jobs ("ETA --" until a step of this run has been ingested). Each
// job's end scrolls above it as a line (below). Elsewhere (a log file, nohup, Slurm) one line on
// stderr per job start and per job end, written as it happens:
//   2025-01-02T10:00:00Z  sweep quickstart: 15 jobs, 5 done before this run, 10 to run
//   2025-01-02T10:00:00Z  start      variant=gqa kv_heads=2  seed 0  on cpu  (job a4778886b7e48e87)
//   2025-01-02T10:00:44Z  done       variant=gqa kv_heads=2  seed 0  final_test_acc 0.7812  44 s
//                                    [1/10 done, ETA 6 min 40 s]
//   2025-01-02T10:00:45Z  failed     variant=dgqa kv_heads=2  seed 1  exit status 1  3 s
//                                    (job fee5a17e5409ca63)  [1/10 done, 1 failed, ETA --]
// (each on one line). stdout keeps the command's result: the summary line at the end.
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "ablate/results/store.h"
#include "ablate/runner/sweep.h"

namespace ablate::runner {

using Params = std::vector<std::pair<std::string, std::string>>;  // key -> canonical value text

// ----- arms -----

// How each key is shown in an arm's name: its last part ("kv_heads" for attention.kv_heads)
// unless another of `keys` has the same last part, then the whole key.
std::map<std::string, std::string> short_key_names(const std::set<std::string>& keys);

// An arm as people read it: the stage (when there is one), then NAME=VALUE for each of `params`
// with `names` from short_key_names ("uptrain kv_heads=2", "variant=gqa kv_heads=1"); "(base)"
// when there is neither.
std::string arm_label(const std::string& stage, const Params& params,
                      const std::map<std::string, std::string>& names);

// The names of the arms of `jobs` (by job id): of each job's params (JobSpec::params, as `ablate
// plan` shows them), the keys whose value differs between the jobs of its stage, as
// varying_params finds them in the store, so `ablate run` and `ablate status` name an arm alike.
std::map<std::string, std::string> arm_labels(const std::vector<JobSpec>& jobs);

// The varying params of stored jobs (the store keeps every field of each job, not which vary):
// per job, the params whose value differs between jobs of the same stage, seed and init.from
// aside, in schema order (keys the schema does not know last, by name). `stages[i]` and
// `params[i]` belong to job i.
std::vector<Params> varying_params(const std::vector<std::string>& stages,
                                   const std::vector<Params>& params);

// ----- metrics and times -----

// The summaries a job's main metric is taken from, first present wins: the vit task's test
// accuracy, then the lm task's validation loss.
inline constexpr const char* kMainMetrics[] = {"final_test_acc", "final_val_loss"};

struct MainMetric {
  std::string name;
  double value = 0.0;
};
// The job's main metric among its summaries (name -> value); nullopt when it has none.
std::optional<MainMetric> main_metric(const std::map<std::string, double>& summaries);

// The first line of a job's stored reason (Store's JobRow::error), without a leading "STATUS: "
// that repeats `status` ("skipped: parent X failed" -> "parent X failed").
std::string reason_line(const std::string& status, const std::string& error);

// A job's summaries from the store, name -> value.
std::map<std::string, double> job_summaries(results::Store& store, const std::string& sweep,
                                            const std::string& id);

// "0 s", "44 s", "4 min 10 s", "2 h 05 min", "3 d 04 h" (rounded to the second).
std::string format_duration(double seconds);

// A number as in the lines: 4 significant digits ("0.7812", "2.346", "1234").
std::string format_metric(double value);

// Now as ISO-8601 UTC to the second: "2025-01-02T10:00:00Z".
std::string utc_now();

// ----- the estimate -----

// One job's steps, as far as the store knows them.
struct JobSteps {
  enum class State {
    kWaiting,   // to run in this run (pending, interrupted)
    kRunning,   // running now
    kFinished,  // ended (done or not) or not going to run (failed before this run, skipped)
  };
  State state = State::kWaiting;
  bool this_run = false;  // started (or adopted) by this run: its steps count toward the rate
  int64_t total = 0;      // steps it trains in all; 0 = not known yet (train.epochs)
  int64_t at_start = 0;   // steps it had done when this run started it (a resumed checkpoint)
  int64_t now = 0;        // steps done as last ingested
};

// Seconds left: the steps left to train (of waiting and running jobs; a total not known yet
// counts as the mean of the known ones) over the steps per second this run has trained
// (sum of now - at_start of its jobs over `elapsed_s`). nullopt until this run has trained a
// step, or while the steps left cannot be told (no total known).
std::optional<double> eta_seconds(const std::vector<JobSteps>& jobs, double elapsed_s);

// ----- the lines -----

struct ProgressCounts {
  int total = 0;      // jobs of the sweep
  int before = 0;     // done or diverged before this run
  int done_here = 0;  // ended done or diverged in this run
  int running = 0;
  int failed = 0;  // failed, timed_out or skipped now (earlier runs' included)
};

// "3/7 done (5 before this run), 2 running, 1 failed, ETA 4 min 10 s", where 7 is the jobs left
// to run when this run started; "ETA --" without an estimate.
std::string progress_summary(const ProgressCounts& counts, std::optional<double> eta);

// The terminal's line: the summary, then " | NOTE" for running jobs while they fit, cut to
// `width` - 1 characters (a line as wide as the terminal would wrap and break the redraw).
std::string progress_line(const std::string& summary, const std::vector<std::string>& notes,
                          size_t width);

// One line of the log: "TIME  EVENT  ARM  seed N  DETAIL..." with the event padded to 9
// characters and the details that are not empty, two spaces apart.
std::string job_line(const std::string& time, const std::string& event, const std::string& arm,
                     int64_t seed, const std::vector<std::string>& details);

// ----- the reporter -----

enum class ProgressMode {
  kOff,       // nothing (tests, --detach callers that print their own)
  kTerminal,  // the redrawn line, with job ends above it
  kLog,       // a line per job start and end
};
// kTerminal when `wanted` and `fd` is a terminal, kLog when `wanted` and not, else kOff.
ProgressMode progress_mode(bool wanted, int fd);

// What run_sweep calls as jobs start and end. Reads the store (steps, summaries, times) but
// never writes it.
class Progress {
 public:
  // `status` is every job's status when the run starts (after recovering an earlier
  // coordinator's jobs). `width` is the terminal's width (0 = ask the terminal of stderr).
  Progress(ProgressMode mode, std::ostream& out, results::Store& store, const std::string& sweep,
           const std::vector<JobSpec>& jobs, const std::map<std::string, std::string>& status,
           size_t width = 0);

  // Clocks for tests: seconds on a monotonic clock, and the time written on lines.
  void set_clocks(std::function<double()> seconds, std::function<std::string()> utc);

  // The log's first line: the sweep and how many jobs are left to run.
  void begin();
  void started(const std::string& id, const std::string& device);
  // After the store has the outcome (mark_finished): `reason` is its error ("" for done).
  void ended(const std::string& id, const std::string& status, const std::string& reason);
  // Redraws the terminal's line (at most once a second); nothing in the other modes.
  void tick();
  // Ends the terminal's line: the counts as the run leaves them, without the ETA.
  void finish();

  ProgressCounts counts() const;
  std::optional<double> eta();

 private:
  struct Job {
    const JobSpec* spec = nullptr;
    std::string label;
    std::string status;
    JobSteps steps;
    double loss = 0.0;
    bool has_loss = false;
  };
  void refresh(Job& job);  // steps, total and loss of a running job from the store
  void print(const std::string& line);
  std::string suffix();

  ProgressMode mode_;
  std::ostream& out_;
  results::Store& store_;
  std::string sweep_;
  size_t width_;
  std::vector<std::string> order_;  // job ids in the sweep's order
  std::map<std::string, Job> jobs_;
  int before_ = 0;
  std::function<double()> seconds_;
  std::function<std::string()> utc_;
  double started_at_ = 0.0, drawn_at_ = -1e9;
  bool drawn_ = false;  // the terminal's line is on the screen
};

}  // namespace ablate::runner
