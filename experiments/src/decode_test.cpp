// Decoding with KV caches gives the tokens and logits of full recomputation, for the lm and the
// s2s model and every variant that decodes with a cache; and what the cache holds per token.
#include "ablate/experiments/decode.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "ablate/experiments/models.h"
#include "ablate/experiments/s2s_model.h"

namespace ablate::experiments {
namespace {

using V = core::Variant;

core::AttentionOptions attention(V v, bool causal) {
  auto o = core::AttentionOptions(64, 8).variant(v).causal(causal);
  if (v == V::kGkva) o.q_heads(2);
  if (v == V::kGqkva) o.q_groups(2).kv_groups(4);
  if (v != V::kMha && v != V::kMqa && v != V::kMkva && v != V::kGkva && v != V::kGqkva) {
    o.kv_heads(2);  // G = H / 4
  }
  if (v == V::kWgqa) o.weight_form(core::WeightForm::kCol).weight_init(core::WeightInit::kRandom);
  return o;
}

const std::vector<V> kVariants = {V::kMha,   V::kMqa,   V::kGqa,  V::kMkva, V::kGkva,
                                  V::kGqkva, V::kKdgqa, V::kDgqa, V::kPgqa, V::kWgqa};

// A few training forwards, so dynamic allocations are not the uniform start.
template <typename Model, typename Forward>
void warm_up(Model& model, Forward forward) {
  model->train();
  torch::NoGradGuard no_grad;
  for (int i = 0; i < 4; ++i) forward(i);
}

void expect_same(const Decoded& cached, const Decoded& full, const std::string& what) {
  EXPECT_TRUE(cached.tokens.equal(full.tokens)) << what;
  EXPECT_LT((cached.logits - full.logits).abs().max().item<double>(), 1e-4) << what;
}

TEST(Decode, LmCachedDecodingGivesTheTokensAndLogitsOfFullRecomputation) {
  for (V v : kVariants) {
    LmOptions o;
    o.vocab = 50;
    o.dim = 64;
    o.depth = 2;
    o.hidden = 128;
    o.attention = attention(v, true).qk_norm(true).rope(true).ema_window(2);
    Lm lm(o);
    init_parameters(*lm, 1);
    warm_up(lm, [&](int i) {
      torch::manual_seed(i);
      lm->forward(torch::randint(50, {2, 12}, torch::kInt64));
    });
    torch::manual_seed(7);
    auto prompt = torch::randint(50, {3, 5}, torch::kInt64);
    expect_same(lm_greedy(*lm, prompt, 12, true), lm_greedy(*lm, prompt, 12, false),
                core::to_string(v));
  }
}

TEST(Decode, S2sCachedDecodingGivesTheTokensAndLogitsOfFullRecomputation) {
  for (V v : kVariants) {
    for (bool every_site : {false, true}) {
      S2sOptions o;
      o.vocab = 60;
      o.pad = 50;
      o.dim = 64;
      o.depth = 2;
      o.hidden = 128;
      o.rel_buckets = 8;
      o.rel_max_distance = 16;
      o.encoder = attention(every_site ? v : V::kMha, false).scale(core::ScoreScale::kNone);
      o.decoder = attention(v, true).scale(core::ScoreScale::kNone).ema_window(2);
      o.cross = attention(v, false).scale(core::ScoreScale::kNone).ema_window(2);
      S2s model(o);
      init_parameters(*model, 2, 1.0);
      warm_up(model, [&](int i) {
        torch::manual_seed(i);
        model->forward(torch::randint(50, {2, 9}, torch::kInt64),
                       torch::randint(50, {2, 6}, torch::kInt64));
      });
      torch::manual_seed(8);
      auto source = torch::randint(50, {3, 9}, torch::kInt64);
      source[1][8] = 50;  // padding is hidden in both
      source[1][7] = 50;
      expect_same(s2s_greedy(*model, source, 10, true), s2s_greedy(*model, source, 10, false),
                  core::to_string(v) + (every_site ? " at every site" : ""));
    }
  }
}

TEST(Decode, CacheBytesPerTokenFollowTheKeyValueHeads) {
  auto lm_with = [](V v) {
    LmOptions o;
    o.dim = 64;
    o.depth = 3;
    o.attention = attention(v, true);
    return Lm(o);
  };
  Lm mha = lm_with(V::kMha), gqa = lm_with(V::kGqa), wgqa = lm_with(V::kWgqa);
  // 3 layers x (keys + values) x G heads x d_h 8 x 4 bytes.
  EXPECT_EQ(kv_cache_bytes_per_token(*mha, torch::kFloat), 3 * 2 * 8 * 8 * 4);
  EXPECT_EQ(kv_cache_bytes_per_token(*gqa, torch::kFloat), 3 * 2 * 2 * 8 * 4);
  EXPECT_EQ(kv_cache_bytes_per_token(*wgqa, torch::kFloat), 3 * 2 * 2 * 8 * 4);  // folded
  EXPECT_EQ(kv_cache_bytes_per_token(*gqa, torch::kBFloat16), 3 * 2 * 2 * 8 * 2);
  EXPECT_EQ(kv_cache_bytes_per_source_token(*gqa, torch::kFloat), 0);
  // The cache a decode actually fills holds exactly that.
  std::vector<core::KvCache> caches;
  torch::NoGradGuard no_grad;
  gqa->eval();
  gqa->decode_step(torch::zeros({1, 7}, torch::kInt64), caches);
  int64_t held = 0;
  for (const auto& c : caches) held += c.bytes();
  EXPECT_EQ(held, 7 * kv_cache_bytes_per_token(*gqa, torch::kFloat));

  S2sOptions o;
  o.dim = 64;
  o.depth = 2;
  o.encoder = attention(V::kMha, false);
  o.decoder = attention(V::kGqa, true);
  o.cross = attention(V::kMqa, false);
  S2s s2s(o);
  EXPECT_EQ(kv_cache_bytes_per_token(*s2s, torch::kFloat), 2 * 2 * 2 * 8 * 4);
  EXPECT_EQ(kv_cache_bytes_per_source_token(*s2s, torch::kFloat), 2 * 2 * 1 * 8 * 4);
  const DecodeSpeed speed = measure_decode(*s2s, 2, 6, 4, torch::kCPU);
  EXPECT_GT(speed.tokens_per_s, 0.0);
  EXPECT_EQ(speed.steps, 4);
}

}  // namespace
}  // namespace ablate::experiments
