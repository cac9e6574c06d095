#include "ablate/results/import.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <set>

#include "ablate/results/query.h"
#include "ablate/testing/temp_dir.h"

namespace ablate::results {
namespace {
using ablate::testing::TempDir;

std::string write_file(const TempDir& tmp, const std::string& name, const std::string& text) {
  const std::string path = tmp.file(name);
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

ImportOptions options_for(const std::string& sweep, const std::string& csv,
                          std::vector<std::string> params) {
  ImportOptions o;
  o.sweep = sweep;
  o.csv_path = csv;
  o.params = std::move(params);
  return o;
}

// The message of the ImportError `f` throws ("" when it throws none).
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ImportError& e) {
    return e.what();
  }
  return "";
}

#define EXPECT_HAS(message, text) \
  EXPECT_NE((message).find(text), std::string::npos) << "message: " << (message)

int64_t count(Store& store, const std::string& sql) {
  SQLite::Statement s(store.database(), sql);
  s.executeStep();
  return s.getColumn(0).getInt64();
}

// Row counts of every table: equal before and after a refused import means nothing was written.
std::map<std::string, int64_t> table_counts(Store& store) {
  std::map<std::string, int64_t> counts;
  for (const char* t : {"sweeps", "jobs", "params", "metrics", "summaries", "environment"}) {
    counts[t] = count(store, std::string("SELECT COUNT(*) FROM ") + t);
  }
  return counts;
}

std::map<std::string, double> summaries_of(Store& store, const std::string& sweep,
                                           const std::string& id) {
  SQLite::Statement s(store.database(), "SELECT name, value FROM summaries WHERE job = ?");
  s.bind(1, store.job_pk(sweep, id));
  std::map<std::string, double> out;
  while (s.executeStep()) out[s.getColumn(0).getString()] = s.getColumn(1).getDouble();
  return out;
}

// ----- CSV -----

TEST(Csv, QuotedFieldsKeepCommasQuotesAndLineBreaksAndRecordTheirStartLine) {
  const auto doc = read_csv(
      "a,b,c\n"
      "\"x, y\",\"say \"\"hi\"\"\",plain\n"
      "\"two\nlines\",\"\",\"three\n\nlines\"\n"
      "last,,\n");
  EXPECT_TRUE(doc.problems.empty());
  ASSERT_EQ(doc.records.size(), 4u);
  EXPECT_EQ(doc.records[0].line, 1);
  EXPECT_EQ(doc.records[0].fields, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(doc.records[1].line, 2);
  EXPECT_EQ(doc.records[1].fields, (std::vector<std::string>{"x, y", "say \"hi\"", "plain"}));
  EXPECT_EQ(doc.records[2].line, 3);
  EXPECT_EQ(doc.records[2].fields, (std::vector<std::string>{"two\nlines", "", "three\n\nlines"}));
  EXPECT_EQ(doc.records[3].line, 7);  // the record before spans lines 3 to 6
  EXPECT_EQ(doc.records[3].fields, (std::vector<std::string>{"last", "", ""}));
}

TEST(Csv, CrlfBomEmptyLinesAndNoFinalLineBreak) {
  const auto doc = read_csv("\xEF\xBB\xBFseed,acc\r\n\r\n0,1.5\r\n\"a\r\nb\",2\r\n\n3,4");
  EXPECT_TRUE(doc.problems.empty());
  ASSERT_EQ(doc.records.size(), 4u);
  EXPECT_EQ(doc.records[0].fields[0], "seed");  // the byte-order mark is gone
  EXPECT_EQ(doc.records[1].line, 3);            // line 2 is empty: not a record
  EXPECT_EQ(doc.records[1].fields, (std::vector<std::string>{"0", "1.5"}));
  EXPECT_EQ(doc.records[2].line, 4);
  EXPECT_EQ(doc.records[2].fields[0], "a\r\nb");  // kept as written
  EXPECT_EQ(doc.records[3].line, 7);
  EXPECT_EQ(doc.records[3].fields, (std::vector<std::string>{"3", "4"}));
  // A lone CR ends a line as well.
  const auto mac = read_csv("a\rb\r");
  ASSERT_EQ(mac.records.size(), 2u);
  EXPECT_EQ(mac.records[1].line, 2);
}

TEST(Csv, SyntaxProblemsNameTheirLineAndRecord) {
  const auto doc = read_csv("a,b\nx\"y,1\n\"q\"z,2\nok,3\n\"open,4\n5,6\n");
  ASSERT_EQ(doc.problems.size(), 3u);
  EXPECT_EQ(doc.problems[0].line, 2);
  EXPECT_EQ(doc.problems[0].record, 1u);
  EXPECT_NE(doc.problems[0].message.find("inside an unquoted field"), std::string::npos);
  EXPECT_EQ(doc.problems[1].line, 3);
  EXPECT_EQ(doc.problems[1].record, 2u);
  EXPECT_NE(doc.problems[1].message.find("after the closing quote"), std::string::npos);
  EXPECT_EQ(doc.problems[2].line, 5);  // where the quote opened
  EXPECT_EQ(doc.problems[2].record, 4u);
  EXPECT_NE(doc.problems[2].message.find("never closed"), std::string::npos);
  ASSERT_EQ(doc.records.size(), 5u);
  EXPECT_EQ(doc.records[3].fields, (std::vector<std::string>{"ok", "3"}));
}

TEST(Csv, Fnv1a64MatchesReferenceValues) {
  EXPECT_EQ(fnv1a64_hex(""), "cbf29ce484222325");
  EXPECT_EQ(fnv1a64_hex("a"), "af63dc4c8601ec8c");
  EXPECT_EQ(fnv1a64_hex("foobar"), "85944171f73967e8");
}

// ----- import -----

TEST(Import, RowsBecomeDoneJobsWithParamsSeedsSummariesAndArms) {
  TempDir tmp;
  const auto csv = write_file(tmp, "r.csv",
                              "variant,kv_heads,seed,test.acc,loss\n"
                              "gqa,2,0,0.81,1.5\n"
                              "gqa,2,1,0.83,1.25\n"
                              "mqa, 1 ,0,0.78,1.75\n"
                              "gqa,2,2,+0.85,1e-1\n");
  Store store(tmp.file("a.db"));
  const auto result = import_csv(store, options_for("paper", csv, {"variant", "kv_heads"}));
  EXPECT_EQ(result.sweep, "paper");
  EXPECT_EQ(result.jobs, 4);
  EXPECT_EQ(result.arms, 2);
  EXPECT_EQ(result.diverged, 0);
  EXPECT_EQ(result.metrics, (std::vector<std::string>{"test.acc", "loss"}));

  const auto jobs = store.jobs("paper");
  ASSERT_EQ(jobs.size(), 4u);
  // Registration order is row order; rows with the same params share an arm key.
  EXPECT_EQ(jobs[0].seed, 0);
  EXPECT_EQ(jobs[1].seed, 1);
  EXPECT_EQ(jobs[2].seed, 0);
  EXPECT_EQ(jobs[3].seed, 2);
  EXPECT_EQ(jobs[0].arm_key, jobs[1].arm_key);
  EXPECT_EQ(jobs[0].arm_key, jobs[3].arm_key);
  EXPECT_NE(jobs[0].arm_key, jobs[2].arm_key);
  std::set<std::string> ids;
  for (const auto& j : jobs) {
    EXPECT_EQ(j.status, "done");
    EXPECT_EQ(j.host, "import");
    EXPECT_EQ(j.stage, "");
    EXPECT_EQ(j.attempts, 0);
    EXPECT_EQ(j.arm_key.size(), 16u);
    EXPECT_EQ(j.id.size(), 16u);
    ids.insert(j.id);
  }
  EXPECT_EQ(ids.size(), 4u);
  EXPECT_EQ(store.params("paper", jobs[2].id), (std::vector<std::pair<std::string, std::string>>{
                                                   {"kv_heads", "1"}, {"variant", "mqa"}}));
  EXPECT_EQ(summaries_of(store, "paper", jobs[1].id),
            (std::map<std::string, double>{{"loss", 1.25}, {"test.acc", 0.83}}));
  EXPECT_EQ(summaries_of(store, "paper", jobs[3].id),
            (std::map<std::string, double>{{"loss", 0.1}, {"test.acc", 0.85}}));

  const auto sweep = *store.sweep("paper");
  EXPECT_EQ(sweep.code_version, "import");
  EXPECT_FALSE(sweep.dirty);
  EXPECT_EQ(sweep.config_hash.size(), 16u);
  EXPECT_NE(sweep.yaml.find("source: csv"), std::string::npos);
  const auto env = store.environment("paper");
  EXPECT_EQ(env.at("source"), "csv");
  EXPECT_EQ(env.at("csv_file"), csv);
  EXPECT_EQ(env.at("csv_hash"), sweep.config_hash);
  EXPECT_EQ(env.at("params"), "variant,kv_heads");
  EXPECT_EQ(env.at("seed_column"), "seed");

  // The views: params pivoted (kv_heads numeric), metrics as columns (dots as '_').
  SQLite::Statement q(store.database(),
                      "SELECT variant, kv_heads, typeof(kv_heads), COUNT(*), AVG(test_acc), "
                      "MIN(loss) FROM results WHERE sweep = 'paper' GROUP BY 1 ORDER BY 1");
  ASSERT_TRUE(q.executeStep());
  EXPECT_EQ(q.getColumn(0).getString(), "gqa");
  EXPECT_EQ(q.getColumn(2).getString(), "integer");
  EXPECT_EQ(q.getColumn(3).getInt(), 3);
  EXPECT_NEAR(q.getColumn(4).getDouble(), 0.83, 1e-12);
  EXPECT_DOUBLE_EQ(q.getColumn(5).getDouble(), 0.1);
  ASSERT_TRUE(q.executeStep());
  EXPECT_EQ(q.getColumn(0).getString(), "mqa");
  EXPECT_EQ(q.getColumn(1).getInt(), 1);
  EXPECT_FALSE(q.executeStep());
}

TEST(Import, QueryReadsTheImportedSweep) {
  TempDir tmp;
  const auto csv = write_file(tmp, "q.csv", "lr,seed,acc\n0.1,0,0.5\n0.2,0,0.75\n");
  {
    Store store(tmp.file("q.db"));
    import_csv(store, options_for("q", csv, {"lr"}));
  }
  StoreOptions read_only;
  read_only.read_only = true;
  Store store(tmp.file("q.db"), read_only);
  const auto r = run_query(store, "SELECT lr, seed, acc, status FROM results ORDER BY lr");
  ASSERT_EQ(r.rows.size(), 2u);
  EXPECT_DOUBLE_EQ(r.rows[1][0].real, 0.2);
  EXPECT_DOUBLE_EQ(r.rows[1][2].real, 0.75);
  EXPECT_EQ(r.rows[1][3].text, "done");
}

TEST(Import, ArmKeysAndIdsDependOnParamsAndSeedOnlyNotColumnOrder) {
  TempDir tmp;
  const auto a = write_file(tmp, "a.csv", "x,y,seed,m\n1,p,0,1\n1,p,1,2\n");
  const auto b = write_file(tmp, "b.csv", "m,seed,y,x\n5,1,p,1\n6,0,p,1\n");
  Store store(tmp.file("s.db"));
  import_csv(store, options_for("a", a, {"x", "y"}));
  import_csv(store, options_for("b", b, {"y", "x"}));
  const auto ja = store.jobs("a"), jb = store.jobs("b");
  ASSERT_EQ(ja.size(), 2u);
  ASSERT_EQ(jb.size(), 2u);
  EXPECT_EQ(ja[0].arm_key, jb[0].arm_key);
  EXPECT_EQ(ja[0].id, jb[1].id);  // seed 0
  EXPECT_EQ(ja[1].id, jb[0].id);  // seed 1
  EXPECT_NE(ja[0].id, ja[1].id);
}

TEST(Import, QuotedFieldsAndAwkwardNamesAreStoredVerbatim) {
  TempDir tmp;
  const auto csv = write_file(tmp, "w.csv",
                              "\"note, with comma\",seed,\"acc \"\"top-1\"\"\"\r\n"
                              "\"line one\nline \"\"two\"\"\",0,0.5\r\n"
                              "\"a,b\",0,0.25\r\n"
                              ",0,0.125\r\n");  // an empty param value is allowed
  Store store(tmp.file("w.db"));
  for (const std::string name : {"<script>alert(1)</script>", "50%_{x}", "it's \"q\" & co"}) {
    const auto r = import_csv(store, options_for(name, csv, {"note, with comma"}));
    EXPECT_EQ(r.jobs, 3);
    EXPECT_EQ(r.arms, 3);
    ASSERT_TRUE(store.sweep(name)) << name;
    const auto jobs = store.jobs(name);
    ASSERT_EQ(jobs.size(), 3u);
    EXPECT_EQ(store.params(name, jobs[0].id)[0],
              (std::pair<std::string, std::string>{"note, with comma", "line one\nline \"two\""}));
    EXPECT_EQ(store.params(name, jobs[1].id)[0].second, "a,b");
    EXPECT_EQ(store.params(name, jobs[2].id)[0].second, "");
    EXPECT_EQ(summaries_of(store, name, jobs[2].id),
              (std::map<std::string, double>{{"acc \"top-1\"", 0.125}}));
  }
  const auto names = store.sweeps();
  EXPECT_EQ(names,
            (std::vector<std::string>{"50%_{x}", "<script>alert(1)</script>", "it's \"q\" & co"}));
}

TEST(Import, NanOrInfMetricMeansDivergedAndIsNotStored) {
  TempDir tmp;
  const auto csv = write_file(tmp, "d.csv",
                              "v,seed,acc,loss\n"
                              "a,0,0.5,1.0\n"
                              "a,1,0.6,NaN\n"
                              "a,2,-inf,Infinity\n"
                              "a,3,nan,2.0\n");
  Store store(tmp.file("d.db"));
  const auto r = import_csv(store, options_for("d", csv, {"v"}));
  EXPECT_EQ(r.jobs, 4);
  EXPECT_EQ(r.diverged, 3);
  const auto jobs = store.jobs("d");
  ASSERT_EQ(jobs.size(), 4u);
  EXPECT_EQ(jobs[0].status, "done");
  EXPECT_EQ(jobs[1].status, "diverged");
  EXPECT_EQ(jobs[1].error, "CSV line 3: loss = NaN");
  EXPECT_EQ(jobs[2].status, "diverged");
  EXPECT_EQ(jobs[2].error, "CSV line 4: acc = -inf, loss = Infinity");
  // Only the finite values are stored.
  EXPECT_EQ(summaries_of(store, "d", jobs[1].id), (std::map<std::string, double>{{"acc", 0.6}}));
  EXPECT_TRUE(summaries_of(store, "d", jobs[2].id).empty());
  EXPECT_EQ(summaries_of(store, "d", jobs[3].id), (std::map<std::string, double>{{"loss", 2.0}}));
  EXPECT_EQ(store.status_counts("d").at("diverged"), 3);
}

TEST(Import, LineNumbersCountTheLinesInsideQuotedFields) {
  TempDir tmp;
  const auto csv = write_file(tmp, "l.csv",
                              "name,seed,acc\n"
                              "\"spans\nthree\nlines\",0,0.5\n"
                              "b,0,oops\n");
  Store store(tmp.file("l.db"));
  const auto message = error_of([&] { import_csv(store, options_for("l", csv, {"name"})); });
  EXPECT_HAS(message, "line 5, column acc: 'oops' is not a number");
  EXPECT_HAS(message, csv + ": ");
  EXPECT_HAS(message, "nothing imported");
}

TEST(Import, EveryBadCellIsReportedWithItsLineAndNothingIsWritten) {
  TempDir tmp;
  const auto good = write_file(tmp, "good.csv", "v,seed,acc\nx,0,1\n");
  const auto bad = write_file(tmp, "bad.csv",
                              "v,seed,acc,loss\n"
                              "a,0,0.5,1\n"    // 2: fine
                              "a,,0.5,1\n"     // 3: missing seed
                              "a,1.5,0.5,1\n"  // 4: not an integer
                              "a,x,0.5,1\n"    // 5: not an integer
                              "a,2,,1\n"       // 6: empty metric
                              "a,3,abc,1\n"    // 7: not a number
                              "a,4,0.5\n"      // 8: too few fields
                              "a,0,0.7,2\n"    // 9: duplicate of line 2
                              "a,5,1e999,1\n"  // 10: out of range
                              "a,6,NA,--1\n"   // 11: two bad cells
                              "b,0,0.5,1\n"    // 12: fine
                              "c,7,bad,1\n"    // 13: not a number
                              "c,7,1,1\n");    // 14: duplicate of line 13 all the same
  Store store(tmp.file("e.db"));
  import_csv(store, options_for("good", good, {"v"}));
  const auto before = table_counts(store);
  std::vector<std::string> problems;
  try {
    import_csv(store, options_for("bad", bad, {"v"}));
    FAIL() << "no ImportError";
  } catch (const ImportError& e) {
    problems = e.problems();
    EXPECT_HAS(std::string(e.what()), "12 problems; nothing imported:\n  line 3");
  }
  EXPECT_EQ(problems, (std::vector<std::string>{
                          "line 3, column seed: empty seed",
                          "line 4, column seed: '1.5' is not an integer seed",
                          "line 5, column seed: 'x' is not an integer seed",
                          "line 6, column acc: empty value",
                          "line 7, column acc: 'abc' is not a number",
                          "line 8: 3 fields, the header has 4",
                          "line 9: duplicate of line 2 (same params v='a' and seed 0)",
                          "line 10, column acc: '1e999' is out of the range of a double",
                          "line 11, column acc: 'NA' is not a number",
                          "line 11, column loss: '--1' is not a number",
                          "line 13, column acc: 'bad' is not a number",
                          "line 14: duplicate of line 13 (same params v='c' and seed 7)",
                      }));
  EXPECT_EQ(table_counts(store), before);
  EXPECT_FALSE(store.sweep("bad"));
}

TEST(Import, CsvSyntaxProblemsAreReportedOncePerRow) {
  TempDir tmp;
  const auto csv = write_file(tmp, "s.csv", "v,seed,acc\n\"a\"b,0,1\nc,1,2\n\"open,2,3\n");
  Store store(tmp.file("s.db"));
  const auto message = error_of([&] { import_csv(store, options_for("s", csv, {"v"})); });
  EXPECT_HAS(message, "2 problems");
  EXPECT_HAS(message, "line 2: text after the closing quote");
  EXPECT_HAS(message, "line 4: a quoted field opened on this line is never closed");
  EXPECT_TRUE(store.sweeps().empty());
}

TEST(Import, UnknownColumnsListTheHeader) {
  TempDir tmp;
  const auto csv = write_file(tmp, "h.csv", "variant,run_seed,acc\ngqa,0,1\n");
  Store store(tmp.file("h.db"));
  auto message = error_of([&] { import_csv(store, options_for("h", csv, {"variant", "lr"})); });
  EXPECT_HAS(message, "--params: no column 'lr' (the header's columns: variant, run_seed, acc)");
  EXPECT_HAS(message, "--seed-col: no seed column 'seed'");
  auto options = options_for("h", csv, {"variant"});
  options.seed_column = "run_seed";
  EXPECT_EQ(import_csv(store, options).jobs, 1);
  EXPECT_EQ(store.jobs("h")[0].seed, 0);

  options.sweep = "h2";
  options.params = {"variant", "acc"};  // leaves no metric column
  EXPECT_HAS(error_of([&] { import_csv(store, options); }), "no metric columns");
  options.params = {"run_seed"};
  EXPECT_HAS(error_of([&] { import_csv(store, options); }), "'run_seed' is the seed column");
  options.params = {"variant", "variant"};
  EXPECT_HAS(error_of([&] { import_csv(store, options); }), "'variant' is named twice");
  options.params = {};
  EXPECT_HAS(error_of([&] { import_csv(store, options); }), "name at least one param column");

  const auto dup = write_file(tmp, "dup.csv", "v,seed,v,\nx,0,1,2\n");
  message = error_of([&] { import_csv(store, options_for("dup", dup, {"v"})); });
  EXPECT_HAS(message, "line 1 (header): column 'v' appears twice");
  EXPECT_HAS(message, "line 1 (header): column 4 has no name");
  EXPECT_EQ(store.sweeps(), (std::vector<std::string>{"h"}));
}

TEST(Import, ExistingSweepIsRefusedWithAFreeName) {
  TempDir tmp;
  const auto csv = write_file(tmp, "x.csv", "v,seed,acc\na,0,1\n");
  Store store(tmp.file("x.db"));
  import_csv(store, options_for("x", csv, {"v"}));
  import_csv(store, options_for("x-2", csv, {"v"}));
  const auto before = table_counts(store);
  const auto message = error_of([&] { import_csv(store, options_for("x", csv, {"v"})); });
  EXPECT_HAS(message, "a sweep named 'x' exists in " + store.path());
  EXPECT_HAS(message, "--sweep 'x-3'");
  EXPECT_EQ(table_counts(store), before);
}

TEST(Import, BadOptionsAndFilesAreRefused) {
  TempDir tmp;
  const auto csv = write_file(tmp, "o.csv", "v,seed,acc\na,0,1\n");
  Store store(tmp.file("o.db"));
  EXPECT_HAS(error_of([&] { import_csv(store, options_for("", csv, {"v"})); }),
             "--sweep: the sweep name is empty");
  EXPECT_HAS(error_of([&] { import_csv(store, options_for("a\nb", csv, {"v"})); }),
             "control characters");
  EXPECT_HAS(error_of([&] { import_csv(store, options_for("m", tmp.file("none.csv"), {"v"})); }),
             "none.csv: cannot read the file: no such file");
  EXPECT_HAS(error_of([&] { import_csv(store, options_for("m", tmp.str(), {"v"})); }),
             "is a directory");
  const auto empty = write_file(tmp, "empty.csv", "\n\n");
  EXPECT_HAS(error_of([&] { import_csv(store, options_for("m", empty, {"v"})); }),
             "the file is empty");
  const auto header_only = write_file(tmp, "h.csv", "v,seed,acc\n");
  EXPECT_HAS(error_of([&] { import_csv(store, options_for("m", header_only, {"v"})); }),
             "no data rows");
  // Text policy: a Latin-1 export (here in the header, then in a value) is refused with its line
  // and column, before anything is stored.
  const auto latin1 = write_file(tmp, "l.csv", "v,seed,acc\ngqa,0,0.5\ncaf\xe9,1,0.5\n");
  EXPECT_HAS(error_of([&] { import_csv(store, options_for("m", latin1, {"v"})); }),
             "line 3, column 4: not UTF-8 text (byte 0xE9)");
  const auto header = write_file(tmp, "lh.csv", "v,seed,acc\xe9\ngqa,0,0.5\n");
  EXPECT_HAS(error_of([&] { import_csv(store, options_for("m", header, {"v"})); }),
             "line 1, column 11: not UTF-8 text");
  EXPECT_TRUE(store.sweeps().empty());
}

TEST(Import, ProblemsBeyondTwentyAreCounted) {
  TempDir tmp;
  std::string text = "v,seed,acc\n";
  for (int i = 0; i < 25; ++i) text += "a," + std::to_string(i) + ",bad\n";
  const auto csv = write_file(tmp, "many.csv", text);
  Store store(tmp.file("m.db"));
  try {
    import_csv(store, options_for("m", csv, {"v"}));
    FAIL() << "no ImportError";
  } catch (const ImportError& e) {
    EXPECT_EQ(e.problems().size(), 25u);
    const std::string message = e.what();
    EXPECT_HAS(message, "25 problems; nothing imported:");
    EXPECT_HAS(message, "line 21, column acc");
    EXPECT_EQ(message.find("line 22,"), std::string::npos);
    EXPECT_HAS(message, "\n  and 5 more");
  }
}

TEST(Import, PlanTouchesNoStoreAndWriteIsAllOrNothing) {
  TempDir tmp;
  const auto csv = write_file(tmp, "p.csv", "v,seed,acc\na,0,1\nb,0,nan\n");
  const auto plan = plan_import(options_for("p", csv, {"v"}));
  ASSERT_EQ(plan.jobs.size(), 2u);
  EXPECT_EQ(plan.jobs[1].line, 3);
  EXPECT_EQ(plan.jobs[1].status, "diverged");
  Store store(tmp.file("p.db"));
  {
    // Inside an outer transaction that is rolled back, the import leaves nothing behind.
    Store::Transaction outer(store);
    write_import(store, plan);
    EXPECT_EQ(store.jobs("p").size(), 2u);
  }
  EXPECT_TRUE(store.sweeps().empty());
  EXPECT_EQ(count(store, "SELECT COUNT(*) FROM jobs"), 0);
  EXPECT_EQ(write_import(store, plan).jobs, 2);
}

}  // namespace
}  // namespace ablate::results
