#include "ablate/results/ingest.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <tuple>
#include "ablate/testing/temp_dir.h"

namespace ablate::results {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;

using ablate::testing::TempDir;

// Events as experiments/src/train.cpp writes them (nlohmann objects dump with sorted keys).
json train_event(int64_t step, double loss) {
  return {{"step", step},         {"kind", "train"},
          {"loss", loss},         {"lr", 1e-3},
          {"grad_norm", 0.5},     {"step_time_s", 0.01},
          {"throughput", 2048.0}, {"peak_memory_bytes", int64_t{123456789}}};
}
json eval_event(int64_t step, double loss) {
  return {{"step", step},
          {"kind", "eval"},
          {"val_loss", loss},
          {"val_ppl", std::exp(loss)},
          {"val_bpb", loss / std::log(2.0)}};
}
json attention_event(int64_t step, size_t layer) {
  return {{"step", step},          {"kind", "attention"},   {"layer", layer},
          {"alloc", {3, 1}},       {"alloc_entropy", 0.56}, {"degenerate_steps", 0},
          {"key_norm_mean", 1.25}, {"key_norm_std", 0.125}};
}
std::string line(const json& e) { return e.dump() + "\n"; }

// Train events every step 1..n with loss 10/step, an eval and two attention events every 5.
std::string events(int64_t from, int64_t to, double scale = 10.0) {
  std::string text;
  for (int64_t s = from; s <= to; ++s) {
    text += line(train_event(s, scale / static_cast<double>(s)));
    if (s % 5 == 0) {
      text += line(eval_event(s, 1.0 + scale / static_cast<double>(s)));
      text += line(attention_event(s, 0));
      text += line(attention_event(s, 1));
    }
  }
  return text;
}

json summary(const std::string& status) {
  return {{"status", status},
          {"step", 20},
          {"steps", 20},
          {"final", {{"val_loss", 1.5}, {"val_ppl", 4.48}, {"val_bpb", 2.16}}},
          {"best", {{"val_loss", 1.25}, {"val_ppl", 3.49}, {"val_bpb", 1.8}}},
          {"wall_time_s", 12.5},
          {"parameters", 10432},
          {"throughput", 2048.0},
          {"throughput_unit", "tokens/s"},
          {"peak_memory_bytes", int64_t{123456789}},
          {"device", "cpu"},
          {"config_hash", "0123456789abcdef"},
          {"causality", "causal"},
          {"allow_noncausal", false},
          {"torch_version", "2.1.0"}};
}

using Rows = std::vector<std::tuple<std::string, int64_t, double>>;

// A store with sweep "s" and job "j1" whose run dir is dir/run, plus file helpers.
class IngestTest : public ::testing::Test {
 protected:
  IngestTest() : run_(dir_.path() / "run"), store_((dir_.path() / "a.db").string()) {
    fs::create_directories(run_);
    SweepRecord sweep;
    sweep.name = "s";
    sweep.yaml = "grid: {}";
    store_.register_sweep(sweep);
    JobRecord job;
    job.id = "j1";
    job.run_dir = run_.string();
    job.params = {{"attention.variant", "dgqa"}};
    store_.register_jobs("s", {job});
  }

  IngestResult ingest(Store& store) { return ingest_run_dir(store, "s", "j1", run_.string()); }
  IngestResult ingest() { return ingest(store_); }

  // Appends to events.jsonl in place.
  void append(const std::string& text) {
    std::ofstream(run_ / "events.jsonl", std::ios::app | std::ios::binary) << text;
  }
  // Replaces events.jsonl with a new file, as train.cpp's truncate_events does on resume.
  void replace(const std::string& text) {
    const fs::path tmp = run_ / "events.jsonl.tmp";
    std::ofstream(tmp, std::ios::binary | std::ios::trunc) << text;
    fs::rename(tmp, run_ / "events.jsonl");
  }
  // Rewrites events.jsonl in place (same inode).
  void overwrite(const std::string& text) {
    std::ofstream(run_ / "events.jsonl", std::ios::binary | std::ios::trunc) << text;
  }
  void write_summary(const json& s) {
    std::ofstream(run_ / "summary.json", std::ios::binary | std::ios::trunc) << s.dump(2) << "\n";
  }

