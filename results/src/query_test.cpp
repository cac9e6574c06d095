#include "ablate/results/query.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <utility>

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

// What the probe found: duplicate names, rounded reals, a trailing comment, the fts3_tokenizer
// pointer form.
TEST(Query, DuplicateNamesRealsCommentsAndDeniedFunctions) {
  TempDir tmp;
  const auto path = make_store(tmp);
  const auto dup = query(path, "SELECT 1 AS a, 2 AS a, 3 AS a_2");
  const auto j = nlohmann::json::parse(format_json(dup));
  EXPECT_EQ(j[0]["a"], 1);
  EXPECT_EQ(j[0]["a_3"], 2);  // a_2 is taken by the third column
  EXPECT_EQ(j[0]["a_2"], 3);
  EXPECT_EQ(unique_column_names({"x", "x", "x"}), (std::vector<std::string>{"x", "x_2", "x_3"}));
  // Reals: the shortest text that reads back the same, not 10 significant digits.
  const auto reals = query(path, "SELECT 0.1 AS a, 1.0 / 3 AS b, 1e-300 AS c, 0.1 + 0.2 AS d");
  EXPECT_EQ(format_csv(reals), "a,b,c,d\n0.1,0.3333333333333333,1e-300,0.30000000000000004\n");
  EXPECT_NE(format_table(reals).find("0.30000000000000004"), std::string::npos);
  // Comments after the statement are not a second statement; a statement after one still is.
  EXPECT_EQ(query(path, "SELECT 1 -- the answer").rows[0][0].integer, 1);
  EXPECT_EQ(query(path, "SELECT 2; /* done */ -- really\n;").rows[0][0].integer, 2);
  EXPECT_THROW(query(path, "SELECT 1; /* */ DELETE FROM jobs"), QueryError);
  // fts3_tokenizer (its pointer form registers code) and load_extension are refused.
  for (const char* sql : {"SELECT fts3_tokenizer('simple')",
                          "SELECT fts3_tokenizer('x', X'0000000000000000')",
                          "SELECT load_extension('/tmp/x.so')"}) {
    try {
      query(path, sql);
      ADD_FAILURE() << "accepted: " << sql;
    } catch (const QueryError& e) {
      EXPECT_NE(std::string(e.what()).find("not authorized"), std::string::npos)
          << sql << ": " << e.what();
    }
  }
}

// Streaming writes what the buffered formats write, for every format, and a table wider after
// its first kQueryTableWidthRows rows still writes every row.
TEST(Query, StreamingEqualsBuffered) {
  TempDir tmp;
  const auto path = make_store(tmp);
  StoreOptions options;
  options.read_only = true;
  Store store(path, options);
  const std::string sql = "SELECT id, seed, train_lr, note FROM runs ORDER BY id";
  const auto buffered = run_query(store, sql);
  for (auto [format, text] : {std::pair{QueryFormat::kTable, format_table(buffered)},
                              std::pair{QueryFormat::kCsv, format_csv(buffered)},
                              std::pair{QueryFormat::kJson, format_json(buffered)}}) {
    std::ostringstream out;
    EXPECT_EQ(stream_query(store, sql, format, out), 2);
    EXPECT_EQ(out.str(), text);
  }
  std::ostringstream many;
  const std::string count = std::to_string(kQueryTableWidthRows + 5);
  EXPECT_EQ(
      stream_query(store,
                   "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < " +
                       count + ") SELECT i, printf('%.*c', i / 500, 'x') AS s FROM n",
                   QueryFormat::kTable, many),
      static_cast<int64_t>(kQueryTableWidthRows + 5));
  EXPECT_NE(many.str().find("(" + count + " rows)"), std::string::npos);
}

}  // namespace
}  // namespace ablate::results
