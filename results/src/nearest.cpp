#include "ablate/results/nearest.h"

#include <algorithm>
#include <limits>

namespace ablate::results {

size_t edit_distance(const std::string& a, const std::string& b) {
  // Three rows of the dynamic programme: i - 2, i - 1 and i.
  std::vector<size_t> prev2(b.size() + 1), prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        cur[j] = std::min(cur[j], prev2[j - 2] + 1);
      }
    }
    prev2.swap(prev);
    prev.swap(cur);
  }
  return prev[b.size()];
}

std::string nearest_word(const std::string& word, const std::vector<std::string>& candidates) {
  // A typo is short: a word far longer than every candidate has no near one (and a 5 MB key
  // must not cost an edit distance per candidate).
  size_t longest = 0;
  for (const auto& c : candidates) longest = std::max(longest, c.size());
  if (word.size() > 2 * longest + 8) return "";
  std::string best;
  size_t best_distance = std::numeric_limits<size_t>::max();
  for (const auto& c : candidates) {
    const size_t d = edit_distance(word, c);
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  // A plausible typo changes a few characters, not most of the word.
  const size_t limit = std::max<size_t>(2, std::min(word.size(), best.size()) / 3);
  return best_distance <= limit ? best : "";
}

}  // namespace ablate::results
