// The optimiser of a run and of an ensemble: AdamW over a model's parameters, member e's state
// moved between an ensemble's optimiser and a single model's (so each member's checkpoint holds
// exactly a single run's optimizer.pt), and gradient clipping by each member's own norm.
// Internal to experiments/.
#pragma once

#include <torch/nn/module.h>
#include <torch/optim/adamw.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "ablate/runner/config.h"

namespace ablate::experiments {

// AdamW with weight decay on matrices only. `member_dims` is 1 for an ensemble, whose stacked
// parameters have one dimension more than the member's (a [E, d] gain is a vector per member).
std::unique_ptr<torch::optim::AdamW> make_optimizer(torch::nn::Module& module,
                                                    const runner::TrainConfig& t,
                                                    int64_t member_dims = 0);

// Member `member`'s AdamW state (step, first and second moments) between an ensemble's optimiser
// and a single model's built by make_optimizer on a module of the same structure (parameters in
// the same order). A parameter without state (no step taken yet) is skipped.
void copy_optimizer_member_in(torch::optim::AdamW& ensemble, int64_t member,
                              torch::optim::AdamW& single);
void copy_optimizer_member_out(torch::optim::AdamW& ensemble, int64_t member,
                               torch::optim::AdamW& single);

// Clips each member's gradients (parameters [E, ...]) to a total 2-norm of at most `max_norm`, as
// clip_grad_norm_ does for one model, and returns each member's norm before clipping.
std::vector<double> clip_member_grad_norms(const std::vector<torch::Tensor>& parameters,
                                           int64_t members, double max_norm);

}  // namespace ablate::experiments
