#include "ablate/results/store.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include "ablate/results/decision_log.h"
#include "ablate/testing/temp_dir.h"

namespace ablate::results {
namespace {
namespace fs = std::filesystem;

using ablate::testing::TempDir;

// The message of the StoreError `f` throws ("" when it throws none).
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const StoreError& e) {
    return e.what();
  }
  return "";
}

#define EXPECT_ERROR_HAS(statement, text)                                       \
  do {                                                                          \
    const std::string message = error_of([&] { statement; });                   \
    EXPECT_NE(message.find(text), std::string::npos) << "message: " << message; \
  } while (0)

int64_t count(Store& store, const std::string& sql) {
  SQLite::Statement s(store.database(), sql);
  s.executeStep();
  return s.getColumn(0).getInt64();
}

std::string scalar_text(Store& store, const std::string& sql) {
  SQLite::Statement s(store.database(), sql);
  if (!s.executeStep() || s.getColumn(0).isNull()) return "<null>";
  return s.getColumn(0).getString();
}

SweepRecord sweep_record(const std::string& name = "grid") {
  SweepRecord r;
  r.name = name;
  r.yaml = "base: {}\n";
  r.config_hash = "h1";
  r.code_version = "abc123";
  r.provenance = {{"host", "box"}, {"compiler", "g++ 12"}};
  return r;
}

JobRecord job_record(const std::string& id, int64_t seed = 0, const std::string& parent = "") {
  JobRecord j;
  j.id = id;
  j.stage = parent.empty() ? "pretrain" : "convert";
  j.arm_key = "arm-" + id;
  j.seed = seed;
  j.parent_id = parent;
  j.run_dir = "runs/grid/" + id;
  j.params = {{"attention.variant", "gqa"}, {"attention.kv_heads", "2"}};
  return j;
}

TEST(Store, FreshFileIsMigratedAndReopens) {
  TempDir dir;
  const std::string path = dir.file("a.db");
  {
    Store store(path);
    EXPECT_EQ(store.schema_version(), kSchemaVersion);
    EXPECT_EQ(scalar_text(store, "PRAGMA journal_mode"), "wal");
    EXPECT_EQ(scalar_text(store, "PRAGMA foreign_keys"), "1");
    for (const char* table : {"sweeps", "jobs", "params", "metrics", "summaries", "environment"}) {
      EXPECT_TRUE(store.database().tableExists(table)) << table;
    }
    for (const char* view : {"runs", "results", "curves"}) {
      EXPECT_EQ(count(store, std::string("SELECT COUNT(*) FROM sqlite_master WHERE type = 'view' "
                                         "AND name = '") +
                                 view + "'"),
                1)
          << view;
    }
    store.register_sweep(sweep_record());
    store.register_jobs("grid", {job_record("a1")});
  }
  Store again(path);
  EXPECT_EQ(again.schema_version(), kSchemaVersion);
  EXPECT_EQ(count(again, "SELECT COUNT(*) FROM schema_version"), kSchemaVersion);  // once each
  EXPECT_EQ(again.sweeps(), std::vector<std::string>{"grid"});
  ASSERT_TRUE(again.job("grid", "a1"));
  EXPECT_EQ(again.job("grid", "a1")->status, "pending");
}

// The version-1 schema exactly as released: a file written by that code must keep opening.
constexpr const char* kVersion1Schema = R"sql(
CREATE TABLE schema_version (version INTEGER PRIMARY KEY, description TEXT NOT NULL,
  applied TEXT NOT NULL);
CREATE TABLE sweeps (pk INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, yaml TEXT NOT NULL,
  config_hash TEXT NOT NULL, code_version TEXT NOT NULL, dirty INTEGER NOT NULL CHECK (dirty IN
  (0, 1)), created TEXT NOT NULL, updated TEXT NOT NULL);
CREATE TABLE jobs (pk INTEGER PRIMARY KEY, sweep INTEGER NOT NULL REFERENCES sweeps(pk) ON DELETE
  CASCADE, id TEXT NOT NULL, stage TEXT NOT NULL, arm_key TEXT NOT NULL, seed INTEGER NOT NULL,
  parent_id TEXT, run_dir TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN
  ('pending', 'running', 'done', 'failed', 'diverged', 'timed_out', 'interrupted', 'skipped')),
  attempts INTEGER NOT NULL DEFAULT 0, host TEXT, device TEXT, started TEXT, ended TEXT,
  exit_code INTEGER, error TEXT, summary_status TEXT, causality TEXT, events_offset INTEGER NOT
  NULL DEFAULT 0, events_lines INTEGER NOT NULL DEFAULT 0, events_inode INTEGER, events_tail BLOB,
  UNIQUE (sweep, id), FOREIGN KEY (sweep, parent_id) REFERENCES jobs(sweep, id) DEFERRABLE
  INITIALLY DEFERRED);
CREATE INDEX jobs_by_status ON jobs(sweep, status);
CREATE INDEX jobs_by_parent ON jobs(sweep, parent_id);
CREATE TABLE params (job INTEGER NOT NULL REFERENCES jobs(pk) ON DELETE CASCADE, key TEXT NOT
  NULL, value TEXT NOT NULL, num NUMERIC, PRIMARY KEY (job, key)) WITHOUT ROWID;
CREATE INDEX params_by_key_value ON params(key, value);
CREATE TABLE metrics (job INTEGER NOT NULL REFERENCES jobs(pk) ON DELETE CASCADE, name TEXT NOT
  NULL, step INTEGER NOT NULL, value REAL NOT NULL, PRIMARY KEY (job, name, step)) WITHOUT ROWID;
CREATE TABLE summaries (job INTEGER NOT NULL REFERENCES jobs(pk) ON DELETE CASCADE, name TEXT NOT
  NULL, value REAL NOT NULL, PRIMARY KEY (job, name)) WITHOUT ROWID;
