// Helpers shared by the training tests.
#pragma once

#include <filesystem>
#include <fstream>
#include <random>

namespace ablate::experiments::test_helpers {

// A text of words from a short list: structure a tiny language model learns in a few dozen steps.
inline void write_word_corpus(const std::filesystem::path& file) {
  const char* words[] = {"the ", "cat ", "sat ", "on ", "a ", "mat ", "and ", "dog ", "ran.\n"};
  std::mt19937 rng(1);
  std::ofstream out(file);
  for (int i = 0; i < 6000; ++i) out << words[rng() % 9];
}

}  // namespace ablate::experiments::test_helpers
