#include "ablate/core/ops.h"

#include "cpu_kernels.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>
#include <torch/version.h>
#if defined(ABLATE_WITH_CUDA)
#include <ATen/cuda/CUDAGeneratorImpl.h>
#endif

#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace ablate::core {
namespace {

// Softmax, norms and RoPE run in fp32, or fp64 when the inputs are fp64 (gradient checks).
torch::ScalarType compute_dtype(torch::ScalarType t) {
  return t == torch::kDouble ? torch::kDouble : torch::kFloat;
}

void check_shapes(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                  const AttendOptions& options) {
  auto fail = [&](const std::string& what) {
    std::ostringstream out;
    out << "attend: " << what << " (q " << q.sizes() << ", k " << k.sizes() << ", v " << v.sizes()
        << ")";
    throw std::invalid_argument(out.str());
  };
  if (q.dim() != 4 || k.dim() != 4 || v.dim() != 4) fail("q, k, v must be [B, heads, S, d]");
  if (k.sizes() != v.sizes()) fail("k and v must have the same shape");
  if (q.size(0) != k.size(0) || q.size(3) != k.size(3)) fail("batch and head size must match");
  const int64_t H = q.size(1), G = k.size(1);
  if (options.kv_index.defined()) {
    if (options.kv_index.dim() != 1 || options.kv_index.size(0) != H) fail("kv_index must be [H]");
  } else if (G == 0 || H % G != 0) {
    fail("key/value heads must divide query heads");
  }
  if (options.causal && q.size(2) > k.size(2))
    fail("causal attention needs at least as many keys as queries");
}

double score_scale(const AttendOptions& options, int64_t d) {
  return options.scale > 0.0 ? options.scale : 1.0 / std::sqrt(static_cast<double>(d));
}

// Which keys each query sees under the causal mask: [Sq, Sk], the queries being the last Sq of
// the Sk positions.
torch::Tensor causal_visible(int64_t Sq, int64_t Sk, const torch::Device& device) {
  return torch::ones({Sq, Sk}, torch::TensorOptions().dtype(torch::kBool).device(device))
      .tril(Sk - Sq);
}

torch::Tensor reference_attention(const torch::Tensor& q, torch::Tensor k, torch::Tensor v,
                                  const AttendOptions& options) {
  const int64_t B = q.size(0), H = q.size(1), S = q.size(2), d = q.size(3), Sk = k.size(2);
  if (options.kv_index.defined()) {
    k = k.index_select(1, options.kv_index);
    v = v.index_select(1, options.kv_index);
  }
  const int64_t G = k.size(1), m = H / G;
  // The m query heads of a group are consecutive, so one batched matmul per group serves them
  // all against the group's single key/value head: no copy of K or V.
  auto product = torch::matmul(q.reshape({B, G, m * S, d}), k.transpose(-2, -1));
  if (options.score_noise == nullptr && !options.bias.defined() &&
      q.scalar_type() == compute_dtype(q.scalar_type())) {
    // The common case, with the same roundings in place on the fresh product: scaled, then the
    // future masked (the mask repeated for the m heads of a group), in [B, G, m * S, Sk]. Two
    // [B, H, S, Sk] tensors and a copy less per layer than the general path below.
    product.mul_(score_scale(options, d));
    if (options.causal) {
      product.masked_fill_(causal_visible(S, Sk, q.device()).logical_not().repeat({m, 1}),
                           -std::numeric_limits<double>::infinity());
    }
    auto probs = torch::softmax(product, -1);
    probs = dropout(probs, options.dropout, options.dropout_generator);
    return torch::matmul(probs, v).view({B, H, S, d});
  }
  auto scores = product.mul(score_scale(options, d)).view({B, H, S, Sk});
  torch::Tensor visible;
  if (options.causal) visible = causal_visible(S, Sk, q.device());
  if (options.score_noise != nullptr) scores = scores - (*options.score_noise)(scores, visible);
  auto logits = scores.to(compute_dtype(q.scalar_type()));
  if (options.bias.defined()) logits = logits + options.bias.to(logits.scalar_type());
  if (options.causal) {
    logits = logits.masked_fill(visible.logical_not(), -std::numeric_limits<double>::infinity());
  }
  auto probs = torch::softmax(logits, -1).to(q.scalar_type());
  probs = dropout(probs, options.dropout, options.dropout_generator);
  return torch::matmul(probs.view({B, G, m * S, Sk}), v).view({B, H, S, d});
}

torch::Tensor fused_attention(torch::Tensor q, torch::Tensor k, torch::Tensor v,
                              const AttendOptions& options) {
#if TORCH_VERSION_MAJOR >= 2
  const int64_t H = q.size(1), Sq = q.size(2), Sk = k.size(2);
  // The kernels' own causal flag aligns queries with the first keys; a bias or a shorter query
  // block gets an explicit mask instead.
  torch::Tensor mask;
  bool causal = options.causal;
  if (options.bias.defined()) {
    mask = options.bias.to(q.scalar_type());
    if (causal) {
      mask = mask.masked_fill(causal_visible(Sq, Sk, q.device()).logical_not(),
                              -std::numeric_limits<double>::infinity());
    }
    causal = false;
  } else if (causal && Sq != Sk) {
    mask = causal_visible(Sq, Sk, q.device());
    causal = false;
  }
  // An undefined tensor would reach the kernel as a present, uninitialised mask: no mask is
  // nullopt.
  const std::optional<torch::Tensor> attn_mask =
      mask.defined() ? std::optional<torch::Tensor>(mask) : std::nullopt;
#if TORCH_VERSION_MAJOR > 2 || TORCH_VERSION_MINOR >= 1
  const std::optional<double> scale =
      options.scale > 0.0 ? std::optional<double>(options.scale) : std::nullopt;
#else
  if (options.scale > 0.0) q = q * (options.scale * std::sqrt(static_cast<double>(q.size(3))));
#endif
  if (options.kv_index.defined()) {
    k = k.index_select(1, options.kv_index);
    v = v.index_select(1, options.kv_index);
  } else if (k.size(1) != H) {
#if TORCH_VERSION_MAJOR > 2 || TORCH_VERSION_MINOR >= 5
    return at::scaled_dot_product_attention(q, k, v, attn_mask, /*dropout_p=*/0.0, causal, scale,
                                            /*enable_gqa=*/true);
#else
    k = k.repeat_interleave(H / k.size(1), 1);
    v = v.repeat_interleave(H / v.size(1), 1);
#endif
  }
#if TORCH_VERSION_MAJOR > 2 || TORCH_VERSION_MINOR >= 1
  return at::scaled_dot_product_attention(q, k, v, attn_mask, /*dropout_p=*/0.0, causal, scale);
#else
  return at::scaled_dot_product_attention(q, k, v, attn_mask, /*dropout_p=*/0.0, causal);
#endif
#else
  (void)q;
  (void)k;
  (void)v;
  (void)options;
  throw std::logic_error("fused attention needs LibTorch >= 2.0");
#endif
}

}  // namespace

