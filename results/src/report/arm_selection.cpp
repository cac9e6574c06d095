// check_arm_selection (report.h): the arm-choosing steps of build_report, run on planned arms.
#include "report_parts.h"

namespace ablate::results {

void check_arm_selection(const ReportOptions& options, const std::vector<PlannedArm>& arms,
                         const std::vector<std::string>& key_order) {
  if (arms.empty()) return;  // an empty plan is refused by the planner itself
  Report r;
  r.options = options;
  r.sweep.name = options.sweep;
  for (const auto& planned : arms) {
    ReportArm arm;
    arm.arm_key = planned.arm_key;
    arm.stage = planned.stage;
    arm.config = planned.config;
    r.arms.push_back(std::move(arm));
  }
  // No jobs: the steps below read the arms' keys and values only (parents name nothing here).
  std::vector<std::vector<const JobRow*>> arm_jobs(r.arms.size());
  detail::keep_where(r, arm_jobs);
  detail::label_arms(r, arm_jobs, {}, key_order);
  // Without a given baseline the report picks one among the arms with enough runs: nothing to
  // check before there are runs.
  if (!options.baseline.empty()) detail::choose_baseline(r);
  detail::PlannedSeeds no_seeds;  // no runs: every arm's seeds are as good as the others'
  for (const auto& arm : r.arms) no_seeds[arm.arm_key];
  for (const auto& spec : options.compare) detail::add_compare_family(r, spec, no_seeds);
}

}  // namespace ablate::results
