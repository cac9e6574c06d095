#pragma once
// Steps of the attention core on fp32 CPU tensors in one pass each way, forward and backward,
// with exactly the roundings of LibTorch's op-by-op composition they replace (ops.cpp), so a
// model trains bit-identically either way: today the rotate-half RoPE (two products, a sum or a
// difference, each rounded once). (A one-pass scale-and-mask of the scores was measured too: no
// gain over mul_ and masked_fill_ in place, so it is not here.) Built with
// -ffp-contract=off: a fused multiply-add would round once where the composition rounds twice.
// Torch-free; ops.cpp wraps them in autograd functions.
#include <cstdint>

namespace ablate::core::detail {

// The shape both kernels walk: `rows` = B * S * n vectors of 2 * half values (x [B, S, n, d]
// contiguous, d = 2 * half), the vector of row r at position (r / n) % S, whose angles are row
// ((r / n) % S) of cos and sin ([S, half] contiguous: the tables' rows of these positions).
struct RopeShape {
  int64_t batch = 0;      // B
  int64_t positions = 0;  // S
  int64_t heads = 0;      // n
  int64_t half = 0;       // d / 2
};

// out[.., :half] = x1 * cos - x2 * sin; out[.., half:] = x2 * cos + x1 * sin.
void rope_forward(const RopeShape& shape, const float* x, const float* cos, const float* sin,
                  float* out);

// The gradient of rope_forward's input from its output's gradient g, as autograd sums it:
// gx[.., :half] = g1 * cos + g2 * sin; gx[.., half:] = g2 * cos - g1 * sin; each plus a zero (the
// two halves' gradients reach x as full-size tensors, zero outside their half, that autograd
// adds: -0 becomes +0).
void rope_backward(const RopeShape& shape, const float* g, const float* cos, const float* sin,
                   float* gx);

}  // namespace ablate::core::detail
