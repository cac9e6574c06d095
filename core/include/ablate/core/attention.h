// The attention module: one module computes every variant of docs/design.md section 4 from its head
// layout (layout.h). Input and output are [B, S, dim].
//
// Projections: q_proj d -> n_q * d_h, k_proj and v_proj d -> n_kv * d_h (wgqa: H * d_h, folded
// into G heads every forward), o_proj d -> d. qk_norm applies RMSNorm with one gain of size d_h
// to queries and keys per head, before RoPE and before any sharing.
//
// Faithful and robust modes. `faithful: true` reproduces the authors' public code; the default is
// a robust variant that differs where the original is fragile or leaks the future in a causal
// model (the papers used non-causal ViT encoders, where the leak is harmless):
//
// kdgqa  faithful: each forward (train and eval) allocates queries from the current keys:
//          n_j = ||K_j||_F summed over the batch, min-max scaled without eps, a_j = round(n_j /
//          sum(n) * H) half to even, total fixed by decrementing the largest / incrementing the
//          smallest. A head can get 0 queries; with G = 2 the smaller head always gets 0, so the
//          layer is MQA on the larger-norm head; equal norms give 0/0. The original casts NaN
//          to INT_MIN and its repair loop needs about G * 2^31 increments (hours) to end on the
//          uniform allocation; here the uniform allocation comes at once, counted in
//          degenerate_steps().
//        robust: eps in the min-max scaling, at least min_per_group queries per head, and the
//          allocation used at training step t comes from the keys of step t - 1 (detached, a
//          one-step lag); eval uses the last training allocation, frozen. Causal-safe.
// dgqa   faithful: allocations start uniform; a training forward whose step (0-based count of
//          training forwards since start_epoch(), as the authors' batch index within the epoch;
//          without epochs it never restarts) is a multiple of ema_window recomputes them from
//          avg = beta *
//          current + (1 - beta) * cache (mode ema, beta 0.9) or |cache - current| (mode diff),
//          no min-max scaling, then sets cache = (cache + current) / ema_window. A rounded
//          total off H is fixed as the original does: on the host, random heads from the CPU
//          generator one at a time, drawn only then (so this mode synchronises with the host).
//          Every eval forward recomputes from the eval batch and overwrites the cache with its
//          norms, so eval depends on batch order; in mode diff a batch seen twice gives 0/0
//          (see degenerate_steps()).
//        robust: cache is a true EMA of the norms (weight ema_beta on the newest, default
//          2 / (ema_window + 1)), updated after each training step; at each window boundary the
//          allocation is recomputed from statistics of earlier steps only (mode ema: the cache;
//          mode diff: |cache - cache at the previous boundary|), with at least min_per_group per
//          head; eval uses the training allocation, frozen. Causal-safe.
// pgqa   faithful: per group of m = H/G heads (in group order, one draw call each), a uniform
//          draw shaped (m, S * d_h), shared by every batch element, with a zero diagonal, is
//          standardised per row and given each batch element's row mean and std of the attention
//          output (after softmax and after multiplying by V); noise_scale times it is subtracted
//          from the output, in training and eval. Row statistics span all positions: a leak.
//        robust: noise kind / target / noise_at_eval are chosen (default gaussian, output, train
//          only); statistics are per query position (output: over d_h at that position; scores:
//          over the keys that position can see); in scores mode masked
//          entries are never touched. Causal-safe.
//
// All allocations, caches and step counters are registered buffers, so checkpoints keep them.
//
// Ensembles (members > 0, members.h): every parameter and every state buffer above gains a
// leading member dimension, the input is [E * B, S, dim] with member e in rows [e * B, (e + 1) *
// B), and member e computes exactly what a single module holding its slices computes: its own
// allocations, caches, step counters and noise norms, its own dropout seeds and random streams
// (set_member_random). Static variants without dropout or noise attend with the members folded
// into the batch in one call; the others attend member by member.
#pragma once

#include <torch/nn/cloneable.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "ablate/core/dynamic.h"
#include "ablate/core/layout.h"
#include "ablate/core/members.h"
#include "ablate/core/ops.h"

