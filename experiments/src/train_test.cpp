#include "ablate/experiments/train.h"

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <utility>

#include "ablate/experiments/data_error.h"
#include "ablate/experiments/image_data.h"
#include "ablate/experiments/models.h"
#include "ablate/runner/config.h"
#include "ablate/runner/parse.h"
#include "ablate/testing/temp_dir.h"
#include "task_data.h"
#include "train_test_support.h"

namespace ablate::experiments {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;

using ablate::testing::TempDir;

void write_corpus(const fs::path& file) { test_helpers::write_word_corpus(file); }

runner::Config lm_config(const fs::path& corpus, const std::string& variant) {
  runner::Config c;
  c.task = "lm";
  c.data.dataset = "text";
  c.data.path = corpus.string();
  c.data.seq_len = 16;
  c.model.dim = 32;
  c.model.depth = 1;
  c.model.heads = 4;
  c.attention.variant = variant;
  if (variant != "mha" && variant != "mqa") c.attention.kv_heads = 2;
  c.attention.ema_window = 2;
  c.train.steps = 12;
  c.train.batch_size = 4;
  c.train.lr = 3e-3;
  c.train.warmup = 2;
  c.train.eval_every = 6;
  c.train.eval_batches = 2;
  c.train.checkpoint_every = 4;
  c.train.log_every = 2;
  c.train.device = "cpu";
  return c;
}

TrainResult run(const runner::Config& c, const fs::path& dir, int64_t stop_after = 0) {
  return test_helpers::run_quietly(c, dir, stop_after);
}
using test_helpers::read_events;
using test_helpers::read_json;
using test_helpers::stable;

TEST(Train, ResumeAfterAStopGivesBitIdenticalMetricsAndEvents) {
  TempDir tmp;
  write_corpus(tmp.path() / "corpus.txt");
  for (const char* variant : {"dgqa", "pgqa", "kdgqa", "wgqa"}) {
    auto c = lm_config(tmp.path() / "corpus.txt", variant);
    const fs::path whole = tmp.path() / (std::string(variant) + "_whole");
    const fs::path split = tmp.path() / (std::string(variant) + "_split");
    auto a = run(c, whole);
    ASSERT_EQ(a.status, "done");
    auto stopped = run(c, split, /*stop_after=*/6);  // checkpoint at 4, killed at 6
    ASSERT_EQ(stopped.status, "stopped");
    auto b = run(c, split);
    EXPECT_EQ(b.resumed_from, 4) << variant;
    EXPECT_EQ(b.status, "done");
    EXPECT_EQ(a.final, b.final) << variant;  // exact equality of doubles
    EXPECT_EQ(a.best, b.best) << variant;
    auto ea = read_events(whole), eb = read_events(split);
    ASSERT_EQ(ea.size(), eb.size()) << variant;
    for (size_t i = 0; i < ea.size(); ++i) EXPECT_EQ(stable(ea[i]), stable(eb[i])) << variant;
    EXPECT_EQ(read_json(split / "summary.json")["status"], "done");
  }
}

TEST(Train, RunDirHasTheDocumentedFiles) {
  TempDir tmp;
  write_corpus(tmp.path() / "corpus.txt");
  auto c = lm_config(tmp.path() / "corpus.txt", "dgqa");
  auto r = run(c, tmp.path() / "run");
  for (const char* f :
       {"config.yaml", "events.jsonl", "summary.json", "log.txt", "checkpoint/model.pt",
        "checkpoint/optimizer.pt", "checkpoint/state.json"}) {
    EXPECT_TRUE(fs::exists(tmp.path() / "run" / f)) << f;
  }
  auto s = read_json(tmp.path() / "run" / "summary.json");
  EXPECT_EQ(s["status"], "done");
  EXPECT_EQ(s["step"], 12);
  EXPECT_EQ(s["parameters"], r.parameters);
  EXPECT_GT(s["throughput"].get<double>(), 0.0);
  EXPECT_GT(s["peak_memory_bytes"].get<int64_t>(), 0);
  EXPECT_EQ(s["causality"], "causal");
  // Bits per byte is the loss in bits: loss / ln 2.
  EXPECT_NEAR(s["final"]["val_bpb"].get<double>(),
              s["final"]["val_loss"].get<double>() / std::log(2.0), 1e-12);
  int train_events = 0, eval_events = 0, attention_events = 0;
  for (const auto& e : read_events(tmp.path() / "run")) {
    ASSERT_TRUE(e.contains("step") && e.contains("kind"));
    const std::string kind = e["kind"];
    if (kind == "train") {
      ++train_events;
      EXPECT_EQ(e["step"].get<int64_t>() % 2, 0);
      EXPECT_TRUE(e.contains("loss") && e.contains("lr") && e.contains("grad_norm"));
    } else if (kind == "eval") {
      ++eval_events;
    } else if (kind == "attention") {
      ++attention_events;
      int64_t total = 0;
      for (auto q : e["alloc"]) total += q.get<int64_t>();
      EXPECT_EQ(total, 4);  // queries per kv head sum to H
      EXPECT_GE(e["alloc_entropy"].get<double>(), 0.0);
      EXPECT_GT(e["key_norm_mean"].get<double>(), 0.0);
      EXPECT_GE(e["key_norm_max_over_min"].get<double>(), 1.0);
      EXPECT_TRUE(e.contains("norm_cache_mean"));  // dgqa's cache
    }
  }
  EXPECT_EQ(train_events, 6);
  EXPECT_EQ(eval_events, 2);       // steps 6 and 12
  EXPECT_EQ(attention_events, 2);  // one layer, at each evaluation
  // Running a finished run again does nothing and reports the stored result.
  auto again = run(c, tmp.path() / "run");
  EXPECT_EQ(again.status, "done");
  EXPECT_EQ(again.final, r.final);
  EXPECT_EQ(read_events(tmp.path() / "run").size(), 10u);
}

TEST(Train, DivergenceEndsTheRunWithItsStep) {
  TempDir tmp;
  write_corpus(tmp.path() / "corpus.txt");
  auto c = lm_config(tmp.path() / "corpus.txt", "gqa");
  const fs::path dir = tmp.path() / "run";
  ASSERT_EQ(run(c, dir, /*stop_after=*/4).status, "stopped");  // checkpoint at step 4
  {
    // A NaN in the final norm's gain, as an overflow would leave it: every logit becomes NaN.
    LmOptions o;
    o.vocab = 256;
    o.dim = 32;
    o.depth = 1;
    o.hidden = mlp_hidden(c.model, /*swiglu=*/true);
    o.attention = attention_options(c.attention, 32, 4, c.model.norm_eps, /*causal=*/true);
    Lm lm(o);
    torch::serialize::InputArchive in;
    in.load_from((dir / "checkpoint" / "model.pt").string());
    lm->load(in);
    torch::NoGradGuard no_grad;
    lm->final_norm[0] = std::nan("");
    torch::serialize::OutputArchive out;
    lm->save(out);
    out.save_to((dir / "checkpoint" / "model.pt").string());
  }
  auto r = run(c, dir);
  EXPECT_EQ(r.status, "diverged");
  EXPECT_EQ(r.diverged_step, 5);
  auto s = read_json(dir / "summary.json");
  EXPECT_EQ(s["status"], "diverged");
  EXPECT_EQ(s["diverged_step"], 5);
  EXPECT_EQ(run(c, dir).status, "diverged");  // final, not retried
}

TEST(Train, RefusesANonCausalVariantUnlessAllowed) {
  TempDir tmp;
  write_corpus(tmp.path() / "corpus.txt");
  for (const char* variant : {"kdgqa", "dgqa", "pgqa"}) {
    auto c = lm_config(tmp.path() / "corpus.txt", variant);
    c.attention.faithful = true;
    // The rule of runner::validate, before anything else (the empirical check comes after it).
    try {
      run(c, tmp.path() / "refused");
      ADD_FAILURE() << "faithful " << variant << " trained as a language model";
    } catch (const runner::ConfigError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(std::string("attention.variant ") + variant +
                          " with attention.faithful = true is not causal"),
                std::string::npos)
          << what;
      EXPECT_NE(what.find("allow_noncausal"), std::string::npos);
    }
    EXPECT_FALSE(fs::exists(tmp.path() / "refused"));  // nothing written
  }
  auto c = lm_config(tmp.path() / "corpus.txt", "kdgqa");
  c.attention.faithful = true;
  c.attention.allow_noncausal = true;
  c.train.steps = 2;
  c.train.warmup = 1;
  EXPECT_EQ(run(c, tmp.path() / "allowed").status, "done");
  auto s = read_json(tmp.path() / "allowed" / "summary.json");
  EXPECT_EQ(s["allow_noncausal"], true);
  EXPECT_NE(s["causality"].get<std::string>().find("leaks"), std::string::npos);
}

