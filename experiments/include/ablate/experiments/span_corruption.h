#pragma once
// T5's span corruption (Raffel et al. 2020, section 3.1.4) for the s2s task's pre-training: a
// share of an example's tokens, in spans, is cut out of the encoder input and each span replaced
// by a sentinel id; the decoder target lists the spans, each after its sentinel. Torch-free
// header.
//
// Lengths follow T5's random_spans_noise_mask to the token: products and quotients in float32
// and round half to even (tf.round), so 568 raw tokens give T5's 512 inputs and 114 targets.
// The draws are this file's own (a std::mt19937_64, an unbiased rejection draw, Fisher-Yates),
// so a seed gives the same example with every standard library; they are not T5's stateless TF
// draws, only the same distribution.
#include <cstdint>
#include <random>
#include <vector>

namespace ablate::experiments {

struct SpanCorruption {
  double noise_density = 0.15;  // share of tokens masked, in (0, 1) (T5: 0.15)
  double mean_span = 3.0;       // mean length of a masked span, > 0 (T5: 3)
};

// The s2s vocabulary: ids [0, base) are the data's tokens (256 bytes, or a token shard's 50257),
// then pad, eos and sentinels up to vocab.
struct S2sVocab {
  int64_t base = 256;  // the data's own token ids are [0, base)
  int64_t pad = 256;   // = base
  int64_t eos = 257;   // = base + 1
  int64_t first_sentinel =
      258;                // = base + 2; sentinel i (0-based span index) is first_sentinel + i
  int64_t sentinels = 0;  // = vocab - base - 2
};

// Throws DataError when vocab - base - 2 < 1 (message naming model.vocab and how many are
// needed); std::invalid_argument when base < 1 or vocab does not fit the int32 token ids.
S2sVocab s2s_vocab(int64_t base, int64_t vocab);

// Lengths of one example of `length` raw tokens. As T5's random_spans_noise_mask: noise_tokens =
// round(length * noise_density) clamped to [1, length - 1]; spans = max(1, round(noise_tokens /
// mean_span)), at most noise_tokens and at most length - noise_tokens. inputs = length -
// noise_tokens + spans + 1 (eos); targets = noise_tokens + spans + 1 (eos). They depend on the
// length only, so a batch has fixed shapes. round is in float32, half to even, as T5's tf.round:
// 30 tokens at 0.15 mask round(4.5) = 4.
struct CorruptedLengths {
  int64_t noise_tokens = 0, spans = 0, inputs = 0, targets = 0;
};
// length >= 2 and options in range, else std::invalid_argument.
CorruptedLengths corrupted_lengths(int64_t length, const SpanCorruption& options);

struct Example {
  std::vector<int32_t> source;  // encoder input, ends with eos
  std::vector<int32_t> target;  // decoder target, ends with eos
};

// T5 span corruption of tokens[0, length): the noise and non-noise token counts are each cut into
// `spans` non-empty segments uniformly at random over compositions (as T5's
// _random_segmentation), interleaved starting with non-noise (so the source starts with a data
// token and its last sentinel comes just before eos). source = non-noise tokens with each noise
// span replaced by its sentinel, then eos; target = for each span, its sentinel then its tokens,
// then eos. All draws come from a std::mt19937_64 seeded by `seed`: first the noise segmentation,
// then the non-noise one (random_segmentation below). Throws DataError if spans >
// vocab.sentinels (naming model.vocab / data.seq_len) or a token is outside [0, vocab.base);
// std::invalid_argument as corrupted_lengths.
Example corrupt_spans(const int32_t* tokens, int64_t length, const SpanCorruption& options,
                      const S2sVocab& vocab, uint64_t seed);

// The draws corrupt_spans makes, exposed for tests and for anyone who needs them elsewhere.

// A uniform draw from [0, n), n >= 1, without modulo bias: raw draws below 2^64 mod n are
// rejected. Portable, unlike std::uniform_int_distribution whose algorithm the standard leaves
// open.
uint64_t uniform_below(std::mt19937_64& rng, uint64_t n);

// `items` cut into `segments` non-empty segments, each of the C(items - 1, segments - 1)
// compositions equally likely: as T5's _random_segmentation, a Fisher-Yates shuffle of
// items - 1 flags of which segments - 1 are set; a set flag k starts a segment at item k + 1.
// Needs 1 <= segments <= items, else std::invalid_argument.
std::vector<int64_t> random_segmentation(int64_t items, int64_t segments, std::mt19937_64& rng);

}  // namespace ablate::experiments
