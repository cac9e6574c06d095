#include "ablate/results/report.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "ablate/results/import.h"

namespace ablate::results {
namespace {

using stats::kNaN;

// ----- reading the store ---------------------------------------------------------------------

// "4 stale jobs (no longer in the sweep file) left out": what reports say of stale jobs.
std::string stale_line(int64_t n) {
  return std::to_string(n) + (n == 1 ? " stale job" : " stale jobs") +
         " (no longer in the sweep file) left out";
}

// job id -> value of the summary `name` for every job of the sweep that has one.
std::map<std::string, double> summary_values(Store& store, int64_t sweep_pk,
                                             const std::string& name) {
  auto& s = store.statement(
      "SELECT j.id, s.value FROM summaries s JOIN jobs j ON j.pk = s.job "
      "WHERE j.sweep_pk = ? AND s.name = ?");
  s.bind(1, sweep_pk);
  s.bind(2, name);
  std::map<std::string, double> out;
  while (s.executeStep()) out[s.getColumn(0).getString()] = s.getColumn(1).getDouble();
  s.reset();
  return out;
}

std::vector<std::string> summary_names(Store& store, int64_t sweep_pk) {
  auto& s = store.statement(
      "SELECT DISTINCT s.name FROM summaries s JOIN jobs j ON j.pk = s.job WHERE j.sweep_pk = ? "
      "ORDER BY s.name");
  s.bind(1, sweep_pk);
  std::vector<std::string> out;
  while (s.executeStep()) out.push_back(s.getColumn(0).getString());
  s.reset();
  return out;
}

bool has_curve(Store& store, int64_t sweep_pk, const std::string& name) {
  auto& s = store.statement(
      "SELECT 1 FROM jobs j JOIN metrics m ON m.job = j.pk WHERE j.sweep_pk = ? AND m.name = ? "
      "LIMIT 1");
  s.bind(1, sweep_pk);
  s.bind(2, name);
  const bool found = s.executeStep();
  s.reset();
  return found;
}

// job id -> (step -> value) of the logged metric `name`.
std::map<std::string, std::map<int64_t, double>> curve_values(Store& store, int64_t sweep_pk,
                                                              const std::string& name) {
  auto& s = store.statement(
      "SELECT j.id, m.step, m.value FROM jobs j JOIN metrics m ON m.job = j.pk "
      "WHERE j.sweep_pk = ? AND m.name = ?");
  s.bind(1, sweep_pk);
  s.bind(2, name);
  std::map<std::string, std::map<int64_t, double>> out;
  while (s.executeStep()) {
    out[s.getColumn(0).getString()][s.getColumn(1).getInt64()] = s.getColumn(2).getDouble();
  }
  s.reset();
  return out;
}

// The logged curve behind a summary name: final_test_acc -> eval/test_acc (summary.json's final
// and best values are of the eval metrics, or of train metrics for an lm without eval).
std::string curve_of(Store& store, int64_t sweep_pk, const std::string& metric, std::string* kind) {
  for (const std::string prefix : {"final_", "best_"}) {
    if (metric.rfind(prefix, 0) != 0) continue;
    const std::string base = metric.substr(prefix.size());
    for (const std::string source : {"eval/", "train/"}) {
      if (has_curve(store, sweep_pk, source + base)) {
        *kind = (prefix == "final_" ? "final value of " : "best value of ") + source + base;
        return source + base;
      }
    }
  }
  return "";
}

// ----- small helpers -------------------------------------------------------------------------

bool parse_number(const std::string& text, double* out) {
  if (text.empty()) return false;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size()) return false;
  *out = v;
  return true;
}

// Stored values are equal, or both numbers and equal ("2" and "2.0", "1e-3" and "0.001").
bool same_value(const std::string& a, const std::string& b) {
  if (a == b) return true;
  double x = 0, y = 0;
  return parse_number(a, &x) && parse_number(b, &y) && x == y;
}

// "1 seed", "2 seeds": a count and a noun, plural unless the count is 1.
std::string count_of(size_t n, const std::string& noun) {
  return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
}

std::string join(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? sep : "") + items[i];
  return out;
}

std::string format_number(double v, int digits = 4) {
  if (std::isnan(v)) return "";
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*g", digits, v);
  return buf;
}

std::string percent(double confidence) { return format_number(confidence * 100, 3) + "%"; }

std::string get_or(const std::map<std::string, std::string>& m, const std::string& key,
                   const std::string& fallback = "") {
  const auto it = m.find(key);
  return it == m.end() ? fallback : it->second;
}

// Shortest dotted suffix of `key` that no other key in `keys` ends with.
std::string short_key(const std::string& key, const std::vector<std::string>& keys) {
  std::vector<size_t> dots;
  for (size_t i = key.size(); i-- > 0;) {
    if (key[i] == '.') dots.push_back(i);
  }
  for (const size_t dot : dots) {
    const std::string suffix = key.substr(dot + 1);
    bool unique = true;
    for (const auto& other : keys) {
      if (other == key) continue;
      if (other == suffix ||
          (other.size() > suffix.size() &&
           other.compare(other.size() - suffix.size(), suffix.size(), suffix) == 0 &&
           other[other.size() - suffix.size() - 1] == '.')) {
        unique = false;
      }
    }
    if (unique) return suffix;
  }
  return key;
}

std::string view_column(std::string key) {
  std::replace(key.begin(), key.end(), '.', '_');
  return key;
}

bool looks_lower_is_better(const std::string& metric) {
  for (const char* word : {"loss", "bpb", "perplexity", "ppl", "error", "err"}) {
    if (metric.find(word) != std::string::npos) return true;
  }
  return false;
}

bool looks_higher_is_better(const std::string& metric) {
  return metric.find("acc") != std::string::npos;
}

// ----- arms ----------------------------------------------------------------------------------