TEST(Train, RunDirWithAnotherConfigIsRefused) {
  TempDir tmp;
  write_corpus(tmp.path() / "corpus.txt");
  auto c = lm_config(tmp.path() / "corpus.txt", "gqa");
  c.train.steps = 2;
  c.train.warmup = 1;
  run(c, tmp.path() / "run");
  c.attention.kv_heads = 1;
  EXPECT_THROW(run(c, tmp.path() / "run"), RunError);
}

TEST(Train, ConvertedStageLogsItsStepZeroLoss) {
  TempDir tmp;
  write_corpus(tmp.path() / "corpus.txt");
  auto parent = lm_config(tmp.path() / "corpus.txt", "mha");
  parent.train.steps = 40;
  parent.train.eval_every = 40;
  auto p = run(parent, tmp.path() / "parent");
  ASSERT_EQ(p.status, "done");
  auto child = lm_config(tmp.path() / "corpus.txt", "gqa");
  child.init.from = (tmp.path() / "parent").string();
  child.init.convert = "mean_pool";
  child.train.steps = 2;
  child.train.warmup = 1;
  run(child, tmp.path() / "child");
  auto events = read_events(tmp.path() / "child");
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events[0]["kind"], "eval");
  EXPECT_EQ(events[0]["step"], 0);
  const double converted = events[0]["val_loss"], trained = p.final.at("val_loss");
  // The converted model keeps most of what the parent learned: far below an untrained model's
  // log(256) nats and near the parent's loss.
  EXPECT_LT(converted, std::log(256.0) - 1.0);
  EXPECT_LT(converted, trained + 1.0);
}

