// Helpers shared by core's tests: inputs, weight copying, and a naive attention written
// independently of the module (explicit per-head loops over the layout's head map) to check it.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <functional>
#include <string>

#include "ablate/core/attention.h"

namespace ablate::core::testing {

inline torch::Tensor random_input(int64_t B, int64_t S, int64_t d, uint64_t seed,
                                  torch::ScalarType dtype = torch::kFloat) {
  torch::manual_seed(seed);
  return torch::randn({B, S, d}, torch::TensorOptions().dtype(dtype));
}

// Copies every parameter of `from` into the same-named parameter of `to` (shapes must match).
inline void copy_parameters(const torch::nn::Module& from, torch::nn::Module& to) {
  torch::NoGradGuard no_grad;
  auto target = to.named_parameters();
  for (const auto& p : from.named_parameters()) target[p.key()].copy_(p.value());
}

// Gives every parameter fresh random values (so qk_norm gains and biases are not trivial).
inline void randomize(torch::nn::Module& module, uint64_t seed) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(seed);
  for (auto& p : module.parameters()) p.copy_(torch::randn_like(p) * 0.5);
}

inline torch::Tensor naive_rms(const torch::Tensor& x, const torch::Tensor& g, double eps) {
  return x / torch::sqrt(x.pow(2).mean(-1, true) + eps) * g;
}

// Rotate-half RoPE for one head's [S, d] block, angles from scratch.
inline torch::Tensor naive_rope(const torch::Tensor& x, double theta) {
  const int64_t S = x.size(0), d = x.size(1), half = d / 2;
  auto out = torch::empty_like(x);
  for (int64_t s = 0; s < S; ++s) {
    for (int64_t i = 0; i < half; ++i) {
      const double angle = s * std::pow(theta, -2.0 * i / d);
      auto a = x[s][i], b = x[s][i + half];
      out[s][i] = a * std::cos(angle) - b * std::sin(angle);
      out[s][i + half] = b * std::cos(angle) + a * std::sin(angle);
    }
  }
  return out;
}

// softmax(q k^T / sqrt(d) + bias) v per head with the module's own weights, looping over heads
// and the layout's (query, key/value) map; keys and values from `memory` when given (cross-
// attention, no RoPE), no 1/sqrt(d) with scale none, `bias` [1 or B, H, S, Sk] added per head.
// Static variants only; computed in double.
inline torch::Tensor naive_attention(AttentionImpl& m, const torch::Tensor& x_in,
                                     const torch::Tensor& memory = {},
                                     const torch::Tensor& bias = {}) {
  torch::NoGradGuard no_grad;
  auto x = x_in.to(torch::kDouble);
  auto source = memory.defined() ? memory.to(torch::kDouble) : x;
  const auto& o = m.options;
  const int64_t B = x.size(0), S = x.size(1), d_h = m.head_dim(), H = o.heads();
  auto proj = [&](const torch::nn::Linear& l, int64_t head, const torch::Tensor& in) {
    auto w = l->weight.to(torch::kDouble).narrow(0, head * d_h, d_h);
    auto y = torch::matmul(in, w.t());
    if (l->bias.defined()) y = y + l->bias.to(torch::kDouble).narrow(0, head * d_h, d_h);
    return y;  // [B, S, d_h]
  };
  const double scale = o.scale() == ScoreScale::kNone ? 1.0 : 1.0 / std::sqrt(double(d_h));
  std::vector<torch::Tensor> heads;
  for (int64_t h = 0; h < H; ++h) {
    auto q = proj(m.q_proj, m.layout().q_of_head[h], x);
    auto k = proj(m.k_proj, m.layout().kv_of_head[h], source);
    auto v = proj(m.v_proj, m.layout().kv_of_head[h], source);
    if (o.qk_norm()) {
      q = naive_rms(q, m.q_norm.to(torch::kDouble), o.norm_eps());
      k = naive_rms(k, m.k_norm.to(torch::kDouble), o.norm_eps());
    }
    std::vector<torch::Tensor> batch;
    for (int64_t b = 0; b < B; ++b) {
      auto qb = q[b], kb = k[b];
      if (o.rope() && !memory.defined()) {
        qb = naive_rope(qb, o.rope_theta());
        kb = naive_rope(kb, o.rope_theta());
      }
      auto scores = torch::matmul(qb, kb.t()) * scale;
      if (bias.defined()) {
        scores =
            scores + bias[bias.size(0) == 1 ? 0 : b][bias.size(1) == 1 ? 0 : h].to(torch::kDouble);
      }
      if (o.causal()) {
        for (int64_t i = 0; i < S; ++i)
          for (int64_t j = i + 1; j < S; ++j) scores[i][j] = -INFINITY;
      }
      batch.push_back(torch::matmul(torch::softmax(scores, -1), v[b]));
    }
    heads.push_back(torch::stack(batch));
  }
  auto concat = torch::cat(heads, -1);  // [B, S, H * d_h]
  auto y = torch::matmul(concat, m.o_proj->weight.to(torch::kDouble).t());
  if (m.o_proj->bias.defined()) y = y + m.o_proj->bias.to(torch::kDouble);
  return y;
}

inline double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

inline std::vector<int64_t> to_vector(const torch::Tensor& t) {
  auto c = t.to(torch::kCPU).to(torch::kLong).contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

}  // namespace ablate::core::testing
