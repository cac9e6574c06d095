// The item order of the epochs of a task's training split. Internal to experiments/.
#pragma once

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "streams.h"

namespace ablate::experiments {

// The item order of every epoch: a permutation of [0, n) drawn from (seed, epoch). The last one
// is kept, as consecutive batches ask for the same epoch.
class EpochOrder {
 public:
  EpochOrder(int64_t seed, int64_t n) : seed_(seed), n_(n) {}

  const torch::Tensor& of(int64_t epoch) {
    if (epoch != epoch_) {
      auto gen = at::detail::createCPUGenerator(mix(mix(seed_, kEpochStream), epoch));
      permutation_ = torch::randperm(n_, gen, torch::kInt64);
      epoch_ = epoch;
    }
    return permutation_;
  }

  // Batches of `b` per epoch, the last one possibly smaller.
  int64_t batches(int64_t b) const { return (n_ + b - 1) / b; }

  // The items of batch `index` of `epoch`: positions [index * b, min(n, (index + 1) * b)).
  torch::Tensor batch(int64_t epoch, int64_t index, int64_t b) {
    const int64_t begin = index * b;
    if (begin >= n_) throw std::out_of_range("epoch_batch: batch " + std::to_string(index));
    return of(epoch).narrow(0, begin, std::min(b, n_ - begin));
  }

 private:
  int64_t seed_, n_;
  torch::Tensor permutation_;
  int64_t epoch_ = -1;
};

}  // namespace ablate::experiments
