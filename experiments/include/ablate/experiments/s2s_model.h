#pragma once
// The s2s task's model (docs/design.md section 5): a T5-style encoder-decoder over the attention
// core. Pre-norm blocks with RMSNorm (no bias, no mean subtraction, as T5's layer norm), T5's
// bucketed relative position bias (bidirectional in the encoder, causal in the decoder; one table
// per stack, shared by its layers, added to every layer's scores), a ReLU or gated-GELU MLP, one
// token embedding shared by both stacks and, optionally, by the output (tied: logits from
// x * dim^-1/2, as T5). Each attention site (encoder self-attention, decoder self-attention,
// cross-attention) has its own options, so a variant can apply at some sites only.
// Ensembles (members > 0) as the lm and vit models: [E * B, ...] in and out.
#include <torch/nn/cloneable.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <cstdint>

#include "ablate/core/attention.h"
#include "ablate/experiments/models.h"

namespace ablate::experiments {

struct S2sOptions {
  int64_t vocab = 384;             // token ids in [0, vocab)
  int64_t pad = 256;               // padding (masked out of the encoder) and decoder start id
  int64_t dim = 128;               // model width
  int64_t depth = 4;               // blocks per stack (encoder and decoder)
  int64_t hidden = 512;            // MLP hidden width
  double norm_eps = 1e-6;          // RMSNorm epsilon
  double mlp_dropout = 0.0;        // dropout after the MLP activation and after its output
  bool gated_gelu = false;         // MLP: gelu(x W0) * (x W1) (T5 v1.1) instead of relu(x W)
  bool tie_embeddings = true;      // logits by the shared embedding, input scaled by dim^-1/2
  int64_t rel_buckets = 32;        // relative position buckets per stack
  int64_t rel_max_distance = 128;  // distance at which the last bucket starts
  core::AttentionOptions encoder{128, 4};  // encoder self-attention (not causal)
  core::AttentionOptions decoder{128, 4};  // decoder self-attention (causal)
  core::AttentionOptions cross{128, 4};    // decoder cross-attention (not causal)
  int64_t members = 0;  // ensemble members (core/members.h); 0 = one model. Sets attention's.
};

// T5's relative position bucket of key position j seen from query position i, for every pair of
// `queries` query positions (starting at `query_offset`) and `keys` key positions: [queries,
// keys] int64. With n = buckets (halved when bidirectional, the upper half for keys after the
// query), distances below n / 2 get their own bucket and larger ones share logarithmically
// spaced buckets up to max_distance, beyond which all fall in the last. Causal: keys after the
// query fall in bucket 0 (the mask hides them anyway). Computed in fp32 as T5 does, so bucket
// edges match its implementation exactly.
torch::Tensor relative_position_buckets(int64_t queries, int64_t keys, bool bidirectional,
                                        int64_t buckets, int64_t max_distance,
                                        int64_t query_offset = 0);

// One stack's learned bias: a [buckets, heads] table (stacked [E, buckets, heads]) looked up by
// relative_position_buckets. forward -> [1, H, Sq, Sk] (an ensemble: [E, H, Sq, Sk]).
class RelativeBiasImpl : public torch::nn::Cloneable<RelativeBiasImpl> {
 public:
  RelativeBiasImpl(int64_t heads, int64_t buckets, int64_t max_distance, bool bidirectional,
                   int64_t members);
  void reset() override;
  torch::Tensor forward(int64_t queries, int64_t keys, int64_t query_offset = 0);

  int64_t heads, buckets, max_distance;
  bool bidirectional;
  int64_t members;
  torch::Tensor relative_bias;  // [buckets, heads] (or [E, buckets, heads])
};
TORCH_MODULE(RelativeBias);

// The T5 MLP: wo(relu(wi x)) or wo(gelu_tanh(wi_0 x) * wi_1 x), dropout after the activation.
struct S2sMlp {
  torch::nn::Linear wi{nullptr}, wi_1{nullptr}, wo{nullptr};  // wi_1 only when gated
};

// Encoder block: x + attn(norm(x), bias), then x + mlp(norm(x)).
class S2sEncoderBlockImpl : public torch::nn::Cloneable<S2sEncoderBlockImpl>, public SeededDropout {
 public:
  explicit S2sEncoderBlockImpl(const S2sOptions& options);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& bias);

