// The s2s task: T5's relative position buckets against T5's own values, the encoder-decoder's
// causality and padding, its ensemble form, and training, resuming and uptraining at sites.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <algorithm>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "ablate/core/members.h"
#include "ablate/experiments/models.h"
#include "ablate/experiments/rouge.h"
#include "ablate/experiments/s2s_model.h"
#include "ablate/experiments/train.h"
#include "ablate/runner/config.h"
#include "ablate/testing/temp_dir.h"
#include "run_record.h"
#include "task_data.h"
#include "train_test_support.h"

namespace ablate::experiments {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;
using ablate::testing::TempDir;
using test_helpers::read_events;
using test_helpers::read_json;
using test_helpers::run_quietly;
using test_helpers::stable;

// Buckets of key - query = rel for these rel values, from HuggingFace's T5
// _relative_position_bucket (transformers, modeling_t5.py) run once with PyTorch 2.11:
//   rel = torch.tensor([-300, -128, ..., 300]); bucket(rel, bidirectional, n, max_distance)
const std::vector<int64_t> kRel = {-300, -128, -127, -64, -33, -32, -31, -16, -15,
                                   -9,   -8,   -7,   -1,  0,   1,   7,   8,   9,
                                   15,   16,   31,   32,  33,  64,  127, 128, 300};
const std::vector<int64_t> kBi32 = {15, 15, 15, 14, 12, 12, 11, 10, 9,  8,  8,  7,  1, 0,
                                    17, 23, 24, 24, 25, 26, 27, 28, 28, 30, 31, 31, 31};
const std::vector<int64_t> kCausal32 = {31, 31, 31, 26, 21, 21, 21, 16, 15, 9, 8, 7, 1, 0,
                                        0,  0,  0,  0,  0,  0,  0,  0,  0,  0, 0, 0, 0};
const std::vector<int64_t> kBi8Max20 = {3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 1, 0,
                                        5, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7};
const std::vector<int64_t> kCausal8Max20 = {7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 5, 5, 1, 0,
                                            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};

TEST(RelativePositions, BucketsAreT5s) {
  // One query at position 300 against keys 0..600: key j is at relative position j - 300.
  auto check = [](bool bidirectional, int64_t n, int64_t max_distance,
                  const std::vector<int64_t>& want) {
    auto b = relative_position_buckets(1, 601, bidirectional, n, max_distance, 300);
    for (size_t i = 0; i < kRel.size(); ++i) {
      EXPECT_EQ(b[0][kRel[i] + 300].item<int64_t>(), want[i])
          << "rel " << kRel[i] << " bidirectional " << bidirectional << " n " << n;
    }
  };
  check(true, 32, 128, kBi32);
  check(false, 32, 128, kCausal32);
  check(true, 8, 20, kBi8Max20);
  check(false, 8, 20, kCausal8Max20);
  // The table depends on the relative position only.
  auto a = relative_position_buckets(4, 6, true, 32, 128);
  EXPECT_TRUE(a.narrow(0, 1, 3).narrow(1, 1, 5).equal(a.narrow(0, 0, 3).narrow(1, 0, 5)));
}

core::AttentionOptions site(core::Variant v, bool causal, int64_t kv = 2) {
  return core::AttentionOptions(32, 4)
      .variant(v)
      .kv_heads(v == core::Variant::kMha ? 0 : kv)
      .causal(causal)
      .scale(core::ScoreScale::kNone);
}

S2sOptions small(core::Variant decoder_variant = core::Variant::kMha,
                 core::Variant cross_variant = core::Variant::kMha) {
  S2sOptions o;
  o.vocab = 40;
  o.pad = 30;
  o.dim = 32;
  o.depth = 2;
  o.hidden = 64;
  o.rel_buckets = 8;
  o.rel_max_distance = 20;
  o.encoder = site(core::Variant::kMha, false);
  o.decoder = site(decoder_variant, true);
  o.cross = site(cross_variant, false);
  return o;
}

TEST(S2sModel, DecoderIsCausalForEveryRobustVariantAtEverySite) {
  using V = core::Variant;
  for (V v : {V::kMha, V::kGqa, V::kMqa, V::kKdgqa, V::kDgqa, V::kPgqa, V::kWgqa}) {
    S2sOptions o = small(v, v);
    o.encoder = site(v, false);
    S2s model(o);
    init_parameters(*model, 3);
    EXPECT_EQ(s2s_causality_leak(model, 12, 10, 3), 0.0) << core::to_string(v);
  }
}

// The faithful variants leak where the issue says: kdgqa at the decoder's self-attention (its
// allocation reads later keys), pgqa at cross-attention (its noise statistics span every target
// position); faithful kdgqa at cross-attention allocates from the source, which is no leak.
TEST(S2sModel, TheCausalityCheckCatchesFaithfulVariantsThatLeakTheDecodersFuture) {
  auto leak = [](S2sOptions o) {
    S2s model(o);
    init_parameters(*model, 4);
    return s2s_causality_leak(model, 12, 12, 4);
  };
  // (Faithful kdgqa and dgqa at the decoder's self-attention leak by construction, but a token
  // perturbation need not move a rounded allocation; the config check refuses them by rule,
  // runner/src/parse_test.cpp.)
  S2sOptions pgqa_decoder = small(core::Variant::kPgqa);
  pgqa_decoder.decoder.faithful(true);
  EXPECT_GT(leak(pgqa_decoder), 0.0);
  S2sOptions pgqa_cross = small(core::Variant::kMha, core::Variant::kPgqa);
  pgqa_cross.cross.faithful(true);
  EXPECT_GT(leak(pgqa_cross), 0.0);
  S2sOptions kdgqa_cross = small(core::Variant::kMha, core::Variant::kKdgqa);
  kdgqa_cross.cross.faithful(true);
  EXPECT_EQ(leak(kdgqa_cross), 0.0);
}

// Padded source positions are hidden from the encoder and the cross-attention: a source with
// trailing padding gives the logits of the same source without it.
TEST(S2sModel, SourcePaddingIsInvisible) {
  S2s model(small(core::Variant::kGqa, core::Variant::kGqa));
  init_parameters(*model, 5);
  model->eval();
  torch::NoGradGuard no_grad;
  auto source = torch::tensor({{3, 7, 1, 9, 2}}, torch::kInt64);
  auto padded = torch::tensor({{3, 7, 1, 9, 2, 30, 30, 30}}, torch::kInt64);
  auto input = torch::tensor({{30, 4, 4, 8}}, torch::kInt64);
  auto a = model->forward(source, input), b = model->forward(padded, input);
  EXPECT_LT((a - b).abs().max().item<double>(), 1e-5);
  // And padding is not a no-op by accident: a different source changes the logits.
  auto other = torch::tensor({{3, 7, 1, 9, 5, 30, 30, 30}}, torch::kInt64);
  EXPECT_GT((model->forward(other, input) - b).abs().max().item<double>(), 1e-4);
}

// Each member of an ensemble computes what its single model computes, with tied and untied
// output, ReLU and gated-GELU MLPs and per-member relative position tables.
TEST(S2sModel, EnsembleMembersComputeTheirSingleModels) {
  for (bool gated : {false, true}) {
    S2sOptions o = small(core::Variant::kGqa, core::Variant::kKdgqa);
    o.gated_gelu = gated;
    o.tie_embeddings = !gated;
    std::vector<S2s> singles;
    S2sOptions stacked = o;
    stacked.members = 2;
    S2s ensemble(stacked);
    for (int64_t e = 0; e < 2; ++e) {
      singles.emplace_back(o);
      init_parameters(*singles.back(), 10 + e);
      {
        torch::NoGradGuard no_grad;  // non-zero relative tables, so a member mix-up shows
        for (auto& p : singles.back()->named_parameters()) {
          if (p.key().find("relative_bias") != std::string::npos) p.value().normal_(0.0, 0.5);
        }
      }
      core::copy_member_in(*ensemble, e, *singles.back());
    }
    std::vector<core::MemberRandom> random;
    for (int64_t e = 0; e < 2; ++e) {
      auto g = at::detail::createCPUGenerator(e);
      random.push_back({g, g});
    }
    for (auto& a : attention_layers(*ensemble)) a->set_member_random(random);
    ensemble->eval();
    torch::NoGradGuard no_grad;
    torch::manual_seed(1);
    auto source = torch::randint(30, {3, 6}, torch::kInt64);
    source[2][5] = 30;  // one padded position
    auto input = torch::randint(30, {3, 5}, torch::kInt64);
    auto both = ensemble->forward(torch::cat({source, source}), torch::cat({input, input}));
    for (int64_t e = 0; e < 2; ++e) {
      singles[e]->eval();
      auto alone = singles[e]->forward(source, input);
      EXPECT_LT((both.narrow(0, 3 * e, 3) - alone).abs().max().item<double>(), 1e-5)
          << "member " << e << " gated " << gated;
    }
  }
}

runner::Config s2s_config(const fs::path& corpus) {
  runner::Config c;
  c.task = "s2s";
  c.data.dataset = "text";
  c.data.path = corpus.string();
  c.data.seq_len = 24;
  c.model.dim = 32;
  c.model.depth = 2;
  c.model.heads = 4;
  c.attention.scale = "none";
  c.attention.rope = false;
  c.train.steps = 40;
  c.train.batch_size = 8;
  c.train.lr = 3e-3;
  c.train.warmup = 4;
  c.train.eval_every = 20;
  c.train.eval_batches = 2;
  c.train.checkpoint_every = 10;
  c.train.decode_examples = 4;
  c.train.device = "cpu";
  return c;
}

// train.eval_subset N: an intermediate evaluation's loss and decoding read the first N held-out
// examples; the last evaluation, the final metrics and training are those of a run without it.
TEST(S2sTrain, EvalSubsetReadsTheFirstExamplesAndKeepsTheFinalMetrics) {
  TempDir tmp;
  test_helpers::write_word_corpus(tmp.path() / "corpus.txt");
  runner::Config c = s2s_config(tmp.path() / "corpus.txt");
  c.train.eval_batches = 0;
  const auto data = load_data(c);
  const S2sShape shape = s2s_shape(*data);
  const int64_t held = data->held_out_examples();
  ASSERT_GT(held, 20);
  // A stand-in model that counts rows: greedy decoding calls it at every length 1 .. target_len
  // of the decoder input, the loss at target_len only.
  for (const int64_t subset : {int64_t{0}, int64_t{3}, int64_t{13}}) {
    SCOPED_TRACE(subset);
    int64_t first_step = 0, full_width = 0;
    auto count = [&](const torch::Tensor& x) {
      const int64_t L = x.size(1) - shape.source_len;
      if (L == 1) first_step += x.size(0);
      if (L == shape.target_len) full_width += x.size(0);
      return torch::zeros({x.size(0), L, shape.vocab});
    };
    c10::InferenceMode inference;
    data->evaluate(count, torch::kCPU, 1, subset);
    const int64_t decoded = subset > 0 ? std::min<int64_t>(subset, 4) : 4;  // decode_examples 4
    EXPECT_EQ(first_step, decoded);
    EXPECT_EQ(full_width - first_step, subset > 0 ? subset : held) << "the loss's examples";
  }
  c.train.eval_batches = 2;  // of batch_size 8
  EXPECT_EQ(load_data(c)->held_out_examples(), 16);

  c.train.eval_subset = 0;
  const TrainResult whole = run_quietly(c, tmp.path() / "whole");
  c.train.eval_subset = 6;
  const TrainResult part = run_quietly(c, tmp.path() / "subset");
  ASSERT_EQ(whole.status, "done");
  ASSERT_EQ(part.status, "done");
  EXPECT_EQ(whole.final, part.final);  // to the bit
  EXPECT_EQ(read_json(tmp.path() / "subset" / "summary.json")["best"],
            read_json(tmp.path() / "subset" / "summary.json")["final"]);
  const auto a = read_events(tmp.path() / "whole"), b = read_events(tmp.path() / "subset");
  ASSERT_EQ(a.size(), b.size());
  int64_t subsets = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i]["kind"] == "train") {
      EXPECT_EQ(stable(a[i]), stable(b[i])) << i;
    }
    if (a[i]["kind"] != "eval") continue;
    if (b[i]["step"] == c.train.steps) {
      EXPECT_EQ(a[i], b[i]) << "the last evaluation is of the whole split";
    } else {
      EXPECT_EQ(b[i]["subset"], 6);
      ++subsets;
    }
  }
  EXPECT_EQ(subsets, 1);  // step 20 of 40
}

