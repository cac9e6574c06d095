#include "ablate/core/ops.h"

#include <gtest/gtest.h>

#include <torch/torch.h>

#include <cmath>
#include <cstring>

#include "test_support.h"

namespace ablate::core {
namespace {

using testing::max_abs_diff;

// Loops over heads and positions in double: the definition of grouped attention.
torch::Tensor loop_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                             const std::vector<int64_t>& kv_of_head, bool causal) {
  auto qd = q.to(torch::kDouble), kd = k.to(torch::kDouble), vd = v.to(torch::kDouble);
  const int64_t B = q.size(0), H = q.size(1), S = q.size(2), d = q.size(3);
  auto out = torch::zeros({B, H, S, d}, torch::kDouble);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < S; ++i) {
        const int64_t last = causal ? i : S - 1;
        auto kk = kd[b][kv_of_head[h]].narrow(0, 0, last + 1);
        auto w = torch::softmax(torch::mv(kk, qd[b][h][i]) / std::sqrt(double(d)), 0);
        out[b][h][i] = torch::mv(vd[b][kv_of_head[h]].narrow(0, 0, last + 1).t(), w);
      }
  return out;
}

struct Qkv {
  torch::Tensor q, k, v;
};
Qkv random_qkv(int64_t B, int64_t H, int64_t G, int64_t S, int64_t d, uint64_t seed) {
  torch::manual_seed(seed);
  return {torch::randn({B, H, S, d}), torch::randn({B, G, S, d}), torch::randn({B, G, S, d})};
}

TEST(Attend, ReferenceMatchesLoopsForGroupedHeads) {
  for (bool causal : {false, true}) {
    auto t = random_qkv(2, 6, 2, 7, 8, 1);
    AttendOptions o;
    o.causal = causal;
    o.path = AttentionPath::kReference;
    auto out = attend(t.q, t.k, t.v, o);
    EXPECT_LT(max_abs_diff(out, loop_attention(t.q, t.k, t.v, {0, 0, 0, 1, 1, 1}, causal)), 1e-5)
        << "causal=" << causal;
  }
}

TEST(Attend, ExplicitKvIndexGathersTheNamedHeads) {
  auto t = random_qkv(2, 4, 3, 5, 8, 2);
  AttendOptions o;
  o.causal = true;
  o.path = AttentionPath::kReference;
  o.kv_index = torch::tensor({2, 2, 0, 1}, torch::kLong);  // uneven, non-monotone on purpose
  EXPECT_LT(
      max_abs_diff(attend(t.q, t.k, t.v, o), loop_attention(t.q, t.k, t.v, {2, 2, 0, 1}, true)),
      1e-5);
}

TEST(Attend, FirstCausalPositionSeesOnlyItself) {
  auto t = random_qkv(1, 2, 1, 4, 8, 3);
  AttendOptions o;
  o.causal = true;
  o.path = AttentionPath::kReference;
  auto out = attend(t.q, t.k, t.v, o);
  for (int h = 0; h < 2; ++h) EXPECT_TRUE(torch::allclose(out[0][h][0], t.v[0][0][0]));
}

// Decoding with a cache: the last Sq queries against all Sk keys under the causal mask give the
// last Sq rows of full causal attention, on both paths.
TEST(Attend, CausalQueriesAtTheEndSeeTheKeysBeforeThem) {
  auto t = random_qkv(2, 4, 2, 9, 8, 12);
  for (auto path : {AttentionPath::kReference, AttentionPath::kAuto}) {
    AttendOptions o;
    o.causal = true;
    o.path = path;
    auto full = attend(t.q, t.k, t.v, o);
    auto last = attend(t.q.narrow(2, 6, 3), t.k, t.v, o);
    EXPECT_LT(max_abs_diff(last, full.narrow(2, 6, 3)), 1e-6);
  }
}

