#include <iostream>

#include "ablate/runner/plan.h"
#include "ablate/runner/sweep.h"
#include "cli.h"
#include "preflight.h"

namespace ablate::cli {

int command_plan(const std::vector<std::string>& args) {
  const CommandInfo info{
      "plan", "SWEEP.yaml [KEY=VALUE...] [--json] [--seeds-per-process N|auto]",
      "The jobs a sweep expands to (stages, arms, seeds, job ids), without running anything.",
      "KEY=VALUE overrides apply to the sweep's base config, as they would for `ablate run`.\n"
      "The last line says how many processes would train the jobs: the seeds of an arm train\n"
      "together, --seeds-per-process (or the sweep file's seeds_per_process:) at most."};
  std::vector<std::string> positional;
  std::string seeds_per_process;
  po::options_description options("options");
  options.add_options()("json", "one JSON object per job instead of the table")(
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
  if (vm.count("json")) {
    std::cout << runner::plan_json(sweep, jobs);
    return kOk;
  }
  std::cout << runner::plan_text(sweep, jobs)
            << runner::plan_processes_text(
                   jobs, *per_process >= 0 ? *per_process : sweep.seeds_per_process);
  return kOk;
}

}  // namespace ablate::cli
