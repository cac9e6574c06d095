// Helpers shared by the training tests.
#pragma once

#include <filesystem>
#include <fstream>
#include <random>
#include <string>

namespace ablate::experiments::test_helpers {

// A text of words from a short list: structure a tiny language model learns in a few dozen steps.
inline void write_word_corpus(const std::filesystem::path& file) {
  const char* words[] = {"the ", "cat ", "sat ", "on ", "a ", "mat ", "and ", "dog ", "ran.\n"};
  std::mt19937 rng(1);
  std::ofstream out(file);
  for (int i = 0; i < 6000; ++i) out << words[rng() % 9];
}

// IDX files (big-endian header) for a tiny image task: image i of class k = i % 10 is 8x8 with
// brightness 25 k; its first pixel is i % 256 when `tag_first_pixel`, so images can be told apart.
inline void write_idx(const std::filesystem::path& dir, const std::string& prefix, int n,
                      bool tag_first_pixel = false) {
  auto be = [](std::ofstream& out, uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out.put(static_cast<char>((v >> s) & 0xff));
  };
  std::ofstream images(dir / (prefix + "-images-idx3-ubyte"), std::ios::binary);
  std::ofstream labels(dir / (prefix + "-labels-idx1-ubyte"), std::ios::binary);
  be(images, 0x803);
  be(images, n);
  be(images, 8);
  be(images, 8);
  be(labels, 0x801);
  be(labels, n);
  for (int i = 0; i < n; ++i) {
    const int label = i % 10;
    for (int p = 0; p < 64; ++p) {
      const int value = tag_first_pixel && p == 0 ? i % 256 : label * 25 + (p % 3);
      images.put(static_cast<char>(value));
    }
    labels.put(static_cast<char>(label));
  }
}

}  // namespace ablate::experiments::test_helpers
