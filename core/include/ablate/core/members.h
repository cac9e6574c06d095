// Ensembles (docs/design.md, "Ensembles"): E members of one model, the same config with different
// seeds, trained as one batched model. Every parameter of an ensemble module, and every piece of
// dynamic attention state, has a leading member dimension [E, ...]: member e's slice holds exactly
// what the single model's tensor of the same name would hold. Activations fold the members into
// the batch: rows [e * B, (e + 1) * B) of a [E * B, ...] activation are member e's.
//
// Layers use the helpers below in place of a single model's calls, so one module class computes
// both forms; a module with members = 0 is a single model and its code path is unchanged.
#pragma once

#include <ATen/core/Generator.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/types.h>

#include <cstdint>

namespace ablate::core {

// Member e's random streams. What a single run draws from the global generators, member e draws
// from these, which the training loop seeds as a single run seeds the global ones.
struct MemberRandom {
  at::Generator cpu;     // in place of the global CPU generator (faithful dgqa's repair draws)
  at::Generator device;  // in place of the global generator of the model's device (pgqa noise)
};

// Every direct parameter of `module` becomes [members, ...its shape], zero: the ensemble form of a
// module built for one member. Its values come from copy_member_in.
void stack_parameters(torch::nn::Module& module, int64_t members);

// x [E * N, ..., d] viewed member-major as [E, N, ..., d].
torch::Tensor by_member(const torch::Tensor& x, int64_t members);

// A per-member tensor p [E, ...rest] with ones inserted after the member dimension, so that it
// broadcasts against a member-major tensor of rank `rank` ([E, ..., rest]).
torch::Tensor member_broadcast(const torch::Tensor& p, int64_t rank);

// x [E * N, ..., in], weight [E, out, in], bias [E, out] or undefined: member e's rows times
// member e's weight (one batched matrix product). Returns [E * N, ..., out].
torch::Tensor member_linear(const torch::Tensor& x, const torch::Tensor& weight,
                            const torch::Tensor& bias);

// `linear` applied as a single model (members == 0: its own forward, unchanged) or as an ensemble
// whose weight and bias were stacked.
torch::Tensor apply_linear(const torch::nn::Linear& linear, const torch::Tensor& x,
                           int64_t members);

// RMSNorm (ops.h) with a gain per member: x [E * N, ..., d], gain [E, d]; members == 0: rms_norm.
torch::Tensor apply_rms_norm(const torch::Tensor& x, const torch::Tensor& gain, double eps,
                             int64_t members);

// Copies member `member` between an ensemble module and a single module of the same structure.
// Parameters and buffers are matched by name: an ensemble tensor with one more dimension than the
// single one is stacked (slice `member`); any other is shared by the members (copied whole).
// Throws std::invalid_argument naming a tensor that is missing or does not fit.
void copy_member_in(torch::nn::Module& ensemble, int64_t member, const torch::nn::Module& single);
void copy_member_out(const torch::nn::Module& ensemble, int64_t member, torch::nn::Module& single);

}  // namespace ablate::core