void describe_curve(ReportArm& arm, const std::vector<const JobRow*>& sample_jobs,
                    const std::map<std::string, std::map<int64_t, double>>& curves,
                    double confidence) {
  std::map<int64_t, std::vector<double>> by_step;
  for (const JobRow* job : sample_jobs) {
    const auto it = curves.find(job->id);
    if (it == curves.end()) continue;
    for (const auto& [step, value] : it->second) {
      if (std::isfinite(value)) by_step[step].push_back(value);
    }
  }
  for (const auto& [step, values] : by_step) {
    CurvePoint p;
    p.step = step;
    p.n = static_cast<int64_t>(values.size());
    p.mean = stats::mean(values);
    const auto ci = stats::t_interval(values, confidence);
    if (ci.available) {
      p.low = ci.low;
      p.high = ci.high;
    }
    arm.curve.push_back(p);
  }
}

// Finds the param key a --baseline KEY names: a config key, its view column, or "stage".
std::string resolve_key(const std::string& key, const std::vector<ReportArm>& arms) {
  if (key == "stage") return key;
  std::set<std::string> all;
  for (const auto& arm : arms) {
    for (const auto& [k, v] : arm.config) all.insert(k);
  }
  if (all.count(key)) return key;
  for (const auto& k : all) {
    if (view_column(k) == key) return k;
  }
  return "";
}

std::string arm_value(const ReportArm& arm, const std::string& key) {
  return key == "stage" ? arm.stage : get_or(arm.config, key);
}

std::vector<std::string> arm_labels(const std::vector<ReportArm>& arms) {
  std::vector<std::string> out;
  for (const auto& arm : arms) out.push_back("[" + arm.label + "]");
  return out;
}

// The baseline: --baseline pairs, or the rules in report.h.
void choose_baseline(Report& report) {
  auto& arms = report.arms;
  const auto& given = report.options.baseline;
  if (!given.empty()) {
    std::vector<std::pair<std::string, std::string>> resolved;
    for (const auto& [key, value] : given) {
      const std::string k = resolve_key(key, arms);
      if (k.empty()) {
        std::vector<std::string> keys;
        for (const auto& [pk, pv] : arms.front().params) keys.push_back(pk);
        throw ReportError(
            "--baseline " + key + "=" + value + ": '" + key + "' is not a param of sweep '" +
            report.sweep.name +
            "'; params that differ between arms: " + (keys.empty() ? "(none)" : join(keys, ", ")));
      }
      resolved.emplace_back(k, value);
    }
    std::vector<size_t> matches;
    for (size_t i = 0; i < arms.size(); ++i) {
      bool all = true;
      for (const auto& [k, v] : resolved) all = all && same_value(arm_value(arms[i], k), v);
      if (all) matches.push_back(i);
    }
    std::vector<std::string> text;
    for (const auto& [k, v] : given) text.push_back(k + "=" + v);
    if (matches.empty()) {
      throw ReportError("--baseline " + join(text, " ") + " matches no arm of sweep '" +
                        report.sweep.name + "'; arms: " + join(arm_labels(arms), ", "));
    }
    if (matches.size() > 1) {
      std::vector<std::string> labels;
      for (size_t i : matches) labels.push_back("[" + arms[i].label + "]");
      throw ReportError("--baseline " + join(text, " ") + " matches " +
                        std::to_string(matches.size()) + " arms (" + join(labels, ", ") +
                        "); add KEY=VALUE pairs until one arm is left");
    }
    report.baseline = matches.front();
    report.baseline_reason = "given on the command line (--baseline " + join(text, " ") + ")";
    return;
  }
  std::vector<size_t> mha, full_gqa;
  for (size_t i = 0; i < arms.size(); ++i) {
    const std::string variant = get_or(arms[i].config, "attention.variant");
    if (variant == "mha") mha.push_back(i);
    double kv = -1, heads = -2;
    if (variant == "gqa" && parse_number(get_or(arms[i].config, "attention.kv_heads"), &kv) &&
        parse_number(get_or(arms[i].config, "model.heads"), &heads) && (kv == heads || kv == 0)) {
      full_gqa.push_back(i);
    }
  }
  if (mha.size() == 1) {
    report.baseline = mha.front();
    report.baseline_reason =
        "chosen: the multi-head attention arm (attention.variant=mha), which the grouped "
        "variants approximate; pass --baseline KEY=VALUE to choose another";
  } else if (mha.empty() && full_gqa.size() == 1) {
    report.baseline = full_gqa.front();
    report.baseline_reason =
        "chosen: the gqa arm with as many key-value heads as query heads (attention.kv_heads = "
        "model.heads), which is multi-head attention; pass --baseline KEY=VALUE to choose "
        "another";
  } else {
    report.baseline = 0;
    report.baseline_reason =
        std::string("chosen: the first arm of the sweep, as no single arm is multi-head ") +
        "attention (attention.variant=mha, or gqa with kv_heads = heads); pass --baseline " +
        "KEY=VALUE to choose another";
  }
}

// ----- comparisons ---------------------------------------------------------------------------

struct Samples {
  std::vector<double> x, y;  // candidate, baseline
  bool paired = false;
  int64_t dropped = 0;  // seeds of one arm without a partner (paired)
};

Samples paired_samples(const ReportArm& arm, const ReportArm& base) {
  Samples s;
  s.paired = true;
  std::map<int64_t, double> base_by_seed;
  for (size_t i = 0; i < base.seeds.size(); ++i) base_by_seed[base.seeds[i]] = base.values[i];
  for (size_t i = 0; i < arm.seeds.size(); ++i) {
    const auto it = base_by_seed.find(arm.seeds[i]);
    if (it == base_by_seed.end()) continue;
    s.x.push_back(arm.values[i]);
    s.y.push_back(it->second);
  }
  s.dropped = static_cast<int64_t>(arm.seeds.size() + base.seeds.size() - 2 * s.x.size());
  return s;
}

