// The seeded random streams every random draw of a run comes from. Internal to experiments/.
#pragma once

#include <cstdint>

namespace ablate::experiments {

// splitmix64: independent, stable streams for (seed, purpose, index).
inline uint64_t mix(uint64_t a, uint64_t b) {
  uint64_t z = a * 0x9E3779B97F4A7C15ull + b + 0x632BE59BD9B4E019ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// The purposes a run draws random numbers for: draw i of purpose p is seeded mix(mix(seed, p), i),
// so a resumed run redraws exactly what an uninterrupted one draws, and one purpose's draws never
// shift another's.
constexpr uint64_t kBatchStream = 1;    // lm: the windows of step i
constexpr uint64_t kTorchStream = 2;    // the global generator at step i (noise, allocations)
constexpr uint64_t kEvalStream = 3;     // the global generator at the evaluation of step i
constexpr uint64_t kEpochStream = 4;    // the data order of epoch i
constexpr uint64_t kDropoutStream = 5;  // dropout masks of step i (then mixed with the layer)

}  // namespace ablate::experiments