// An llm.c / modded-nanogpt shard: 256 little-endian int32 header words, then uint16 tokens.
void write_shard(const fs::path& file, int64_t tokens) {
  std::vector<int32_t> header(256, 0);
  header[0] = 20240520;
  header[1] = 1;
  header[2] = static_cast<int32_t>(tokens);
  std::ofstream out(file, std::ios::binary);
  out.write(reinterpret_cast<const char*>(header.data()), 1024);
  for (int64_t i = 0; i < tokens; ++i) {
    const uint16_t t = static_cast<uint16_t>((i * 7) % 500);  // a predictable sequence
    out.write(reinterpret_cast<const char*>(&t), 2);
  }
}

TEST(Train, LmTrainsOnTokenShardsWithoutBitsPerByte) {
  TempDir tmp;
  write_shard(tmp.path() / "train_000.bin", 4000);
  auto c = lm_config(tmp.path() / "train_000.bin", "gqa");
  c.data.dataset = "bin";
  c.model.vocab = 512;
  c.train.steps = 80;
  c.train.eval_every = 80;
  c.train.lr = 1e-2;
  auto r = run(c, tmp.path() / "run");
  ASSERT_EQ(r.status, "done");
  EXPECT_EQ(r.final.count("val_bpb"), 0u);  // tokens are not bytes
  EXPECT_NEAR(r.final.at("val_ppl"), std::exp(r.final.at("val_loss")), 1e-9);
  EXPECT_LT(r.final.at("val_loss"), std::log(512.0) - 1.0);  // it learns the sequence
  c.model.vocab = 100;  // tokens up to 499 do not fit: an error, not an out-of-range gather
  EXPECT_THROW(run(c, tmp.path() / "small_vocab"), DataError);
  EXPECT_FALSE(fs::exists(tmp.path() / "small_vocab"));
}

