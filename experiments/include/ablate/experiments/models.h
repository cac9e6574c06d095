#pragma once
// The two task models over the attention core (docs/design.md section 5): a Qwen-style decoder for
// the lm task and a Vision Transformer classifier for the vit task. Built from typed configs only.
#include <torch/nn/cloneable.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "ablate/core/attention.h"
#include "ablate/runner/config.h"

namespace ablate::experiments {

// The core's options for one attention layer of width `dim` with `heads` heads.
core::AttentionOptions attention_options(const runner::AttentionConfig& config, int64_t dim,
                                         int64_t heads, double norm_eps, bool causal);

// MLP hidden width: model.mlp_hidden, or the task default (lm: 8/3 d rounded up to a multiple
// of 64, the SwiGLU width that keeps parameters equal to a 4 d GELU MLP; vit: 4 d).
int64_t mlp_hidden(const runner::ModelConfig& model, bool swiglu);

// A block whose dropout masks come from a seed the training loop sets every step (set_dropout_seeds
// below): its attention's two sites (probabilities, output) and the MLP's two (after the
// activation, after the output) each draw from a generator seeded by (seed, site).
// In an ensemble each member has its own seed (set_member_dropout_seeds).
class SeededDropout {
 public:
  virtual ~SeededDropout() = default;
  void set_dropout_seed(uint64_t seed);
  void set_member_dropout_seeds(const std::vector<uint64_t>& seeds);
  // Dropout at MLP site 0 (after the activation) or 1 (after the output), of one model or of
  // every member of an ensemble (x [E * B, ...]); nothing is drawn at eval or with p = 0.
  torch::Tensor mlp_dropout(const torch::Tensor& x, double p, bool training, uint64_t site) const;

 protected:
  virtual core::AttentionImpl& block_attention() = 0;
  // A block's further attention layers (a decoder block's cross-attention): the i-th (from 1)
  // draws its two masks from (seed, 10 + 2 i) and (seed, 11 + 2 i).
  virtual std::vector<core::AttentionImpl*> more_attentions() { return {}; }

 private:
  std::vector<uint64_t> seeds_{0};  // one model: one seed; an ensemble: one per member
  bool members_ = false;            // seeds_ are an ensemble's
};

struct LmOptions {
  int64_t vocab = 256;                       // token ids in [0, vocab)
  int64_t dim = 128;                         // model width
  int64_t depth = 4;                         // blocks
  int64_t hidden = 384;                      // SwiGLU hidden width
  double norm_eps = 1e-6;                    // RMSNorm epsilon
  double mlp_dropout = 0.0;                  // dropout after the SwiGLU product and the MLP output
  core::AttentionOptions attention{128, 4};  // every block's attention (causal)
  int64_t members = 0;  // ensemble members (core/members.h); 0 = one model. Sets attention's.
};

// Pre-norm decoder block: x + attn(rmsnorm(x)), then x + swiglu(rmsnorm(x)).
class LmBlockImpl : public torch::nn::Cloneable<LmBlockImpl>, public SeededDropout {
 public:
  explicit LmBlockImpl(const LmOptions& options);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x);
  // The next positions of x with the attention's cache (one model, eval).
  torch::Tensor decode_step(const torch::Tensor& x, core::KvCache& cache);

  LmOptions options;
  torch::Tensor norm1, norm2;  // RMSNorm gains [dim]
  core::Attention attention{nullptr};
  torch::nn::Linear gate{nullptr}, up{nullptr}, down{nullptr};

 protected:
  core::AttentionImpl& block_attention() override { return *attention; }

 private:
  // The SwiGLU MLP on the normalised input n, with its dropout (none at eval).
  torch::Tensor mlp(const torch::Tensor& n);
};
TORCH_MODULE(LmBlock);

// Decoder-only language model: tied token embedding, blocks, final RMSNorm, logits by the
// embedding matrix. tokens [B, S] int64 -> logits [B, S, vocab].
class LmImpl : public torch::nn::Cloneable<LmImpl> {
 public:
  explicit LmImpl(const LmOptions& options);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& tokens);
  // Decoding with a KV cache (one model, eval): tokens [B, s] are the next s positions; caches
  // holds one cache per block (filled as it goes). Logits [B, s, vocab], as forward gives them
  // for those positions of the whole sequence.
  torch::Tensor decode_step(const torch::Tensor& tokens, std::vector<core::KvCache>& caches);

  LmOptions options;
  torch::nn::Embedding embed{nullptr};
  torch::nn::ModuleList blocks{nullptr};
  torch::Tensor final_norm;
};
TORCH_MODULE(Lm);

