#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <thread>

#include "ablate/runner/calibration.h"
#include "ablate/runner/coordinator.h"
#include "ablate/runner/ensembles.h"
#include "ablate/runner/executor.h"
#include "ablate/runner/plan.h"
#include "ablate/runner/slurm.h"
#include "ablate/runner/sweep.h"
#include "ablate/runner/until_decided.h"
#include "cli.h"
#include "preflight.h"

namespace ablate::cli {
namespace fs = std::filesystem;

namespace {

std::atomic<bool> g_interrupted{false};

// The path of this executable, which the jobs run as `ablate train`.
std::string self_path(const char* argv0) {
  std::error_code ec;
  const auto p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::absolute(argv0).string() : p.string();
}

// The sbatch script of the first wave (the jobs without a parent, the seeds of an arm together
// as the coordinator would group them), for --dry-run.
std::string first_wave_script(const runner::SweepSpec& sweep,
                              const std::vector<runner::JobSpec>& jobs,
                              const runner::RunOptions& run, const runner::SlurmOptions& slurm) {
  std::vector<runner::JobSpec> first;
  for (const auto& job : jobs) {
    if (job.parent_id.empty()) first.push_back(job);
  }
  runner::SeedsPerProcessInputs in;
  in.setting = run.seeds_per_process;
  in.gpu = run.devices.front() != "cpu";
  const int per_task = runner::seeds_to_launch(in);
  std::vector<runner::Launch> wave;
  for (const auto& process : runner::processes_of(first, per_task)) {
    std::vector<runner::LaunchMember> members;
    for (const auto* job : process) {
      members.push_back({job->id, runner::run_dir_of(run.workdir, sweep.name, job->id)});
    }
    wave.push_back(runner::ensemble_launch(members, run.devices.front(), run.threads_per_job, run));
  }
  return "# first wave: the " + count_of(static_cast<long long>(first.size()), "job") +
         " without a parent in " + count_of(static_cast<long long>(wave.size()), "task") +
         " (--seeds-per-process " + runner::seeds_per_process_text(run.seeds_per_process) +
         ": up to " + std::to_string(per_task) +
         " seeds of an arm per task); each later stage is submitted as its own array when its "
         "parents are done\n" +
         runner::sbatch_script(slurm, "", wave);
}

// One look of seeds until decided: per comparison, the seeds, the confidence sequence and what
// happens next.
void print_look(const runner::LookReport& look) {
  std::cout << "look " << look.look << (look.recorded ? "" : " (as before)") << ":\n";
  for (const auto& r : look.rows) {
    std::cout << "  " << r.arm_label << " vs " << r.reference_label
              << (r.family == "baseline" ? "" : " [" + r.family + "]") << ": "
              << count_of(r.seeds, "seed") << ", CS " << interval_text(r.cs_low, r.cs_high)
              << " at level " << number_text(r.level) << ", e-value " << number_text(r.e_value)
              << ": " << r.action << "\n";
  }
  if (look.seeds_added > 0) {
    std::cout << "  next round: " << count_of(look.seeds_added, "more seed") << "\n";
  }
  std::cout.flush();
}

// --devices: a comma-separated list of distinct cpu, cuda or cuda:N; nullopt (and the reason on
// stderr) otherwise. Whether each exists on this machine is checked with the sweep (preflight),
// before anything is written.
std::optional<std::vector<std::string>> parse_devices(const std::string& devices) {
  std::vector<std::string> out;
  std::stringstream list(devices + ",");  // "cpu," has an empty last name: refused below
  for (std::string d; std::getline(list, d, ',');) {
    const bool cuda_n = d.size() > 5 && d.rfind("cuda:", 0) == 0 &&
                        d.find_first_not_of("0123456789", 5) == std::string::npos;
    if (d != "cpu" && d != "cuda" && !cuda_n) {
      std::cerr << "ablate run: --devices " << shell_word(devices) << ": "
                << (d.empty() ? std::string("an empty name") : shell_word(d))
                << " is neither cpu, cuda nor cuda:N (a list: cuda:0,cuda:1)\n";
      return std::nullopt;
    }
    if (std::find(out.begin(), out.end(), d) != out.end()) {
      std::cerr << "ablate run: --devices " << shell_word(devices) << ": " << d
                << " is listed twice (--per-device sets the jobs per device)\n";
      return std::nullopt;
    }
    out.push_back(d);
  }
  return out;
}

// The Slurm settings of a run: the sweep file's slurm: mapping with the command line's flags
// (`flags`, where the user gave them) on top.
runner::SlurmOptions slurm_settings(const runner::SweepSpec& sweep, const po::variables_map& vm,
                                    const runner::SlurmOptions& flags) {
  runner::SlurmOptions out = sweep.slurm;
  if (given(vm, "partition")) out.partition = flags.partition;
  if (given(vm, "time")) out.time_limit = flags.time_limit;
  if (given(vm, "gpus-per-task")) out.gpus_per_task = flags.gpus_per_task;
  if (given(vm, "cpus-per-task")) out.cpus_per_task = flags.cpus_per_task;
  if (given(vm, "mem")) out.memory = flags.memory;
  if (given(vm, "account")) out.account = flags.account;
  if (given(vm, "poll-interval")) out.poll_interval_s = flags.poll_interval_s;
  out.extra.insert(out.extra.end(), flags.extra.begin(), flags.extra.end());
  out.job_name = "ablate-" + sweep.name;
  return out;
}

// What the file changed, said before anything starts: new, stale and returning jobs, and what
// --retry-failed and --retry-diverged take up.
void print_plan_change(const runner::PlanChange& c, const std::string& sweep,
                       const std::string& file) {
  std::cout << "sweep " << sweep << ": ";
  if (c.created) {
    std::cout << count_of(c.planned, "job");
  } else {
    std::cout << (c.added > 0 ? count_of(c.added, "new job") : "no new jobs");
    if (!c.stale.empty()) {
      std::cout << ", " << c.stale.size() << " stale: no longer in " << file
                << " (kept, left out of status and reports; ablate prune " << sweep << " deletes "
                << (c.stale.size() == 1 ? "it" : "them") << ")";
    }
    if (!c.reactivated.empty()) {
      std::cout << ", " << c.reactivated.size() << " back in " << file
                << " (their results count again)";
    }
  }
  std::cout << "\n";
  if (!c.retried.empty()) {
    std::cout << "--retry-failed: "
              << count_of(static_cast<long long>(c.retried.size()), "failed or timed-out job")
              << " to run again\n";
  }
  if (!c.reset.empty()) {
    std::cout << "--retry-diverged: "
              << count_of(static_cast<long long>(c.reset.size()), "diverged job")
              << " to train again from scratch (old run dirs moved aside to *.reset-*)\n";
  }
  std::cout.flush();
}

// Ctrl-C (or SIGTERM) asks the coordinator to stop its jobs and record them interrupted; a
// second Ctrl-C ends the coordinator at once.
void stop_on_interrupt() {
  struct sigaction action {};
  action.sa_handler = [](int) {
    g_interrupted = true;
    signal(SIGINT, SIG_DFL);
  };
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

// The run's last lines (the jobs' counts, and what next when not every job ended well) and its
// exit status.
int run_outcome(const runner::RunSummary& summary, const runner::RunOptions& run,
                const runner::SweepSpec& sweep, const std::vector<runner::JobSpec>& jobs,
                const results::Store& store, const std::string& db) {
  const size_t registered = store.jobs(sweep.name).size();
  std::cout << "sweep " << sweep.name << ": "
            << count_of(static_cast<long long>(sweep.sequential.enabled ? registered : jobs.size()),
                        "job")
            << ", " << summary.launched << " launched";
  for (const auto& [status, n] : summary.counts) std::cout << ", " << n << " " << status;
  std::cout << "\n";
  if (run.detach) {
    std::cout << "detached: Slurm runs the submitted jobs; run the same command again to ingest "
                 "them and submit the next stages\n";
    return kOk;
  }
  if (summary.interrupted) {
    std::cout << "interrupted: run the same command again to resume\n";
    return kFailure;
  }
  const bool all_good =
      summary.counts.size() ==
      static_cast<size_t>(summary.counts.count("done") + summary.counts.count("diverged"));
  if (!all_good) {
    // What next, in commands: the same as `ablate status` suggests per job.
    std::cout << "not every job finished: ablate status " << shell_word(sweep.name) << db_flag(db)
              << " says why; after a fix, "
              << run_command_of(store, db, sweep.name,
                                runner::run_dir_of(run.workdir, sweep.name, jobs.front().id))
              << " --retry-failed runs them again (from their checkpoints)\n";
  }
  return all_good ? kOk : kFailure;
}

// --per-device and train.threads on the CPU from this machine's calibration (calibration.h):
// the cached one, or one measured now on the sweep's first job. Left as they are with
// ABLATE_CALIBRATION=off.
void apply_cpu_calibration(runner::RunOptions& run, const std::vector<runner::JobSpec>& jobs,
                           const std::string& file) {
  const std::string path = runner::calibration_path();
  if (path.empty()) return;
  auto c = runner::load_calibration(path, cpu_machine_key());
  if (!c) {
    std::cout << "calibrating this machine's CPU once: the jobs x threads that train " << file
              << "'s first job fastest (ablate calibrate; ABLATE_CALIBRATION=off skips it)\n";
    std::cout.flush();
    c = calibrate_cpu(first_root_job(jobs).config, file, 20, std::cout);
    runner::save_calibration(path, *c);
  }
  run.per_device = c->best.jobs;
  run.threads_per_job = c->best.threads;
  std::cout << "cpu: " << count_of(c->best.jobs, "job") << " at once x "
            << count_of(c->best.threads, "thread") << " (calibrated " << c->measured_at << " on "
            << c->config << ", cached in " << path << "; --per-device N chooses)\n";
  const std::string advice = busy_advice(*c);
  if (!advice.empty()) std::cout << "  note: " << advice << "\n";
  std::cout.flush();
}

// --cpus-per-task (each task's threads) on Slurm from the partition's calibration: the cached
// one, or one measured now on a whole node (`measure`; a dry run only reads the cache). Left as
// it is with ABLATE_CALIBRATION=off.
void apply_slurm_calibration(runner::SlurmOptions& slurm, const std::string& file,
                             const std::vector<std::string>& overrides, bool measure) {
  const std::string path = runner::calibration_path();
  if (path.empty()) return;
  const std::string key = runner::slurm_calibration_key(slurm.partition);
  auto c = runner::load_calibration(path, key);
  if (!c && !measure) {
    std::cout << "# " << key << " is not calibrated yet: the run measures it first (one job on "
              << "a whole node), and --cpus-per-task comes from it\n";
    return;
  }
  if (!c) {
    std::cout << "calibrating " << key << " once: the jobs x threads that train " << file
              << "'s first job fastest on one of its nodes (ablate calibrate --backend slurm; "
                 "ABLATE_CALIBRATION=off skips it)\n";
    std::cout.flush();
    c = calibrate_on_slurm(slurm, file, overrides, 20, std::cout);
    runner::save_calibration(path, *c);
  }
  slurm.cpus_per_task = c->best.threads;
  std::cout << (measure ? "" : "# ") << "slurm: --cpus-per-task " << c->best.threads << " ("
            << count_of(c->best.jobs, "job") << " at once x " << count_of(c->best.threads, "thread")
            << " trained fastest on " << c->node << ", calibrated " << c->measured_at << " on "
            << c->config << ", cached in " << path << "; --cpus-per-task N chooses)\n";
  std::cout.flush();
}

}  // namespace

int command_run(const std::vector<std::string>& args, const char* argv0) {
  const CommandInfo info{
      "run", "SWEEP.yaml [KEY=VALUE...] [options]",
      "Runs a sweep's jobs, stores their results, and resumes where an earlier run stopped.",
      "Jobs already done are skipped; interrupted ones continue from their checkpoints. The\n"
      "sweep file's current plan defines the sweep. KEY=VALUE overrides apply to its base config.\n"
      "Jobs registered earlier that the file no longer plans become stale: kept, left out of\n"
      "status counts and reports (ablate prune deletes them). Failed jobs run again with\n"
      "--retry-failed, diverged ones with --retry-diverged; ablate reset returns any job to\n"
      "pending."};
  std::vector<std::string> positional;
  std::string db = "ablate.db", devices = "cpu", backend = "local";
  runner::RunOptions run;
  po::options_description options("options");
  options.add_options()("db", po::value(&db)->default_value(db), "database file")(
      "workdir", po::value(&run.workdir)->default_value(run.workdir),
      "run dirs go to DIR/<sweep>/<job id>")("devices", po::value(&devices)->default_value(devices),
                                             "cpu, or a list cuda:0,cuda:1")(
      "per-device", po::value(&run.per_device),
      "jobs at once per device (default: on the CPU the calibrated number, see ablate "
      "calibrate; else 1)")(
      "retries", po::value(&run.retries)->default_value(run.retries),
      "extra attempts for a job that fails while running (not for bad input)")(
      "timeout", po::value(&run.timeout_s)->default_value(run.timeout_s),
      "seconds per attempt; 0 = none")("backend", po::value(&backend)->default_value(backend),
                                       "local or slurm");
  auto lifecycle = options.add_options();
  lifecycle("retry-failed", po::bool_switch(&run.retry_failed),
            "run the sweep's failed and timed-out jobs again, whatever their exit status (from "
            "their checkpoints)");
  lifecycle("retry-diverged", po::bool_switch(&run.retry_diverged),
            "train the sweep's diverged jobs again from scratch (their run dirs moved aside)");
  std::string seeds_per_process;
  options.add_options()("seeds-per-process", po::value(&seeds_per_process),
                        seeds_per_process_help());
  std::string until;
  int64_t max_seeds = 0;
  options.add_options()("until", po::value(&until),
                        "decided: add seeds to each arm until its comparison of the file's report: "
                        "question is decided (an anytime-valid test), at most --max-seeds")(
      "max-seeds", po::value(&max_seeds), "with --until decided: the most seeds of one arm");
  runner::SlurmOptions slurm;
  po::options_description slurm_options(
      "slurm options (with --backend slurm; the sweep file's "
      "slurm: section gives their defaults)");
  slurm_options.add_options()("partition", po::value(&slurm.partition),
                              "--partition (default: the cluster's)")(
      "time", po::value(&slurm.time_limit), "--time per task (default: from --timeout)")(
      "gpus-per-task", po::value(&slurm.gpus_per_task), "GPUs per task (default 0: CPU tasks)")(
      "cpus-per-task", po::value(&slurm.cpus_per_task),
      "CPUs (and threads) per task (default: the partition's calibration, see ablate "
      "calibrate --backend slurm; the cluster's with ABLATE_CALIBRATION=off)")(
      "mem", po::value(&slurm.memory), "--mem per task (default: the partition's)")(
      "account", po::value(&slurm.account), "--account (default: yours)")(
      "sbatch", po::value(&slurm.extra), "an extra #SBATCH line (repeatable)")(
      "poll-interval", po::value(&slurm.poll_interval_s),
      "seconds between squeue calls (default 5)")("detach", "submit the ready jobs and return")(
      "dry-run", "print the sbatch script of the first wave and exit");
  options.add(slurm_options);
  po::options_description hidden;
  hidden.add_options()("args", po::value(&positional), "");
  po::positional_options_description pos;
  pos.add("args", -1);
  po::variables_map vm;
  if (!parse_args(info, options, hidden, pos, args, vm)) return kOk;
  const auto in = split_positional(positional);
  if (!in.error.empty() || in.file.empty()) {
    std::cerr << "ablate run: " << (in.file.empty() ? "give SWEEP.yaml" : in.error) << "\n";
    return kBadInput;
  }
  if (backend != "local" && backend != "slurm") {
    std::cerr << "ablate run: --backend " << backend << ": expected local or slurm\n";
    return kBadInput;
  }
  for (const char* only : {"partition", "time", "gpus-per-task", "cpus-per-task", "mem", "account",
                           "sbatch", "poll-interval", "detach", "dry-run"}) {
    if (backend != "slurm" && given(vm, only)) {
      std::cerr << "ablate run: --" << only << " needs --backend slurm\n";
      return kBadInput;
    }
  }
  if (run.per_device < 1 || run.retries < 0 || run.timeout_s < 0) {
    std::cerr << "ablate run: --per-device must be >= 1, --retries and --timeout >= 0\n";
    return kBadInput;
  }
  const auto per_process = seeds_per_process_flag(vm, seeds_per_process, "run");
  if (!per_process) return kBadInput;
  const auto device_list = parse_devices(devices);
  if (!device_list) return kBadInput;
  run.devices = *device_list;
  if (given(vm, "until") && until != "decided") {
    std::cerr << "ablate run: --until " << until << ": expected decided\n";
    return kBadInput;
  }
  if (given(vm, "until") != given(vm, "max-seeds")) {
    std::cerr << "ablate run: --until decided and --max-seeds N go together\n";
    return kBadInput;
  }
  // Everything is checked before the database is touched: an invalid file writes nothing.
  // With Slurm, data and devices are the compute nodes': each job checks its own when it starts.
  MachineChecks machine;
  machine.data = backend == "local";
  if (backend == "local") machine.devices_flag = run.devices;
  const CheckedSweep checked =
      checked_sweep(in.file, in.overrides, machine, [&](runner::SweepSpec& s) {
        if (given(vm, "until")) runner::until_decided_from_command_line(s, max_seeds);
      });
  const auto& sweep = checked.sweep;
  const auto& jobs = checked.jobs;
  for (const auto& w : runner::plan_warnings(sweep, jobs)) std::cerr << "warning: " << w << "\n";
  run.ablate_binary = self_path(argv0);
  // A run dir that a symlink (WORKDIR/<sweep>, or a job's folder) would take outside --workdir is
  // bad input: refused here, before the database is touched, not after the sweep is registered.
  for (const auto& job : jobs) {
    try {
      runner::run_dir_of(run.workdir, sweep.name, job.id);
    } catch (const std::runtime_error& e) {
      std::cerr << "ablate run: " << e.what() << "\n";
      return kBadInput;
    }
  }
  // The command line's --seeds-per-process, else the sweep file's, else auto.
  run.seeds_per_process = *per_process >= 0 ? *per_process : sweep.seeds_per_process;
  std::unique_ptr<runner::Executor> executor;
  if (backend == "slurm") {
    // Slurm runs the parallelism: every ready job is submitted, `--per-device` is the array's
    // %N limit when given, and each task's device is the GPU Slurm gives it, or the CPU.
    slurm = slurm_settings(sweep, vm, slurm);
    if (given(vm, "per-device")) slurm.max_parallel = run.per_device;
    // Absolute: Slurm resolves --output on the compute node, from the job's working directory.
    slurm.script_dir = fs::absolute(fs::path(run.workdir) / sweep.name / "slurm").string();
    run.devices = {slurm.gpus_per_task > 0 ? "cuda" : "cpu"};
    run.per_device = std::max<int>(1, static_cast<int>(jobs.size()));
    run.detach = vm.count("detach") > 0;
    // The nodes' GPUs are not this host's: auto cannot measure them and trains one seed per
    // task there (a number given is used as it is).
    run.device_memory = [](const std::string&) { return int64_t{0}; };
    // Every value that reaches the batch script, from the file or the flags: a newline in one
    // would be a line of the script (SlurmError: exit status 2, nothing written).
    runner::check_slurm_texts(slurm);
    const bool dry_run = vm.count("dry-run") > 0;
    // sbatch present, partition and options accepted: before a calibration job or the DB.
    if (!dry_run) runner::SlurmExecutor(slurm).check();
    if (slurm.cpus_per_task == 0 && slurm.gpus_per_task == 0) {
      apply_slurm_calibration(slurm, in.file, in.overrides, !dry_run);
    }
    run.threads_per_job = std::max(1, slurm.cpus_per_task);
    if (dry_run) {
      std::cout << first_wave_script(sweep, jobs, run, slurm);
      return kOk;
    }
    executor = std::make_unique<runner::SlurmExecutor>(slurm);
  } else {
    executor = std::make_unique<runner::LocalExecutor>();
    if (run.devices == std::vector<std::string>{"cpu"} && !given(vm, "per-device")) {
      apply_cpu_calibration(run, jobs, in.file);
    }
  }
  results::Store store(db);
  stop_on_interrupt();
  run.on_registered = [&](const runner::PlanChange& c) {
    print_plan_change(c, sweep.name, in.file);
  };
  runner::RunSummary summary;
  if (sweep.sequential.enabled) {
    try {
      summary =
          runner::run_until_decided(sweep, jobs, store, *executor, run, &g_interrupted, print_look);
    } catch (const results::ReportError& e) {
      // The question cannot be asked of the results (a metric no job reports): the finished
      // jobs' results are stored; the file needs an edit.
      const auto& at = sweep.report.at;
      std::cerr << "error: " << at.file << ":" << at.line << ":" << at.column
                << ": report: " << e.what() << "\n";
      return kBadInput;
    }
  } else {
    summary = runner::run_sweep(sweep, jobs, store, *executor, run, &g_interrupted);
  }
  return run_outcome(summary, run, sweep, jobs, store, db);
}

}  // namespace ablate::cli