  static Rows metrics(Store& store) {
    SQLite::Statement q(store.database(),
                        "SELECT name, step, value FROM metrics WHERE job = (SELECT pk FROM jobs "
                        "WHERE id = 'j1') ORDER BY name, step");
    Rows rows;
    while (q.executeStep()) {
      rows.emplace_back(q.getColumn(0).getString(), q.getColumn(1).getInt64(),
                        q.getColumn(2).getDouble());
    }
    return rows;
  }
  Rows metrics() { return metrics(store_); }
  std::optional<double> metric(const std::string& name, int64_t step) {
    for (const auto& [n, s, v] : metrics()) {
      if (n == name && s == step) return v;
    }
    return std::nullopt;
  }
  std::map<std::string, double> summaries() {
    SQLite::Statement q(store_.database(), "SELECT name, value FROM summaries");
    std::map<std::string, double> out;
    while (q.executeStep()) out[q.getColumn(0).getString()] = q.getColumn(1).getDouble();
    return out;
  }
  // What one ingest of the current run dir into a fresh store gives.
  Rows fresh_ingest() {
    TempDir other;
    Store fresh((other.path() / "b.db").string());
    SweepRecord sweep;
    sweep.name = "s";
    fresh.register_sweep(sweep);
    JobRecord job;
    job.id = "j1";
    fresh.register_jobs("s", {job});
    const IngestResult r = ingest(fresh);
    EXPECT_TRUE(r.ok()) << r.error;
    return metrics(fresh);
  }

  TempDir dir_;
  fs::path run_;
  Store store_;
};

TEST_F(IngestTest, NamesTrainEvalAndAttentionMetrics) {
  append(events(1, 5));
  const IngestResult r = ingest();
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.lines_read, 5 + 3);
  EXPECT_EQ(r.last_step, 5);
  // 6 numbers per train event, 3 per eval, 6 per attention event (alloc has two entries).
  EXPECT_EQ(r.rows_added, 5 * 6 + 3 + 2 * 6);
  EXPECT_EQ(static_cast<int64_t>(metrics().size()), r.rows_added);
  EXPECT_EQ(metric("train/loss", 2), 5.0);
  EXPECT_EQ(metric("train/lr", 2), 1e-3);
  EXPECT_EQ(metric("train/grad_norm", 2), 0.5);
  EXPECT_EQ(metric("train/step_time_s", 2), 0.01);
  EXPECT_EQ(metric("train/throughput", 2), 2048.0);
  EXPECT_EQ(metric("train/peak_memory_bytes", 2), 123456789.0);
  EXPECT_EQ(metric("eval/val_loss", 5), 3.0);
  EXPECT_EQ(metric("eval/val_ppl", 5), std::exp(3.0));
  EXPECT_EQ(metric("attn0/alloc[0]", 5), 3.0);
  EXPECT_EQ(metric("attn1/alloc[1]", 5), 1.0);
  EXPECT_EQ(metric("attn1/alloc_entropy", 5), 0.56);
  EXPECT_EQ(metric("attn0/degenerate_steps", 5), 0.0);
  EXPECT_EQ(metric("attn0/key_norm_std", 5), 0.125);
  EXPECT_FALSE(metric("attn0/layer", 5));
  EXPECT_FALSE(metric("train/step", 2));
  const JobRow job = *store_.job("s", "j1");
  EXPECT_EQ(job.events_lines, 8);
  EXPECT_EQ(job.events_offset, static_cast<int64_t>(events(1, 5).size()));
  // The `curves` view names the sweep and job.
  SQLite::Statement q(store_.database(),
                      "SELECT value FROM curves WHERE sweep = 's' AND job_id = 'j1' AND name = "
                      "'train/loss' AND step = 4");
  ASSERT_TRUE(q.executeStep());
  EXPECT_EQ(q.getColumn(0).getDouble(), 2.5);
}