CREATE INDEX summaries_by_name ON summaries(name);
CREATE TABLE environment (sweep INTEGER NOT NULL REFERENCES sweeps(pk) ON DELETE CASCADE, job
  INTEGER REFERENCES jobs(pk) ON DELETE CASCADE, key TEXT NOT NULL, value TEXT NOT NULL);
CREATE UNIQUE INDEX environment_of_sweep ON environment(sweep, key) WHERE job IS NULL;
CREATE UNIQUE INDEX environment_of_job ON environment(job, key) WHERE job IS NOT NULL;
CREATE VIEW curves AS SELECT s.name AS sweep, j.id AS job_id, j.pk AS job, m.name AS name,
  m.step AS step, m.value AS value FROM metrics m JOIN jobs j ON j.pk = m.job JOIN sweeps s ON
  s.pk = j.sweep;
INSERT INTO schema_version VALUES (1, 'initial schema', '2024-01-01T00:00:00.000Z');
INSERT INTO sweeps VALUES (1, 'old', 'yaml', 'h', 'c0ffee', 0, '2024-01-01T00:00:00.000Z',
  '2024-01-01T00:00:00.000Z');
INSERT INTO jobs (pk, sweep, id, stage, arm_key, seed, run_dir, status, attempts, started, ended,
  exit_code) VALUES (1, 1, '0123456789abcdef', '', 'arm', 3, 'runs/old/0123456789abcdef', 'done',
  1, '2024-01-01T00:00:00.000Z', '2024-01-01T00:01:30.000Z', 0);
INSERT INTO params VALUES (1, 'attention.kv_heads', '4', 4);
INSERT INTO summaries VALUES (1, 'final_val_loss', 1.5);
)sql";

TEST(Store, Version1FileReopens) {
  TempDir dir;
  const std::string path = dir.file("v1.db");
  {
    SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db.exec(kVersion1Schema);  // written without Store: no views `runs`/`results` yet
  }
  Store store(path);
  EXPECT_EQ(store.schema_version(), kSchemaVersion);
  auto row = store.job("old", "0123456789abcdef");
  ASSERT_TRUE(row);
  EXPECT_EQ(row->status, "done");
  EXPECT_EQ(row->seed, 3);
  // The views are rebuilt on demand for an old file.
  store.refresh_views();
  EXPECT_EQ(count(store, "SELECT attention_kv_heads FROM runs"), 4);
  EXPECT_EQ(scalar_text(store, "SELECT ROUND(duration_s, 3) FROM runs"), "90.0");
  EXPECT_EQ(scalar_text(store, "SELECT final_val_loss FROM results"), "1.5");
  Store read_only(path, StoreOptions{/*read_only=*/true});
  EXPECT_EQ(read_only.sweeps(), std::vector<std::string>{"old"});
}

// A version-1 file opened read-only first (ablate status, query or report right after an
// upgrade) reads as it is: no job is stale; opened for writing it becomes the current version, its
// jobs active and its views with a `stale` column.
TEST(Store, Version1FileReadsReadOnlyThenMigratesToStale) {
  TempDir dir;
  const std::string path = dir.file("v1ro.db");
  {
    SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db.exec(kVersion1Schema);
  }
  {
    Store read_only(path, StoreOptions{/*read_only=*/true});
    EXPECT_EQ(read_only.schema_version(), 1);
    const auto jobs = read_only.jobs("old");
    ASSERT_EQ(jobs.size(), 1u);
    EXPECT_FALSE(jobs[0].stale);
    EXPECT_EQ(jobs[0].status, "done");
    EXPECT_EQ(read_only.status_counts("old").at("done"), 1);
  }
  {
    SQLite::Database db(path, SQLite::OPEN_READONLY);
    EXPECT_THROW(db.exec("SELECT stale FROM jobs"), SQLite::Exception);  // untouched
  }
  Store store(path);
  EXPECT_EQ(store.schema_version(), kSchemaVersion);
  EXPECT_EQ(count(store, "SELECT COUNT(*) FROM schema_version"), kSchemaVersion);
  EXPECT_EQ(count(store, "SELECT COUNT(*) FROM jobs WHERE stale = 0"), 1);
  EXPECT_EQ(count(store, "SELECT COUNT(*) FROM runs WHERE stale = 0"), 1);
  EXPECT_EQ(scalar_text(store, "SELECT final_val_loss FROM results WHERE stale = 0"), "1.5");
  EXPECT_THROW(store.database().exec("UPDATE jobs SET stale = 2"), SQLite::Exception);
  EXPECT_FALSE(store.job("old", "0123456789abcdef")->stale);
}

// Version 4's decision log: a version-1 file read-only has none (and no table); migrated, it has
// the table, empty.
TEST(Store, Version1FileHasAnEmptyDecisionLog) {
  TempDir dir;
  const std::string path = dir.file("v1log.db");
  {
    SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db.exec(kVersion1Schema);
  }
  {
    Store read_only(path, StoreOptions{/*read_only=*/true});
    EXPECT_TRUE(sequential_looks(read_only, "old").empty());
  }
  Store store(path);
  EXPECT_EQ(count(store, "SELECT COUNT(*) FROM sequential_looks"), 0);
  EXPECT_TRUE(sequential_looks(store, "old").empty());
}

