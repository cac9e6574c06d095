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
  // `forward` maps a batch [B, ...] to logits [E * B, ...] (member e's in rows [e * B, (e + 1) *
  // B)) and the result holds E metric maps; with 1, the logits of one model.
  virtual std::vector<std::map<std::string, double>> evaluate(
      const std::function<torch::Tensor(const torch::Tensor&)>& forward, torch::Device device,
      int64_t members) = 0;
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

// The task's data as the config names it. Throws DataError (missing files, tokens that do not
// fit the vocabulary, splits too short for seq_len).
std::unique_ptr<TaskData> load_data(const runner::Config& c);

}  // namespace ablate::experiments
