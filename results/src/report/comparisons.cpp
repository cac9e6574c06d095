// Comparisons of arms with their reference: families, samples, tests, effect sizes, corrections
// and verdicts.
#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "report_parts.h"

namespace ablate::results::detail {

bool seeds_nested(const PlannedSeeds& planned, const ReportArm& a, const ReportArm& b) {
  return nested(planned.at(a.arm_key), planned.at(b.arm_key));
}

SeedPairs pair_by_seed(const ReportArm& arm, const ReportArm& ref) {
  SeedPairs s;
  std::map<int64_t, double> ref_by_seed;
  for (size_t i = 0; i < ref.seeds.size(); ++i) ref_by_seed[ref.seeds[i]] = ref.values[i];
  for (size_t i = 0; i < arm.seeds.size(); ++i) {  // ascending seeds
    const auto it = ref_by_seed.find(arm.seeds[i]);
    if (it == ref_by_seed.end()) continue;
    s.x.push_back(arm.values[i]);
    s.y.push_back(it->second);
  }
  s.dropped = static_cast<int64_t>(arm.seeds.size() + ref.seeds.size() - 2 * s.x.size());
  return s;
}

namespace {

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

// One comparison of arm `arm_index` with arm `reference`; p-values are adjusted later, per
// family (decide).
Comparison compare(const Report& report, size_t arm_index, size_t reference,
                   const PlannedSeeds& planned_seeds, int64_t aso_comparisons) {
  const auto& o = report.options;
  const ReportArm& arm = report.arms[arm_index];
  const ReportArm& base = report.arms[reference];
  Comparison c;
  c.arm = arm_index;
  c.reference = reference;
  // Pairing needs common random numbers: the seeds both arms ran (nested seed sets).
  const bool nested_seeds = seeds_nested(planned_seeds, arm, base);
  bool paired = false;
  switch (o.test) {
    case TestChoice::kAuto:
    case TestChoice::kPermutation:
      paired = nested_seeds;
      break;
    case TestChoice::kPairedT:
    case TestChoice::kWilcoxon:
      paired = true;
      break;
    default:
      paired = false;
  }
  // Candidate x, baseline y; unpaired: every value of each arm (dropped stays 0).
  SeedPairs s;
  if (paired) {
    s = pair_by_seed(arm, base);
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
    c.prob_improvement = stats::prob_improvement(arm.values, base.values, report.lower_is_better);
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
      a.lower_is_better = report.lower_is_better;
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

// The level the correction applies to the smallest p of a family of m tests: alpha / m (the first
// step of Holm and Bonferroni, the smallest threshold of Benjamini-Hochberg), or alpha without a
// correction. Each of them rejects every p <= alpha / m, so a comparison it left non-significant
// has p > alpha / m: planned at that level, seeds for power never says the seeds already run
// would suffice.
double per_comparison_level(const ReportOptions& o, size_t tested) {
  if (o.correction == stats::Correction::kNone || tested < 2) return o.alpha;
  return o.alpha / static_cast<double>(tested);
}

std::string correction_name(stats::Correction correction) {
  switch (correction) {
    case stats::Correction::kHolm:
      return "Holm";
    case stats::Correction::kBenjaminiHochberg:
      return "Benjamini-Hochberg";
    case stats::Correction::kBonferroni:
      return "Bonferroni";
    case stats::Correction::kNone:
      return "";
  }
  return "";
}

std::string add_note(const std::string& note, const std::string& more) {
  return note.empty() ? more : note + "; " + more;
}

// Verdicts of one family once its p-values are adjusted, and seeds for power at the level the
// correction applies.
void decide_family(Report& report, Family& family, const std::vector<size_t>& members) {
  const auto& o = report.options;
  std::vector<double> p;
  for (const size_t i : members) {
    const Comparison& c = report.comparisons[i];
    p.push_back(c.test.empty() || c.test == "aso" ? stats::kNaN : c.result.p_value);
  }
  family.tested = static_cast<size_t>(
      std::count_if(p.begin(), p.end(), [](double v) { return !std::isnan(v); }));
  const double level = per_comparison_level(o, family.tested);
  const auto adjusted = stats::adjust_p_values(p, o.correction);
  for (size_t k = 0; k < members.size(); ++k) {
    Comparison& c = report.comparisons[members[k]];
    c.p_adjusted = adjusted[k];
    if (c.test.empty()) continue;  // too few seeds: verdict set
    if (c.hedges_g.available) {
      c.power_alpha = level;
      c.seeds_for_power = stats::seeds_for_power(c.hedges_g.value, c.paired, level, o.power);
    } else {
      c.seeds_for_power.note = "no effect size: " + c.hedges_g.note;
    }
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
      c.verdict = (c.direction > 0) != report.lower_is_better ? "better" : "worse";
    }
    // Where the correction changed the verdict, say so in numbers.
    if (!c.significant && stats::is_significant(c.result.p_value, o.alpha)) {
      c.note = add_note(c.note, "p = " + format_number(c.result.p_value, 2) + "; " +
                                    correction_name(o.correction) + "-adjusted over " +
                                    count_of(family.tested, "comparison") + " " +
                                    format_number(c.p_adjusted, 2) + ": " + c.verdict);
    }
  }
}

// The comparisons of one family, group by group, appended to the report.
void add_family(Report& report, Family family, const PlannedSeeds& planned_seeds) {
  const size_t index = report.families.size();
  size_t count = 0;
  for (const auto& g : family.groups) count += g.comparisons.size();  // arms, for now
  const int64_t aso_comparisons = report.options.correction == stats::Correction::kNone
                                      ? 1
                                      : std::max<int64_t>(1, static_cast<int64_t>(count));
  std::vector<size_t> members;
  for (auto& group : family.groups) {
    std::vector<size_t> indices;
    for (const size_t arm : group.comparisons) {
      Comparison c = compare(report, arm, group.reference, planned_seeds, aso_comparisons);
      c.family = index;
      indices.push_back(report.comparisons.size());
      members.push_back(report.comparisons.size());
      report.comparisons.push_back(std::move(c));
    }
    group.comparisons = std::move(indices);
  }
  decide_family(report, family, members);
  if (report.options.sequential) add_sequential(report, family, members, planned_seeds);
  report.families.push_back(std::move(family));
}

// The other label keys of an arm than `key`, as its cell's name.
std::string cell_of(const ReportArm& arm, const std::string& key,
                    const std::vector<std::string>& label_keys) {
  std::vector<std::string> parts;
  for (const auto& [k, v] : arm.params) {
    if (k != key) parts.push_back(short_key(k, label_keys) + "=" + v);
  }
  if (!arm.parent_label.empty() && arm.label.find(" <- ") != std::string::npos) {
    parts.push_back("<- " + arm.parent_label);
  }
  return join(parts, " ");
}

// Arms at the reference level that a cell without one can be compared with: those whose other
// label keys all equal the cell's, missing only keys that do not apply to them (gqa has no
// `faithful`: it is the reference of the faithful and the robust kdgqa cell alike), and whose
// parent, where the cell is named by its parent, is the cell's.
struct ReferenceSearch {
  std::vector<size_t> arms;          // the candidates (one is used; several: none)
  std::vector<std::string> missing;  // the cell's keys the first candidate lacks
};

ReferenceSearch reference_lacking_keys(const std::vector<ReportArm>& arms,
                                       const std::vector<size_t>& members, size_t in_cell,
                                       const std::string& key, const std::string& level) {
  const ReportArm& cell_arm = arms[in_cell];
  ReferenceSearch found;
  for (const size_t a : members) {
    const ReportArm& candidate = arms[a];
    if (!same_value(arm_value(candidate, key), level)) continue;
    if (cell_arm.label.find(" <- ") != std::string::npos &&
        candidate.parent_label != cell_arm.parent_label) {
      continue;
    }
    // Label keys are the varying keys that apply: a cell key the candidate lacks is one that does
    // not apply to it; a key it has that the cell lacks makes it another cell, not a wider one.
    std::vector<std::string> missing;
    bool fits = true;
    for (const auto& [k, v] : cell_arm.params) {
      if (k == key) continue;
      if (!key_applies(candidate, k)) {
        missing.push_back(k);
      } else if (!same_value(arm_value(candidate, k), v)) {
        fits = false;
      }
    }
    for (const auto& [k, v] : candidate.params) {
      if (k != key && !key_applies(cell_arm, k)) fits = false;
    }
    if (!fits || missing.empty()) continue;
    if (found.arms.empty()) found.missing = missing;
    found.arms.push_back(a);
  }
  return found;
}

}  // namespace

void add_baseline_family(Report& report, const PlannedSeeds& planned_seeds) {
  Family family;
  family.name = "baseline";
  family.reference_reason = report.baseline_reason;
  FamilyGroup group;
  group.reference = report.baseline;
  for (size_t a = 0; a < report.arms.size(); ++a) {
    if (a != report.baseline) group.comparisons.push_back(a);
  }
  family.groups.push_back(std::move(group));
  add_family(report, std::move(family), planned_seeds);
}

void add_compare_family(Report& report, const CompareSpec& spec,
                        const PlannedSeeds& planned_seeds) {
  const auto& arms = report.arms;
  const std::string key = resolve_key(spec.key, arms);
  if (key.empty()) {
    throw ReportError(option_name("--compare", spec.key_given_in),
                      unknown_key(spec.key, spec.key, report));
  }
  // The levels of KEY among the arms it applies to, in registration order.
  std::vector<std::string> levels;
  std::vector<size_t> members;
  for (size_t a = 0; a < arms.size(); ++a) {
    if (!key_applies(arms[a], key)) continue;
    members.push_back(a);
    const std::string v = arm_value(arms[a], key);
    if (std::none_of(levels.begin(), levels.end(),
                     [&](const std::string& l) { return same_value(l, v); })) {
      levels.push_back(v);
    }
  }
  if (levels.size() < 2) {
    throw ReportError(option_name("--compare", spec.key_given_in),
                      key + ": the report's arms have " +
                          (levels.empty() ? std::string("no value of it")
                                          : "one level of it (" + levels.front() + ")") +
                          "; nothing to compare");
  }
  Family family;
  family.name = key;
  family.key = key;
  if (spec.reference) {
    const auto it = std::find_if(levels.begin(), levels.end(), [&](const std::string& l) {
      return same_value(l, *spec.reference);
    });
    if (it == levels.end()) {
      throw ReportError(option_name("--reference", spec.reference_given_in),
                        *spec.reference + ": not a level of " + key +
                            " in this report; levels: " + join(levels, ", "));
    }
    family.reference_value = *it;
    family.reference_reason = spec.reference_given_in.empty()
                                  ? "given with --reference"
                                  : "given in " + spec.reference_given_in;
  } else if (report.has_baseline() && key_applies(report.baseline_arm(), key)) {
    family.reference_value = arm_value(report.baseline_arm(), key);
    family.reference_reason = "the baseline arm's level";
  } else {
    family.reference_value = levels.front();
    family.reference_reason = "the first level in the sweep's order; --reference VALUE chooses";
  }
  // Cells: arms with the same other label keys. A cell compares its levels with its reference.
  std::vector<std::string> label_keys;
  for (const auto& arm : arms) {
    for (const auto& [k, v] : arm.params) {
      if (std::find(label_keys.begin(), label_keys.end(), k) == label_keys.end()) {
        label_keys.push_back(k);
      }
    }
  }
  std::vector<std::string> cells;
  std::map<std::string, std::vector<size_t>> cell_arms;
  for (const size_t a : members) {
    const std::string cell = cell_of(arms[a], key, label_keys);
    if (!cell_arms.count(cell)) cells.push_back(cell);
    cell_arms[cell].push_back(a);
  }
  for (const auto& cell : cells) {
    const auto& in_cell = cell_arms[cell];
    const auto ref = std::find_if(in_cell.begin(), in_cell.end(), [&](size_t a) {
      return same_value(arm_value(arms[a], key), family.reference_value);
    });
    const std::string name = cell.empty() ? "the report's arms" : "[" + cell + "]";
    std::optional<size_t> reference;
    if (ref != in_cell.end()) {
      if (in_cell.size() < 2) continue;  // the reference alone: nothing to compare in this cell
      reference = *ref;
    } else {
      const ReferenceSearch found =
          reference_lacking_keys(arms, members, in_cell.front(), key, family.reference_value);
      if (found.arms.size() != 1) {
        family.notes.push_back(
            name + ": " +
            (found.arms.empty() ? "no arm with " + key + "=" + family.reference_value
                                : count_of(found.arms.size(), "arm") + " with " + key + "=" +
                                      family.reference_value + " that the cell's keys " +
                                      join(found.missing, ", ") + " do not apply to; none chosen") +
            "; " + count_of(in_cell.size(), "arm") + " not compared");
        continue;
      }
      reference = found.arms.front();
      family.notes.push_back(name + ": compared with " + arms[*reference].label +
                             " (its variant has no " + join(found.missing, ", ") + ")");
    }
    FamilyGroup group;
    group.label = cell;
    group.reference = *reference;
    for (const size_t a : in_cell) {
      if (a != *reference) group.comparisons.push_back(a);
    }
    family.groups.push_back(std::move(group));
  }
  if (family.groups.empty()) {
    throw ReportError(option_name("--compare", spec.key_given_in),
                      key + ": no cell of arms that differ only in " + key +
                          " has both the reference level " + family.reference_value +
                          " and another level; " + join(family.notes, "; "));
  }
  add_family(report, std::move(family), planned_seeds);
}

}  // namespace ablate::results::detail
