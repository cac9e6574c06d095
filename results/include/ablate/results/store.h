#pragma once
// The results store (docs/design.md section 6): one SQLite file that holds sweeps, their jobs, each
// job's params, metric curves, summaries and provenance. The coordinator is its only writer
// (worker processes write run dirs; see ingest.h); readers (`ablate query`, reports) may open it
// at the same time, which WAL mode allows.
//
// Schema (version 3; `schema_version` records each migration applied). Wherever a table or view
// has a `sweep` column it holds the sweep's name (from version 3; the integer key is `sweep_pk`):
//   sweeps       pk, name UNIQUE, yaml, config_hash, code_version (git commit), dirty, created,
//                updated
//   jobs         pk (integer key the other tables use), sweep_pk -> sweeps, id (16-hex job id),
//                UNIQUE(sweep_pk, id), stage, arm_key, seed, parent_id (-> jobs(sweep_pk, id)),
//                run_dir, status, attempts, host, device, started, ended, exit_code, error,
//                summary_status and causality (from summary.json), the ingest position in
//                events.jsonl (events_offset, events_lines, events_inode, events_tail),
//                stale (1: the sweep file no longer plans the job; version 2) and sweep (the
//                sweep's name; version 3)
//   params       (job, key) -> value text, num (the value as a number when it is one)
//   metrics      (job, name, step) -> value: curves from events.jsonl
//   summaries    (job, name) -> value: final/best values from summary.json
//   environment  key/value provenance of a sweep (job NULL) or of one job: sweep_pk, job, key,
//                value, sweep (the name; version 3)
// SQL in this library names the key `sweep_pk`; statement() spells it `sweep` for an older file
// opened read-only.
// Views: `runs` (one row per job, params pivoted wide), `results` (`runs` plus summaries pivoted
// wide) and `curves` (metrics with sweep name and job id); see refresh_views().
//
// A job's life (docs/design.md section 6): registered pending; running; an outcome. The sweep
// file's current plan defines the sweep: a job it no longer plans is stale (kept with its results,
// left out of status counts and reports) until it is planned again (active again, with its
// results) or pruned (deleted). A reset returns a job to pending without its results.
// Times are ISO-8601 UTC text with milliseconds ("2024-05-01T12:34:56.789Z"): readable in the
// sqlite3 shell and usable by julianday().
#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace ablate::results {

// Misuse (an unknown sweep or job, a bad status transition, an invalid record) and SQLite
// failures, with the database file and the operation in the message.
class StoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The file named is not a database this ablate can use: a folder, a file that is not SQLite,
// another program's SQLite file, or a newer schema. Bad input (the CLI's exit status 2); the
// file is left exactly as it was.
class NotAStoreError : public StoreError {
 public:
  using StoreError::StoreError;
};

// The schema version this code writes; an older file is migrated when opened for writing (and
// read as it is when opened read-only), a newer one is refused. Version 2 added jobs.stale,
// version 3 the sweep's name in jobs and environment, version 4 the table sequential_looks.
inline constexpr int kSchemaVersion = 4;

// The most columns of the `runs` and `results` views: SQLite's limit is 2000 per view and per
// query's result; 100 are left for a query's own columns (SELECT *, x FROM results).
inline constexpr size_t kMaxViewColumns = 1900;

// Every job status, in lifecycle order. "pending" until started; "running" while a worker has it;
// the rest are outcomes ("skipped": never ran because a job it depends on failed).
inline constexpr const char* kJobStatuses[] = {"pending",  "running",   "done",        "failed",
                                               "diverged", "timed_out", "interrupted", "skipped"};
bool is_job_status(const std::string& status);

struct StoreOptions {
  // Open for reading only (`ablate query`, reports): the file must exist; nothing is migrated or
  // written. An older schema reads as it is (a version-1 file has no stale jobs and its views
  // no `stale` column).
  bool read_only = false;
  // How long a statement waits for another connection's lock before failing.
  int busy_timeout_ms = 10000;
};

// A sweep as the runner registers it.
struct SweepRecord {
  std::string name;          // unique; the runner has checked it is safe for paths
  std::string yaml;          // the sweep file's text
  std::string config_hash;   // hash of the parsed sweep (tells an edited file)
  std::string code_version;  // git commit of the code that runs it
  bool dirty = false;        // the work tree had uncommitted changes
  // Stored as the sweep's environment (host, compiler, LibTorch and CUDA versions, ...).
  std::map<std::string, std::string> provenance;
};

struct SweepRow {
  int64_t pk = 0;
  std::string name, yaml, config_hash, code_version;
  bool dirty = false;
  std::string created, updated;  // ISO-8601 UTC
};

