#include "ablate/results/store.h"

#include <SQLiteCpp/Exception.h>
#include <sqlite3.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <initializer_list>
#include <iterator>
#include <regex>
#include <set>
#include <variant>

#include "ablate/results/files.h"

namespace ablate::results {
namespace {

// Now as ISO-8601 UTC with milliseconds, evaluated by SQLite inside the statement.
constexpr const char* kNow = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

struct Migration {
  int version;
  const char* description;
  const char* sql;
};

// Applied in order, each in its own transaction with its row in schema_version. Never edit a
// released migration: add the next one (and a test that opens a file of the previous version).
constexpr Migration kMigrations[] = {
    {1, "initial schema", R"sql(
CREATE TABLE IF NOT EXISTS schema_version (
  version INTEGER PRIMARY KEY,
  description TEXT NOT NULL,
  applied TEXT NOT NULL
);
CREATE TABLE sweeps (
  pk INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  yaml TEXT NOT NULL,
  config_hash TEXT NOT NULL,
  code_version TEXT NOT NULL,
  dirty INTEGER NOT NULL CHECK (dirty IN (0, 1)),
  created TEXT NOT NULL,
  updated TEXT NOT NULL
);
CREATE TABLE jobs (
  pk INTEGER PRIMARY KEY,
  sweep INTEGER NOT NULL REFERENCES sweeps(pk) ON DELETE CASCADE,
  id TEXT NOT NULL,
  stage TEXT NOT NULL,
  arm_key TEXT NOT NULL,
  seed INTEGER NOT NULL,
  parent_id TEXT,
  run_dir TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'done', 'failed',
    'diverged', 'timed_out', 'interrupted', 'skipped')),
  attempts INTEGER NOT NULL DEFAULT 0,
  host TEXT,
  device TEXT,
  started TEXT,
  ended TEXT,
  exit_code INTEGER,
  error TEXT,
  summary_status TEXT,
  causality TEXT,
  events_offset INTEGER NOT NULL DEFAULT 0,
  events_lines INTEGER NOT NULL DEFAULT 0,
  events_inode INTEGER,
  events_tail BLOB,
  UNIQUE (sweep, id),
  FOREIGN KEY (sweep, parent_id) REFERENCES jobs(sweep, id) DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX jobs_by_status ON jobs(sweep, status);
CREATE INDEX jobs_by_parent ON jobs(sweep, parent_id);
CREATE TABLE params (
  job INTEGER NOT NULL REFERENCES jobs(pk) ON DELETE CASCADE,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  num NUMERIC,
  PRIMARY KEY (job, key)
) WITHOUT ROWID;
CREATE INDEX params_by_key_value ON params(key, value);
CREATE TABLE metrics (
  job INTEGER NOT NULL REFERENCES jobs(pk) ON DELETE CASCADE,
  name TEXT NOT NULL,
  step INTEGER NOT NULL,
  value REAL NOT NULL,
  PRIMARY KEY (job, name, step)
) WITHOUT ROWID;
CREATE TABLE summaries (
  job INTEGER NOT NULL REFERENCES jobs(pk) ON DELETE CASCADE,
  name TEXT NOT NULL,
  value REAL NOT NULL,
  PRIMARY KEY (job, name)
) WITHOUT ROWID;
CREATE INDEX summaries_by_name ON summaries(name);
CREATE TABLE environment (
  sweep INTEGER NOT NULL REFERENCES sweeps(pk) ON DELETE CASCADE,
  job INTEGER REFERENCES jobs(pk) ON DELETE CASCADE,
  key TEXT NOT NULL,
  value TEXT NOT NULL
);
CREATE UNIQUE INDEX environment_of_sweep ON environment(sweep, key) WHERE job IS NULL;
CREATE UNIQUE INDEX environment_of_job ON environment(job, key) WHERE job IS NOT NULL;
CREATE VIEW curves AS
  SELECT s.name AS sweep, j.id AS job_id, j.pk AS job, m.name AS name, m.step AS step,
         m.value AS value
  FROM metrics m JOIN jobs j ON j.pk = m.job JOIN sweeps s ON s.pk = j.sweep;
)sql"},
    // The sweep file's current plan defines the sweep: a job it no longer plans is kept, marked
    // stale (docs/design.md section 6).
    {2, "jobs.stale: jobs the sweep file no longer plans", R"sql(
ALTER TABLE jobs ADD COLUMN stale INTEGER NOT NULL DEFAULT 0 CHECK (stale IN (0, 1));
)sql"},
    // In version 2, jobs.sweep and environment.sweep were the sweep's integer key while every
    // view's `sweep` was its name: `WHERE sweep = 'name'` on a table silently matched nothing.
    // From version 3 a `sweep` column holds the name wherever it appears; the key is `sweep_pk`.
    // Renaming the column carries the constraints, indexes and views that use it.
    {3, "jobs.sweep and environment.sweep hold the sweep's name; the key is sweep_pk", R"sql(
ALTER TABLE jobs RENAME COLUMN sweep TO sweep_pk;
ALTER TABLE jobs ADD COLUMN sweep TEXT NOT NULL DEFAULT '';
UPDATE jobs SET sweep = (SELECT name FROM sweeps WHERE pk = jobs.sweep_pk);
ALTER TABLE environment RENAME COLUMN sweep TO sweep_pk;
ALTER TABLE environment ADD COLUMN sweep TEXT NOT NULL DEFAULT '';
UPDATE environment SET sweep = (SELECT name FROM sweeps WHERE pk = environment.sweep_pk);
)sql"},
    // Seeds until decided: what each look of the coordinator saw and decided, per comparison of
    // the sweep's report question (decision_log.h). Infinite CS ends are stored as REAL inf.
    {4, "sequential_looks: the decision log of seeds until decided", R"sql(
CREATE TABLE sequential_looks (
  sweep_pk INTEGER NOT NULL REFERENCES sweeps(pk) ON DELETE CASCADE,
  sweep TEXT NOT NULL,
  look INTEGER NOT NULL,
  recorded TEXT NOT NULL,
  family TEXT NOT NULL,
  arm_key TEXT NOT NULL,
  reference_arm_key TEXT NOT NULL,
  arm_label TEXT NOT NULL,
  reference_label TEXT NOT NULL,
  method TEXT NOT NULL,
  seeds INTEGER NOT NULL,
  max_seeds INTEGER NOT NULL,
  level REAL,
  e_value REAL,
  cs_low REAL,
  cs_high REAL,
  decided INTEGER NOT NULL CHECK (decided IN (0, 1)),
  equivalent INTEGER NOT NULL CHECK (equivalent IN (0, 1)),
  action TEXT NOT NULL,
  PRIMARY KEY (sweep_pk, look, family, arm_key, reference_arm_key)
);
)sql"},
};
static_assert(kMigrations[std::size(kMigrations) - 1].version == kSchemaVersion,
              "the last migration must bring the schema to kSchemaVersion");

// The fixed leading columns of the `runs` view, over `jobs j JOIN sweeps s`, with the schema
// version that brought each.
struct ViewColumn {
  const char* name;
  const char* expression;
  int since = 1;
};
constexpr ViewColumn kRunsColumns[] = {
    {"job", "j.pk"},
    {"sweep", "s.name"},
    {"id", "j.id"},
    {"stage", "j.stage"},
    {"arm_key", "j.arm_key"},
    {"seed", "j.seed"},
    {"status", "j.status"},
    {"stale", "j.stale", 2},
    {"attempts", "j.attempts"},
    {"host", "j.host"},
    {"device", "j.device"},
    {"started", "j.started"},
    {"ended", "j.ended"},
    {"duration_s", "(julianday(j.ended) - julianday(j.started)) * 86400.0"},
    {"exit_code", "j.exit_code"},
    {"error", "j.error"},
    {"run_dir", "j.run_dir"},
    {"parent_id", "j.parent_id"},
    {"summary_status", "j.summary_status"},
    {"causality", "j.causality"},
};

template <class F>
auto guarded(const Store& store, const std::string& what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const SQLite::Exception& e) {
    throw store.failure(what, e);
  }
}

