#include "ablate/core/attention.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <sstream>

#include "test_support.h"

namespace ablate::core {
namespace {

using testing::copy_parameters;
using testing::max_abs_diff;
using testing::random_input;
using testing::randomize;

AttentionOptions opts(Variant v, int64_t dim = 32, int64_t heads = 4) {
  return AttentionOptions(dim, heads).variant(v);
}

int64_t count_parameters(torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

std::string error_of(const AttentionOptions& o) {
  try {
    Attention m(o);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

// Every static variant, with every option that changes the computation, against the naive
// per-head implementation.
TEST(Attention, StaticVariantsMatchNaivePerHeadAttention) {
  std::vector<AttentionOptions> cases = {
      opts(Variant::kMha),
      opts(Variant::kGqa).kv_heads(2),
      opts(Variant::kMqa),
      opts(Variant::kMkva),
      opts(Variant::kGkva, 48, 6).q_heads(3),
      opts(Variant::kGqkva, 48, 6).q_groups(2).kv_groups(3),
      opts(Variant::kGqkva, 48, 6).q_groups(3).kv_groups(2),
  };
  for (auto o : cases) {
    for (bool extras : {false, true}) {
      o.bias(extras).qk_norm(extras).rope(extras).causal(extras);
      Attention m(o);
      randomize(*m, 11);
      m->to(torch::kDouble);
      auto x = random_input(2, 6, o.dim(), 12, torch::kDouble);
      auto diff = max_abs_diff(m->forward(x), testing::naive_attention(*m, x));
      EXPECT_LT(diff, 1e-10) << *m << " extras=" << extras;
    }
  }
}

// T5's conventions: unscaled scores, an additive bias per head (relative positions), and
// cross-attention to an encoder's output; each against the naive per-head loops.
TEST(Attention, CrossAttentionBiasAndUnscaledScoresMatchNaiveAttention) {
  std::vector<AttentionOptions> cases = {
      opts(Variant::kMha),
      opts(Variant::kGqa).kv_heads(2),
      opts(Variant::kMqa),
      opts(Variant::kGqkva, 48, 6).q_groups(2).kv_groups(3),
  };
  for (auto o : cases) {
    for (bool cross : {false, true}) {
      for (auto scale : {ScoreScale::kInvSqrtDh, ScoreScale::kNone}) {
        o.scale(scale).bias(true).qk_norm(true).causal(!cross).rope(!cross);
        Attention m(o);
        randomize(*m, 5);
        m->to(torch::kDouble);
        auto x = random_input(2, 5, o.dim(), 6, torch::kDouble);
        auto memory = cross ? random_input(2, 7, o.dim(), 7, torch::kDouble) : torch::Tensor();
        const int64_t Sk = cross ? 7 : 5;
        torch::manual_seed(8);
        // One bias row per batch element; and -inf on the last key of element 1 (padding).
        auto bias = torch::randn({2, o.heads(), 5, Sk}, torch::kDouble);
        bias[1].select(-1, Sk - 1).fill_(-INFINITY);
        auto diff = max_abs_diff(m->forward(x, memory, bias),
                                 testing::naive_attention(*m, x, memory, bias));
        EXPECT_LT(diff, 1e-10) << *m << " cross=" << cross;
        // A bias shared by the batch broadcasts.
        auto shared = bias.narrow(0, 0, 1);
        diff = max_abs_diff(m->forward(x, memory, shared),
                            testing::naive_attention(*m, x, memory, shared));
        EXPECT_LT(diff, 1e-10) << *m << " cross=" << cross << " shared bias";
      }
    }
  }
}

TEST(Attention, UnscaledScoresDifferFromScaledOnes) {
  Attention scaled(opts(Variant::kMha)), unscaled(opts(Variant::kMha).scale(ScoreScale::kNone));
  copy_parameters(*scaled, *unscaled);
  auto x = random_input(2, 5, 32, 3);
  EXPECT_GT(max_abs_diff(scaled->forward(x), unscaled->forward(x)), 1e-3);
}

TEST(Attention, CrossAttentionRefusesCausalAndMismatchedShapes) {
  Attention causal(opts(Variant::kMha).causal(true));
  auto x = random_input(2, 5, 32, 3);
  EXPECT_THROW(causal->forward(x, random_input(2, 4, 32, 4)), std::invalid_argument);
  Attention cross(opts(Variant::kMha));
  EXPECT_THROW(cross->forward(x, random_input(3, 4, 32, 4)), std::invalid_argument);
  EXPECT_THROW(cross->forward(x, random_input(2, 4, 32, 4), torch::zeros({2, 4, 5, 5})),
               std::invalid_argument);  // the bias must span the memory's 4 keys
}

// Dynamic variants at a cross-attention site allocate from the memory's keys: changing the
// decoder-side input leaves the allocation alone, changing the memory moves it.
TEST(Attention, DynamicCrossAttentionAllocatesFromTheMemorysKeys) {
  Attention m(opts(Variant::kKdgqa, 32, 8).kv_heads(4).faithful(true));
  randomize(*m, 2);
  auto memory = random_input(2, 6, 32, 1);
  memory.narrow(2, 0, 8).mul_(6.0);  // key heads of unequal norm
  m->forward(random_input(2, 5, 32, 3), memory);
  auto first = testing::to_vector(m->allocation());
  m->forward(random_input(2, 5, 32, 4) * 10.0, memory);
  EXPECT_EQ(testing::to_vector(m->allocation()), first);
  int64_t total = 0;
  for (int64_t c : first) total += c;
  EXPECT_EQ(total, 8);
}

// Decoding with a cache gives, position by position, what the whole sequence's forward gives,
// storing only the layer's own key/value heads (G, not H).
TEST(Attention, CachedDecodingEqualsFullRecomputation) {
  std::vector<AttentionOptions> cases = {
      opts(Variant::kMha),
      opts(Variant::kGqa).kv_heads(2),
      opts(Variant::kMqa),
      opts(Variant::kMkva),
      opts(Variant::kGkva, 48, 6).q_heads(3),
      opts(Variant::kGqkva, 48, 6).q_groups(2).kv_groups(3),
      opts(Variant::kKdgqa, 32, 8).kv_heads(4),
      opts(Variant::kDgqa, 32, 8).kv_heads(4).ema_window(2),
      opts(Variant::kPgqa).kv_heads(2),  // robust: no noise at eval
      opts(Variant::kWgqa)
          .kv_heads(2)
          .weight_form(WeightForm::kRow)
          .weight_init(WeightInit::kRandom),
  };
  for (auto o : cases) {
    o.causal(true).rope(true).qk_norm(true).bias(true);
    Attention m(o);
    randomize(*m, 21);
    m->to(torch::kDouble);
    if (is_dynamic(o.variant())) {  // a few training steps so the allocation is not uniform
      m->train();
      for (int i = 0; i < 5; ++i) m->forward(random_input(2, 9, o.dim(), 30 + i, torch::kDouble));
    }
    m->eval();
    torch::NoGradGuard no_grad;
    auto x = random_input(2, 9, o.dim(), 22, torch::kDouble);
    auto full = m->forward(x);
    KvCache cache;
    // A prompt of 3 positions at once, then one position at a time.
    std::vector<torch::Tensor> parts = {m->decode_step(x.narrow(1, 0, 3), cache)};
    for (int64_t t = 3; t < 9; ++t) parts.push_back(m->decode_step(x.narrow(1, t, 1), cache));
    EXPECT_LT(max_abs_diff(torch::cat(parts, 1), full), 1e-10) << *m;
    EXPECT_EQ(cache.length(), 9) << *m;
    EXPECT_EQ(cache.k.size(1), m->layout().n_kv) << *m;
    EXPECT_EQ(cache.bytes(), 2 * 2 * 9 * kv_cache_bytes_per_token(o, torch::kDouble) / 2) << *m;
  }
  // G = H / 4 holds a quarter of MHA's cache.
  EXPECT_EQ(kv_cache_bytes_per_token(opts(Variant::kGqa, 64, 8).kv_heads(2), torch::kFloat) * 4,
            kv_cache_bytes_per_token(opts(Variant::kMha, 64, 8), torch::kFloat));
  EXPECT_EQ(kv_cache_bytes_per_token(opts(Variant::kMha, 64, 8), torch::kBFloat16), 2 * 64 * 2);
}

TEST(Attention, CachedCrossAttentionComputesTheMemoryOnce) {
  Attention m(opts(Variant::kGqa).kv_heads(2).qk_norm(true));
  randomize(*m, 23);
  m->eval();
  torch::NoGradGuard no_grad;
  auto x = random_input(2, 4, 32, 24), memory = random_input(2, 7, 32, 25);
  torch::manual_seed(26);
  auto bias = torch::randn({2, 1, 1, 7});
  auto full = m->forward(x, memory, bias);
  KvCache cache;
  std::vector<torch::Tensor> parts;
  for (int64_t t = 0; t < 4; ++t)
    parts.push_back(m->decode_step(x.narrow(1, t, 1), cache, memory, bias));
  EXPECT_LT(max_abs_diff(torch::cat(parts, 1), full), 1e-5);
  EXPECT_EQ(cache.length(), 7);  // the memory's keys, once
  Attention noisy(opts(Variant::kPgqa).kv_heads(2).noise_at_eval(true));
  noisy->eval();
  KvCache unused;
  EXPECT_THROW(noisy->decode_step(x, unused), std::invalid_argument);
}

TEST(Attention, GqaWithAllKvHeadsEqualsMha) {
  Attention mha(opts(Variant::kMha).qk_norm(true).rope(true).causal(true));
  Attention gqa(opts(Variant::kGqa).kv_heads(4).qk_norm(true).rope(true).causal(true));
  randomize(*mha, 1);
  copy_parameters(*mha, *gqa);
  auto x = random_input(2, 9, 32, 2);
  EXPECT_TRUE(torch::equal(mha->forward(x), gqa->forward(x)));
}

TEST(Attention, GqaWithOneKvHeadEqualsMqa) {
  Attention mqa(opts(Variant::kMqa).bias(true).causal(true));
  Attention gqa(opts(Variant::kGqa).kv_heads(1).bias(true).causal(true));
  randomize(*mqa, 3);
  copy_parameters(*mqa, *gqa);
  auto x = random_input(2, 9, 32, 4);
  EXPECT_TRUE(torch::equal(mqa->forward(x), gqa->forward(x)));
}

TEST(Attention, GqkvaWithAllQueriesAndOneKvEqualsMqa) {
  Attention mqa(opts(Variant::kMqa).rope(true));
  Attention gqkva(opts(Variant::kGqkva).q_groups(4).kv_groups(1).rope(true));
  randomize(*mqa, 5);
  copy_parameters(*mqa, *gqkva);
  auto x = random_input(2, 9, 32, 6);
  EXPECT_TRUE(torch::equal(mqa->forward(x), gqkva->forward(x)));
}

// ViT-S widths: d = 384, H = 6, d_h = 64. Expected counts worked out by hand from
// d * d_h * (n_q + 2 n_kv) + d * d.
TEST(Attention, ParameterCountsFollowTheFormula) {
  struct Case {
    AttentionOptions o;
    int64_t expected;
  };
  const int64_t d = 384, H = 6;
  std::vector<Case> cases = {
      {opts(Variant::kMha, d, H), 589824},                             // 24576 * 18 + 147456
      {opts(Variant::kGkva, d, H).q_heads(3), 516096},                 // 24576 * 15 + ...
      {opts(Variant::kMkva, d, H), 466944},                            // 24576 * 13 + ...
      {opts(Variant::kMqa, d, H), 344064},                             // 24576 * 8 + ...
      {opts(Variant::kGqkva, d, H).q_groups(2).kv_groups(3), 344064},  // 24576 * 8 + ...
      {opts(Variant::kGqkva, d, H).q_groups(3).kv_groups(2), 319488},  // 24576 * 7 + ...
      {opts(Variant::kGqa, d, H).kv_heads(2), 393216},                 // 24576 * 10 + ...
      {opts(Variant::kKdgqa, d, H).kv_heads(3), 442368},               // 24576 * 12 + ...
      {opts(Variant::kDgqa, d, H).kv_heads(3), 442368},
      {opts(Variant::kPgqa, d, H).kv_heads(3), 442368},
      // wgqa trains the 6 original kv heads plus 6 scalar weights each for k and v.
      {opts(Variant::kWgqa, d, H).kv_heads(3), 589824 + 12},
      {opts(Variant::kWgqa, d, H).kv_heads(3).weight_form(WeightForm::kCol), 589824 + 12 * 64},
      // Biases: (6 + 12) * 64 + 384; qk_norm: 2 * 64.
      {opts(Variant::kMha, d, H).bias(true).qk_norm(true), 589824 + 1536 + 128},
  };
  for (auto& c : cases) {
    Attention m(c.o);
    EXPECT_EQ(count_parameters(*m), c.expected) << *m;
    EXPECT_EQ(expected_parameter_count(c.o), c.expected) << *m;
  }
}

TEST(Attention, BadOptionsNameTheOptionAndChoices) {
  auto msg = error_of(opts(Variant::kGqa, 48, 6).kv_heads(4));
  EXPECT_NE(msg.find("attention.kv_heads = 4"), std::string::npos) << msg;
  EXPECT_NE(msg.find("valid: 1, 2, 3, 6"), std::string::npos) << msg;
  msg = error_of(AttentionOptions(32, 0));
  EXPECT_NE(msg.find("attention.heads = 0"), std::string::npos) << msg;
  msg = error_of(AttentionOptions(30, 4));
  EXPECT_NE(msg.find("model.dim = 30"), std::string::npos) << msg;
  msg = error_of(opts(Variant::kKdgqa, 32, 4).kv_heads(2).min_per_group(3));
  EXPECT_NE(msg.find("attention.min_per_group = 3"), std::string::npos) << msg;
  msg = error_of(AttentionOptions(12, 2).rope(true).variant(Variant::kMha).dim(6));
  EXPECT_NE(msg.find("even head size"), std::string::npos) << msg;
  if (!fused_attention_available()) {
    msg = error_of(opts(Variant::kGqa).kv_heads(2).path(AttentionPath::kFused));
    EXPECT_NE(msg.find("attention.path = fused"), std::string::npos) << msg;
  }
}

TEST(Attention, WrongInputShapeIsAnError) {
  Attention m(opts(Variant::kMha));
  EXPECT_THROW(m->forward(torch::randn({2, 5, 16})), std::invalid_argument);
  EXPECT_THROW(m->forward(torch::randn({5, 32})), std::invalid_argument);
}

TEST(Attention, PathIsReferenceOnlyWithoutFusedKernel) {
  Attention gqa(opts(Variant::kGqa).kv_heads(2));
  EXPECT_EQ(gqa->path(),
            fused_attention_available() ? AttentionPath::kFused : AttentionPath::kReference);
  Attention scores(opts(Variant::kPgqa).kv_heads(2).noise_target(NoiseTarget::kScores));
  EXPECT_EQ(scores->path(), AttentionPath::kReference);
}

TEST(Attention, CastingKeepsIntegerStateAndFp32Statistics) {
  for (auto dtype : {torch::kDouble, torch::kBFloat16}) {
    Attention m(AttentionOptions(32, 4).variant(Variant::kDgqa).kv_heads(2));
    m->to(dtype);
    EXPECT_EQ(m->q_proj->weight.scalar_type(), dtype);
    EXPECT_EQ(m->counts.scalar_type(), torch::kLong);
    EXPECT_EQ(m->step.scalar_type(), torch::kLong);
    EXPECT_EQ(m->cache.scalar_type(), torch::kFloat);
    auto y = m->forward(random_input(2, 5, 32, 9).to(dtype));
    EXPECT_EQ(y.scalar_type(), dtype);
    EXPECT_EQ(m->step.item<int64_t>(), 1);
  }
}

TEST(Dropout, MaskFollowsItsGeneratorAndKeepsTheExpectation) {
  auto x = torch::ones({20000});
  auto a = dropout(x, 0.25, seeded_generator(torch::kCPU, 7));
  EXPECT_TRUE(torch::equal(a, dropout(x, 0.25, seeded_generator(torch::kCPU, 7))));
  EXPECT_FALSE(torch::equal(a, dropout(x, 0.25, seeded_generator(torch::kCPU, 8))));
  const double dropped = (a == 0).to(torch::kDouble).mean().item<double>();
  EXPECT_NEAR(dropped, 0.25, 0.015);  // 5 standard errors of 20,000 Bernoulli(0.25) draws
  EXPECT_NEAR(a.masked_select(a != 0).min().item<double>(), 1.0 / 0.75, 1e-6);
  EXPECT_TRUE(torch::equal(dropout(x, 0.0, seeded_generator(torch::kCPU, 7)), x));
  EXPECT_THROW(dropout(x, 1.0, seeded_generator(torch::kCPU, 7)), std::invalid_argument);
}

// Attention and output dropout: training only, masks from the layer's own seeds (never the global
// generator), the reference path while training.
TEST(Attention, DropoutComesFromTheLayersSeedsAndOnlyInTraining) {
  auto o = opts(Variant::kGqa).kv_heads(2).causal(true);
  Attention plain(o), dropped(AttentionOptions(o).attn_dropout(0.3).out_dropout(0.2));
  randomize(*plain, 5);
  copy_parameters(*plain, *dropped);
  EXPECT_EQ(dropped->path(), AttentionPath::kReference);
  auto x = random_input(2, 7, 32, 6);
  dropped->set_dropout_seeds(11, 12);
  torch::manual_seed(1);
  auto a = dropped->forward(x);
  auto next = torch::rand({1});
  torch::manual_seed(1);
  EXPECT_TRUE(torch::equal(next, torch::rand({1})));  // the global generator was not used
  EXPECT_TRUE(torch::equal(a, dropped->forward(x)));  // same seeds, same masks
  dropped->set_dropout_seeds(11, 13);
  auto b = dropped->forward(x);
  EXPECT_GT(max_abs_diff(a, b), 1e-4);
  dropped->set_dropout_seeds(21, 12);
  EXPECT_GT(max_abs_diff(a, dropped->forward(x)), 1e-4);
  plain->train();
  EXPECT_GT(max_abs_diff(a, plain->forward(x)), 1e-4);
  dropped->eval();
  plain->eval();
  EXPECT_LT(max_abs_diff(dropped->forward(x), plain->forward(x)), 1e-6);  // no dropout at eval
  if (fused_attention_available()) {
    EXPECT_NE(error_of(AttentionOptions(o).attn_dropout(0.3).path(AttentionPath::kFused))
                  .find("attention.attn_dropout"),
              std::string::npos);
  }
  EXPECT_NE(error_of(AttentionOptions(o).out_dropout(1.0)).find("attention.out_dropout"),
            std::string::npos);
}

TEST(Attention, OutputBiasWithoutProjectionBiases) {
  Attention m(opts(Variant::kGqa).kv_heads(2).out_bias(true));
  EXPECT_TRUE(m->o_proj->bias.defined());
  EXPECT_FALSE(m->q_proj->bias.defined());
  EXPECT_FALSE(m->k_proj->bias.defined());
  EXPECT_EQ(count_parameters(*m), expected_parameter_count(m->options));
  EXPECT_EQ(count_parameters(*m),
            count_parameters(*Attention(opts(Variant::kGqa).kv_heads(2))) + 32);
  randomize(*m, 8);
  m->to(torch::kDouble);
  auto x = random_input(2, 5, 32, 9, torch::kDouble);
  EXPECT_LT(max_abs_diff(m->forward(x), testing::naive_attention(*m, x)), 1e-10);
}

TEST(Attention, PrettyPrintNamesTheVariant) {
  std::ostringstream out;
  out << *Attention(opts(Variant::kGqa).kv_heads(2).causal(true));
  EXPECT_NE(out.str().find("variant=gqa"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("n_kv=2"), std::string::npos) << out.str();
}

}  // namespace
}  // namespace ablate::core
