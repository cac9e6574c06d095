#pragma once
// Which way a metric is better, from the words of its name (results/src/report/metrics.cpp): the
// report's default direction, and the best-so-far values a training run keeps (run_record).
// Torch-free.
#include <optional>
#include <string>

namespace ablate::results {

// The direction a metric's name says: lower for loss, ppl, perplexity, bpb, error, ... and higher
// for acc, accuracy, f1, rouge*, bleu, match (exact_match), ...; none when the name says neither
// or both.
struct MetricDirection {
  std::optional<bool> lower_is_better;
  std::string word;  // the word that decided ("loss"), or the two that conflict
};
MetricDirection infer_direction(const std::string& metric);

}  // namespace ablate::results