namespace ablate::core {

enum class DgqaMode { kEma, kDiff };
enum class NoiseTarget { kOutput, kScores };
enum class WeightForm { kScalar, kRow, kCol };
enum class WeightInit { kMean, kRandom };
enum class ScoreScale { kInvSqrtDh, kNone };

struct AttentionOptions {
  AttentionOptions(int64_t dim, int64_t heads) : dim_(dim), heads_(heads) {}

  TORCH_ARG(int64_t, dim);                      // model width d; d_h = d / heads
  TORCH_ARG(int64_t, heads);                    // H, output heads
  TORCH_ARG(Variant, variant) = Variant::kMha;  // see layout.h
  TORCH_ARG(int64_t, kv_heads) = 0;             // G (gqa, kdgqa, dgqa, pgqa, wgqa); 0 means H
  TORCH_ARG(int64_t, q_heads) = 0;              // g for gkva (required there)
  TORCH_ARG(int64_t, q_groups) = 0;             // gq for gqkva (required there)
  TORCH_ARG(int64_t, kv_groups) = 0;            // gkv for gqkva (required there)
  TORCH_ARG(bool, bias) = false;                // biases on q, k, v and output projections
  TORCH_ARG(bool, out_bias) = false;        // a bias on the output projection even without `bias`
  TORCH_ARG(bool, qk_norm) = false;         // RMSNorm on queries and keys per head
  TORCH_ARG(double, norm_eps) = 1e-6;       // epsilon of that RMSNorm
  TORCH_ARG(bool, rope) = false;            // rotary position embedding (language model)
  TORCH_ARG(double, rope_theta) = 10000.0;  // RoPE base
  TORCH_ARG(bool, causal) = false;          // mask future keys (language model)
  TORCH_ARG(bool, faithful) = false;        // authors' exact behaviour (see above)
  TORCH_ARG(int64_t, min_per_group) = 1;    // robust kdgqa/dgqa: least queries per kv head
  TORCH_ARG(double, eps) = 1e-6;            // robust kdgqa: min-max scaling epsilon
  TORCH_ARG(int64_t, ema_window) = 100;     // dgqa: training steps between reallocations
  TORCH_ARG(double, ema_beta) = -1.0;       // dgqa: weight of newest norms; < 0 = default
  TORCH_ARG(DgqaMode, dgqa_mode) = DgqaMode::kEma;     // dgqa: allocate by EMA or by its change
  TORCH_ARG(NoiseKind, noise) = NoiseKind::kGaussian;  // robust pgqa: noise distribution
  TORCH_ARG(double, noise_scale) = 1.0;                // pgqa: multiplier on the noise
  TORCH_ARG(NoiseTarget, noise_target) = NoiseTarget::kOutput;  // robust pgqa: what is perturbed
  TORCH_ARG(bool, noise_at_eval) = false;  // robust pgqa: perturb in eval mode too
  TORCH_ARG(WeightForm, weight_form) = WeightForm::kScalar;  // wgqa: shape of each weight
  TORCH_ARG(WeightInit, weight_init) = WeightInit::kMean;    // wgqa: G/H everywhere or N(0, 1)
  TORCH_ARG(AttentionPath, path) = AttentionPath::kAuto;     // attention implementation
  TORCH_ARG(double, attn_dropout) = 0.0;  // dropout on the attention probabilities (training)
  TORCH_ARG(double, out_dropout) = 0.0;   // dropout after the output projection (training)
  TORCH_ARG(int64_t, members) = 0;        // ensemble members stacked (members.h); 0 = one model
  TORCH_ARG(ScoreScale, scale) = ScoreScale::kInvSqrtDh;  // q k^T / sqrt(d_h), or unscaled (T5)
};

// Throws std::invalid_argument naming the option and the valid values; returns the layout.
HeadLayout validate(const AttentionOptions& options);

// The dgqa EMA weight actually used (resolves ema_beta < 0).
double resolved_ema_beta(const AttentionOptions& options);

// Keys and values of the positions decoded so far, for one attention layer (decode_step): the G
// key/value heads the layer computes (n_kv; wgqa's folded G, not its H), never the H heads
// attention reads them as. Keys are stored after qk_norm and RoPE.
struct KvCache {
  torch::Tensor k, v;  // [B, n_kv, length, d_h] (undefined while empty)
  int64_t length() const { return k.defined() ? k.size(2) : 0; }
  // Bytes held: 2 * B * n_kv * length * d_h * element size.
  int64_t bytes() const;
};

class AttentionImpl : public torch::nn::Cloneable<AttentionImpl> {
 public:
  explicit AttentionImpl(const AttentionOptions& options);
  AttentionImpl(int64_t dim, int64_t heads) : AttentionImpl(AttentionOptions(dim, heads)) {}