// A `sweep` column holds the sweep's name in every table and view (version 3), so a query by name
// never silently matches nothing; a version-1 file gets the names when migrated, and reads
// (read-only, before migration) through its integer `sweep` column.
TEST(Store, SweepNamesAreQueryableInEveryTable) {
  TempDir dir;
  const std::string old_path = dir.file("v1names.db");
  {
    SQLite::Database db(old_path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db.exec(kVersion1Schema);
    db.exec("INSERT INTO environment (sweep, job, key, value) VALUES (1, NULL, 'host', 'h1')");
  }
  {
    Store read_only(old_path, StoreOptions{/*read_only=*/true});
    EXPECT_EQ(read_only.environment("old").at("host"), "h1");
    EXPECT_EQ(read_only.jobs("old").size(), 1u);
  }
  Store migrated(old_path);
  EXPECT_EQ(count(migrated, "SELECT COUNT(*) FROM jobs WHERE sweep = 'old'"), 1);
  EXPECT_EQ(count(migrated, "SELECT COUNT(*) FROM environment WHERE sweep = 'old'"), 1);
  EXPECT_EQ(count(migrated,
                  "SELECT COUNT(*) FROM jobs j JOIN sweeps s ON s.pk = j.sweep_pk "
                  "WHERE s.name = 'old'"),
            1);
  EXPECT_EQ(migrated.environment("old").at("host"), "h1");

  const std::string path = dir.file("names.db");
  Store store(path);
  store.register_sweep(sweep_record("first"));
  store.register_sweep(sweep_record("second"));
  JobRecord a;
  a.id = "aaaaaaaaaaaaaaaa";
  a.arm_key = "arm";
  a.run_dir = "runs/second/a";
  a.params = {{"attention.kv_heads", "2"}};
  store.register_jobs("second", {a});
  store.set_environment("second", "", {{"host", "h2"}});
  store.set_environment("second", a.id, {{"device", "cpu"}});
  for (const char* table : {"jobs", "runs", "results"}) {
    EXPECT_EQ(
        count(store, std::string("SELECT COUNT(*) FROM ") + table + " WHERE sweep = 'second'"), 1)
        << table;
    EXPECT_EQ(count(store, std::string("SELECT COUNT(*) FROM ") + table + " WHERE sweep = 'first'"),
              0)
        << table;
  }
  for (const char* name : {"first", "second"}) {
    const std::string by_key =
        "SELECT COUNT(*) FROM environment WHERE sweep_pk = (SELECT pk FROM "
        "sweeps WHERE name = '" +
        std::string(name) + "')";
    EXPECT_EQ(
        count(store, "SELECT COUNT(*) FROM environment WHERE sweep = '" + std::string(name) + "'"),
        count(store, by_key))
        << name;
  }
  EXPECT_EQ(count(store,
                  "SELECT COUNT(*) FROM environment WHERE sweep = 'second' AND key IN "
                  "('host', 'device')"),
            2);
  // The key still joins, and the store's own reads use it.
  EXPECT_EQ(scalar_text(store, "SELECT s.name FROM jobs j JOIN sweeps s ON s.pk = j.sweep_pk"),
            "second");
  EXPECT_EQ(store.jobs("second").size(), 1u);
  EXPECT_EQ(store.environment("second", a.id).at("device"), "cpu");
}

TEST(Store, NewerSchemaIsRefused) {
  TempDir dir;
  const std::string path = dir.file("new.db");
  { Store store(path); }
  {
    SQLite::Database db(path, SQLite::OPEN_READWRITE);
    db.exec("INSERT INTO schema_version VALUES (7, 'from the future', 'now')");
  }
  EXPECT_ERROR_HAS(Store store(path), "schema version 7 is newer than this ablate knows (" +
                                          std::to_string(kSchemaVersion) + ")");
  EXPECT_ERROR_HAS(Store store(path), path);
}

TEST(Store, RefusesFilesThatAreNotAblateDatabases) {
  TempDir dir;
  const std::string text = dir.file("notes.txt");
  std::ofstream(text) << "this is not a database, but it is long enough to look like a file\n";
  EXPECT_ERROR_HAS(Store store(text), "file is not a database");
  const std::string other = dir.file("other.db");
  {
    SQLite::Database db(other, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db.exec("CREATE TABLE mine (x)");
  }
  EXPECT_ERROR_HAS(Store store(other), "not an ablate database");
  // Another program's file is refused before anything persists: not switched to WAL, not a byte
  // changed (a mistyped --db must not modify it).
  const auto bytes = [](const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  const std::string before = bytes(other);
  EXPECT_THROW(Store store(other), NotAStoreError);
  EXPECT_EQ(bytes(other), before);
  EXPECT_FALSE(std::filesystem::exists(other + "-wal"));
  EXPECT_THROW(Store store(text), NotAStoreError);
  EXPECT_THROW(Store store(dir.str()), NotAStoreError);
  EXPECT_ERROR_HAS(Store store(dir.str()), "a folder, not a database file");
  EXPECT_ERROR_HAS(Store store(dir.file("missing.db"), StoreOptions{true}),
                   "no such database file");
  EXPECT_ERROR_HAS(Store store(dir.file("no/such/dir/x.db")), "open");
}

TEST(Store, ReadOnlyStoreReadsButNeverWrites) {
  TempDir dir;
  const std::string path = dir.file("ro.db");
  {
    Store store(path);
    store.register_sweep(sweep_record());
  }
  Store store(path, StoreOptions{/*read_only=*/true});
  EXPECT_EQ(store.sweeps(), std::vector<std::string>{"grid"});
  EXPECT_ERROR_HAS(store.register_sweep(sweep_record("other")), "readonly");
}

TEST(Store, ForeignKeysAreEnforced) {
  TempDir dir;
  Store store(dir.file("fk.db"));
  store.register_sweep(sweep_record());
  store.register_jobs("grid", {job_record("a1"), job_record("b2", 0, "a1")});
  store.set_environment("grid", "b2", {{"gpu", "none"}});
  EXPECT_THROW(store.database().exec("INSERT INTO params VALUES (999, 'k', 'v', NULL)"),
               SQLite::Exception);
  EXPECT_THROW(store.database().exec("INSERT INTO jobs (sweep, id, stage, arm_key, seed, run_dir) "
                                     "VALUES (42, 'x', '', '', 0, '')"),
               SQLite::Exception);
  EXPECT_THROW(store.database().exec("INSERT INTO metrics VALUES (999, 'train/loss', 1, 2.0)"),
               SQLite::Exception);
  // Deleting a sweep takes everything of it along.
  store.database().exec("DELETE FROM sweeps WHERE name = 'grid'");
  for (const char* table : {"jobs", "params", "environment"}) {
    EXPECT_EQ(count(store, std::string("SELECT COUNT(*) FROM ") + table), 0) << table;
  }
}

TEST(Store, RegisterSweepCreatesUpdatesAndKeepsJobs) {
  TempDir dir;
  Store store(dir.file("s.db"));
  SweepRecord r = sweep_record();
  EXPECT_EQ(store.register_sweep(r), Store::Registered::kCreated);
  EXPECT_EQ(store.register_sweep(r), Store::Registered::kUnchanged);
  store.register_jobs("grid", {job_record("a1")});
  const SweepRow before = *store.sweep("grid");
  r.yaml = "base: {seed: 2}\n";
  r.config_hash = "h2";
  r.dirty = true;
  r.provenance = {{"host", "other-box"}};
  EXPECT_EQ(store.register_sweep(r), Store::Registered::kUpdated);
  const SweepRow after = *store.sweep("grid");
  EXPECT_EQ(after.yaml, r.yaml);
  EXPECT_EQ(after.config_hash, "h2");
  EXPECT_TRUE(after.dirty);
  EXPECT_EQ(after.created, before.created);
  EXPECT_EQ(after.created.size(), std::string("2024-05-01T12:34:56.789Z").size());
  EXPECT_EQ(after.created.back(), 'Z');
  EXPECT_EQ(store.jobs("grid").size(), 1u);  // kept
  const auto env = store.environment("grid");
  EXPECT_EQ(env.at("host"), "other-box");   // upserted
  EXPECT_EQ(env.at("compiler"), "g++ 12");  // kept
  EXPECT_FALSE(store.sweep("nope"));
  EXPECT_ERROR_HAS(store.register_sweep(sweep_record("")), "non-empty");
  EXPECT_ERROR_HAS(store.register_sweep(sweep_record("a\nb")), "control characters");
}

TEST(Store, RegisterJobsIsIdempotent) {
  TempDir dir;
  Store store(dir.file("j.db"));
  store.register_sweep(sweep_record());
  const std::vector<JobRecord> jobs = {job_record("a1", 0), job_record("a2", 1),
                                       job_record("c1", 0, "a1")};
  EXPECT_EQ(store.register_jobs("grid", jobs), 3);
  EXPECT_EQ(store.register_jobs("grid", jobs), 0);
  store.mark_running("grid", "a1", "box", "cpu");
  // A grown grid adds only the new job; an existing one keeps its state and params.
  JobRecord changed = job_record("a1", 0);
  changed.params = {{"attention.variant", "mha"}};
  EXPECT_EQ(store.register_jobs("grid", {changed, job_record("a3", 2)}), 1);
  const auto rows = store.jobs("grid");
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0].id, "a1");
  EXPECT_EQ(rows[0].status, "running");
  EXPECT_EQ(rows[3].id, "a3");
  EXPECT_EQ(rows[2].parent_id, "a1");
  EXPECT_EQ(rows[2].stage, "convert");
  EXPECT_EQ(rows[2].run_dir, "runs/grid/c1");
  EXPECT_EQ(rows[1].seed, 1);
  EXPECT_EQ(rows[1].sweep, "grid");
  EXPECT_EQ(store.params("grid", "a1"),
            (std::vector<std::pair<std::string, std::string>>{{"attention.kv_heads", "2"},
                                                              {"attention.variant", "gqa"}}));
  // Identical duplicates inside one batch are one job; the same id in two sweeps is two jobs.
  store.register_sweep(sweep_record("other"));
  EXPECT_EQ(store.register_jobs("other", {job_record("a1"), job_record("a1")}), 1);
  EXPECT_EQ(store.jobs("other").size(), 1u);
}

TEST(Store, RegisterJobsRejectsBadBatchesAndWritesNothing) {
  TempDir dir;
  Store store(dir.file("bad.db"));
  store.register_sweep(sweep_record());
  EXPECT_ERROR_HAS(store.register_jobs("nope", {job_record("a1")}), "no sweep named 'nope'");
  EXPECT_ERROR_HAS(store.register_jobs("grid", {job_record("a1"), job_record("c1", 0, "zz")}),
                   "job c1 names parent zz, which is not a job of sweep 'grid'");
  JobRecord other = job_record("a1");
  other.seed = 9;
  EXPECT_ERROR_HAS(store.register_jobs("grid", {job_record("a1"), other}),
                   "appears twice in the batch with different contents");
  JobRecord twice = job_record("a2");
  twice.params.push_back({"attention.variant", "mha"});
  EXPECT_ERROR_HAS(store.register_jobs("grid", {twice}), "param 'attention.variant' given twice");
  EXPECT_ERROR_HAS(store.register_jobs("grid", {job_record("")}), "a job id must be non-empty");
  EXPECT_ERROR_HAS(store.register_jobs("grid", {job_record("a1", 0, "a1")}), "itself");
  EXPECT_TRUE(store.jobs("grid").empty());  // the failed batches left nothing behind
  EXPECT_EQ(count(store, "SELECT COUNT(*) FROM params"), 0);
}

TEST(Store, StatusTransitions) {
  TempDir dir;
  Store store(dir.file("t.db"));
  store.register_sweep(sweep_record());
  store.register_jobs("grid", {job_record("a1"), job_record("c1", 0, "a1"), job_record("a2")});
  store.mark_running("grid", "a1", "box", "cuda:0");
  JobRow r = *store.job("grid", "a1");
  EXPECT_EQ(r.status, "running");
  EXPECT_EQ(r.attempts, 1);
  EXPECT_EQ(r.host, "box");
  EXPECT_EQ(r.device, "cuda:0");
  EXPECT_FALSE(r.started.empty());
  EXPECT_TRUE(r.ended.empty());

  store.mark_finished("grid", "a1", "failed", 3, "boom\nlast log line");
  r = *store.job("grid", "a1");
  EXPECT_EQ(r.status, "failed");
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.error, "boom\nlast log line");
  EXPECT_FALSE(r.ended.empty());

  store.mark_running("grid", "a1", "box", "cuda:1");  // a retry
  r = *store.job("grid", "a1");
  EXPECT_EQ(r.attempts, 2);
  EXPECT_EQ(r.device, "cuda:1");
  EXPECT_FALSE(r.exit_code);
  EXPECT_TRUE(r.error.empty());
  EXPECT_TRUE(r.ended.empty());
  store.mark_finished("grid", "a1", "done", 0, "");
  store.mark_finished("grid", "a1", "done", 0, "");  // recorded again after a recovery: no-op
  EXPECT_EQ(store.job("grid", "a1")->status, "done");
  EXPECT_ERROR_HAS(store.mark_running("grid", "a1", "box", "cpu"),
                   "the job is done; a finished job is never run again");
  EXPECT_ERROR_HAS(store.mark_finished("grid", "a1", "failed", 1, ""), "the job is done");
  EXPECT_ERROR_HAS(store.mark_finished("grid", "a2", "done", 0, ""), "the job is pending");
  EXPECT_ERROR_HAS(store.mark_finished("grid", "a2", "running", 0, ""), "the status must be one");
  EXPECT_ERROR_HAS(store.mark_finished("grid", "a2", "exploded", 0, ""), "the status must be one");
  EXPECT_ERROR_HAS(store.mark_running("grid", "zz", "box", "cpu"), "no job 'zz' in sweep 'grid'");
  EXPECT_ERROR_HAS(store.mark_running("nope", "a1", "box", "cpu"), "no sweep named 'nope'");

  store.mark_finished("grid", "c1", "skipped", std::nullopt, "skipped: parent a1 failed");
  r = *store.job("grid", "c1");
  EXPECT_EQ(r.status, "skipped");
  EXPECT_EQ(r.attempts, 0);
  EXPECT_EQ(r.error, "skipped: parent a1 failed");
  store.mark_running("grid", "c1", "box", "cpu");  // its parent is done now
  EXPECT_ERROR_HAS(store.mark_finished("grid", "c1", "skipped", std::nullopt, ""),
                   "the job is running, it cannot be skipped");
  store.mark_finished("grid", "c1", "interrupted", std::nullopt, "SIGINT");
  store.mark_finished("grid", "c1", "diverged", 0, "");  // its run dir showed the outcome
  EXPECT_EQ(store.job("grid", "c1")->status, "diverged");

  store.mark_running("grid", "a2", "box", "cpu");
  store.mark_finished("grid", "a2", "timed_out", std::nullopt, "ran past --timeout 60");
  const auto counts = store.status_counts("grid");
  EXPECT_EQ(counts.size(), std::size(kJobStatuses));
  EXPECT_EQ(counts.at("done"), 1);
  EXPECT_EQ(counts.at("diverged"), 1);
  EXPECT_EQ(counts.at("timed_out"), 1);
  EXPECT_EQ(counts.at("pending"), 0);
  EXPECT_EQ(counts.at("running"), 0);
  EXPECT_ERROR_HAS(store.status_counts("nope"), "no sweep named 'nope'");
}

