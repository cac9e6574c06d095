// MHA -> grouped conversion (uptraining, Ainslie et al. 2023) and the wgqa fold, as functions
// over module state: each returns a new module on the source's device and dtype and leaves the
// source untouched.
#pragma once

#include "ablate/core/attention.h"

namespace ablate::core {

enum class Conversion {
  kMeanPool,  // average the key and value weights and biases of each contiguous group of H/G
  kWgqa,      // keep the H key/value heads and add weights initialised per target.weight_init
};

// `source` must be mha; `target` gives the grouped variant and must agree with the source on
// dim, heads, bias and qk_norm. Queries, the output projection and the qk_norm gains are copied.
// kMeanPool takes targets with H queries and contiguous key/value groups (gqa, mqa, kdgqa, dgqa,
// pgqa); kWgqa takes wgqa. Throws std::invalid_argument naming the mismatch.
Attention convert(const Attention& source, const AttentionOptions& target, Conversion kind);

// Folds a wgqa module into a plain gqa module whose key/value projections are the weighted sums:
// the same outputs at no inference overhead.
Attention fold_wgqa(const Attention& wgqa);

}  // namespace ablate::core