// A job as the runner's expansion produces it.
struct JobRecord {
  std::string id;         // content-hash job id (16 hex digits)
  std::string stage;      // stage name ("" for a single-stage sweep)
  std::string arm_key;    // identifies the arm: the config minus the seed
  int64_t seed = 0;       //
  std::string parent_id;  // job this one starts from ("" = none); same sweep
  std::string run_dir;    // where its worker writes
  // Resolved config as dotted key -> value text ("attention.kv_heads" -> "2"). Values that parse
  // as numbers are also stored as numbers.
  std::vector<std::pair<std::string, std::string>> params;
};
bool operator==(const JobRecord& a, const JobRecord& b);

// A row of `jobs`. Text columns that are NULL read as "".
struct JobRow {
  int64_t pk = 0;
  std::string sweep;  // the sweep's name
  std::string id, stage, arm_key;
  int64_t seed = 0;
  std::string parent_id, run_dir;
  std::string status;  // one of kJobStatuses
  int64_t attempts = 0;
  std::string host, device, started, ended;
  std::optional<int64_t> exit_code;
  std::string error;  // failure reason: message, last log lines, "skipped: parent X failed"
  std::string summary_status, causality;  // from the last ingested summary.json
  int64_t events_offset = 0;              // bytes of events.jsonl ingested
  int64_t events_lines = 0;               // lines of events.jsonl ingested
  bool stale = false;                     // the sweep file no longer plans it
};

// What sync_plan changed.
struct PlanSync {
  std::vector<std::string> stale;        // jobs that became stale (registration order)
  std::vector<std::string> reactivated;  // stale jobs planned again
  int64_t stale_total = 0;               // stale jobs of the sweep after the call
};

class Store {
 public:
  // Opens (or, for writing, creates) the database file and brings its schema up to date. Throws
  // StoreError when the file is not a database, has a newer schema than kSchemaVersion, or (read
  // only) is missing.
  explicit Store(const std::string& path, StoreOptions options = {});
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::string& path() const { return path_; }
  int schema_version() const;

  // ----- sweeps -----
  enum class Registered { kCreated, kUnchanged, kUpdated };
  // Creates the sweep, or updates an existing one of that name: yaml, config_hash, code_version,
  // dirty and `updated` take the new values (`created` stays), provenance keys are upserted, and
  // its jobs are kept (an edited grid only adds jobs, through register_jobs). kUnchanged when the
  // config hash, code version and dirty flag are the same as stored.
  Registered register_sweep(const SweepRecord& sweep);
  std::vector<std::string> sweeps() const;  // by name
  std::optional<SweepRow> sweep(const std::string& name) const;

  // ----- jobs -----
  // Inserts the jobs not yet in the sweep as pending, with their params; jobs already there are
  // left untouched (idempotent). A parent must be in the batch or already registered. Returns
  // how many were inserted. Refreshes the views when any was.
  int register_jobs(const std::string& sweep, const std::vector<JobRecord>& jobs);
  // Every job of the sweep, stale ones included (JobRow::stale), in registration order.
  std::vector<JobRow> jobs(const std::string& sweep) const;
  std::optional<JobRow> job(const std::string& sweep, const std::string& id) const;
  std::vector<std::pair<std::string, std::string>> params(const std::string& sweep,
                                                          const std::string& id) const;

  // A worker starts the job: attempts += 1, started = now, host and device set; ended, exit_code
  // and error cleared. Allowed from pending, running (a coordinator restarted after a crash
  // relaunches it), failed, timed_out, interrupted and skipped; a done or diverged job is never
  // run again (StoreError).
  void mark_running(const std::string& sweep, const std::string& id, const std::string& host,
                    const std::string& device);
  // The job's outcome: status is done, failed, diverged, timed_out or interrupted (from running),
  // or skipped (from pending or skipped: it never ran). Sets ended = now, exit_code and error.
  void mark_finished(const std::string& sweep, const std::string& id, const std::string& status,
                     std::optional<int> exit_code, const std::string& error);
  // The outcome of a job that ran outside ablate (`ablate import`): from pending straight to done
  // or diverged, with host and error. attempts stays 0 and started, ended and exit_code NULL:
  // ablate never launched it and does not know when it ran. StoreError from any other status.
  void mark_imported(const std::string& sweep, const std::string& id, const std::string& status,
                     const std::string& host, const std::string& error);
  // Upserts summary values (name -> value) of a job, as ingest does from summary.json but without
  // removing the job's other names. Every value must be finite (the table refuses NaN; a
  // diverged value is left out instead). Refreshes the views when a name is new to the store.
  void set_summaries(const std::string& sweep, const std::string& id,
                     const std::vector<std::pair<std::string, double>>& values);
  // Active (not stale) jobs of the sweep by status; every status of kJobStatuses is present (0
  // when none).
  std::map<std::string, int> status_counts(const std::string& sweep) const;

