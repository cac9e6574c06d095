#pragma once
// Greedy decoding of the lm and s2s models, with KV caches (decode_step) or by recomputing the
// whole prefix at every step, and what decoding costs: tokens per second and KV-cache bytes per
// token (docs/design.md section 5, "Decoding"). One model (not an ensemble), eval mode.
#include <torch/types.h>

#include <cstdint>

#include "ablate/experiments/models.h"
#include "ablate/experiments/s2s_model.h"

namespace ablate::experiments {

struct Decoded {
  torch::Tensor tokens;  // [B, steps]: the tokens chosen, in order
  torch::Tensor logits;  // [B, steps, vocab]: the logits each was chosen from
};

// Continues `prompt` [B, P] by `steps` tokens, each the argmax of the last position's logits.
Decoded lm_greedy(LmImpl& model, const torch::Tensor& prompt, int64_t steps, bool cached);

// Decodes `steps` tokens for `source` [B, Ls], starting from the start token (options.pad). No
// stop at eos: the number of steps is the caller's.
Decoded s2s_greedy(S2sImpl& model, const torch::Tensor& source, int64_t steps, bool cached);

// KV-cache bytes one decoded token adds, over every layer that caches per token (the lm's
// blocks; the s2s decoder's self-attention), in `dtype`.
int64_t kv_cache_bytes_per_token(torch::nn::Module& model, torch::ScalarType dtype);
// s2s: the cross-attention caches' bytes per source token (0 for the lm).
int64_t kv_cache_bytes_per_source_token(torch::nn::Module& model, torch::ScalarType dtype);

struct DecodeSpeed {
  double tokens_per_s = 0.0;  // generated tokens (batch x steps) per second of decoding
  int64_t batch = 0, prompt = 0, steps = 0;  // what was measured
};
// Greedy cached decoding of `steps` tokens for a batch of `batch` random prompts (lm) or sources
// (s2s) of `prompt` tokens, timed after one warm-up token. The model is put in eval mode and
// left there.
DecodeSpeed measure_decode(torch::nn::Module& model, int64_t batch, int64_t prompt, int64_t steps,
                           const torch::Device& device);

}  // namespace ablate::experiments
