#pragma once
// The sweep file's `report:` block (docs/design.md section 3) as the options of `ablate report`,
// and checked against the plan before anything trains. Torch-free.
#include <vector>

#include "ablate/results/report.h"
#include "ablate/runner/sweep.h"

namespace ablate::runner {

// The report's options for the sweep's question: `report:` as flags, with the anytime-valid
// comparisons on and the Bonferroni correction over e-values for the stopping rule (`none` stays
// none), no figures' curves, and min_seeds 2.
results::ReportOptions question_options(const SweepSpec& sweep);

// Whether the question can be asked of the planned jobs (results::check_arm_selection): its
// `where:` keeps an arm, its `baseline:` names exactly one, each `compare:` key has two levels
// among the arms and `reference:` is one of them. Throws ConfigError at the `report:` key, keyed
// report.where, report.baseline, report.compare or report.reference, with what the arms have; a
// sweep without `report:` passes. `ablate plan` and `ablate run` call it, so a question that
// names no arm is refused before the first job rather than at the first look or the report.
void check_question(const SweepSpec& sweep, const std::vector<JobSpec>& jobs);

}  // namespace ablate::runner
