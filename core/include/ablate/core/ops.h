// Pure tensor functions the attention module is built from: RMSNorm, RoPE and the grouped
// attention itself (fused and reference paths). Free functions over tensors, no module state, so
// tests and benchmarks can call each one alone.
//
// Precision rules (docs/design.md section 4): softmax, RMSNorm and RoPE tables are computed in fp32
// (fp64 stays fp64); masked scores are -inf, never a large finite bias.
#pragma once

#include <ATen/core/Generator.h>
#include <torch/types.h>

#include <cstdint>

namespace ablate::core {

// Which implementation computes softmax(q k^T / sqrt(d_h)) v.
enum class AttentionPath {
  kAuto,       // the fastest correct path for the inputs (see resolve_path)
  kReference,  // explicit matmul, fp32 softmax, matmul: the reference and the fallback
  kFused,      // at::scaled_dot_product_attention (LibTorch >= 2.0)
};

// True when this LibTorch has the public fused kernel (>= 2.0) / its GQA flag (>= 2.5).
bool fused_attention_available();
bool fused_gqa_available();

// RMSNorm over the last dimension with a learnable gain of that size; computed in fp32 (fp64 for
// fp64 inputs) and returned in the input's dtype.
torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& gain, double eps);

// Rotary position embedding, rotate-half convention (as Qwen / Llama): for positions
// 0..seq-1 and an even head size d, frequencies theta^(-2i/d).
struct RopeTables {
  torch::Tensor cos;  // [seq, d/2], fp32 (fp64 when asked)
  torch::Tensor sin;  // [seq, d/2]
};
RopeTables rope_tables(int64_t seq, int64_t head_dim, double theta, const torch::Device& device,
                       torch::ScalarType dtype = torch::kFloat);
// x: [B, S, n, d] at positions offset .. offset + S - 1; returns x rotated, in x's dtype. On the
// CPU in fp32 one pass each way (forward and gradient), bit-identical to apply_rope_by_ops.
torch::Tensor apply_rope(const torch::Tensor& x, const RopeTables& tables, int64_t offset = 0);
// The same as LibTorch ops: what apply_rope computes elsewhere (GPU, fp64, bf16).
torch::Tensor apply_rope_by_ops(const torch::Tensor& x, const RopeTables& tables,
                                int64_t offset = 0);

// Noise perturbing the pre-softmax scores (pgqa with noise_target: scores). Given the scaled
// scores [B, H, S, S] and which entries are visible (mask, or undefined for all), returns the
// noise to subtract; it must be zero on entries that are not visible.
struct ScoreNoise {
  virtual ~ScoreNoise() = default;
  virtual torch::Tensor operator()(const torch::Tensor& scores,
                                   const torch::Tensor& visible) const = 0;
};

// A generator of `device`'s kind seeded with `seed`, independent of the global one, so a layer's
// random draws (dropout masks) depend only on its own seed, not on what other layers drew.
at::Generator seeded_generator(const torch::Device& device, uint64_t seed);

// Dropout whose mask comes from `generator`: x * mask / (1 - p), mask ~ Bernoulli(1 - p). p = 0
// returns x unchanged (no draw); p must be in [0, 1).
torch::Tensor dropout(const torch::Tensor& x, double p, at::Generator generator);

struct AttendOptions {
  // [H] int64 on q's device: key/value head read by each query head. Undefined means the
  // contiguous layout, head h -> h / (H / G), which needs no gather.
  torch::Tensor kv_index;
  bool causal = false;                        // mask keys after the query position
  AttentionPath path = AttentionPath::kAuto;  // which implementation
  const ScoreNoise* score_noise = nullptr;    // forces the reference path when set
  // Dropout on the attention probabilities (after softmax, before V), masks from
  // `dropout_generator`; > 0 forces the reference path (the fused kernels draw their masks from
  // the global generator).
  double dropout = 0.0;
  at::Generator dropout_generator;
  // Multiplier of q k^T; 0 means 1/sqrt(d). T5 does not scale: 1.
  double scale = 0.0;
  // Added to the scaled scores before the causal mask and the softmax, broadcast to [B, H, Sq,
  // Sk]: a relative position bias, or -inf on keys a query must not see (padding). A bias that
  // needs a gradient takes the reference path (the fused kernels need not differentiate it).
  torch::Tensor bias;
};

// q: [B, H, Sq, d], k and v: [B, G, Sk, d]; returns [B, H, Sq, d]. G must divide H when kv_index
// is undefined. Causal with Sq < Sk: the queries are the last Sq positions (decoding with a
// cache), so query i sees keys 0 .. Sk - Sq + i.
torch::Tensor attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                     const AttendOptions& options);

// The path `attend` takes for these inputs: kFused when a fused kernel exists and applies (no
// score noise, no dropout, no bias that needs a gradient), else kReference. An explicit kFused
// where it cannot apply throws.
AttentionPath resolve_path(const AttendOptions& options);

}  // namespace ablate::core