// A bias is added to the scaled scores; scale replaces 1/sqrt(d); a bias that needs a gradient
// keeps the reference path, and both paths agree on a constant one.
TEST(Attend, BiasAndScaleEnterTheScoresAndKeepGradients) {
  auto t = random_qkv(1, 2, 2, 4, 8, 13);
  torch::manual_seed(14);
  auto bias = torch::randn({1, 2, 4, 4});
  AttendOptions o;
  o.path = AttentionPath::kReference;
  o.scale = 0.5;
  o.bias = bias;
  auto out = attend(t.q, t.k, t.v, o);
  auto scores = torch::matmul(t.q, t.k.transpose(-2, -1)) * 0.5 + bias;
  auto expected = torch::matmul(torch::softmax(scores, -1), t.v);
  EXPECT_LT(max_abs_diff(out, expected), 1e-6);
  auto learned = bias.clone().requires_grad_(true);
  AttendOptions train = o;
  train.path = AttentionPath::kAuto;
  train.bias = learned;
  EXPECT_EQ(resolve_path(train), AttentionPath::kReference);
  attend(t.q, t.k, t.v, train).sum().backward();
  ASSERT_TRUE(learned.grad().defined());
  EXPECT_GT(learned.grad().abs().sum().item<double>(), 0.0);
  train.path = AttentionPath::kFused;
  if (fused_attention_available()) {
    EXPECT_THROW(resolve_path(train), std::invalid_argument);
    for (bool causal : {false, true}) {
      AttendOptions fused = o, ref = o;
      fused.path = AttentionPath::kFused;
      fused.causal = ref.causal = causal;
      EXPECT_LT(max_abs_diff(attend(t.q, t.k, t.v, fused), attend(t.q, t.k, t.v, ref)), 1e-5)
          << "causal=" << causal;
    }
  }
}

TEST(Attend, ShapeErrorsAreClear) {
  auto t = random_qkv(1, 4, 3, 5, 8, 4);
  try {
    attend(t.q, t.k, t.v, {});
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("must divide"), std::string::npos) << e.what();
  }
}

TEST(Attend, AutoPicksFusedExactlyWhenAvailable) {
  AttendOptions o;
  EXPECT_EQ(resolve_path(o) == AttentionPath::kFused, fused_attention_available());
  struct Zero : ScoreNoise {
    torch::Tensor operator()(const torch::Tensor& s, const torch::Tensor&) const override {
      return torch::zeros_like(s);
    }
  } zero;
  o.score_noise = &zero;
  EXPECT_EQ(resolve_path(o), AttentionPath::kReference);  // score noise needs explicit scores
  o.path = AttentionPath::kFused;
  EXPECT_THROW(resolve_path(o), std::invalid_argument);
  if (!fused_attention_available()) {
    AttendOptions fused;
    fused.path = AttentionPath::kFused;
    EXPECT_THROW(resolve_path(fused), std::invalid_argument);
  }
}

TEST(Attend, FusedAgreesWithReference) {
  if (!fused_attention_available())
    GTEST_SKIP() << "LibTorch " TORCH_VERSION " has no public fused kernel";
  std::vector<torch::Device> devices = {torch::kCPU};
  if (torch::cuda::is_available()) devices.push_back(torch::Device(torch::kCUDA, 0));
  for (const auto& device : devices) {
    for (auto dtype : {torch::kFloat, torch::kBFloat16}) {
      for (bool causal : {false, true}) {
        for (int64_t G : {1, 2, 8}) {
          auto t = random_qkv(2, 8, G, 33, 64, 5);
          auto cast = [&](const torch::Tensor& x) { return x.to(device, dtype); };
          AttendOptions ref, fused;
          ref.causal = fused.causal = causal;
          ref.path = AttentionPath::kReference;
          fused.path = AttentionPath::kFused;
          auto a = attend(cast(t.q), cast(t.k), cast(t.v), ref);
          auto b = attend(cast(t.q), cast(t.k), cast(t.v), fused);
          const double tol = dtype == torch::kFloat ? 1e-5 : 2e-2;
          EXPECT_LT(max_abs_diff(a, b), tol)
              << device << " " << dtype << " causal=" << causal << " G=" << G;
          fused.kv_index = torch::arange(8, torch::kLong).div(8 / G, "floor").to(device);
          EXPECT_LT(max_abs_diff(a, attend(cast(t.q), cast(t.k), cast(t.v), fused)), tol);
        }
      }
    }
  }
}