  void reset() override;
  void pretty_print(std::ostream& stream) const override;

  // LibTorch's Module::to(dtype) casts every buffer; here parameters take the dtype while the
  // allocation state (int64) and statistics (fp32) only move device, so model->to(kBFloat16)
  // cannot corrupt a step counter or an index.
  void to(torch::Device device, torch::Dtype dtype, bool non_blocking = false) override;
  void to(torch::Dtype dtype, bool non_blocking = false) override;
  void to(torch::Device device, bool non_blocking = false) override;

  // x: [B, S, dim] -> [B, S, dim]. Self-attention, or cross-attention when `memory` [B, Sk, dim]
  // is given: queries from x, keys and values from memory (no RoPE; causal must be off). `bias`
  // is added to the scaled scores, [b, H, S, Sk] with b = 1 (every row), B (one per row) or, in
  // an ensemble, E (one per member); -inf hides a key.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& memory = {},
                        const torch::Tensor& bias = {});

  // Decoding with a cache, one model, eval mode: x [B, s, dim] holds the next s positions (from
  // cache.length()). Self-attention: their keys and values are appended to the cache and the
  // queries attend to every cached position (causally when the layer is). Cross-attention
  // (memory [B, Sk, dim]): the memory's keys and values fill the cache on the first call and are
  // reused after. `bias` as in forward, over the cached keys. Gives the rows forward would give
  // for these positions of the whole sequence, for every static variant, wgqa (from its folded
  // projection) and the robust kdgqa and dgqa, whose eval allocation is frozen; the faithful
  // kdgqa and dgqa decode with their last allocation frozen too (full recomputation would
  // reallocate at every step), and a pgqa that perturbs at eval is refused.
  torch::Tensor decode_step(const torch::Tensor& x, KvCache& cache,
                            const torch::Tensor& memory = {}, const torch::Tensor& bias = {});

  // Seeds of the generators the next training forwards draw their dropout masks from (attention
  // probabilities, output). The training loop sets them every step from (seed, step, layer), so
  // masks do not depend on what other layers drew and a resumed run draws the same ones.
  void set_dropout_seeds(uint64_t probabilities, uint64_t output);
  // The same per ensemble member (one seed of each kind per member).
  void set_member_dropout_seeds(const std::vector<uint64_t>& probabilities,
                                const std::vector<uint64_t>& output);
  // Ensembles: member e's random streams (members.h), shared with the other layers as a single
  // run's global generators are; the training loop reseeds them every step.
  void set_member_random(std::vector<MemberRandom> random);

  // Called by the training loop at the first step of every epoch: faithful dgqa's step counter
  // restarts at 0, as the authors' training loop passes the batch index within the epoch (so a
  // reallocation happens at every epoch's first batch). Nothing else depends on epochs.
  void start_epoch();

  // Queries per key/value head used by the most recent forward (static variants: the layout's),
  // [n_kv] int64 ([E, n_kv] for an ensemble). For diagnostics and tests.
  torch::Tensor allocation() const;
  // kdgqa / dgqa: the key-head norms [G] ([E, G]) of the most recent forward (undefined before
  // one); a diagnostic, not saved in checkpoints.
  torch::Tensor last_key_norms() const { return last_key_norms_; }
  // kdgqa / dgqa: forwards whose shares were degenerate (0/0) and fell back to uniform (of
  // member `member` in an ensemble).
  int64_t degenerate_steps(int64_t member = 0) const;
  // The attention path a training forward takes (tests and benchmarks check it); with
  // attn_dropout > 0 that is the reference path, and eval forwards may take the fused one.
  AttentionPath path() const;

