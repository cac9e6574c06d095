// The data side of a training run: what a task gives the training loop (batches by step or by
// epoch, evaluation on the held-out split, the unit of throughput). Internal to experiments/.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ablate/runner/config.h"
#include "streams.h"

namespace ablate::experiments {

struct Batch {
  torch::Tensor input, target;
  int64_t items = 0;  // tokens (lm) or images (vit) in the batch
};

// What a task gives the loop: batches, evaluation and the unit of throughput.
class TaskData {
 public:
  virtual ~TaskData() = default;
  virtual Batch train_batch(int64_t step) = 0;
  // With train.epochs: batches per epoch, and batch `index` of `epoch`. Each epoch is a new
  // permutation of the whole training split (lm: of its non-overlapping seq_len windows), drawn
  // from (seed, epoch) and cut into batch_size pieces in order; an epoch's last batch may be
  // smaller.
  virtual int64_t batches_per_epoch() const = 0;
  virtual Batch epoch_batch(int64_t epoch, int64_t index) = 0;
  // Evaluation metrics of `forward` on the held-out split. The split and its order do not depend
  // on the seed, so an ensemble evaluates every member on the same batches: with members E,
  // `forward` maps inputs [E * B, ...] (member e's in rows [e * B, (e + 1) * B)) to logits
  // [E * B, ...] and the result holds E metric maps; with 1, one model's inputs and logits.
  // `subset` 0 evaluates what train.eval_batches allows of the split (a full evaluation); N > 0
  // only its first N examples (train.eval_subset: lm windows, vit images, s2s examples, for
  // decoding too), in the same batches as a full evaluation's first ones. Runs under the caller's
  // grad mode (inference mode in training) and reads the device once, at the end.
  virtual std::vector<std::map<std::string, double>> evaluate(
      const std::function<torch::Tensor(const torch::Tensor&)>& forward, torch::Device device,
      int64_t members, int64_t subset) = 0;
  // The held-out examples a full evaluation reads (train.eval_batches applied; s2s: the larger of
  // the loss's examples and the decoded ones): a train.eval_subset at or above it is no subset.
  virtual int64_t held_out_examples() const = 0;
  virtual std::string unit() const = 0;
  // The same data for another seed (data order only; the loaded splits are shared, not copied).
  virtual std::unique_ptr<TaskData> with_seed(int64_t seed) const = 0;
};

// What the vit model needs to know of its data.
struct ImageShape {
  int64_t channels = 0;  // 1 (MNIST-like) or 3 (CIFAR)
  int64_t image = 0;     // height = width in pixels
  int64_t classes = 0;   // number of labels
};
// The shape of a vit task's images; throws std::logic_error for an lm task's data.
ImageShape image_shape(const TaskData& data);

// Vocabulary of the lm: model.vocab, or 256 for bytes and GPT-2's padded 50304 for token shards.
int64_t lm_vocab(const runner::Config& c);

// What the s2s model needs to know of its data. A batch's input is the source and the decoder
// input side by side, [B, source_len + target_len]; its target is [B, target_len] with -100 at
// padding (ignored by the loss).
struct S2sShape {
  int64_t source_len = 0;  // encoder tokens per example (eos and padding included)
  int64_t target_len = 0;  // decoder tokens per example (eos and padding included)
  int64_t vocab = 0;       // model vocabulary: base, pad, eos, sentinels
  int64_t pad = 0;         // padding and the decoder's start token
};
// The shape of an s2s task's data; throws std::logic_error for another task's data.
S2sShape s2s_shape(const TaskData& data);

// Vocabulary of the s2s model: model.vocab, or 384 for bytes (256 bytes, pad, eos, 126
// sentinels) and 50304 for GPT-2 token shards (50257 tokens, pad, eos, 45 sentinels).
int64_t s2s_vocab(const runner::Config& c);

// The s2s task's data (s2s_data.cpp): span corruption over the lm corpora, or pairs.
std::unique_ptr<TaskData> load_s2s_data(const runner::Config& c);

// Token streams of a byte corpus or token shards (the lm task's data, which s2s span corruption
// reads too): 1-D int tensors of the training and held-out splits.
struct TokenStreams {
  torch::Tensor train, val;
  bool bytes = true;  // bytes (256 ids) rather than GPT-2 token shards
};
TokenStreams load_token_streams(const runner::Config& c);

// x [B, ...] repeated for `members` members: [E * B, ...] with member e's copy in rows [e * B, (e
// + 1) * B); x itself for 1.
torch::Tensor repeat_members(const torch::Tensor& x, int64_t members);

// The task's data as the config names it. Throws DataError (missing files, tokens that do not
// fit the vocabulary, splits too short for seq_len).
std::unique_ptr<TaskData> load_data(const runner::Config& c);

}  // namespace ablate::experiments
