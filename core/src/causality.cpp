#include "ablate/core/causality.h"

#include <torch/torch.h>

#include <algorithm>
#include <stdexcept>

namespace ablate::core {

CausalityResult check_causality(const std::function<torch::Tensor(const torch::Tensor&)>& forward,
                                const torch::Tensor& input, const torch::Tensor& perturbed,
                                int64_t t, uint64_t seed) {
  if (t < 0 || t >= input.size(1)) {
    throw std::invalid_argument("check_causality: position " + std::to_string(t) +
                                " outside the sequence of length " + std::to_string(input.size(1)));
  }
  torch::NoGradGuard no_grad;
  torch::manual_seed(seed);
  auto a = forward(input).narrow(1, 0, t + 1);
  torch::manual_seed(seed);
  auto b = forward(perturbed).narrow(1, 0, t + 1);
  CausalityResult result;
  result.position = t;
  result.causal = torch::equal(a, b);
  result.max_abs_diff = (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
  return result;
}

CausalityResult check_attention_causality(const Attention& module, const torch::Tensor& x,
                                          int64_t t, double magnitude, uint64_t seed, int trials) {
  auto forward = [&](const torch::Tensor& in) {
    auto copy = std::dynamic_pointer_cast<AttentionImpl>(module->clone());
    return copy->forward(in);
  };
  const int64_t rest = x.size(1) - t - 1;
  CausalityResult worst;
  worst.position = t;
  for (int trial = 0; trial < std::max(trials, 1); ++trial) {
    auto perturbed = x.clone();
    if (rest > 0) {
      auto tail = perturbed.narrow(1, t + 1, rest);
      torch::manual_seed(seed + 1 + trial);
      if (trial == 0) {
        tail.copy_(torch::randn_like(tail) * magnitude);
      } else {
        const int64_t feature = torch::randint(x.size(2), {1}).item<int64_t>();
        tail.zero_();
        tail.select(2, feature).fill_(magnitude);
      }
    }
    auto r = check_causality(forward, x, perturbed, t, seed);
    worst.causal = worst.causal && r.causal;
    worst.max_abs_diff = std::max(worst.max_abs_diff, r.max_abs_diff);
  }
  return worst;
}

}  // namespace ablate::core
