// Helpers shared by the training tests.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "ablate/experiments/train.h"
#include "ablate/runner/config.h"

namespace ablate::experiments::test_helpers {

// One training run with no output, optionally stopped (as a kill would) after `stop_after` steps.
inline TrainResult run_quietly(const runner::Config& c, const std::filesystem::path& dir,
                               int64_t stop_after = 0) {
  TrainOptions o;
  o.run_dir = dir.string();
  o.progress = false;
  o.quiet = true;
  o.stop_after = stop_after;
  return train(c, o);
}

inline nlohmann::json read_json(const std::filesystem::path& file) {
  std::ifstream in(file);
  return nlohmann::json::parse(in);
}

inline std::vector<nlohmann::json> read_events(const std::filesystem::path& dir) {
  std::ifstream in(dir / "events.jsonl");
  std::vector<nlohmann::json> events;
  std::string line;
  while (std::getline(in, line)) events.push_back(nlohmann::json::parse(line));
  return events;
}

// The deterministic content of an event (timings and memory vary from run to run).
inline nlohmann::json stable(nlohmann::json e) {
  for (const char* k : {"step_time_s", "throughput", "peak_memory_bytes"}) e.erase(k);
  return e;
}

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