  S2sOptions options;
  torch::Tensor norm1, norm2;  // RMSNorm gains [dim]
  core::Attention attention{nullptr};
  S2sMlp mlp;

 protected:
  core::AttentionImpl& block_attention() override { return *attention; }
};
TORCH_MODULE(S2sEncoderBlock);

// Decoder block: x + self_attn(norm(x), causal, bias), x + cross_attn(norm(x), memory), then
// x + mlp(norm(x)).
class S2sDecoderBlockImpl : public torch::nn::Cloneable<S2sDecoderBlockImpl>, public SeededDropout {
 public:
  explicit S2sDecoderBlockImpl(const S2sOptions& options);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& memory,
                        const torch::Tensor& self_bias, const torch::Tensor& cross_bias);
  // The next positions with the two attentions' caches (one model, eval).
  torch::Tensor decode_step(const torch::Tensor& x, const torch::Tensor& memory,
                            const torch::Tensor& self_bias, const torch::Tensor& cross_bias,
                            core::KvCache& self_cache, core::KvCache& cross_cache);

  S2sOptions options;
  torch::Tensor norm1, norm2, norm3;
  core::Attention self_attention{nullptr}, cross_attention{nullptr};
  S2sMlp mlp;

 protected:
  core::AttentionImpl& block_attention() override { return *self_attention; }
  std::vector<core::AttentionImpl*> more_attentions() override { return {cross_attention.get()}; }
};
TORCH_MODULE(S2sDecoderBlock);

// The encoder-decoder. source [B, Ls] and decoder input [B, Lt] (the target shifted right,
// starting with pad) -> logits [B, Lt, vocab]. Source positions holding `pad` are hidden from the
// encoder's and the cross-attention's keys.
class S2sImpl : public torch::nn::Cloneable<S2sImpl> {
 public:
  explicit S2sImpl(const S2sOptions& options);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& source, const torch::Tensor& decoder_input);

  // The two halves of forward: the encoder's output and the -inf bias of padded source keys
  // ([B, 1, 1, Ls], undefined when the source has no padding).
  struct Encoded {
    torch::Tensor memory, key_padding;
  };
  Encoded encode(const torch::Tensor& source);
  torch::Tensor decode(const Encoded& encoded, const torch::Tensor& decoder_input);

  // Decoding with KV caches (one model, eval): decoder tokens [B, s] are the next s positions.
  // Each decoder block caches its self-attention's keys and values as they come, and its
  // cross-attention's of the encoder output once. Logits [B, s, vocab] as decode gives them for
  // those positions.
  struct Caches {
    std::vector<core::KvCache> self, cross;  // one per decoder block
    int64_t bytes() const;                   // held by both
  };
  torch::Tensor decode_step(const Encoded& encoded, const torch::Tensor& tokens, Caches& caches);

  S2sOptions options;
  torch::nn::Embedding embed{nullptr};
  torch::nn::ModuleList encoder{nullptr}, decoder{nullptr};
  RelativeBias encoder_bias{nullptr}, decoder_bias{nullptr};
  torch::Tensor encoder_norm, decoder_norm;  // final RMSNorm gains of each stack
  torch::nn::Linear lm_head{nullptr};        // only without tie_embeddings
};
TORCH_MODULE(S2s);

// The decoder's causality check: with the source fixed, decoder inputs after position t of a
// random batch are replaced (three trials) and the logits at positions <= t must stay
// bit-identical. Each forward runs on a fresh copy of `model` in training mode. Returns the
// largest change seen at positions <= t; 0 when causal.
double s2s_causality_leak(const S2s& model, int64_t source_len, int64_t target_len, int64_t seed);

}  // namespace ablate::experiments