// summary.json's best: the highest ROUGE and exact match (higher is better, as the report reads
// the names), the lowest loss and perplexity. Before, only names with "acc" counted as
// higher-is-better, so the best val_rouge1 of an s2s run was its lowest. A name that says
// neither direction has no best; subset evaluations count for neither best nor final.
TEST(RunRecordBest, EachMetricFollowsItsNamesDirection) {
  TempDir tmp;
  runner::Config c;
  TrainOptions options;
  options.run_dir = (tmp.path() / "run").string();
  options.quiet = true;
  RunFacts facts;
  facts.hash = "0123456789abcdef";
  facts.unit = "tokens";
  facts.device = "cpu";
  facts.steps = 3;
  RunRecord record(c, options, facts, "");
  record.open();
  record.start_fresh();
  record.begin(torch::kCPU);
  auto eval = [](double loss, double rouge, double match, double other) {
    return std::map<std::string, double>{{"val_loss", loss},
                                         {"val_ppl", std::exp(loss)},
                                         {"val_rouge1", rouge},
                                         {"val_exact_match", match},
                                         {"val_something", other}};
  };
  record.record_eval(1, eval(2.0, 0.30, 0.10, 5), 0);
  record.record_eval(2, eval(1.5, 0.50, 0.05, 6), 0);
  record.record_eval(3, eval(1.0, 0.90, 0.90, 9), 7);  // a subset: neither best nor final
  record.record_eval(4, eval(1.8, 0.40, 0.20, 7), 0);
  record.write_summary("done", 4);
  const auto summary = read_json(tmp.path() / "run" / "summary.json");
  const auto& best = summary["best"];
  EXPECT_EQ(best["val_loss"].get<double>(), 1.5);
  EXPECT_EQ(best["val_ppl"].get<double>(), std::exp(1.5));
  EXPECT_EQ(best["val_rouge1"].get<double>(), 0.50);
  EXPECT_EQ(best["val_exact_match"].get<double>(), 0.20);
  EXPECT_FALSE(best.contains("val_something")) << best.dump();
  EXPECT_EQ(summary["final"]["val_rouge1"].get<double>(), 0.40);
  EXPECT_EQ(summary["final"]["val_something"].get<double>(), 7);
}

