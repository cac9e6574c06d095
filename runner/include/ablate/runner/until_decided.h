#pragma once
// Seeds until decided (docs/design.md sections 3 and 6): `ablate run` on a sweep with
// `seeds: {min, max, step, until: decided}` (or `--until decided --max-seeds N`) runs rounds.
// Every arm first runs its first `min` seeds. After a round has finished, one look asks the
// sweep's `report:` question with the anytime-valid comparisons of the report (sequential.h,
// `ablate report --sequential`), each at its Bonferroni level alpha / K, so the stopping rule
// only ever uses a comparison's own e-process. An arm whose comparison is undecided (its
// confidence sequence neither excluded 0 nor lay inside the equivalence margin) and that has fewer
// than `max` seeds gets `step` more; a reference arm always has at least the seeds of each arm
// compared with it, so comparisons stay paired by seed. The run ends when no arm gets more seeds.
// Each look's comparisons and decisions go to the decision log (results/decision_log.h).
//
// The state is the database: the seeds an arm has are the ones registered for it, so a re-run
// (after a kill, a failure, or Slurm's --detach) carries on from the last round: the unfinished
// jobs of the round run first, then the next look. Torch-free.
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "ablate/results/decision_log.h"
#include "ablate/results/report.h"
#include "ablate/results/store.h"
#include "ablate/runner/coordinator.h"
#include "ablate/runner/question.h"
#include "ablate/runner/sweep.h"

namespace ablate::runner {

// Seeds per arm: arm key -> n, the arm runs the first n seeds of SweepSpec::seeds.
using SeedCounts = std::map<std::string, int64_t>;

// One comparison at one look, as the decision needs it.
struct LookComparison {
  // The CS excluded 0, or lay inside the equivalence margin, at some look (and the comparison
  // had enough looks to say).
  bool decided = false;
  // The family, the arm and its reference (keys and labels), and what the look saw: what the
  // decision log records (look and action are set by the coordinator).
  results::SequentialLookRow row;
  // The fewest seeds at which the comparison's test can decide anything at its level, whatever
  // the data (results::SequentialResult::min_looks_to_decide; 7 for the Gaussian mixture at
  // 0.05 / 12); -1 when not known. Above the cap, more seeds are of no use to it.
  int64_t first_possible = -1;
};

// Asks the question of the store's results: every comparison of every family. Throws
// results::ReportError as build_report does (an unknown metric, a baseline that matches no arm).
std::vector<LookComparison> look_at(results::Store& store, const SweepSpec& sweep);

// The next round's seeds: an undecided candidate below `rule.max` gets rule.step more (at most
// max), unless its test cannot decide within max seeds (first_possible > max); then every
// reference gets at least as many as each of its candidates. Pure; equal to `current` when
// nothing is left to decide.
SeedCounts next_seed_counts(const SeedCounts& current, const std::vector<LookComparison>& looks,
                            const SequentialSeeds& rule);

// What the coordinator does with one comparison after a look ("add 2 seeds", "stop: decided",
// "stop: equivalent", "stop: 20 seeds, the most").
std::string look_action(const LookComparison& c, const SeedCounts& current, const SeedCounts& next,
                        const SequentialSeeds& rule);

// The jobs the counts plan, in the order of `all` (expand(sweep)): each job whose seed is among
// the first counts[arm] seeds of `sweep.seeds` (rule.min for an arm without a count), with every
// ancestor (a later stage's seed needs its parent's).
std::vector<JobSpec> planned_jobs(const SweepSpec& sweep, const std::vector<JobSpec>& all,
                                  const SeedCounts& counts);

// The counts the store has registered for the sweep (active jobs of `all`): per arm, the position
// of its furthest seed + 1, at least rule.min. Empty store: every arm at rule.min.
SeedCounts registered_seed_counts(const results::Store& store, const SweepSpec& sweep,
                                  const std::vector<JobSpec>& all);

// What one look saw and did, for the command line.
struct LookReport {
  int64_t look = 0;       // 1-based
  bool recorded = false;  // new rows in the decision log (false: a repeat)
  std::vector<results::SequentialLookRow> rows;
  int64_t seeds_added = 0;  // jobs' seeds the next round adds over all arms
};

// Runs the sweep until decided: rounds of run_sweep over planned_jobs. `on_look` is told every
// look. Stops early, as run_sweep does, when interrupted, detached, or jobs are left unfinished.
// The summary counts the sweep's jobs after the last round and the processes of all rounds.
RunSummary run_until_decided(const SweepSpec& sweep, const std::vector<JobSpec>& all,
                             results::Store& store, Executor& executor, RunOptions options,
                             const std::atomic<bool>* interrupt = nullptr,
                             const std::function<void(const LookReport&)>& on_look = nullptr);

}  // namespace ablate::runner
