#pragma once
// glibc malloc, tuned for a training process (issue 19, docs/benchmarks.md). Every step
// allocates and frees the same large activation and gradient buffers. glibc's defaults give
// blocks above its mmap threshold back to the kernel on free and trim the heap's free top
// whenever it exceeds twice that, so each step faults the same pages in again (the byte LM:
// 676k minor page faults in 200 steps, 49k with the thresholds below). Raising both keeps the
// memory in the process; a training process reuses it at the next step. jemalloc and mimalloc
// (Debian's) were measured too and faulted more. Torch-free.
#include <cstddef>

namespace ablate::experiments {

struct AllocatorSettings {
  // Blocks this large or larger are mmapped (and unmapped on free); glibc's cap, 32 MiB on 64-bit.
  size_t mmap_threshold = size_t{32} << 20;
  // Free memory at the top of the heap beyond this goes back to the kernel.
  size_t trim_threshold = size_t{256} << 20;
};

// Applies `settings` with mallopt, unless GLIBC_TUNABLES already sets malloc's thresholds (the
// user's choice wins). Returns whether it applied them.
bool tune_allocator(const AllocatorSettings& settings = {});

}  // namespace ablate::experiments
