#include "ablate/core/dynamic.h"

#include <torch/torch.h>

#include <stdexcept>
#include <vector>

namespace ablate::core {
namespace {

// A generator argument for torch's random functions: nullopt (the global generator) when
// undefined.
c10::optional<at::Generator> or_global(const at::Generator& generator) {
  if (!generator.defined()) return c10::nullopt;
  return generator;
}

torch::Tensor one_hot_at(const torch::Tensor& index, int64_t size) {
  return (torch::arange(size, index.options()) == index).to(torch::kLong);
}

// Statistics over the last dimension restricted to `mask` (float 0/1, broadcast to x).
struct RowStats {
  torch::Tensor mean, std, count;
};
RowStats masked_row_stats(const torch::Tensor& x, const torch::Tensor& mask) {
  auto count = mask.sum(-1, /*keepdim=*/true);
  auto mean = (x * mask).sum(-1, true) / count.clamp_min(1);
  auto var = ((x - mean).pow(2) * mask).sum(-1, true) / (count - 1).clamp_min(1);
  // sqrt only where defined and differentiable: sqrt(0) behind a where() would still send NaN
  // into the gradient, and so would a constant row (var 0: a query whose only visible key was
  // dropped by attention dropout). There the std is 0 and its gradient 0.
  auto enough = (count >= 2).logical_and(var > 0);
  auto std = torch::where(enough, var, torch::ones_like(var)).sqrt() * enough.to(var.scalar_type());
  return {mean, std, count};
}

// The authors' dgqa repair, on the host as theirs is: while the total is above H, draw an index
// (torch.randint(0, G, (1,)), the CPU generator, whatever the device) and decrement that head if
// it is above the minimum; while below, draw one and increment it. Nothing is drawn when the
// total is already H, so the random stream moves exactly as theirs does.
torch::Tensor fix_at_random_on_host(const torch::Tensor& counts, int64_t H, int64_t lo,
                                    const at::Generator& generator) {
  auto host = counts.to(torch::kCPU).contiguous();
  std::vector<int64_t> c(host.data_ptr<int64_t>(), host.data_ptr<int64_t>() + host.numel());
  const int64_t G = static_cast<int64_t>(c.size());
  int64_t total = 0;
  for (int64_t x : c) total += x;
  auto draw = [&] {
    return torch::randint(G, {1}, or_global(generator), torch::kLong).item<int64_t>();
  };
  while (total > H) {
    const int64_t i = draw();
    if (c[i] > lo) {
      --c[i];
      --total;
    }
  }
  while (total < H) {
    ++c[draw()];
    ++total;
  }
  return torch::tensor(c, torch::kLong).to(counts.device());
}

// Noise from a raw draw: zeroed on each [R, C] matrix's diagonal, standardised per row, then
// given the target's row mean and std; statistics over `mask` (float 0/1, broadcast). `raw`
// broadcasts against `target` (one draw may serve several batch elements).
NoiseDraw noise_from_draw(torch::Tensor raw, const torch::Tensor& target, const torch::Tensor& t,
                          const torch::Tensor& mask) {
  const int64_t R = raw.size(-2), C = raw.size(-1);
  raw = raw * (1 - torch::eye(R, C, raw.options()));
  auto r = masked_row_stats(raw, mask);
  auto z = torch::where(r.std > 0, (raw - r.mean) / r.std.clamp_min(1e-30), torch::zeros_like(raw));
  auto s = masked_row_stats(t, mask.expand_as(t));
  auto noise = (z * s.std + s.mean) * mask;
  return {raw, noise.to(target.scalar_type())};
}

}  // namespace

torch::Tensor key_head_norms(const torch::Tensor& k) {
  torch::NoGradGuard no_grad;
  return k.detach().to(torch::kFloat).pow(2).sum({2, 3}).sqrt().sum(0);
}

torch::Tensor minmax_scale(const torch::Tensor& norms, double eps) {
  auto lo = norms.min(), hi = norms.max();
  return (norms - lo) / (hi - lo + eps);
}

Allocation allocate_queries(const torch::Tensor& shares, const AllocateOptions& options,
                            const at::Generator& generator) {
  torch::NoGradGuard no_grad;
  const int64_t G = shares.size(0), H = options.heads, lo = options.min_per_group;
  if (G <= 0 || H < G * lo) {
    throw std::invalid_argument("allocate_queries: " + std::to_string(G) + " key/value heads x " +
                                std::to_string(lo) + " minimum exceed " + std::to_string(H) +
                                " query heads");
  }
  auto w = shares.to(torch::kFloat);
  auto total = w.sum();
  auto fraction = w / total;
  auto degenerate = fraction.isfinite().all().logical_not().logical_or(total <= 0);
  auto uniform = torch::full({G}, H / G, w.options().dtype(torch::kLong));
  // Spread the H % G remainder of a non-divisible uniform start over the first heads.
  uniform = uniform + (torch::arange(G, uniform.options()) < H % G).to(torch::kLong);
  // torch::round rounds half to even, as the authors' Python does.
  auto rounded =
      torch::round(torch::nan_to_num(fraction, 0.0, 0.0, 0.0) * static_cast<double>(H - G * lo))
          .to(torch::kLong) +
      lo;
  auto counts = torch::where(degenerate, uniform, rounded);
  if (options.fix == FixRule::kRandom)
    return {fix_at_random_on_host(counts, H, lo, generator), degenerate};

  // Each share rounds by at most 1/2, so the total is off by at most G/2: that many fixed
  // iterations remove the error without asking the device whether to go on.
  const int64_t iterations = G / 2 + 1;
  for (int64_t it = 0; it < iterations; ++it) {
    auto excess = counts.sum() - H;
    auto dec = (excess > 0).to(torch::kLong), inc = (excess < 0).to(torch::kLong);
    counts = counts - one_hot_at(counts.argmax(), G) * dec + one_hot_at(counts.argmin(), G) * inc;
  }
  return {counts, degenerate};
}

torch::Tensor kv_index_from_counts(const torch::Tensor& counts, int64_t heads) {
  auto ends = counts.cumsum(0);                                  // [G]
  auto h = torch::arange(heads, counts.options()).unsqueeze(1);  // [H, 1]
  return (h >= ends.unsqueeze(0)).sum(1);                        // blocks ended at or before h
}

NoiseDraw draw_shared_group_noise(const torch::Tensor& target, const at::Generator& generator) {
  if (target.dim() != 4) {
    throw std::invalid_argument("draw_shared_group_noise: expected a [B, G, m, C] target");
  }
  const int64_t G = target.size(1), R = target.size(2), C = target.size(3);
  const auto dtype = target.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
  auto t = target.to(dtype);
  auto opts = t.options().requires_grad(false);
  std::vector<torch::Tensor> draws;  // one call per group, in order, as the original
  for (int64_t g = 0; g < G; ++g) draws.push_back(torch::rand({R, C}, or_global(generator), opts));
  return noise_from_draw(torch::stack(draws), target, t, torch::ones({R, C}, opts));
}

NoiseDraw draw_noise(const torch::Tensor& target, NoiseKind kind, const torch::Tensor& visible,
                     const at::Generator& generator) {
  const int64_t R = target.size(-2), C = target.size(-1);
  const auto dtype = target.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
  auto t = target.to(dtype);
  auto opts = t.options().requires_grad(false);
  auto raw = kind == NoiseKind::kUniform ? torch::rand(t.sizes(), or_global(generator), opts)
                                         : torch::randn(t.sizes(), or_global(generator), opts);
  auto mask = visible.defined() ? visible.to(dtype) : torch::ones({R, C}, opts);
  return noise_from_draw(raw, target, t, mask.expand_as(t));
}

}  // namespace ablate::core