std::string test_name(TestChoice test, bool paired) {
  switch (test) {
    case TestChoice::kAuto:
      return paired ? "paired-t" : "welch";
    case TestChoice::kPermutation:
      return "permutation";
    default:
      return to_string(test);
  }
}

Comparison compare(const Report& report, size_t arm_index,
                   const std::map<std::string, std::set<int64_t>>& planned_seeds,
                   int64_t aso_comparisons) {
  const auto& o = report.options;
  const ReportArm& arm = report.arms[arm_index];
  const ReportArm& base = report.baseline_arm();
  Comparison c;
  c.arm = arm_index;
  // Pairing needs the arms to have been run with the same seeds (common random numbers).
  const bool same_seeds = planned_seeds.at(arm.arm_key) == planned_seeds.at(base.arm_key);
  bool paired = false;
  switch (o.test) {
    case TestChoice::kAuto:
    case TestChoice::kPermutation:
      paired = same_seeds;
      break;
    case TestChoice::kPairedT:
    case TestChoice::kWilcoxon:
      paired = true;
      break;
    default:
      paired = false;
  }
  Samples s;
  if (paired) {
    s = paired_samples(arm, base);
  } else {
    s.x = arm.values;
    s.y = base.values;
  }
  c.paired = paired;
  c.n = static_cast<int64_t>(paired ? s.x.size() : s.x.size() + s.y.size());
  std::vector<std::string> notes;
  if (paired && s.dropped > 0) {
    notes.push_back("paired on the " + count_of(s.x.size(), "seed") + " both arms have (" +
                    count_of(static_cast<size_t>(s.dropped), "run") +
                    " without a partner left out)");
  }
  const int64_t smallest = paired ? static_cast<int64_t>(s.x.size())
                                  : static_cast<int64_t>(std::min(s.x.size(), s.y.size()));
  // Effect sizes that need no test are still shown when there are at least two values.
  if (arm.values.size() >= 2 && base.values.size() >= 2) {
    c.cliffs_delta = stats::cliffs_delta(arm.values, base.values);
    c.prob_improvement = stats::prob_improvement(arm.values, base.values, o.lower_is_better);
  }
  if (smallest < o.min_seeds) {
    c.verdict = "too few seeds";
    notes.push_back(std::string(paired ? "pairs" : "samples") +
                    " per arm: " + std::to_string(smallest) + "; a test needs at least " +
                    std::to_string(o.min_seeds));
    c.note = join(notes, "; ");
    if (smallest >= 2) {
      c.difference = stats::mean_difference(s.x, s.y, paired, 1 - o.alpha);
    }
    return c;
  }
  c.test = test_name(o.test, paired);
  switch (o.test) {
    case TestChoice::kAuto:
      c.result = paired ? stats::paired_t_test(s.x, s.y) : stats::welch_t_test(s.x, s.y);
      break;
    case TestChoice::kPairedT:
      c.result = stats::paired_t_test(s.x, s.y);
      break;
    case TestChoice::kWelch:
      c.result = stats::welch_t_test(s.x, s.y);
      break;
    case TestChoice::kWilcoxon:
      c.result = stats::wilcoxon_signed_rank(s.x, s.y);
      break;
    case TestChoice::kMannWhitney:
      c.result = stats::mann_whitney_u(s.x, s.y);
      break;
    case TestChoice::kPermutation: {
      stats::PermutationOptions p;
      p.seed = o.seed;
      c.result = paired ? stats::permutation_test_paired(s.x, s.y, p)
                        : stats::permutation_test_unpaired(s.x, s.y, p);
      break;
    }
    case TestChoice::kAso: {
      stats::AsoOptions a;
      a.confidence = 1 - o.alpha;
      a.lower_is_better = o.lower_is_better;
      a.num_comparisons = aso_comparisons;
      a.seed = o.seed;
      c.aso = stats::almost_stochastic_order(s.x, s.y, a);
      c.aso_reverse = stats::almost_stochastic_order(s.y, s.x, a);
      c.result.test = "aso";
      c.result.statistic = c.aso.eps_min;
      c.result.n = c.n;
      c.result.available = c.aso.available;
      c.result.note = c.aso.note;
      break;
    }
  }
  c.difference = stats::mean_difference(s.x, s.y, paired, 1 - o.alpha);
  c.hedges_g = paired ? stats::hedges_g_paired(s.x, s.y) : stats::hedges_g(s.x, s.y);
  if (c.hedges_g.available) {
    c.seeds_for_power = stats::seeds_for_power(c.hedges_g.value, paired, o.alpha, o.power);
  } else {
    c.seeds_for_power.note = "no effect size: " + c.hedges_g.note;
  }
  // The direction the verdict reads: the one the test itself measures.
  auto sign = [](double v) { return v > 0 ? 1 : v < 0 ? -1 : 0; };
  c.direction = sign(c.difference.diff);
  if (o.test == TestChoice::kMannWhitney) c.direction = sign(c.cliffs_delta.value);
  if (o.test == TestChoice::kWilcoxon) {
    std::vector<double> d;
    for (size_t i = 0; i < s.x.size(); ++i) d.push_back(s.x[i] - s.y[i]);
    if (const int m = sign(stats::median(d)); m != 0) c.direction = m;
  }
  if (!c.result.available && !c.result.note.empty()) notes.push_back(c.result.note);
  c.note = join(notes, "; ");
  return c;
}