at::Generator seeded_generator(const torch::Device& device, uint64_t seed) {
  at::Generator generator;
#if defined(ABLATE_WITH_CUDA)
  if (device.is_cuda()) {
    generator = at::cuda::detail::createCUDAGenerator(device.has_index() ? device.index() : -1);
  }
#endif
  if (!generator.defined()) {
    if (!device.is_cpu()) {
      throw std::invalid_argument("no generator for device " + device.str() + " in this build");
    }
    generator = at::detail::createCPUGenerator();
  }
  generator.set_current_seed(seed);
  return generator;
}

torch::Tensor dropout(const torch::Tensor& x, double p, at::Generator generator) {
  if (p <= 0.0) return x;
  if (p >= 1.0) throw std::invalid_argument("dropout probability must be in [0, 1)");
  torch::Tensor mask;
  {
    torch::NoGradGuard no_grad;
    mask = torch::empty_like(x, x.options().dtype(torch::kFloat)).bernoulli_(1.0 - p, generator);
  }
  return x * mask.to(x.scalar_type()) * (1.0 / (1.0 - p));
}

bool fused_attention_available() { return TORCH_VERSION_MAJOR >= 2; }

bool fused_gqa_available() {
  return TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 5);
}

torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& gain, double eps) {
  const auto dtype = compute_dtype(x.scalar_type());
  auto xf = x.to(dtype);
  auto y = xf * torch::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return (y * gain.to(dtype)).to(x.scalar_type());
}

RopeTables rope_tables(int64_t seq, int64_t head_dim, double theta, const torch::Device& device,
                       torch::ScalarType dtype) {
  if (head_dim % 2 != 0) {
    throw std::invalid_argument("RoPE needs an even head size, got " + std::to_string(head_dim));
  }
  const int64_t half = head_dim / 2;
  // Angles in fp64 on the host, then cast: the tables are exact to the target precision.
  auto f64 = torch::TensorOptions().dtype(torch::kDouble);
  auto inv_freq = torch::pow(theta, torch::arange(half, f64) * (-2.0 / head_dim));
  auto angles = torch::outer(torch::arange(seq, f64), inv_freq);
  auto to = torch::TensorOptions().dtype(dtype).device(device);
  return {angles.cos().to(to), angles.sin().to(to)};
}

