#pragma once
// ROUGE-1, ROUGE-2 and ROUGE-L F1 as the Python package `rouge-score` 0.1.2 computes them without
// a stemmer (the numbers summarisation papers report), so the s2s task's scores compare with
// theirs without a Python step. Torch-free header.
//
// Text is UTF-8. Python's str.lower() folds two non-ASCII letters into ASCII ones, U+0130 "İ"
// (to "i" and a combining dot, which then splits the word) and U+212A KELVIN SIGN (to "k"); both
// are matched. Every other non-ASCII character, and any byte that is not valid UTF-8, separates
// tokens, as Python's regex [^a-z0-9]+ makes it do: "Café" is the token "caf".
#include <string>
#include <vector>

namespace ablate::experiments {

// Tokens as the `rouge-score` package (0.1.2, no stemmer) makes them: lowercase (ASCII), every run
// of characters other than [a-z0-9] becomes a space, split on whitespace, keep tokens matching
// ^[a-z0-9]+$.
std::vector<std::string> rouge_tokens(const std::string& text);

struct RougeF1 {
  double rouge1 = 0.0;  // unigram overlap F1
  double rouge2 = 0.0;  // bigram overlap F1
  double rougeL = 0.0;  // longest-common-subsequence F1 (sentence level, not Lsum)
};

// F1 of `prediction` against `target` as
// rouge_score.rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=False)
// .score(target, prediction) gives them: n-gram counts clipped by the smaller of the two counts,
// precision = overlap / prediction n-grams, recall = overlap / target n-grams, F1 = 2PR / (P + R)
// or 0 when P + R = 0. A text without tokens (or, for ROUGE-2, with fewer than two) scores 0.
RougeF1 rouge_f1(const std::string& target, const std::string& prediction);

}  // namespace ablate::experiments