TEST(Store, ImportedJobsGoStraightToDoneOrDivergedWithSummaries) {
  TempDir dir;
  Store store(dir.file("imp.db"));
  store.register_sweep(sweep_record());
  store.register_jobs("grid", {job_record("a1"), job_record("a2"), job_record("a3")});
  store.mark_imported("grid", "a1", "done", "import", "");
  store.mark_imported("grid", "a2", "diverged", "import", "diverged: acc = nan");
  JobRow r = *store.job("grid", "a1");
  EXPECT_EQ(r.status, "done");
  EXPECT_EQ(r.host, "import");
  EXPECT_EQ(r.attempts, 0);  // ablate never launched it
  EXPECT_TRUE(r.started.empty());
  EXPECT_TRUE(r.ended.empty());
  EXPECT_FALSE(r.exit_code);
  EXPECT_TRUE(r.error.empty());
  EXPECT_EQ(store.job("grid", "a2")->status, "diverged");
  EXPECT_EQ(store.job("grid", "a2")->error, "diverged: acc = nan");
  EXPECT_ERROR_HAS(store.mark_imported("grid", "a1", "done", "import", ""),
                   "the job is done, not pending");
  EXPECT_ERROR_HAS(store.mark_imported("grid", "a3", "failed", "import", ""),
                   "an imported job is done or diverged");
  EXPECT_ERROR_HAS(store.mark_imported("grid", "zz", "done", "import", ""), "no job 'zz'");

  store.set_summaries("grid", "a1", {{"test acc", 0.5}, {"loss.final", 2.0}});
  store.set_summaries("grid", "a1", {{"test acc", 0.75}});  // upserts, keeps the other names
  EXPECT_EQ(count(store, "SELECT COUNT(*) FROM summaries"), 2);
  // The views gained the new names by themselves (dots become '_').
  EXPECT_EQ(scalar_text(store, "SELECT \"test acc\" FROM results WHERE id = 'a1'"), "0.75");
  EXPECT_EQ(scalar_text(store, "SELECT loss_final FROM results WHERE id = 'a1'"), "2.0");
  EXPECT_ERROR_HAS(store.set_summaries("grid", "a1", {{"x", std::nan("")}}), "is not finite");
  EXPECT_ERROR_HAS(store.set_summaries("grid", "a1", {{"", 1.0}}), "is empty");
  EXPECT_ERROR_HAS(store.set_summaries("grid", "zz", {{"x", 1.0}}), "no job 'zz'");
  EXPECT_EQ(count(store, "SELECT COUNT(*) FROM summaries"), 2);
}

