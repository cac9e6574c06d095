// The report's statement of method and its provenance, in words.
#include <set>

#include "report_parts.h"

namespace ablate::results::detail {

std::string test_words(TestChoice test) {
  switch (test) {
    case TestChoice::kAuto:
      return "the paired t-test where an arm and its reference were run with nested seeds (one "
             "arm's planned seeds all among the other's: pairs matched by seed, over the seeds "
             "both have), Welch's t-test otherwise";
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
             "the seeds are nested, label permutations otherwise; exact when feasible)";
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

// The anytime-valid comparisons (--sequential) in words: method, looks, pairing, correction.
void write_sequential_method(Report& r) {
  const auto& o = r.options;
  const auto& s = r.sequential;
  const std::string a = format_number(o.alpha);
  if (r.until_decided_looks > 0) {
    r.method.push_back(
        "Seeds were added until each comparison was decided, with an anytime-valid test: every "
        "arm ran its first seeds, then ablate run looked after each round (" +
        std::to_string(r.until_decided_looks) +
        " looks, in the decision log) and gave more seeds only to the arms whose comparison of "
        "the sweep's report: question was still undecided, at most " +
        std::to_string(r.until_decided_max_seeds) +
        " per arm; the error guarantee of the anytime-valid comparisons holds whatever the "
        "stopping time, so it holds for the seeds this rule chose.");
  }
  r.method.push_back(
      "Anytime-valid comparisons (--sequential): each comparison also has an e-value for no "
      "difference and a confidence sequence (CS) for the mean difference, arm minus reference, "
      "with one look per seed in ascending seed order; their guarantee holds at every look, "
      "whatever rule decided when to stop the sweep.");
  if (s.method == stats::SequentialMethod::kGaussianMixture) {
    r.method.push_back(
        "Sequential method: the Gaussian mixture t (Lai 1976; Wang & Ramdas 2023; mixture sd 1 "
        "over the standardised effect), for an unbounded metric (" +
        s.method_reason + "); it assumes normal seed-wise differences.");
  } else {
    r.method.push_back(
        "Sequential method: hedged capital betting (Waudby-Smith & Ramdas 2023) "
        "on the metric's range " +
        (s.bounds
             ? "[" + format_number(s.bounds->first) + ", " + format_number(s.bounds->second) + "]"
             : std::string("(none)")) +
        " (" + s.bounds_reason + "; " + s.method_reason +
        "), distribution-free for values in that range; it needs large effects "
        "relative to the range to decide within tens of seeds.");
  }
  r.method.push_back(
      "Sequential pairing: by seed when one arm's planned seeds are a subset of the other's (a "
      "candidate stopped early while its reference went on), over the seeds both arms have a "
      "value for; otherwise unpaired, the i-th seed of each arm in ascending order.");
  switch (o.correction) {
    case stats::Correction::kHolm:
    case stats::Correction::kBonferroni:
      r.method.push_back(
          std::string(o.correction == stats::Correction::kHolm
                          ? "Sequential correction: Holm has no e-value version here, so it maps "
                            "to e-Bonferroni: "
                          : "Sequential correction: e-Bonferroni: ") +
          "in a family of K comparisons with a sequential result, each CS is at level alpha / K "
          "(alpha " +
          a +
          ") and a comparison is decided when its CS excluded 0 at some look (its largest "
          "e-value reached K / alpha); the family-wise error is at most alpha at every look.");
      break;
    case stats::Correction::kBenjaminiHochberg:
      r.method.push_back(
          "Sequential correction: e-BH (Wang & Ramdas 2022) at " + a +
          " on each comparison's e-value at its last look decides (false discovery rate at most "
          "alpha); the CS shown is each comparison's own at level alpha (marginal, not "
          "corrected), and \"decided at\" is the first look at which the CS at alpha / K "
          "excluded 0 (the e-Bonferroni look a sweep's stopping rule uses), so it may be empty for "
          "a "
          "comparison e-BH decides, or set for one it does not.");
      break;
    case stats::Correction::kNone:
      r.method.push_back("Sequential correction: none; each CS is at level alpha (" + a +
                         ") and a comparison is decided when it excluded 0 at some look.");
      break;
  }
  if (o.equivalence_margin > 0) {
    r.method.push_back("Equivalent: the CS (at the level shown) lay inside (-" +
                       format_number(o.equivalence_margin) + ", " +
                       format_number(o.equivalence_margin) + ") at some look, so |difference| < " +
                       format_number(o.equivalence_margin) + " at that level.");
  }
}

void write_method(Report& r) {
  const auto& o = r.options;
  const std::string conf = percent(1 - o.alpha);
  r.method.push_back(
      "Metric: " + o.metric + (r.metric_kind.empty() ? "" : " (" + r.metric_kind + ")") + ", " +
      (r.lower_is_better ? "lower" : "higher") + " is better, " + r.direction_reason + ".");
  if (!r.where.empty()) {
    r.method.push_back("Arms: only those with " + join(r.where, " and ") + " (--where).");
  }
  for (const auto& f : r.families) {
    if (f.key.empty()) {
      r.method.push_back("Family \"baseline\": each arm is compared with the baseline [" +
                         r.baseline_arm().label + "], " + r.baseline_reason + ".");
    } else {
      r.method.push_back("Family \"" + f.name +
                         "\": inside each cell of arms that differ only in " + f.key +
                         ", each level is compared with " + f.key + "=" + f.reference_value + " (" +
                         f.reference_reason + ").");
    }
  }
  r.method.push_back("Tests: " + test_words(o.test) + ".");
  if (o.test != TestChoice::kAso) {
    r.method.push_back("p-values are adjusted within each family with " +
                       correction_words(o.correction) +
                       "; significant means adjusted p <= " + format_number(o.alpha) +
                       ". Where the correction turns a raw p <= " + format_number(o.alpha) +
                       " into no detectable difference, the comparison's note gives both numbers.");
  }
  r.method.push_back("A test needs at least " + std::to_string(o.min_seeds) +
                     " seeds per arm (pairs when paired); with fewer the report says \"too few "
                     "seeds\" instead of a p-value.");
  r.method.push_back("Intervals are " + conf +
                     ": t-intervals of each arm's mean and of the difference to the reference "
                     "(paired or Welch, as the test); bootstrap intervals (percentile and BCa, " +
                     std::to_string(o.bootstrap_resamples) + " resamples, seed " +
                     std::to_string(o.seed) + ") are in the JSON.");
  r.method.push_back(
      "Effect sizes are arm minus reference: Hedges' g (g_z, standardised by the spread of "
      "the seed-wise differences, when paired), Cliff's delta, and the probability that a run "
      "of the arm beats a run of the reference.");
  r.method.push_back(
      "Seeds for " + format_number(o.power * 100, 3) +
      "% power: seeds per arm (pairs when paired) a t-test would need to detect the observed "
      "effect at the level the correction applies to a family of m tests, alpha / m (alpha " +
      format_number(o.alpha) + (o.correction == stats::Correction::kNone ? ", no correction" : "") +
      "); observed effects are noisy, so read it as a planning guide.");
  r.method.push_back(
      "Diverged runs and runs without a finite value are excluded and listed below, never "
      "averaged; failed and unfinished jobs likewise.");
  if (const std::string subset = subset_phrase(r); !subset.empty()) {
    r.method.push_back(
        "Learning curves: the points marked as subsets are intermediate "
        "evaluations of only " +
        subset +
        " (train.eval_subset), the same examples at every step; each run's last "
        "evaluation, and every final_ and best_ value, is of the whole held-out "
        "set.");
  }
  if (o.sequential) write_sequential_method(r);
}

void write_provenance(Report& r, Store& store, const std::vector<JobRow>& jobs) {
  auto& p = r.provenance;
  p.emplace_back("sweep", r.sweep.name);
  p.emplace_back("code version",
                 r.sweep.code_version + (r.sweep.dirty ? " (uncommitted changes)" : ""));
  p.emplace_back("created", r.sweep.created);
  p.emplace_back("updated", r.sweep.updated);
  p.emplace_back("sweep config hash", r.sweep.config_hash);
  for (const auto& [k, v] : store.environment(r.sweep.name)) {
    if (k != kParamOrder) p.emplace_back(k, v);  // bookkeeping for labels, not provenance
  }
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

}  // namespace ablate::results::detail