TEST_F(IngestTest, BooleansNullsStringsAndNestedValues) {
  append(line({{"step", 7},
               {"kind", "train"},
               {"loss", nullptr},  // how nlohmann writes NaN
               {"diverged", true},
               {"note", "text"},
               {"nested", {{"a", 1}, {"b", {2.5, false}}}},
               {"empty", json::array()}}));
  append(line({{"step", 8}, {"kind", "probe"}, {"x", 1}}));  // a kind this code does not know
  const IngestResult r = ingest();
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(metrics(), (Rows{{"probe/x", 8, 1.0},
                             {"train/diverged", 7, 1.0},
                             {"train/nested.a", 7, 1.0},
                             {"train/nested.b[0]", 7, 2.5},
                             {"train/nested.b[1]", 7, 0.0}}));
}

TEST_F(IngestTest, TwiceIsOnce) {
  append(events(1, 10));
  const IngestResult first = ingest();
  ASSERT_TRUE(first.ok()) << first.error;
  const Rows once = metrics();
  const IngestResult second = ingest();
  ASSERT_TRUE(second.ok()) << second.error;
  EXPECT_EQ(second.rows_added, 0);
  EXPECT_EQ(second.lines_read, 0);
  EXPECT_FALSE(second.reingested);
  EXPECT_EQ(metrics(), once);
  EXPECT_EQ(once, fresh_ingest());
}

TEST_F(IngestTest, PartialThenFullIsFullAtOnce) {
  const std::string all = events(1, 20);
  // Cut in the middle of a line: that line must wait for its newline.
  const size_t cut = all.find('\n', all.size() / 2) + 10;
  append(all.substr(0, cut));
  const IngestResult partial = ingest();
  ASSERT_TRUE(partial.ok()) << partial.error;
  const auto complete_lines = std::count(all.begin(), all.begin() + cut, '\n');
  EXPECT_EQ(partial.lines_read, complete_lines);
  EXPECT_EQ(store_.job("s", "j1")->events_offset,
            static_cast<int64_t>(all.rfind('\n', cut - 1) + 1));
  append(all.substr(cut));
  const IngestResult rest = ingest();
  ASSERT_TRUE(rest.ok()) << rest.error;
  EXPECT_FALSE(rest.reingested);
  EXPECT_EQ(partial.lines_read + rest.lines_read, std::count(all.begin(), all.end(), '\n'));
  EXPECT_EQ(metrics(), fresh_ingest());
}

TEST_F(IngestTest, LastLineWithoutNewlineWaits) {
  append(line(train_event(1, 1.0)) + train_event(2, 2.0).dump());
  IngestResult r = ingest();
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.lines_read, 1);
  EXPECT_FALSE(metric("train/loss", 2));
  append("\n");
  r = ingest();
  EXPECT_EQ(r.lines_read, 1);
  EXPECT_EQ(metric("train/loss", 2), 2.0);
}

TEST_F(IngestTest, ResumeThatRewritesEventsReingestsFromScratch) {
  append(events(1, 12));
  ASSERT_TRUE(ingest().ok());
  EXPECT_TRUE(metric("train/loss", 12));
  // A resume from the checkpoint of step 5: a new file with steps <= 5, then steps 6.. written
  // again, with other values (as on a GPU).
  replace(events(1, 5));
  append(events(6, 8, 20.0));
  const IngestResult r = ingest();
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_TRUE(r.reingested);
  EXPECT_FALSE(metric("train/loss", 12));
  EXPECT_EQ(metric("train/loss", 8), 20.0 / 8);
  EXPECT_EQ(metrics(), fresh_ingest());
  EXPECT_FALSE(ingest().reingested);
}

TEST_F(IngestTest, InPlaceTruncationOrRewriteIsDetected) {
  std::string ones, twos;
  for (int64_t s = 1; s <= 12; ++s) {
    ones += line(train_event(s, 1.0));
    twos += line(train_event(s, 2.0));  // the same length, other bytes
  }
  overwrite(ones);
  ASSERT_TRUE(ingest().ok());
  overwrite(events(1, 3));  // same inode, shorter than the position ingested
  IngestResult r = ingest();
  EXPECT_TRUE(r.reingested);
  EXPECT_EQ(metrics(), fresh_ingest());
  overwrite(ones);
  ingest();
  ASSERT_FALSE(ingest().reingested);
  // Same inode, longer than the position, but the bytes before it changed.
  overwrite(twos + line(train_event(13, 2.0)));
  r = ingest();
  EXPECT_TRUE(r.reingested);
  EXPECT_EQ(metric("train/loss", 3), 2.0);
  EXPECT_EQ(metrics(), fresh_ingest());
}