// A wide sweep (2,500 summary names, more than SQLite allows in one view) never breaks the views
// or the queries of the sweeps before it: the newest keys are left out, and listed.
TEST(Store, AWideSweepNeverBreaksTheViewsOfEarlierOnes) {
  TempDir dir;
  Store store(dir.file("wide.db"));
  store.register_sweep(sweep_record("old"));
  store.register_jobs("old", {job_record("o1")});
  store.set_summaries("old", "o1", {{"final_val_loss", 1.25}});
  store.register_sweep(sweep_record("wide"));
  store.register_jobs("wide", {job_record("w1")});
  std::vector<std::pair<std::string, double>> many;
  for (int i = 0; i < 2500; ++i) many.emplace_back("metric_" + std::to_string(10000 + i), i);
  store.set_summaries("wide", "w1", many);
  store.refresh_views();
  EXPECT_EQ(scalar_text(store, "SELECT final_val_loss FROM results WHERE sweep = 'old'"), "1.25");
  EXPECT_EQ(scalar_text(store, "SELECT attention_kv_heads FROM runs WHERE id = 'o1'"), "2");
  SQLite::Statement all(store.database(), "SELECT *, 1 FROM results");
  EXPECT_LE(static_cast<size_t>(all.getColumnCount()), kMaxViewColumns + 1);
  // The first names of the wide sweep are in the view; the rest are listed as left out, with
  // their values still in summaries.
  EXPECT_EQ(scalar_text(store, "SELECT metric_10000 FROM results WHERE sweep = 'wide'"), "0.0");
  const auto& out = store.left_out_of_views();
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(out.back(), "metric_12499");
  EXPECT_EQ(static_cast<size_t>(all.getColumnCount()), kMaxViewColumns + 1);  // full, not over
  EXPECT_THROW(SQLite::Statement(store.database(), "SELECT metric_12499 FROM results"),
               SQLite::Exception);
  EXPECT_EQ(count(store, "SELECT COUNT(*) FROM summaries WHERE name = 'metric_12499'"), 1);
}

