#pragma once
// How many CPU jobs at once, and how many threads each (docs/design.md section 7, `ablate
// calibrate`). Small models do not speed up with threads the way large ones do, and on some
// machines two LibTorch threads are slower than one, so the split is measured, not assumed: jobs
// x threads layouts that fill the cores are timed with real training steps of a sweep's job, and
// the one with the most steps per second in all wins. The answer is cached per machine; `ablate
// run --devices cpu` takes its --per-device and train.threads from it. On Slurm the same
// measurement runs as one job on a whole node of the partition, and `ablate run --backend slurm`
// takes its --cpus-per-task (each task's threads) from it: Slurm then packs as many tasks on a
// node as the layout had jobs. Torch-free.
#include <optional>
#include <string>
#include <vector>

namespace ablate::runner {

// One layout: `jobs` processes at once, `threads` threads each.
struct CpuLayout {
  int jobs = 1;
  int threads = 1;
  double items_per_s = 0;  // measured: the jobs' training throughputs added up (0 = not yet)
};

// What was measured on a machine, and its choice.
struct Calibration {
  std::string machine;      // machine_key() of the machine it was measured on, or for Slurm
                            // slurm_calibration_key() of the partition
  std::string node;         // Slurm: machine_key() of the node that measured it; "" otherwise
  std::string measured_at;  // UTC, ISO 8601
  std::string config;       // what was trained: the job's sweep file, or "(tiny lm)"
  std::string unit;         // the throughput's unit: "images/s", "tokens/s"
  std::vector<CpuLayout> layouts;
  CpuLayout best;
  // The share of the machine's CPU time that other programs used while it was measured (0..1; a
  // negative value: not known, as in an older cache). Above kBusyShare the choice may not be
  // the fastest layout on an idle machine, and ablate says so whenever it uses it.
  double others_cpu_share = -1;
};

// Other programs' share of the CPU above which a calibration is called busy (a fifth: on 2 cores
// a compile on one core is half).
inline constexpr double kBusyShare = 0.2;

// The CPU time counters of /proc/stat's first line, in clock ticks: `busy` (user, nice, system,
// irq, softirq, steal) and `total` (busy plus idle and iowait).
struct CpuTicks {
  double busy = 0;
  double total = 0;
};
// /proc/stat's "cpu ..." line read as CpuTicks; nullopt when it is not one.
std::optional<CpuTicks> parse_cpu_ticks(const std::string& proc_stat);
// The share of the machine's CPU time between `before` and `after` that was not this process's
// own (`own_ticks`: this process's and its children's CPU time over the same span, in ticks);
// clamped to 0..1, negative when no time passed.
double others_cpu_share(const CpuTicks& before, const CpuTicks& after, double own_ticks);

// "measured while other programs used 45% of the CPU, so another layout may be faster on the
// idle machine" for a busy calibration (above kBusyShare), else "".
std::string busy_note(const Calibration& c);

// The layouts worth timing on `cores` cores: 1, 2, 4, ... threads (and `cores` itself), each with
// as many jobs as fill the cores (cores / threads). Most jobs first.
std::vector<CpuLayout> candidate_layouts(int cores);

// The layout with the highest throughput. A layout with fewer threads wins a tie within
// `tie_fraction` (more jobs at once also finish a sweep's last wave sooner).
CpuLayout best_layout(const std::vector<CpuLayout>& measured, double tie_fraction = 0.03);

// This machine as the cache knows it: the CPU model, the cores LibTorch would use and, when set,
// the OpenBLAS kernels the jobs get (OPENBLAS_CORETYPE), e.g. "AMD EPYC 7B13 | 2 cores" or
// "Intel(R) Xeon(R) Processor | 2 cores | OpenBLAS SkylakeX". A cache measured elsewhere (a home
// directory shared by a cluster's nodes) or with other kernels is not used.
std::string machine_key(int cores, const std::string& openblas_core = "");

// The cache's key of a Slurm partition's calibration ("" = the cluster's default partition):
// "Slurm partition cpu", "Slurm default partition". The login node cannot know which node a task
// lands on, so the partition stands for its nodes (measured on one of them).
std::string slurm_calibration_key(const std::string& partition);

// Where the calibrations are cached (one file, one entry per machine or partition):
// $ABLATE_CALIBRATION when set ("off": nowhere, nothing is measured or read), else
// $XDG_CACHE_HOME/ablate/cpu-calibration.json, else
// ~/.cache/ablate/cpu-calibration.json. "" for off.
std::string calibration_path();

// The cached calibration for `machine` (a machine_key or a slurm_calibration_key); nullopt when
// there is none or the file is unreadable.
std::optional<Calibration> load_calibration(const std::string& path, const std::string& machine);

// Adds `c` to the cache at `path`, replacing the entry of the same machine and keeping the others
// (an unreadable file is replaced), atomically (creating its folder). Throws results::DiskError.
void save_calibration(const std::string& path, const Calibration& c);

// JSON text of one calibration (`ablate calibrate --json`), and back.
std::string calibration_json(const Calibration& c);
std::optional<Calibration> parse_calibration(const std::string& json_text);

// The cache file's text: {"calibrations": [...]}, and back. Reading also takes the older file
// that held one calibration; entries that do not parse are skipped.
std::string calibrations_json(const std::vector<Calibration>& all);
std::vector<Calibration> parse_calibrations(const std::string& json_text);

}  // namespace ablate::runner