// Verdicts once the p-values of the family are adjusted.
void decide(Report& report) {
  const auto& o = report.options;
  std::vector<double> p;
  for (const auto& c : report.comparisons) {
    p.push_back(c.test.empty() || c.test == "aso" ? kNaN : c.result.p_value);
  }
  const auto adjusted = stats::adjust_p_values(p, o.correction);
  for (size_t i = 0; i < report.comparisons.size(); ++i) {
    Comparison& c = report.comparisons[i];
    c.p_adjusted = adjusted[i];
    if (c.test.empty()) continue;  // too few seeds: verdict set
    if (c.test == "aso") {
      c.significant = c.aso.dominant() || c.aso_reverse.dominant();
      if (!c.result.available) {
        c.verdict = "not testable";
      } else if (c.aso.dominant()) {
        c.verdict = "better";
      } else if (c.aso_reverse.dominant()) {
        c.verdict = "worse";
      } else {
        c.verdict = "no detectable difference";
      }
      continue;
    }
    if (!c.result.available) {
      c.verdict = "not testable";
      continue;
    }
    c.significant = stats::is_significant(c.p_adjusted, o.alpha);
    if (!c.significant || c.direction == 0) {
      c.verdict = "no detectable difference";
    } else {
      c.verdict = (c.direction > 0) != o.lower_is_better ? "better" : "worse";
    }
  }
}

std::string test_words(TestChoice test) {
  switch (test) {
    case TestChoice::kAuto:
      return "the paired t-test where an arm was run with the same seeds as the baseline (pairs "
             "matched by seed), Welch's t-test otherwise";
    case TestChoice::kPairedT:
      return "the paired t-test, pairs matched by seed";
    case TestChoice::kWelch:
      return "Welch's t-test (unequal variances)";
    case TestChoice::kWilcoxon:
      return "the Wilcoxon signed-rank test, pairs matched by seed (exact without ties and zero "
             "differences, else the normal approximation with tie correction)";
    case TestChoice::kMannWhitney:
      return "the Mann-Whitney U test (exact for small samples without ties, else the normal "
             "approximation with tie and continuity corrections)";
    case TestChoice::kPermutation:
      return "a permutation test of the difference in means (sign flips within seed pairs when "
             "the seeds are shared, label permutations otherwise; exact when feasible)";
    case TestChoice::kAso:
      return "Almost Stochastic Order (eps_min; an arm almost dominates when eps_min < 0.2), "
             "which has no p-value";
  }
  return "";
}

std::string correction_words(stats::Correction correction) {
  switch (correction) {
    case stats::Correction::kHolm:
      return "Holm's step-down method";
    case stats::Correction::kBenjaminiHochberg:
      return "the Benjamini-Hochberg procedure (false discovery rate)";
    case stats::Correction::kBonferroni:
      return "the Bonferroni correction";
    case stats::Correction::kNone:
      return "no correction";
  }
  return "";
}

void write_method(Report& r) {
  const auto& o = r.options;
  const std::string conf = percent(1 - o.alpha);
  r.method.push_back("Metric: " + o.metric +
                     (r.metric_kind.empty() ? "" : " (" + r.metric_kind + ")") + ", " +
                     (o.lower_is_better ? "lower" : "higher") + " is better.");
  r.method.push_back("Baseline: [" + r.baseline_arm().label + "], " + r.baseline_reason + ".");
  r.method.push_back("Each arm is compared with the baseline by " + test_words(o.test) + ".");
  if (o.test != TestChoice::kAso) {
    r.method.push_back("p-values are adjusted over the family of " +
                       count_of(r.comparisons.size(), "comparison") + " with " +
                       correction_words(o.correction) +
                       "; significant means adjusted p <= " + format_number(o.alpha) + ".");
  }
  r.method.push_back("A test needs at least " + std::to_string(o.min_seeds) +
                     " seeds per arm (pairs when paired); with fewer the report says \"too few "
                     "seeds\" instead of a p-value.");
  r.method.push_back("Intervals are " + conf +
                     ": t-intervals of each arm's mean and of the difference to the baseline "
                     "(paired or Welch, as the test); bootstrap intervals (percentile and BCa, " +
                     std::to_string(o.bootstrap_resamples) + " resamples, seed " +
                     std::to_string(o.seed) + ") are in the JSON.");
  r.method.push_back(
      "Effect sizes are candidate minus baseline: Hedges' g (g_z, standardised by the spread of "
      "the seed-wise differences, when paired), Cliff's delta, and the probability that a run "
      "of the arm beats a run of the baseline.");
  r.method.push_back("Seeds for " + format_number(o.power * 100, 3) +
                     "% power: seeds per arm (pairs when paired) a t-test would need to detect "
                     "the observed effect at alpha " +
                     format_number(o.alpha) +
                     "; observed effects are noisy, so read it as a planning guide.");
  r.method.push_back(
      "Diverged runs and runs without a finite value are excluded and listed below, never "
      "averaged; failed and unfinished jobs likewise.");
}

void write_provenance(Report& r, Store& store, const std::vector<JobRow>& jobs) {
  auto& p = r.provenance;
  p.emplace_back("sweep", r.sweep.name);
  p.emplace_back("code version",
                 r.sweep.code_version + (r.sweep.dirty ? " (uncommitted changes)" : ""));
  p.emplace_back("created", r.sweep.created);
  p.emplace_back("updated", r.sweep.updated);
  p.emplace_back("sweep config hash", r.sweep.config_hash);
  for (const auto& [k, v] : store.environment(r.sweep.name)) p.emplace_back(k, v);
  std::set<std::string> devices, hosts, torch;
  for (const auto& job : jobs) {
    if (!job.device.empty()) devices.insert(job.device);
    if (!job.host.empty()) hosts.insert(job.host);
  }
  // LibTorch versions from the jobs' own environment (summary.json), one query.
  auto& s = store.statement(
      "SELECT DISTINCT e.value FROM environment e JOIN jobs j ON j.pk = e.job "
      "WHERE j.sweep_pk = ? AND e.key = 'torch_version' ORDER BY e.value");
  s.bind(1, store.sweep_pk(r.sweep.name));
  while (s.executeStep()) torch.insert(s.getColumn(0).getString());
  s.reset();
  auto list = [](const std::set<std::string>& items) {
    return join(std::vector<std::string>(items.begin(), items.end()), ", ");
  };
  if (!devices.empty()) p.emplace_back("devices", list(devices));
  if (!hosts.empty()) p.emplace_back("hosts", list(hosts));
  if (!torch.empty()) p.emplace_back("LibTorch", list(torch));
  p.emplace_back("database", store.path());
}

}  // namespace

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

