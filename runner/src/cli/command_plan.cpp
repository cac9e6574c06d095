#include <filesystem>
#include <iostream>
#include <set>

#include "ablate/results/store.h"
#include "ablate/runner/plan.h"
#include "ablate/runner/sweep.h"
#include "cli.h"
#include "preflight.h"

namespace ablate::cli {
namespace {

// Where the planned jobs stand in `db` (read only). `named`: the user named it, so a missing
// file is said; the default one is read only when it exists.
std::optional<runner::StoredJobs> stored_jobs(const std::string& db, bool named,
                                              const std::string& sweep,
                                              const std::vector<runner::JobSpec>& jobs) {
  runner::StoredJobs out;
  out.db = db;
  if (!std::filesystem::exists(db)) {
    if (!named) return std::nullopt;
    out.exists = false;
    return out;
  }
  results::StoreOptions read_only;
  read_only.read_only = true;
  const results::Store store(db, read_only);
  std::set<std::string> planned;
  for (const auto& job : jobs) planned.insert(job.id);
  if (!store.sweep(sweep)) return out;
  for (const auto& row : store.jobs(sweep)) {
    if (planned.count(row.id)) {
      out.status[row.id] = row.status;
    } else {
      ++out.not_planned;
    }
  }
  return out;
}

}  // namespace

int command_plan(const std::vector<std::string>& args) {
  const CommandInfo info{
      "plan", "SWEEP.yaml [KEY=VALUE...] [--json] [--seeds-per-process N|auto]",
      "The jobs a sweep expands to (stages, arms, seeds, job ids), without running anything.",
      "KEY=VALUE overrides apply to the sweep's base config, as they would for `ablate run`.\n"
      "The last line says how many processes would train the jobs: the seeds of an arm train\n"
      "together, --seeds-per-process (or the sweep file's seeds_per_process:) at most.\n"
      "When the database exists (--db, default ablate.db), each job's status there is shown\n"
      "(\"new\" when it is not there), with the counts: what `ablate run` would find. It is\n"
      "only read."};
  std::vector<std::string> positional;
  std::string seeds_per_process;
  std::string db = "ablate.db";
  po::options_description options("options");
  options.add_options()("db", po::value(&db)->default_value(db),
                        "the database whose jobs' status is shown (read only; when it exists)")(
      "json", "one JSON object per job instead of the table")(
      "seeds-per-process", po::value(&seeds_per_process), seeds_per_process_help());
  po::options_description hidden;
  hidden.add_options()("args", po::value(&positional), "");
  po::positional_options_description pos;
  pos.add("args", -1);
  po::variables_map vm;
  if (!parse_args(info, options, hidden, pos, args, vm)) return kOk;
  const auto in = split_positional(positional);
  if (!in.error.empty() || in.file.empty()) {
    std::cerr << "ablate plan: " << (in.file.empty() ? "give SWEEP.yaml" : in.error) << "\n";
    return kBadInput;
  }
  const auto per_process = seeds_per_process_flag(vm, seeds_per_process, "plan");
  if (!per_process) return kBadInput;
  // Refused as `ablate run` would refuse it: the configs, the data and devices of this machine.
  const CheckedSweep checked = checked_sweep(in.file, in.overrides, MachineChecks{});
  const auto& sweep = checked.sweep;
  const auto& jobs = checked.jobs;
  for (const auto& w : runner::plan_warnings(sweep, jobs)) std::cerr << "warning: " << w << "\n";
  const auto stored = stored_jobs(db, given(vm, "db"), sweep.name, jobs);
  const runner::StoredJobs* in_db = stored ? &*stored : nullptr;
  if (vm.count("json")) {
    std::cout << runner::plan_json(sweep, jobs, in_db);
    return kOk;
  }
  std::cout << runner::plan_text(sweep, jobs, in_db)
            << runner::plan_processes_text(
                   jobs, *per_process >= 0 ? *per_process : sweep.seeds_per_process, in_db);
  return kOk;
}

}  // namespace ablate::cli