TEST(Store, ViewsPivotParamsAndSummariesWithTypes) {
  TempDir dir;
  Store store(dir.file("v.db"));
  store.register_sweep(sweep_record("x"));
  store.register_sweep(sweep_record("y"));
  std::vector<JobRecord> jobs;
  const char* variants[] = {"gqa", "dgqa", "gqa", "dgqa"};
  for (int i = 0; i < 4; ++i) {
    JobRecord j = job_record("j" + std::to_string(i), i);
    j.params = {{"attention.variant", variants[i]},
                {"attention.kv_heads", std::to_string(1 << i)},
                {"train.lr", i % 2 ? "3e-4" : "0.001"},
                {"model.dim", i == 3 ? "auto" : "64"},  // mixed: a text column
                {"odd\"key'.x", "1.5"},
                {"seed", "77"},     // taken by a job column
                {"Status", "zz"}};  // so is this, case-insensitively
    jobs.push_back(j);
  }
  store.register_jobs("x", jobs);
  store.register_jobs("y", {job_record("j0")});
  // Summaries as ingest writes them.
  const double losses[] = {1.0, 2.0, 3.0, 5.0};
  for (int i = 0; i < 4; ++i) {
    SQLite::Statement s(store.database(), "INSERT INTO summaries VALUES (?, 'final_val_loss', ?)");
    s.bind(1, store.job_pk("x", "j" + std::to_string(i)));
    s.bind(2, losses[i]);
    s.exec();
  }
  store.refresh_views();

  SQLite::Statement q(store.database(),
                      "SELECT attention_variant, AVG(final_val_loss), COUNT(*) FROM results "
                      "WHERE sweep = 'x' GROUP BY 1 ORDER BY 1");
  ASSERT_TRUE(q.executeStep());
  EXPECT_EQ(q.getColumn(0).getString(), "dgqa");
  EXPECT_DOUBLE_EQ(q.getColumn(1).getDouble(), 3.5);
  ASSERT_TRUE(q.executeStep());
  EXPECT_EQ(q.getColumn(0).getString(), "gqa");
  EXPECT_DOUBLE_EQ(q.getColumn(1).getDouble(), 2.0);
  EXPECT_FALSE(q.executeStep());

  auto type_of = [&](const std::string& column) {
    return scalar_text(store, "SELECT typeof(" + column +
                                  ") FROM runs WHERE sweep = 'x' AND id "
                                  "= 'j1'");
  };
  EXPECT_EQ(type_of("attention_kv_heads"), "integer");
  EXPECT_EQ(type_of("train_lr"), "real");
  EXPECT_EQ(type_of("attention_variant"), "text");
  EXPECT_EQ(type_of("model_dim"), "text");
  EXPECT_EQ(type_of("\"odd\"\"key'_x\""), "real");
  EXPECT_EQ(type_of("param_seed"), "integer");
  EXPECT_EQ(type_of("seed"), "integer");
  EXPECT_EQ(scalar_text(store, "SELECT param_Status FROM runs WHERE id = 'j1'"), "zz");
  EXPECT_EQ(count(store, "SELECT COUNT(*) FROM runs WHERE attention_kv_heads >= 4"), 2);
  EXPECT_EQ(count(store, "SELECT COUNT(*) FROM runs WHERE attention_variant = 'dgqa'"), 2);
  EXPECT_EQ(count(store, "SELECT COUNT(*) FROM runs WHERE sweep = 'y'"), 1);
  EXPECT_EQ(scalar_text(store, "SELECT final_val_loss FROM results WHERE sweep = 'y'"), "<null>");
  EXPECT_EQ(scalar_text(store, "SELECT status FROM runs WHERE id = 'j1'"), "pending");

  // register_jobs refreshes the views by itself when a new key appears.
  JobRecord extra = job_record("j9");
  extra.params = {{"noise.scale", "0.25"}};
  store.register_jobs("x", {extra});
  EXPECT_EQ(scalar_text(store, "SELECT noise_scale FROM runs WHERE id = 'j9'"), "0.25");
}