// ----- escaping ------------------------------------------------------------------------------

std::string escape_html(const std::string& s) {
  std::string out;
  for (const char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string escape_latex(const std::string& s) {
  std::string out;
  for (const char c : s) {
    switch (c) {
      case '\\':
        out += "\\textbackslash{}";
        break;
      case '{':
        out += "\\{";
        break;
      case '}':
        out += "\\}";
        break;
      case '$':
        out += "\\$";
        break;
      case '&':
        out += "\\&";
        break;
      case '#':
        out += "\\#";
        break;
      case '%':
        out += "\\%";
        break;
      case '_':
        out += "\\_";
        break;
      case '^':
        out += "\\textasciicircum{}";
        break;
      case '~':
        out += "\\textasciitilde{}";
        break;
      case '<':
        out += "\\textless{}";
        break;
      case '>':
        out += "\\textgreater{}";
        break;
      case '\n':
      case '\r':
        out += ' ';
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string escape_markdown(const std::string& s) {
  std::string out;
  for (const char c : s) {
    switch (c) {
      // HTML-significant characters as entities: code hosts render Markdown to HTML.
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '\n':
      case '\r':
        out += ' ';
        break;
      // Inline Markdown syntax; '-', '+' and '(' only matter where a table cell cannot start.
      case '\\':
      case '`':
      case '*':
      case '_':
      case '[':
      case ']':
      case '|':
      case '#':
      case '~':
        out += '\\';
        out += c;
        break;
      default:
        out += c;
    }
  }
  return out;
}

// ----- rendering -----------------------------------------------------------------------------

namespace {

nlohmann::json number_or_null(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

nlohmann::json param_object(const ReportArm& arm) {
  nlohmann::json o = nlohmann::json::object();
  for (const auto& [k, v] : arm.params) {
    double x = 0;
    if (k != "stage" && parse_number(v, &x) && std::isfinite(x)) {
      o[k] = x;
    } else {
      o[k] = v;
    }
  }
  return o;
}

nlohmann::json interval_json(const stats::Interval& i) {
  return {{"low", number_or_null(i.low)}, {"high", number_or_null(i.high)}};
}

// Cells of one arm's row shared by the text formats: formatting lives here once.
struct RowText {
  std::string n, mean_std, ci, iqm, diff, diff_ci, p, p_adj, g, delta, prob, power, verdict, test;
};

std::string p_text(double p) {
  if (std::isnan(p)) return "";
  if (p < 0.001) return "<0.001";
  return format_number(p, 2);
}

RowText row_text(const Report& r, size_t a) {
  const ReportArm& arm = r.arms[a];
  RowText t;
  t.n = std::to_string(arm.stats.n);
  t.mean_std = format_number(arm.stats.mean) +
               (std::isnan(arm.stats.std_dev) ? "" : " ± " + format_number(arm.stats.std_dev, 2));
  if (arm.stats.t_ci.available) {
    t.ci =
        "[" + format_number(arm.stats.t_ci.low) + ", " + format_number(arm.stats.t_ci.high) + "]";
  }
  t.iqm = format_number(arm.stats.iqm);
  if (a == r.baseline) {
    t.verdict = "baseline";
    return t;
  }
  for (const auto& c : r.comparisons) {
    if (c.arm != a) continue;
    if (c.difference.available) {
      t.diff = (c.difference.diff > 0 ? "+" : "") + format_number(c.difference.diff, 3);
      if (c.difference.ci.available) {
        t.diff_ci = "[" + format_number(c.difference.ci.low, 3) + ", " +
                    format_number(c.difference.ci.high, 3) + "]";
      }
    }
    if (c.test == "aso") {
      t.p = "eps " + format_number(c.aso.eps_min, 2) + " / " +
            format_number(c.aso_reverse.eps_min, 2);
    } else {
      t.p = p_text(c.result.p_value);
      t.p_adj = p_text(c.p_adjusted);
    }
    t.g = c.hedges_g.available ? format_number(c.hedges_g.value, 2) : "";
    t.delta = c.cliffs_delta.available ? format_number(c.cliffs_delta.value, 2) : "";
    t.prob = c.prob_improvement.available ? format_number(c.prob_improvement.value, 2) : "";
    t.power = c.seeds_for_power.available ? std::to_string(c.seeds_for_power.n) : "";
    t.verdict = c.verdict;
    t.test = c.test;
  }
  return t;
}

// The verdict comes right after the arm: it is what a reader looks for first.
constexpr size_t kVerdictColumn = 1;
const char* kColumns[] = {
    "Arm",  "verdict", "n",      "mean ± std", "CI",        "IQM",       "Δ vs baseline",
    "Δ CI", "p",       "p adj.", "g",          "Cliff's δ", "P(better)", "seeds for 80% power"};

std::vector<std::string> row_cells(const Report& r, size_t a) {
  const RowText t = row_text(r, a);
  return {r.arms[a].label, t.verdict, t.n,     t.mean_std, t.ci,    t.iqm,  t.diff,
          t.diff_ci,       t.p,       t.p_adj, t.g,        t.delta, t.prob, t.power};
}

std::string title_of(const Report& r) {
  return "Ablation report: " + r.sweep.name + ", " + r.options.metric;
}

std::string summary_sentence(const Report& r) {
  int better = 0, worse = 0, none = 0, untested = 0;
  for (const auto& c : r.comparisons) {
    if (c.verdict == "better")
      ++better;
    else if (c.verdict == "worse")
      ++worse;
    else if (c.verdict == "no detectable difference")
      ++none;
    else
      ++untested;
  }
  std::string s = count_of(r.arms.size(), "arm") + ", " + std::to_string(r.comparisons.size()) +
                  " compared with the baseline: " + std::to_string(better) + " better, " +
                  std::to_string(worse) + " worse, " + std::to_string(none) +
                  " with no detectable difference";
  if (untested > 0) s += ", " + std::to_string(untested) + " not tested";
  return s + ".";
}

std::string relative_to(const std::string& path, const std::string& base) {
  if (base.empty()) return path;
  const std::string prefix = base.back() == '/' ? base : base + "/";
  return path.rfind(prefix, 0) == 0 ? path.substr(prefix.size()) : path;
}

std::string base64(const std::string& bytes) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t v = static_cast<uint8_t>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) v |= static_cast<uint8_t>(bytes[i + 1]) << 8;
    if (i + 2 < bytes.size()) v |= static_cast<uint8_t>(bytes[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? kAlphabet[v & 63] : '=';
  }
  return out;
}

std::string read_binary(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read figure " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

std::string render_json(const Report& r) {
  nlohmann::json j;
  j["sweep"] = r.sweep.name;
  j["metric"] = r.options.metric;
  j["lower_is_better"] = r.options.lower_is_better;
  j["alpha"] = r.options.alpha;
  j["correction"] = stats::to_string(r.options.correction);
  j["test"] = to_string(r.options.test);
  j["min_seeds"] = r.options.min_seeds;
  j["baseline"] = param_object(r.baseline_arm());
  j["baseline_reason"] = r.baseline_reason;
  j["arms"] = nlohmann::json::array();
  for (const auto& arm : r.arms) {
    const auto& s = arm.stats;
    j["arms"].push_back({{"arm", param_object(arm)},
                         {"label", arm.label},
                         {"n", s.n},
                         {"mean", number_or_null(s.mean)},
                         {"std", number_or_null(s.std_dev)},
                         {"ci_low", number_or_null(s.t_ci.low)},
                         {"ci_high", number_or_null(s.t_ci.high)},
                         {"iqm", number_or_null(s.iqm)},
                         {"median", number_or_null(s.median)},
                         {"bootstrap_percentile", interval_json(s.bootstrap_percentile)},
                         {"bootstrap_bca", interval_json(s.bootstrap_bca)},
                         {"seeds", arm.seeds},
                         {"values", arm.values},
                         {"parameters", number_or_null(arm.parameters)},
                         {"throughput", number_or_null(arm.throughput)}});
  }
  j["comparisons"] = nlohmann::json::array();
  for (const auto& c : r.comparisons) {
    const ReportArm& arm = r.arms[c.arm];
    nlohmann::json o{
        {"baseline", param_object(r.baseline_arm())},
        {"arm", param_object(arm)},
        {"label", arm.label},
        {"test", c.test.empty() ? nlohmann::json(nullptr) : nlohmann::json(c.test)},
        {"paired", c.paired},
        {"n", c.n},
        {"statistic", number_or_null(c.result.statistic)},
        {"df", number_or_null(c.result.df)},
        {"exact", c.result.exact},
        {"p_value", number_or_null(c.result.p_value)},
        {"p_adjusted", number_or_null(c.p_adjusted)},
        {"diff_mean", number_or_null(c.difference.diff)},
        {"diff_ci_low", number_or_null(c.difference.ci.low)},
        {"diff_ci_high", number_or_null(c.difference.ci.high)},
        {"hedges_g", number_or_null(c.hedges_g.value)},
        {"cliffs_delta", number_or_null(c.cliffs_delta.value)},
        {"prob_improvement", number_or_null(c.prob_improvement.value)},
        {"significant", c.significant},
        {"seeds_for_80_power", c.seeds_for_power.available ? nlohmann::json(c.seeds_for_power.n)
                                                           : nlohmann::json(nullptr)},
        {"verdict", c.verdict},
        {"note", c.note}};
    if (c.test == "aso") {
      o["eps_min"] = number_or_null(c.aso.eps_min);
      o["eps_min_reverse"] = number_or_null(c.aso_reverse.eps_min);
    }
    j["comparisons"].push_back(o);
  }
  j["method"] = r.method;
  j["warnings"] = r.warnings;
  j["excluded"] = nlohmann::json::array();
  for (const auto& e : r.excluded) {
    j["excluded"].push_back({{"job", e.id},
                             {"seed", e.seed},
                             {"arm", e.arm_label},
                             {"status", e.status},
                             {"reason", e.reason}});
  }
  j["diverged"] = r.diverged;
  j["failed"] = r.failed;
  j["stale"] = r.stale;
  j["too_few_seeds"] = r.too_few_seeds;
  nlohmann::json provenance = nlohmann::json::object();
  for (const auto& [k, v] : r.provenance) provenance[k] = v;
  j["provenance"] = provenance;
  return j.dump(2) + "\n";
}

std::string render_markdown(const Report& r, const std::vector<Figure>& figures,
                            const std::string& base_dir,
                            const std::vector<std::string>& figure_notes) {
  std::ostringstream out;
  const std::string conf = percent(1 - r.options.alpha);
  out << "# " << escape_markdown(title_of(r)) << "\n\n";
  out << escape_markdown(summary_sentence(r)) << " Baseline: **"
      << escape_markdown(r.baseline_arm().label) << "** (" << escape_markdown(r.baseline_reason)
      << ").\n\n";
  for (const auto& w : r.warnings) out << "> **Warning:** " << escape_markdown(w) << "\n>\n";
  if (!r.warnings.empty()) out << "\n";
  out << "| ";
  for (const char* c : kColumns) {
    std::string name = c;
    if (name == "CI" || name == "Δ CI") name = conf + " " + name;
    out << escape_markdown(name) << " | ";
  }
  out << "\n|";
  for (size_t i = 0; i < std::size(kColumns); ++i) {
    out << (i == 0 || i == kVerdictColumn ? " --- |" : " ---: |");
  }
  out << "\n";
  for (size_t a = 0; a < r.arms.size(); ++a) {
    const auto cells = row_cells(r, a);
    out << "|";
    for (size_t i = 0; i < cells.size(); ++i) {
      const bool bold = i == kVerdictColumn && (cells[i] == "better" || cells[i] == "worse");
      // Only the label comes from the sweep; the other cells are numbers and words we wrote.
      const std::string text = i == 0 ? escape_markdown(cells[i]) : cells[i];
      out << " " << (bold ? "**" : "") << text << (bold ? "**" : "") << " |";
    }
    out << "\n";
  }
  out << "\nΔ, g and Cliff's δ are arm minus baseline; P(better) is the probability that a run of "
         "the arm beats a run of the baseline.\n";
  for (const auto& c : r.comparisons) {
    if (!c.note.empty()) {
      out << "\n- " << escape_markdown(r.arms[c.arm].label) << ": " << escape_markdown(c.note);
    }
  }
  out << "\n\n## Figures\n\n";
  if (figures.empty() && figure_notes.empty()) {
    out << "No figures (run with --out DIR to draw them).\n\n";
  }
  for (const auto& note : figure_notes) out << "- " << escape_markdown(note) << "\n";
  if (!figure_notes.empty()) out << "\n";
  for (const auto& f : figures) {
    out << "### " << escape_markdown(f.title) << "\n\n";
    if (!f.png_path.empty()) {
      out << "![" << escape_markdown(f.title) << "](" << relative_to(f.png_path, base_dir)
          << ")\n\n";
    }
    out << escape_markdown(f.caption);
    if (!f.svg_path.empty()) out << " [SVG](" << relative_to(f.svg_path, base_dir) << ")";
    out << "\n\n";
  }
  out << "## Method\n\n";
  for (const auto& m : r.method) out << "- " << escape_markdown(m) << "\n";
  out << "\n## Excluded jobs\n\n";
  if (r.excluded.empty()) {
    out << "None: every job of the sweep is a sample.\n";
  } else {
    out << "| job | seed | arm | status | reason |\n| --- | ---: | --- | --- | --- |\n";
    for (const auto& e : r.excluded) {
      std::string reason = e.reason.size() > 300 ? e.reason.substr(0, 300) + "..." : e.reason;
      out << "| " << escape_markdown(e.id) << " | " << e.seed << " | "
          << escape_markdown(e.arm_label) << " | " << escape_markdown(e.status) << " | "
          << escape_markdown(reason) << " |\n";
    }
  }
  out << "\n## Provenance\n\n";
  for (const auto& [k, v] : r.provenance) {
    out << "- " << escape_markdown(k) << ": " << escape_markdown(v) << "\n";
  }
  return out.str();
}

std::string render_html(const Report& r, const std::vector<Figure>& figures,
                        const std::vector<std::string>& figure_notes) {
  std::ostringstream out;
  const std::string conf = percent(1 - r.options.alpha);
  out << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>"
      << escape_html(title_of(r)) << "</title>\n<style>\n"
      << "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;"
         "max-width:1400px;padding:0 1em;color:#1a1a1a;background:#fff}\n"
         "table{border-collapse:collapse;margin:1em 0;font-size:0.9em}\n"
         "th,td{padding:4px 8px;border-bottom:1px solid #ddd;text-align:right;white-space:nowrap}\n"
         "th{border-bottom:2px solid #333;background:#f4f4f4;white-space:normal}\n"
         "td:first-child,th:first-child,td:nth-child(2),th:nth-child(2){text-align:left}\n"
         "tr.baseline td{background:#f0f4ff}\n"
         ".better{color:#0a7a2f;font-weight:bold}.worse{color:#b00020;font-weight:bold}\n"
         ".warning{background:#fff4d6;border-left:4px solid #e0a000;padding:6px 10px;margin:6px "
         "0}\n"
         "figure{margin:1.5em 0}figure img{max-width:100%;border:1px solid #eee}\n"
         "figcaption{color:#555;font-size:0.9em}\n"
         "</style>\n</head>\n<body>\n";
  out << "<h1>" << escape_html(title_of(r)) << "</h1>\n";
  out << "<p>" << escape_html(summary_sentence(r)) << " Baseline: <strong>"
      << escape_html(r.baseline_arm().label) << "</strong> (" << escape_html(r.baseline_reason)
      << ").</p>\n";
  for (const auto& w : r.warnings) out << "<div class=\"warning\">" << escape_html(w) << "</div>\n";
  // Wide tables scroll inside their box instead of being cut off by the page.
  out << "<div style=\"overflow-x:auto\">\n<table>\n<thead><tr>";
  for (const char* c : kColumns) {
    std::string name = c;
    if (name == "CI" || name == "Δ CI") name = conf + " " + name;
    out << "<th>" << escape_html(name) << "</th>";
  }
  out << "</tr></thead>\n<tbody>\n";
  for (size_t a = 0; a < r.arms.size(); ++a) {
    const auto cells = row_cells(r, a);
    out << (a == r.baseline ? "<tr class=\"baseline\">" : "<tr>");
    for (size_t i = 0; i < cells.size(); ++i) {
      const bool verdict = i == kVerdictColumn;
      std::string cls;
      if (verdict && (cells[i] == "better" || cells[i] == "worse"))
        cls = " class=\"" + cells[i] + "\"";
      out << "<td" << cls << ">" << escape_html(cells[i]) << "</td>";
    }
    out << "</tr>\n";
  }
  out << "</tbody>\n</table>\n</div>\n<p>Δ, g and Cliff's δ are arm minus baseline; P(better) is "
         "the "
         "probability that a run of the arm beats a run of the baseline.</p>\n";
  bool notes = false;
  for (const auto& c : r.comparisons) {
    if (c.note.empty()) continue;
    if (!notes) out << "<ul>\n";
    notes = true;
    out << "<li>" << escape_html(r.arms[c.arm].label) << ": " << escape_html(c.note) << "</li>\n";
  }
  if (notes) out << "</ul>\n";
  out << "<h2>Figures</h2>\n";
  if (figures.empty() && figure_notes.empty()) out << "<p>No figures.</p>\n";
  for (const auto& note : figure_notes) out << "<p>" << escape_html(note) << "</p>\n";
  for (const auto& f : figures) {
    out << "<figure>\n";
    if (!f.png_path.empty()) {
      out << "<img alt=\"" << escape_html(f.title) << "\" src=\"data:image/png;base64,"
          << base64(read_binary(f.png_path)) << "\">\n";
    }
    out << "<figcaption><strong>" << escape_html(f.title) << ".</strong> " << escape_html(f.caption)
        << "</figcaption>\n</figure>\n";
  }
  out << "<h2>Method</h2>\n<ul>\n";
  for (const auto& m : r.method) out << "<li>" << escape_html(m) << "</li>\n";
  out << "</ul>\n<h2>Excluded jobs</h2>\n";
  if (r.excluded.empty()) {
    out << "<p>None: every job of the sweep is a sample.</p>\n";
  } else {
    out << "<table>\n<thead><tr><th>job</th><th>seed</th><th>arm</th><th>status</th>"
           "<th>reason</th></tr></thead>\n<tbody>\n";
    for (const auto& e : r.excluded) {
      std::string reason = e.reason.size() > 300 ? e.reason.substr(0, 300) + "..." : e.reason;
      out << "<tr><td>" << escape_html(e.id) << "</td><td>" << e.seed << "</td><td>"
          << escape_html(e.arm_label) << "</td><td>" << escape_html(e.status)
          << "</td><td style=\"text-align:left;white-space:normal\">" << escape_html(reason)
          << "</td></tr>\n";
    }
    out << "</tbody>\n</table>\n";
  }
  out << "<h2>Provenance</h2>\n<ul>\n";
  for (const auto& [k, v] : r.provenance) {
    out << "<li>" << escape_html(k) << ": " << escape_html(v) << "</li>\n";
  }
  out << "</ul>\n</body>\n</html>\n";
  return out.str();
}

std::string render_latex(const Report& r) {
  std::ostringstream out;
  const std::string conf = escape_latex(percent(1 - r.options.alpha));
  out << "% " << escape_latex(title_of(r)) << ". Generated by ablate report; \\input this file\n"
      << "% (needs \\usepackage{booktabs}). Baseline: " << escape_latex(r.baseline_arm().label)
      << ".\n";
  if (r.stale > 0) out << "% " << escape_latex(stale_line(r.stale)) << ".\n";
  std::string label = "tab:ablate-";
  for (const char c : r.sweep.name + "-" + r.options.metric) {
    label += std::isalnum(static_cast<unsigned char>(c)) ? c : '-';
  }
  out << "\\begin{table}[t]\n\\centering\n\\begin{tabular}{lrrrrrrl}\n\\toprule\n"
      << "Arm & $n$ & Mean $\\pm$ std & " << conf << " CI & $\\Delta$ [" << conf
      << " CI] & $p_{\\mathrm{adj}}$ & $g$ & Verdict \\\\\n\\midrule\n";
  // Our numbers in text mode: a real minus sign, and the plus-minus and less-than as math.
  auto math = [](const std::string& s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '-' && (i == 0 || s[i - 1] == ' ' || s[i - 1] == '[')) {
        out += "$-$";
      } else if (s[i] == '<') {
        out += "$<$";
      } else if (s.compare(i, 2, "±") == 0) {
        out += "$\\pm$";
        ++i;
      } else {
        out += s[i];
      }
    }
    return out;
  };
  std::set<std::string> tests;
  for (size_t a = 0; a < r.arms.size(); ++a) {
    const RowText t = row_text(r, a);
    if (!t.test.empty()) tests.insert(t.test);
    out << escape_latex(r.arms[a].label) << " & " << t.n << " & " << math(t.mean_std) << " & "
        << math(t.ci) << " & " << math(t.diff.empty() ? "" : t.diff + " " + t.diff_ci) << " & "
        << math(t.p_adj) << " & " << math(t.g) << " & " << escape_latex(t.verdict) << " \\\\\n";
  }
  const std::string tests_run =
      tests.empty() ? "no test (too few seeds)"
                    : join(std::vector<std::string>(tests.begin(), tests.end()), " / ") + " test";
  out << "\\bottomrule\n\\end{tabular}\n\\caption{" << escape_latex(r.options.metric) << " ("
      << (r.options.lower_is_better ? "lower" : "higher") << " is better) on sweep "
      << escape_latex(r.sweep.name) << ": mean $\\pm$ std over seeds, " << conf
      << " t-intervals, difference to the baseline (" << escape_latex(r.baseline_arm().label)
      << ") with its interval, "
      << escape_latex(r.options.test == TestChoice::kAso
                          ? std::string("Almost Stochastic Order (no p-value)")
                          : tests_run + ", p adjusted with " +
                                stats::to_string(r.options.correction))
      << ", Hedges' $g$.}\n\\label{" << label << "}\n\\end{table}\n";
  return out.str();
}

}  // namespace ablate::results