// Resets a cached statement when the scope ends, so no read stays open between calls.
class StatementScope {
 public:
  explicit StatementScope(SQLite::Statement& s) : s_(s) {}
  ~StatementScope() { s_.tryReset(); }
  StatementScope(const StatementScope&) = delete;
  StatementScope& operator=(const StatementScope&) = delete;

 private:
  SQLite::Statement& s_;
};

std::string text(const SQLite::Column& c) { return c.isNull() ? std::string() : c.getString(); }

void bind_text_or_null(SQLite::Statement& s, int index, const std::string& value) {
  if (value.empty()) {
    s.bind(index);
  } else {
    s.bind(index, value);
  }
}

bool has_control(const std::string& s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

std::string quote_identifier(const std::string& name) {
  std::string q = "\"";
  for (char c : name) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

std::string quote_literal(const std::string& value) {
  std::string q = "'";
  for (char c : value) q += c == '\'' ? std::string("''") : std::string(1, c);
  return q + "'";
}

// The value as an integer or a finite double when the whole text is one, else monostate. No
// leading '+', spaces, hex or inf/nan: "2" and "3e-4" are numbers, "auto" and " 2" are not.
std::variant<std::monostate, int64_t, double> parse_number(const std::string& s) {
  const char* end = s.data() + s.size();
  int64_t i = 0;
  auto ri = std::from_chars(s.data(), end, i);
  if (ri.ec == std::errc() && ri.ptr == end && !s.empty()) return i;
  double d = 0.0;
  auto rd = std::from_chars(s.data(), end, d);
  if (rd.ec == std::errc() && rd.ptr == end && !s.empty() && std::isfinite(d)) return d;
  return std::monostate{};
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// A view column name for `key`: dots become '_'; a name already taken (SQLite compares
// identifiers case-insensitively) gets `prefix`, then a numeric suffix.
std::string view_column(const std::string& key, const std::string& prefix,
                        std::set<std::string>& taken) {
  std::string base = key;
  std::replace(base.begin(), base.end(), '.', '_');
  std::string name = base;
  if (taken.count(lower(name))) name = prefix + base;
  for (int n = 2; taken.count(lower(name)); ++n) name = prefix + base + "_" + std::to_string(n);
  taken.insert(lower(name));
  return name;
}

bool in(const std::string& s, std::initializer_list<const char*> set) {
  return std::any_of(set.begin(), set.end(), [&](const char* x) { return s == x; });
}

}  // namespace

bool is_job_status(const std::string& status) {
  return std::any_of(std::begin(kJobStatuses), std::end(kJobStatuses),
                     [&](const char* s) { return status == s; });
}

bool operator==(const JobRecord& a, const JobRecord& b) {
  return a.id == b.id && a.stage == b.stage && a.arm_key == b.arm_key && a.seed == b.seed &&
         a.parent_id == b.parent_id && a.run_dir == b.run_dir && a.params == b.params;
}

// ----- Transaction -----

Store::Transaction::Transaction(Store& store) : store_(store) {
  if (sqlite3_get_autocommit(store_.db_->getHandle()) != 0) {
    guarded(store_, "begin transaction", [&] { store_.db_->exec("BEGIN IMMEDIATE"); });
    owner_ = true;
  }
}

Store::Transaction::~Transaction() {
  if (owner_ && !done_) {
    // No destructor throws; SQLite may already have rolled back (then this fails harmlessly).
    try {
      store_.db_->exec("ROLLBACK");
    } catch (...) {
    }
  }
}

void Store::Transaction::commit() {
  if (!owner_ || done_) return;
  guarded(store_, "commit", [&] { store_.db_->exec("COMMIT"); });
  done_ = true;
}

// ----- opening and migrations -----

Store::Store(const std::string& path, StoreOptions options) : path_(path), options_(options) {
  namespace fs = std::filesystem;
  if (options_.read_only && !fs::exists(path_)) {
    throw StoreError(context("open") + ": no such database file");
  }
  std::error_code ec;
  if (fs::is_directory(path_, ec)) {
    throw NotAStoreError(context("open") + ": a folder, not a database file");
  }
  guarded(*this, "open", [&] {
    const int flags =
        options_.read_only ? SQLite::OPEN_READONLY : SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE;
    db_ = std::make_unique<SQLite::Database>(path_, flags, options_.busy_timeout_ms);
  });
  // Whose file it is, before anything that persists (journal_mode = WAL rewrites the header of
  // another program's database): only a new, empty or ablate file is touched.
  try {
    db_->tableExists("schema_version");
  } catch (const SQLite::Exception& e) {
    if (e.getErrorCode() == SQLITE_NOTADB) {
      throw NotAStoreError(context("open") + ": not an ablate database (" + e.what() + ")");
    }
    throw failure("open", e);
  }
  check_version(schema_version());
  guarded(*this, "open", [&] {
    db_->exec("PRAGMA foreign_keys = ON");
    if (!options_.read_only) {
      // WAL: readers never block the writer. synchronous=NORMAL is durable against a killed
      // process (the case that matters: run dirs are re-ingested after a power loss anyway).
      db_->exec("PRAGMA journal_mode = WAL");
      db_->exec("PRAGMA synchronous = NORMAL");
    }
  });
  migrate();
}

Store::~Store() = default;

std::string Store::context(const std::string& what) const { return "store " + path_ + ": " + what; }

StoreError Store::failure(const std::string& what, const SQLite::Exception& cause) const {
  std::string text = context(what) + ": " + cause.what();
  const int code = cause.getErrorCode() & 0xff;  // the primary code of an extended one
  if (code == SQLITE_FULL || code == SQLITE_IOERR) {
    text += " (" + free_space_text(std::filesystem::path(path_).parent_path()) +
            "; nothing of this change was committed, the database is as it was before)";
  }
  return StoreError(text);
}

int Store::schema_version() const {
  return guarded(*this, "schema_version", [&] {
    if (!db_->tableExists("schema_version")) return 0;
    SQLite::Statement s(*db_, "SELECT COALESCE(MAX(version), 0) FROM schema_version");
    s.executeStep();
    return s.getColumn(0).getInt();
  });
}

void Store::check_version(int version) const {
  if (version > kSchemaVersion) {
    throw NotAStoreError(context("open") + ": schema version " + std::to_string(version) +
                         " is newer than this ablate knows (" + std::to_string(kSchemaVersion) +
                         "); use the ablate that wrote it, or a newer one");
  }
  if (version == 0) {
    const int tables = guarded(*this, "open", [&] {
      SQLite::Statement s(*db_,
                          "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name NOT "
                          "LIKE 'sqlite_%' AND name <> 'schema_version'");
      s.executeStep();
      return s.getColumn(0).getInt();
    });
    if (tables > 0) {
      throw NotAStoreError(context("open") +
                           ": not an ablate database (it has tables but no schema_version)");
    }
  }
}

void Store::migrate() {
  int version = schema_version();
  check_version(version);
  version_ = version;
  if (options_.read_only) {
    // An older file reads as it is: what a later version added reads as its default (a job of a
    // version-1 file is never stale; see job_select()).
    if (version == 0) {
      throw NotAStoreError(context("open") + ": not an ablate database (no schema_version table)");
    }
    return;
  }
  for (const Migration& m : kMigrations) {
    if (m.version <= version) continue;
    Transaction t(*this);
    version = schema_version();  // another process may have migrated while we waited
    check_version(version);
    if (m.version <= version) continue;
    guarded(*this, "migration " + std::to_string(m.version) + " (" + m.description + ")", [&] {
      db_->exec(m.sql);
      SQLite::Statement s(*db_,
                          std::string("INSERT INTO schema_version VALUES (?, ?, ") + kNow + ")");
      s.bind(1, m.version);
      s.bind(2, m.description);
      s.exec();
    });
    version_ = m.version;
    refresh_views();  // a migration may change the columns the views show
    t.commit();
  }
  version_ = schema_version();
}

std::string Store::job_select() const {
  return std::string(
             "SELECT j.pk, s.name, j.id, j.stage, j.arm_key, j.seed, j.parent_id, j.run_dir, "
             "j.status, j.attempts, j.host, j.device, j.started, j.ended, j.exit_code, j.error, "
             "j.summary_status, j.causality, j.events_offset, j.events_lines, ") +
         (version_ >= 2 ? "j.stale" : "0") + " FROM jobs j JOIN sweeps s ON s.pk = j.sweep_pk ";
}

std::string Store::for_file_version(const std::string& sql) const {
  if (version_ >= 3) return sql;
  // A file before version 3 (read only, or during its migration) calls the key `sweep`.
  static const std::regex key("\\bsweep_pk\\b");
  return std::regex_replace(sql, key, "sweep");
}

SQLite::Statement& Store::statement(const std::string& written) const {
  const std::string sql = for_file_version(written);
  auto it = statements_.find(sql);
  if (it == statements_.end()) {
    auto s = guarded(*this, "prepare " + sql,
                     [&] { return std::make_unique<SQLite::Statement>(*db_, sql); });
    it = statements_.emplace(sql, std::move(s)).first;
  }
  it->second->tryReset();
  it->second->clearBindings();
  return *it->second;
}

int64_t Store::sweep_pk(const std::string& sweep) const {
  return guarded(*this, "sweep " + sweep, [&] {
    auto& s = statement("SELECT pk FROM sweeps WHERE name = ?");
    StatementScope scope(s);
    s.bind(1, sweep);
    if (!s.executeStep()) throw StoreError(context("no sweep named '" + sweep + "'"));
    return s.getColumn(0).getInt64();
  });
}

int64_t Store::job_pk(const std::string& sweep, const std::string& id) const {
  const int64_t sweep_key = sweep_pk(sweep);
  return guarded(*this, "job " + id, [&] {
    auto& s = statement("SELECT pk FROM jobs WHERE sweep_pk = ? AND id = ?");
    StatementScope scope(s);
    s.bind(1, sweep_key);
    s.bind(2, id);
    if (!s.executeStep()) {
      throw StoreError(context("no job '" + id + "' in sweep '" + sweep + "'"));
    }
    return s.getColumn(0).getInt64();
  });
}

// ----- sweeps -----

Store::Registered Store::register_sweep(const SweepRecord& r) {
  const std::string what = "register_sweep('" + r.name + "')";
  if (r.name.empty() || has_control(r.name)) {
    throw StoreError(context(what) +
                     ": a sweep name must be non-empty, without control characters");
  }
  Transaction t(*this);
  Registered outcome = guarded(*this, what, [&] {
    auto& find =
        statement("SELECT pk, yaml, config_hash, code_version, dirty FROM sweeps WHERE name = ?");
    StatementScope scope(find);
    find.bind(1, r.name);
    if (!find.executeStep()) {
      auto& insert = statement(std::string("INSERT INTO sweeps (name, yaml, config_hash, "
                                           "code_version, dirty, created, updated) VALUES "
                                           "(?, ?, ?, ?, ?, ") +
                               kNow + ", " + kNow + ")");
      insert.bind(1, r.name);
      insert.bind(2, r.yaml);
      insert.bind(3, r.config_hash);
      insert.bind(4, r.code_version);
      insert.bind(5, r.dirty ? 1 : 0);
      insert.exec();
      return Registered::kCreated;
    }
    const int64_t pk = find.getColumn(0).getInt64();
    const bool same = find.getColumn(1).getString() == r.yaml &&
                      find.getColumn(2).getString() == r.config_hash &&
                      find.getColumn(3).getString() == r.code_version &&
                      (find.getColumn(4).getInt() != 0) == r.dirty;
    if (same) return Registered::kUnchanged;
    auto& update = statement(std::string("UPDATE sweeps SET yaml = ?, config_hash = ?, "
                                         "code_version = ?, dirty = ?, updated = ") +
                             kNow + " WHERE pk = ?");
    update.bind(1, r.yaml);
    update.bind(2, r.config_hash);
    update.bind(3, r.code_version);
    update.bind(4, r.dirty ? 1 : 0);
    update.bind(5, pk);
    update.exec();
    return Registered::kUpdated;
  });
  if (!r.provenance.empty()) set_environment(r.name, "", r.provenance);
  t.commit();
  return outcome;
}

std::vector<std::string> Store::sweeps() const {
  return guarded(*this, "sweeps", [&] {
    auto& s = statement("SELECT name FROM sweeps ORDER BY name");
    StatementScope scope(s);
    std::vector<std::string> names;
    while (s.executeStep()) names.push_back(s.getColumn(0).getString());
    return names;
  });
}

std::optional<SweepRow> Store::sweep(const std::string& name) const {
  return guarded(*this, "sweep('" + name + "')", [&]() -> std::optional<SweepRow> {
    auto& s = statement(
        "SELECT pk, name, yaml, config_hash, code_version, dirty, created, updated FROM sweeps "
        "WHERE name = ?");
    StatementScope scope(s);
    s.bind(1, name);
    if (!s.executeStep()) return std::nullopt;
    SweepRow row;
    row.pk = s.getColumn(0).getInt64();
    row.name = s.getColumn(1).getString();
    row.yaml = s.getColumn(2).getString();
    row.config_hash = s.getColumn(3).getString();
    row.code_version = s.getColumn(4).getString();
    row.dirty = s.getColumn(5).getInt() != 0;
    row.created = s.getColumn(6).getString();
    row.updated = s.getColumn(7).getString();
    return row;
  });
}

// ----- jobs -----

int Store::register_jobs(const std::string& sweep, const std::vector<JobRecord>& jobs) {
  const std::string what = "register_jobs('" + sweep + "')";
  // Validate the whole batch before writing anything.
  std::map<std::string, const JobRecord*> batch;
  for (const JobRecord& j : jobs) {
    if (j.id.empty() || has_control(j.id)) {
      throw StoreError(context(what) + ": a job id must be non-empty, without control characters");
    }
    if (j.parent_id == j.id) {
      throw StoreError(context(what) + ": job " + j.id + " names itself as its parent");
    }
    std::set<std::string> keys;
    for (const auto& [key, value] : j.params) {
      if (key.empty() || has_control(key)) {
        throw StoreError(context(what) + ": job " + j.id + ": param key '" + key +
                         "' is empty or has control characters");
      }
      if (!keys.insert(key).second) {
        throw StoreError(context(what) + ": job " + j.id + ": param '" + key + "' given twice");
      }
    }
    auto [it, fresh] = batch.emplace(j.id, &j);
    if (!fresh && !(*it->second == j)) {
      throw StoreError(context(what) + ": job " + j.id +
                       " appears twice in the batch with different contents");
    }
  }
  const int64_t sweep_key = sweep_pk(sweep);
  Transaction t(*this);
  int inserted = 0;
  guarded(*this, what, [&] {
    auto& insert = statement(
        "INSERT INTO jobs (sweep_pk, id, stage, arm_key, seed, parent_id, run_dir, sweep) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (sweep_pk, id) DO NOTHING");
    auto& param = statement("INSERT INTO params (job, key, value, num) VALUES (?, ?, ?, ?)");
    std::set<std::string> seen;
    std::vector<const JobRecord*> with_parent;
    for (const JobRecord& j : jobs) {
      if (!seen.insert(j.id).second) continue;
      insert.tryReset();
      insert.bind(1, sweep_key);
      insert.bind(2, j.id);
      insert.bind(3, j.stage);
      insert.bind(4, j.arm_key);
      insert.bind(5, j.seed);
      bind_text_or_null(insert, 6, j.parent_id);
      insert.bind(7, j.run_dir);
      insert.bind(8, sweep);
      if (insert.exec() == 0) continue;  // already registered: untouched
      ++inserted;
      const int64_t pk = db_->getLastInsertRowid();
      for (const auto& [key, value] : j.params) {
        param.tryReset();
        param.bind(1, pk);
        param.bind(2, key);
        param.bind(3, value);
        const auto number = parse_number(value);
        if (std::holds_alternative<int64_t>(number)) {
          param.bind(4, std::get<int64_t>(number));
        } else if (std::holds_alternative<double>(number)) {
          param.bind(4, std::get<double>(number));
        } else {
          param.bind(4);
        }
        param.exec();
      }
      if (!j.parent_id.empty()) with_parent.push_back(&j);
    }
    // The foreign key would only fail at commit; say which job names which parent.
    auto& parent = statement("SELECT 1 FROM jobs WHERE sweep_pk = ? AND id = ?");
    for (const JobRecord* j : with_parent) {
      parent.tryReset();
      parent.bind(1, sweep_key);
      parent.bind(2, j->parent_id);
      const bool found = parent.executeStep();
      parent.tryReset();
      if (!found) {
        throw StoreError(context(what) + ": job " + j->id + " names parent " + j->parent_id +
                         ", which is not a job of sweep '" + sweep + "'");
      }
    }
  });
  if (inserted > 0) refresh_views();
  t.commit();
  return inserted;
}

namespace {
JobRow read_job(SQLite::Statement& s) {
  JobRow r;
  r.pk = s.getColumn(0).getInt64();
  r.sweep = text(s.getColumn(1));
  r.id = text(s.getColumn(2));
  r.stage = text(s.getColumn(3));
  r.arm_key = text(s.getColumn(4));
  r.seed = s.getColumn(5).getInt64();
  r.parent_id = text(s.getColumn(6));
  r.run_dir = text(s.getColumn(7));
  r.status = text(s.getColumn(8));
  r.attempts = s.getColumn(9).getInt64();
  r.host = text(s.getColumn(10));
  r.device = text(s.getColumn(11));
  r.started = text(s.getColumn(12));
  r.ended = text(s.getColumn(13));
  if (!s.getColumn(14).isNull()) r.exit_code = s.getColumn(14).getInt64();
  r.error = text(s.getColumn(15));
  r.summary_status = text(s.getColumn(16));
  r.causality = text(s.getColumn(17));
  r.events_offset = s.getColumn(18).getInt64();
  r.events_lines = s.getColumn(19).getInt64();
  r.stale = s.getColumn(20).getInt() != 0;
  return r;
}
}  // namespace

std::vector<JobRow> Store::jobs(const std::string& sweep) const {
  const int64_t sweep_key = sweep_pk(sweep);
  return guarded(*this, "jobs('" + sweep + "')", [&] {
    auto& s = statement(job_select() + "WHERE j.sweep_pk = ? ORDER BY j.pk");
    StatementScope scope(s);
    s.bind(1, sweep_key);
    std::vector<JobRow> rows;
    while (s.executeStep()) rows.push_back(read_job(s));
    return rows;
  });
}

std::optional<JobRow> Store::job(const std::string& sweep, const std::string& id) const {
  const int64_t sweep_key = sweep_pk(sweep);
  return guarded(*this, "job('" + sweep + "', '" + id + "')", [&]() -> std::optional<JobRow> {
    auto& s = statement(job_select() + "WHERE j.sweep_pk = ? AND j.id = ?");
    StatementScope scope(s);
    s.bind(1, sweep_key);
    s.bind(2, id);
    if (!s.executeStep()) return std::nullopt;
    return read_job(s);
  });
}

std::vector<std::pair<std::string, std::string>> Store::params(const std::string& sweep,
                                                               const std::string& id) const {
  const int64_t pk = job_pk(sweep, id);
  return guarded(*this, "params('" + sweep + "', '" + id + "')", [&] {
    auto& s = statement("SELECT key, value FROM params WHERE job = ? ORDER BY key");
    StatementScope scope(s);
    s.bind(1, pk);
    std::vector<std::pair<std::string, std::string>> out;
    while (s.executeStep())
      out.emplace_back(s.getColumn(0).getString(), s.getColumn(1).getString());
    return out;
  });
}

namespace {
std::string current_status(const Store& store, int64_t pk) {
  auto& s = store.statement("SELECT status FROM jobs WHERE pk = ?");
  StatementScope scope(s);
  s.bind(1, pk);
  s.executeStep();
  return s.getColumn(0).getString();
}
}  // namespace

void Store::mark_running(const std::string& sweep, const std::string& id, const std::string& host,
                         const std::string& device) {
  const std::string what = "mark_running('" + sweep + "', '" + id + "')";
  Transaction t(*this);
  const int64_t pk = job_pk(sweep, id);
  guarded(*this, what, [&] {
    const std::string status = current_status(*this, pk);
    if (status == "done" || status == "diverged") {
      throw StoreError(context(what) + ": the job is " + status +
                       "; a finished job is never run again");
    }
    auto& s = statement(std::string("UPDATE jobs SET status = 'running', attempts = attempts + 1, "
                                    "host = ?, device = ?, started = ") +
                        kNow + ", ended = NULL, exit_code = NULL, error = NULL WHERE pk = ?");
    bind_text_or_null(s, 1, host);
    bind_text_or_null(s, 2, device);
    s.bind(3, pk);
    s.exec();
  });
  t.commit();
}

void Store::mark_finished(const std::string& sweep, const std::string& id,
                          const std::string& status, std::optional<int> exit_code,
                          const std::string& error) {
  const std::string what = "mark_finished('" + sweep + "', '" + id + "', '" + status + "')";
  if (!is_job_status(status) || status == "pending" || status == "running") {
    throw StoreError(context(what) +
                     ": the status must be one of done, failed, diverged, timed_out, "
                     "interrupted, skipped");
  }
  Transaction t(*this);
  const int64_t pk = job_pk(sweep, id);
  guarded(*this, what, [&] {
    const std::string from = current_status(*this, pk);
    if ((from == "done" || from == "diverged") && from == status) return;  // recorded already
    bool allowed = false;
    if (status == "skipped") {
      allowed = !in(from, {"running", "done", "diverged"});
    } else {
      allowed = in(from, {"running", "failed", "timed_out", "interrupted"});
    }
    if (!allowed) {
      throw StoreError(context(what) + ": the job is " + from +
                       (status == "skipped" ? ", it cannot be skipped" : ", not running"));
    }
    auto& s = statement(std::string("UPDATE jobs SET status = ?, ended = ") + kNow +
                        ", exit_code = ?, error = ? WHERE pk = ?");
    s.bind(1, status);
    if (exit_code) {
      s.bind(2, *exit_code);
    } else {
      s.bind(2);
    }
    bind_text_or_null(s, 3, error);
    s.bind(4, pk);
    s.exec();
  });
  t.commit();
}

void Store::mark_imported(const std::string& sweep, const std::string& id,
                          const std::string& status, const std::string& host,
                          const std::string& error) {
  const std::string what = "mark_imported('" + sweep + "', '" + id + "', '" + status + "')";
  if (status != "done" && status != "diverged") {
    throw StoreError(context(what) + ": an imported job is done or diverged");
  }
  Transaction t(*this);
  const int64_t pk = job_pk(sweep, id);
  guarded(*this, what, [&] {
    const std::string from = current_status(*this, pk);
    if (from != "pending") {
      throw StoreError(context(what) + ": the job is " + from + ", not pending");
    }
    auto& s = statement("UPDATE jobs SET status = ?, host = ?, error = ? WHERE pk = ?");
    s.bind(1, status);
    bind_text_or_null(s, 2, host);
    bind_text_or_null(s, 3, error);
    s.bind(4, pk);
    s.exec();
  });
  t.commit();
}

void Store::set_summaries(const std::string& sweep, const std::string& id,
                          const std::vector<std::pair<std::string, double>>& values) {
  const std::string what = "set_summaries('" + sweep + "', '" + id + "')";
  for (const auto& [name, value] : values) {
    if (name.empty() || has_control(name)) {
      throw StoreError(context(what) + ": summary name '" + name +
                       "' is empty or has control characters");
    }
    if (!std::isfinite(value)) {
      throw StoreError(context(what) + ": summary '" + name + "' is not finite");
    }
  }
  Transaction t(*this);
  const int64_t pk = job_pk(sweep, id);
  bool new_names = false;
  guarded(*this, what, [&] {
    auto& known = statement("SELECT 1 FROM summaries WHERE name = ? LIMIT 1");
    auto& insert = statement(
        "INSERT INTO summaries (job, name, value) VALUES (?, ?, ?) "
        "ON CONFLICT (job, name) DO UPDATE SET value = excluded.value");
    for (const auto& [name, value] : values) {
      known.tryReset();
      known.bind(1, name);
      if (!known.executeStep()) new_names = true;
      known.tryReset();
      insert.tryReset();
      insert.bind(1, pk);
      insert.bind(2, name);
      insert.bind(3, value);
      insert.exec();
    }
  });
  if (new_names) refresh_views();
  t.commit();
}

std::map<std::string, int> Store::status_counts(const std::string& sweep) const {
  const int64_t sweep_key = sweep_pk(sweep);
  return guarded(*this, "status_counts('" + sweep + "')", [&] {
    std::map<std::string, int> counts;
    for (const char* s : kJobStatuses) counts[s] = 0;
    auto& s = statement(std::string("SELECT status, COUNT(*) FROM jobs WHERE sweep_pk = ?") +
                        (version_ >= 2 ? " AND stale = 0" : "") + " GROUP BY status");
    StatementScope scope(s);
    s.bind(1, sweep_key);
    while (s.executeStep()) counts[s.getColumn(0).getString()] = s.getColumn(1).getInt();
    return counts;
  });
}

// ----- the life cycle: plan, reset, prune -----

PlanSync Store::sync_plan(const std::string& sweep, const std::vector<std::string>& planned) {
  const int64_t sweep_key = sweep_pk(sweep);
  const std::set<std::string> wanted(planned.begin(), planned.end());
  Transaction t(*this);
  PlanSync out;
  guarded(*this, "sync_plan('" + sweep + "')", [&] {
    auto& rows = statement("SELECT pk, id, stale FROM jobs WHERE sweep_pk = ? ORDER BY pk");
    std::vector<std::pair<int64_t, int>> changes;  // pk -> new stale value
    {
      StatementScope scope(rows);
      rows.bind(1, sweep_key);
      while (rows.executeStep()) {
        const std::string id = rows.getColumn(1).getString();
        const bool stale = rows.getColumn(2).getInt() != 0;
        const bool now_stale = wanted.count(id) == 0;
        out.stale_total += now_stale;
        if (stale == now_stale) continue;
        changes.emplace_back(rows.getColumn(0).getInt64(), now_stale ? 1 : 0);
        (now_stale ? out.stale : out.reactivated).push_back(id);
      }
    }
    auto& update = statement("UPDATE jobs SET stale = ? WHERE pk = ?");
    for (const auto& [pk, stale] : changes) {
      update.tryReset();
      update.bind(1, stale);
      update.bind(2, pk);
      update.exec();
    }
  });
  t.commit();
  return out;
}

void Store::reset_jobs(const std::string& sweep, const std::vector<std::string>& ids) {
  const std::string what = "reset_jobs('" + sweep + "')";
  Transaction t(*this);
  std::vector<int64_t> keys;
  for (const auto& id : ids) keys.push_back(job_pk(sweep, id));
  guarded(*this, what, [&] {
    for (size_t i = 0; i < keys.size(); ++i) {
      const std::string status = current_status(*this, keys[i]);
      if (status == "running") {
        throw StoreError(context(what) + ": job " + ids[i] +
                         " is running; a worker may still write its run dir");
      }
    }
    auto& reset = statement(
        "UPDATE jobs SET status = 'pending', attempts = 0, host = NULL, device = NULL, "
        "started = NULL, ended = NULL, exit_code = NULL, error = NULL, summary_status = NULL, "
        "causality = NULL, events_offset = 0, events_lines = 0, events_inode = NULL, "
        "events_tail = NULL WHERE pk = ?");
    for (const int64_t pk : keys) {
      reset.tryReset();
      reset.bind(1, pk);
      reset.exec();
      for (const char* table : {"metrics", "summaries", "environment"}) {
        auto& clear = statement(std::string("DELETE FROM ") + table + " WHERE job = ?");
        clear.bind(1, pk);
        clear.exec();
      }
    }
  });
  t.commit();
}

bool Store::replace_params(const std::string& sweep, const std::string& id,
                           const std::vector<std::pair<std::string, std::string>>& params) {
  std::vector<std::pair<std::string, std::string>> sorted = params;
  std::sort(sorted.begin(), sorted.end());
  if (this->params(sweep, id) == sorted) return false;
  const std::string what = "replace_params('" + sweep + "', '" + id + "')";
  Transaction t(*this);
  const int64_t pk = job_pk(sweep, id);
  bool new_keys = false;
  guarded(*this, what, [&] {
    auto& known = statement("SELECT 1 FROM params WHERE key = ? LIMIT 1");
    for (const auto& [key, value] : sorted) {
      known.tryReset();
      known.bind(1, key);
      if (!known.executeStep()) new_keys = true;
      known.tryReset();
    }
    auto& clear = statement("DELETE FROM params WHERE job = ?");
    clear.bind(1, pk);
    clear.exec();
    auto& insert = statement("INSERT INTO params (job, key, value, num) VALUES (?, ?, ?, ?)");
    for (const auto& [key, value] : sorted) {
      insert.tryReset();
      insert.bind(1, pk);
      insert.bind(2, key);
      insert.bind(3, value);
      const auto number = parse_number(value);
      if (std::holds_alternative<int64_t>(number)) {
        insert.bind(4, std::get<int64_t>(number));
      } else if (std::holds_alternative<double>(number)) {
        insert.bind(4, std::get<double>(number));
      } else {
        insert.bind(4);
      }
      insert.exec();
    }
  });
  if (new_keys) refresh_views();
  t.commit();
  return true;
}

void Store::prune_jobs(const std::string& sweep, const std::vector<std::string>& ids) {
  const std::string what = "prune_jobs('" + sweep + "')";
  const int64_t sweep_key = sweep_pk(sweep);
  Transaction t(*this);
  std::vector<int64_t> keys;
  for (const auto& id : ids) keys.push_back(job_pk(sweep, id));
  const std::set<std::string> doomed(ids.begin(), ids.end());
  guarded(*this, what, [&] {
    auto& stale = statement("SELECT stale FROM jobs WHERE pk = ?");
    auto& children = statement("SELECT id FROM jobs WHERE sweep_pk = ? AND parent_id = ?");
    for (size_t i = 0; i < keys.size(); ++i) {
      stale.tryReset();
      stale.bind(1, keys[i]);
      stale.executeStep();
      const bool is_stale = stale.getColumn(0).getInt() != 0;
      stale.tryReset();
      if (!is_stale) {
        throw StoreError(context(what) + ": job " + ids[i] +
                         " is planned by the sweep file (not stale); only stale jobs are pruned");
      }
      children.tryReset();
      children.bind(1, sweep_key);
      children.bind(2, ids[i]);
      while (children.executeStep()) {
        const std::string child = children.getColumn(0).getString();
        if (doomed.count(child) == 0) {
          children.tryReset();
          throw StoreError(context(what) + ": job " + ids[i] + " is the parent of job " + child +
                           ", which stays");
        }
      }
      children.tryReset();
    }
    auto& remove = statement("DELETE FROM jobs WHERE pk = ?");  // params, metrics, ... cascade
    for (const int64_t pk : keys) {
      remove.tryReset();
      remove.bind(1, pk);
      remove.exec();
    }
  });
  t.commit();
}

// ----- provenance -----

void Store::set_environment(const std::string& sweep, const std::string& job_id,
                            const std::map<std::string, std::string>& values) {
  const std::string what = "set_environment('" + sweep + "', '" + job_id + "')";
  Transaction t(*this);
  const int64_t sweep_key = sweep_pk(sweep);
  const bool of_job = !job_id.empty();
  const int64_t job_key = of_job ? job_pk(sweep, job_id) : 0;
  guarded(*this, what, [&] {
    auto& s = statement(of_job ? "INSERT INTO environment (sweep_pk, job, key, value, sweep) "
                                 "VALUES (?, ?, ?, ?, ?) ON CONFLICT (job, key) WHERE job IS "
                                 "NOT NULL DO UPDATE SET value = excluded.value"
                               : "INSERT INTO environment (sweep_pk, job, key, value, sweep) "
                                 "VALUES (?, ?, ?, ?, ?) ON CONFLICT (sweep_pk, key) WHERE job "
                                 "IS NULL DO UPDATE SET value = excluded.value");
    for (const auto& [key, value] : values) {
      s.tryReset();
      s.bind(1, sweep_key);
      if (of_job) {
        s.bind(2, job_key);
      } else {
        s.bind(2);
      }
      s.bind(3, key);
      s.bind(4, value);
      s.bind(5, sweep);
      s.exec();
    }
  });
  t.commit();
}

std::map<std::string, std::string> Store::environment(const std::string& sweep,
                                                      const std::string& job_id) const {
  const int64_t sweep_key = sweep_pk(sweep);
  const bool of_job = !job_id.empty();
  const int64_t job_key = of_job ? job_pk(sweep, job_id) : 0;
  return guarded(*this, "environment('" + sweep + "', '" + job_id + "')", [&] {
    auto& s = statement(of_job ? "SELECT key, value FROM environment WHERE job = ?"
                               : "SELECT key, value FROM environment WHERE sweep_pk = ? AND "
                                 "job IS NULL");
    StatementScope scope(s);
    s.bind(1, of_job ? job_key : sweep_key);
    std::map<std::string, std::string> out;
    while (s.executeStep()) out[s.getColumn(0).getString()] = s.getColumn(1).getString();
    return out;
  });
}

// ----- views -----

void Store::refresh_views() {
  Transaction t(*this);
  guarded(*this, "refresh_views", [&] {
    // Keys (params, then summary names) by first appearance, the oldest first: when the views
    // would pass kMaxViewColumns, the keys seen last (a wide import's) are left out, so one sweep
    // can never break the views, and the queries, of the sweeps before it.
    struct Key {
      std::string name;
      bool numeric = true;
    };
    auto read_keys = [&](const std::string& sql) {
      std::vector<Key> keys;
      SQLite::Statement q(*db_, sql);
      while (q.executeStep())
        keys.push_back({q.getColumn(0).getString(), q.getColumn(1).getInt() != 0});
      return keys;
    };
    std::vector<Key> params = read_keys(
        "SELECT key, MIN(num IS NOT NULL) FROM params GROUP BY key ORDER BY MIN(job), key");
    std::vector<Key> names =
        read_keys("SELECT name, 1 FROM summaries GROUP BY name ORDER BY MIN(job), name");
    size_t fixed = 0;
    for (const ViewColumn& c : kRunsColumns) fixed += c.since <= version_ ? 1 : 0;
    const size_t room = kMaxViewColumns > fixed ? kMaxViewColumns - fixed : 0;
    left_out_of_views_.clear();
    if (params.size() > room) {
      for (size_t i = room; i < params.size(); ++i) left_out_of_views_.push_back(params[i].name);
      params.resize(room);
    }
    const size_t room_for_names = room - params.size();
    if (names.size() > room_for_names) {
      for (size_t i = room_for_names; i < names.size(); ++i) {
        left_out_of_views_.push_back(names[i].name);
      }
      names.resize(room_for_names);
    }
    // Within the views, columns stay sorted by key.
    auto by_name = [](const Key& a, const Key& b) { return a.name < b.name; };
    std::sort(params.begin(), params.end(), by_name);
    std::sort(names.begin(), names.end(), by_name);

    std::set<std::string> taken;
    std::string runs = "CREATE VIEW runs AS SELECT";
    for (const ViewColumn& c : kRunsColumns) {
      if (c.since > version_) continue;  // during a migration: a column a later one adds
      runs += std::string(taken.empty() ? " " : ", ") + c.expression + " AS " + c.name;
      taken.insert(c.name);
    }
    for (const Key& key : params) {
      // Numeric when every value of the key parsed as a number.
      runs += ",\n (SELECT p." + std::string(key.numeric ? "num" : "value") +
              " FROM params p WHERE p.job = j.pk AND p.key = " + quote_literal(key.name) + ") AS " +
              quote_identifier(view_column(key.name, "param_", taken));
    }
    runs += "\nFROM jobs j JOIN sweeps s ON s.pk = j.sweep_pk";
    std::string results = "CREATE VIEW results AS SELECT r.*";
    for (const Key& name : names) {
      results += ",\n (SELECT m.value FROM summaries m WHERE m.job = r.job AND m.name = " +
                 quote_literal(name.name) + ") AS " +
                 quote_identifier(view_column(name.name, "summary_", taken));
    }
    results += "\nFROM runs r";
    db_->exec("DROP VIEW IF EXISTS results");
    db_->exec("DROP VIEW IF EXISTS runs");
    db_->exec(for_file_version(runs));
    db_->exec(results);
  });
  t.commit();
}

}  // namespace ablate::results
