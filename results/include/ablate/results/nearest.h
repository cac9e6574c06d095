#pragma once
// Did-you-mean: the candidate nearest to a mistyped word. Shared by the sweep file's checks
// (runner/schema.h: keys and choices) and the reports (metrics and keys).
#include <cstddef>
#include <string>
#include <vector>

namespace ablate::results {

// Optimal string alignment distance (Levenshtein plus adjacent transpositions).
size_t edit_distance(const std::string& a, const std::string& b);
// The candidate nearest to `word` by edit distance, or "" when none is close enough to be a
// plausible typo.
std::string nearest_word(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace ablate::results
