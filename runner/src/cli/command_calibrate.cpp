// `ablate calibrate`: times real training steps of a sweep's first job in every jobs x threads
// layout that fills the CPU, and caches the fastest for `ablate run` (runner/calibration.h); with
// --backend slurm, on a whole node of the partition, as one Slurm job.
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <thread>

#include "ablate/results/files.h"
#include "ablate/results/scratch_dir.h"
#include "ablate/runner/calibration.h"
#include "ablate/runner/canonical.h"
#include "ablate/runner/command.h"
#include "ablate/runner/coordinator.h"
#include "ablate/runner/parse.h"
#include "ablate/runner/slurm.h"
#include "cli.h"
#include "preflight.h"
#include "train_process.h"

namespace ablate::cli {
namespace fs = std::filesystem;

namespace {

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return text;
}

// The run dir of timing job `i` of layout `l`.
fs::path timing_dir(const fs::path& dir, const runner::CpuLayout& l, int i) {
  return dir / (std::to_string(l.jobs) + "x" + std::to_string(l.threads) + "-" + std::to_string(i));
}

// One layout: `l.jobs` copies of the job at once, `l.threads` threads each, as `ablate run`
// would launch them (train.threads and the BLAS variables). Fills l.items_per_s; `unit` gets the
// throughput's unit.
void time_layout(runner::CpuLayout& l, const fs::path& config, int steps, const fs::path& dir,
                 std::string& unit) {
  const std::string s = std::to_string(steps);
  std::vector<runner::CommandResult> results(static_cast<size_t>(l.jobs));
  std::vector<std::thread> running;
  for (int i = 0; i < l.jobs; ++i) {
    std::vector<std::string> argv = {"env"};
    for (const auto& [name, value] : runner::cpu_thread_environment(l.threads)) {
      argv.push_back(name + "=" + value);
    }
    // Evaluation and checkpoints only at the last step, on one batch: the throughput counts
    // training steps only.
    const std::vector<std::string> train = {train_binary(),
                                            config.string(),
                                            "train.device=cpu",
                                            "train.threads=" + std::to_string(l.threads),
                                            "train.steps=" + s,
                                            "train.warmup=1",
                                            "train.eval_every=" + s,
                                            "train.eval_batches=1",
                                            "train.checkpoint_every=" + s,
                                            "--run-dir",
                                            timing_dir(dir, l, i).string()};
    argv.insert(argv.end(), train.begin(), train.end());
    running.emplace_back(
        [&results, i, argv] { results[static_cast<size_t>(i)] = runner::run_command(argv); });
  }
  for (auto& t : running) t.join();
  l.items_per_s = 0;
  for (int i = 0; i < l.jobs; ++i) {
    const auto& r = results[static_cast<size_t>(i)];
    const fs::path summary = timing_dir(dir, l, i) / "summary.json";
    if (r.status != 0 || !fs::exists(summary)) {
      throw std::runtime_error("calibrate: a timing job (" + std::to_string(l.jobs) + " x " +
                               std::to_string(l.threads) + " threads) failed with status " +
                               std::to_string(r.status) + ": " + r.output.substr(0, 2000));
    }
    const auto j = nlohmann::json::parse(runner::read_text(summary.string()));
    l.items_per_s += j.at("throughput").get<double>();
    unit = j.at("throughput_unit").get<std::string>();
  }
}

// Whether `file` is a sweep (it names one: `name:` at the top level) rather than one config.
bool config_is_sweep(const std::string& file) {
  std::istringstream lines(runner::read_text(file));
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("name:", 0) == 0) return true;
  }
  return false;
}

// What `ablate calibrate FILE` times: a sweep's first job without a parent, or a single config;
// and the sweep file's `slurm:` settings (a single config has none).
struct WhatToTime {
  runner::Config config;
  runner::SlurmOptions slurm;
  std::string name = "calibrate";  // the sweep's name: where Slurm's files go
};
WhatToTime what_to_time(const std::string& file, const std::vector<std::string>& overrides) {
  if (!config_is_sweep(file)) return {runner::load_config(file, overrides), {}, "calibrate"};
  const auto checked = checked_sweep(file, overrides, MachineChecks{});
  return {first_root_job(checked.jobs).config, checked.sweep.slurm, checked.sweep.name};
}

// The cores this process may use (its affinity: taskset, a Slurm allocation's cgroup), at least
// one; all of the machine's when that cannot be read.
int cpu_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

// The machine's CPU counters now (/proc/stat), or nullopt where there is no such file.
std::optional<runner::CpuTicks> machine_cpu_ticks() {
  return runner::parse_cpu_ticks(runner::read_text("/proc/stat"));
}