TEST(S2sTrain, SpanCorruptionTrainsBelowTheUnigramBaselineAndResumesExactly) {
  TempDir tmp;
  test_helpers::write_word_corpus(tmp.path() / "corpus.txt");
  runner::Config c = s2s_config(tmp.path() / "corpus.txt");
  c.train.steps = 120;
  c.train.eval_every = 60;
  const TrainResult r = run_quietly(c, tmp.path() / "run");
  ASSERT_EQ(r.status, "done");
  for (const char* k : {"val_loss", "val_bpb", "val_loss_unigram", "val_exact_match", "val_rouge1",
                        "val_rouge2", "val_rougeL"}) {
    ASSERT_TRUE(r.final.count(k)) << k;
  }
  // The corpus repeats nine words: a model that reads the source beats token frequencies.
  EXPECT_LT(r.final.at("val_loss"), r.final.at("val_loss_unigram"));
  for (const char* k : {"val_exact_match", "val_rouge1", "val_rouge2", "val_rougeL"}) {
    EXPECT_GE(r.final.at(k), 0.0) << k;
    EXPECT_LE(r.final.at(k), 1.0) << k;
  }
  const json summary = read_json(tmp.path() / "run" / "summary.json");
  EXPECT_EQ(summary["causality"], "causal");
  // What decoding costs: 2 decoder layers x keys and values x 4 heads x 8 x 4 bytes (fp32), per
  // target token and, for cross-attention, per source token; and a measured speed.
  EXPECT_EQ(summary["kv_cache_bytes_per_token"], 2 * 2 * 4 * 8 * 4);
  EXPECT_EQ(summary["kv_cache_bytes_per_source_token"], 2 * 2 * 4 * 8 * 4);
  EXPECT_GT(summary["decode_throughput"].get<double>(), 0.0);
  // Stopped after 50 steps and resumed: the same events and final metrics, bit for bit.
  ASSERT_EQ(run_quietly(c, tmp.path() / "resumed", 50).status, "stopped");
  const TrainResult resumed = run_quietly(c, tmp.path() / "resumed");
  EXPECT_EQ(resumed.final, r.final);
  const auto a = read_events(tmp.path() / "run"), b = read_events(tmp.path() / "resumed");
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(stable(a[i]), stable(b[i])) << i;
}

