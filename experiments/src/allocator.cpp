#include "ablate/experiments/allocator.h"

#include <malloc.h>

#include <cstdlib>
#include <string>

namespace ablate::experiments {

bool tune_allocator(const AllocatorSettings& settings) {
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  if (tunables != nullptr &&
      (std::string(tunables).find("malloc.mmap_threshold") != std::string::npos ||
       std::string(tunables).find("malloc.trim_threshold") != std::string::npos)) {
    return false;
  }
  // mallopt takes an int; both settings fit (glibc caps the mmap threshold at 32 MiB anyway).
  const bool mmap_ok = mallopt(M_MMAP_THRESHOLD, static_cast<int>(settings.mmap_threshold)) == 1;
  const bool trim_ok = mallopt(M_TRIM_THRESHOLD, static_cast<int>(settings.trim_threshold)) == 1;
  return mmap_ok && trim_ok;
}

}  // namespace ablate::experiments
