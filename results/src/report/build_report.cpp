// build_report: reads the store and assembles the report from its parts.
#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "ablate/results/import.h"
#include "report_parts.h"

namespace ablate::results {

using namespace detail;

TestChoice parse_test_choice(const std::string& name) {
  for (TestChoice t :
       {TestChoice::kAuto, TestChoice::kPairedT, TestChoice::kWelch, TestChoice::kWilcoxon,
        TestChoice::kMannWhitney, TestChoice::kPermutation, TestChoice::kAso}) {
    if (to_string(t) == name) return t;
  }
  throw ReportError("--test " + name +
                    ": expected auto, paired-t, welch, wilcoxon, mann-whitney, permutation or aso");
}

std::string to_string(TestChoice test) {
  switch (test) {
    case TestChoice::kAuto:
      return "auto";
    case TestChoice::kPairedT:
      return "paired-t";
    case TestChoice::kWelch:
      return "welch";
    case TestChoice::kWilcoxon:
      return "wilcoxon";
    case TestChoice::kMannWhitney:
      return "mann-whitney";
    case TestChoice::kPermutation:
      return "permutation";
    case TestChoice::kAso:
      return "aso";
  }
  return "";
}

Report build_report(Store& store, const ReportOptions& options) {
  if (!(options.alpha > 0 && options.alpha < 1)) {
    throw ReportError("--alpha " + format_number(options.alpha) + ": must be in (0, 1)");
  }
  if (options.min_seeds < 2) throw ReportError("min_seeds must be at least 2");
  Report r;
  r.options = options;
  const auto sweep = store.sweep(options.sweep);
  if (!sweep) {
    const auto names = store.sweeps();
    throw ReportError("no sweep '" + options.sweep + "' in " + store.path() +
                      "; sweeps: " + (names.empty() ? "(none)" : join(names, ", ")));
  }
  r.sweep = *sweep;
  r.imported = sweep->code_version == kImportCodeVersion;
  const int64_t sweep_pk = store.sweep_pk(options.sweep);
  const auto values = summary_values(store, sweep_pk, options.metric);
  if (values.empty()) {
    const auto names = summary_names(store, sweep_pk);
    throw ReportError("no metric '" + options.metric + "' in sweep '" + options.sweep +
                      "'; summary metrics: " + (names.empty() ? "(none yet)" : join(names, ", ")));
  }
  if (!options.lower_is_better && looks_lower_is_better(options.metric) &&
      !looks_higher_is_better(options.metric)) {
    r.warnings.push_back("the name " + options.metric +
                         " suggests lower is better, but this report treats higher as better; "
                         "pass --lower-is-better if lower is better");
  }
  if (options.lower_is_better && looks_higher_is_better(options.metric)) {
    r.warnings.push_back("the name " + options.metric +
                         " suggests higher is better, but --lower-is-better was given");
  }
  r.curve_metric = options.curves ? curve_of(store, sweep_pk, options.metric, &r.metric_kind) : "";
  if (r.imported && r.metric_kind.empty()) r.metric_kind = "imported column";
  const auto parameters = summary_values(store, sweep_pk, "parameters");
  const auto throughput = summary_values(store, sweep_pk, "throughput");
  std::map<std::string, std::map<int64_t, double>> curves;
  if (!r.curve_metric.empty()) curves = curve_values(store, sweep_pk, r.curve_metric);

  // Arms in registration order, their jobs, and their configs. Stale jobs (the sweep file no
  // longer plans them) are left out, and counted.
  std::vector<JobRow> jobs;
  for (auto& job : store.jobs(options.sweep)) {
    if (job.stale) {
      ++r.stale;
    } else {
      jobs.push_back(std::move(job));
    }
  }
  std::map<std::string, size_t> arm_index;
  std::vector<std::vector<const JobRow*>> arm_jobs;
  std::map<std::string, std::set<int64_t>> planned_seeds;
  std::set<std::string> stages;
  for (const auto& job : jobs) {
    auto [it, inserted] = arm_index.emplace(job.arm_key, r.arms.size());
    if (inserted) {
      ReportArm arm;
      arm.arm_key = job.arm_key;
      arm.stage = job.stage;
      for (auto& [k, v] : store.params(options.sweep, job.id)) {
        if (k != "seed") arm.config.emplace(k, v);
      }
      r.arms.push_back(std::move(arm));
      arm_jobs.emplace_back();
    }
    arm_jobs[it->second].push_back(&job);
    planned_seeds[job.arm_key].insert(job.seed);
    stages.insert(job.stage);
  }
  if (r.arms.empty()) {
    throw ReportError("sweep '" + options.sweep + "' has no jobs" +
                      (r.stale > 0 ? " that its sweep file still plans (" + stale_line(r.stale) +
                                         "; ablate status lists them)"
                                   : std::string()));
  }

  // The params that tell the arms apart, and labels from them.
  std::set<std::string> keys;
  for (const auto& arm : r.arms) {
    for (const auto& [k, v] : arm.config) keys.insert(k);
  }
  std::vector<std::string> varying;
  if (stages.size() > 1) varying.push_back("stage");
  for (const auto& key : keys) {
    for (const auto& arm : r.arms) {
      if (get_or(arm.config, key, "\x01") != get_or(r.arms.front().config, key, "\x01")) {
        varying.push_back(key);
        break;
      }
    }
  }
  for (auto& arm : r.arms) {
    std::vector<std::string> parts;
    for (const auto& key : varying) {
      const std::string value = arm_value(arm, key);
      arm.params.emplace_back(key, value);
      parts.push_back(short_key(key, varying) + "=" + value);
    }
    arm.label = parts.empty() ? "all runs" : join(parts, " ");
  }

  // Samples and exclusions.
  const double confidence = 1 - options.alpha;
  stats::BootstrapOptions bootstrap;
  bootstrap.resamples = options.bootstrap_resamples;
  bootstrap.seed = options.seed;
  for (size_t a = 0; a < r.arms.size(); ++a) {
    ReportArm& arm = r.arms[a];
    std::vector<std::pair<int64_t, const JobRow*>> samples;
    for (const JobRow* job : arm_jobs[a]) {
      const auto v = values.find(job->id);
      ExcludedJob ex{job->id, job->seed, arm.label, job->status, job->error};
      if (job->status == "diverged") {
        if (ex.reason.empty()) ex.reason = "diverged (non-finite loss)";
        ++r.diverged;
      } else if (job->status != "done") {
        if (ex.reason.empty()) ex.reason = "not finished";
        ++r.failed;
      } else if (v == values.end()) {
        ex.reason = "no value of " + options.metric;
      } else if (!std::isfinite(v->second)) {
        ex.reason = options.metric + " is not finite";
        ++r.diverged;
      } else {
        samples.emplace_back(job->seed, job);
        continue;
      }
      r.excluded.push_back(ex);
    }
    std::sort(samples.begin(), samples.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<const JobRow*> sample_jobs;
    double params_sum = 0, throughput_sum = 0;
    int64_t params_n = 0, throughput_n = 0;
    for (const auto& [seed, job] : samples) {
      arm.seeds.push_back(seed);
      arm.values.push_back(values.at(job->id));
      sample_jobs.push_back(job);
      if (const auto p = parameters.find(job->id); p != parameters.end()) {
        params_sum += p->second;
        ++params_n;
      }
      if (const auto t = throughput.find(job->id); t != throughput.end()) {
        throughput_sum += t->second;
        ++throughput_n;
      }
    }
    if (params_n > 0) arm.parameters = params_sum / static_cast<double>(params_n);
    if (throughput_n > 0) arm.throughput = throughput_sum / static_cast<double>(throughput_n);
    arm.stats = stats::describe(arm.values, confidence, bootstrap);
    if (!curves.empty()) describe_curve(arm, sample_jobs, curves, confidence);
  }

  choose_baseline(r);
  if (r.baseline_arm().values.size() < static_cast<size_t>(options.min_seeds)) {
    r.warnings.push_back("the baseline [" + r.baseline_arm().label + "] has " +
                         std::to_string(r.baseline_arm().values.size()) +
                         " usable runs, fewer than the " + std::to_string(options.min_seeds) +
                         " a test needs");
  }
  const int64_t aso_comparisons =
      options.correction == stats::Correction::kNone
          ? 1
          : std::max<int64_t>(1, static_cast<int64_t>(r.arms.size()) - 1);
  for (size_t a = 0; a < r.arms.size(); ++a) {
    if (a != r.baseline) r.comparisons.push_back(compare(r, a, planned_seeds, aso_comparisons));
  }
  decide(r);
  if (r.comparisons.empty()) {
    r.warnings.push_back("the sweep has one arm: there is nothing to compare");
  } else {
    r.too_few_seeds = std::all_of(r.comparisons.begin(), r.comparisons.end(),
                                  [](const Comparison& c) { return c.verdict == "too few seeds"; });
    if (r.too_few_seeds) {
      r.warnings.push_back("too few seeds: no arm has the " + std::to_string(options.min_seeds) +
                           " runs per arm a test needs, so no p-value is reported; run more "
                           "seeds (the sweep's `seeds:`) and report again");
    }
  }
  if (r.stale > 0) r.warnings.push_back(stale_line(r.stale));
  if (!r.excluded.empty()) {
    const bool one = r.excluded.size() == 1;
    r.warnings.push_back(
        count_of(r.excluded.size(), "job") + (one ? " is not a sample (" : " are not samples (") +
        std::to_string(r.diverged) + " diverged, " + std::to_string(r.failed) +
        " failed or unfinished); " + (one ? "it is" : "they are") + " listed below");
  }
  write_method(r);
  write_provenance(r, store, jobs);
  return r;
}

}  // namespace ablate::results
