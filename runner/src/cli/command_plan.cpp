#include <iostream>

#include "ablate/runner/plan.h"
#include "ablate/runner/sweep.h"
#include "cli.h"
#include "preflight.h"

namespace ablate::cli {

int command_plan(const std::vector<std::string>& args) {
  const CommandInfo info{
      "plan", "SWEEP.yaml [KEY=VALUE...] [--json]",
      "The jobs a sweep expands to (stages, arms, seeds, job ids), without running anything.",
      "KEY=VALUE overrides apply to the sweep's base config, as they would for `ablate run`."};
  std::vector<std::string> positional;
  po::options_description options("options");
  options.add_options()("json", "one JSON object per job instead of the table");
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
  // Refused as `ablate run` would refuse it: the configs, the data and devices of this machine.
  const CheckedSweep checked = checked_sweep(in.file, in.overrides, MachineChecks{});
  const auto& sweep = checked.sweep;
  const auto& jobs = checked.jobs;
  for (const auto& w : runner::plan_warnings(sweep, jobs)) std::cerr << "warning: " << w << "\n";
  std::cout << (vm.count("json") ? runner::plan_json(sweep, jobs) : runner::plan_text(sweep, jobs));
  return kOk;
}

}  // namespace ablate::cli