namespace {

void check_rope_tables(const torch::Tensor& x, const RopeTables& tables, int64_t offset) {
  if (x.dim() != 4 || offset < 0 || tables.cos.size(0) < offset + x.size(1) ||
      tables.cos.size(1) != x.size(3) / 2) {
    throw std::invalid_argument("apply_rope: tables do not cover the input");
  }
}

// x [B, S, n, 2h] rotated by the angles whose cos and sin are c and s ([1, S, 1, h]), as ops:
// RoPE forward, and (with -s) its gradient.
torch::Tensor rotate_by_ops(const torch::Tensor& x, const torch::Tensor& c,
                            const torch::Tensor& s) {
  const int64_t half = x.size(3) / 2;
  auto x1 = x.narrow(-1, 0, half), x2 = x.narrow(-1, half, half);
  return torch::cat({x1 * c - x2 * s, x2 * c + x1 * s}, -1);
}

detail::RopeShape rope_shape(const torch::Tensor& x) {
  return {x.size(0), x.size(1), x.size(2), x.size(3) / 2};
}

// RoPE of an fp32 CPU tensor in one pass each way (cpu_kernels.h): the same numbers as the
// composition of ops, without its eight passes and five intermediate tensors.
struct CpuRope : torch::autograd::Function<CpuRope> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& cos, const torch::Tensor& sin) {
    ctx->save_for_backward({cos, sin});
    auto out = torch::empty_like(x);
    detail::rope_forward(rope_shape(x), x.data_ptr<float>(), cos.data_ptr<float>(),
                         sin.data_ptr<float>(), out.data_ptr<float>());
    return out;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto g = grads[0].contiguous();
    if (torch::GradMode::is_enabled()) {
      // create_graph: the gradient must itself be differentiable, so it is built from ops (the
      // rotation by minus the angle).
      const int64_t S = g.size(1), half = g.size(3) / 2;
      return {rotate_by_ops(g, saved[0].view({1, S, 1, half}), -saved[1].view({1, S, 1, half})),
              torch::Tensor(), torch::Tensor()};
    }
    auto gx = torch::empty_like(g);
    detail::rope_backward(rope_shape(g), g.data_ptr<float>(), saved[0].data_ptr<float>(),
                          saved[1].data_ptr<float>(), gx.data_ptr<float>());
    return {gx, torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor apply_rope_by_ops(const torch::Tensor& x, const RopeTables& tables, int64_t offset) {
  check_rope_tables(x, tables, offset);
  const int64_t S = x.size(1), half = x.size(3) / 2;
  return rotate_by_ops(x.to(tables.cos.scalar_type()),
                       tables.cos.narrow(0, offset, S).view({1, S, 1, half}),
                       tables.sin.narrow(0, offset, S).view({1, S, 1, half}))
      .to(x.scalar_type());
}

torch::Tensor apply_rope(const torch::Tensor& x, const RopeTables& tables, int64_t offset) {
  check_rope_tables(x, tables, offset);
  const bool cpu_fp32 = x.device().is_cpu() && x.scalar_type() == torch::kFloat &&
                        tables.cos.scalar_type() == torch::kFloat && x.is_contiguous() &&
                        tables.cos.is_contiguous() && tables.sin.is_contiguous();
  if (!cpu_fp32) return apply_rope_by_ops(x, tables, offset);
  const int64_t S = x.size(1);
  return CpuRope::apply(x, tables.cos.narrow(0, offset, S), tables.sin.narrow(0, offset, S));
}

AttentionPath resolve_path(const AttendOptions& options) {
  switch (options.path) {
    case AttentionPath::kReference:
      return AttentionPath::kReference;
    case AttentionPath::kFused:
      if (!fused_attention_available()) {
        throw std::invalid_argument(
            "attention.path = fused needs LibTorch >= 2.0 (this build has " TORCH_VERSION
            "); valid here: auto, reference");
      }
      if (options.dropout > 0.0) {
        throw std::invalid_argument(
            "attention.path = fused cannot draw attention dropout from the layer's own generator "
            "(attention.attn_dropout > 0); use auto or reference");
      }
      if (options.score_noise != nullptr) {
        throw std::invalid_argument(
            "attention.path = fused cannot perturb the scores (noise_target: scores); use auto or "
            "reference");
      }
      if (options.bias.defined() && options.bias.requires_grad()) {
        throw std::invalid_argument(
            "attention.path = fused cannot train a score bias (s2s relative positions); use auto "
            "or reference");
      }
      return AttentionPath::kFused;
    case AttentionPath::kAuto:
      break;
  }
  const bool explicit_probabilities = options.score_noise != nullptr || options.dropout > 0.0 ||
                                      (options.bias.defined() && options.bias.requires_grad());
  return fused_attention_available() && !explicit_probabilities ? AttentionPath::kFused
                                                                : AttentionPath::kReference;
}

torch::Tensor attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                     const AttendOptions& options) {
  check_shapes(q, k, v, options);
  if (resolve_path(options) == AttentionPath::kFused) return fused_attention(q, k, v, options);
  return reference_attention(q, k, v, options);
}

}  // namespace ablate::core
