#include "ablate/experiments/blas_kernels.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

namespace ablate::experiments {
namespace {

// The CPU's flags as the kernel lists them: an independent account of what the OS enables.
std::set<std::string> cpuinfo_flags() {
  std::ifstream in("/proc/cpuinfo");
  std::set<std::string> flags;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line.substr(line.find(':') + 1));
    for (std::string w; words >> w;) flags.insert(w);
    break;
  }
  return flags;
}

// Sets or unsets an environment variable for one test, and restores it.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    const char* old = std::getenv(name);
    had_ = old != nullptr;
    if (had_) old_ = old;
    if (value != nullptr) {
      setenv(name, value, 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (had_) {
      setenv(name_, old_.c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  bool had_ = false;
  std::string old_;
};

TEST(OpenblasCoreOverride, ReplacesOnlyKernelsWithoutAvx2OnACpuThatHasThem) {
  const CpuVectorSupport avx512{true, true}, avx2{true, false}, sse{false, false};
  // Debian 12's OpenBLAS on an Intel model it does not know falls back to Prescott.
  EXPECT_EQ(openblas_core_override("Prescott", avx512), "SkylakeX");
  EXPECT_EQ(openblas_core_override("Prescott", avx2), "Haswell");
  EXPECT_EQ(openblas_core_override("Prescott", sse), "");
  EXPECT_EQ(openblas_core_override("Sandybridge", avx512), "SkylakeX");
  EXPECT_EQ(openblas_core_override("Nehalem", avx2), "Haswell");
  EXPECT_EQ(openblas_core_override("Core2", avx512), "SkylakeX");
  EXPECT_EQ(openblas_core_override("prescott", avx512), "SkylakeX");  // any case
  // A specific modern choice stands, even where the CPU could run more.
  for (const char* kept :
       {"Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids", "Excavator", "Steamroller"}) {
    EXPECT_EQ(openblas_core_override(kept, avx512), "") << kept;
  }
  // No OpenBLAS (MKL, the reference BLAS): nothing to set.
  EXPECT_EQ(openblas_core_override("", avx512), "");
}

TEST(CpuVectorSupport, AgreesWithTheKernelsFlags) {
  const auto flags = cpuinfo_flags();
  if (flags.empty()) GTEST_SKIP() << "no flags line in /proc/cpuinfo (not x86 Linux)";
  const CpuVectorSupport cpu = cpu_vector_support();
  EXPECT_EQ(cpu.avx2_fma, flags.count("avx2") > 0 && flags.count("fma") > 0);
  bool avx512 = true;
  for (const char* f : {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"}) {
    avx512 = avx512 && flags.count(f) > 0;
  }
  EXPECT_EQ(cpu.avx512, avx512);
}

TEST(ChooseOpenblasCore, TheUsersValueWins) {
  ScopedEnv user("OPENBLAS_CORETYPE", "Prescott");
  EXPECT_EQ(choose_openblas_core(), "");
  EXPECT_STREQ(std::getenv("OPENBLAS_CORETYPE"), "Prescott");
}

TEST(ChooseOpenblasCore, SetsWhatTheOverrideSaysAndLeavesTheThreadsAsTheyWere) {
  ScopedEnv unset_core("OPENBLAS_CORETYPE", nullptr);
  ScopedEnv threads("OPENBLAS_NUM_THREADS", nullptr);
  const std::string detected = openblas_detected_core();
  EXPECT_EQ(std::getenv("OPENBLAS_NUM_THREADS"), nullptr) << "the probe's one thread leaked";
  if (detected.empty()) GTEST_SKIP() << "no OpenBLAS on this machine";
  const std::string set = choose_openblas_core();
  EXPECT_EQ(set, openblas_core_override(detected, cpu_vector_support()));
  if (set.empty()) {
    EXPECT_EQ(std::getenv("OPENBLAS_CORETYPE"), nullptr);
  } else {
    EXPECT_STREQ(std::getenv("OPENBLAS_CORETYPE"), set.c_str());
  }
  EXPECT_EQ(std::getenv("OPENBLAS_NUM_THREADS"), nullptr);
  // The torch-free tests link no BLAS, and the probe loads its library RTLD_LOCAL: it does not
  // answer for this process's own symbols.
  EXPECT_EQ(openblas_core_in_use(), "");
}

}  // namespace
}  // namespace ablate::experiments
