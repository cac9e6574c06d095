#pragma once
// Ingest of a run directory (README "The run directory") into the store: the coordinator calls it
// while a job runs and when it ends. Incremental and idempotent: ingesting twice, or after more
// lines were appended, leaves exactly the rows that one ingest at the end would.
//
// events.jsonl -> metrics (job, name, step, value). Each complete line is one event
// {"step": S, "kind": K, ...}; every other field becomes rows at step S named
//   kind "train"      train/<field>         train/loss, train/lr, train/grad_norm, ...
//   kind "eval"       eval/<field>          eval/val_loss, eval/test_acc, ...
//                     (eval/subset: N on the steps evaluated on the first N held-out examples
//                     only, train.eval_subset; reports mark those curve points)
//   kind "attention"  attn<layer>/<field>   attn0/alloc_entropy, attn1/weight_distance
//                     ("layer" itself is not a metric)
//   any other kind K  K/<field>
// Numbers are stored as they are; booleans as 1/0 (train/diverged = 1 on the diverging step);
// null (how NaN and inf are written), strings and empty arrays are skipped; arrays are flattened
// as name[i] (attn0/alloc[1]), objects as name.sub. A second value for the same (name, step)
// replaces the first. Only lines ending in a newline are read: a last line being written is left
// for the next ingest. A line that is not such an event stops the ingest at that line (the rows
// before it are kept) and is reported with its line number; the next ingest retries it.
// A rewritten events.jsonl (a resumed run truncates it: the file is shorter than the position
// ingested, is another inode, or no longer holds the bytes last ingested) is re-ingested from
// scratch: the job's metrics are replaced.
// A missing events.jsonl (or summary.json) changes nothing: the worker may not have written it yet.
//
// summary.json -> summaries (job, name, value), replacing the job's previous ones:
//   final.<k> -> final_<k>, best.<k> -> best_<k> (other objects likewise <key>_<k>), top-level
//   numbers and booleans by their names (wall_time_s, parameters, throughput, peak_memory_bytes,
//   step, steps, diverged_step, allow_noncausal as 1/0); dots in names become '_'.
//   "status" and "causality" go to the job's summary_status and causality columns; other
//   top-level strings (device, config_hash, torch_version, throughput_unit) to the job's
//   environment.
// Everything happens in one transaction: a StoreError (a database failure, an unknown job) leaves
// the store as it was; problems with the files are reported in IngestResult::error instead.
#include <cstdint>
#include <string>

#include "ablate/results/store.h"

namespace ablate::results {

struct IngestResult {
  int64_t rows_added = 0;      // metric rows written by this call
  int64_t summary_rows = 0;    // summary rows written by this call (0 without summary.json)
  int64_t lines_read = 0;      // complete lines of events.jsonl consumed by this call
  int64_t last_step = -1;      // largest step among those lines (-1: none)
  bool reingested = false;     // events.jsonl had been rewritten: metrics rebuilt from scratch
  std::string summary_status;  // summary.json "status" ("" when there is no summary.json)
  std::string causality;       // summary.json "causality"
  std::string error;           // the first problem ("events.jsonl line 7: ..."), "" when none
  int64_t error_line = 0;      // 1-based line of events.jsonl that stopped the ingest, 0 = none
  bool ok() const { return error.empty(); }
};

// Ingests `run_dir` (events.jsonl from the stored position, then summary.json) into the job
// `job_id` of `sweep`.
IngestResult ingest_run_dir(Store& store, const std::string& sweep, const std::string& job_id,
                            const std::string& run_dir);

}  // namespace ablate::results
