// build_report: reads the store and assembles the report from its parts.
#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "ablate/results/decision_log.h"
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

namespace {

// The metric's values, or a ReportError listing the sweep's metrics with a did-you-mean.
std::map<std::string, double> metric_values(Store& store, int64_t sweep_pk, const Report& r) {
  const auto& o = r.options;
  auto values = summary_values(store, sweep_pk, o.metric);
  if (!values.empty()) return values;
  std::vector<std::string> metrics;
  for (const auto& name : summary_names(store, sweep_pk)) {
    if (is_metric_name(name, r.imported)) metrics.push_back(name);
  }
  const std::string near = did_you_mean(o.metric, metrics);
  throw ReportError("no metric '" + o.metric + "' in sweep '" + o.sweep + "'" +
                    (near.empty() ? "" : "; did you mean " + near + "?") +
                    "; metrics: " + (metrics.empty() ? "(none yet)" : join(metrics, ", ")));
}

// The metric's direction: given, or read from its name; a ReportError when neither.
void set_direction(Report& r) {
  const auto& o = r.options;
  const MetricDirection inferred = infer_direction(o.metric);
  if (o.lower_is_better) {
    r.lower_is_better = *o.lower_is_better;
    const std::string flag = r.lower_is_better ? "--lower-is-better" : "--higher-is-better";
    r.direction_reason = "given (" + flag + ")";
    if (inferred.lower_is_better && *inferred.lower_is_better != r.lower_is_better) {
      r.warnings.push_back("the name " + o.metric + " says " +
                           (*inferred.lower_is_better ? "lower" : "higher") + " is better (" +
                           inferred.word + "), but " + flag + " was given");
    }
    return;
  }
  if (!inferred.lower_is_better) {
    throw ReportError("--metric " + o.metric + ": " +
                      (inferred.word.empty()
                           ? std::string("its name does not say whether lower or higher is "
                                         "better")
                           : "its name says both (" + inferred.word + ")") +
                      "; pass --lower-is-better or --higher-is-better");
  }
  r.lower_is_better = *inferred.lower_is_better;
  r.direction_reason = "inferred from the name (" + inferred.word + ")";
}

// The runner's key order, recorded with the sweep (empty for an imported or older sweep).
std::vector<std::string> key_order(Store& store, const std::string& sweep) {
  const auto env = store.environment(sweep);
  const auto it = env.find(kParamOrder);
  std::vector<std::string> out;
  if (it == env.end()) return out;
  std::string key;
  for (const char c : it->second + ",") {
    if (c != ',') {
      key += c;
    } else if (!key.empty()) {
      out.push_back(key);
      key.clear();
    }
  }
  return out;
}

// The sweep's jobs that its file still plans (stale ones counted), and the arms they form.
struct ArmJobs {
  std::vector<JobRow> all;                         // every job of the sweep, stale included
  std::vector<JobRow> jobs;                        // the jobs the sweep file plans
  std::vector<std::vector<const JobRow*>> by_arm;  // per arm of Report::arms
  PlannedSeeds planned_seeds;
};

void load_arms(Store& store, Report& r, ArmJobs& out) {
  out.all = store.jobs(r.options.sweep);
  for (const auto& job : out.all) {
    if (job.stale) {
      ++r.stale;
    } else {
      out.jobs.push_back(job);
    }
  }
  std::map<std::string, size_t> arm_index;
  for (const auto& job : out.jobs) {
    auto [it, inserted] = arm_index.emplace(job.arm_key, r.arms.size());
    if (inserted) {
      ReportArm arm;
      arm.arm_key = job.arm_key;
      arm.stage = job.stage;
      for (auto& [k, v] : store.params(r.options.sweep, job.id)) {
        if (k != "seed") arm.config.emplace(k, v);
      }
      r.arms.push_back(std::move(arm));
      out.by_arm.emplace_back();
    }
    out.by_arm[it->second].push_back(&job);
    out.planned_seeds[job.arm_key].insert(job.seed);
  }
  if (r.arms.empty()) {
    throw ReportError("sweep '" + r.options.sweep + "' has no jobs" +
                      (r.stale > 0 ? " that its sweep file still plans (" + stale_line(r.stale) +
                                         "; ablate status lists them)"
                                   : std::string()));
  }
}

// Each arm's samples (done jobs with a finite value), the jobs excluded and why, statistics,
// costs and curves.
void collect_samples(Store& store, int64_t sweep_pk, Report& r, const ArmJobs& arm_jobs,
                     const std::map<std::string, double>& values) {
  const auto& o = r.options;
  const auto parameters = summary_values(store, sweep_pk, "parameters");
  const auto throughput = summary_values(store, sweep_pk, "throughput");
  const auto kv_cache = summary_values(store, sweep_pk, "kv_cache_bytes_per_token");
  std::map<std::string, std::map<int64_t, double>> curves;
  std::map<std::string, std::map<int64_t, double>> subsets;  // eval events' "subset"
  if (!r.curve_metric.empty()) {
    curves = curve_values(store, sweep_pk, r.curve_metric);
    if (r.curve_metric.rfind("eval/", 0) == 0)
      subsets = curve_values(store, sweep_pk, kSubsetMetric);
  }
  const double confidence = 1 - o.alpha;
  stats::BootstrapOptions bootstrap;
  bootstrap.resamples = o.bootstrap_resamples;
  bootstrap.seed = o.seed;
  for (size_t a = 0; a < r.arms.size(); ++a) {
    ReportArm& arm = r.arms[a];
    std::vector<std::pair<int64_t, const JobRow*>> samples;
    for (const JobRow* job : arm_jobs.by_arm[a]) {
      const auto v = values.find(job->id);
      ExcludedJob ex{job->id, job->seed, arm.label, job->status, job->error};
      if (job->status == "diverged") {
        if (ex.reason.empty()) ex.reason = "diverged (non-finite loss)";
        ++r.diverged;
      } else if (job->status != "done") {
        if (ex.reason.empty()) ex.reason = "not finished";
        ++r.failed;
      } else if (v == values.end()) {
        ex.reason = "no value of " + o.metric;
      } else if (!std::isfinite(v->second)) {
        ex.reason = o.metric + " is not finite";
        ++r.diverged;
      } else {
        samples.emplace_back(job->seed, job);
        continue;
      }
      r.excluded.push_back(ex);
    }
    std::sort(samples.begin(), samples.end(),
              [](const auto& x, const auto& y) { return x.first < y.first; });
    std::vector<const JobRow*> sample_jobs;
    std::vector<double> params, speeds, caches;
    for (const auto& [seed, job] : samples) {
      arm.seeds.push_back(seed);
      arm.values.push_back(values.at(job->id));
      sample_jobs.push_back(job);
      if (const auto p = parameters.find(job->id); p != parameters.end()) {
        params.push_back(p->second);
      }
      if (const auto t = throughput.find(job->id); t != throughput.end()) {
        speeds.push_back(t->second);
      }
      if (const auto k = kv_cache.find(job->id); k != kv_cache.end()) caches.push_back(k->second);
    }
    if (!params.empty()) arm.parameters = stats::mean(params);
    if (!speeds.empty()) arm.throughput = stats::mean(speeds);
    if (!caches.empty()) arm.kv_cache = stats::mean(caches);
    arm.stats = stats::describe(arm.values, confidence, bootstrap);
    if (!curves.empty()) describe_curve(arm, sample_jobs, curves, subsets, confidence);
  }
}

// The baseline family runs without --compare, or beside it when --baseline names one.
void add_families(Report& r, const PlannedSeeds& planned_seeds) {
  const auto& o = r.options;
  const bool baseline_family = o.compare.empty() || !o.baseline.empty();
  if (baseline_family) {
    choose_baseline(r);
    if (r.baseline_arm().values.size() < static_cast<size_t>(o.min_seeds)) {
      r.warnings.push_back("the baseline [" + r.baseline_arm().label + "] has " +
                           std::to_string(r.baseline_arm().values.size()) +
                           " usable runs, fewer than the " + std::to_string(o.min_seeds) +
                           " a test needs");
    }
    add_baseline_family(r, planned_seeds);
  }
  for (const auto& spec : o.compare) add_compare_family(r, spec, planned_seeds);
}

// "all 5 seeds", "both seeds", or "the 5 seeds both have" when one arm has more.
std::string seeds_words(const Report& r, const IdenticalArms& same) {
  const auto n = static_cast<size_t>(same.seeds);
  if (r.arms[same.arm].seeds.size() != n || r.arms[same.same_as].seeds.size() != n) {
    return "the " + std::to_string(n) + " seeds both have";
  }
  return n == 2 ? std::string("both seeds") : "all " + std::to_string(n) + " seeds";
}

void write_warnings(Report& r) {
  const auto& o = r.options;
  // Seeds chosen by looking at the results invalidate fixed-n p-values (optional stopping).
  if (r.until_decided_looks > 0) {
    r.warnings.push_back(
        "this sweep added seeds until decided (" + std::to_string(r.until_decided_looks) +
        " looks): the fixed-n tests (p-values and intervals of the arms table) assume the number "
        "of seeds was fixed in advance and do not hold under that stopping rule; " +
        (o.sequential ? std::string("the verdicts shown are the anytime-valid ones, which do")
                      : std::string("its verdicts are fixed-n too: report with --sequential for "
                                    "anytime-valid ones")));
  }
  if (r.comparisons.empty()) {
    r.warnings.push_back("the report has one arm: there is nothing to compare");
  } else {
    r.too_few_seeds = std::all_of(r.comparisons.begin(), r.comparisons.end(),
                                  [](const Comparison& c) { return c.verdict == "too few seeds"; });
    if (r.too_few_seeds) {
      r.warnings.push_back("too few seeds: no comparison has the " + std::to_string(o.min_seeds) +
                           " runs per arm a test needs, so no p-value is reported; run more "
                           "seeds (the sweep's `seeds:`) and report again");
    }
  }
  for (const auto& leak : r.noncausal) {
    r.warnings.push_back(
        "[" + r.arms[leak.arm].label + "] is not causal: " +
        (leak.jobs == 1 ? std::string("its run") : "its " + std::to_string(leak.jobs) + " runs") +
        " failed the causality check and trained only because attention.allow_noncausal is set (" +
        leak.causality +
        "): the model could read later tokens, so its numbers do not measure "
        "next-token prediction");
  }
  for (const auto& same : r.identical) {
    r.warnings.push_back("[" + r.arms[same.arm].label + "] is identical to [" +
                         r.arms[same.same_as].label + "]" +
                         (same.relative_difference > 0
                              ? " (to within " + format_number(same.relative_difference, 2) +
                                    " relative: floating-point rounding)"
                              : std::string()) +
                         " on " + seeds_words(r, same) + ": " + same.cause);
  }
  if (r.stale > 0) r.warnings.push_back(stale_line(r.stale));
  if (!r.excluded.empty()) {
    const bool one = r.excluded.size() == 1;
    r.warnings.push_back(
        count_of(r.excluded.size(), "job") + (one ? " is not a sample (" : " are not samples (") +
        std::to_string(r.diverged) + " diverged, " + std::to_string(r.failed) +
        " failed or unfinished); " + (one ? "it is" : "they are") + " listed below");
  }
}

}  // namespace

