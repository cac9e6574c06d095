// The causality check: perturb the inputs after position t; a causal model's outputs at
// positions <= t must stay bit-identical. Used by the tests and, before training, by the
// language-model task, which refuses a model that fails it (docs/design.md section 4, "Causal
// safety"): the faithful dynamic variants leak the future and this is how they are caught.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <functional>

#include "ablate/core/attention.h"

namespace ablate::core {

struct CausalityResult {
  bool causal = true;         // outputs at positions <= t identical in both runs
  int64_t position = 0;       // t
  double max_abs_diff = 0.0;  // largest change seen at positions <= t
};

// Calls `forward` on `input` and on `perturbed` ([B, S, ...], equal to input at positions <= t of
// dimension 1) and compares their outputs at positions <= t. The global generator is seeded with
// `seed` before each call, so random perturbations (pgqa noise) are the same draws in both.
CausalityResult check_causality(const std::function<torch::Tensor(const torch::Tensor&)>& forward,
                                const torch::Tensor& input, const torch::Tensor& perturbed,
                                int64_t t, uint64_t seed = 0);

// For an attention module on x [B, S, dim]: positions > t are replaced, in `trials` separate
// checks, by Gaussian noise of `magnitude` (trial 0) and by `magnitude` times one input feature
// (later trials: a perturbation that moves key heads unequally, which a statistic that
// normalises away overall scale still sees). Each run uses a fresh clone of the module, so the
// state a dynamic variant updates in training mode starts equal for both runs; the module
// itself is not changed. Non-causal as soon as one trial is.
CausalityResult check_attention_causality(const Attention& module, const torch::Tensor& x,
                                          int64_t t, double magnitude = 10.0, uint64_t seed = 0,
                                          int trials = 4);

}  // namespace ablate::core