TEST_F(IngestTest, MalformedLineStopsAndIsReported) {
  append(line(train_event(1, 1.0)) + "\n" + line(train_event(2, 2.0)) +
         "{\"step\": 3, \"kind\": \"train\", \"loss\": 0.\n" + line(train_event(4, 4.0)));
  IngestResult r = ingest();
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.error_line, 4);  // the blank line counts
  EXPECT_NE(r.error.find("events.jsonl line 4: not JSON"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("{\"step\": 3"), std::string::npos) << r.error;
  EXPECT_EQ(r.lines_read, 3);
  EXPECT_EQ(metric("train/loss", 2), 2.0);
  EXPECT_FALSE(metric("train/loss", 4));
  // The next ingest stops at the same line and changes nothing.
  r = ingest();
  EXPECT_EQ(r.error_line, 4);
  EXPECT_EQ(r.rows_added, 0);
  // A run that rewrites the file without it goes on.
  replace(line(train_event(1, 1.0)) + line(train_event(2, 2.0)) + line(train_event(3, 3.0)));
  r = ingest();
  EXPECT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(metric("train/loss", 3), 3.0);
}

TEST_F(IngestTest, EventsThatAreNotEventsAreReported) {
  const std::pair<std::string, std::string> cases[] = {
      {"[1, 2]", "line 1: not a JSON object"},
      {"{\"kind\": \"train\", \"loss\": 1}", "line 1: no integer \"step\""},
      {"{\"step\": 1.5, \"kind\": \"train\"}", "line 1: no integer \"step\""},
      {"{\"step\": 1e300, \"kind\": \"train\"}", "line 1: no integer \"step\""},
      {"{\"step\": 18446744073709551615, \"kind\": \"train\"}", "no integer \"step\""},
      {"{\"step\": 1, \"loss\": 1}", "line 1: no \"kind\" string"},
      {"{\"step\": 1, \"kind\": \"attention\", \"alloc\": [1]}",
       "without a non-negative \"layer\""},
      {"{\"step\": 1, \"kind\": \"train\", \"loss\": NaN}", "line 1: not JSON"},
  };
  for (const auto& [text, expected] : cases) {
    replace(text + "\n");
    const IngestResult r = ingest();
    EXPECT_NE(r.error.find(expected), std::string::npos) << text << " -> " << r.error;
    EXPECT_EQ(r.error_line, 1) << text;
  }
  EXPECT_TRUE(metrics().empty());
}

TEST_F(IngestTest, SummaryMapsToSummariesJobColumnsAndEnvironment) {
  append(events(1, 20));
  write_summary(summary("done"));
  const IngestResult r = ingest();
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.summary_status, "done");
  EXPECT_EQ(r.causality, "causal");
  EXPECT_EQ(summaries(), (std::map<std::string, double>{{"allow_noncausal", 0.0},
                                                        {"best_val_bpb", 1.8},
                                                        {"best_val_loss", 1.25},
                                                        {"best_val_ppl", 3.49},
                                                        {"final_val_bpb", 2.16},
                                                        {"final_val_loss", 1.5},
                                                        {"final_val_ppl", 4.48},
                                                        {"parameters", 10432.0},
                                                        {"peak_memory_bytes", 123456789.0},
                                                        {"step", 20.0},
                                                        {"steps", 20.0},
                                                        {"throughput", 2048.0},
                                                        {"wall_time_s", 12.5}}));
  EXPECT_EQ(r.summary_rows, 13);
  const JobRow job = *store_.job("s", "j1");
  EXPECT_EQ(job.summary_status, "done");
  EXPECT_EQ(job.causality, "causal");
  EXPECT_EQ(store_.environment("s", "j1"),
            (std::map<std::string, std::string>{{"config_hash", "0123456789abcdef"},
                                                {"device", "cpu"},
                                                {"throughput_unit", "tokens/s"},
                                                {"torch_version", "2.1.0"}}));
  // The results view has grown the summary columns.
  SQLite::Statement q(store_.database(),
                      "SELECT attention_variant, AVG(final_val_loss), best_val_loss FROM results "
                      "WHERE sweep = 's' GROUP BY 1");
  ASSERT_TRUE(q.executeStep());
  EXPECT_EQ(q.getColumn(0).getString(), "dgqa");
  EXPECT_EQ(q.getColumn(1).getDouble(), 1.5);
  EXPECT_EQ(q.getColumn(2).getDouble(), 1.25);
}

