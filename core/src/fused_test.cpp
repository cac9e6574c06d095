// The fused attention path (at::scaled_dot_product_attention, LibTorch >= 2.0; enable_gqa from
// 2.5) against the reference path (explicit matmul, fp32 softmax, matmul), module by module: the
// forward output and the gradients of the input and of every parameter, for every variant, causal
// and not, in fp32 and bf16. And what the fused kernel is given: the G key/value heads of a static
// layout, never K/V repeated to H heads by ablate.
//
// Tolerances (inputs N(0, 1), weights N(0, 0.25), d_h = 8, S = 17; measured differences are a
// few times smaller):
//   fp32: |fused - reference| <= 2e-5 on outputs, 1e-4 on gradients (sums over 2 x 17 tokens);
//   bf16: relative to the largest reference value, 3e-2 on outputs and 6e-2 on gradients: bf16
//         keeps 8 bits of mantissa (relative step 2^-8 = 0.4%) and the two paths round in
//         different places (the reference path rounds scores and probabilities to bf16, the fused
//         kernel accumulates in fp32).
#include <ATen/record_function.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <sstream>

#include "ablate/core/attention.h"
#include "test_support.h"

namespace ablate::core {
namespace {

using testing::copy_parameters;
using testing::max_abs_diff;
using testing::random_input;
using testing::randomize;

struct Case {
  std::string name;
  AttentionOptions options;
};

// Every variant, in its default (robust) mode and, for the dynamic and perturbed ones, faithful.
std::vector<Case> every_variant(bool causal) {
  auto o = [&](Variant v) {
    return AttentionOptions(32, 4).variant(v).causal(causal).rope(causal).qk_norm(true);
  };
  std::vector<Case> cases = {
      {"mha", o(Variant::kMha)},
      {"gqa", o(Variant::kGqa).kv_heads(2)},
      {"mqa", o(Variant::kMqa)},
      {"mkva", o(Variant::kMkva)},
      {"gkva", o(Variant::kGkva).q_heads(2)},
      {"gqkva", o(Variant::kGqkva).q_groups(2).kv_groups(2)},
      {"kdgqa", o(Variant::kKdgqa).kv_heads(2)},
      {"dgqa", o(Variant::kDgqa).kv_heads(2).ema_window(1)},
      {"pgqa", o(Variant::kPgqa).kv_heads(2)},
      {"wgqa", o(Variant::kWgqa).kv_heads(2).weight_form(WeightForm::kRow)},
  };
  if (!causal) {  // the faithful dynamic variants leak the future; they are for encoders
    cases.push_back({"kdgqa-faithful", o(Variant::kKdgqa).kv_heads(2).faithful(true)});
    cases.push_back({"dgqa-faithful", o(Variant::kDgqa).kv_heads(2).ema_window(1).faithful(true)});
    cases.push_back({"pgqa-faithful", o(Variant::kPgqa).kv_heads(2).faithful(true)});
  }
  return cases;
}

struct Pass {
  torch::Tensor output, input_grad;
  std::vector<torch::Tensor> parameter_grads;
};

// Two training forwards (so that the dynamic variants run on a learned, uneven allocation), then
// a forward and backward whose output and gradients are returned. The same seed before each
// forward gives pgqa the same noise draw on both paths.
Pass run(Attention& m, const torch::Tensor& x_in) {
  m->train();
  for (int i = 0; i < 2; ++i) {
    torch::NoGradGuard no_grad;
    torch::manual_seed(40 + i);
    m->forward(x_in);
  }
  m->zero_grad();
  auto x = x_in.detach().clone().requires_grad_(true);
  torch::manual_seed(42);
  auto y = m->forward(x);
  // A weighted sum, so every output element has its own gradient.
  auto w = torch::linspace(-1.0, 1.0, y.numel()).view(y.sizes()).to(y.dtype());
  (y * w).sum().backward();
  Pass p{y.detach(), x.grad(), {}};
  for (const auto& param : m->parameters()) p.parameter_grads.push_back(param.grad());
  return p;
}

double max_abs(const torch::Tensor& t) { return t.abs().max().to(torch::kDouble).item<double>(); }

// On the CPU always, and on the GPU too where there is one (scripts/gpu-check).
TEST(Fused, AgreesWithReferenceForwardAndBackwardOnEveryVariant) {
  if (!fused_attention_available()) GTEST_SKIP() << "no fused kernel in LibTorch " TORCH_VERSION;
  std::vector<torch::Device> devices = {torch::kCPU};
  if (torch::cuda::is_available()) devices.emplace_back(torch::kCUDA, 0);
  for (const auto& device : devices) {
    for (auto dtype : {torch::kFloat, torch::kBFloat16}) {
      const bool bf16 = dtype == torch::kBFloat16;
      for (bool causal : {false, true}) {
        for (const auto& c : every_variant(causal)) {
          std::ostringstream what;
          what << c.name << (causal ? " causal " : " ") << dtype << " on " << device;
          Attention ref(AttentionOptions(c.options).path(AttentionPath::kReference));
          Attention fused(AttentionOptions(c.options).path(AttentionPath::kFused));
          ASSERT_EQ(fused->path(), AttentionPath::kFused) << what.str();
          randomize(*ref, 7);
          copy_parameters(*ref, *fused);
          ref->to(device, dtype);
          fused->to(device, dtype);
          auto x = random_input(2, 17, 32, 8).to(device, dtype);
          auto a = run(ref, x), b = run(fused, x);
          ASSERT_TRUE(torch::equal(ref->allocation(), fused->allocation())) << what.str();

          const double out_tol = bf16 ? 3e-2 * max_abs(a.output) : 2e-5;
          EXPECT_LE(max_abs_diff(a.output, b.output), out_tol) << what.str() << ": output";
          auto grad_tol = [&](const torch::Tensor& g) { return bf16 ? 6e-2 * max_abs(g) : 1e-4; };
          EXPECT_LE(max_abs_diff(a.input_grad, b.input_grad), grad_tol(a.input_grad))
              << what.str() << ": input gradient";
          auto names = ref->named_parameters().keys();
          ASSERT_EQ(a.parameter_grads.size(), b.parameter_grads.size());
          for (size_t i = 0; i < a.parameter_grads.size(); ++i) {
            ASSERT_TRUE(a.parameter_grads[i].defined()) << what.str() << ": " << names[i];
            EXPECT_LE(max_abs_diff(a.parameter_grads[i], b.parameter_grads[i]),
                      grad_tol(a.parameter_grads[i]))
                << what.str() << ": gradient of " << names[i];
          }
        }
      }
    }
  }
}

// The key/value shapes at::scaled_dot_product_attention was called with (recorded through
// LibTorch's RecordFunction observers, which see every dispatched operator).
thread_local std::vector<std::vector<int64_t>> sdpa_key_shapes;

std::unique_ptr<at::ObserverContext> record_sdpa(const at::RecordFunction& fn) {
  if (std::string(fn.name()) == "aten::scaled_dot_product_attention" && fn.inputs().size() > 2) {
    sdpa_key_shapes.push_back(fn.inputs()[1].toTensor().sizes().vec());
  }
  return nullptr;
}

std::vector<std::vector<int64_t>> sdpa_calls(Attention& m, const torch::Tensor& x) {
  sdpa_key_shapes.clear();
  auto handle =
      at::addThreadLocalCallback(at::RecordFunctionCallback(record_sdpa).needsInputs(true));
  m->forward(x);
  at::removeCallback(handle);
  return sdpa_key_shapes;
}

TEST(Fused, StaticLayoutsGiveTheKernelTheirKeyValueHeadsUnrepeated) {
  if (!fused_gqa_available()) {
    GTEST_SKIP() << "LibTorch " TORCH_VERSION " has no enable_gqa (needs >= 2.5)";
  }
  struct Expect {
    AttentionOptions options;
    int64_t key_heads;  // what the kernel must receive
  };
  const std::vector<Expect> cases = {
      {AttentionOptions(64, 8).variant(Variant::kMha), 8},
      {AttentionOptions(64, 8).variant(Variant::kGqa).kv_heads(2), 2},
      {AttentionOptions(64, 8).variant(Variant::kMqa), 1},
      {AttentionOptions(64, 8).variant(Variant::kPgqa).kv_heads(4), 4},
      {AttentionOptions(64, 8).variant(Variant::kWgqa).kv_heads(2), 2},
      {AttentionOptions(64, 8).variant(Variant::kGqkva).q_groups(4).kv_groups(2), 2},
      // Dynamic layouts: uneven groups, so the kernel gets K/V gathered to the 8 heads on the
      // device (one index_select, no host synchronisation).
      {AttentionOptions(64, 8).variant(Variant::kKdgqa).kv_heads(2), 8},
  };
  for (const auto& c : cases) {
    for (bool causal : {false, true}) {
      Attention m(AttentionOptions(c.options).causal(causal));
      ASSERT_EQ(m->path(), AttentionPath::kFused);
      auto calls = sdpa_calls(m, random_input(2, 5, 64, 3));
      ASSERT_EQ(calls.size(), 1u) << *m;
      EXPECT_EQ(calls[0], (std::vector<int64_t>{2, c.key_heads, 5, 8})) << *m;
    }
  }
}

TEST(Fused, ScoreNoiseKeepsTheReferencePath) {
  Attention m(AttentionOptions(32, 4)
                  .variant(Variant::kPgqa)
                  .kv_heads(2)
                  .noise_target(NoiseTarget::kScores));
  EXPECT_EQ(m->path(), AttentionPath::kReference);
  if (!fused_attention_available()) GTEST_SKIP() << "no fused kernel in LibTorch " TORCH_VERSION;
  EXPECT_TRUE(sdpa_calls(m, random_input(2, 5, 32, 4)).empty());
}

}  // namespace
}  // namespace ablate::core
