#pragma once
// The parts of `ablate report` behind report.h, one concern per file of this folder:
//   store_reads.cpp      what a report reads from the store (summaries, curves)
//   text.cpp             numbers, counts and keys as text
//   arms.cpp             arms, their samples, labels and the baseline
//   metrics.cpp          which summaries are metrics, their direction, did-you-mean
//   comparisons.cpp      families: comparisons with a reference, tests, corrections, verdicts
//   identical.cpp        arms equal seed by seed, and the likely cause from the diagnostics;
//                        arms that trained although their causality check failed
//   method.cpp           the statistical choices in words, provenance
//   build_report.cpp     build_report: the parts in order
//   arm_selection.cpp    check_arm_selection: the arms a question names, checked on a plan
//   render_*.cpp         one file per output format, render_common.cpp what they share
//   table.h, table.cpp   the Table model every format draws, and its three drawings
// Internal to the results library: nothing outside results/src includes it (the results tests
// do, to test the parts).
#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "ablate/results/metric_direction.h"
#include "ablate/results/report.h"
#include "table.h"

namespace ablate::results::detail {

// ----- store_reads.cpp -----------------------------------------------------------------------

// "4 stale jobs (no longer in the sweep file) left out": what reports say of stale jobs.
std::string stale_line(int64_t n);
// job id -> value of the summary `name` for every job of the sweep that has one.
std::map<std::string, double> summary_values(Store& store, int64_t sweep_pk,
                                             const std::string& name);
std::vector<std::string> summary_names(Store& store, int64_t sweep_pk);
// job id -> (step -> value) of the logged metric `name`.
std::map<std::string, std::map<int64_t, double>> curve_values(Store& store, int64_t sweep_pk,
                                                              const std::string& name);
// The logged curve behind a summary name (final_test_acc -> eval/test_acc); "" when none.
// `kind` receives "final value of eval/test_acc".
std::string curve_of(Store& store, int64_t sweep_pk, const std::string& metric, std::string* kind);

// ----- text.cpp ------------------------------------------------------------------------------

bool parse_number(const std::string& text, double* out);
// Stored values are equal, or both numbers and equal ("2" and "2.0", "1e-3" and "0.001").
bool same_value(const std::string& a, const std::string& b);
// "1 seed", "2 seeds": a count and a noun, plural unless the count is 1.
std::string count_of(size_t n, const std::string& noun);
std::string join(const std::vector<std::string>& items, const std::string& sep);
// %g with `digits` significant digits; "" for NaN.
std::string format_number(double v, int digits = 4);
std::string percent(double confidence);  // 0.95 -> "95%"
std::string get_or(const std::map<std::string, std::string>& m, const std::string& key,
                   const std::string& fallback = "");
// Shortest dotted suffix of `key` that no other key in `keys` ends with.
std::string short_key(const std::string& key, const std::vector<std::string>& keys);
std::string view_column(std::string key);  // attention.kv_heads -> attention_kv_heads

// ----- metrics.cpp ---------------------------------------------------------------------------

// infer_direction and MetricDirection: ablate/results/metric_direction.h.
// The word of the metric's name that says its values lie in [0, 1] for --sequential's bounds
// (acc, accuracy, match, as in exact_match), or "" (also for a name whose direction is unclear).
std::string unit_range_word(const std::string& metric);
// A summary name that is a metric (final_*, best_*, the measured quantities of summary.json;
// every column of an imported sweep), not a setting echoed by summary.json (step, warmup, ...).
bool is_metric_name(const std::string& name, bool imported);
// The metric a mistyped name most likely meant (test_acc -> final_test_acc), or "".
std::string did_you_mean(const std::string& metric, const std::vector<std::string>& metrics);

// ----- arms.cpp ------------------------------------------------------------------------------

// The metric row of an eval event's "subset": N (train.eval_subset: the point was evaluated on
// only the first N held-out examples).
constexpr char kSubsetMetric[] = "eval/subset";

// The arm's curve from its sample jobs' `curves` (job id -> step -> value); `subsets` (job id ->
// step -> N, the eval events' "subset") marks the points evaluated on a subset.
void describe_curve(ReportArm& arm, const std::vector<const JobRow*>& sample_jobs,
                    const std::map<std::string, std::map<int64_t, double>>& curves,
                    const std::map<std::string, std::map<int64_t, double>>& subsets,
                    double confidence);
// The param key a --baseline, --where or --compare KEY names: a config key, its view column, the
// unique key it is the dotted ending of ("kv_heads"), or "stage"; "" if none.
std::string resolve_key(const std::string& key, const std::vector<ReportArm>& arms);
std::string arm_value(const ReportArm& arm, const std::string& key);
std::vector<std::string> arm_labels(const std::vector<ReportArm>& arms);  // "[label]" each
std::vector<std::string> param_keys(const std::vector<ReportArm>& arms);  // every config key
// A key applies to an arm when the arm has a value for it and its variant does not ignore it
// (variant_keys.h; config keys, view columns, or an imported sweep's bare names).
bool key_applies(const ReportArm& arm, const std::string& key);
// How an error names a part of the question: its flag ("--baseline") when it came from the
// command line (`given_in` empty), else the part and where it was given ("baseline (given in the
// sweep file's report: block)"), so a message never names a flag nobody typed.
std::string option_name(const std::string& flag, const std::string& given_in);
// "X=1: 'X' is not a param of sweep 'S'; did you mean ...?; params that differ between arms:
// ...": the detail of the error for a key that names no param (`given`: the text it came in).
std::string unknown_key(const std::string& given, const std::string& key, const Report& report);
// Keeps the arms (and their jobs) that match every --where pair; ReportError for an unknown key
// or when no arm is left.
void keep_where(Report& report, std::vector<std::vector<const JobRow*>>& arm_jobs);
// The sweep's environment entry that lists the config keys in the runner's schema order
// (comma-separated), so a label names keys in the order `ablate status` does.
inline constexpr const char* kParamOrder = "param_order";
// Params, labels and parents of the arms (report.h, "Labels"). `all_jobs`: every job of the
// sweep, to find parents. `key_order`: label keys in this order ("stage" first, keys not in it
// last, alphabetically); empty: alphabetically.
void label_arms(Report& report, const std::vector<std::vector<const JobRow*>>& arm_jobs,
                const std::vector<JobRow>& all_jobs, const std::vector<std::string>& key_order);
// The baseline: --baseline pairs, or the rules in report.h.
void choose_baseline(Report& report);

// ----- comparisons.cpp -----------------------------------------------------------------------

// arm key -> the seeds the sweep planned for the arm (pairing needs the same seeds).
using PlannedSeeds = std::map<std::string, std::set<int64_t>>;
// Whether two arms can be paired by seed: one arm's planned seeds are all among the other's (a
// sweep run until decided stops a candidate while its reference goes on; the seeds both ran are
// still common random numbers). Equal sets are nested; disjoint or overlapping ones are not.
bool seeds_nested(const PlannedSeeds& planned, const ReportArm& a, const ReportArm& b);
// Whether one sorted range of seeds holds every seed of the other.
template <typename Seeds>
bool nested(const Seeds& x, const Seeds& y) {
  return std::includes(x.begin(), x.end(), y.begin(), y.end()) ||
         std::includes(y.begin(), y.end(), x.begin(), x.end());
}
// The values of `arm` and `ref` on the seeds both have, in ascending seed order.
struct SeedPairs {
  std::vector<double> x, y;  // arm, ref
  int64_t dropped = 0;       // runs of either arm without a partner
};
SeedPairs pair_by_seed(const ReportArm& arm, const ReportArm& ref);
// Every arm against the baseline: the "baseline" family, tested, corrected and decided.
void add_baseline_family(Report& report, const PlannedSeeds& planned_seeds);
// One --compare family (report.h, "Families"); ReportError for a key that is not a param, a key
// with one level, a --reference that is not a level, or no cell with something to compare.
void add_compare_family(Report& report, const CompareSpec& spec, const PlannedSeeds& planned_seeds);

// ----- sequential_comparisons.cpp ------------------------------------------------------------

// Report::sequential: the method and bounds --sequential uses, as given or inferred (report.h,
// "Sequential"); ReportError for bounded betting without bounds.
void set_sequential_setup(Report& r);
// ReportError naming the job, seed and value of the first sample outside the bounds in use.
void check_sequential_bounds(const Report& r,
                             const std::vector<std::vector<const JobRow*>>& arm_jobs);
// The level of each anytime-valid comparison in a family of k: alpha / k under Holm or
// Bonferroni (e-Bonferroni), alpha otherwise (e-BH decides over the family; none is none).
double sequential_level(const ReportOptions& options, size_t k);
// The anytime-valid comparison of each of the family's comparisons (`members`, indices into
// Report::comparisons), corrected over the family; sets Family::sequential_tested.
void add_sequential(Report& r, Family& family, const std::vector<size_t>& members,
                    const PlannedSeeds& planned_seeds);
// Cells of one sequential comparison shared by the text formats. The CS's infinite ends are
// "−∞" / "∞" in `cs` and $-\infty$ / $\infty$ in `cs_latex`.
struct SequentialText {
  std::string seeds, cs, cs_latex, e_value, decided_at, verdict;
};
SequentialText sequential_text(const Comparison& c);
// "Confidence sequences at 98.3% (alpha / 3: e-Bonferroni over the family's 3 comparisons) ..."
std::string sequential_sentence(const Report& r, const Family& f);
// One family's anytime-valid comparisons: arm, reference, seeds, CS, e-value, decided at,
// verdict.
Table sequential_table(const Report& r, const Family& f);
// The notes of the family's sequential comparisons, each naming the two arms.
std::vector<std::string> sequential_notes(const Report& r, const Family& f);

// ----- identical.cpp -------------------------------------------------------------------------

// Report::identical: each arm whose values equal an earlier arm's on the same seeds (at least 2),
// with the likely cause read from the arm's attention diagnostics.
// Report::noncausal: each arm with a job whose recorded causality verdict is a leak.
void find_noncausal_arms(Report& r, const std::vector<std::vector<const JobRow*>>& arm_jobs);

void find_identical_arms(Store& store, int64_t sweep_pk, Report& r,
                         const std::vector<std::vector<const JobRow*>>& arm_jobs);

// ----- method.cpp ----------------------------------------------------------------------------

void write_method(Report& r);
void write_provenance(Report& r, Store& store, const std::vector<JobRow>& jobs);

// ----- render_common.cpp ---------------------------------------------------------------------

// Cells of one arm's row shared by the text formats: formatting lives here once.
struct RowText {
  std::string n, mean_std, ci, iqm, diff, diff_ci, p, p_adj, g, delta, prob, power, verdict, test;
};
std::string p_text(double p);
// The verdict a table shows for `c`: its fixed-n test's, or the anytime-valid one when
// Report::verdicts_anytime_valid(); and the verdict column's header, which says which.
std::string shown_verdict(const Report& r, const Comparison& c);
std::string verdict_header(const Report& r);
RowText arm_text(const Report& r, size_t a);  // the arm's own cells (n, mean, CI, IQM)
// The arm's cells and its comparison in the baseline family; "baseline" for the baseline arm.
RowText row_text(const Report& r, size_t a);
RowText comparison_text(const Report& r, const Comparison& c);
const Family* baseline_family(const Report& r);  // nullptr when only --compare families ran
size_t family_size(const Family& family);        // comparisons in the family
// Our numbers as LaTeX text: a real minus sign, and the plus-minus and less-than as math.
std::string latex_numbers(const std::string& s);
// The arms table of the Markdown and HTML reports: one row per arm, the verdict right after the
// arm (what a reader looks for first), the baseline as the reference row.
Table arms_table(const Report& r);
// The excluded jobs (job, seed, arm, status, reason cut at 300 characters).
Table excluded_table(const Report& r);
std::string title_of(const Report& r);
std::string summary_sentence(const Report& r);
// What the comparison columns mean ("Δ, g and Cliff's δ are arm minus baseline; ...").
std::string columns_sentence(const Report& r);
// "Each level of KEY against KEY=REF (why) inside each cell ...; 6 comparisons, p adjusted ..."
std::string family_sentence(const Report& r, const Family& f);
// A --compare family's table: a group row per cell, its reference row first, then its levels.
Table family_table(const Report& r, const Family& f);
// The family's notes and its comparisons' notes, each naming the two arms.
std::vector<std::string> family_notes(const Report& r, const Family& f);
std::string relative_to(const std::string& path, const std::string& base);
std::string base64(const std::string& bytes);
std::string read_binary(const std::string& path);

}  // namespace ablate::results::detail
