#include "ablate/runner/coordinator.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "ablate/results/files.h"
#include "ablate/results/ingest.h"
#include "ablate/runner/canonical.h"
#include "ablate/runner/command.h"
#include "ablate/runner/ensembles.h"
#include "ablate/runner/lifecycle.h"
#include "ablate/runner/progress.h"
#include "ablate/runner/schema.h"

#ifndef ABLATE_SOURCE_DIR
#define ABLATE_SOURCE_DIR "."
#endif

namespace ablate::runner {
namespace fs = std::filesystem;

namespace {

// The last `n` lines of a file (a failed job's reason).
std::string tail_lines(const fs::path& file, size_t n) {
  std::ifstream in(file);
  std::deque<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    lines.push_back(line);
    if (lines.size() > n) lines.pop_front();
  }
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

std::string host_name() {
  char buf[256] = {0};
  gethostname(buf, sizeof buf - 1);
  return buf;
}

// Whether `pid` is a live process (a zombie waiting for its parent to reap it is not).
bool alive(pid_t pid) {
  if (kill(pid, 0) != 0) return false;
  const std::string stat = read_text("/proc/" + std::to_string(pid) + "/stat");
  const auto paren = stat.rfind(')');
  return paren == std::string::npos || paren + 2 >= stat.size() || stat[paren + 2] != 'Z';
}

// A job process from an earlier coordinator that may still run (kill -9 of the coordinator leaves
// its children alive): stop it before its run dir is touched again. The coordinator writes the
// child's pid (a process-group leader) to `launcher.pid` right after starting it.
void stop_orphan(const fs::path& run_dir) {
  const std::string text = read_text(run_dir / "launcher.pid");
  if (text.empty()) return;
  const pid_t pid = static_cast<pid_t>(std::atoll(text.c_str()));
  if (pid <= 1 || !alive(pid)) return;
  const std::string cmdline = read_text("/proc/" + std::to_string(pid) + "/cmdline");
  if (cmdline.find(run_dir.filename().string()) == std::string::npos) return;  // pid reused
  kill(-pid, SIGTERM);
  kill(-pid, SIGCONT);  // a stopped process only acts on SIGTERM once it runs
  for (int i = 0; i < 200 && alive(pid); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (alive(pid)) kill(-pid, SIGKILL);
  for (int i = 0; i < 100 && alive(pid); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

bool final_bad(const std::string& status) {
  return status == "failed" || status == "diverged" || status == "timed_out" || status == "skipped";
}

// A device's share of the processes: per_device slots on each.
struct Slot {
  std::string device;
  std::vector<std::string> jobs;  // the process's jobs, the lead first; empty when free
};

Slot* free_slot(std::vector<Slot>& slots) {
  const auto it =
      std::find_if(slots.begin(), slots.end(), [](const Slot& s) { return s.jobs.empty(); });
  return it == slots.end() ? nullptr : &*it;
}

// The config of the current plan, written at every launch: fields outside the job id (data.path,
// the device) may have been fixed in the sweep file since the run dir was made. Atomic, so a
// worker never reads half a file; `ablate train` resumes as the job id is the same.
void write_config(const fs::path& run_dir, const std::string& yaml) {
  fs::create_directories(run_dir);
  if (read_text(run_dir / "config.yaml") == yaml) return;
  results::write_file_atomic(run_dir / "config.yaml", yaml);
}

// How one job of an ended process ended.
struct Outcome {
  std::string status;
  std::string reason;        // its first line; "" for done and diverged
  bool with_output = false;  // the reason goes on with the last lines of the process's output
};

// A job whose summary says done or diverged finished, whatever became of its process afterwards
// (the seeds of an ensemble that finished before another failed, or before a Ctrl-C); every other
// job takes the process's outcome: timed_out, interrupted (stopped by this coordinator), or
// failed with the exit status, the signal or the scheduler's state.
Outcome outcome_of(const Exit& e, const std::string& summary_status, bool stopping,
                   double timeout_s) {
  if (summary_status == "done" || summary_status == "diverged") return {summary_status, "", false};
  if (e.timed_out) {
    char limit[32];
    std::snprintf(limit, sizeof limit, "%g", timeout_s);
    return {"timed_out",
            e.state.empty() ? std::string("timed out after ") + limit + " s"
                            : std::string("timed out: Slurm's time limit"),
            true};
  }
  if (stopping && (e.signal == SIGTERM || e.signal == SIGKILL)) {
    return {"interrupted", "stopped by the coordinator (Ctrl-C)", false};
  }
  if (e.lost) {  // cancelled, preempted, a node failure: not the job's fault; a retry resumes it
    return {"failed", "ended by the scheduler: " + e.state, true};
  }
  return {"failed",
          (e.signal != 0 ? "killed by signal " + std::to_string(e.signal) +
                               (e.signal == SIGKILL ? " (out of memory?)" : "")
                         : "exit status " + std::to_string(e.exit_code)) +
              (e.state.empty() ? "" : " (Slurm state " + e.state + ")"),
          true};
}

// Said after the first line of a reason when the job trained in an ensemble: whose output.txt
// the lines below come from.
std::string ensemble_note(const std::vector<LaunchMember>& members, const std::string& id) {
  const std::string n = std::to_string(members.size());
  return id == members.front().job_id ? " (" + n + " seeds in one process)"
                                      : " (" + n + " seeds in one process; its output is in job " +
                                            members.front().job_id + "'s run dir)";
}

// How many ready seeds of an arm start together now (ensembles.h): RunOptions::seeds_per_process,
// or auto, which on a GPU needs the device's memory (asked once per device) and a finished seed's
// measured peak (the smallest of the arm's: a seed that ran alone, when the summaries of seeds
// trained together hold their process's peak).
class SeedsPerProcess {
 public:
  SeedsPerProcess(const RunOptions& options, results::Store& store, std::string sweep,
                  const std::vector<JobSpec>& jobs)
      : options_(options), store_(store), sweep_(std::move(sweep)), jobs_(jobs) {}

  size_t now(const JobSpec& job, const std::string& device,
             const std::map<std::string, std::string>& status) {
    SeedsPerProcessInputs in;
    in.setting = options_.seeds_per_process;
    in.gpu = device.rfind("cuda", 0) == 0;
    if (in.setting == 0 && in.gpu) {
      in.device_memory = memory(device);
      in.peak_memory = measured_peak(job, status);
      in.arm_running = arm_running(job, status);
    }
    return static_cast<size_t>(seeds_to_launch(in));
  }

 private:
  int64_t memory(const std::string& device) {
    const auto known = memory_.find(device);
    if (known != memory_.end()) return known->second;
    return memory_[device] =
               options_.device_memory ? options_.device_memory(device) : nvidia_smi_memory(device);
  }
  bool same_arm(const JobSpec& a, const JobSpec& b) const {
    return a.stage == b.stage && a.arm_key == b.arm_key;
  }
  // Once an arm has a measured peak it keeps it for this run (the store is read until then).
  std::optional<int64_t> measured_peak(const JobSpec& job,
                                       const std::map<std::string, std::string>& status) {
    const auto known = peak_.find({job.stage, job.arm_key});
    if (known != peak_.end()) return known->second;
    std::optional<int64_t> peak;
    for (const auto& other : jobs_) {
      const auto s = status.find(other.id);
      if (!same_arm(job, other) || s == status.end() ||
          (s->second != "done" && s->second != "diverged")) {
        continue;
      }
      const auto summaries = job_summaries(store_, sweep_, other.id);
      const auto it = summaries.find("peak_memory_bytes");
      if (it == summaries.end() || it->second <= 0) continue;
      const auto bytes = static_cast<int64_t>(it->second);
      peak = peak ? std::min(*peak, bytes) : bytes;
    }
    if (peak) peak_[{job.stage, job.arm_key}] = *peak;
    return peak;
  }
  bool arm_running(const JobSpec& job, const std::map<std::string, std::string>& status) const {
    return std::any_of(jobs_.begin(), jobs_.end(), [&](const JobSpec& other) {
      const auto s = status.find(other.id);
      return same_arm(job, other) && s != status.end() && s->second == "running";
    });
  }

  const RunOptions& options_;
  results::Store& store_;
  std::string sweep_;
  const std::vector<JobSpec>& jobs_;
  std::map<std::string, int64_t> memory_;                        // device -> bytes
  std::map<std::pair<std::string, std::string>, int64_t> peak_;  // (stage, arm) -> bytes
};

}  // namespace

std::string workdir_lock_file(const std::string& workdir, const std::string& sweep) {
  return (fs::path(workdir) / sweep / ".lock").string();
}

std::string database_lock_file(const std::string& database, const std::string& sweep) {
  return database + "." + sweep + ".lock";
}

SweepLock::SweepLock(const std::string& file_name, const std::string& sweep) {
  const fs::path file = file_name;
  fs::create_directories(file.parent_path().empty() ? fs::path(".") : file.parent_path());
  fd_ = open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    throw std::runtime_error("cannot open the lock file " + file.string() + ": " +
                             std::strerror(errno));
  }
  if (flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const std::string holder = read_text(file);
    close(fd_);
    fd_ = -1;
    throw std::runtime_error("sweep " + sweep + " is being run by another coordinator" +
                             (holder.empty() ? "" : " (pid " + holder + ")") + "; lock file " +
                             file.string());
  }
  const std::string pid = std::to_string(getpid());
  if (ftruncate(fd_, 0) == 0) (void)!pwrite(fd_, pid.data(), pid.size(), 0);
}

SweepLock::~SweepLock() {
  if (fd_ >= 0) close(fd_);  // closing releases the flock
}

std::string run_dir_of(const std::string& workdir, const std::string& sweep,
                       const std::string& job_id) {
  const fs::path root = fs::weakly_canonical(fs::absolute(workdir));
  const fs::path dir = fs::weakly_canonical(root / sweep / job_id);
  const auto rel = dir.lexically_relative(root);
  if (rel.empty() || *rel.begin() == ".." || rel.is_absolute()) {
    throw std::runtime_error("run dir " + dir.string() + " would lie outside --workdir " +
                             root.string());
  }
  return dir.string();
}

CodeVersion code_version() {
  CodeVersion v;
  const std::vector<std::string> git = {"git", "-C", ABLATE_SOURCE_DIR};
  auto git_says = [&](std::vector<std::string> args) {
    args.insert(args.begin(), git.begin(), git.end());
    CommandResult r = run_command(args);
    while (!r.output.empty() && (r.output.back() == '\n' || r.output.back() == ' '))
      r.output.pop_back();
    return r;
  };
  const CommandResult commit = git_says({"rev-parse", "HEAD"});
  if (commit.status == 0 && commit.output.size() == 40) {
    v.commit = commit.output;
    const CommandResult status = git_says({"status", "--porcelain", "--untracked-files=no"});
    v.dirty = status.status != 0 || !status.output.empty();
  }
  return v;
}

std::vector<std::pair<std::string, std::string>> cpu_thread_environment(int threads) {
  const std::string n = std::to_string(std::max(1, threads));
  return {{"OMP_NUM_THREADS", n}, {"OPENBLAS_NUM_THREADS", n}, {"MKL_NUM_THREADS", n}};
}

Launch job_launch(const std::string& job_id, const std::string& run_dir, const std::string& device,
                  int threads, const RunOptions& options) {
  Launch l;
  l.job_id = job_id;
  l.argv = {options.ablate_binary,    "train",     (fs::path(run_dir) / "config.yaml").string(),
            "train.device=" + device, "--run-dir", run_dir};
  if (device == "cpu") {
    l.argv.push_back("train.threads=" + std::to_string(threads));
    l.env = cpu_thread_environment(threads);
  }
  l.output_file = (fs::path(run_dir) / "output.txt").string();
  l.timeout_s = options.timeout_s;
  l.run_dir = run_dir;
  return l;
}

Launch ensemble_launch(const std::vector<LaunchMember>& members, const std::string& device,
                       int threads, const RunOptions& options) {
  if (members.empty()) throw std::invalid_argument("ensemble_launch: no jobs");
  const LaunchMember& lead = members.front();
  Launch l = job_launch(lead.job_id, lead.run_dir, device, threads, options);
  l.members = members;
  if (members.size() == 1) return l;
  l.argv = {options.ablate_binary, "train", "train.device=" + device};
  for (const auto& m : members) {
    l.argv.push_back("--run-dir");
    l.argv.push_back(m.run_dir);
  }
  if (device == "cpu") l.argv.push_back("train.threads=" + std::to_string(threads));
  return l;
}

namespace {

// The sweep as the store records it: its file, the code that ran it, and where (provenance).
results::SweepRecord sweep_record(const SweepSpec& sweep) {
  const CodeVersion code = code_version();
  results::SweepRecord record;
  record.name = sweep.name;
  record.yaml = sweep.yaml_text;
  record.config_hash = config_hash(sweep.base);
  record.code_version = code.commit;
  record.dirty = code.dirty;
  record.provenance = {
      {"host", host_name()},
      {"sweep_file",
       sweep.file.empty() ? "" : fs::absolute(sweep.file).lexically_normal().string()},
      {"compiler", std::string("g++ ") + __VERSION__},
      {"code_dirty", code.dirty ? "true" : "false"}};
  // The command line's KEY=VALUE overrides as shell words, so a hint can repeat the run.
  std::string overrides;
  for (const auto& o : sweep.overrides) {
    overrides += (overrides.empty() ? "" : " ") + shell_quote(o);
  }
  record.provenance["overrides"] = overrides;
  // The schema's key order: reports name an arm's keys in the order status and run do.
  std::string order;
  for (const FieldInfo& f : schema()) order += (order.empty() ? "" : ",") + f.key;
  record.provenance["param_order"] = order;
  return record;
}

// The plan's jobs by id: their specs, run dirs and stored params (a stage's init.from is its
// parent's run dir).
struct JobIndex {
  std::map<std::string, const JobSpec*> spec;
  std::map<std::string, std::string> dir;
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> params_of;
};

// Registers the sweep and its jobs (idempotent: existing jobs keep their status) and makes the
// file's current plan define the sweep: jobs it no longer plans become stale (kept with their
// results, left out of status counts and reports); stale jobs it plans again are active.
PlanChange register_plan(results::Store& store, const SweepSpec& sweep,
                         const std::vector<JobSpec>& jobs, const std::string& workdir,
                         JobIndex& index) {
  const auto registered = store.register_sweep(sweep_record(sweep));
  std::vector<results::JobRecord> records;
  for (const auto& job : jobs) {
    index.spec[job.id] = &job;
    index.dir[job.id] = run_dir_of(workdir, sweep.name, job.id);
    results::JobRecord r;
    r.id = job.id;
    r.stage = job.stage;
    r.arm_key = job.arm_key;
    r.seed = job.seed;
    r.parent_id = job.parent_id;
    r.run_dir = index.dir[job.id];
    Config shown = job.config;
    if (!job.parent_id.empty()) shown.init.from = index.dir.at(job.parent_id);
    r.params = stored_params(shown);
    index.params_of[job.id] = r.params;
    records.push_back(std::move(r));
  }
  PlanChange change;
  change.created = registered == results::Store::Registered::kCreated;
  change.planned = static_cast<int>(jobs.size());
  change.added = store.register_jobs(sweep.name, records);
  std::vector<std::string> planned;
  for (const auto& job : jobs) planned.push_back(job.id);
  const results::PlanSync sync = store.sync_plan(sweep.name, planned);
  change.newly_stale = sync.stale;
  change.reactivated = sync.reactivated;
  return change;
}

// Each planned job's status and last exit code as the coordinator starts.
struct JobStates {
  std::map<std::string, std::string> status;
  std::map<std::string, int> exit_code;
};

// The stored status of every job, with the ones an earlier coordinator left running recovered:
// adopted when the executor still follows them (a Slurm task), else their orphan stopped and
// their run dir ingested (done, diverged or interrupted). A stale job is recovered too (its
// outcome recorded, though it is not run again) and listed in change.stale.
JobStates recover_states(results::Store& store, const SweepSpec& sweep, Executor& executor,
                         JobIndex& index, PlanChange& change) {
  JobStates states;
  auto recover = [&](const std::string& id, const std::string& run_dir) {
    stop_orphan(run_dir);
    const auto ingested = results::ingest_run_dir(store, sweep.name, id, run_dir);
    if (ingested.summary_status == "done" || ingested.summary_status == "diverged") {
      store.mark_finished(sweep.name, id, ingested.summary_status, 0, "");
      return ingested.summary_status;
    }
    store.mark_finished(sweep.name, id, "interrupted", std::nullopt,
                        "coordinator stopped while it ran");
    return std::string("interrupted");
  };
  for (const auto& row : store.jobs(sweep.name)) {
    if (index.spec.count(row.id) == 0) {  // stale: a job of an earlier version of the sweep file
      change.stale.push_back(row.id);
      if (row.status == "running" && !row.run_dir.empty()) {
        const std::string handle = read_text(fs::path(row.run_dir) / "launcher.pid");
        if (executor.adopt(row.id, handle.substr(0, handle.find('\n')), row.run_dir)) {
          index.dir[row.id] = row.run_dir;  // a Slurm task: followed to its end, never relaunched
        } else {
          recover(row.id, row.run_dir);
        }
      }
      continue;
    }
    std::string s = row.status;
    const std::string handle = read_text(fs::path(index.dir[row.id]) / "launcher.pid");
    if (s == "running" &&
        executor.adopt(row.id, handle.substr(0, handle.find('\n')), index.dir[row.id])) {
      // Still with the scheduler (or it knows how it ended): the next poll tells.
    } else if (s == "running") {
      s = recover(row.id, index.dir[row.id]);
    }
    states.status[row.id] = s;
    if (row.exit_code) states.exit_code[row.id] = static_cast<int>(*row.exit_code);
  }
  return states;
}

// --retry-failed: failed and timed-out jobs run once more, whatever their exit status (the
// returned set). --retry-diverged: diverged jobs (and the dependants skipped for them) are reset
// first, so they train from scratch in a fresh run dir; the old one is kept aside.
std::set<std::string> apply_retry_options(results::Store& store, const SweepSpec& sweep,
                                          const std::vector<JobSpec>& jobs,
                                          const RunOptions& options, JobStates& states,
                                          PlanChange& change) {
  std::set<std::string> retry_once;
  std::set<std::string> diverged;
  for (const auto& job : jobs) {
    const std::string& s = states.status[job.id];
    if (options.retry_failed && (s == "failed" || s == "timed_out")) {
      retry_once.insert(job.id);
      change.retried.push_back(job.id);
    }
    if (options.retry_diverged && s == "diverged") diverged.insert(job.id);
  }
  if (diverged.empty()) return retry_once;
  std::vector<results::JobRow> rows;
  for (const auto& row : with_dependants(store.jobs(sweep.name), diverged)) {
    if (row.status != "pending") rows.push_back(row);
  }
  for (const auto& r : reset_jobs(store, sweep.name, rows)) {
    if (diverged.count(r.id)) change.reset.push_back(r.id);
    if (states.status.count(r.id)) states.status[r.id] = "pending";
    states.exit_code.erase(r.id);
  }
  return retry_once;
}

// Slots: per_device processes on each device. A process takes one slot, whether it trains one
// job or the seeds of an ensemble.
std::vector<Slot> make_slots(const RunOptions& options) {
  std::vector<Slot> slots;
  for (const auto& d : options.devices) {
    for (int i = 0; i < std::max(1, options.per_device); ++i) slots.push_back({d, {}});
  }
  return slots;
}

// A CPU job's threads: as given, else the cores shared among the CPU slots.
int cpu_threads_per_job(const RunOptions& options, const std::vector<Slot>& slots) {
  if (options.threads_per_job > 0) return options.threads_per_job;
  const int cpu_slots = static_cast<int>(
      std::count_if(slots.begin(), slots.end(), [](const Slot& s) { return s.device == "cpu"; }));
  const int cores = options.cpu_threads > 0
                        ? options.cpu_threads
                        : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::max(1, cores / std::max(1, cpu_slots));
}

}  // namespace

RunSummary run_sweep(const SweepSpec& sweep, const std::vector<JobSpec>& jobs,
                     results::Store& store, Executor& executor, const RunOptions& options,
                     const std::atomic<bool>* interrupt) {
  if (options.ablate_binary.empty()) throw std::invalid_argument("run_sweep: no ablate binary");
  // Two locks: the run dirs (this workdir) and the database's record of the sweep, so neither a
  // second coordinator on another database nor one on another workdir can run the same jobs.
  SweepLock workdir_lock(workdir_lock_file(options.workdir, sweep.name), sweep.name);
  SweepLock database_lock(database_lock_file(store.path(), sweep.name), sweep.name);

  JobIndex index;
  PlanChange change = register_plan(store, sweep, jobs, options.workdir, index);
  JobStates states = recover_states(store, sweep, executor, index, change);
  std::set<std::string> retry_once =
      apply_retry_options(store, sweep, jobs, options, states, change);
  if (options.on_registered) options.on_registered(change);
  auto& status = states.status;
  auto& exit_code = states.exit_code;
  auto& dir = index.dir;
  const auto& params_of = index.params_of;
  std::map<std::string, int> retries_used;

  std::vector<Slot> slots = make_slots(options);
  const int threads_per_job = cpu_threads_per_job(options, slots);

  RunSummary summary;
  Progress progress(progress_mode(options.progress, STDERR_FILENO), std::cerr, store, sweep.name,
                    jobs, status);
  progress.begin();
  SeedsPerProcess seeds_per_process(options, store, sweep.name, jobs);
  auto retryable = [&](const std::string& id) {
    const auto& s = status[id];
    return (s == "failed" || s == "timed_out") &&
           (retry_once.count(id) > 0 || (exit_code[id] != 2 && retries_used[id] < options.retries));
  };
  auto parent_ok = [&](const JobSpec& job) {
    return job.parent_id.empty() || status[job.parent_id] == "done";
  };
  auto ready = [&](const JobSpec& job) {
    const auto& s = status[job.id];
    return (s == "pending" || s == "interrupted" || s == "skipped" || retryable(job.id)) &&
           parent_ok(job);
  };

  // Where a later coordinator finds the job's process (or Slurm task) if this one dies.
  auto write_handle = [](const fs::path& run_dir, const std::string& handle) {
    if (handle.empty()) return;
    results::write_file_atomic(run_dir / "launcher.pid", handle + "\n");
  };
  // A job about to start: its run dir holds the current plan's config, the store says running.
  auto prepare = [&](const JobSpec& job, const std::string& device) {
    Config c = job.config;
    if (!job.parent_id.empty()) c.init.from = dir[job.parent_id];
    write_config(dir[job.id], to_yaml(c));
    store.replace_params(sweep.name, job.id, params_of.at(job.id));
    if (retry_once.erase(job.id) == 0 && retryable(job.id)) ++retries_used[job.id];
    store.mark_running(sweep.name, job.id, host_name(), device);
    status[job.id] = "running";
  };
  // One process for `members` (one job, or the seeds of an ensemble: the first is the lead).
  auto launch = [&](const std::vector<const JobSpec*>& members, Slot& slot) {
    std::vector<LaunchMember> launched;
    for (const JobSpec* job : members) {
      prepare(*job, slot.device);
      launched.push_back({job->id, dir[job->id]});
      slot.jobs.push_back(job->id);
    }
    executor.start(ensemble_launch(launched, slot.device, threads_per_job, options));
    ++summary.launched;
    for (const JobSpec* job : members) progress.started(job->id, slot.device);
  };
  // The ready jobs, the seeds of an arm together in processes of as many as seeds_per_process
  // says, while slots are free.
  auto launch_ready = [&] {
    std::vector<const JobSpec*> waiting;
    for (const auto& job : jobs) {
      if (ready(job)) waiting.push_back(&job);
    }
    for (const auto& group : seed_groups(waiting)) {
      for (size_t next = 0; next < group.size();) {
        Slot* slot = free_slot(slots);
        if (slot == nullptr) return;
        const size_t n = seeds_per_process.now(*group[next], slot->device, status);
        if (n == 0) break;  // the arm's first seed measures its memory first
        const size_t end = std::min(group.size(), next + n);
        launch({group.begin() + static_cast<std::ptrdiff_t>(next),
                group.begin() + static_cast<std::ptrdiff_t>(end)},
               *slot);
        next = end;
      }
    }
  };

  // Each job of an ended process, from its own run dir.
  auto finish = [&](const Exit& e, bool stopping) {
    for (auto& slot : slots) {
      if (!slot.jobs.empty() && slot.jobs.front() == e.job_id) slot.jobs.clear();
    }
    const auto members = members_of(e);
    const fs::path output = fs::path(dir[e.job_id]) / "output.txt";
    for (const auto& member : members) {
      const std::string& id = member.job_id;
      const auto ingested = results::ingest_run_dir(store, sweep.name, id, dir[id]);
      const Outcome o = outcome_of(e, ingested.summary_status, stopping, options.timeout_s);
      std::string reason = o.reason;
      if (!reason.empty() && members.size() > 1) reason += ensemble_note(members, id);
      if (o.with_output) reason += "\n" + tail_lines(output, 20);
      exit_code[id] = e.exit_code;
      status[id] = o.status;
      store.mark_finished(sweep.name, id, o.status,
                          e.exit_code >= 0 ? std::optional<int>(e.exit_code) : std::nullopt,
                          reason);
      progress.ended(id, o.status, reason);
    }
  };

  double next_ingest = monotonic_seconds() + options.ingest_interval_s;
  for (;;) {
    if (interrupt != nullptr && interrupt->load()) {
      summary.interrupted = true;
      for (const auto& e : executor.stop_all(10.0)) finish(e, /*stopping=*/true);
      break;
    }
    // Dependants of jobs that ended badly for good are skipped, with the reason.
    for (const auto& job : jobs) {
      if (job.parent_id.empty() || status[job.id] == "done" || status[job.id] == "running")
        continue;
      const auto& ps = status[job.parent_id];
      if (final_bad(ps) && !retryable(job.parent_id) && status[job.id] != "skipped") {
        status[job.id] = "skipped";
        const std::string reason = "skipped: parent " + job.parent_id + " " + ps;
        store.mark_finished(sweep.name, job.id, "skipped", std::nullopt, reason);
        progress.ended(job.id, "skipped", reason);
      }
    }
    launch_ready();
    for (const auto& [id, handle] : executor.flush()) write_handle(dir[id], handle);
    if (options.detach) break;           // submitted: the scheduler runs them from here
    if (executor.running() == 0) break;  // nothing runs and nothing could start
    progress.tick();
    for (const auto& e : executor.poll(0.25)) finish(e, /*stopping=*/false);
    if (monotonic_seconds() >= next_ingest) {
      for (const auto& slot : slots) {
        for (const auto& id : slot.jobs) results::ingest_run_dir(store, sweep.name, id, dir[id]);
      }
      next_ingest = monotonic_seconds() + options.ingest_interval_s;
    }
  }
  progress.finish();
  for (const auto& job : jobs) ++summary.counts[status[job.id]];
  return summary;
}

}  // namespace ablate::runner
