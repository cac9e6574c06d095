// Building blocks of the data-dependent variants, as pure functions over tensors:
//  - query allocation for kdgqa and dgqa (how many of the H query heads each key/value head
//    serves), computed on the device with a fixed number of small kernels and no host
//    synchronisation, so a layer never waits for the GPU (except faithful dgqa's repair, which
//    runs on the host as the authors' does, to draw the same random numbers);
//  - the noise of pgqa.
// The module (attention.h) decides when to call them and which state feeds them.
#pragma once

#include <ATen/core/Generator.h>
#include <torch/types.h>

#include <cstdint>

namespace ablate::core {

// Frobenius norm of each key head over (tokens, head size), summed over the batch: k [B, G, S, d]
// -> [G], fp32, detached. This is n_j of the kdgqa / dgqa papers.
torch::Tensor key_head_norms(const torch::Tensor& k);

// How a rounded allocation whose total is off by a few is brought back to H.
enum class FixRule {
  kLargestSmallest,  // decrement the largest, increment the smallest (first index on ties)
  // The authors' dgqa: on the host (one device-to-host copy), draw random heads from the CPU
  // generator, one at a time, decrementing those above the minimum or incrementing, only while
  // the total is off; draws nothing when it is not.
  kRandom,
};

struct AllocateOptions {
  int64_t heads = 0;                        // H: the allocation sums to this
  int64_t min_per_group = 0;                // every key/value head gets at least this many
  FixRule fix = FixRule::kLargestSmallest;  // how the rounding error is removed
};

struct Allocation {
  torch::Tensor counts;      // [G] int64: queries per key/value head, sums to H
  torch::Tensor degenerate;  // 0-dim bool: shares were not finite, the uniform allocation was used
};

// shares: [G] non-negative weights (any scale). counts_j = min + round_half_even(w_j / sum(w) *
// (H - G * min)), then the rounding error is removed with `fix`. When the shares are not finite
// (0/0 from equal norms in the authors' kdgqa, or from a repeated batch in their dgqa `diff` mode)
// or sum to zero, the uniform allocation is used, nothing is drawn, and `degenerate` is set. The
// authors' code raises no error there: NaN cast to int is INT_MIN for every head, and its
// `while sum < H` loop then takes about G * 2^31 single increments (hours). kdgqa's loop (always
// the smallest head) ends on this same uniform allocation; dgqa's (random heads) ends on a random
// one, possibly with negative counts that its torch.split then rejects.
// kRandom draws from `generator` (a CPU generator) when it is defined, else from the global one:
// an ensemble member passes its own, seeded as a single run seeds the global one.
Allocation allocate_queries(const torch::Tensor& shares, const AllocateOptions& options,
                            const at::Generator& generator = {});

// Contiguous blocks: the first counts_0 query heads read key/value 0, the next counts_1 read
// key/value 1, and so on. A head with 0 queries is skipped. [G] -> [H] int64, on the device.
torch::Tensor kv_index_from_counts(const torch::Tensor& counts, int64_t heads);

// The kdgqa shares: min-max scaled norms, (n - min) / (max - min + eps). eps = 0 is the authors'
// formula (0/0 on equal norms).
torch::Tensor minmax_scale(const torch::Tensor& norms, double eps);

enum class NoiseKind { kUniform, kGaussian };

struct NoiseDraw {
  torch::Tensor raw;    // the random draw, zero on the diagonal of each [R, C] matrix
  torch::Tensor noise;  // raw standardised per row, rescaled to the target row's mean and std
};

// target: [..., R, C], one row per R. Gradients flow through the target's statistics, so autograd
// differentiates exactly the function computed. The raw draw (uniform [0, 1) or standard normal,
// from the global generator) has zeros on each matrix's diagonal (entries (i, i), i < min(R, C));
// it is standardised per row, then given the target row's mean and (unbiased) std. `visible` ([R,
// C] bool, broadcast) restricts the statistics to visible entries and zeroes the noise elsewhere;
// undefined means all entries. A row with fewer than two visible entries gets std 0.
// `generator` (of target's device) replaces the global one when defined (ensemble members).
NoiseDraw draw_noise(const torch::Tensor& target, NoiseKind kind, const torch::Tensor& visible = {},
                     const at::Generator& generator = {});

// Faithful pgqa's noise, drawn as the authors' code draws it. target: [B, G, m, C] (the attention
// output of each group's m heads, C = S * d_h values per head). For each group g in order, one
// uniform [0, 1) matrix (m, C) from the generator of target's device (one draw call per group),
// zero on its diagonal, standardised per row (unbiased std); that one matrix serves every batch
// element, given each element's row mean and (unbiased) std. `raw` is the [G, m, C] draw.
// `generator` as in draw_noise.
NoiseDraw draw_shared_group_noise(const torch::Tensor& target, const at::Generator& generator = {});

}  // namespace ablate::core