struct VitOptions {
  int64_t channels = 1;                      // image channels
  int64_t image = 28;                        // image side in pixels
  int64_t patch = 4;                         // patch side; divides image
  int64_t classes = 10;                      // output classes
  int64_t dim = 128;                         // model width
  int64_t depth = 4;                         // blocks
  int64_t hidden = 512;                      // GELU MLP hidden width
  double norm_eps = 1e-6;                    // LayerNorm epsilon
  double mlp_dropout = 0.0;                  // dropout after the GELU and the MLP output (timm)
  core::AttentionOptions attention{128, 4};  // every block's attention (not causal)
  int64_t members = 0;  // ensemble members (core/members.h); 0 = one model. Sets attention's.
};

// Pre-norm encoder block: x + attn(layernorm(x)), then x + mlp(layernorm(x)).
class VitBlockImpl : public torch::nn::Cloneable<VitBlockImpl>, public SeededDropout {
 public:
  explicit VitBlockImpl(const VitOptions& options);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x);

  VitOptions options;
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  core::Attention attention{nullptr};
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};

 protected:
  core::AttentionImpl& block_attention() override { return *attention; }
};
TORCH_MODULE(VitBlock);

// ViT classifier: patch embedding (a strided convolution), learned position embedding, blocks,
// final LayerNorm, mean over patches, linear head. images [B, C, H, W] float -> logits [B,
// classes]. An ensemble (members E) takes [E * B, ...] and gives [E * B, ...] in both models.
class VitImpl : public torch::nn::Cloneable<VitImpl> {
 public:
  explicit VitImpl(const VitOptions& options);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& images);

  VitOptions options;
  torch::nn::Conv2d patch_embed{nullptr};
  torch::Tensor position;  // [1, patches, dim]
  torch::nn::ModuleList blocks{nullptr};
  torch::nn::LayerNorm norm{nullptr};
  torch::nn::Linear head{nullptr};
};
TORCH_MODULE(Vit);

// Token embeddings of one model (embed's own forward) or of an ensemble: member e's tokens
// (rows [e * B, (e + 1) * B) of tokens [E * B, S]) index its own table of the stacked [E, V, d].
torch::Tensor embed_tokens(const torch::nn::Embedding& embed, const torch::Tensor& tokens,
                           int64_t members);
// Logits by a (stacked) embedding matrix: x [B, S, d] (or [E * B, S, d]) -> [.., S, V].
torch::Tensor tied_logits(const torch::Tensor& x, const torch::Tensor& embed_weight,
                          int64_t members);

// Every attention layer of a model, in block order.
std::vector<core::Attention> attention_layers(torch::nn::Module& model);

// Dropout masks of the next training step: block i of the model draws them from generators seeded
// by (step_seed, i), so a mask depends on the run's seed, the step and the layer only.
void set_dropout_seeds(torch::nn::Module& model, uint64_t step_seed);
// The same for an ensemble: member e's masks from (step_seeds[e], i), as its single run's.
void set_member_dropout_seeds(torch::nn::Module& model, const std::vector<uint64_t>& step_seeds);

// Re-initialises matrices and embeddings from generators seeded by (seed, parameter name), so two
// arms that differ only in their attention start from the same MLP, embedding and query/output
// weights: common random numbers across arms (docs/design.md section 2). Linear and convolution
// weights: U(-1/sqrt(fan_in), 1/sqrt(fan_in)); the token embedding: N(0, embedding_std^2);
// position tables (vit positions, s2s relative biases): N(0, 0.02^2); other parameters (norm
// gains, biases, wgqa weights) keep their deterministic construction values. The lm and vit use
// 0.02 (GPT-2); the s2s model 1.0, as T5, whose tied output divides by sqrt(dim).
void init_parameters(torch::nn::Module& model, int64_t seed, double embedding_std = 0.02);

// The language-model causality check: tokens after position t of a random batch are replaced
// (three trials) and the logits at positions <= t must stay bit-identical. Each forward runs on a
// fresh copy of `model` in training mode, so dynamic state starts equal for both runs and `model`
// is unchanged. Returns the largest change seen at positions <= t; 0 when causal.
double causality_leak(const Lm& model, int64_t seq_len, int64_t seed);

// The check both token models run: `forward(copy, x)` on fresh training-mode copies of `model`,
// for `tokens` [B, s] and, in three trials, `tokens` with the positions after t = s / 2 replaced by
// ids below `vocab` drawn from `generator`; the check's global generator is seeded seed + trial.
// The largest change seen at positions <= t; 0 when causal.
double token_causality_leak(
    const torch::nn::Module& model, const torch::Tensor& tokens, int64_t vocab,
    at::Generator generator, int64_t seed,
    const std::function<torch::Tensor(torch::nn::Module&, const torch::Tensor&)>& forward);

// Parameters of the model (for summaries and cost axes).
int64_t parameter_count(const torch::nn::Module& model);

}  // namespace ablate::experiments
