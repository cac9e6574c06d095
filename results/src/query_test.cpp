#include "ablate/results/query.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "ablate/testing/temp_dir.h"

namespace ablate::results {
namespace {
using ablate::testing::TempDir;

// A store with one sweep of two jobs whose params include awkward text.
std::string make_store(const TempDir& tmp) {
  const std::string path = tmp.file("ablate.db");
  Store store(path);
  SweepRecord sweep;
  sweep.name = "s";
  sweep.yaml = "name: s\n";
  store.register_sweep(sweep);
  JobRecord a;
  a.id = "a";
  a.params = {{"attention.variant", "gqa"}, {"note", "has, comma"}, {"train.lr", "0.001"}};
  JobRecord b;
  b.id = "b";
  b.seed = 1;
  b.params = {{"attention.variant", "mqa"}, {"note", "say \"hi\"\nbye"}, {"train.lr", "0.002"}};
  store.register_jobs("s", {a, b});
  return path;
}

QueryResult query(const std::string& path, const std::string& sql) {
  StoreOptions options;
  options.read_only = true;
  Store store(path, options);
  return run_query(store, sql);
}

TEST(Query, SelectReturnsTypedColumns) {
  TempDir tmp;
  const auto path = make_store(tmp);
  const auto r = query(path,
                       "SELECT id, seed, train_lr, attention_variant, NULL AS empty FROM runs "
                       "ORDER BY id");
  ASSERT_EQ(r.columns,
            (std::vector<std::string>{"id", "seed", "train_lr", "attention_variant", "empty"}));
  ASSERT_EQ(r.rows.size(), 2u);
  EXPECT_EQ(r.rows[1][1].kind, QueryValue::Kind::kInteger);
  EXPECT_EQ(r.rows[1][1].integer, 1);
  EXPECT_EQ(r.rows[0][2].kind, QueryValue::Kind::kReal);
  EXPECT_DOUBLE_EQ(r.rows[0][2].real, 0.001);
  EXPECT_EQ(r.rows[1][3].text, "mqa");
  EXPECT_EQ(r.rows[0][4].kind, QueryValue::Kind::kNull);
}

TEST(Query, WritesAndSecondStatementsAreRefused) {
  TempDir tmp;
  const auto path = make_store(tmp);
  for (const char* sql : {"DELETE FROM jobs", "UPDATE jobs SET status = 'done'",
                          "INSERT INTO sweeps(name) VALUES ('x')", "DROP VIEW runs",
                          "CREATE TABLE t(x)", "PRAGMA user_version = 3"}) {
    try {
      query(path, sql);
      ADD_FAILURE() << "accepted: " << sql;
    } catch (const QueryError& e) {
      EXPECT_NE(std::string(e.what()).find("read-only"), std::string::npos) << sql;
    }
  }
  EXPECT_THROW(query(path, "SELECT 1; DELETE FROM jobs"), QueryError);
  EXPECT_THROW(query(path, "SELEC 1"), QueryError);
  EXPECT_THROW(query(path, "  "), QueryError);
  EXPECT_EQ(query(path, "SELECT COUNT(*) FROM jobs;").rows[0][0].integer, 2);  // nothing lost
}

TEST(Query, CsvQuotesWhatNeedsQuoting) {
  TempDir tmp;
  const auto path = make_store(tmp);
  const auto r = query(path, "SELECT id, note, NULL AS n FROM runs ORDER BY id");
  EXPECT_EQ(format_csv(r), "id,note,n\na,\"has, comma\",\nb,\"say \"\"hi\"\"\nbye\",\n");
}

TEST(Query, JsonKeepsTypesAndEscapes) {
  TempDir tmp;
  const auto path = make_store(tmp);
  const auto r = query(path, "SELECT id, seed, train_lr, note, NULL AS n FROM runs ORDER BY id");
  const auto j = nlohmann::json::parse(format_json(r));
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[1]["seed"], 1);
  EXPECT_DOUBLE_EQ(j[0]["train_lr"].get<double>(), 0.001);
  EXPECT_EQ(j[1]["note"], "say \"hi\"\nbye");
  EXPECT_TRUE(j[0]["n"].is_null());
  EXPECT_EQ(format_json(QueryResult{{"x"}, {}}), "[]\n");
}

TEST(Query, TableAlignsColumnsAndRightAlignsNumbers) {
  QueryResult r;
  r.columns = {"name", "value"};
  QueryValue long_name{QueryValue::Kind::kText, 0, 0.0, "longer"};
  QueryValue small{QueryValue::Kind::kInteger, 7, 0.0, ""};
  QueryValue nothing;
  QueryValue big{QueryValue::Kind::kReal, 0, 123.5, ""};
  r.rows = {{long_name, small}, {nothing, big}};
  EXPECT_EQ(format_table(r),
            "name    value\n"
            "------  -----\n"
            "longer      7\n"
            "NULL    123.5\n"
            "(2 rows)\n");
}

}  // namespace
}  // namespace ablate::results