TEST(S2sTrain, PairsTrainOnAUsersTsvAndALeakingFaithfulVariantIsRefused) {
  TempDir tmp;
  {
    std::ofstream out(tmp.path() / "pairs.tsv");
    const char* words[] = {"red", "green", "blue", "cat", "dog", "sun"};
    for (int i = 0; i < 120; ++i) {
      out << words[i % 6] << " " << words[(i / 6) % 6] << "\t" << words[(i / 6) % 6] << " "
          << words[i % 6] << "\n";  // the target swaps the two words
    }
  }
  runner::Config c = s2s_config(tmp.path() / "corpus.txt");
  c.data.dataset = "pairs";
  c.data.path = (tmp.path() / "pairs.tsv").string();
  c.data.seq_len = 16;
  c.data.target_len = 16;
  const TrainResult r = run_quietly(c, tmp.path() / "run");
  ASSERT_EQ(r.status, "done");
  EXPECT_LT(r.final.at("val_loss"), r.final.at("val_loss_unigram"));
  EXPECT_TRUE(r.final.count("val_rougeL"));

  runner::Config leaky = c;
  leaky.attention.variant = "pgqa";
  leaky.attention.kv_heads = 2;
  leaky.attention.faithful = true;
  leaky.attention.sites = "cross";
  leaky.attention.allow_noncausal = true;  // parse would refuse it without
  const TrainResult allowed = run_quietly(leaky, tmp.path() / "leaky");
  EXPECT_EQ(allowed.status, "done");
  const json summary = read_json(tmp.path() / "leaky" / "summary.json");
  EXPECT_NE(summary["causality"].get<std::string>().find("leaks the future"), std::string::npos)
      << summary["causality"];
  leaky.attention.allow_noncausal = false;
  EXPECT_THROW(run_quietly(leaky, tmp.path() / "refused"), std::exception);
  EXPECT_FALSE(fs::exists(tmp.path() / "refused" / "events.jsonl"));
}