TEST(RmsNorm, MatchesDefinition) {
  torch::manual_seed(6);
  auto x = torch::randn({3, 5, 8}), g = torch::randn({8});
  auto expect = x / torch::sqrt(x.pow(2).mean(-1, true) + 1e-6) * g;
  EXPECT_LT(max_abs_diff(rms_norm(x, g, 1e-6), expect), 1e-5);
  EXPECT_EQ(rms_norm(x.to(torch::kBFloat16), g, 1e-6).scalar_type(), torch::kBFloat16);
}

// The reference path scales and masks the scores in place when nothing else touches them (no
// score noise, no bias); a zero score noise takes the general path (scores - 0 changes no bit),
// so the two must agree bit for bit, forward and backward, causal or not, with a gather, in a
// decode step (fewer queries than keys) and with dropout drawn from the same seed.
TEST(Attend, TheInPlaceScoresPathIsBitIdenticalToTheGeneralOne) {
  struct ZeroNoise : ScoreNoise {
    torch::Tensor operator()(const torch::Tensor& scores, const torch::Tensor&) const override {
      return torch::zeros_like(scores);
    }
  } zero;
  torch::manual_seed(5);
  struct Case {
    int64_t H, G, Sq, Sk;
    bool causal;
    bool gather;
    double dropout;
  };
  for (const Case& c : {Case{4, 2, 7, 7, true, false, 0.0}, Case{4, 1, 7, 7, false, false, 0.0},
                        Case{6, 3, 2, 9, true, false, 0.0}, Case{4, 2, 5, 5, true, true, 0.0},
                        Case{4, 4, 6, 6, true, false, 0.25}}) {
    const auto q0 = torch::randn({3, c.H, c.Sq, 8}) * 2.0;
    const auto k0 = torch::randn({3, c.G, c.Sk, 8});
    const auto v0 = torch::randn({3, c.G, c.Sk, 8});
    const auto g = torch::randn({3, c.H, c.Sq, 8});
    std::vector<torch::Tensor> outs, grads;
    for (const bool general : {false, true}) {
      auto q = q0.clone().requires_grad_(true), k = k0.clone().requires_grad_(true),
           v = v0.clone().requires_grad_(true);
      AttendOptions o;
      o.path = AttentionPath::kReference;
      o.causal = c.causal;
      if (c.gather) o.kv_index = torch::tensor({1, 0, 0, 1}, torch::kLong);
      if (general) o.score_noise = &zero;
      o.dropout = c.dropout;
      o.dropout_generator = seeded_generator(torch::kCPU, 99);
      auto out = attend(q, k, v, o);
      out.backward(g);
      outs.push_back(out);
      grads.push_back(torch::cat({q.grad().flatten(), k.grad().flatten(), v.grad().flatten()}));
    }
    EXPECT_TRUE(torch::equal(outs[0], outs[1])) << "forward, H " << c.H << " G " << c.G;
    EXPECT_TRUE(torch::equal(grads[0], grads[1])) << "gradients, H " << c.H << " G " << c.G;
  }
  // A gradient of the gradient (create_graph) goes through the ops, and agrees.
  const auto q = torch::randn({2, 4, 5, 8}).requires_grad_(true);
  const auto k = torch::randn({2, 2, 5, 8}), v = torch::randn({2, 2, 5, 8});
  std::vector<torch::Tensor> second;
  for (const bool general : {false, true}) {
    AttendOptions o;
    o.path = AttentionPath::kReference;
    o.causal = true;
    if (general) o.score_noise = &zero;
    const auto gq =
        torch::autograd::grad({attend(q, k, v, o).pow(2).sum()}, {q}, {}, true, true)[0];
    second.push_back(torch::autograd::grad({gq.pow(2).sum()}, {q})[0]);
  }
  EXPECT_TRUE(torch::allclose(second[0], second[1], 1e-5, 1e-6));
  EXPECT_GT(second[0].abs().sum().item<double>(), 0.0);
}

