#include "ablate/experiments/span_corruption.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>

#include "ablate/experiments/data_error.h"

namespace ablate::experiments {

namespace {

// tf.round on a float32: to the nearest integer, halves to the even one. Written out rather than
// std::nearbyint, which follows the floating-point environment's rounding mode.
int64_t round_half_even(float x) {
  const float floor = std::floor(x);
  const float rest = x - floor;  // exact: x and floor are within 1 of each other
  auto r = static_cast<int64_t>(floor);
  if (rest > 0.5f || (rest == 0.5f && r % 2 != 0)) ++r;
  return r;
}

}  // namespace

S2sVocab s2s_vocab(int64_t base, int64_t vocab) {
  if (base < 1)
    throw std::invalid_argument("s2s_vocab: base must be >= 1, got " + std::to_string(base));
  // Ids are int32 in an Example; vocab - 1 is the largest.
  if (vocab > int64_t{std::numeric_limits<int32_t>::max()} + 1) {
    throw std::invalid_argument("s2s_vocab: model.vocab " + std::to_string(vocab) +
                                " does not fit int32 token ids");
  }
  if (vocab - base - 2 < 1) {
    throw DataError("s2s: model.vocab " + std::to_string(vocab) +
                    " leaves no sentinel id: the data's " + std::to_string(base) +
                    " token ids, pad and eos take " + std::to_string(base + 2) +
                    ", and span corruption needs one sentinel per masked span, so model.vocab "
                    "must be at least " +
                    std::to_string(base + 3) + " (base + 2 + the spans of an example)");
  }
  S2sVocab v;
  v.base = base;
  v.pad = base;
  v.eos = base + 1;
  v.first_sentinel = base + 2;
  v.sentinels = vocab - base - 2;
  return v;
}

CorruptedLengths corrupted_lengths(int64_t length, const SpanCorruption& options) {
  if (length < 2) {
    throw std::invalid_argument(
        "corrupted_lengths: span corruption needs at least 2 tokens (one "
        "masked, one kept), got " +
        std::to_string(length));
  }
  if (!(options.noise_density > 0.0 && options.noise_density < 1.0)) {
    throw std::invalid_argument("corrupted_lengths: noise_density must be in (0, 1), got " +
                                std::to_string(options.noise_density));
  }
  if (!(options.mean_span > 0.0 && std::isfinite(options.mean_span))) {
    throw std::invalid_argument("corrupted_lengths: mean_span must be > 0, got " +
                                std::to_string(options.mean_span));
  }
  CorruptedLengths n;
  // float32 throughout, as T5's to_float: the rounding of halves depends on it (30 * 0.15f is
  // exactly 4.5 and rounds to 4).
  const float noise = static_cast<float>(length) * static_cast<float>(options.noise_density);
  n.noise_tokens = std::min(std::max<int64_t>(round_half_even(noise), 1), length - 1);
  const float spans = static_cast<float>(n.noise_tokens) / static_cast<float>(options.mean_span);
  n.spans = std::max<int64_t>(round_half_even(spans), 1);
  n.spans = std::min({n.spans, n.noise_tokens, length - n.noise_tokens});
  n.inputs = length - n.noise_tokens + n.spans + 1;
  n.targets = n.noise_tokens + n.spans + 1;
  return n;
}

uint64_t uniform_below(std::mt19937_64& rng, uint64_t n) {
  if (n == 0) throw std::invalid_argument("uniform_below: n must be >= 1");
  // 2^64 mod n: rejecting raw draws below it leaves a multiple of n equally likely values.
  const uint64_t threshold = (0 - n) % n;
  uint64_t x = rng();
  while (x < threshold) x = rng();
  return x % n;
}

std::vector<int64_t> random_segmentation(int64_t items, int64_t segments, std::mt19937_64& rng) {
  if (segments < 1 || segments > items) {
    throw std::invalid_argument("random_segmentation: need 1 <= segments <= items, got " +
                                std::to_string(segments) + " segments of " + std::to_string(items) +
                                " items");
  }
  // Flag k set: a segment starts at item k + 1 (item 0 always starts one).
  std::vector<uint8_t> starts(static_cast<size_t>(items - 1), 0);
  std::fill(starts.begin(), starts.begin() + (segments - 1), 1);
  for (size_t i = starts.size(); i > 1; --i) {  // Fisher-Yates
    std::swap(starts[i - 1], starts[uniform_below(rng, i)]);
  }
  std::vector<int64_t> lengths;
  lengths.reserve(static_cast<size_t>(segments));
  int64_t current = 1;
  for (const uint8_t start : starts) {
    if (start) {
      lengths.push_back(current);
      current = 0;
    }
    ++current;
  }
  lengths.push_back(current);
  return lengths;
}

Example corrupt_spans(const int32_t* tokens, int64_t length, const SpanCorruption& options,
                      const S2sVocab& vocab, uint64_t seed) {
  const CorruptedLengths n = corrupted_lengths(length, options);
  if (n.spans > vocab.sentinels) {
    throw DataError("s2s: span corruption of an example of " + std::to_string(length) +
                    " tokens (set by data.seq_len) masks " + std::to_string(n.spans) +
                    " spans, one sentinel id each, but model.vocab leaves " +
                    std::to_string(vocab.sentinels) + " sentinel ids (model.vocab - " +
                    std::to_string(vocab.base) +
                    " data ids - pad - eos); raise model.vocab to at least " +
                    std::to_string(vocab.first_sentinel + n.spans) + " or lower data.seq_len");
  }
  for (int64_t i = 0; i < length; ++i) {
    // An id of base or above would read as pad, eos or a sentinel.
    if (tokens[i] < 0 || tokens[i] >= vocab.base) {
      throw DataError("s2s: token " + std::to_string(i) + " of an example is " +
                      std::to_string(tokens[i]) + ", outside the data's ids [0, " +
                      std::to_string(vocab.base) + ")");
    }
  }
  std::mt19937_64 rng(seed);
  const std::vector<int64_t> noise = random_segmentation(n.noise_tokens, n.spans, rng);
  const std::vector<int64_t> kept = random_segmentation(length - n.noise_tokens, n.spans, rng);
  Example out;
  out.source.reserve(static_cast<size_t>(n.inputs));
  out.target.reserve(static_cast<size_t>(n.targets));
  const int32_t* at = tokens;
  for (size_t s = 0; s < noise.size(); ++s) {
    const auto sentinel = static_cast<int32_t>(vocab.first_sentinel + static_cast<int64_t>(s));
    out.source.insert(out.source.end(), at, at + kept[s]);
    at += kept[s];
    out.source.push_back(sentinel);
    out.target.push_back(sentinel);
    out.target.insert(out.target.end(), at, at + noise[s]);
    at += noise[s];
  }
  out.source.push_back(static_cast<int32_t>(vocab.eos));
  out.target.push_back(static_cast<int32_t>(vocab.eos));
  return out;
}

}  // namespace ablate::experiments