void write_idx(const fs::path& dir, const std::string& prefix, int n) {
  test_helpers::write_idx(dir, prefix, n);
}

TEST(Train, VitTrainsOnIdxImagesAndReportsAccuracy) {
  TempDir tmp;
  write_idx(tmp.path(), "train", 200);
  write_idx(tmp.path(), "t10k", 50);
  runner::Config c;
  c.task = "vit";
  c.data.dataset = "idx";
  c.data.path = tmp.path().string();
  c.model.dim = 32;
  c.model.depth = 1;
  c.model.heads = 4;
  c.model.patch = 4;
  c.attention.variant = "gqa";
  c.attention.kv_heads = 2;
  c.train.steps = 30;
  c.train.batch_size = 20;
  c.train.lr = 3e-3;
  c.train.warmup = 3;
  c.train.eval_every = 30;
  c.train.device = "cpu";
  auto r = run(c, tmp.path() / "run");
  ASSERT_EQ(r.status, "done");
  // Brightness alone separates the classes: a working pipeline learns it in 30 steps.
  EXPECT_GT(r.final.at("test_acc"), 0.5);
  EXPECT_LE(r.final.at("test_acc"), 1.0);
  EXPECT_TRUE(std::isfinite(r.final.at("test_loss")));
}

// ----- Evaluation (issue 19): inference mode, sums on the device, train.eval_subset ------------

// A stand-in model for TaskData::evaluate: fixed random logits per input token (lm) or a fixed
// random projection of the pixels (vit), so the losses are long floats whose sum shows any change
// of order or precision. Keeps each call's logits, in order.
struct StandIn {
  torch::Tensor table;
  std::vector<torch::Tensor> calls;
  torch::Tensor operator()(const torch::Tensor& x) {
    torch::Tensor logits =
        x.scalar_type() == torch::kLong
            ? table.index_select(0, x.flatten()).view({x.size(0), x.size(1), table.size(1)})
            : x.flatten(1).matmul(table);
    calls.push_back(logits.clone());
    return logits;
  }
  int64_t rows() const {
    int64_t n = 0;
    for (const auto& c : calls) n += c.size(0);
    return n;
  }
};

StandIn stand_in(int64_t in, int64_t out) {
  auto g = at::detail::createCPUGenerator(19);
  return {torch::randn({in, out}, g) * 3.0, {}};
}

