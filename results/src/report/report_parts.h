#pragma once
// The parts of `ablate report` behind report.h, one concern per file of this folder:
//   store_reads.cpp      what a report reads from the store (summaries, curves)
//   text.cpp             numbers, counts and keys as text
//   arms.cpp             arms, their samples, labels and the baseline
//   comparisons.cpp      comparisons with a reference, tests, corrections and verdicts
//   method.cpp           the statistical choices in words, provenance
//   build_report.cpp     build_report: the parts in order
//   render_*.cpp         one file per output format, render_common.cpp what they share
//   table.h, table.cpp   the Table model every format draws, and its three drawings
// Internal to the results library: nothing outside results/src includes it.
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

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
bool looks_lower_is_better(const std::string& metric);
bool looks_higher_is_better(const std::string& metric);

// ----- arms.cpp ------------------------------------------------------------------------------

void describe_curve(ReportArm& arm, const std::vector<const JobRow*>& sample_jobs,
                    const std::map<std::string, std::map<int64_t, double>>& curves,
                    double confidence);
// The param key a --baseline KEY names: a config key, its view column, or "stage"; "" if none.
std::string resolve_key(const std::string& key, const std::vector<ReportArm>& arms);
std::string arm_value(const ReportArm& arm, const std::string& key);
std::vector<std::string> arm_labels(const std::vector<ReportArm>& arms);  // "[label]" each
// The baseline: --baseline pairs, or the rules in report.h.
void choose_baseline(Report& report);

// ----- comparisons.cpp -----------------------------------------------------------------------

Comparison compare(const Report& report, size_t arm_index,
                   const std::map<std::string, std::set<int64_t>>& planned_seeds,
                   int64_t aso_comparisons);
// Verdicts once the p-values of the family are adjusted.
void decide(Report& report);

// ----- method.cpp ----------------------------------------------------------------------------

void write_method(Report& r);
void write_provenance(Report& r, Store& store, const std::vector<JobRow>& jobs);

// ----- render_common.cpp ---------------------------------------------------------------------

// Cells of one arm's row shared by the text formats: formatting lives here once.
struct RowText {
  std::string n, mean_std, ci, iqm, diff, diff_ci, p, p_adj, g, delta, prob, power, verdict, test;
};
std::string p_text(double p);
RowText row_text(const Report& r, size_t a);
// Our numbers as LaTeX text: a real minus sign, and the plus-minus and less-than as math.
std::string latex_numbers(const std::string& s);
// The arms table of the Markdown and HTML reports: one row per arm, the verdict right after the
// arm (what a reader looks for first), the baseline as the reference row.
Table arms_table(const Report& r);
// The excluded jobs (job, seed, arm, status, reason cut at 300 characters).
Table excluded_table(const Report& r);
std::string title_of(const Report& r);
std::string summary_sentence(const Report& r);
std::string relative_to(const std::string& path, const std::string& base);
std::string base64(const std::string& bytes);
std::string read_binary(const std::string& path);

}  // namespace ablate::results::detail
