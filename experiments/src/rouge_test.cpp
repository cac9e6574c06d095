#include "ablate/experiments/rouge.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ablate::experiments {
namespace {

using Tokens = std::vector<std::string>;

// Reference values: rouge-score 0.1.2 (Python 3.11.7, Unicode 14.0.0), printed by
//   from rouge_score import rouge_scorer, tokenize
//   s = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=False)
//   r = s.score(target, prediction)
//   print(repr(r["rouge1"].fmeasure), repr(r["rouge2"].fmeasure), repr(r["rougeL"].fmeasure))
// and tokens by print(tokenize.tokenize(text, None)).
constexpr double kTolerance = 1e-12;

void expect_scores(const std::string& target, const std::string& prediction, double rouge1,
                   double rouge2, double rougeL) {
  SCOPED_TRACE("target '" + target + "', prediction '" + prediction + "'");
  const RougeF1 f = rouge_f1(target, prediction);
  EXPECT_NEAR(f.rouge1, rouge1, kTolerance);
  EXPECT_NEAR(f.rouge2, rouge2, kTolerance);
  EXPECT_NEAR(f.rougeL, rougeL, kTolerance);
}

TEST(Rouge, TokensAsRougeScoreMakesThem) {
  EXPECT_EQ(rouge_tokens("snake_case\tWord\nnew-line  ABC123x"),
            (Tokens{"snake", "case", "word", "new", "line", "abc123x"}));
  EXPECT_EQ(rouge_tokens("don't stop-believing 3.14"),
            (Tokens{"don", "t", "stop", "believing", "3", "14"}));
  EXPECT_EQ(rouge_tokens("  "), Tokens{});
  EXPECT_EQ(rouge_tokens(""), Tokens{});
  // Non-ASCII letters split words: Python lowers "É" to "é", which [^a-z0-9]+ replaces.
  EXPECT_EQ(rouge_tokens("Café naïve résumé"), (Tokens{"caf", "na", "ve", "r", "sum"}));
  EXPECT_EQ(rouge_tokens("\xc3\xa9t\xc3\xa9 \xc4\xb0I\xc4\xb1"),  // "été İIı"
            (Tokens{"t", "i", "i"}));
  // The two letters whose Python lowercase is ASCII: "İ" -> "i" + U+0307, KELVIN SIGN -> "k";
  // "ǅ" (U+01C5) and "À" lower to non-ASCII letters.
  EXPECT_EQ(rouge_tokens("\xc4\xb0stanbul \xe2\x84\xaa"
                         "elvin \xc7\x85"
                         "emal \xc3\x80"
                         "B"),  // "İstanbul Kelvin ǅemal ÀB"
            (Tokens{"i", "stanbul", "kelvin", "emal", "b"}));
  // Bytes that are not UTF-8 separate tokens too (Python would not have decoded them).
  EXPECT_EQ(rouge_tokens("ab\xff"
                         "cd\xc4"
                         "ef"),
            (Tokens{"ab", "cd", "ef"}));
}

TEST(Rouge, IdenticalAndDisjointTexts) {
  expect_scores("the cat sat on the mat", "the cat sat on the mat", 1.0, 1.0, 1.0);
  expect_scores("alpha beta gamma", "delta epsilon", 0.0, 0.0, 0.0);
}

TEST(Rouge, PunctuationAndCase) {
  // Tokens: [hello world it s 2024] and [hello world its 2024].
  expect_scores("Hello, World! It's 2024.", "hello world -- its 2024", 0.6666666666666665,
                0.28571428571428575, 0.6666666666666665);
}

TEST(Rouge, RepeatedWordsAreClipped) {
  // "the" 3 vs 2 times, "cat" 1 vs 3 times: 3 matched unigrams of 4 and 5.
  expect_scores("the the the cat", "the the cat cat cat", 0.6666666666666665, 0.5714285714285715,
                0.6666666666666665);
}

TEST(Rouge, NonAsciiLetters) {
  // rouge-score does not fold accents: "Café" is "caf", which only matches a literal "caf".
  expect_scores("Caf\xc3\xa9 na\xc3\xafve r\xc3\xa9sum\xc3\xa9", "cafe naive resume caf na ve",
                0.5454545454545454, 0.4444444444444445, 0.5454545454545454);
  expect_scores(
      "\xc4\xb0stanbul \xe2\x84\xaa"
      "elvin",
      "i stanbul kelvin", 1.0, 1.0, 1.0);
}

TEST(Rouge, EmptyTexts) {
  expect_scores("the cat", "", 0.0, 0.0, 0.0);
  expect_scores("", "the cat", 0.0, 0.0, 0.0);
  expect_scores("", "", 0.0, 0.0, 0.0);
  expect_scores("!!! ...", "the cat", 0.0, 0.0, 0.0);  // a target without tokens
}

TEST(Rouge, OneWordTextsHaveNoBigrams) {
  expect_scores("cat", "cat", 1.0, 0.0, 1.0);  // identical, yet ROUGE-2 is 0: no bigram at all
  expect_scores("cat", "dog", 0.0, 0.0, 0.0);
  expect_scores("cat", "the cat", 0.6666666666666666, 0.0, 0.6666666666666666);
  expect_scores("the cat", "cat", 0.6666666666666666, 0.0, 0.6666666666666666);
}

TEST(Rouge, OrderMattersForBigramsAndLcsOnly) {
  expect_scores("police killed the gunman", "the gunman killed police", 1.0, 0.3333333333333333,
                0.5);
}

TEST(Rouge, SummaryLikePair) {
  expect_scores(
      "Officials said on Tuesday that the storm, which made landfall near the coast late Monday, "
      "damaged hundreds of homes and left about 40,000 people without power across three "
      "counties.",
      "The storm damaged hundreds of homes on Monday and left 40,000 people without power, "
      "officials said Tuesday, as crews worked across the three counties.",
      0.8, 0.4150943396226415, 0.5818181818181818);
}

TEST(Rouge, ScoresAreSymmetricInF1) {
  // F1 swaps precision and recall when the texts swap, so it does not change.
  const RougeF1 a = rouge_f1("a b c d e f", "a c e g"), b = rouge_f1("a c e g", "a b c d e f");
  EXPECT_DOUBLE_EQ(a.rouge1, b.rouge1);
  EXPECT_DOUBLE_EQ(a.rouge2, b.rouge2);
  EXPECT_DOUBLE_EQ(a.rougeL, b.rougeL);
  EXPECT_NEAR(a.rougeL, 2.0 * (3.0 / 4) * (3.0 / 6) / (3.0 / 4 + 3.0 / 6), kTolerance);
}

}  // namespace
}  // namespace ablate::experiments