// Greedy decoding, exact match and ROUGE through the task's own evaluation, with an oracle in
// place of the model: logits that put all mass on the reference target token give exact match 1
// and ROUGE 1; an oracle that says one wrong word gives what rouge_f1 says for that text.
TEST(S2sData, DecodingMetricsOfAnOracleAreExact) {
  TempDir tmp;
  std::vector<std::pair<std::string, std::string>> pairs;
  {
    std::ofstream out(tmp.path() / "pairs.jsonl");
    for (int i = 0; i < 40; ++i) {
      const std::string source = "item " + std::to_string(i) + " of the list";
      const std::string target = "the list has item " + std::to_string(i);
      out << json{{"source", source}, {"target", target}}.dump() << "\n";
      pairs.emplace_back(source, target);
    }
  }
  runner::Config c = s2s_config(tmp.path() / "unused");
  c.data.dataset = "pairs";
  c.data.path = (tmp.path() / "pairs.jsonl").string();
  c.data.seq_len = 32;
  c.data.target_len = 32;
  c.train.decode_examples = 4;
  auto data = load_data(c);
  const S2sShape shape = s2s_shape(*data);
  const int64_t eos = shape.pad + 1;
  // The reference target of a source row (its bytes up to eos), optionally with "list" replaced.
  auto oracle = [&](bool wrong) {
    return [&, wrong](const torch::Tensor& x) {
      const int64_t R = x.size(0), L = x.size(1) - shape.source_len;
      auto logits = torch::full({R, L, shape.vocab}, -30.0);
      for (int64_t r = 0; r < R; ++r) {
        std::string source;
        for (int64_t i = 0; i < shape.source_len; ++i) {
          const int64_t t = x[r][i].item<int64_t>();
          if (t == eos) break;
          source += static_cast<char>(t);
        }
        std::string target;
        for (const auto& [s, t] : pairs) {
          if (s == source) target = t;
        }
        EXPECT_FALSE(target.empty()) << source;
        if (wrong) target.replace(target.find("list"), 4, "menu");
        for (int64_t i = 0; i < L; ++i) {
          const int64_t next =
              i < static_cast<int64_t>(target.size()) ? static_cast<unsigned char>(target[i]) : eos;
          logits[r][i][next] = 30.0;
        }
      }
      return logits;
    };
  };
  for (int64_t members : {1, 2}) {
    const auto right = data->evaluate(oracle(false), torch::kCPU, members, 0);
    ASSERT_EQ(right.size(), static_cast<size_t>(members));
    for (const auto& m : right) {
      EXPECT_EQ(m.at("val_exact_match"), 1.0);
      EXPECT_EQ(m.at("val_rouge1"), 1.0);
      EXPECT_EQ(m.at("val_rougeL"), 1.0);
      EXPECT_LT(m.at("val_loss"), 1e-6);
    }
    const auto wrong = data->evaluate(oracle(true), torch::kCPU, members, 0);
    // The held-out pairs are every tenth (val_fraction 0.1): 9, 19, 29, 39.
    double r1 = 0.0, r2 = 0.0;
    for (int i : {9, 19, 29, 39}) {
      std::string guess = pairs[i].second;
      guess.replace(guess.find("list"), 4, "menu");
      r1 += rouge_f1(pairs[i].second, guess).rouge1 / 4.0;
      r2 += rouge_f1(pairs[i].second, guess).rouge2 / 4.0;
    }
    EXPECT_EQ(wrong[0].at("val_exact_match"), 0.0);
    EXPECT_NEAR(wrong[0].at("val_rouge1"), r1, 1e-12);
    EXPECT_NEAR(wrong[0].at("val_rouge2"), r2, 1e-12);
    EXPECT_LT(r2, r1);
  }
}

