#include "ablate/core/causality.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "test_support.h"

namespace ablate::core {
namespace {

using testing::random_input;
using testing::randomize;

// Every variant in its default (robust) mode, as the language model uses it.
std::vector<AttentionOptions> default_variants() {
  auto base = [](Variant v) {
    return AttentionOptions(64, 8).variant(v).causal(true).rope(true).qk_norm(true);
  };
  return {
      base(Variant::kMha),
      base(Variant::kGqa).kv_heads(2),
      base(Variant::kMqa),
      base(Variant::kMkva),
      base(Variant::kGkva).q_heads(2),
      base(Variant::kGqkva).q_groups(4).kv_groups(2),
      base(Variant::kKdgqa).kv_heads(4),
      base(Variant::kDgqa).kv_heads(4).ema_window(1),
      base(Variant::kDgqa).kv_heads(4).ema_window(1).dgqa_mode(DgqaMode::kDiff),
      base(Variant::kPgqa).kv_heads(2),
      base(Variant::kPgqa).kv_heads(2).noise_target(NoiseTarget::kScores),
      base(Variant::kPgqa).kv_heads(2).noise(NoiseKind::kUniform).noise_at_eval(true),
      base(Variant::kWgqa).kv_heads(2).weight_form(WeightForm::kRow),
  };
}

// Gives the dynamic variants a history (non-uniform allocations, a warm cache) first.
Attention warmed(const AttentionOptions& o) {
  Attention m(o);
  randomize(*m, 41);
  torch::NoGradGuard no_grad;
  m->k_proj->weight.narrow(0, 0, m->head_dim()).mul_(8.0);
  for (int i = 0; i < 3; ++i) m->forward(random_input(2, 12, o.dim(), 42 + i));
  return m;
}

TEST(Causality, EveryVariantInDefaultModeIsCausalInTrainAndEval) {
  for (const auto& o : default_variants()) {
    auto m = warmed(o);
    for (bool training : {true, false}) {
      m->train(training);
      for (int64_t t : {0, 5, 10}) {
        auto r = check_attention_causality(m, random_input(2, 12, o.dim(), 50 + t), t);
        EXPECT_TRUE(r.causal) << *m << " training=" << training << " t=" << t << " max diff "
                              << r.max_abs_diff;
      }
    }
  }
}

TEST(Causality, TheCheckDoesNotChangeTheModule) {
  auto m = warmed(default_variants()[6]);  // kdgqa
  auto counts = m->counts.clone();
  check_attention_causality(m, random_input(2, 12, 64, 60), 4);
  EXPECT_TRUE(torch::equal(m->counts, counts));
}

TEST(Causality, ABrokenMaskIsCaught) {
  auto o = AttentionOptions(64, 8).variant(Variant::kGqa).kv_heads(2).rope(true);  // causal off
  Attention m(o);
  auto r = check_attention_causality(m, random_input(2, 12, 64, 61), 5);
  EXPECT_FALSE(r.causal);
  EXPECT_GT(r.max_abs_diff, 0.0);
}

// The faithful dynamic variants use statistics of all positions: the same check catches them,
// which is why the language model refuses them without allow_noncausal.
TEST(Causality, FaithfulDynamicVariantsLeakTheFuture) {
  auto base = AttentionOptions(64, 8).causal(true).rope(true).faithful(true);
  struct Case {
    AttentionOptions o;
    bool training;
  };
  std::vector<Case> cases = {
      {AttentionOptions(base).variant(Variant::kKdgqa).kv_heads(4), true},
      {AttentionOptions(base).variant(Variant::kKdgqa).kv_heads(4), false},
      {AttentionOptions(base).variant(Variant::kDgqa).kv_heads(4).ema_window(1), true},
      {AttentionOptions(base).variant(Variant::kDgqa).kv_heads(4), false},
      {AttentionOptions(base).variant(Variant::kPgqa).kv_heads(2), true},
      {AttentionOptions(base).variant(Variant::kPgqa).kv_heads(2), false},
  };
  for (const auto& c : cases) {
    Attention m(c.o);
    randomize(*m, 43);
    m->train(c.training);
    // Perturbing the last positions strongly moves the key norms / output statistics.
    auto r = check_attention_causality(m, random_input(2, 12, 64, 62), 3, 50.0);
    EXPECT_FALSE(r.causal) << *m << " training=" << c.training;
  }
}

TEST(Causality, GenericCheckComparesOnlyThePrefix) {
  auto x = torch::arange(10, torch::kFloat).view({1, 10, 1});
  auto y = x.clone();
  y[0][7][0] = 100;
  auto cumsum = [](const torch::Tensor& in) { return in.cumsum(1); };
  EXPECT_TRUE(check_causality(cumsum, x, y, 6).causal);
  EXPECT_FALSE(check_causality(cumsum, x, y, 7).causal);
  auto total = [](const torch::Tensor& in) { return in.sum(1, true).expand_as(in); };
  EXPECT_FALSE(check_causality(total, x, y, 0).causal);
  EXPECT_THROW(check_causality(cumsum, x, y, 10), std::invalid_argument);
}

}  // namespace
}  // namespace ablate::core
