#include "ablate/results/decision_log.h"

#include <SQLiteCpp/Exception.h>

#include <limits>

namespace ablate::results {
namespace {

constexpr const char* kColumns =
    "look, recorded, family, arm_key, reference_arm_key, arm_label, reference_label, method, "
    "seeds, max_seeds, level, e_value, cs_low, cs_high, decided, equivalent, action";

// NULL (SQLite's NaN) reads as NaN.
double real(const SQLite::Column& c) {
  return c.isNull() ? std::numeric_limits<double>::quiet_NaN() : c.getDouble();
}

SequentialLookRow read_row(SQLite::Statement& s) {
  SequentialLookRow r;
  r.look = s.getColumn(0).getInt64();
  r.recorded = s.getColumn(1).getString();
  r.family = s.getColumn(2).getString();
  r.arm_key = s.getColumn(3).getString();
  r.reference_arm_key = s.getColumn(4).getString();
  r.arm_label = s.getColumn(5).getString();
  r.reference_label = s.getColumn(6).getString();
  r.method = s.getColumn(7).getString();
  r.seeds = s.getColumn(8).getInt64();
  r.max_seeds = s.getColumn(9).getInt64();
  r.level = real(s.getColumn(10));
  r.e_value = real(s.getColumn(11));
  r.cs_low = real(s.getColumn(12));
  r.cs_high = real(s.getColumn(13));
  r.decided = s.getColumn(14).getInt() != 0;
  r.equivalent = s.getColumn(15).getInt() != 0;
  r.action = s.getColumn(16).getString();
  return r;
}

// Rows of `sweep` whose look is `look` (all looks when look < 0).
std::vector<SequentialLookRow> read_looks(const Store& store, const std::string& sweep,
                                          int64_t look) {
  // A file older than version 4 (opened read-only, so not migrated) has no log.
  if (store.schema_version() < 4) return {};
  try {
    std::vector<SequentialLookRow> rows;
    auto& s = store.statement(std::string("SELECT ") + kColumns +
                              " FROM sequential_looks WHERE sweep = ? AND (? < 0 OR look = ?) "
                              "ORDER BY look, rowid");
    s.bind(1, sweep);
    s.bind(2, look);
    s.bind(3, look);
    while (s.executeStep()) rows.push_back(read_row(s));
    s.reset();  // no read lock held between calls
    return rows;
  } catch (const SQLite::Exception& e) {
    throw store.failure("sequential looks of " + sweep, e);
  }
}

}  // namespace

void add_sequential_looks(Store& store, const std::string& sweep,
                          const std::vector<SequentialLookRow>& rows) {
  const int64_t sweep_pk = store.sweep_pk(sweep);  // StoreError for an unknown sweep
  Store::Transaction transaction(store);
  try {
    auto& insert = store.statement(
        std::string("INSERT INTO sequential_looks (sweep_pk, sweep, ") + kColumns +
        ") VALUES (?, ?, ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), ?, ?, ?, ?, ?, ?, ?, ?, ?, "
        "?, ?, ?, ?, ?, ?)");
    for (const auto& r : rows) {
      insert.reset();
      insert.clearBindings();
      int i = 0;
      insert.bind(++i, sweep_pk);
      insert.bind(++i, sweep);
      insert.bind(++i, r.look);
      insert.bind(++i, r.family);
      insert.bind(++i, r.arm_key);
      insert.bind(++i, r.reference_arm_key);
      insert.bind(++i, r.arm_label);
      insert.bind(++i, r.reference_label);
      insert.bind(++i, r.method);
      insert.bind(++i, r.seeds);
      insert.bind(++i, r.max_seeds);
      insert.bind(++i, r.level);  // NaN binds as NULL
      insert.bind(++i, r.e_value);
      insert.bind(++i, r.cs_low);
      insert.bind(++i, r.cs_high);
      insert.bind(++i, r.decided ? 1 : 0);
      insert.bind(++i, r.equivalent ? 1 : 0);
      insert.bind(++i, r.action);
      insert.exec();
    }
  } catch (const SQLite::Exception& e) {
    throw store.failure("record a look of " + sweep, e);
  }
  transaction.commit();
}

std::vector<SequentialLookRow> sequential_looks(const Store& store, const std::string& sweep) {
  return read_looks(store, sweep, -1);
}

std::vector<SequentialLookRow> last_sequential_look(const Store& store, const std::string& sweep) {
  std::vector<SequentialLookRow> all = read_looks(store, sweep, -1);
  if (all.empty()) return all;
  const int64_t last = all.back().look;
  std::vector<SequentialLookRow> rows;
  for (auto& r : all) {
    if (r.look == last) rows.push_back(std::move(r));
  }
  return rows;
}

}  // namespace ablate::results
