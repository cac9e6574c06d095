#include "ablate/runner/question.h"

#include <iomanip>
#include <set>
#include <sstream>

#include "ablate/runner/canonical.h"
#include "ablate/runner/parse.h"
#include "ablate/runner/schema.h"

namespace ablate::runner {

results::ReportOptions question_options(const SweepSpec& sweep) {
  const ReportQuestion& q = sweep.report;
  results::ReportOptions o;
  o.sweep = sweep.name;
  o.metric = q.metric;
  o.baseline = q.baseline;
  if (!q.baseline.empty()) o.baseline_given_in = kGivenInSweepFile;
  o.where = q.where;
  if (!q.where.empty()) o.where_given_in = kGivenInSweepFile;
  for (const auto& key : q.compare) {
    results::CompareSpec c;
    c.key = key;
    c.key_given_in = kGivenInSweepFile;
    if (!q.reference.empty()) {
      c.reference = q.reference;
      c.reference_given_in = kGivenInSweepFile;
    }
    o.compare.push_back(c);
  }
  if (!q.direction.empty()) o.lower_is_better = q.direction == "lower";
  o.alpha = q.alpha;
  // The stopping rule uses each comparison's own e-process at alpha / K (e-Bonferroni); e-BH is
  // then valid over the e-values where each stopped (docs/design.md section 6).
  o.correction = q.correction == "none" ? results::stats::Correction::kNone
                                        : results::stats::Correction::kBonferroni;
  o.min_seeds = 2;
  o.curves = false;
  o.sequential = true;
  o.equivalence_margin = q.equivalence_margin;
  if (q.has_bounds) o.bounds = std::make_pair(q.lower, q.upper);
  if (!q.method.empty()) o.sequential_method = results::stats::parse_sequential_method(q.method);
  return o;
}

namespace {

// The arms as the store will record them (the coordinator registers stored_params).
std::vector<results::PlannedArm> planned_arms(const std::vector<JobSpec>& jobs) {
  std::vector<results::PlannedArm> arms;
  std::set<std::string> seen;
  for (const auto& job : jobs) {
    if (!seen.insert(job.arm_key).second) continue;
    results::PlannedArm arm{job.arm_key, job.stage, {}};
    for (auto& [key, value] : stored_params(job.config)) {
      if (key != "seed") arm.config.emplace(key, value);
    }
    arms.push_back(std::move(arm));
  }
  return arms;
}

std::vector<std::string> schema_order() {
  std::vector<std::string> keys;
  for (const FieldInfo& f : schema()) keys.push_back(f.key);
  return keys;
}

}  // namespace

void check_question(const SweepSpec& sweep, const std::vector<JobSpec>& jobs) {
  if (!sweep.report.given) return;
  const auto arms = planned_arms(jobs);
  const auto key_order = schema_order();
  // One part of the question at a time, so the error names the part that failed.
  const results::ReportOptions all = question_options(sweep);
  results::ReportOptions o;
  o.sweep = all.sweep;
  const auto ask = [&](const std::string& key) {
    try {
      results::check_arm_selection(o, arms, key_order);
    } catch (const results::ReportError& e) {
      // The error's detail without the part's name: here the file's key names it.
      const Location& at = sweep.report.at;
      throw ConfigError(at.file, at.line, at.column, key, e.detail());
    }
  };
  o.where = all.where;
  ask("report.where");
  o.baseline = all.baseline;
  ask("report.baseline");
  for (const auto& spec : all.compare) {
    results::CompareSpec key_only;
    key_only.key = spec.key;
    o.compare = {key_only};
    ask("report.compare");
    o.compare = {spec};
    ask("report.reference");
  }
  // The anytime-valid method must be usable with the metric (bounded betting needs a range).
  if (sweep.sequential.enabled) {
    try {
      results::check_arm_selection(all, arms, key_order);
    } catch (const results::ReportError& e) {
      // In the file's words rather than the report's flags.
      std::string message = e.what();
      for (const auto& [flag, key] :
           {std::pair<std::string, std::string>{"--sequential-method ", "method: "},
            {"pass --bounds LO,HI", "give bounds: [low, high]"}}) {
        for (size_t at = message.find(flag); at != std::string::npos; at = message.find(flag)) {
          message.replace(at, flag.size(), key);
        }
      }
      const Location& at = sweep.report.at;
      throw ConfigError(at.file, at.line, at.column, "report", message);
    }
  }
}

std::vector<std::string> question_warnings(const SweepSpec& sweep,
                                           const std::vector<JobSpec>& jobs) {
  std::vector<std::string> out;
  if (!sweep.report.given || !sweep.sequential.enabled) return out;
  std::vector<results::PlannedFamily> families;
  try {
    families =
        results::check_arm_selection(question_options(sweep), planned_arms(jobs), schema_order());
  } catch (const results::ReportError&) {
    return out;  // check_question says what is wrong
  }
  const int64_t max = sweep.sequential.max;
  for (const auto& f : families) {
    if (f.first_possible <= max) continue;  // -1 (not known) included
    std::ostringstream level;
    level << std::setprecision(3) << f.level;
    out.push_back(sweep.file + ": seeds: max " + std::to_string(max) + " is below the " +
                  std::to_string(f.first_possible) + " seeds at which the anytime-valid test (" +
                  f.method + ") of family " + f.name + " can decide anything at its level " +
                  level.str() + " (" + std::to_string(f.comparisons) +
                  (f.comparisons == 1 ? " comparison" : " comparisons") +
                  "), whatever the data: its comparisons will stop undecided; raise max to " +
                  std::to_string(f.first_possible) + " or more, or ask fewer comparisons");
  }
  return out;
}

}  // namespace ablate::runner