TEST(Store, EnvironmentOfSweepAndJob) {
  TempDir dir;
  Store store(dir.file("e.db"));
  store.register_sweep(sweep_record());
  store.register_jobs("grid", {job_record("a1")});
  store.set_environment("grid", "", {{"libtorch", "2.1.0"}, {"cuda", "12.1"}});
  store.set_environment("grid", "a1", {{"gpu", "H100"}, {"driver", "550"}});
  store.set_environment("grid", "a1", {{"gpu", "H200"}});
  EXPECT_EQ(store.environment("grid", "a1"),
            (std::map<std::string, std::string>{{"driver", "550"}, {"gpu", "H200"}}));
  const auto env = store.environment("grid");
  EXPECT_EQ(env.at("libtorch"), "2.1.0");
  EXPECT_EQ(env.at("host"), "box");  // from the sweep record's provenance
  EXPECT_EQ(env.count("gpu"), 0u);
  EXPECT_ERROR_HAS(store.set_environment("grid", "zz", {{"k", "v"}}), "no job 'zz'");
}

// The sweep file's plan: jobs it no longer names become stale (kept, out of the status counts,
// flagged in the views); named again they are active with their results.
TEST(Store, SyncPlanMarksStaleAndReactivatesWithResults) {
  TempDir dir;
  Store store(dir.file("plan.db"));
  store.register_sweep(sweep_record());
  store.register_jobs("grid", {job_record("a1"), job_record("b1", 0, "a1"), job_record("c1")});
  store.mark_running("grid", "c1", "box", "cpu");
  store.mark_finished("grid", "c1", "done", 0, "");
  store.set_summaries("grid", "c1", {{"final_val_loss", 2.5}});

  PlanSync sync = store.sync_plan("grid", {"a1", "b1", "c1"});
  EXPECT_TRUE(sync.stale.empty());
  EXPECT_TRUE(sync.reactivated.empty());
  EXPECT_EQ(sync.stale_total, 0);

  sync = store.sync_plan("grid", {"a1", "zz"});  // zz: not registered, ignored
  EXPECT_EQ(sync.stale, (std::vector<std::string>{"b1", "c1"}));
  EXPECT_TRUE(sync.reactivated.empty());
  EXPECT_EQ(sync.stale_total, 2);
  EXPECT_TRUE(store.job("grid", "c1")->stale);
  EXPECT_FALSE(store.job("grid", "a1")->stale);
  EXPECT_EQ(store.jobs("grid").size(), 3u);  // kept
  auto counts = store.status_counts("grid");
  EXPECT_EQ(counts.at("pending"), 1);  // a1 only
  EXPECT_EQ(counts.at("done"), 0);     // c1 is stale
  EXPECT_EQ(count(store, "SELECT COUNT(*) FROM runs WHERE stale = 1"), 2);
  EXPECT_EQ(scalar_text(store, "SELECT final_val_loss FROM results WHERE id = 'c1'"), "2.5");

  sync = store.sync_plan("grid", {"a1"});  // again: nothing new becomes stale
  EXPECT_TRUE(sync.stale.empty());
  EXPECT_EQ(sync.stale_total, 2);

  sync = store.sync_plan("grid", {"a1", "c1"});  // the file reverted for c1
  EXPECT_EQ(sync.reactivated, std::vector<std::string>{"c1"});
  EXPECT_EQ(sync.stale_total, 1);
  const JobRow c1 = *store.job("grid", "c1");
  EXPECT_FALSE(c1.stale);
  EXPECT_EQ(c1.status, "done");
  EXPECT_EQ(store.status_counts("grid").at("done"), 1);
  EXPECT_EQ(scalar_text(store, "SELECT final_val_loss FROM results WHERE id = 'c1'"), "2.5");
  EXPECT_ERROR_HAS(store.sync_plan("nope", {}), "no sweep named 'nope'");
}