  const HeadLayout& layout() const { return layout_; }
  int64_t head_dim() const { return options.dim() / options.heads(); }

  AttentionOptions options;
  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  torch::Tensor q_norm, k_norm;      // qk_norm gains [d_h]
  torch::Tensor k_weight, v_weight;  // wgqa weights: [G, m] scalar, [G, m, d] row, [G, m, d_h] col

  // Dynamic state (buffers, saved in checkpoints).
  torch::Tensor counts;          // [G] int64: current queries per key/value head
  torch::Tensor cache;           // [G] float: dgqa cache of key-head norms
  torch::Tensor boundary_cache;  // [G] float: robust dgqa diff mode, cache at last boundary
  torch::Tensor step;            // 0-dim int64: dgqa training forwards so far
  torch::Tensor degenerate;      // 0-dim int64: degenerate allocations seen
  torch::Tensor noise_norm;      // 0-dim float: pgqa, norm of the last noise applied (diagnostic)

  // wgqa: the folded key/value projection of G heads, (weight [G*d_h, d], bias or undefined).
  std::pair<torch::Tensor, torch::Tensor> folded_kv(bool key) const;

 private:
  // The dynamic state one forward reads and updates: the buffers themselves (one model) or
  // member e's slices of them (views, so updates land in the buffers).
  struct State {
    torch::Tensor counts, cache, boundary_cache, step, degenerate, noise_norm;
  };
  State state_of(int64_t member);  // member < 0: the single model's buffers
  // What a dynamic layer's forward allocated: the kv head of each query head (undefined for
  // static layouts), the counts it used and the key-head norms it saw.
  struct Used {
    torch::Tensor kv_index, counts, key_norms;
  };
  // Attention of one model or one member: q [B, H, S, d_h], k and v [B, n_kv, S, d_h] -> [B, H,
  // S, d_h], with that model's state, dropout seed and random streams (member < 0: one model).
  torch::Tensor attend_heads(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                             const torch::Tensor& bias, int64_t member, Used& used);
  // The options of one attend call: causal, path, scale and that call's bias.
  AttendOptions attend_options(const torch::Tensor& bias) const;
  void cast(const std::optional<torch::Device>& device, const std::optional<torch::Dtype>& dtype,
            bool non_blocking);
  // Keys and values of `source` [B, S, dim] as [B, n_kv, S, d_h], keys after qk_norm (one model
  // or an ensemble; RoPE is the caller's).
  std::pair<torch::Tensor, torch::Tensor> keys_values(const torch::Tensor& source, int64_t B,
                                                      int64_t S);
  // The RoPE tables, rebuilt when shorter than `length` or on another device or dtype.
  const RopeTables& rope_for(int64_t length, const torch::Tensor& like);
  Used kv_index_for(const torch::Tensor& k, State& state, const at::Generator& cpu);
  torch::Tensor perturb_output(const torch::Tensor& out, State& state,
                               const at::Generator& generator);
  const MemberRandom* random_of(int64_t member) const;  // nullptr for one model

  HeadLayout layout_;
  torch::Tensor q_index_;         // [H] int64 buffer, when n_q != H: the query each head reads
  torch::Tensor last_counts_;     // counts the last forward used (robust kdgqa lags `counts`)
  torch::Tensor last_key_norms_;  // key-head norms of the last forward (kdgqa, dgqa)
  RopeTables rope_;               // cached RoPE tables, rebuilt when too short or moved
  // Dropout generators' seeds: one of each (one model) or one per member.
  std::vector<uint64_t> probabilities_seeds_{0}, output_seeds_{0};
  std::vector<MemberRandom> random_;  // ensembles: the members' random streams
};
TORCH_MODULE(Attention);

// Bytes a layer's cache grows by per decoded position of one sequence: 2 * n_kv * d_h * the
// element size of `dtype` (keys and values).
int64_t kv_cache_bytes_per_token(const AttentionOptions& options, torch::ScalarType dtype);

// Number of parameters of one attention layer per docs/design.md section 4: d * d_h * (n_q + 2
// n_kv)
// + d * d, plus biases, qk_norm gains and wgqa weights.
int64_t expected_parameter_count(const AttentionOptions& options);

}  // namespace ablate::core