TEST_F(IngestTest, SummaryIsReplacedNotMerged) {
  json running = summary("running");
  running["final"] = json::object();
  running["throughput"] = 0.0;
  running["extra"] = 1;
  write_summary(running);
  ASSERT_TRUE(ingest().ok());
  EXPECT_EQ(summaries().count("extra"), 1u);
  EXPECT_EQ(store_.job("s", "j1")->summary_status, "running");
  write_summary(summary("done"));
  const IngestResult r = ingest();
  EXPECT_EQ(r.summary_status, "done");
  EXPECT_EQ(summaries().count("extra"), 0u);
  EXPECT_EQ(summaries().at("throughput"), 2048.0);
  EXPECT_EQ(summaries().at("final_val_loss"), 1.5);
}

TEST_F(IngestTest, DivergedRun) {
  append(events(1, 3));
  append(line({{"step", 4}, {"kind", "train"}, {"loss", nullptr}, {"diverged", true}}));
  json s = summary("diverged");
  s["step"] = 3;
  s["diverged_step"] = 4;
  s["final"] = json::object();
  s["best"] = json::object();
  write_summary(s);
  const IngestResult r = ingest();
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.summary_status, "diverged");
  EXPECT_EQ(metric("train/diverged", 4), 1.0);
  EXPECT_FALSE(metric("train/loss", 4));
  EXPECT_EQ(summaries().at("diverged_step"), 4.0);
  EXPECT_EQ(summaries().count("final_val_loss"), 0u);
  EXPECT_EQ(store_.job("s", "j1")->summary_status, "diverged");
}

TEST_F(IngestTest, MalformedSummaryKeepsThePreviousOne) {
  write_summary(summary("done"));
  ASSERT_TRUE(ingest().ok());
  std::ofstream(run_ / "summary.json", std::ios::trunc) << "{\"status\": ";
  IngestResult r = ingest();
  EXPECT_NE(r.error.find("summary.json: not JSON"), std::string::npos) << r.error;
  EXPECT_EQ(r.summary_status, "");
  EXPECT_EQ(summaries().at("final_val_loss"), 1.5);
  EXPECT_EQ(store_.job("s", "j1")->summary_status, "done");
  std::ofstream(run_ / "summary.json", std::ios::trunc) << "{\"status\": 3}";
  r = ingest();
  EXPECT_NE(r.error.find("\"status\" is not a string"), std::string::npos) << r.error;
}

TEST_F(IngestTest, MissingFilesChangeNothing) {
  IngestResult r = ingest();
  EXPECT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.rows_added + r.summary_rows + r.lines_read, 0);
  EXPECT_EQ(r.summary_status, "");
  append(events(1, 2));
  ASSERT_TRUE(ingest().ok());
  const Rows before = metrics();
  fs::remove(run_ / "events.jsonl");
  r = ingest();
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(metrics(), before);
}

TEST_F(IngestTest, WindowsLineEndingsAndBlankLines) {
  append(train_event(1, 1.0).dump() + "\r\n\r\n   \n" + line(train_event(2, 2.0)));
  const IngestResult r = ingest();
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.lines_read, 4);
  EXPECT_EQ(metric("train/loss", 2), 2.0);
}

TEST_F(IngestTest, UnknownJobIsAStoreError) {
  EXPECT_THROW(ingest_run_dir(store_, "s", "nope", run_.string()), StoreError);
  EXPECT_THROW(ingest_run_dir(store_, "nope", "j1", run_.string()), StoreError);
}

TEST_F(IngestTest, LongRunInChunks) {
  // Larger than one 4 MiB read: lines cross chunk boundaries.
  append(events(1, 30000));
  const IngestResult r = ingest();
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.last_step, 30000);
  EXPECT_EQ(r.lines_read, 30000 + 3 * 6000);
  EXPECT_EQ(r.rows_added, 30000 * 6 + 6000 * (3 + 12));
  EXPECT_EQ(metric("train/loss", 29999), 10.0 / 29999);
}

}  // namespace
}  // namespace ablate::results
