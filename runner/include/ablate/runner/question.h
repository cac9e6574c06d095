#pragma once
// The sweep file's `report:` block (docs/design.md section 3) as the options of `ablate report`,
// and checked against the plan before anything trains. Torch-free.
#include <string>
#include <vector>

#include "ablate/results/report.h"
#include "ablate/runner/sweep.h"

namespace ablate::runner {

// Where a part of the question taken from the sweep file was given, in the report's words
// (ReportOptions::baseline_given_in and the like).
inline constexpr const char* kGivenInSweepFile = "the sweep file's report: block";

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
// For a sweep with seeds until decided it also refuses a method the metric cannot have (bounded
// betting without a known range).
void check_question(const SweepSpec& sweep, const std::vector<JobSpec>& jobs);

// What a valid question probably does not do as meant, one line each (plan_warnings prints
// them): for seeds until decided, a family whose anytime-valid test cannot decide anything within
// `seeds: max` at its level (alpha / K) whatever the data, so its comparisons would stop
// undecided at the cap. Empty for a sweep without seeds until decided.
std::vector<std::string> question_warnings(const SweepSpec& sweep,
                                           const std::vector<JobSpec>& jobs);

}  // namespace ablate::runner