// This process's CPU time and that of its children it has waited for, in clock ticks.
double own_cpu_ticks() {
  double seconds = 0;
  for (const int who : {RUSAGE_SELF, RUSAGE_CHILDREN}) {
    rusage u{};
    getrusage(who, &u);
    for (const timeval& t : {u.ru_utime, u.ru_stime}) {
      seconds += static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) * 1e-6;
    }
  }
  return seconds * static_cast<double>(sysconf(_SC_CLK_TCK));
}

}  // namespace

std::string busy_advice(const runner::Calibration& c) {
  const std::string note = runner::busy_note(c);
  return note.empty() ? ""
                      : note + ": ablate calibrate " + shell_word(c.config) + " measures again";
}

const runner::JobSpec& first_root_job(const std::vector<runner::JobSpec>& jobs) {
  const auto root = std::find_if(jobs.begin(), jobs.end(),
                                 [](const runner::JobSpec& j) { return j.parent_id.empty(); });
  return root != jobs.end() ? *root : jobs.front();  // every sweep has a first stage
}

std::string cpu_machine_key() {
  prepare_train_environment();
  const char* core = std::getenv("OPENBLAS_CORETYPE");
  return runner::machine_key(cpu_cores(), core != nullptr ? core : "");
}

runner::Calibration calibrate_cpu(const runner::Config& job, const std::string& label, int steps,
                                  std::ostream& say) {
  const int cores = cpu_cores();
  results::ScratchDir scratch(fs::temp_directory_path(), "ablate-calibrate");
  runner::Config config = job;
  config.init.from = "";
  config.init.convert = "none";
  const fs::path config_file = scratch.path() / "config.yaml";
  results::write_file(config_file, runner::to_yaml(config));
  runner::Calibration c;
  c.machine = cpu_machine_key();  // also the timing jobs' environment, as `ablate train` sets it
  c.measured_at = utc_now();
  c.config = label;
  c.layouts = runner::candidate_layouts(cores);
  // What else ran meanwhile: the machine's CPU time less this process's and its timing jobs'.
  const auto ticks_before = machine_cpu_ticks();
  const double own_before = own_cpu_ticks();
  for (auto& l : c.layouts) {
    time_layout(l, config_file, steps, scratch.path(), c.unit);
    say << "  " << l.jobs << (l.jobs == 1 ? " job" : " jobs") << " x " << l.threads
        << (l.threads == 1 ? " thread" : " threads") << ": " << number_text(l.items_per_s) << " "
        << c.unit << "\n";
    say.flush();
  }
  const auto ticks_after = machine_cpu_ticks();
  if (ticks_before && ticks_after) {
    c.others_cpu_share =
        runner::others_cpu_share(*ticks_before, *ticks_after, own_cpu_ticks() - own_before);
  }
  c.best = runner::best_layout(c.layouts);
  return c;
}

runner::Calibration calibrate_on_slurm(const runner::SlurmOptions& slurm, const std::string& file,
                                       const std::vector<std::string>& overrides, int steps,
                                       std::ostream& say) {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) throw std::runtime_error("calibrate: cannot find this program (/proc/self/exe)");
  runner::SlurmExecutor(slurm).check();  // sbatch there, options accepted: before any file
  runner::NodeJob job;
  job.name = "calibrate";
  job.argv = {self.string(), "calibrate", fs::absolute(file).string()};
  job.argv.insert(job.argv.end(), overrides.begin(), overrides.end());
  job.argv.insert(job.argv.end(), {"--steps", std::to_string(steps), "--json"});
  // The node's answer comes back here and is cached here, under the partition's name.
  job.env = {{"ABLATE_CALIBRATION", "off"}};
  say << "submitting one Slurm job on a whole node of the "
      << (slurm.partition.empty() ? "default partition" : "partition " + slurm.partition)
      << " (--exclusive; Slurm's files in " << slurm.script_dir << "), and waiting for it\n";
  say.flush();
  const std::string out = runner::run_node_job(slurm, job);
  auto c = runner::parse_calibration(out.substr(std::min(out.size(), out.find('{'))));
  if (!c) {
    throw runner::SlurmError("calibrate: the Slurm job printed no calibration: " +
                             out.substr(0, 2000));
  }
  c->node = c->machine;
  c->machine = runner::slurm_calibration_key(slurm.partition);
  c->config = file;
  for (const auto& l : c->layouts) {
    say << "  " << l.jobs << (l.jobs == 1 ? " job" : " jobs") << " x " << l.threads
        << (l.threads == 1 ? " thread" : " threads") << ": " << number_text(l.items_per_s) << " "
        << c->unit << "\n";
  }
  return *c;
}

