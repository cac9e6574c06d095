#pragma once
// OpenBLAS's matrix-product kernels for the training process (issue 19, docs/benchmarks.md).
// OpenBLAS built with DYNAMIC_ARCH (Debian's) picks its kernels when it loads, from the CPU model.
// A model newer than the library (Debian 12's 0.3.21 on an Intel Xeon of family 6, model 207)
// falls back to "Prescott", SSE3 kernels, on a CPU with AVX-512: the byte LM's step took 236 ms
// there and 100 ms with the SkylakeX kernels. The choice is read once, at load, from
// OPENBLAS_CORETYPE, so it is made by the process that starts `ablate-train` (train_process.h).
// Torch-free.
#include <string>

namespace ablate::experiments {

// What this CPU can run, as the OS allows it (the compiler's runtime checks XCR0, so a feature
// the kernel does not save is reported absent).
struct CpuVectorSupport {
  bool avx2_fma = false;  // AVX2 and FMA: OpenBLAS's Haswell kernels
  bool avx512 = false;    // AVX-512 F, CD, BW, DQ and VL: OpenBLAS's SkylakeX kernels
};
CpuVectorSupport cpu_vector_support();

// The kernels the OpenBLAS on this machine picks by itself ("Prescott", "Haswell", ...): it is
// loaded (libopenblas.so.0, else libblas.so.3 when that is OpenBLAS) and asked. "" when there is
// no OpenBLAS. Reads OPENBLAS_CORETYPE as the library does: call it with the variable unset to
// learn the library's own choice.
std::string openblas_detected_core();

// The kernels of the OpenBLAS loaded in this process ("" when none is): what a run used.
std::string openblas_core_in_use();

// The OPENBLAS_CORETYPE to set, or "" to leave OpenBLAS's choice: only when OpenBLAS chose
// kernels without AVX2 (a core it falls back to, or one older than Haswell) on a CPU that has
// AVX2 or AVX-512; then the best of SkylakeX and Haswell the CPU runs. A specific modern choice
// (Haswell, Zen, SkylakeX, Cooperlake, SapphireRapids, ...) is never replaced. Pure.
std::string openblas_core_override(const std::string& detected, const CpuVectorSupport& cpu);

// Sets OPENBLAS_CORETYPE in this process's environment (for the processes it starts) when
// openblas_core_override says so and the user has not set it. Returns the value set, or "".
std::string choose_openblas_core();

}  // namespace ablate::experiments
