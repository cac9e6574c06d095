// The anytime-valid comparisons of `ablate report --sequential` (report.h, "Sequential"): the
// method and bounds, the samples in seed order, the family's e-value correction and verdicts,
// and the cells and sentences the renderers share.
#include <algorithm>
#include <cmath>
#include <map>
#include <stdexcept>

#include "report_parts.h"

namespace ablate::results::detail {

namespace {

using stats::SequentialMethod;

std::string range_text(const std::pair<double, double>& b) {
  return "[" + format_number(b.first) + ", " + format_number(b.second) + "]";
}

// The looks of one comparison: candidate x and reference y in ascending seed order.
struct SequentialSamples : SeedPairs {  // x, y; paired: dropped runs without a partner
  bool paired = false;
  int64_t unmatched = 0;   // unpaired: runs of the larger arm that wait for a partner
  bool arm_waits = false;  // unpaired: the unmatched runs are the candidate's
};

// Paired when one arm's planned seeds are a subset of the other's: a sequential sweep stops a
// candidate early while its reference goes on, and the seeds both ran are still common random
// numbers. Unpaired arms are truncated to their common length here, so the note can name the
// arm whose runs wait (sequential_unpaired would say "x" or "y").
SequentialSamples sequential_samples(const ReportArm& arm, const ReportArm& ref,
                                     const PlannedSeeds& planned) {
  SequentialSamples s;
  s.paired = seeds_nested(planned, arm, ref);
  if (s.paired) {
    static_cast<SeedPairs&>(s) = pair_by_seed(arm, ref);
    return s;
  }
  const size_t n = std::min(arm.values.size(), ref.values.size());
  s.x.assign(arm.values.begin(), arm.values.begin() + static_cast<std::ptrdiff_t>(n));
  s.y.assign(ref.values.begin(), ref.values.begin() + static_cast<std::ptrdiff_t>(n));
  s.unmatched = static_cast<int64_t>(std::max(arm.values.size(), ref.values.size()) - n);
  s.arm_waits = arm.values.size() > ref.values.size();
  return s;
}

stats::SequentialResult run(const Report& r, const SequentialSamples& s, double level) {
  stats::SequentialOptions o;
  o.method = r.sequential.method;
  o.alpha = level;
  if (r.sequential.bounds) {
    o.lower = r.sequential.bounds->first;
    o.upper = r.sequential.bounds->second;
  }
  o.equivalence_margin = r.options.equivalence_margin;
  try {
    return s.paired ? stats::sequential_paired(s.x, s.y, o)
                    : stats::sequential_unpaired(s.x, s.y, o);
  } catch (const std::invalid_argument& e) {
    // check_sequential_bounds refuses out-of-range samples first; anything else is a bad option.
    throw ReportError(std::string("--sequential: ") + e.what());
  }
}

// +1 when the CS lay above 0, -1 below, 0 when no look's CS excluded 0 on one side (only an
// empty intersection, whose sign the mean difference then gives).
int cs_sign(const stats::SequentialResult& res, const SequentialSamples& s) {
  for (auto it = res.looks.rbegin(); it != res.looks.rend(); ++it) {
    if (it->cs_low > 0) return 1;
    if (it->cs_high < 0) return -1;
  }
  double d = 0;
  for (size_t i = 0; i < s.x.size(); ++i) d += s.x[i] - s.y[i];
  return d > 0 ? 1 : d < 0 ? -1 : 0;
}

std::string join_notes(const std::vector<std::string>& notes) {
  std::vector<std::string> kept;
  for (const auto& n : notes) {
    if (!n.empty()) kept.push_back(n);
  }
  return join(kept, "; ");
}

// "−∞", "∞", or the number (our own text: the renderers escape it).
std::string end_text(double v) {
  if (std::isinf(v)) return v < 0 ? "−∞" : "∞";
  return format_number(v, 3);
}

std::string end_latex(double v) {
  if (std::isinf(v)) return v < 0 ? "$-\\infty$" : "$\\infty$";
  return latex_numbers(format_number(v, 3));
}

TableColumn column(const std::string& name, bool numeric, bool label = false) {
  TableColumn c;
  c.name = name;
  c.numeric = numeric;
  c.label = label;
  return c;
}

}  // namespace

void set_sequential_setup(Report& r) {
  const auto& o = r.options;
  SequentialSetup& s = r.sequential;
  std::optional<std::pair<double, double>> known = o.bounds;
  std::string known_reason = "given (--bounds)";
  if (!known) {
    const std::string word = unit_range_word(o.metric);
    if (!word.empty()) {
      known = std::make_pair(0.0, 1.0);
      known_reason = "inferred from the name (" + word + "); --bounds LO,HI sets another";
    }
  }
  if (o.sequential_method) {
    s.method = *o.sequential_method;
    s.method_reason = "given (--sequential-method)";
  } else if (known) {
    s.method = SequentialMethod::kBoundedBetting;
    s.method_reason = "the metric's range is known";
  } else {
    s.method = SequentialMethod::kGaussianMixture;
    s.method_reason = "the metric has no known range";
  }
  // Given bounds are always checked; inferred ones only where the betting method relies on them
  // (a name can mislead: accuracy in percent).
  if (o.bounds || s.method == SequentialMethod::kBoundedBetting) {
    s.bounds = known;
    s.bounds_reason = known_reason;
  } else {
    s.bounds_reason = known ? "not used by the Gaussian mixture" : "none: the metric is unbounded";
  }
  if (s.method == SequentialMethod::kBoundedBetting && !s.bounds) {
    throw ReportError("--sequential-method bounded-betting needs the metric's range: " + o.metric +
                      " has no known range; pass --bounds LO,HI");
  }
}

void check_sequential_bounds(const Report& r,
                             const std::vector<std::vector<const JobRow*>>& arm_jobs) {
  if (!r.sequential.bounds) return;
  const auto [lo, hi] = *r.sequential.bounds;
  for (size_t a = 0; a < r.arms.size(); ++a) {
    const ReportArm& arm = r.arms[a];
    for (size_t i = 0; i < arm.values.size(); ++i) {
      const double v = arm.values[i];
      if (v >= lo && v <= hi) continue;
      std::string job;
      for (const JobRow* j : arm_jobs[a]) {
        if (j->seed == arm.seeds[i] && j->status == "done") job = j->id;
      }
      throw ReportError("--sequential: job " + job + " (arm [" + arm.label + "], seed " +
                        std::to_string(arm.seeds[i]) + ") has " + r.options.metric + " = " +
                        format_number(v, 6) + ", outside the bounds " +
                        range_text(*r.sequential.bounds) + " (" + r.sequential.bounds_reason +
                        "); pass the metric's true range with --bounds LO,HI, or "
                        "--sequential-method gaussian-mixture");
    }
  }
}

double sequential_level(const ReportOptions& options, size_t k) {
  const bool bonferroni = options.correction == stats::Correction::kHolm ||
                          options.correction == stats::Correction::kBonferroni;
  return bonferroni ? options.alpha / static_cast<double>(std::max<size_t>(k, 1)) : options.alpha;
}

void add_sequential(Report& r, Family& family, const std::vector<size_t>& members,
                    const PlannedSeeds& planned_seeds) {
  const auto& o = r.options;
  std::vector<SequentialSamples> samples;
  size_t k = 0;  // comparisons with an available sequential result
  for (const size_t i : members) {
    const Comparison& c = r.comparisons[i];
    samples.push_back(sequential_samples(r.arms[c.arm], r.arms[c.reference], planned_seeds));
    if (static_cast<int64_t>(samples.back().x.size()) >= stats::kMinSamples) ++k;
  }
  family.sequential_tested = k;
  const double split = o.alpha / static_cast<double>(std::max<size_t>(k, 1));
  const bool bh = o.correction == stats::Correction::kBenjaminiHochberg;
  const double level = sequential_level(o, k);
  std::vector<stats::SequentialResult> results;
  for (size_t m = 0; m < members.size(); ++m) {
    const SequentialSamples& s = samples[m];
    Comparison& c = r.comparisons[members[m]];
    SequentialComparison& q = c.sequential;
    const stats::SequentialResult res = run(r, s, level);
    q.available = res.available;
    q.method = stats::to_string(r.sequential.method);
    q.paired = s.paired;
    q.seeds = static_cast<int64_t>(s.x.size());
    q.level = level;
    q.e_value = res.e_value;
    q.e_value_max = res.e_value_max;
    q.cs_low = res.cs_low;
    q.cs_high = res.cs_high;
    q.decided = res.decided;
    q.first_decided_at = res.first_decided_at;
    q.equivalent = res.equivalent;
    q.first_equivalent_at = res.first_equivalent_at;
    q.min_looks_to_decide = res.min_looks_to_decide;
    q.looks = res.looks;
    std::vector<std::string> notes;
    if (s.paired && s.dropped > 0) {
      notes.push_back("paired on the " + count_of(s.x.size(), "seed") + " both arms have (" +
                      count_of(static_cast<size_t>(s.dropped), "run") +
                      " without a partner left out)");
    }
    if (!s.paired) {
      notes.push_back(
          "unpaired (neither arm's seeds are a subset of the other's): the i-th seed of each "
          "arm, ascending" +
          (s.unmatched > 0
               ? std::string("; ") + count_of(static_cast<size_t>(s.unmatched), "run") +
                     " of the " + (s.arm_waits ? "arm" : "reference") + " wait for a partner"
               : std::string()));
    }
    // The library prints alpha to 17 digits (0.025000000000000001); say it as the report does.
    if (res.note.rfind("no decision is possible before look", 0) == 0) {
      notes.push_back("no decision is possible before look " +
                      std::to_string(res.min_looks_to_decide) + " at level " +
                      format_number(level));
    } else {
      notes.push_back(res.note);
    }
    if (bh && q.available && k > 1) {
      // first_decided_at at the e-Bonferroni level: the look a stopping rule at alpha / K takes.
      const stats::SequentialResult split_res = run(r, s, split);
      q.first_decided_at = split_res.first_decided_at;
    }
    q.note = join_notes(notes);
    results.push_back(res);
  }
  if (bh) {
    std::vector<double> e;
    std::vector<size_t> which;
    for (size_t m = 0; m < members.size(); ++m) {
      const auto& q = r.comparisons[members[m]].sequential;
      if (!q.available) continue;
      e.push_back(q.e_value);
      which.push_back(m);
    }
    const std::vector<bool> reject = e.empty() ? std::vector<bool>{} : stats::e_bh(e, o.alpha);
    for (size_t m = 0; m < members.size(); ++m)
      r.comparisons[members[m]].sequential.decided = false;
    for (size_t j = 0; j < which.size(); ++j) {
      r.comparisons[members[which[j]]].sequential.decided = reject[j];
    }
  }
  for (size_t m = 0; m < members.size(); ++m) {
    SequentialComparison& q = r.comparisons[members[m]].sequential;
    if (!q.available) {
      q.decided = false;
      q.verdict = "not available";
    } else if (q.decided) {
      const int sign = cs_sign(results[m], samples[m]);
      q.verdict = sign == 0 ? "undecided" : (sign > 0) != r.lower_is_better ? "better" : "worse";
    } else if (q.equivalent) {
      q.verdict = "equivalent (|difference| < " + format_number(o.equivalence_margin) + ")";
    } else {
      q.verdict = "undecided";
    }
  }
}

SequentialText sequential_text(const Comparison& c) {
  const SequentialComparison& q = c.sequential;
  SequentialText t;
  t.seeds = std::to_string(q.seeds);
  t.verdict = q.verdict;
  if (!q.available) return t;
  if (std::isnan(q.cs_low) || std::isnan(q.cs_high)) {
    t.cs = "empty";
    t.cs_latex = "empty";
  } else {
    t.cs = "[" + end_text(q.cs_low) + ", " + end_text(q.cs_high) + "]";
    t.cs_latex = "[" + end_latex(q.cs_low) + ", " + end_latex(q.cs_high) + "]";
  }
  t.e_value = format_number(q.e_value, 3);
  if (q.first_decided_at >= 0) t.decided_at = std::to_string(q.first_decided_at);
  return t;
}

std::string sequential_sentence(const Report& r, const Family& f) {
  const auto& o = r.options;
  const size_t k = f.sequential_tested;
  const std::string kk = count_of(k, "comparison");
  std::string s =
      (f.key.empty() ? std::string("Each arm against the baseline")
                     : "Each level of " + f.key + " against " + f.key + "=" + f.reference_value) +
      "; " + count_of(family_size(f), "comparison") + ", " + std::to_string(k) +
      " with at least 2 looks. ";
  switch (o.correction) {
    case stats::Correction::kHolm:
    case stats::Correction::kBonferroni:
      s +=
          "Confidence sequences at " +
          percent(1 - o.alpha / static_cast<double>(std::max<size_t>(k, 1))) +
          (k > 1 ? " (alpha / " + std::to_string(k) + ": e-Bonferroni over the family's " + kk + ")"
                 : "") +
          "; decided: the CS excluded 0 at some look.";
      break;
    case stats::Correction::kBenjaminiHochberg:
      s += "Confidence sequences at " + percent(1 - o.alpha) +
           " (per comparison); decided by e-BH at " + format_number(o.alpha) +
           " over the last look's e-values; \"decided at\" is the first look whose CS at " +
           percent(1 - o.alpha / static_cast<double>(std::max<size_t>(k, 1))) + " (alpha / " +
           std::to_string(std::max<size_t>(k, 1)) + ") excluded 0.";
      break;
    case stats::Correction::kNone:
      s += "Confidence sequences at " + percent(1 - o.alpha) +
           ", no correction; decided: the CS excluded 0 at some look.";
      break;
  }
  return s;
}

Table sequential_table(const Report& r, const Family& f) {
  Table t;
  t.columns = {column("Arm", false, true), column("reference", false, true),
               column("seeds", true),      column("CS", true),
               column("e-value", true),    column("decided at", true),
               column("verdict", false)};
  for (const auto& g : f.groups) {
    for (const size_t i : g.comparisons) {
      const Comparison& c = r.comparisons[i];
      const SequentialText x = sequential_text(c);
      TableRow row;
      TableCell arm, ref, seeds, cs, e, at, verdict;
      arm.text = r.arms[c.arm].label;
      ref.text = r.arms[c.reference].label;
      seeds.text = x.seeds;
      cs.text = x.cs;
      cs.latex = x.cs_latex;
      e.text = x.e_value;
      e.latex = latex_numbers(x.e_value);
      at.text = x.decided_at;
      verdict.text = x.verdict;
      if (c.sequential.verdict.rfind("equivalent", 0) == 0) {
        // pdflatex's default font has no '|' in text mode: the bars as math.
        verdict.latex = "equivalent ($|\\mathrm{difference}| < " +
                        format_number(r.options.equivalence_margin) + "$)";
      }
      if (x.verdict == "better" || x.verdict == "worse") {
        verdict.strong = true;
        verdict.css_class = x.verdict;
      }
      row.cells = {arm, ref, seeds, cs, e, at, verdict};
      t.rows.push_back(std::move(row));
    }
  }
  return t;
}

std::vector<std::string> sequential_notes(const Report& r, const Family& f) {
  std::vector<std::string> notes;
  for (const auto& g : f.groups) {
    for (const size_t i : g.comparisons) {
      const Comparison& c = r.comparisons[i];
      if (c.sequential.note.empty()) continue;
      notes.push_back("[" + r.arms[c.arm].label + "] vs [" + r.arms[c.reference].label +
                      "]: " + c.sequential.note);
    }
  }
  return notes;
}

}  // namespace ablate::results::detail
