#include "ablate/experiments/span_corruption.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "ablate/experiments/data_error.h"
#include "ablate/testing/errors.h"

namespace ablate::experiments {
namespace {

std::vector<int32_t> iota_tokens(int64_t length, int32_t first = 0) {
  std::vector<int32_t> tokens(static_cast<size_t>(length));
  std::iota(tokens.begin(), tokens.end(), first);
  return tokens;
}

// `length` byte tokens 0, 1, ..., 255, 0, 1, ...
std::vector<int32_t> byte_tokens(int64_t length) {
  std::vector<int32_t> tokens = iota_tokens(length);
  for (int32_t& t : tokens) t %= 256;
  return tokens;
}

// The spans of an example as the target lists them: the tokens after each sentinel.
std::vector<std::vector<int32_t>> target_spans(const Example& e, const S2sVocab& v) {
  std::vector<std::vector<int32_t>> spans;
  for (size_t i = 0; i + 1 < e.target.size(); ++i) {
    if (e.target[i] >= v.first_sentinel) {
      spans.emplace_back();
    } else {
      spans.back().push_back(e.target[i]);
    }
  }
  return spans;
}

TEST(SpanCorruption, LengthsAsT5) {
  // Expected values from T5's arithmetic in numpy float32 (tf.round rounds half to even):
  //   noise = int(np.round(np.float32(L) * np.float32(0.15))); noise = min(max(noise, 1), L - 1)
  //   spans = max(int(np.round(np.float32(noise) / np.float32(3.0))), 1)
  //   spans = min(spans, noise, L - noise)
  const struct {
    int64_t length, noise, spans, inputs, targets;
  } cases[] = {
      {2, 1, 1, 3, 3},           {3, 1, 1, 4, 3},
      {10, 2, 1, 10, 4},         {20, 3, 1, 19, 5},
      {30, 4, 1, 28, 6},                               // 4.5 rounds to 4
      {50, 8, 3, 46, 12},        {70, 10, 3, 64, 14},  // 10.5 rounds to 10
      {90, 14, 5, 82, 20},       {100, 15, 5, 91, 21},
      {110, 16, 5, 100, 22},     {128, 19, 6, 116, 26},
      {130, 20, 7, 118, 28},     {150, 22, 7, 136, 30},
      {568, 85, 28, 512, 114},  // T5's pre-training: 568 raw tokens give inputs 512, targets 114
      {1000, 150, 50, 901, 201}, {1130, 170, 57, 1018, 228},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE("length " + std::to_string(c.length));
    const CorruptedLengths n = corrupted_lengths(c.length, SpanCorruption{});
    EXPECT_EQ(n.noise_tokens, c.noise);
    EXPECT_EQ(n.spans, c.spans);
    EXPECT_EQ(n.inputs, c.inputs);
    EXPECT_EQ(n.targets, c.targets);
  }
  // Clamping spans to the kept tokens (mean_span 1) and other options, same formula.
  const struct {
    int64_t length;
    double density, mean_span;
    int64_t noise, spans;
  } other[] = {{3, 0.5, 1.0, 2, 1},  {7, 0.5, 1.0, 4, 3},  {9, 0.5, 2.5, 4, 2},
               {10, 0.5, 2.5, 5, 2}, {11, 0.5, 2.5, 6, 2}, {25, 0.5, 2.5, 12, 5},
               {4, 0.9, 3.0, 3, 1},  {5, 0.01, 3.0, 1, 1}};
  for (const auto& c : other) {
    SCOPED_TRACE("length " + std::to_string(c.length) + " density " + std::to_string(c.density));
    const CorruptedLengths n = corrupted_lengths(c.length, SpanCorruption{c.density, c.mean_span});
    EXPECT_EQ(n.noise_tokens, c.noise);
    EXPECT_EQ(n.spans, c.spans);
    EXPECT_EQ(n.inputs, c.length - c.noise + c.spans + 1);
    EXPECT_EQ(n.targets, c.noise + c.spans + 1);
  }
}

TEST(SpanCorruption, ExamplesHaveTheirLengthsAndMergeBack) {
  const S2sVocab v = s2s_vocab(1000, 1000 + 2 + 400);
  for (const SpanCorruption options :
       {SpanCorruption{}, SpanCorruption{0.5, 1.0}, SpanCorruption{0.3, 8.0}}) {
    for (int64_t length = 2; length <= 300; length += (length < 40 ? 1 : 37)) {
      const std::vector<int32_t> tokens = iota_tokens(length, 7);
      const CorruptedLengths n = corrupted_lengths(length, options);
      for (uint64_t seed = 0; seed < 20; ++seed) {
        SCOPED_TRACE("length " + std::to_string(length) + " seed " + std::to_string(seed));
        const Example e = corrupt_spans(tokens.data(), length, options, v, seed);
        ASSERT_EQ(static_cast<int64_t>(e.source.size()), n.inputs);
        ASSERT_EQ(static_cast<int64_t>(e.target.size()), n.targets);
        EXPECT_EQ(e.source.back(), v.eos);
        EXPECT_EQ(e.target.back(), v.eos);
        EXPECT_LT(e.source.front(), v.base);  // starts with kept tokens, not a sentinel
        EXPECT_EQ(e.source[e.source.size() - 2],
                  v.first_sentinel + n.spans - 1);  // ends with noise
        EXPECT_EQ(e.target.front(), v.first_sentinel);

        // Sentinels in increasing order, the same in source and target, spans non-empty.
        std::vector<int32_t> source_sentinels, target_sentinels;
        for (size_t i = 0; i + 1 < e.source.size(); ++i) {
          if (e.source[i] >= v.base) source_sentinels.push_back(e.source[i]);
          if (i > 0) {  // two sentinels in a row would be an empty kept segment
            EXPECT_FALSE(e.source[i] >= v.base && e.source[i - 1] >= v.base);
          }
        }
        for (size_t i = 0; i + 1 < e.target.size(); ++i) {
          if (e.target[i] >= v.base) target_sentinels.push_back(e.target[i]);
        }
        std::vector<int32_t> expected(static_cast<size_t>(n.spans));
        std::iota(expected.begin(), expected.end(), static_cast<int32_t>(v.first_sentinel));
        EXPECT_EQ(source_sentinels, expected);
        EXPECT_EQ(target_sentinels, expected);
        for (const auto& span : target_spans(e, v)) EXPECT_FALSE(span.empty());

        // Each sentinel in the source replaced by its span gives back the tokens.
        const auto spans = target_spans(e, v);
        std::vector<int32_t> merged;
        for (size_t i = 0; i + 1 < e.source.size(); ++i) {
          if (e.source[i] >= v.first_sentinel) {
            const auto& span = spans.at(static_cast<size_t>(e.source[i] - v.first_sentinel));
            merged.insert(merged.end(), span.begin(), span.end());
          } else {
            merged.push_back(e.source[i]);
          }
        }
        EXPECT_EQ(merged, tokens);
      }
    }
  }
}

TEST(SpanCorruption, GoldenExample) {
  // A change of the draws or the layout changes this example: 20 tokens at density 0.3 and
  // mean span 2 mask 6 tokens in 3 spans.
  const S2sVocab v = s2s_vocab(256, 300);
  const std::vector<int32_t> tokens = iota_tokens(20, 100);
  const Example e = corrupt_spans(tokens.data(), 20, SpanCorruption{0.3, 2.0}, v, 42);
  // Kept segments 6, 3, 5 and masked spans 4, 1, 1.
  EXPECT_EQ(e.source, (std::vector<int32_t>{100, 101, 102, 103, 104, 105, 258, 110, 111, 112, 259,
                                            114, 115, 116, 117, 118, 260, 257}));
  EXPECT_EQ(e.target, (std::vector<int32_t>{258, 106, 107, 108, 109, 259, 113, 260, 119, 257}));
  // Deterministic in the seed; another seed draws another example.
  const Example again = corrupt_spans(tokens.data(), 20, SpanCorruption{0.3, 2.0}, v, 42);
  EXPECT_EQ(again.source, e.source);
  EXPECT_EQ(again.target, e.target);
  const Example other = corrupt_spans(tokens.data(), 20, SpanCorruption{0.3, 2.0}, v, 43);
  EXPECT_NE(other.source, e.source);
}

TEST(SpanCorruption, MeanSpanLength) {
  // All spans of an example together hold noise_tokens tokens, so their mean length is
  // noise_tokens / spans exactly: 85 / 28 = 3.036 for T5's 568 tokens, within 0.05 of mean_span.
  const S2sVocab v = s2s_vocab(256, 256 + 2 + 100);
  const SpanCorruption options;
  const CorruptedLengths n = corrupted_lengths(568, options);
  const double mean = static_cast<double>(n.noise_tokens) / static_cast<double>(n.spans);
  EXPECT_NEAR(mean, options.mean_span, 0.05);
  // Each span by itself has that mean too (the compositions are exchangeable): the first and the
  // last span, which a segmentation that gives a remainder to one end would make longer, average
  // to it over 4000 seeds within 5 standard errors (a 6e-7 chance to fail for a correct draw).
  const std::vector<int32_t> tokens = byte_tokens(568);
  constexpr int kDraws = 4000;
  double sum_first = 0, sum_last = 0, sq_first = 0, sq_last = 0, total = 0;
  int64_t spans = 0;
  for (uint64_t seed = 0; seed < kDraws; ++seed) {
    const auto s = target_spans(corrupt_spans(tokens.data(), 568, options, v, seed), v);
    const auto first = static_cast<double>(s.front().size()),
               last = static_cast<double>(s.back().size());
    sum_first += first;
    sq_first += first * first;
    sum_last += last;
    sq_last += last * last;
    for (const auto& span : s) total += static_cast<double>(span.size());
    spans += static_cast<int64_t>(s.size());
  }
  EXPECT_DOUBLE_EQ(total / static_cast<double>(spans), mean);
  for (const auto& [sum, sq] : {std::pair{sum_first, sq_first}, std::pair{sum_last, sq_last}}) {
    const double m = sum / kDraws, sd = std::sqrt(sq / kDraws - m * m);
    EXPECT_NEAR(m, mean, 5 * sd / std::sqrt(kDraws)) << "sd " << sd;
  }
}

// Pearson's chi-square of `counts` against equal expected counts.
double chi_square(const std::vector<int64_t>& counts) {
  const double total = static_cast<double>(std::accumulate(counts.begin(), counts.end(), 0LL));
  const double expected = total / static_cast<double>(counts.size());
  double chi = 0;
  for (const int64_t c : counts)
    chi += (static_cast<double>(c) - expected) * (static_cast<double>(c) - expected) / expected;
  return chi;
}

TEST(SpanCorruption, SegmentationIsUniformOverCompositions) {
  // 5 items into 2 segments: compositions (1,4) (2,3) (3,2) (4,1), each 1/4. Bound 30 for 3
  // degrees of freedom: a correct draw exceeds it with probability 1.4e-6, while the classic
  // biased shuffle (swap with any index) gives 0.211..0.293 and an expected chi-square of 540 at
  // 40000 draws.
  std::mt19937_64 rng(1);
  std::vector<int64_t> counts(4, 0);
  for (int i = 0; i < 40000; ++i) {
    const std::vector<int64_t> s = random_segmentation(5, 2, rng);
    ASSERT_EQ(s.size(), 2u);
    ASSERT_EQ(s[0] + s[1], 5);
    ++counts[static_cast<size_t>(s[0] - 1)];
  }
  EXPECT_LT(chi_square(counts), 30.0);

  // 6 items into 3 segments: C(5, 2) = 10 compositions. Bound 45 for 9 degrees of freedom
  // (probability 9e-7 for a correct draw; the biased shuffle expects 1660 at 100000 draws).
  std::vector<int64_t> counts10(10, 0);
  for (int i = 0; i < 100000; ++i) {
    const std::vector<int64_t> s = random_segmentation(6, 3, rng);
    ASSERT_EQ(s.size(), 3u);
    ASSERT_EQ(s[0] + s[1] + s[2], 6);
    for (const int64_t l : s) ASSERT_GE(l, 1);
    // (a, b, c) with a + b <= 5: index of (a, b) among the 10 pairs in order.
    const int64_t a = s[0], b = s[1];
    const int64_t index = (a - 1) * (10 - a) / 2 + (b - 1);  // rows of 4, 3, 2, 1 pairs
    ++counts10[static_cast<size_t>(index)];
  }
  for (const int64_t c : counts10) EXPECT_GT(c, 0);
  EXPECT_LT(chi_square(counts10), 45.0);

  // Edge cases: one segment, and as many segments as items.
  EXPECT_EQ(random_segmentation(7, 1, rng), std::vector<int64_t>{7});
  EXPECT_EQ(random_segmentation(4, 4, rng), (std::vector<int64_t>{1, 1, 1, 1}));
  EXPECT_EQ(random_segmentation(1, 1, rng), std::vector<int64_t>{1});
  EXPECT_THROW(random_segmentation(3, 4, rng), std::invalid_argument);
  EXPECT_THROW(random_segmentation(3, 0, rng), std::invalid_argument);
}

TEST(SpanCorruption, UniformBelow) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(uniform_below(rng, 1), 0u);
  // Just above 2^63 half the raw draws are rejected; what comes out is still below n.
  const uint64_t big = (uint64_t{1} << 63) + 1;
  for (int i = 0; i < 100; ++i) EXPECT_LT(uniform_below(rng, big), big);
  std::vector<int64_t> counts(7, 0);
  for (int i = 0; i < 70000; ++i) ++counts[uniform_below(rng, 7)];
  EXPECT_LT(chi_square(counts), 36.0);  // 6 degrees of freedom: probability 3e-6 to exceed
  EXPECT_THROW(uniform_below(rng, 0), std::invalid_argument);
}

TEST(SpanCorruption, Errors) {
  const std::vector<int32_t> tokens = byte_tokens(568);
  // 28 spans, 10 sentinels: the message says which settings to change and to what.
  const S2sVocab small = s2s_vocab(256, 268);
  EXPECT_EQ(small.sentinels, 10);
  std::string message = testing::thrown_message<DataError>(
      [&] { corrupt_spans(tokens.data(), 568, SpanCorruption{}, small, 0); });
  EXPECT_NE(message.find("model.vocab"), std::string::npos) << message;
  EXPECT_NE(message.find("data.seq_len"), std::string::npos) << message;
  EXPECT_NE(message.find("28 spans"), std::string::npos) << message;
  EXPECT_NE(message.find("at least 286"), std::string::npos) << message;
  EXPECT_NO_THROW(corrupt_spans(tokens.data(), 568, SpanCorruption{}, s2s_vocab(256, 286), 0));

  message = testing::thrown_message<DataError>([] { s2s_vocab(256, 258); });
  EXPECT_NE(message.find("model.vocab 258"), std::string::npos) << message;
  EXPECT_NE(message.find("at least 259"), std::string::npos) << message;
  const S2sVocab v = s2s_vocab(50257, 50359);
  EXPECT_EQ(v.pad, 50257);
  EXPECT_EQ(v.eos, 50258);
  EXPECT_EQ(v.first_sentinel, 50259);
  EXPECT_EQ(v.sentinels, 100);
  EXPECT_THROW(s2s_vocab(0, 100), std::invalid_argument);
  EXPECT_THROW(s2s_vocab(256, int64_t{1} << 32), std::invalid_argument);

  // A token that would read as pad, eos or a sentinel.
  std::vector<int32_t> bad = iota_tokens(10);
  bad[4] = 256;
  message = testing::thrown_message<DataError>(
      [&] { corrupt_spans(bad.data(), 10, SpanCorruption{}, s2s_vocab(256, 300), 0); });
  EXPECT_NE(message.find("token 4"), std::string::npos) << message;
  bad[4] = -1;
  EXPECT_THROW(corrupt_spans(bad.data(), 10, SpanCorruption{}, s2s_vocab(256, 300), 0), DataError);

  EXPECT_THROW(corrupted_lengths(1, SpanCorruption{}), std::invalid_argument);
  EXPECT_THROW(corrupted_lengths(0, SpanCorruption{}), std::invalid_argument);
  EXPECT_THROW(corrupt_spans(tokens.data(), 1, SpanCorruption{}, s2s_vocab(256, 300), 0),
               std::invalid_argument);
  for (const SpanCorruption bad_options :
       {SpanCorruption{0.0, 3.0}, SpanCorruption{1.0, 3.0}, SpanCorruption{std::nan(""), 3.0},
        SpanCorruption{0.15, 0.0}, SpanCorruption{0.15, -1.0}, SpanCorruption{0.15, INFINITY}}) {
    EXPECT_THROW(corrupted_lengths(100, bad_options), std::invalid_argument);
  }
}

}  // namespace
}  // namespace ablate::experiments