// What the evaluation computed before issue 19, from the logits of `calls` in order: each
// batch's summed cross entropy read on the host and added there in double, and the argmax hits.
std::pair<double, int64_t> host_sums(const std::vector<torch::Tensor>& calls,
                                     const torch::Tensor& targets) {
  torch::NoGradGuard no_grad;
  double loss = 0.0;
  int64_t correct = 0, at = 0;
  for (const auto& logits : calls) {
    const int64_t m = logits.size(0);
    auto y = targets.narrow(0, at, m).reshape({-1});
    auto flat = logits.reshape({-1, logits.size(-1)});
    loss += torch::nn::functional::cross_entropy(
                flat, y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                .item<double>();
    correct += flat.argmax(1).eq(y).sum().item<int64_t>();
    at += m;
  }
  return {loss, correct};
}

TEST(Evaluation, LmSumsOnTheDeviceEqualTheHostLoopToTheBitAndASubsetReadsItsFirstWindows) {
  TempDir tmp;
  write_corpus(tmp.path() / "corpus.txt");
  auto c = lm_config(tmp.path() / "corpus.txt", "gqa");
  c.train.eval_batches = 0;  // every window of the held-out split
  const auto data = load_data(c);
  const int64_t s = c.data.seq_len, b = c.train.batch_size;
  const torch::Tensor val = load_token_streams(c).val;
  const int64_t windows = (val.numel() - 1) / s;
  ASSERT_GT(windows, 3 * b) << "several batches, a last one partial or not";
  EXPECT_EQ(data->held_out_examples(), windows);
  // The targets of window w: tokens w * s + 1 .. w * s + s.
  auto targets = [&](int64_t n) { return val.narrow(0, 1, n * s).view({n, s}).to(torch::kInt64); };
  for (const int64_t subset : {int64_t{0}, int64_t{5}, windows - 1}) {
    SCOPED_TRACE(subset);
    StandIn model = stand_in(256, 256);
    std::vector<std::map<std::string, double>> got;
    {
      c10::InferenceMode inference;
      got = data->evaluate(std::ref(model), torch::kCPU, 1, subset);
    }
    const int64_t n = subset > 0 ? subset : windows;
    EXPECT_EQ(model.rows(), n) << "exactly the first N windows";
    for (size_t i = 0; i + 1 < model.calls.size(); ++i) EXPECT_EQ(model.calls[i].size(0), b);
    const auto [loss, correct] = host_sums(model.calls, targets(n));
    (void)correct;
    const double mean = loss / static_cast<double>(n * s);
    EXPECT_EQ(got[0].at("val_loss"), mean);  // to the bit
    EXPECT_EQ(got[0].at("val_ppl"), std::exp(mean));
    EXPECT_EQ(got[0].at("val_bpb"), mean / std::log(2.0));
    // Without inference mode (NoGradGuard, as before) the same values.
    StandIn again = stand_in(256, 256);
    torch::NoGradGuard no_grad;
    EXPECT_EQ(data->evaluate(std::ref(again), torch::kCPU, 1, subset), got);
  }
  // train.eval_batches limits the full evaluation; a subset reads at most that much.
  c.train.eval_batches = 2;
  EXPECT_EQ(load_data(c)->held_out_examples(), 2 * b);
}

TEST(Evaluation, VitSumsOnTheDeviceEqualTheHostLoopToTheBitAndASubsetReadsItsFirstImages) {
  TempDir tmp;
  write_idx(tmp.path(), "train", 200);
  write_idx(tmp.path(), "t10k", 700);  // three evaluation batches of 256, the last partial
  runner::Config c;
  c.task = "vit";
  c.data.dataset = "idx";
  c.data.path = tmp.path().string();
  c.train.batch_size = 20;
  const auto data = load_data(c);
  EXPECT_EQ(data->held_out_examples(), 700);
  const ImageData images = load_idx(tmp.path().string(), "");
  const torch::Tensor labels = torch::tensor(images.test.labels, torch::kInt64);
  for (const int64_t subset : {int64_t{0}, int64_t{300}, int64_t{7}}) {
    SCOPED_TRACE(subset);
    for (const int64_t members : {1, 2}) {
      StandIn model = stand_in(64, 10);
      std::vector<std::map<std::string, double>> got;
      {
        c10::InferenceMode inference;
        got = data->evaluate(std::ref(model), torch::kCPU, members, subset);
      }
      const int64_t n = subset > 0 ? subset : 700;
      ASSERT_EQ(model.rows(), n * members) << "exactly the first N images";
      if (members > 1) continue;
      EXPECT_EQ(model.calls[0].size(0), std::min<int64_t>(n, 256)) << "batches of 256";
      const auto [loss, correct] = host_sums(model.calls, labels);
      EXPECT_EQ(got[0].at("test_loss"), loss / static_cast<double>(n));  // to the bit
      EXPECT_EQ(got[0].at("test_acc"), static_cast<double>(correct) / static_cast<double>(n));
    }
  }
  c.train.eval_batches = 2;  // of 256 images
  EXPECT_EQ(load_data(c)->held_out_examples(), 512);
}

// Runs `c` with and without train.eval_subset `subset` and checks what issue 19 promises: the
// same training, the same final metrics and last evaluation to the bit, intermediate evaluations
// marked with "subset", and best values of full evaluations only.
void expect_subset_changes_only_intermediate_points(runner::Config c, const fs::path& dir,
                                                    int64_t subset) {
  c.train.eval_subset = 0;
  const TrainResult whole = run(c, dir / "whole");
  c.train.eval_subset = subset;
  const TrainResult part = run(c, dir / "subset");
  ASSERT_EQ(whole.status, "done");
  ASSERT_EQ(part.status, "done");
  EXPECT_EQ(whole.final, part.final);  // exact equality of doubles
  const json summary_whole = read_json(dir / "whole" / "summary.json");
  const json summary_part = read_json(dir / "subset" / "summary.json");
  EXPECT_EQ(summary_whole["final"], summary_part["final"]);
  // Best values count full evaluations only: here the last one.
  EXPECT_EQ(summary_part["best"], summary_part["final"]);
  auto ew = read_events(dir / "whole"), ep = read_events(dir / "subset");
  ASSERT_EQ(ew.size(), ep.size());
  int64_t subsets = 0, differ = 0;
  const int64_t last = c.train.steps;
  for (size_t i = 0; i < ew.size(); ++i) {
    const json& w = ew[i];
    const json& p = ep[i];
    ASSERT_EQ(w["kind"], p["kind"]);
    ASSERT_EQ(w["step"], p["step"]);
    if (w["kind"] == "train") {
      EXPECT_EQ(stable(w), stable(p)) << "training is unchanged";
    }
    if (w["kind"] != "eval") continue;
    EXPECT_FALSE(w.contains("subset"));
    if (p["step"] == last) {
      EXPECT_FALSE(p.contains("subset")) << "the last evaluation is of the whole split";
      EXPECT_EQ(w, p);  // to the bit
    } else {
      ++subsets;
      EXPECT_EQ(p["subset"], subset);
      json without = p;
      without.erase("subset");
      differ += without != w;
    }
  }
  EXPECT_GT(subsets, 0);
  EXPECT_GT(differ, 0) << "a subset evaluation gives other values than the whole split";
  std::ifstream log(dir / "subset" / "log.txt");
  const std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("(first " + std::to_string(subset) + " held-out examples)"),
            std::string::npos)
      << text;
}

