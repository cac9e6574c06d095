// The options the papers' training recipes use: epochs (each a new order over the whole training
// split), evaluation at epoch ends, dropout from per-(seed, step, layer) generators, an output
// bias; and that runs using them resume bit-identically.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "ablate/experiments/models.h"
#include "ablate/experiments/train.h"
#include "ablate/runner/config.h"
#include "ablate/testing/temp_dir.h"
#include "task_data.h"
#include "train_test_support.h"

namespace ablate::experiments {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;
using ablate::testing::TempDir;

// 50 training images (first pixel = index), 20 test images, batch 20: 3 batches per epoch.
runner::Config vit_config(const fs::path& dir) {
  test_helpers::write_idx(dir, "train", 50, /*tag_first_pixel=*/true);
  test_helpers::write_idx(dir, "t10k", 20);
  runner::Config c;
  c.task = "vit";
  c.data.dataset = "idx";
  c.data.path = dir.string();
  c.model.dim = 16;
  c.model.depth = 2;
  c.model.heads = 4;
  c.model.patch = 4;
  c.attention.variant = "gqa";
  c.attention.kv_heads = 2;
  c.train.batch_size = 20;
  c.train.lr = 3e-3;
  c.train.warmup = 2;
  c.train.epochs = 3;
  c.train.eval_every = 1000;
  c.train.checkpoint_every = 2;
  c.train.log_every = 1;
  c.train.device = "cpu";
  return c;
}

TrainResult run(const runner::Config& c, const fs::path& dir, int64_t stop_after = 0) {
  return test_helpers::run_quietly(c, dir, stop_after);
}

std::vector<json> events(const fs::path& dir) {
  std::vector<json> out;
  for (const auto& e : test_helpers::read_events(dir)) out.push_back(test_helpers::stable(e));
  return out;
}

json summary(const fs::path& dir) { return test_helpers::read_json(dir / "summary.json"); }

TEST(Epochs, EveryTrainingItemOncePerEpochInANewOrder) {
  TempDir tmp;
  const auto data = load_data(vit_config(tmp.path()));
  ASSERT_EQ(data->batches_per_epoch(), 3);
  std::vector<std::vector<double>> orders;
  for (int64_t epoch = 0; epoch < 2; ++epoch) {
    std::vector<double> order;
    std::vector<int64_t> sizes;
    for (int64_t i = 0; i < 3; ++i) {
      Batch b = data->epoch_batch(epoch, i);
      sizes.push_back(b.items);
      ASSERT_EQ(b.input.size(0), b.items);
      ASSERT_EQ(b.target.size(0), b.items);
      // The first pixel tags the image (normalisation is an increasing map, so tags stay apart).
      auto tags = b.input.select(1, 0).select(1, 0).select(1, 0);
      for (int64_t j = 0; j < b.items; ++j) order.push_back(tags[j].item<double>());
    }
    EXPECT_EQ(sizes, (std::vector<int64_t>{20, 20, 10}));
    EXPECT_EQ(std::set<double>(order.begin(), order.end()).size(), 50u) << "epoch " << epoch;
    orders.push_back(order);
  }
  EXPECT_EQ(std::set<double>(orders[0].begin(), orders[0].end()),
            std::set<double>(orders[1].begin(), orders[1].end()));
  EXPECT_NE(orders[0], orders[1]);  // reshuffled
  EXPECT_THROW(data->epoch_batch(0, 3), std::out_of_range);
  // The same (seed, epoch) gives the same order.
  const auto again = load_data(vit_config(tmp.path() / "."));
  EXPECT_TRUE(torch::equal(again->epoch_batch(1, 2).input, data->epoch_batch(1, 2).input));
}

// The lm's epochs go over its non-overlapping windows: tokens here are their own positions, so a
// window's first token names it.
TEST(Epochs, LmEpochsCoverEveryWindowOnce) {
  TempDir tmp;
  const fs::path shard = tmp.path() / "train_000.bin";
  {
    std::vector<int32_t> header(256, 0);
    header[0] = 20240520;
    header[1] = 1;
    header[2] = 1000;
    std::ofstream out(shard, std::ios::binary);
    out.write(reinterpret_cast<const char*>(header.data()), 1024);
    for (uint16_t t = 0; t < 1000; ++t) out.write(reinterpret_cast<const char*>(&t), 2);
  }
  runner::Config c;
  c.task = "lm";
  c.data.dataset = "bin";
  c.data.path = shard.string();
  c.data.seq_len = 8;
  c.data.val_fraction = 0.1;  // the last 100 tokens
  c.model.vocab = 1000;
  c.train.batch_size = 16;
  c.train.epochs = 1;
  const auto data = load_data(c);
  const int64_t windows = (900 - 1) / 8;  // 112 windows of 8 + 1 tokens in 900 tokens
  ASSERT_EQ(data->batches_per_epoch(), (windows + 15) / 16);
  std::set<int64_t> starts;
  for (int64_t i = 0; i < data->batches_per_epoch(); ++i) {
    Batch b = data->epoch_batch(0, i);
    EXPECT_EQ(b.items, b.input.size(0) * 8);
    EXPECT_TRUE(torch::equal(b.target.narrow(1, 0, 7), b.input.narrow(1, 1, 7)));
    for (int64_t j = 0; j < b.input.size(0); ++j) starts.insert(b.input[j][0].item<int64_t>());
  }
  EXPECT_EQ(starts.size(), static_cast<size_t>(windows));
  for (int64_t s : starts) EXPECT_EQ(s % 8, 0) << s;
  EXPECT_EQ(*starts.rbegin(), (windows - 1) * 8);
}

TEST(Epochs, SetTheRunLengthAndEvaluateAtEpochEnds) {
  TempDir tmp;
  auto c = vit_config(tmp.path());
  c.train.eval_each_epoch = true;
  auto r = run(c, tmp.path() / "run");
  ASSERT_EQ(r.status, "done");
  EXPECT_EQ(r.step, 9);  // 3 epochs x 3 batches
  EXPECT_EQ(summary(tmp.path() / "run")["steps"], 9);
  std::vector<int64_t> evals;
  int64_t train_items = 0;
  for (const auto& e : events(tmp.path() / "run")) {
    if (e["kind"] == "eval") evals.push_back(e["step"].get<int64_t>());
    if (e["kind"] == "train") ++train_items;
  }
  EXPECT_EQ(evals, (std::vector<int64_t>{3, 6, 9}));
  EXPECT_EQ(train_items, 9);
  // Warm-up longer than the epochs' steps is refused before anything is written.
  c.train.warmup = 10;
  try {
    run(c, tmp.path() / "too_long");
    FAIL() << "no error";
  } catch (const RunError& e) {
    EXPECT_NE(std::string(e.what()).find("9 steps of train.epochs 3"), std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(fs::exists(tmp.path() / "too_long"));
}

// The automatic warm-up (train.warmup unset) of a run shorter than 100 steps is a tenth of it: of
// train.steps, or with train.epochs of the steps the epochs come to, known only once the data is
// loaded. 30 steps either way here: 3 warm-up steps, then the cosine decay.
TEST(Warmup, TheAutomaticOneScalesWithAShortRun) {
  for (const bool epochs : {false, true}) {
    TempDir tmp;
    auto c = vit_config(tmp.path());
    c.train.batch_size = 5;  // 10 batches per epoch
    c.train.warmup = runner::kAutoWarmup;
    if (!epochs) {
      c.train.epochs = 0;
      c.train.steps = 30;
    }
    ASSERT_EQ(run(c, tmp.path() / "run").status, "done") << epochs;
    const json s = summary(tmp.path() / "run");
    EXPECT_EQ(s["steps"], 30) << epochs;
    EXPECT_EQ(s["warmup"], 3) << epochs;
    std::vector<double> lr;
    for (const auto& e : events(tmp.path() / "run")) {
      if (e["kind"] == "train") lr.push_back(e["lr"].get<double>());
    }
    ASSERT_EQ(lr.size(), 30u);
    EXPECT_DOUBLE_EQ(lr[0], c.train.lr / 3) << epochs;
    EXPECT_DOUBLE_EQ(lr[1], c.train.lr * 2 / 3) << epochs;
    EXPECT_DOUBLE_EQ(lr[2], c.train.lr) << epochs;
    EXPECT_DOUBLE_EQ(lr[3], c.train.lr) << epochs;  // the decay's first step: cos(0)
    EXPECT_LT(lr[4], c.train.lr) << epochs;
  }
}

// Dropout everywhere, an output bias, epochs; killed after step 5 and resumed from the checkpoint
// of step 4: the same metrics and events as an uninterrupted run, bit for bit. Dropout changes
// the result, and a second fresh run repeats the first.
TEST(Recipes, DropoutAndEpochsResumeBitIdentically) {
  TempDir tmp;
  auto c = vit_config(tmp.path());
  c.attention.attn_dropout = 0.1;
  c.attention.out_dropout = 0.1;
  c.attention.out_bias = true;
  c.model.mlp_dropout = 0.2;
  for (const char* variant : {"gqa", "dgqa", "pgqa"}) {
    c.attention.variant = variant;
    c.attention.faithful = std::string(variant) != "gqa";
    c.attention.ema_window = 2;
    const fs::path whole = tmp.path() / (std::string(variant) + "_whole");
    const fs::path split = tmp.path() / (std::string(variant) + "_split");
    auto a = run(c, whole);
    ASSERT_EQ(a.status, "done");
    ASSERT_EQ(run(c, split, /*stop_after=*/5).status, "stopped");
    auto b = run(c, split);
    EXPECT_EQ(b.resumed_from, 4) << variant;
    EXPECT_EQ(a.final, b.final) << variant;
    EXPECT_EQ(events(whole), events(split)) << variant;
  }
  c.attention.variant = "gqa";
  c.attention.faithful = false;
  auto again = run(c, tmp.path() / "again");
  EXPECT_EQ(again.final, run(c, tmp.path() / "gqa_fresh").final);
  auto plain = c;
  plain.attention.attn_dropout = plain.attention.out_dropout = plain.model.mlp_dropout = 0.0;
  EXPECT_NE(again.final, run(plain, tmp.path() / "plain").final);
}

// The authors' loop passes the batch index within the epoch to faithful dgqa: after 3 epochs of 3
// batches its counter is at 3; the robust counter counts all 9 training steps.
TEST(Epochs, FaithfulDgqaCountsBatchesWithinTheEpoch) {
  TempDir tmp;
  auto c = vit_config(tmp.path());
  c.attention.variant = "dgqa";
  for (bool faithful : {true, false}) {
    c.attention.faithful = faithful;
    const fs::path dir = tmp.path() / (faithful ? "faithful" : "robust");
    ASSERT_EQ(run(c, dir).status, "done");
    VitOptions o;
    o.channels = 1;
    o.image = 8;
    o.patch = 4;
    o.classes = 10;
    o.dim = 16;
    o.depth = 2;
    o.hidden = mlp_hidden(c.model, /*swiglu=*/false);
    o.attention = attention_options(c.attention, 16, 4, c.model.norm_eps, /*causal=*/false);
    Vit vit(o);
    torch::serialize::InputArchive archive;
    archive.load_from((dir / "checkpoint" / "model.pt").string());
    vit->load(archive);
    for (const auto& layer : attention_layers(*vit)) {
      EXPECT_EQ(layer->step.item<int64_t>(), faithful ? 3 : 9) << "faithful=" << faithful;
    }
  }
}

}  // namespace
}  // namespace ablate::experiments
