// ablate_bench: forward and forward+backward time and achieved FLOP/s of the attention core, and
// the cost of decoding with a KV cache.
//
// Four levels, so a slow number can be traced to its cause:
//   Sdpa/...    at::scaled_dot_product_attention with enable_gqa (LibTorch >= 2.5): the bar
//   Attend/...  ablate's attend(): static (contiguous groups) and gathered (dynamic layouts)
//   Module/...  the whole Attention module of each variant: projections, norms, allocation
//   Decode/...  one decode_step of each variant's layer (eval) after S cached positions: the
//               time to produce the next position of B sequences (tokens/s = B / time) and the
//               KV-cache bytes a position adds (kv_bytes_per_token)
// CPU shapes always (fp32); CUDA shapes in bf16 when built with CUDA and a GPU is present,
// including the target shape B=8, Hq=16, Hkv=4, d_h=64, S=4096, causal.
// FLOPs count the attention matmuls as FlashAttention's benchmarks do: forward 4 B H S^2 d_h
// (halved when causal), backward 2.5x forward; Module adds 2 x the projection matmuls (x3 with
// backward).
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

#include "ablate/core/attention.h"
#include "ablate/core/dynamic.h"
#include "ablate/core/ops.h"

namespace ablate::core {
namespace {

struct Shape {
  int64_t B, H, G, S, d_h;
  bool causal;
  std::string name() const {
    return "B" + std::to_string(B) + "_H" + std::to_string(H) + "_G" + std::to_string(G) + "_S" +
           std::to_string(S) + "_d" + std::to_string(d_h) + (causal ? "_causal" : "");
  }
  double attention_flops(bool backward) const {
    double f = 4.0 * B * H * static_cast<double>(S) * S * d_h * (causal ? 0.5 : 1.0);
    return backward ? 3.5 * f : f;
  }
};

void sync(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize();
}

// Runs `step` (which returns a tensor to backpropagate from when `backward`) under the timer.
void run(benchmark::State& state, const torch::Device& device, double flops, bool backward,
         const std::function<torch::Tensor()>& step) {
  for (int i = 0; i < 2; ++i) {  // warm-up: allocator, kernels, tables
    auto y = step();
    if (backward) y.sum().backward();
  }
  sync(device);
  for (auto _ : state) {
    auto y = step();
    if (backward) y.sum().backward();
    sync(device);
  }
  state.counters["FLOP/s"] =
      benchmark::Counter(flops * state.iterations(), benchmark::Counter::kIsRate);
}

struct Qkv {
  torch::Tensor q, k, v;
};
Qkv make_qkv(const Shape& s, const torch::TensorOptions& o, bool grad) {
  torch::manual_seed(0);
  return {torch::randn({s.B, s.H, s.S, s.d_h}, o).requires_grad_(grad),
          torch::randn({s.B, s.G, s.S, s.d_h}, o).requires_grad_(grad),
          torch::randn({s.B, s.G, s.S, s.d_h}, o).requires_grad_(grad)};
}

void register_attend(const Shape& s, const torch::Device& device, torch::Dtype dtype,
                     const std::string& prefix) {
  auto o = torch::TensorOptions().device(device).dtype(dtype);
  for (bool backward : {false, true}) {
    const std::string pass = backward ? "fwd_bwd" : "fwd";
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 5)
    benchmark::RegisterBenchmark((prefix + "Sdpa/enable_gqa/" + pass + "/" + s.name()).c_str(),
                                 [=](benchmark::State& state) {
                                   auto t = make_qkv(s, o, backward);
                                   run(state, device, s.attention_flops(backward), backward, [&] {
                                     return at::scaled_dot_product_attention(
                                         t.q, t.k, t.v, {}, 0.0, s.causal, std::nullopt, true);
                                   });
                                 })
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
#endif
    for (bool gathered : {false, true}) {
      benchmark::RegisterBenchmark(
          (prefix + "Attend/" + (gathered ? "gathered/" : "static/") + pass + "/" + s.name())
              .c_str(),
          [=](benchmark::State& state) {
            auto t = make_qkv(s, o, backward);
            AttendOptions a;
            a.causal = s.causal;
            if (gathered) {
              // An uneven allocation, as kdgqa/dgqa produce, built on the device.
              auto counts = torch::full({s.G}, s.H / s.G, torch::kLong).to(device);
              counts[0] += 1;
              counts[s.G - 1] -= 1;
              a.kv_index = kv_index_from_counts(counts, s.H);
            }
            run(state, device, s.attention_flops(backward), backward,
                [&] { return attend(t.q, t.k, t.v, a); });
          })
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
    }
  }
}

// Every variant's layer at shape s (G key/value heads or groups where the variant has them).
std::vector<std::pair<std::string, AttentionOptions>> variants_of(const Shape& s) {
  const int64_t d = s.H * s.d_h;
  return {
      {"mha", AttentionOptions(d, s.H)},
      {"gqa", AttentionOptions(d, s.H).variant(Variant::kGqa).kv_heads(s.G)},
      {"mqa", AttentionOptions(d, s.H).variant(Variant::kMqa)},
      {"mkva", AttentionOptions(d, s.H).variant(Variant::kMkva)},
      {"gkva", AttentionOptions(d, s.H).variant(Variant::kGkva).q_heads(s.G)},
      {"gqkva",
       AttentionOptions(d, s.H).variant(Variant::kGqkva).q_groups(s.H / s.G).kv_groups(s.G)},
      {"kdgqa", AttentionOptions(d, s.H).variant(Variant::kKdgqa).kv_heads(s.G)},
      {"dgqa", AttentionOptions(d, s.H).variant(Variant::kDgqa).kv_heads(s.G).ema_window(1)},
      {"pgqa", AttentionOptions(d, s.H).variant(Variant::kPgqa).kv_heads(s.G)},
      {"wgqa", AttentionOptions(d, s.H).variant(Variant::kWgqa).kv_heads(s.G)},
  };
}

void register_modules(const Shape& s, const torch::Device& device, torch::Dtype dtype,
                      const std::string& prefix) {
  const int64_t d = s.H * s.d_h;
  for (auto& [name, options] : variants_of(s)) {
    options.causal(s.causal).rope(s.causal);
    for (bool backward : {false, true}) {
      benchmark::RegisterBenchmark(
          (prefix + "Module/" + name + "/" + (backward ? "fwd_bwd/" : "fwd/") + s.name()).c_str(),
          [=](benchmark::State& state) {
            Attention m(options);
            m->to(device, dtype);
            m->train(true);  // dynamic variants update their allocation every step
            torch::manual_seed(1);
            auto x = torch::randn({s.B, s.S, d}, torch::TensorOptions().device(device).dtype(dtype))
                         .requires_grad_(backward);
            const auto& l = m->layout();
            double proj = 2.0 * s.B * s.S * d * (l.n_q + 2 * l.kv_projection_heads) * s.d_h +
                          2.0 * s.B * s.S * d * d;
            double flops = s.attention_flops(backward) + (backward ? 3 : 1) * proj;
            std::optional<torch::NoGradGuard> no_grad;
            if (!backward) no_grad.emplace();
            run(state, device, flops, backward, [&] { return m->forward(x); });
          })
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
    }
  }
}

// Decoding: the cache holds s.S positions; each iteration appends one more to a copy of it.
void register_decode(const Shape& s, const torch::Device& device, torch::Dtype dtype,
                     const std::string& prefix) {
  const int64_t d = s.H * s.d_h;
  for (auto& [name, options] : variants_of(s)) {
    options.causal(true).rope(true);
    benchmark::RegisterBenchmark(
        (prefix + "Decode/" + name + "/" + s.name()).c_str(),
        [=](benchmark::State& state) {
          Attention m(options);
          m->to(device, dtype);
          m->eval();
          torch::NoGradGuard no_grad;
          torch::manual_seed(1);
          auto o = torch::TensorOptions().device(device).dtype(dtype);
          KvCache prefilled;
          m->decode_step(torch::randn({s.B, s.S, d}, o), prefilled);
          auto next = torch::randn({s.B, 1, d}, o);
          for (int i = 0; i < 2; ++i) {  // warm-up
            KvCache c = prefilled;
            m->decode_step(next, c);
          }
          sync(device);
          for (auto _ : state) {
            KvCache c = prefilled;  // shares the tensors; the step appends to a new one
            benchmark::DoNotOptimize(m->decode_step(next, c));
            sync(device);
          }
          state.counters["tokens/s"] = benchmark::Counter(
              static_cast<double>(s.B) * state.iterations(), benchmark::Counter::kIsRate);
          state.counters["kv_bytes_per_token"] =
              static_cast<double>(kv_cache_bytes_per_token(options, dtype));
        })
        ->Unit(benchmark::kMicrosecond)
        ->UseRealTime();
  }
}

}  // namespace
}  // namespace ablate::core

int main(int argc, char** argv) {
  using namespace ablate::core;
  const torch::Device cpu(torch::kCPU);
  for (const Shape& s : {Shape{4, 8, 2, 256, 64, true}, Shape{2, 16, 4, 1024, 64, true}}) {
    register_attend(s, cpu, torch::kFloat, "cpu/");
    register_modules(s, cpu, torch::kFloat, "cpu/");
  }
  // Decoding: batch 8, H = 8 of size 64, G = H / 4, at 128 and 1024 cached positions.
  for (const int64_t S : {128, 1024})
    register_decode(Shape{8, 8, 2, S, 64, true}, cpu, torch::kFloat, "cpu/");
  if (torch::cuda::is_available()) {
    const torch::Device gpu(torch::kCUDA, 0);
    for (const Shape& s : {Shape{8, 16, 4, 4096, 64, true}, Shape{8, 16, 4, 1024, 128, true}}) {
      register_attend(s, gpu, torch::kBFloat16, "cuda/");
      register_modules(s, gpu, torch::kBFloat16, "cuda/");
    }
    for (const int64_t S : {1024, 4096}) {
      register_decode(Shape{8, 16, 4, S, 64, true}, gpu, torch::kBFloat16, "cuda/");
    }
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
