// The data side of a training run: the seeded random streams every draw comes from, and what a
// task gives the training loop (batches by step, evaluation on the held-out split, the unit of
// throughput). Internal to experiments/.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "ablate/runner/config.h"

namespace ablate::experiments {

// splitmix64: independent, stable streams for (seed, purpose, step).
uint64_t mix(uint64_t a, uint64_t b);

// The purposes a run draws random numbers for: draw i of purpose p is seeded mix(mix(seed, p), i),
// so a resumed run redraws exactly what an uninterrupted one draws.
constexpr uint64_t kBatchStream = 1, kTorchStream = 2, kEvalStream = 3, kEpochStream = 4;

struct Batch {
  torch::Tensor input, target;
};

// What a task gives the loop: batches, evaluation and the unit of throughput.
class TaskData {
 public:
  virtual ~TaskData() = default;
  virtual Batch train_batch(int64_t step) = 0;
  // Evaluation metrics of `forward` on the held-out split.
  virtual std::map<std::string, double> evaluate(
      const std::function<torch::Tensor(const torch::Tensor&)>& forward, torch::Device device) = 0;
  virtual int64_t items_per_batch() const = 0;  // tokens or images per training batch
  virtual std::string unit() const = 0;
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