// Span corruption over GPT-2 token shards: the vocabulary's pad, eos and sentinels come after
// GPT-2's 50257 ids, and every id of the data stays below them.
TEST(S2sData, SpanCorruptionOverTokenShards) {
  TempDir tmp;
  const fs::path shard = tmp.path() / "train_000.bin";
  {
    std::vector<int32_t> header(256, 0);
    header[0] = 20240520;
    header[1] = 1;
    header[2] = 4000;
    std::ofstream out(shard, std::ios::binary);
    out.write(reinterpret_cast<const char*>(header.data()), 1024);
    for (int i = 0; i < 4000; ++i) {
      const uint16_t t = static_cast<uint16_t>((i * 7919) % 50257);
      out.write(reinterpret_cast<const char*>(&t), 2);
    }
  }
  runner::Config c = s2s_config(shard);
  c.data.dataset = "bin";
  c.data.seq_len = 40;
  auto data = load_data(c);
  const S2sShape shape = s2s_shape(*data);
  EXPECT_EQ(shape.vocab, 50304);
  EXPECT_EQ(shape.pad, 50257);
  const Batch b = data->train_batch(0);
  const auto source = b.input.narrow(1, 0, shape.source_len);
  // Every source row holds its masked spans' sentinels (ids above eos) and ends in eos.
  EXPECT_TRUE(source.gt(50258).any(1).all().item<bool>());
  EXPECT_TRUE(source.select(1, shape.source_len - 1).eq(50258).all().item<bool>());
  EXPECT_TRUE(b.target.lt(shape.vocab).all().item<bool>());
  // A vocabulary without room for the sentinels is refused with the keys to change.
  c.model.vocab = 50260;
  try {
    load_data(c);
    ADD_FAILURE() << "no error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("model.vocab"), std::string::npos) << e.what();
  }
}