  // ----- the life cycle: plan, reset, prune -----
  // The sweep file's current plan defines the sweep: jobs of the sweep whose id is not in
  // `planned` become stale (rows, results and run dirs kept); stale jobs in `planned` are active
  // again, with their results. Ids in `planned` that are not jobs of the sweep are ignored
  // (register them first).
  PlanSync sync_plan(const std::string& sweep, const std::vector<std::string>& planned);
  // Returns the jobs to pending so the next run trains them from scratch: attempts 0; host,
  // device, started, ended, exit_code, error, summary_status, causality and the ingest position
  // cleared; their metrics, summaries and environment rows deleted, so no report uses their old
  // numbers. Params and stale stay. One transaction; StoreError (nothing changed) for an unknown
  // job or a running one (a worker may still write its run dir). Moving the run dir aside is the
  // caller's part (runner/lifecycle.h).
  void reset_jobs(const std::string& sweep, const std::vector<std::string>& ids);
  // Replaces a job's params (a relaunch under an edited sweep file: data.path and the other
  // fields outside the job id may have changed). Returns whether they changed; refreshes the
  // views when a key is new.
  bool replace_params(const std::string& sweep, const std::string& id,
                      const std::vector<std::pair<std::string, std::string>>& params);
  // Deletes stale jobs with their params, metrics, summaries and environment rows. One
  // transaction; StoreError (nothing deleted) for an unknown job, a job that is not stale, or one
  // whose child stays. Deleting their run dirs is the caller's part.
  void prune_jobs(const std::string& sweep, const std::vector<std::string>& ids);

  // ----- provenance -----
  // Upserts key/value provenance of the sweep (job_id "") or of one of its jobs.
  void set_environment(const std::string& sweep, const std::string& job_id,
                       const std::map<std::string, std::string>& values);
  std::map<std::string, std::string> environment(const std::string& sweep,
                                                 const std::string& job_id = "") const;

  // ----- views -----
  // (Re)creates the views `runs` (job columns, `sweep` = its name, `job` = its integer key,
  // `duration_s`, then one column per distinct param key: dots become `_`, numeric when every
  // value of the key is a number, else text) and `results` (`runs` plus one REAL column per
  // distinct summary name, dots become `_`). A name already taken (case-insensitively) gets the
  // prefix `param_` / `summary_`, then a suffix `_2`, `_3`, ... Columns are sorted by key.
  // register_jobs and ingest call this when new keys or names appear, so callers rarely need to.
  // The two views have at most kMaxViewColumns columns (SQLite refuses a view or a query of more
  // than 2000): keys are taken by first appearance, params before summary names, so the keys of
  // the sweeps registered first always have their columns; the rest are left out (their values
  // stay in `params` and `summaries`) and listed by left_out_of_views().
  void refresh_views();
  // The keys the last refresh_views() left out of the views (params first, then summary names).
  const std::vector<std::string>& left_out_of_views() const { return left_out_of_views_; }

  // ----- for ingest and queries in this library -----
  // A transaction: BEGIN IMMEDIATE (this writer takes the lock up front), rolled back when
  // destroyed uncommitted. Inside another one it joins it (commit() is then a no-op and a
  // failure rolls back the outer one, through the exception that caused it).
  class Transaction {
   public:
    explicit Transaction(Store& store);
    ~Transaction();
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;
    void commit();

   private:
    Store& store_;
    bool owner_ = false;  // false when it joined an outer transaction
    bool done_ = false;
  };

  SQLite::Database& database() { return *db_; }
  // A prepared statement for `sql`, cached for the life of the store (so a hot loop never
  // prepares twice), reset and with its bindings cleared.
  SQLite::Statement& statement(const std::string& sql) const;
  // The integer key of a job; throws StoreError naming the sweep or job when either is unknown.
  int64_t job_pk(const std::string& sweep, const std::string& id) const;
  int64_t sweep_pk(const std::string& sweep) const;
  // "store <path>: <what>: <cause>", for StoreError messages.
  std::string context(const std::string& what) const;
  // The StoreError for a failed SQLite call: context(what) and SQLite's message, and the free
  // space beside the database when the disk is full or failed (the transaction was rolled back,
  // the file is intact).
  StoreError failure(const std::string& what, const SQLite::Exception& cause) const;

 private:
  void migrate();
  void check_version(int version) const;
  // The SELECT of a JobRow: jobs.stale is read as 0 from a version-1 file opened read-only.
  std::string job_select() const;

  // `sql` as this file's schema version spells it (before version 3, sweep_pk was `sweep`).
  std::string for_file_version(const std::string& sql) const;
  int version_ = 0;  // the file's schema version (after migration when writable)
  std::vector<std::string> left_out_of_views_;  // by the last refresh_views()

  std::string path_;
  StoreOptions options_;
  std::unique_ptr<SQLite::Database> db_;
  // After db_, so the statements are finalised before the connection closes.
  mutable std::unordered_map<std::string, std::unique_ptr<SQLite::Statement>> statements_;
};

}  // namespace ablate::results
