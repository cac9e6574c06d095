// Which summaries are metrics, their direction, and a did-you-mean for a mistyped metric.
#include <cctype>

#include "ablate/results/nearest.h"
#include "report_parts.h"

namespace ablate::results {

namespace {

// The words of a metric name: "final_val_loss" -> final, val, loss; "eval/rouge1" -> eval, rouge1.
std::vector<std::string> words_of(const std::string& name) {
  std::vector<std::string> words(1);
  for (const char c : name) {
    if (std::isalnum(static_cast<unsigned char>(c))) {
      words.back() += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else if (!words.back().empty()) {
      words.emplace_back();
    }
  }
  if (words.back().empty()) words.pop_back();
  return words;
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0;
}

}  // namespace

MetricDirection infer_direction(const std::string& metric) {
  // Words, not substrings: "error" says lower, but "terrain" does not; rouge1/rougeL are rouge.
  static const std::vector<std::string> kLower = {
      "loss", "ppl",  "perplexity", "bpb",     "error",  "err",   "nll",        "mse",
      "mae",  "rmse", "time",       "seconds", "memory", "bytes", "parameters", "params"};
  static const std::vector<std::string> kHigher = {"acc",    "accuracy", "f1",         "rouge",
                                                   "bleu",   "match",    "throughput", "precision",
                                                   "recall", "auc"};
  MetricDirection out;
  std::string lower_word, higher_word;
  for (const auto& w : words_of(metric)) {
    for (const auto& k : kLower) {
      if (w == k && lower_word.empty()) lower_word = k;
    }
    for (const auto& k : kHigher) {
      if ((w == k || (k == "rouge" && starts_with(w, "rouge"))) && higher_word.empty()) {
        higher_word = k;
      }
    }
  }
  if (!lower_word.empty() && higher_word.empty()) {
    out.lower_is_better = true;
    out.word = lower_word;
  } else if (lower_word.empty() && !higher_word.empty()) {
    out.lower_is_better = false;
    out.word = higher_word;
  } else if (!lower_word.empty()) {
    out.word = lower_word + " and " + higher_word;  // both: ambiguous, the user decides
  }
  return out;
}

namespace detail {

std::string unit_range_word(const std::string& metric) {
  // Only a name read as higher-is-better: "acc_loss" says both and has no known range.
  const MetricDirection direction = infer_direction(metric);
  if (!direction.lower_is_better || *direction.lower_is_better) return "";
  for (const auto& w : words_of(metric)) {
    if (w == "acc" || w == "accuracy" || w == "match") return w;
  }
  return "";
}

bool is_metric_name(const std::string& name, bool imported) {
  if (imported) return true;  // every imported column is a metric the user chose
  if (starts_with(name, "final_") || starts_with(name, "best_")) return true;
  // Measured quantities of summary.json; its other numbers echo the run's settings or state
  // (step, steps, warmup, allow_noncausal, diverged_step).
  for (const char* m :
       {"wall_time_s", "parameters", "throughput", "peak_memory_bytes", "kv_cache_bytes_per_token",
        "kv_cache_bytes_per_source_token", "decode_throughput"}) {
    if (name == m) return true;
  }
  return false;
}

std::string did_you_mean(const std::string& metric, const std::vector<std::string>& metrics) {
  // A missing prefix first (test_acc -> final_test_acc), then a typo.
  for (const char* prefix : {"final_", "best_"}) {
    for (const auto& m : metrics) {
      if (m == prefix + metric) return m;
    }
  }
  const std::string near = nearest_word(metric, metrics);
  if (!near.empty()) return near;
  for (const auto& m : metrics) {
    if (m.size() > metric.size() && m.find(metric) != std::string::npos) return m;
  }
  return "";
}

}  // namespace detail
}  // namespace ablate::results