// The WGQA recipe: an MHA pretrain stage, then gqa (mean pool) converted at the decoder's sites
// only. The encoder's attention is the parent's, unchanged; the decoder's key projection is the
// mean of the parent's heads.
TEST(S2sTrain, UptrainingConvertsOnlyTheConfiguredSites) {
  TempDir tmp;
  test_helpers::write_word_corpus(tmp.path() / "corpus.txt");
  runner::Config parent = s2s_config(tmp.path() / "corpus.txt");
  parent.train.steps = 20;
  ASSERT_EQ(run_quietly(parent, tmp.path() / "parent").status, "done");
  runner::Config child = parent;
  child.attention.variant = "gqa";
  child.attention.kv_heads = 2;
  child.init.from = (tmp.path() / "parent").string();
  child.init.convert = "mean_pool";
  child.train.steps = 1;
  child.train.lr = 1e-12;  // one step that moves nothing measurable
  child.train.warmup = 0;
  ASSERT_EQ(run_quietly(child, tmp.path() / "child").status, "done");
  torch::serialize::InputArchive pa, ca;
  pa.load_from((tmp.path() / "parent" / "checkpoint" / "model.pt").string());
  ca.load_from((tmp.path() / "child" / "checkpoint" / "model.pt").string());
  // A module's archive nests its submodules' archives: "a.b.c" is c in b's archive in a's.
  auto read = [](torch::serialize::InputArchive& top, const std::string& key) {
    torch::serialize::InputArchive* a = &top;
    std::vector<torch::serialize::InputArchive> nested;
    nested.reserve(8);
    size_t start = 0, dot;
    while ((dot = key.find('.', start)) != std::string::npos) {
      nested.emplace_back();
      a->read(key.substr(start, dot - start), nested.back());
      a = &nested.back();
      start = dot + 1;
    }
    torch::Tensor t;
    a->read(key.substr(start), t);
    return t;
  };
  auto enc_p = read(pa, "encoder.0.attention.k_proj.weight");
  auto enc_c = read(ca, "encoder.0.attention.k_proj.weight");
  ASSERT_EQ(enc_p.sizes(), enc_c.sizes());  // still mha: 4 heads of 8
  EXPECT_LT((enc_p - enc_c).abs().max().item<double>(), 1e-6);
  auto dec_p = read(pa, "decoder.0.self_attention.k_proj.weight");  // [32, 32]
  auto dec_c = read(ca, "decoder.0.self_attention.k_proj.weight");  // [16, 32]
  ASSERT_EQ(dec_c.size(0), 16);
  auto pooled = dec_p.view({2, 2, 8, 32}).mean(1).reshape({16, 32});
  EXPECT_LT((pooled - dec_c).abs().max().item<double>(), 1e-6);
  auto cross_c = read(ca, "decoder.1.cross_attention.v_proj.weight");
  EXPECT_EQ(cross_c.size(0), 16);
}

}  // namespace
}  // namespace ablate::experiments
