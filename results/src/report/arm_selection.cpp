// check_arm_selection (report.h): the arm-choosing steps of build_report, run on planned arms.
#include "report_parts.h"

namespace ablate::results {

std::vector<PlannedFamily> check_arm_selection(const ReportOptions& options,
                                               const std::vector<PlannedArm>& arms,
                                               const std::vector<std::string>& key_order) {
  if (arms.empty()) return {};  // an empty plan is refused by the planner itself
  Report r;
  r.options = options;
  r.options.sequential = false;  // no samples: the families' shape only
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
  detail::PlannedSeeds no_seeds;  // no runs: every arm's seeds are as good as the others'
  for (const auto& arm : r.arms) no_seeds[arm.arm_key];

  std::vector<PlannedFamily> out;
  if (!options.baseline.empty()) {
    detail::choose_baseline(r);
    detail::add_baseline_family(r, no_seeds);
  } else if (options.compare.empty()) {
    // The report chooses the baseline among the arms with enough runs: nothing to check before
    // there are runs, but the family's size is known.
    PlannedFamily f;
    f.name = "baseline";
    f.comparisons = static_cast<int64_t>(r.arms.size()) - 1;
    out.push_back(f);
  }
  for (const auto& spec : options.compare) detail::add_compare_family(r, spec, no_seeds);
  for (const Family& family : r.families) {
    PlannedFamily f;
    f.name = family.name;
    for (const auto& group : family.groups) {
      f.comparisons += static_cast<int64_t>(group.comparisons.size());
    }
    out.push_back(f);
  }
  if (!options.sequential) return out;

  // The anytime-valid comparisons' level and first possible decision, as add_sequential sets
  // them once every comparison has its first seeds.
  detail::set_sequential_setup(r);
  for (PlannedFamily& f : out) {
    f.level = detail::sequential_level(options, static_cast<size_t>(f.comparisons));
    stats::SequentialOptions o;
    o.method = r.sequential.method;
    o.alpha = f.level;
    f.method = stats::to_string(o.method);
    f.first_possible = stats::sequential_paired({}, {}, o).min_looks_to_decide;
  }
  return out;
}

}  // namespace ablate::results