TEST(Store, ResetReturnsJobsToPendingWithoutTheirResults) {
  TempDir dir;
  Store store(dir.file("reset.db"));
  store.register_sweep(sweep_record());
  store.register_jobs("grid", {job_record("a1"), job_record("a2"), job_record("a3")});
  for (const char* id : {"a1", "a2"}) {
    store.mark_running("grid", id, "box", "cuda:0");
    store.mark_finished("grid", id, id == std::string("a1") ? "diverged" : "failed", 1, "boom");
    store.set_summaries("grid", id, {{"final_val_loss", 3.0}});
    store.set_environment("grid", id, {{"torch_version", "2.1"}});
    SQLite::Statement m(store.database(), "INSERT INTO metrics VALUES (?, 'train/loss', 10, 4.0)");
    m.bind(1, store.job_pk("grid", id));
    m.exec();
    store.database().exec(
        "UPDATE jobs SET events_offset = 99, events_lines = 3, events_inode = 7,"
        " summary_status = 'diverged', causality = 'ok'");
  }
  store.mark_running("grid", "a3", "box", "cpu");

  // A running job (a worker may still write its run dir) or an unknown one: nothing changes.
  EXPECT_ERROR_HAS(store.reset_jobs("grid", {"a1", "a3"}), "job a3 is running");
  EXPECT_ERROR_HAS(store.reset_jobs("grid", {"a1", "zz"}), "no job 'zz'");
  EXPECT_EQ(store.job("grid", "a1")->status, "diverged");
  EXPECT_EQ(count(store, "SELECT COUNT(*) FROM summaries"), 2);

  store.reset_jobs("grid", {"a1"});
  const JobRow r = *store.job("grid", "a1");
  EXPECT_EQ(r.status, "pending");
  EXPECT_EQ(r.attempts, 0);
  EXPECT_TRUE(r.host.empty());
  EXPECT_TRUE(r.device.empty());
  EXPECT_TRUE(r.started.empty());
  EXPECT_TRUE(r.ended.empty());
  EXPECT_FALSE(r.exit_code);
  EXPECT_TRUE(r.error.empty());
  EXPECT_TRUE(r.summary_status.empty());
  EXPECT_TRUE(r.causality.empty());
  EXPECT_EQ(r.events_offset, 0);
  EXPECT_EQ(r.events_lines, 0);
  const int64_t pk = store.job_pk("grid", "a1");
  for (const char* table : {"metrics", "summaries", "environment"}) {
    EXPECT_EQ(count(store, std::string("SELECT COUNT(*) FROM ") + table +
                               " WHERE job = " + std::to_string(pk)),
              0)
        << table;
  }
  EXPECT_EQ(store.params("grid", "a1").size(), 2u);  // the config stays
  EXPECT_EQ(scalar_text(store, "SELECT final_val_loss FROM results WHERE id = 'a1'"), "<null>");
  // The other job keeps its outcome and results.
  EXPECT_EQ(store.job("grid", "a2")->status, "failed");
  EXPECT_EQ(scalar_text(store, "SELECT final_val_loss FROM results WHERE id = 'a2'"), "3.0");
  // A reset job runs again: a diverged one never could.
  store.mark_running("grid", "a1", "box", "cpu");
  EXPECT_EQ(store.job("grid", "a1")->attempts, 1);
}

TEST(Store, ReplaceParamsUpdatesTheConfigOfARelaunch) {
  TempDir dir;
  Store store(dir.file("params.db"));
  store.register_sweep(sweep_record());
  store.register_jobs("grid", {job_record("a1")});
  EXPECT_FALSE(store.replace_params("grid", "a1",
                                    {{"attention.variant", "gqa"}, {"attention.kv_heads", "2"}}));
  EXPECT_TRUE(store.replace_params(
      "grid", "a1",
      {{"attention.variant", "gqa"}, {"attention.kv_heads", "2"}, {"data.path", "/fixed"}}));
  EXPECT_EQ(scalar_text(store, "SELECT data_path FROM runs WHERE id = 'a1'"), "/fixed");
  EXPECT_EQ(count(store, "SELECT attention_kv_heads FROM runs WHERE id = 'a1'"), 2);
}

TEST(Store, PruneDeletesStaleJobsWithEverythingOfThem) {
  TempDir dir;
  Store store(dir.file("prune.db"));
  store.register_sweep(sweep_record());
  store.register_jobs(
      "grid", {job_record("a1"), job_record("b1", 0, "a1"), job_record("c1"), job_record("d1")});
  for (const char* id : {"a1", "b1", "c1"}) {
    store.mark_running("grid", id, "box", "cpu");
    store.mark_finished("grid", id, "done", 0, "");
    store.set_summaries("grid", id, {{"final_val_loss", 1.0}});
    store.set_environment("grid", id, {{"device", "cpu"}});
    SQLite::Statement m(store.database(), "INSERT INTO metrics VALUES (?, 'train/loss', 10, 4.0)");
    m.bind(1, store.job_pk("grid", id));
    m.exec();
  }
  store.sync_plan("grid", {"b1", "d1"});  // a1 and c1 stale; b1 (a1's child) planned
  EXPECT_ERROR_HAS(store.prune_jobs("grid", {"d1"}), "job d1 is planned by the sweep file");
  EXPECT_ERROR_HAS(store.prune_jobs("grid", {"a1", "c1"}), "job a1 is the parent of job b1");
  EXPECT_EQ(store.jobs("grid").size(), 4u);  // nothing deleted

  store.sync_plan("grid", {"d1"});  // now b1 is stale too
  const int64_t kept = store.job_pk("grid", "d1");
  store.prune_jobs("grid", {"a1", "b1", "c1"});
  ASSERT_EQ(store.jobs("grid").size(), 1u);
  EXPECT_EQ(store.jobs("grid")[0].id, "d1");
  for (const char* table : {"params", "metrics", "summaries", "environment"}) {
    EXPECT_EQ(count(store, std::string("SELECT COUNT(*) FROM ") + table + " WHERE job <> " +
                               std::to_string(kept)),
              0)
        << table;
  }
  EXPECT_EQ(count(store, "SELECT COUNT(*) FROM environment WHERE job IS NULL"), 2);  // the sweep's
  EXPECT_EQ(scalar_text(store, "PRAGMA foreign_key_check"), "<null>");
  EXPECT_ERROR_HAS(store.prune_jobs("grid", {"a1"}), "no job 'a1'");
}

TEST(Store, TransactionsRollBackUnlessCommittedAndNest) {
  TempDir dir;
  Store store(dir.file("tx.db"));
  store.register_sweep(sweep_record());
  {
    Store::Transaction t(store);
    store.register_jobs("grid", {job_record("a1")});  // joins t
  }
  EXPECT_TRUE(store.jobs("grid").empty());
  {
    Store::Transaction t(store);
    store.register_jobs("grid", {job_record("a1")});
    store.mark_running("grid", "a1", "box", "cpu");
    t.commit();
  }
  EXPECT_EQ(store.job("grid", "a1")->status, "running");
}

}  // namespace
}  // namespace ablate::results
