#pragma once
// The typed configuration of one training run (docs/design.md sections 3 and 5). Torch-free.
//
// Every field has a default and a one-line doc here; the schema (schema.h) lists each field once
// more with its key, type, range and doc, and is what parsing, `ablate schema`, canonical form and
// hashing iterate over. Models and the training loop read these structs, never YAML or string
// keys.
#include <cstdint>
#include <string>

namespace ablate::runner {

// Where the examples come from.
struct DataConfig {
  // lm: fortunes | text | bin. vit: fashion-mnist | mnist | idx | cifar10 | cifar100. s2s:
  // fortunes | text | bin (span corruption) | pairs. A vit config that does not set it gets
  // fashion-mnist (resolve_defaults, parse.h).
  std::string dataset = "fortunes";
  // File or folder. Empty: the dataset's Debian package location (fortunes, fashion-mnist).
  std::string path = "";
  // lm text: share of whole documents held out; lm bin without val_path: share of tokens, taken
  // as one contiguous block at the end.
  double val_fraction = 0.1;
  // lm bin: a separate validation shard (empty: split the training shards).
  std::string val_path = "";
  // lm: tokens per training sequence (context length). s2s: raw tokens per span-corruption
  // example, or source tokens kept of a pair (longer sources are cut).
  int64_t seq_len = 128;
  // s2s pairs: target tokens kept, eos included (longer targets are cut).
  int64_t target_len = 64;
  // s2s span corruption: share of tokens masked and mean masked span length (T5: 0.15, 3).
  double noise_density = 0.15;
  double mean_span = 3.0;
};

// Model shape. d_h = dim / heads.
struct ModelConfig {
  int64_t dim = 128;       // model width d
  int64_t depth = 4;       // transformer blocks
  int64_t heads = 4;       // H, query-head outputs per attention layer
  int64_t mlp_hidden = 0;  // MLP hidden width; 0 = lm: 8/3 d rounded up to 64, vit: 4 d
  int64_t vocab = 0;  // lm, s2s: vocabulary; 0 = lm 256 / s2s 384 for bytes, 50304 for bin shards
  int64_t patch = 4;  // vit: patch side in pixels (must divide the image side)
  double norm_eps = 1e-6;          // epsilon of RMSNorm / LayerNorm
  double mlp_dropout = 0.0;        // dropout in the MLP, after the activation and after the output
  std::string mlp = "relu";        // s2s: relu (T5) | gated-gelu (T5 v1.1)
  bool tie_embeddings = true;      // s2s: logits by the shared embedding (scaled by d^-1/2, as T5)
  int64_t rel_buckets = 32;        // s2s: relative position buckets per stack (T5: 32)
  int64_t rel_max_distance = 128;  // s2s: distance where the largest bucket starts (T5: 128)
};

// The attention layer of every block (docs/design.md section 4;
// core/include/ablate/core/attention.h).
struct AttentionConfig {
  std::string variant = "mha";     // mha mqa gqa mkva gkva gqkva kdgqa dgqa pgqa wgqa
  int64_t kv_heads = 0;            // G for gqa kdgqa dgqa pgqa wgqa; 0 = heads
  int64_t q_heads = 0;             // g for gkva (required there)
  int64_t q_groups = 0;            // gq for gqkva (required there)
  int64_t kv_groups = 0;           // gkv for gqkva (required there)
  bool qk_norm = false;            // RMSNorm on queries and keys per head
  bool rope = true;                // rotary position embedding over the token index
  double rope_theta = 10000.0;     // RoPE base
  bool bias = false;               // biases on the q, k, v, o projections
  bool faithful = false;           // authors' exact behaviour instead of the robust default
  bool allow_noncausal = false;    // lm: train even if the causality check fails (faithful dynamic)
  int64_t min_per_group = 1;       // robust kdgqa/dgqa: least queries per kv head
  double eps = 1e-6;               // robust kdgqa: min-max scaling epsilon
  int64_t ema_window = 100;        // dgqa: training steps between reallocations
  double ema_beta = -1.0;          // dgqa: weight of the newest norms; < 0 = 2 / (window + 1)
  std::string dgqa_mode = "ema";   // dgqa: ema | diff
  std::string noise = "gaussian";  // robust pgqa: gaussian | uniform
  double noise_scale = 1.0;        // pgqa: multiplier on the noise
  std::string noise_target = "output";  // robust pgqa: output | scores
  bool noise_at_eval = false;           // robust pgqa: perturb in eval mode too
  std::string weight_form = "scalar";   // wgqa: scalar | row | col
  std::string weight_init = "mean";     // wgqa: mean | random
  std::string path = "auto";            // attention implementation: auto | reference | fused
  bool out_bias = false;                // a bias on the output projection even when `bias` is false
  double attn_dropout = 0.0;            // dropout on the attention probabilities (reference path)
  double out_dropout = 0.0;             // dropout after the output projection
  // Score scaling: inv_sqrt_dh (q k^T / sqrt(d_h)) or none (T5). s2s without it set: none.
  std::string scale = "inv_sqrt_dh";
  // s2s: the attention sites the variant applies to, a comma-separated subset of encoder,
  // decoder, cross; the other sites are mha. Stored in that order.
  std::string sites = "decoder,cross";
};

// Optimisation, evaluation, checkpoints and the device.
struct TrainConfig {
  int64_t steps = 1000;            // optimiser steps
  int64_t batch_size = 32;         // sequences (lm) or images (vit) per step
  double lr = 1e-3;                // peak learning rate
  double min_lr = 0.0;             // learning rate at the end of the cosine decay
  int64_t warmup = -1;             // linear warm-up steps; -1 = automatic (warmup_steps)
  double weight_decay = 0.1;       // AdamW decoupled weight decay (matrices only)
  double beta1 = 0.9;              // AdamW beta1
  double beta2 = 0.95;             // AdamW beta2
  double grad_clip = 1.0;          // global gradient norm clip; 0 = off
  int64_t eval_every = 200;        // steps between evaluations (and at the end)
  int64_t eval_batches = 0;        // batches per evaluation; 0 = the whole held-out split
  int64_t eval_subset = 0;         // all evaluations but the last: first N held-out; 0 = all
  int64_t checkpoint_every = 500;  // steps between checkpoints (and at the end); 0 = only at end
  int64_t log_every = 10;          // steps between train events in events.jsonl
  std::string device = "auto";     // auto | cpu | cuda | cuda:N
  std::string precision = "auto";  // auto (bf16 on CUDA, fp32 on CPU) | fp32 | bf16 (autocast)
  int64_t threads = 0;             // CPU threads for LibTorch; 0 = its default
  int64_t epochs = 0;              // passes over the training data; > 0 replaces steps
  bool eval_each_epoch = false;    // also evaluate at the end of every epoch (epochs > 0)
  int64_t decode_examples = 32;    // s2s: held-out examples decoded greedily per evaluation
};

// The warm-up steps of a run of `steps` optimiser steps: train.warmup when it is set (>= 0);
// automatic (-1): 100 when the run has at least 100 steps, else steps / 10 rounded down. 100 was
// the fixed default before the automatic rule: every run that was valid then warms up as it did
// (and keeps its job id); only runs shorter than 100 steps, refused then, get the scaled value.
constexpr int64_t kAutoWarmup = -1;
constexpr int64_t kLongRunWarmup = 100;
inline int64_t warmup_steps(const TrainConfig& train, int64_t steps) {
  if (train.warmup != kAutoWarmup) return train.warmup;
  return steps >= kLongRunWarmup ? kLongRunWarmup : steps / 10;
}

// Starting point of a stage: a parent checkpoint and how to convert its attention.
struct InitConfig {
  std::string from = "";         // parent run dir (its checkpoint/); empty = fresh init
  std::string convert = "none";  // none | mean_pool | wgqa
};

struct Config {
  std::string task = "lm";  // lm | vit | s2s
  int64_t seed = 0;         // fixes data order and initialisation
  DataConfig data;
  ModelConfig model;
  AttentionConfig attention;
  TrainConfig train;
  InitConfig init;
};

// Equal when their canonical forms (canonical.h) are: every field of the config's task.
bool operator==(const Config& a, const Config& b);
bool operator!=(const Config& a, const Config& b);

}  // namespace ablate::runner
