// libFuzzer target: the input as a sweep file, through parse_sweep and expand (runner/sweep.h).
// Bad input must end as a ConfigError or SlurmError (what `ablate plan` reports with exit
// status 2); any other exception, a crash, a sanitizer report or a hang is a finding.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include "ablate/runner/parse.h"
#include "ablate/runner/slurm.h"
#include "ablate/runner/sweep.h"

namespace {

using ablate::runner::SweepSpec;

// expand() resolves and validates every job, and a legal sweep may have kMaxSweepJobs (100,000)
// of them: seconds under ASan, which libFuzzer would report as a hang. Larger sweeps are parsed
// (the limit itself is checked there) but not expanded; expansion is linear in the jobs, so small
// grids exercise the same code.
constexpr int64_t kMaxJobsExpanded = 2000;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const SweepSpec spec = ablate::runner::parse_sweep(text, "fuzz.yaml");
    if (ablate::runner::job_count_bound(spec, kMaxJobsExpanded) <= kMaxJobsExpanded)
      ablate::runner::expand(spec);
  } catch (const ablate::runner::ConfigError&) {
  } catch (const ablate::runner::SlurmError&) {
  }
  return 0;
}