int command_calibrate(const std::vector<std::string>& args) {
  const CommandInfo info{
      "calibrate",
      "SWEEP.yaml|CONFIG.yaml [KEY=VALUE...] [--steps N] [--json] [--backend slurm [--partition "
      "P]]",
      "Measures how many CPU jobs at once, with how many threads each, train fastest here.",
      "Trains the sweep's first job (or the config) for --steps steps in every layout that\n"
      "fills the cores (all jobs x 1 thread, half as many x 2, ...; each as `ablate run`\n"
      "launches it), adds up the jobs' training throughputs, and caches the fastest layout for\n"
      "this machine in $ABLATE_CALIBRATION (default ~/.cache/ablate/cpu-calibration.json).\n"
      "`ablate run --devices cpu` without --per-device takes its jobs at once and train.threads\n"
      "from it (and calibrates first when nothing is cached; ABLATE_CALIBRATION=off turns that\n"
      "off).\n"
      "With --backend slurm the same measurement runs as one Slurm job on a whole node of the\n"
      "partition (the sweep file's slurm: settings, --partition and --account on top) and is\n"
      "cached for that partition: `ablate run --backend slurm` without --cpus-per-task gives\n"
      "each task the winning layout's threads, and Slurm packs the tasks on the nodes.\n"
      "Nothing is written to a database or to the sweep's run dirs."};
  std::vector<std::string> positional;
  int steps = 20;
  bool as_json = false;
  std::string backend = "local", partition, account, workdir = "runs";
  po::options_description options("options");
  options.add_options()("steps", po::value(&steps)->default_value(steps),
                        "training steps per timing job")("json", po::bool_switch(&as_json),
                                                         "print the calibration as JSON")(
      "backend", po::value(&backend)->default_value(backend),
      "local: measure this machine; slurm: a whole node of a Slurm partition")(
      "partition", po::value(&partition), "--backend slurm: the partition (else the file's)")(
      "account", po::value(&account), "--backend slurm: the account (else the file's)")(
      "workdir", po::value(&workdir)->default_value(workdir),
      "--backend slurm: Slurm's script and output go to WORKDIR/NAME/slurm");
  po::options_description hidden;
  hidden.add_options()("args", po::value(&positional), "");
  po::positional_options_description pos;
  pos.add("args", -1);
  po::variables_map vm;
  if (!parse_args(info, options, hidden, pos, args, vm)) return kOk;
  const auto in = split_positional(positional);
  if (!in.error.empty() || in.file.empty()) {
    std::cerr << "ablate calibrate: "
              << (in.error.empty() ? "give SWEEP.yaml or CONFIG.yaml" : in.error) << "\n"
              << help_text(info, options);
    return kBadInput;
  }
  if (steps < 2) {
    std::cerr << "ablate calibrate: --steps " << steps << ": at least 2\n";
    return kBadInput;
  }
  if (backend != "local" && backend != "slurm") {
    std::cerr << "ablate calibrate: --backend " << backend << ": local or slurm\n";
    return kBadInput;
  }
  if (backend == "local" && (vm.count("partition") || vm.count("account"))) {
    std::cerr << "ablate calibrate: --partition and --account go with --backend slurm\n";
    return kBadInput;
  }
  const WhatToTime what = what_to_time(in.file, in.overrides);
  std::ostream& say = as_json ? std::cerr : std::cout;
  say << "calibrating: " << in.file << (config_is_sweep(in.file) ? "'s first job, " : ", ") << steps
      << " steps per timing job\n";
  runner::Calibration c;
  if (backend == "slurm") {
    runner::SlurmOptions slurm = what.slurm;
    if (vm.count("partition")) slurm.partition = partition;
    if (vm.count("account")) slurm.account = account;
    slurm.job_name = "ablate-" + what.name;
    slurm.script_dir = fs::absolute(fs::path(workdir) / what.name / "slurm").string();
    c = calibrate_on_slurm(slurm, in.file, in.overrides, steps, say);
  } else {
    c = calibrate_cpu(what.config, in.file, steps, say);
    const std::string advice = busy_advice(c);
    if (!advice.empty()) say << "  note: " << advice << "\n";
  }
  const std::string path = runner::calibration_path();
  if (!path.empty()) runner::save_calibration(path, c);
  if (as_json) {
    std::cout << runner::calibration_json(c);
  } else {
    const std::string cached =
        path.empty() ? "not cached: ABLATE_CALIBRATION=off" : "cached in " + path;
    if (c.node.empty()) {
      std::cout << "best: " << count_of(c.best.jobs, "job") << " at once x "
                << count_of(c.best.threads, "thread") << " (" << cached << ")\n";
    } else {
      std::cout << "best on a node of the " << c.machine << " (" << c.node
                << "): " << count_of(c.best.jobs, "job") << " at once x "
                << count_of(c.best.threads, "thread") << ", so --cpus-per-task " << c.best.threads
                << " (" << cached << ")\n";
    }
  }
  return kOk;
}

}  // namespace ablate::cli
