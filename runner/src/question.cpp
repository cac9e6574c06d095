#include "ablate/runner/question.h"

#include <map>

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
  o.where = q.where;
  for (const auto& key : q.compare) {
    results::CompareSpec c;
    c.key = key;
    if (!q.reference.empty()) c.reference = q.reference;
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

void check_question(const SweepSpec& sweep, const std::vector<JobSpec>& jobs) {
  if (!sweep.report.given) return;
  // The arms as the store will record them (the coordinator registers stored_params).
  std::vector<results::PlannedArm> arms;
  std::map<std::string, size_t> index;
  for (const auto& job : jobs) {
    if (!index.emplace(job.arm_key, arms.size()).second) continue;
    results::PlannedArm arm{job.arm_key, job.stage, {}};
    for (auto& [key, value] : stored_params(job.config)) {
      if (key != "seed") arm.config.emplace(key, value);
    }
    arms.push_back(std::move(arm));
  }
  std::vector<std::string> key_order;
  for (const FieldInfo& f : schema()) key_order.push_back(f.key);
  // One part of the question at a time, so the error names the part that failed.
  const results::ReportOptions all = question_options(sweep);
  results::ReportOptions o;
  o.sweep = all.sweep;
  const auto ask = [&](const std::string& key, const std::string& flag) {
    try {
      results::check_arm_selection(o, arms, key_order);
    } catch (const results::ReportError& e) {
      // The report's message names its command-line flag; here the file's key says it.
      std::string message = e.what();
      if (message.rfind(flag + " ", 0) == 0) message = message.substr(flag.size() + 1);
      const Location& at = sweep.report.at;
      throw ConfigError(at.file, at.line, at.column, key, message);
    }
  };
  o.where = all.where;
  ask("report.where", "--where");
  o.baseline = all.baseline;
  ask("report.baseline", "--baseline");
  for (const auto& spec : all.compare) {
    o.compare = {results::CompareSpec{spec.key, std::nullopt}};
    ask("report.compare", "--compare");
    o.compare = {spec};
    ask("report.reference", "--reference");
  }
}

}  // namespace ablate::runner
