#include "ablate/core/dynamic.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cfenv>
#include <cmath>
#include <sstream>

#include "ablate/core/attention.h"
#include "test_support.h"

namespace ablate::core {
namespace {

using testing::copy_parameters;
using testing::max_abs_diff;
using testing::random_input;
using testing::randomize;
using testing::to_vector;
using V = std::vector<int64_t>;

// The authors' kdgqa allocation written the way their Python does it: host loops, half-to-even
// rounding, while-loops on argmax / argmin (first index on ties).
V loop_kdgqa_allocation(std::vector<double> n, int64_t H) {
  const double lo = *std::min_element(n.begin(), n.end());
  const double hi = *std::max_element(n.begin(), n.end());
  double sum = 0;
  for (auto& x : n) sum += (x = (x - lo) / (hi - lo));
  V a;
  for (double x : n) a.push_back(static_cast<int64_t>(std::nearbyint(x / sum * H)));
  auto total = [&] {
    int64_t t = 0;
    for (auto x : a) t += x;
    return t;
  };
  while (total() > H) --*std::max_element(a.begin(), a.end());
  while (total() < H) ++*std::min_element(a.begin(), a.end());
  return a;
}

// Key-head norms computed from the module's own projection, independently of key_head_norms.
std::vector<double> loop_key_norms(AttentionImpl& m, const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  const int64_t G = m.layout().n_kv, d_h = m.head_dim();
  auto k = m.k_proj(x);  // [B, S, G * d_h]
  std::vector<double> out(G, 0.0);
  for (int64_t b = 0; b < x.size(0); ++b)
    for (int64_t j = 0; j < G; ++j)
      out[j] += k[b].narrow(1, j * d_h, d_h).to(torch::kDouble).pow(2).sum().sqrt().item<double>();
  return out;
}

// Multiplies key head j's projection by factors[j]: keys of very different norms.
void scale_key_heads(AttentionImpl& m, const std::vector<double>& factors) {
  torch::NoGradGuard no_grad;
  const int64_t d_h = m.head_dim();
  for (size_t j = 0; j < factors.size(); ++j) {
    m.k_proj->weight.narrow(0, j * d_h, d_h).mul_(factors[j]);
  }
}

int64_t sum(const V& v) {
  int64_t s = 0;
  for (auto x : v) s += x;
  return s;
}

TEST(Allocation, RoundsHalfToEvenBeforeFixing) {
  // Fractions * 8 = 0.5, 1.5, 2.5, 3.5: half-to-even gives 0, 2, 2, 4 (sum 8, no fix); rounding
  // half up would give 1, 2, 3, 4 and a different fixed result.
  auto a = allocate_queries(torch::tensor({0.5, 1.5, 2.5, 3.5}), {8, 0});
  EXPECT_EQ(to_vector(a.counts), (V{0, 2, 2, 4}));
  EXPECT_FALSE(a.degenerate.item<bool>());
}

TEST(Allocation, FixDecrementsTheLargestFirstOnTies) {
  // 8/3 each rounds to 3, total 9: the first largest loses one.
  auto a = allocate_queries(torch::tensor({1.0, 1.0, 1.0}), {8, 0});
  EXPECT_EQ(to_vector(a.counts), (V{2, 3, 3}));
  // 2/7 * 4 = 1.14, 5/7 * 4 = 2.86 -> 1 + 3 = 4 already.
  EXPECT_EQ(to_vector(allocate_queries(torch::tensor({2.0, 5.0}), {4, 0}).counts), (V{1, 3}));
}

TEST(Allocation, MinimumPerGroupIsHonoured) {
  auto a = allocate_queries(torch::tensor({0.0, 0.0, 1.0}), {9, 2});
  EXPECT_EQ(to_vector(a.counts), (V{2, 2, 5}));
}

TEST(Allocation, DegenerateSharesFallBackToUniform) {
  auto nan = allocate_queries(torch::tensor({0.0, 0.0}) / 0.0, {6, 0});
  EXPECT_EQ(to_vector(nan.counts), (V{3, 3}));
  EXPECT_TRUE(nan.degenerate.item<bool>());
  auto zero = allocate_queries(torch::zeros({4}), {8, 1});
  EXPECT_EQ(to_vector(zero.counts), (V{2, 2, 2, 2}));
  EXPECT_TRUE(zero.degenerate.item<bool>());
}

TEST(Allocation, AlwaysSumsToHeadsAndRespectsMinimum) {
  torch::manual_seed(1);
  for (int trial = 0; trial < 300; ++trial) {
    const int64_t G = 1 + trial % 8, H = G * (1 + trial % 5), lo = trial % 2;
    auto shares = torch::rand({G}).pow(3);  // skewed
    for (auto rule : {FixRule::kLargestSmallest, FixRule::kRandom}) {
      auto c = to_vector(allocate_queries(shares, {H, lo, rule}).counts);
      EXPECT_EQ(sum(c), H) << "trial " << trial;
      for (auto x : c) EXPECT_GE(x, lo) << "trial " << trial;
    }
  }
}

// The authors' dgqa repair written as their Python is: round, then draw torch.randint(0, G, (1,))
// while the total is off (decrement only a non-empty head; increment any).
V loop_dgqa_repair(const std::vector<double>& w, int64_t H) {
  double total = 0;
  for (double x : w) total += x;
  V c;
  for (double x : w) c.push_back(static_cast<int64_t>(std::nearbyint(x / total * H)));
  const int64_t G = static_cast<int64_t>(w.size());
  while (sum(c) > H) {
    const int64_t i = torch::randint(G, {1}, torch::kLong).item<int64_t>();
    if (c[i] > 0) --c[i];
  }
  while (sum(c) < H) ++c[torch::randint(G, {1}, torch::kLong).item<int64_t>()];
  return c;
}

TEST(Allocation, RandomFixDrawsLikeTheAuthorsLoopAndOnlyWhileTheTotalIsOff) {
  struct Case {
    std::vector<double> shares;
    int64_t heads;
    bool repairs;  // the rounded total is off
  };
  for (const Case& c :
       {Case{{1, 1, 1, 1}, 8, false}, Case{{1, 2, 5}, 8, false}, Case{{1, 1, 1}, 8, true},
        Case{{1, 1, 1}, 7, true}, Case{{3, 1, 1, 1, 1}, 8, true}}) {
    torch::manual_seed(31);
    auto got =
        to_vector(allocate_queries(torch::tensor(c.shares), {c.heads, 0, FixRule::kRandom}).counts);
    auto next = torch::rand({1});
    torch::manual_seed(31);
    EXPECT_EQ(got, loop_dgqa_repair(c.shares, c.heads)) << c.heads;
    EXPECT_TRUE(torch::equal(next, torch::rand({1}))) << "the generator moved differently";
    torch::manual_seed(31);
    const bool drew = !torch::equal(next, torch::rand({1}));
    EXPECT_EQ(drew, c.repairs) << "drew random numbers without a repair, or the reverse";
  }
}

TEST(Allocation, KvIndexIsContiguousBlocksSkippingEmptyGroups) {
  EXPECT_EQ(to_vector(kv_index_from_counts(torch::tensor({0, 2, 2, 4}), 8)),
            (V{1, 1, 2, 2, 3, 3, 3, 3}));
  EXPECT_EQ(to_vector(kv_index_from_counts(torch::tensor({3, 0, 1}), 4)), (V{0, 0, 0, 2}));
}

AttentionOptions kdgqa(int64_t heads, int64_t kv, bool faithful) {
  return AttentionOptions(8 * heads, heads)
      .variant(Variant::kKdgqa)
      .kv_heads(kv)
      .faithful(faithful);
}

TEST(Kdgqa, FaithfulMatchesTheAuthorsLoopAndCanEmptyAGroup) {
  Attention m(kdgqa(8, 4, true));
  randomize(*m, 2);
  scale_key_heads(*m, {1, 4, 16, 64});
  auto x = random_input(2, 10, 64, 3);
  m->forward(x);
  auto counts = to_vector(m->allocation());
  EXPECT_EQ(counts, loop_kdgqa_allocation(loop_key_norms(*m, x), 8));
  EXPECT_EQ(sum(counts), 8);
  EXPECT_NE(std::find(counts.begin(), counts.end(), 0), counts.end()) << "expected an empty group";
}

TEST(Kdgqa, FaithfulWithTwoKvHeadsIsMqaOnTheLargerHead) {
  Attention m(kdgqa(4, 2, true));
  randomize(*m, 4);
  scale_key_heads(*m, {1, 3});  // head 1 has the larger norm
  m->eval();
  m->to(torch::kDouble);
  auto x = random_input(2, 7, 32, 5, torch::kDouble);
  auto y = m->forward(x);
  EXPECT_EQ(to_vector(m->allocation()), (V{0, 4}));

  Attention mqa(AttentionOptions(32, 4).variant(Variant::kMqa));
  mqa->to(torch::kDouble);
  torch::NoGradGuard no_grad;
  mqa->q_proj->weight.copy_(m->q_proj->weight);
  mqa->o_proj->weight.copy_(m->o_proj->weight);
  mqa->k_proj->weight.copy_(m->k_proj->weight.narrow(0, 8, 8));
  mqa->v_proj->weight.copy_(m->v_proj->weight.narrow(0, 8, 8));
  EXPECT_LT(max_abs_diff(y, mqa->forward(x)), 1e-12);
}

TEST(Kdgqa, RobustNeverEmptiesAGroupOverManyInputs) {
  Attention m(kdgqa(8, 4, false));
  randomize(*m, 6);
  scale_key_heads(*m, {1, 4, 16, 64});
  for (int i = 0; i < 20; ++i) {
    m->forward(random_input(2, 6, 64, 100 + i) * (1 + i));
    auto c = to_vector(m->counts);
    EXPECT_EQ(sum(c), 8);
    EXPECT_GE(*std::min_element(c.begin(), c.end()), 1) << "step " << i;
  }
}

TEST(Kdgqa, EqualNormsGiveUniformAllocationAndNoNan) {
  for (bool faithful : {false, true}) {
    Attention m(kdgqa(8, 4, faithful));
    randomize(*m, 7);
    torch::NoGradGuard no_grad;
    for (int j = 1; j < 4; ++j)
      m->k_proj->weight.narrow(0, j * 8, 8).copy_(m->k_proj->weight.narrow(0, 0, 8));
    auto y = m->forward(random_input(2, 6, 64, 8));
    m->forward(random_input(2, 6, 64, 9));  // robust: the second step uses the first's keys
    EXPECT_TRUE(y.isfinite().all().item<bool>());
    EXPECT_EQ(to_vector(m->allocation()), (V{2, 2, 2, 2})) << "faithful=" << faithful;
    EXPECT_GE(m->degenerate_steps(), 1) << "faithful=" << faithful;
  }
}

TEST(Kdgqa, RobustUsesThePreviousStepsKeysAndFreezesAtEval) {
  Attention m(kdgqa(8, 4, false));
  randomize(*m, 9);
  scale_key_heads(*m, {1, 4, 16, 64});
  auto x1 = random_input(2, 6, 64, 10), x2 = random_input(2, 6, 64, 11);
  m->forward(x1);
  EXPECT_EQ(to_vector(m->allocation()), (V{2, 2, 2, 2}));  // first step: uniform start
  auto expected = to_vector(
      allocate_queries(minmax_scale(torch::tensor(loop_key_norms(*m, x1)), 1e-6), {8, 1}).counts);
  m->forward(x2);
  EXPECT_EQ(to_vector(m->allocation()), expected);
  EXPECT_NE(expected, (V{2, 2, 2, 2}));
  m->eval();
  auto frozen = to_vector(m->counts);
  m->forward(random_input(2, 6, 64, 12) * 50);
  EXPECT_EQ(to_vector(m->allocation()), frozen);
  EXPECT_EQ(to_vector(m->counts), frozen);
}

AttentionOptions dgqa(bool faithful, DgqaMode mode, int64_t window) {
  return AttentionOptions(64, 8)
      .variant(Variant::kDgqa)
      .kv_heads(4)
      .faithful(faithful)
      .dgqa_mode(mode)
      .ema_window(window);
}

TEST(Dgqa, AllocationsChangeOnlyAtWindowBoundaries) {
  const int64_t window = 3;
  const std::vector<std::vector<double>> patterns = {{1, 8, 2, 30}, {30, 1, 8, 2}, {2, 30, 1, 8}};
  for (bool faithful : {true, false}) {
    for (auto mode : {DgqaMode::kEma, DgqaMode::kDiff}) {
      Attention m(dgqa(faithful, mode, window));
      randomize(*m, 13);
      auto base = m->k_proj->weight.clone();
      V previous = to_vector(m->counts);
      EXPECT_EQ(previous, (V{2, 2, 2, 2}));
      int changes = 0;
      for (int64_t t = 0; t < 12; ++t) {
        {
          torch::NoGradGuard no_grad;
          m->k_proj->weight.copy_(base);
        }
        scale_key_heads(*m, patterns[(t / 2) % 3]);  // norms move between steps
        torch::manual_seed(t);
        m->forward(random_input(2, 6, 64, 20 + t));
        auto now = to_vector(m->allocation());
        EXPECT_EQ(sum(now), 8);
        const bool boundary = t % window == 0 && (faithful || t > 0);
        if (!boundary) {
          EXPECT_EQ(now, previous) << "step " << t << " faithful=" << faithful;
        }
        changes += now != previous;
        previous = now;
      }
      EXPECT_GE(changes, 2) << "faithful=" << faithful << " mode=" << int(mode);
      EXPECT_EQ(m->step.item<int64_t>(), 12);
    }
  }
}

TEST(Dgqa, RobustEvalFreezesTheTrainingAllocation) {
  Attention m(dgqa(false, DgqaMode::kEma, 1));
  randomize(*m, 14);
  scale_key_heads(*m, {1, 8, 2, 30});
  for (int t = 0; t < 3; ++t) m->forward(random_input(2, 6, 64, 30 + t));
  m->eval();
  auto counts = to_vector(m->counts);
  auto cache = m->cache.clone();
  auto a = m->forward(random_input(2, 6, 64, 40));
  scale_key_heads(*m, {30, 2, 8, 1});
  m->forward(random_input(2, 6, 64, 41) * 10);
  EXPECT_EQ(to_vector(m->allocation()), counts);
  EXPECT_TRUE(torch::equal(m->cache, cache));
  EXPECT_EQ(m->step.item<int64_t>(), 3);
}

TEST(Dgqa, FaithfulEvalRecomputesFromEachBatchAndOverwritesTheCache) {
  Attention m(dgqa(true, DgqaMode::kEma, 4));
  randomize(*m, 15);
  m->eval();
  scale_key_heads(*m, {1, 2, 4, 40});
  auto x = random_input(2, 6, 64, 50);
  m->forward(x);
  auto norms = loop_key_norms(*m, x);
  for (int j = 0; j < 4; ++j) EXPECT_NEAR(m->cache[j].item<double>(), norms[j], 1e-3 * norms[j]);
  EXPECT_NE(to_vector(m->allocation()), (V{2, 2, 2, 2}));  // recomputed at eval
  EXPECT_EQ(m->step.item<int64_t>(), 0);                   // eval is not a training step
}

// The authors' dgqa computes an allocation only at a window boundary (and every eval batch), so a
// training step between boundaries draws no random number.
TEST(Dgqa, FaithfulDrawsNothingBetweenWindowBoundaries) {
  Attention m(dgqa(true, DgqaMode::kEma, 3));
  randomize(*m, 17);
  scale_key_heads(*m, {1, 8, 2, 30});
  for (int64_t t = 0; t < 6; ++t) {
    auto x = random_input(2, 6, 64, 80 + t);
    torch::manual_seed(100 + t);
    m->forward(x);
    auto next = torch::rand({1});
    torch::manual_seed(100 + t);
    if (t % 3 != 0) {
      EXPECT_TRUE(torch::equal(next, torch::rand({1}))) << "step " << t;
    }
  }
}

// The same 0/0 as kdgqa's equal norms: in diff mode an eval batch seen twice gives a zero change.
TEST(Dgqa, FaithfulDiffModeOnARepeatedEvalBatchIsDegenerateAndUniform) {
  Attention m(dgqa(true, DgqaMode::kDiff, 2));
  randomize(*m, 18);
  scale_key_heads(*m, {1, 8, 2, 30});
  m->eval();
  auto x = random_input(2, 6, 64, 90);
  m->forward(x);
  EXPECT_NE(to_vector(m->allocation()), (V{2, 2, 2, 2}));
  EXPECT_EQ(m->degenerate_steps(), 0);
  torch::manual_seed(3);
  m->forward(x);  // cache = this batch's norms: |cache - norms| = 0 for every head
  auto next = torch::rand({1});
  EXPECT_EQ(to_vector(m->allocation()), (V{2, 2, 2, 2}));
  EXPECT_EQ(m->degenerate_steps(), 1);
  torch::manual_seed(3);
  EXPECT_TRUE(torch::equal(next, torch::rand({1})));  // nothing drawn
}

// The authors' training loop passes the batch index within the epoch: faithful dgqa's counter
// restarts at every epoch, so the epoch's first batch reallocates even mid-window.
TEST(Dgqa, FaithfulCounterRestartsAtEachEpoch) {
  for (bool faithful : {true, false}) {
    Attention m(dgqa(faithful, DgqaMode::kEma, 4));
    randomize(*m, 19);
    scale_key_heads(*m, {1, 8, 2, 30});
    for (int t = 0; t < 6; ++t) m->forward(random_input(2, 6, 64, 95 + t));
    EXPECT_EQ(m->step.item<int64_t>(), 6);
    auto before = to_vector(m->allocation());
    m->start_epoch();
    EXPECT_EQ(m->step.item<int64_t>(), faithful ? 0 : 6) << "faithful=" << faithful;
    scale_key_heads(*m, {30, 2, 8, 1});  // norms change: a reallocation would show
    m->forward(random_input(2, 6, 64, 101));
    const bool reallocated = to_vector(m->allocation()) != before;
    EXPECT_EQ(reallocated, faithful) << "faithful=" << faithful;  // robust: step 6 is mid-window
  }
}

TEST(Dgqa, StateSurvivesSaveAndLoad) {
  for (bool faithful : {true, false}) {
    Attention m(dgqa(faithful, DgqaMode::kDiff, 2));
    randomize(*m, 16);
    scale_key_heads(*m, {1, 8, 2, 30});
    for (int t = 0; t < 5; ++t) m->forward(random_input(2, 6, 64, 60 + t));
    std::stringstream stream;
    torch::save(m, stream);
    Attention loaded(dgqa(faithful, DgqaMode::kDiff, 2));
    torch::load(loaded, stream);
    EXPECT_TRUE(torch::equal(loaded->counts, m->counts));
    EXPECT_TRUE(torch::equal(loaded->cache, m->cache));
    EXPECT_TRUE(torch::equal(loaded->boundary_cache, m->boundary_cache));
    EXPECT_EQ(loaded->step.item<int64_t>(), 5);
    auto x = random_input(2, 6, 64, 70);
    torch::manual_seed(1);
    auto a = m->forward(x);
    torch::manual_seed(1);
    auto b = loaded->forward(x);
    EXPECT_TRUE(torch::equal(a, b));
    EXPECT_TRUE(torch::equal(loaded->counts, m->counts));
  }
}

TEST(Noise, RawDrawHasZeroDiagonalAndNoiseMatchesRowStatistics) {
  torch::manual_seed(17);
  auto target = torch::randn({2, 3, 5, 7}) * 3 + 1;
  for (auto kind : {NoiseKind::kUniform, NoiseKind::kGaussian}) {
    auto draw = draw_noise(target, kind);
    for (int i = 0; i < 5; ++i) {
      EXPECT_TRUE(draw.raw.select(-2, i).select(-1, i).eq(0).all().item<bool>());
    }
    EXPECT_LT(max_abs_diff(draw.noise.mean(-1), target.mean(-1)), 1e-5);
    EXPECT_LT(max_abs_diff(draw.noise.std(-1), target.std(-1)), 1e-4);
    EXPECT_GT(max_abs_diff(draw.noise, target), 0.1);  // noise, not a copy
  }
  EXPECT_GE(draw_noise(target, NoiseKind::kUniform).raw.min().item<double>(), 0.0);
}

TEST(Noise, AConstantRowGetsNoNoiseAndAFiniteGradient) {
  // A query whose only visible key was dropped by attention dropout has an all-zero output row:
  // its std is 0, its noise 0, and the gradient through the statistics must stay finite.
  torch::manual_seed(4);
  auto x = torch::randn({2, 3, 5});
  x.select(1, 0).zero_();      // a constant row (all zero)
  x.select(1, 2).fill_(0.75);  // another
  x.requires_grad_(true);
  auto noise = draw_noise(x, NoiseKind::kGaussian).noise;
  EXPECT_TRUE(torch::equal(noise.select(1, 0), torch::zeros({2, 5})));
  EXPECT_TRUE(torch::equal(noise.select(1, 2), torch::full({2, 5}, 0.75)));  // the mean only
  (noise * torch::randn({2, 3, 5})).sum().backward();
  EXPECT_TRUE(torch::isfinite(x.grad()).all().item<bool>());
  // The attention module end to end: robust pgqa with attention dropout trains.
  torch::manual_seed(5);
  Attention a(
      AttentionOptions(16, 4).variant(Variant::kPgqa).kv_heads(2).causal(true).attn_dropout(0.5));
  a->train();
  for (uint64_t seed = 0; seed < 20; ++seed) {
    a->set_dropout_seeds(seed, seed + 100);
    a->zero_grad();
    a->forward(torch::randn({4, 6, 16})).pow(2).sum().backward();
    for (const auto& p : a->parameters()) {
      ASSERT_TRUE(torch::isfinite(p.grad()).all().item<bool>()) << "dropout seed " << seed;
    }
  }
}

TEST(Noise, VisibleMaskRestrictsStatisticsAndNeverTouchesMaskedEntries) {
  torch::manual_seed(18);
  auto target = torch::randn({2, 5, 5});
  auto visible = torch::ones({5, 5}, torch::kBool).tril();
  auto noise = draw_noise(target, NoiseKind::kGaussian, visible).noise;
  EXPECT_TRUE(
      noise.masked_select(visible.logical_not().expand({2, 5, 5})).eq(0).all().item<bool>());
  for (int64_t i = 2; i < 5; ++i) {  // rows with at least two visible entries
    auto t = target.select(1, i).narrow(-1, 0, i + 1), n = noise.select(1, i).narrow(-1, 0, i + 1);
    EXPECT_LT(max_abs_diff(n.mean(-1), t.mean(-1)), 1e-5) << "row " << i;
    EXPECT_LT(max_abs_diff(n.std(-1), t.std(-1)), 1e-4) << "row " << i;
  }
}

struct PgqaPair {
  Attention pgqa{nullptr}, gqa{nullptr};
};
PgqaPair pgqa_and_gqa(AttentionOptions o) {
  PgqaPair p{Attention(o.variant(Variant::kPgqa)),
             Attention(AttentionOptions(o).variant(Variant::kGqa))};
  randomize(*p.pgqa, 19);
  copy_parameters(*p.pgqa, *p.gqa);
  return p;
}

torch::Tensor seeded(Attention& m, const torch::Tensor& x) {
  torch::manual_seed(99);
  return m->forward(x);
}

TEST(Pgqa, OutputNoiseScalesLinearlyWithNoiseScale) {
  auto x = random_input(2, 6, 32, 20, torch::kDouble);
  std::vector<torch::Tensor> deltas;
  for (double scale : {1.0, 2.0}) {
    auto p = pgqa_and_gqa(AttentionOptions(32, 4).kv_heads(2).noise_scale(scale));
    p.pgqa->to(torch::kDouble);
    p.gqa->to(torch::kDouble);
    deltas.push_back(seeded(p.pgqa, x) - p.gqa->forward(x));
    EXPECT_GT(p.pgqa->noise_norm.item<double>(), 0.0);
  }
  EXPECT_GT(deltas[0].abs().max().item<double>(), 1e-3);
  EXPECT_LT(max_abs_diff(deltas[1], 2 * deltas[0]), 1e-10);
  auto zero = pgqa_and_gqa(AttentionOptions(32, 4).kv_heads(2).noise_scale(0.0));
  x = x.to(torch::kFloat);
  EXPECT_LT(max_abs_diff(seeded(zero.pgqa, x), zero.gqa->forward(x)), 1e-6);
}

TEST(Pgqa, ScoresNoiseChangesOutputAndVanishesAtScaleZero) {
  auto x = random_input(2, 6, 32, 21);
  // Score noise needs explicit scores, so pgqa takes the reference path here; gqa takes it too,
  // so that the comparison sees the noise and not the fused kernel's rounding (~4e-6 in fp32).
  auto o = AttentionOptions(32, 4)
               .kv_heads(2)
               .noise_target(NoiseTarget::kScores)
               .causal(true)
               .path(AttentionPath::kReference);
  auto p = pgqa_and_gqa(o);
  EXPECT_GT(max_abs_diff(seeded(p.pgqa, x), p.gqa->forward(x)), 1e-3);
  auto zero = pgqa_and_gqa(AttentionOptions(o).noise_scale(0.0));
  EXPECT_LT(max_abs_diff(seeded(zero.pgqa, x), zero.gqa->forward(x)), 1e-6);
}

TEST(Pgqa, NoiseIsAbsentAtEvalUnlessAskedOrFaithful) {
  auto x = random_input(2, 6, 32, 22);
  auto plain = pgqa_and_gqa(AttentionOptions(32, 4).kv_heads(2));
  plain.pgqa->eval();
  EXPECT_TRUE(torch::equal(seeded(plain.pgqa, x), plain.gqa->forward(x)));
  for (auto o : {AttentionOptions(32, 4).kv_heads(2).noise_at_eval(true),
                 AttentionOptions(32, 4).kv_heads(2).faithful(true)}) {
    auto p = pgqa_and_gqa(o);
    p.pgqa->eval();
    EXPECT_GT(max_abs_diff(seeded(p.pgqa, x), p.gqa->forward(x)), 1e-3);
  }
}

TEST(Pgqa, FaithfulNoiseHasGroupRowStatistics) {
  // Faithful: per group, rows are heads spanning all positions; with o_proj the identity the
  // module output minus the clean output is -noise_scale * noise, whose rows carry the clean
  // attention output's row mean and std.
  auto o = AttentionOptions(16, 4).kv_heads(2).faithful(true).noise_scale(1.0);
  auto p = pgqa_and_gqa(o);
  torch::NoGradGuard no_grad;
  p.pgqa->o_proj->weight.copy_(torch::eye(16));
  p.gqa->o_proj->weight.copy_(torch::eye(16));
  auto x = random_input(2, 5, 16, 23);
  auto clean = p.gqa->forward(x);  // [B, S, H * d_h] = attention output, heads concatenated
  auto noise = clean - seeded(p.pgqa, x);
  auto rows = [](const torch::Tensor& t) {  // [B, S, H, d_h] -> [B, H, S * d_h]
    return t.view({2, 5, 4, 4}).permute({0, 2, 1, 3}).reshape({2, 4, 20});
  };
  EXPECT_LT(max_abs_diff(rows(noise).mean(-1), rows(clean).mean(-1)), 1e-5);
  EXPECT_LT(max_abs_diff(rows(noise).std(-1), rows(clean).std(-1)), 1e-4);
}

// The authors' get_gaussian written out: for each group, in order, one torch.rand(m, C) on the
// target's device, zero diagonal, standardised with the draw's row mean and unbiased std, then
// scaled to each batch element's row std and mean.
TEST(Pgqa, FaithfulDrawIsOneMatrixPerGroupSharedByTheBatch) {
  torch::manual_seed(5);
  const int64_t B = 3, G = 2, m = 2, C = 12;
  auto target = torch::randn({B, G, m, C});
  torch::manual_seed(77);
  auto got = draw_shared_group_noise(target);
  auto next = torch::rand({1});
  torch::manual_seed(77);
  for (int64_t g = 0; g < G; ++g) {
    auto draw = torch::rand({m, C});
    for (int64_t i = 0; i < m; ++i) draw[i][i] = 0;
    auto z = (draw - draw.mean(-1, true)) / draw.std(-1, /*unbiased=*/true, /*keepdim=*/true);
    EXPECT_LT(max_abs_diff(got.raw[g], draw), 1e-7) << "group " << g;
    for (int64_t b = 0; b < B; ++b) {
      auto row = target[b][g];
      auto expected = z * row.std(-1, true, true) + row.mean(-1, true);
      EXPECT_LT(max_abs_diff(got.noise[b][g], expected), 1e-5) << "group " << g << " batch " << b;
    }
  }
  // The generator moved by exactly those G draws, as the original's does.
  EXPECT_TRUE(torch::equal(next, torch::rand({1})));
}

TEST(Pgqa, FaithfulNoiseIsTheSameForEveryBatchElement) {
  auto p = pgqa_and_gqa(AttentionOptions(16, 4).kv_heads(2).faithful(true));
  auto x0 = random_input(1, 5, 16, 24);
  auto y = seeded(p.pgqa, torch::cat({x0, x0}, 0));
  EXPECT_LT(max_abs_diff(y[0], y[1]), 1e-6);
  // As a batch of one sees it. The float32 products of a batch of two and of one may take
  // different BLAS paths (1.9e-6 apart once on a loaded CI machine); other noise would differ
  // by far more than 1e-5.
  EXPECT_LT(max_abs_diff(y[0], seeded(p.pgqa, x0)[0]), 1e-5);
  EXPECT_GT(max_abs_diff(y[0], p.gqa->forward(x0)[0]), 1e-3);  // and the noise is there
}

}  // namespace
}  // namespace ablate::core
