// Comparisons of arms with their reference: samples, tests, effect sizes, verdicts.
#include <algorithm>
#include <map>

#include "report_parts.h"

namespace ablate::results::detail {

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
    p.push_back(c.test.empty() || c.test == "aso" ? stats::kNaN : c.result.p_value);
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

}  // namespace ablate::results::detail