Report build_report(Store& store, const ReportOptions& options) {
  // Below 1e-9 the quantiles and bootstrap tails the report needs are not computable in double
  // precision (and no ablation has the seeds to reach such a level).
  if (!(options.alpha >= kMinAlpha && options.alpha < 1)) {
    throw ReportError("--alpha " + format_number(options.alpha) + ": must be in [1e-9, 1)");
  }
  if (options.min_seeds < 2) throw ReportError("min_seeds must be at least 2");
  if (!(options.equivalence_margin >= 0 && std::isfinite(options.equivalence_margin))) {
    throw ReportError("--equivalence-margin " + format_number(options.equivalence_margin) +
                      ": must be finite and >= 0");
  }
  if (options.bounds &&
      !(std::isfinite(options.bounds->first) && std::isfinite(options.bounds->second) &&
        options.bounds->first < options.bounds->second)) {
    throw ReportError("--bounds " + format_number(options.bounds->first) + "," +
                      format_number(options.bounds->second) +
                      ": expected finite LO < HI (the metric's range)");
  }
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
  const auto values = metric_values(store, sweep_pk, r);
  set_direction(r);
  if (options.sequential) set_sequential_setup(r);
  r.curve_metric = options.curves ? curve_of(store, sweep_pk, options.metric, &r.metric_kind) : "";
  if (r.imported && r.metric_kind.empty()) r.metric_kind = "imported column";

  ArmJobs arm_jobs;
  load_arms(store, r, arm_jobs);
  keep_where(r, arm_jobs.by_arm);
  label_arms(r, arm_jobs.by_arm, arm_jobs.all, key_order(store, options.sweep));
  collect_samples(store, sweep_pk, r, arm_jobs, values);
  if (options.sequential) check_sequential_bounds(r, arm_jobs.by_arm);
  add_families(r, arm_jobs.planned_seeds);
  find_identical_arms(store, sweep_pk, r, arm_jobs.by_arm);
  find_noncausal_arms(r, arm_jobs.by_arm);
  const auto log = sequential_looks(store, options.sweep);
  if (!log.empty()) {
    r.until_decided_looks = log.back().look;
    r.until_decided_max_seeds = log.back().max_seeds;
  }
  write_warnings(r);
  write_method(r);
  write_provenance(r, store, arm_jobs.jobs);
  return r;
}

}  // namespace ablate::results
