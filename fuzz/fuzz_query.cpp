// libFuzzer target: the input as the SQL of `ablate query`, through stream_query
// (results/query.h) on a small store made once, opened read-only for every input as `ablate
// query` opens it. The promise checked: a query never writes, so the store's file (and its WAL)
// keeps every byte; a change is a trap. A refused statement ends as a QueryError (exit status 2);
// any other exception, a crash, a sanitizer report or a hang is a finding. The JSON output must
// parse whatever the values were.
#include <sqlite3.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "ablate/results/query.h"
#include "ablate/results/store.h"
#include "ablate/testing/temp_dir.h"

namespace {

using namespace ablate::results;

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// One sweep of two arms x two seeds with summaries and provenance, as query_test.cpp builds one,
// and the bytes of its file and WAL after a first read-only open (which creates the WAL index).
struct Fixture {
  ablate::testing::TempDir dir{"ablate-fuzz-query"};
  std::string path = dir.file("ablate.db");
  std::string db_bytes, wal_bytes;

  Fixture() {
    {
      Store store(path);
      SweepRecord sweep;
      sweep.name = "s";
      sweep.yaml = "name: s\n";
      sweep.provenance = {{"host", "fuzz"}};
      store.register_sweep(sweep);
      std::vector<JobRecord> jobs;
      for (int arm = 0; arm < 2; ++arm) {
        for (int seed = 0; seed < 2; ++seed) {
          JobRecord job;
          job.id = "job" + std::to_string(arm) + std::to_string(seed);
          job.arm_key = "arm" + std::to_string(arm);
          job.seed = seed;
          job.params = {{"attention.variant", arm == 0 ? "gqa" : "mqa"},
                        {"note", arm == 0 ? "has, comma" : "say \"hi\"\nbye"},
                        {"train.lr", arm == 0 ? "0.001" : "0.002"}};
          jobs.push_back(job);
        }
      }
      store.register_jobs("s", jobs);
      for (const auto& job : jobs) {
        store.mark_imported("s", job.id, "done", "fuzz", "");
        store.set_summaries("s", job.id, {{"final_val_loss", 1.5 + job.seed}, {"acc", 0.25}});
      }
    }
    read_only().reset();
    db_bytes = file_bytes(path);
    wal_bytes = file_bytes(path + "-wal");
  }

  std::unique_ptr<Store> read_only() const {
    StoreOptions options;
    options.read_only = true;
    return std::make_unique<Store>(path, options);
  }
};

// Bounds on one query, so that an expensive but legal one (a recursive CTE without end,
// zeroblob(1e9)) ends as a QueryError instead of counting as a hang or an out-of-memory: the
// fuzzer checks the guard and the writers, not how long a user may let a query run.
constexpr int kMaxProgressCalls = 1000;  // of 1000 virtual machine steps each
constexpr int kMaxValueBytes = 1 << 16;

int stop_after_budget(void* calls) { return ++*static_cast<int*>(calls) > kMaxProgressCalls; }

// Stands in for printf and format: SQLite's own printf spends seconds in one call on a width or
// precision of 2e9 ('%.*c', which no limit or progress handler stops: 12 s in 3.40). That is
// SQLite's cost for the user's own query, and not what this target looks for.
void null_function(sqlite3_context* context, int, sqlite3_value**) { sqlite3_result_null(context); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Fixture fixture;
  const std::string sql(reinterpret_cast<const char*>(data), size);
  // Each format in turn, as the input's length varies.
  const auto format = static_cast<QueryFormat>(size % 3);
  std::ostringstream out;
  bool ran = false;
  {
    auto store = fixture.read_only();
    sqlite3* db = store->database().getHandle();
    sqlite3_limit(db, SQLITE_LIMIT_LENGTH, kMaxValueBytes);
    int calls = 0;
    sqlite3_progress_handler(db, 1000, stop_after_budget, &calls);
    for (const char* name : {"printf", "format"}) {
      sqlite3_create_function(db, name, -1, SQLITE_UTF8, nullptr, null_function, nullptr, nullptr);
    }
    try {
      stream_query(*store, sql, format, out);
      ran = true;
    } catch (const QueryError&) {
    }
    // PRAGMA hard_heap_limit, soft_heap_limit and temp_store_directory pass the guard (SQLite
    // reports them read-only) and set state for the whole process, which in `ablate query` ends
    // with it. Undone here, so that every input runs as in a fresh process.
    sqlite3_soft_heap_limit64(0);
    sqlite3_hard_heap_limit64(0);
    sqlite3_exec(db, "PRAGMA temp_store_directory = ''", nullptr, nullptr, nullptr);
  }
  if (file_bytes(fixture.path) != fixture.db_bytes) __builtin_trap();
  if (file_bytes(fixture.path + "-wal") != fixture.wal_bytes) __builtin_trap();
  if (ran && format == QueryFormat::kJson) {
    // Throws (a finding) when the output is not JSON.
    (void)nlohmann::json::parse(out.str());
  }
  return 0;
}
