#include "ablate/experiments/rouge.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>

namespace ablate::experiments {

namespace {

bool is_token_char(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// rouge_score.scoring.fmeasure, operation for operation so the doubles match.
double fmeasure(double precision, double recall) {
  if (precision + recall > 0) return 2 * precision * recall / (precision + recall);
  return 0.0;
}

// rouge_score.rouge_scorer._score_ngrams over the n-grams of two token lists.
double ngram_f1(const std::vector<std::string>& target, const std::vector<std::string>& prediction,
                size_t n) {
  auto count = [n](const std::vector<std::string>& tokens) {
    std::map<std::vector<std::string>, int64_t> counts;
    for (size_t i = 0; i + n <= tokens.size(); ++i) {
      ++counts[std::vector<std::string>(tokens.begin() + static_cast<std::ptrdiff_t>(i),
                                        tokens.begin() + static_cast<std::ptrdiff_t>(i + n))];
    }
    return counts;
  };
  const auto target_counts = count(target), prediction_counts = count(prediction);
  int64_t overlap = 0, target_total = 0, prediction_total = 0;
  for (const auto& [ngram, c] : target_counts) {
    target_total += c;
    const auto it = prediction_counts.find(ngram);
    if (it != prediction_counts.end()) overlap += std::min(c, it->second);
  }
  for (const auto& entry : prediction_counts) prediction_total += entry.second;
  // max(count, 1) as rouge-score divides: no n-grams gives 0 / 1.
  const double precision =
      static_cast<double>(overlap) / static_cast<double>(std::max<int64_t>(prediction_total, 1));
  const double recall =
      static_cast<double>(overlap) / static_cast<double>(std::max<int64_t>(target_total, 1));
  return fmeasure(precision, recall);
}

// rouge_score.rouge_scorer._score_lcs: the LCS table kept two rows at a time.
double lcs_f1(const std::vector<std::string>& target, const std::vector<std::string>& prediction) {
  if (target.empty() || prediction.empty()) return 0.0;
  std::vector<int64_t> previous(prediction.size() + 1, 0), current(prediction.size() + 1, 0);
  for (size_t i = 1; i <= target.size(); ++i) {
    for (size_t j = 1; j <= prediction.size(); ++j) {
      current[j] = target[i - 1] == prediction[j - 1] ? previous[j - 1] + 1
                                                      : std::max(previous[j], current[j - 1]);
    }
    std::swap(previous, current);
  }
  const auto lcs = static_cast<double>(previous.back());
  return fmeasure(lcs / static_cast<double>(prediction.size()),
                  lcs / static_cast<double>(target.size()));
}

}  // namespace

std::vector<std::string> rouge_tokens(const std::string& text) {
  std::vector<std::string> tokens;
  std::string token;
  auto end_token = [&] {
    if (!token.empty()) tokens.push_back(std::move(token));
    token.clear();
  };
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  for (size_t i = 0; i < n; ++i) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      const char lower =
          (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : static_cast<char>(c);
      if (is_token_char(lower)) {
        token += lower;
      } else {
        end_token();
      }
    } else if (c == 0xC4 && i + 1 < n && s[i + 1] == 0xB0) {
      // U+0130: Python lowers it to "i" + U+0307 COMBINING DOT ABOVE, which ends the token.
      token += 'i';
      end_token();
      i += 1;
    } else if (c == 0xE2 && i + 2 < n && s[i + 1] == 0x84 && s[i + 2] == 0xAA) {
      token += 'k';  // U+212A KELVIN SIGN lowers to ASCII "k"
      i += 2;
    } else {
      // Any other non-ASCII character (lead and continuation bytes alike) separates tokens: its
      // lowercase is non-ASCII too, so [^a-z0-9]+ turns it into a space.
      end_token();
    }
  }
  end_token();
  return tokens;
}

RougeF1 rouge_f1(const std::string& target, const std::string& prediction) {
  const std::vector<std::string> t = rouge_tokens(target), p = rouge_tokens(prediction);
  RougeF1 out;
  out.rouge1 = ngram_f1(t, p, 1);
  out.rouge2 = ngram_f1(t, p, 2);
  out.rougeL = lcs_f1(t, p);
  return out;
}

}  // namespace ablate::experiments