// The CPU's one-pass RoPE must train exactly as the composition of ops did: same bits forward
// and in the gradient, at every offset (decoding) and shape, including a gradient that is exactly
// zero (autograd turns -0 into +0 there).
TEST(Rope, TheOnePassCpuKernelIsBitIdenticalToTheOpsForwardAndBackward) {
  auto tables = rope_tables(40, 12, 10000.0, torch::kCPU);
  torch::manual_seed(11);
  for (const auto& [shape, offset] : std::vector<std::pair<std::vector<int64_t>, int64_t>>{
           {{3, 7, 4, 12}, 0}, {{2, 5, 1, 12}, 9}, {{1, 1, 3, 12}, 39}}) {
    auto base = torch::randn(shape) * 3.0;
    auto g = torch::randn(shape);
    g.view({-1}).narrow(0, 0, 5).fill_(-0.0);  // gradients of exactly -0
    auto fast = base.clone().requires_grad_(true);
    auto ops = base.clone().requires_grad_(true);
    auto out_fast = apply_rope(fast, tables, offset);
    auto out_ops = apply_rope_by_ops(ops, tables, offset);
    EXPECT_TRUE(torch::equal(out_fast, out_ops)) << "forward, offset " << offset;
    EXPECT_NE(out_fast.grad_fn()->name(), out_ops.grad_fn()->name());  // the kernel ran
    out_fast.backward(g);
    out_ops.backward(g);
    EXPECT_TRUE(torch::equal(fast.grad(), ops.grad())) << "gradient, offset " << offset;
    // Bit for bit, signs of zeros too.
    EXPECT_EQ(std::memcmp(fast.grad().data_ptr<float>(), ops.grad().data_ptr<float>(),
                          sizeof(float) * static_cast<size_t>(base.numel())),
              0);
  }
  // A gradient of the gradient (create_graph) is differentiable, and the ops' own.
  auto x = torch::randn({2, 6, 2, 12}).requires_grad_(true);
  auto y = torch::randn({2, 6, 2, 12}).requires_grad_(true);
  auto gy = torch::autograd::grad({apply_rope(x, tables, 3)}, {x}, {y}, true, true)[0];
  auto gy_ops = torch::autograd::grad({apply_rope_by_ops(x, tables, 3)}, {x}, {y}, true, true)[0];
  EXPECT_TRUE(torch::equal(gy, gy_ops));
  auto second = torch::autograd::grad({(gy * gy).sum()}, {y})[0];
  auto second_ops = torch::autograd::grad({(gy_ops * gy_ops).sum()}, {y})[0];
  EXPECT_TRUE(torch::allclose(second, second_ops));
  EXPECT_GT(second.abs().sum().item<double>(), 0.0);
  // Off the fast path (fp64, a non-contiguous input) the ops run; the values agree.
  auto x64 = torch::randn({2, 6, 2, 12}, torch::kDouble);
  auto t64 = rope_tables(40, 12, 10000.0, torch::kCPU, torch::kDouble);
  EXPECT_TRUE(torch::equal(apply_rope(x64, t64), apply_rope_by_ops(x64, t64)));
  auto strided = torch::randn({2, 2, 6, 12}).transpose(1, 2);
  EXPECT_TRUE(torch::equal(apply_rope(strided, tables), apply_rope_by_ops(strided, tables)));
}

TEST(Rope, RotatesAndDependsOnlyOnRelativePosition) {
  const int64_t S = 12, d = 8;
  auto tables = rope_tables(S, d, 10000.0, torch::kCPU, torch::kDouble);
  torch::manual_seed(7);
  auto q = torch::randn({1, 1, 1, d}, torch::kDouble).expand({1, S, 1, d}).contiguous();
  auto k = torch::randn({1, 1, 1, d}, torch::kDouble).expand({1, S, 1, d}).contiguous();
  auto rq = apply_rope(q, tables), rk = apply_rope(k, tables);
  // Norms are preserved, position 0 is untouched, and <q_i, k_j> depends on i - j only.
  EXPECT_LT(max_abs_diff(rq.norm(2, -1), q.norm(2, -1)), 1e-12);
  EXPECT_LT(max_abs_diff(rq[0][0], q[0][0]), 1e-15);
  auto dot = [&](int i, int j) { return (rq[0][i][0] * rk[0][j][0]).sum().item<double>(); };
  EXPECT_NEAR(dot(5, 2), dot(9, 6), 1e-12);
  EXPECT_NEAR(dot(3, 3), dot(11, 11), 1e-12);
  EXPECT_GT(std::abs(dot(5, 2) - dot(5, 3)), 1e-6);
  EXPECT_LT(max_abs_diff(rq[0].select(1, 0), testing::naive_rope(q[0].select(1, 0), 10000.0)),
            1e-12);
}

}  // namespace
}  // namespace ablate::core