TEST(Evaluation, EvalSubsetChangesOnlyTheIntermediatePointsOfAnLm) {
  TempDir tmp;
  write_corpus(tmp.path() / "corpus.txt");
  for (const char* variant : {"gqa", "dgqa", "kdgqa"}) {
    SCOPED_TRACE(variant);
    auto c = lm_config(tmp.path() / "corpus.txt", variant);
    c.train.eval_every = 4;
    expect_subset_changes_only_intermediate_points(c, tmp.path() / variant, 3);
  }
}

TEST(Evaluation, EvalSubsetChangesOnlyTheIntermediatePointsOfAVit) {
  TempDir tmp;
  write_idx(tmp.path(), "train", 200);
  write_idx(tmp.path(), "t10k", 300);
  runner::Config c;
  c.task = "vit";
  c.data.dataset = "idx";
  c.data.path = tmp.path().string();
  c.model.dim = 16;
  c.model.depth = 1;
  c.model.heads = 2;
  c.model.patch = 4;
  c.attention.variant = "gqa";
  c.attention.kv_heads = 1;
  c.train.steps = 6;
  c.train.batch_size = 10;
  c.train.warmup = 1;
  c.train.eval_every = 2;
  c.train.device = "cpu";
  expect_subset_changes_only_intermediate_points(c, tmp.path(), 30);
}

TEST(Evaluation, AnEvalSubsetAsLargeAsTheHeldOutSplitIsNoSubset) {
  TempDir tmp;
  write_corpus(tmp.path() / "corpus.txt");
  auto c = lm_config(tmp.path() / "corpus.txt", "gqa");
  c.train.eval_subset = 8;  // eval_batches 2 x batch_size 4: the whole of what is evaluated
  const TrainResult r = run(c, tmp.path() / "run");
  ASSERT_EQ(r.status, "done");
  int64_t evals = 0;
  for (const auto& e : read_events(tmp.path() / "run")) {
    if (e["kind"] != "eval") continue;
    ++evals;
    EXPECT_FALSE(e.contains("subset")) << e.dump();
  }
  EXPECT_EQ(evals, 2);
}

}  // namespace
}  // namespace ablate::experiments
