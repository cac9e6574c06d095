#include "ablate/experiments/blas_kernels.h"

#include <dlfcn.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <set>

namespace ablate::experiments {
namespace {

using CoreName = const char* (*)();

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// `library` from dlopen, or RTLD_DEFAULT (which is a null pointer) for this process's own symbols.
std::string core_of(void* library) {
  // OpenBLAS's public name for it; Debian's libblas.so.3 of OpenBLAS (a copy of the library, the
  // one LibTorch's sgemm_ binds to) exports only the internal one.
  auto name = reinterpret_cast<CoreName>(dlsym(library, "openblas_get_corename"));
  if (name == nullptr) name = reinterpret_cast<CoreName>(dlsym(library, "gotoblas_corename"));
  const char* core = name != nullptr ? name() : nullptr;
  return core != nullptr ? core : "";
}

}  // namespace

CpuVectorSupport cpu_vector_support() {
  CpuVectorSupport cpu;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  cpu.avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  cpu.avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx512vl");
#endif
  return cpu;
}

std::string openblas_detected_core() {
  // Loading runs OpenBLAS's start-up, its CPU detection (3 to 8 ms); one thread, so that it
  // starts no pool of workers in this process. The library stays loaded.
  const char* threads = std::getenv("OPENBLAS_NUM_THREADS");
  const std::string saved = threads != nullptr ? threads : "";
  setenv("OPENBLAS_NUM_THREADS", "1", 1);
  std::string core;
  for (const char* soname : {"libopenblas.so.0", "libblas.so.3"}) {
    void* library = dlopen(soname, RTLD_LAZY | RTLD_LOCAL);
    core = library != nullptr ? core_of(library) : "";
    if (!core.empty()) break;
  }
  if (threads != nullptr) {
    setenv("OPENBLAS_NUM_THREADS", saved.c_str(), 1);
  } else {
    unsetenv("OPENBLAS_NUM_THREADS");
  }
  return core;
}

std::string openblas_core_in_use() { return core_of(RTLD_DEFAULT); }

std::string openblas_core_override(const std::string& detected, const CpuVectorSupport& cpu) {
  // OpenBLAS's x86 cores whose sgemm kernels stop short of AVX2: its fallbacks (Prescott for an
  // Intel model it does not know) and the CPUs before Haswell.
  static const std::set<std::string> without_avx2 = {
      "unknown",   "katmai", "coppermine",  "northwood", "prescott",  "banias",    "atom",
      "core2",     "penryn", "dunnington",  "nehalem",   "athlon",    "opteron",   "opteron_sse3",
      "barcelona", "nano",   "sandybridge", "bobcat",    "bulldozer", "piledriver"};
  if (detected.empty() || without_avx2.count(lower(detected)) == 0) return "";
  if (cpu.avx512) return "SkylakeX";
  if (cpu.avx2_fma) return "Haswell";
  return "";
}

std::string choose_openblas_core() {
  if (const char* set = std::getenv("OPENBLAS_CORETYPE"); set != nullptr && *set != '\0') return "";
  const std::string core = openblas_core_override(openblas_detected_core(), cpu_vector_support());
  if (!core.empty()) setenv("OPENBLAS_CORETYPE", core.c_str(), 1);
  return core;
}

}  // namespace ablate::experiments
