#pragma once
// `ablate report`: which arms of a sweep differ from the baseline arm on one summary metric, by
// how much, and how sure we are (docs/design.md sections 6 and 7).
//
// build_report() reads the store and does every computation; the render_* functions only format
// the resulting Report, so the four formats always say the same thing.
//
// What goes in
// - An arm is the jobs of the sweep that share an arm key (the config minus the seed; a stage is
//   part of it). --where KEY=VALUE (repeatable) keeps only the arms with those values.
// - Labels: an arm's label holds the keys whose value differs between the report's arms (plus
//   `stage` when the report has several) and that apply to the arm: a key the arm's variant
//   ignores (variant_keys.h; the runner stores none of them, but imported or older sweeps may)
//   or that the arm has no value for is left out, so an mha arm is "variant=mha", not
//   "variant=mha noise_scale=1.0 ema_window=100". Labels read "variant=gqa kv_heads=2" (each key
//   by its shortest unique suffix). A staged arm whose stage draws from several parent arms also
//   names its parent: "stage=uptrain variant=gqa kv_heads=2 <- stage=pretrain dim=64".
// - Direction: lower is better for a metric whose name says loss, ppl, perplexity, bpb or error;
//   higher for acc, accuracy, f1, rouge, bleu; --lower-is-better / --higher-is-better override
//   (and a name that says neither needs one, else the report refuses). The report states it.
// - Each job contributes its summary value of the metric (summaries table; final_* and best_*
//   values of the logged metrics, or an imported column). Jobs that are done with a finite value
//   are the samples. A diverged job, or a done job whose value is missing or not finite, is
//   excluded and listed (never averaged). Jobs that failed, timed out, were interrupted, skipped,
//   or have not finished are listed with their status and reason and are not samples. Stale
//   jobs (the sweep file no longer plans them; store.h) are left out altogether: the report
//   counts them in a warning ("4 stale jobs (no longer in the sweep file) left out").
// - The baseline is the arm that matches every --baseline KEY=VALUE (keys as config keys,
//   "attention.variant", or view columns, "attention_variant"; values as stored). Without one it
//   is chosen among the arms with at least min_seeds usable runs: the mha arm if there is exactly
//   one; else the one arm whose kv_heads equals model.heads (full multi-head attention under
//   another variant name); else the first such arm in registration (sweep file or CSV) order.
//   When no arm has min_seeds usable runs the report refuses (ReportError). It says which rule
//   chose the baseline.
//
// Families (each corrected on its own)
// - "baseline": every arm against the baseline. It is the report's family when no --compare is
//   given, and runs beside the --compare families when --baseline is given.
// - --compare KEY: for one grid axis, every level of KEY against the reference level inside each
//   cell of arms that differ only in KEY (the cell: the arm's other label keys). The reference is
//   --reference VALUE, else the baseline arm's level when the chosen baseline has one, else the
//   first level in registration order. Arms KEY does not apply to are not in the family; a cell
//   without the reference level is named in the family's notes. Several --compare flags give
//   several families.
//
// Comparisons (each arm against the baseline)
// - auto: paired t-test when the arm and the baseline have the same seeds (pairs matched by
//   seed: common random numbers make the pairing meaningful), Welch's t-test otherwise.
//   wilcoxon and paired-t pair by seed over the seeds both arms have; mann-whitney and welch are
//   unpaired; permutation is paired when the seeds are the same, unpaired otherwise; aso (Almost
//   Stochastic Order) has no p-value: its statistic is eps_min and it is "significant" when
//   either arm almost dominates the other (eps_min < 0.2).
// - Fewer than min_seeds samples (pairs when paired) in the arm or the baseline: no test is run
//   and the verdict says "too few seeds" rather than printing a p-value that means nothing.
// - p-values are adjusted within each family (--correction). Where the correction turns a raw
//   p <= alpha into no detectable difference, the comparison's note says so in numbers.
// - Seeds for power are computed at the per-comparison level the correction applies to the
//   smallest p of the family, alpha / m (m comparisons with a test; alpha for none): a comparison
//   that the correction left non-significant never reads "n seeds suffice" with n already run.
// - The difference, its interval and Hedges' g are candidate minus baseline (paired or not as the
//   test); Cliff's delta too; prob_improvement is P(candidate better than baseline) with the
//   metric's direction. Verdict: "better" or "worse" when the adjusted p <= alpha (by
//   Comparison::direction and the metric's direction), else "no detectable difference";
//   "not testable" when the test is undefined for the data (e.g. zero variance), with a note.
// - Every interval is at confidence 1 - alpha.
//
// Sequential (anytime-valid) comparisons (options.sequential; sequential.h, docs/design.md 6)
// - Every comparison also gets an e-value and a confidence sequence (CS) for the mean difference
//   (candidate - reference), valid at every look whatever the stopping rule. Looks are the seeds
//   in ascending order. Paired when one arm's planned seeds are a subset of the other's (a
//   candidate stopped early while the reference went on): over the seeds both arms have a value
//   for, ascending. Otherwise unpaired: each arm's values in ascending seed order, the i-th of one
//   with the i-th of the other (sequential_unpaired). The fixed tests keep their own pairing.
// - Method: bounded betting on [lo, hi] when the bounds are known (ReportOptions::bounds, else
//   [0, 1] for a metric whose name says acc, accuracy or match), the Gaussian mixture t
//   otherwise; ReportOptions::sequential_method overrides. With bounds in use (given, or inferred
//   for betting), a sample outside them is a ReportError naming the job, seed and value.
// - Correction per family, K = its comparisons with an available sequential result: holm and
//   bonferroni -> e-Bonferroni, every CS at level alpha / K and decided <=> e_value_max >= K /
//   alpha (holm has no e-value version here); bh -> e-BH on the last look's e-values at alpha,
//   the CS at level alpha (marginal) and first_decided_at at alpha / K (the look at which
//   e-Bonferroni, the sweep's stopping rule, would have stopped); none -> alpha each.
// - Verdict: "better" / "worse" when decided (the CS's sign and the metric's direction),
//   "equivalent (|difference| < m)" when not decided and the CS lay inside (-m, m) at some look,
//   "undecided", or "not available" (fewer than 2 looks; the note says why).
// - JSON: each comparison's "sequential" object, present only with options.sequential. JSON has
//   no infinity: an infinite CS end is the string "-inf" or "inf"; NaN is null; first_decided_at
//   and first_equivalent_at of -1 (never) are null.
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "ablate/results/sequential.h"
#include "ablate/results/stats.h"
#include "ablate/results/store.h"

namespace ablate::results {

// Bad input to a report: an unknown sweep, metric or baseline (the message lists what exists),
// an invalid option. The CLI maps it to exit status 2.
class ReportError : public std::runtime_error {
 public:
  explicit ReportError(const std::string& message)
      : std::runtime_error(message), detail_(message) {}
  // An error about one part of the question (where, baseline, compare, reference): what() is
  // "PART DETAIL", PART named where it was given (option_name in report_parts.h); detail() alone
  // lets a caller name the part in its own words (the sweep file's key, at plan time).
  ReportError(const std::string& part, const std::string& detail)
      : std::runtime_error(part + " " + detail), detail_(detail) {}
  const std::string& detail() const { return detail_; }  // the message without its part's name

 private:
  std::string detail_;
};

enum class TestChoice { kAuto, kPairedT, kWelch, kWilcoxon, kMannWhitney, kPermutation, kAso };
// "auto", "paired-t", "welch", "wilcoxon", "mann-whitney", "permutation", "aso"; ReportError else.
TestChoice parse_test_choice(const std::string& name);
std::string to_string(TestChoice test);

// One --compare family: a key (config key or view column) and its reference level.
struct CompareSpec {
  std::string key;
  std::optional<std::string> reference;  // the level the others are compared with; none: chosen
  std::string reference_given_in{};  // where `reference` was given, in words; "": the command line
  std::string key_given_in{};        // where `key` was given, in words; "": the command line
};

// The smallest significance level a report takes.
inline constexpr double kMinAlpha = 1e-9;

struct ReportOptions {
  std::string sweep;   // sweep name in the store
  std::string metric;  // a summary name: final_test_acc, best_val_loss, an imported column, ...
  // KEY=VALUE pairs the baseline arm matches; empty: chosen by the rules above.
  std::vector<std::pair<std::string, std::string>> baseline;
  // Where `baseline` was given, for the report's words: "" = the command line (--baseline);
  // else e.g. "the sweep file's report: block".
  std::string baseline_given_in;
  // Direction of the metric; none: inferred from its name (above), a ReportError when it cannot be.
  std::optional<bool> lower_is_better;
  // KEY=VALUE pairs every arm of the report has; empty: all arms.
  std::vector<std::pair<std::string, std::string>> where;
  std::string where_given_in;        // where `where` was given, as baseline_given_in
  std::vector<CompareSpec> compare;  // --compare families; empty: the baseline family only
  TestChoice test = TestChoice::kAuto;
  stats::Correction correction = stats::Correction::kHolm;
  double alpha = 0.05;                 // significance level; intervals are at 1 - alpha
  int64_t min_seeds = 3;               // fewer samples per arm (or pairs): no test, "too few seeds"
  double power = 0.8;                  // target power of seeds_for_power
  int64_t bootstrap_resamples = 9999;  // per arm, for the bootstrap intervals
  uint64_t seed = stats::kDefaultSeed;  // bootstrap, permutation and ASO generators
  bool curves = true;       // load the learning curves for the figures (off: faster, no curves)
  bool sequential = false;  // also an anytime-valid comparison for every comparison (above)
  // The metric's range [lo, hi] for the betting method; none: [0, 1] when the name says acc,
  // accuracy or match, else unbounded. lo < hi, both finite (ReportError otherwise).
  std::optional<std::pair<double, double>> bounds;
  // none: kBoundedBetting when the bounds are known (given or inferred), else kGaussianMixture.
  std::optional<stats::SequentialMethod> sequential_method;
  double equivalence_margin = 0;  // >= 0; > 0: "equivalent" when the CS lies in (-m, m)
};

// A job that is not a sample of its arm, and why.
struct ExcludedJob {
  std::string id;
  int64_t seed = 0;
  std::string arm_label;
  std::string status;  // job status; "done" when the metric was missing or not finite
  std::string reason;  // the job's error, or "metric is NaN", "no value of the metric"
};

// One curve point across seeds: mean and t interval (NaN bounds for one seed).
struct CurvePoint {
  int64_t step = 0;
  double mean = stats::kNaN;
  double low = stats::kNaN;
  double high = stats::kNaN;
  int64_t n = 0;  // seeds with a value at this step
  // > 0: an intermediate evaluation of only the first `subset` held-out examples
  // (train.eval_subset; the smallest N among the seeds that logged one); 0: the whole held-out set
  int64_t subset = 0;
};

struct ReportArm {
  std::string arm_key;
  std::string stage;
  // The params that tell the arms apart and apply to this arm (dotted key, value as stored), in
  // key order ("stage" first when it is one).
  std::vector<std::pair<std::string, std::string>> params;
  std::string label;  // "variant=gqa kv_heads=2": params with their shortest unique key suffix
  std::map<std::string, std::string> config;  // every param of its first job (figures use some)
  std::string parent_label;    // a staged arm: the label of its first job's parent's arm ("" none)
  std::vector<int64_t> seeds;  // seeds of the samples, ascending
  std::vector<double> values;  // the metric per seed, in the order of `seeds`
  stats::ArmStats stats;       // describe(values) at confidence 1 - alpha
  double parameters = stats::kNaN;  // mean summary `parameters` over its samples (cost)
  double throughput = stats::kNaN;  // mean summary `throughput` over its samples (cost)
  // mean summary `kv_cache_bytes_per_token` (what training measured from the model's layers;
  // the cost axis falls back to the config's formula without it)
  double kv_cache = stats::kNaN;
  std::vector<CurvePoint> curve;  // the metric's learning curve (empty when not logged)
};

// The anytime-valid comparison of an arm with its reference (report.h, "Sequential").
struct SequentialComparison {
  bool available = false;  // false: options.sequential off, or fewer than 2 looks (`note` says)
  std::string note;        // unmatched runs, no decision possible yet, why not available, ...
  std::string method;      // stats::to_string of the method: "gaussian-mixture", "bounded-betting"
  bool paired = false;     // pairs by seed (nested seeds); false: the i-th seed of each arm
  int64_t seeds = 0;       // looks used: pairs (paired) or matched values (unpaired)
  double level = stats::kNaN;        // the per-comparison level of the CS (alpha / K, or alpha)
  double e_value = stats::kNaN;      // at the last look (what e-BH takes)
  double e_value_max = stats::kNaN;  // the largest over the looks (what e-Bonferroni takes)
  double cs_low = stats::kNaN;       // the CS at `level` at the last look; -inf / +inf while the
  double cs_high = stats::kNaN;      // data cannot bound it; NaN when it became empty
  bool decided = false;              // after the family's correction (e-Bonferroni or e-BH)
  bool equivalent = false;           // the CS at `level` lay inside (-m, m) at some look
  // The look (seeds, pairs when paired) at which the CS first excluded 0: at `level`, except under
  // bh, where it is at alpha / K (e-Bonferroni's look); -1 = never.
  int64_t first_decided_at = -1;
  int64_t first_equivalent_at = -1;  // the look the CS at `level` first lay in (-m, m)
  // The fewest seeds (pairs) at which the test can decide at `level`, whatever the data
  // (stats::SequentialResult::min_looks_to_decide); -1 when not known.
  int64_t min_looks_to_decide = -1;
  std::vector<stats::SequentialLook> looks;  // every look at `level` (figures, status)
  std::string verdict;  // "better", "worse", "equivalent (|difference| < m)", "undecided",
                        // "not available"
};

struct Comparison {
  size_t arm = 0;        // index into Report::arms
  size_t reference = 0;  // the arm it is compared with (the baseline, or the cell's reference)
  size_t family = 0;     // index into Report::families
  std::string test;      // the test run: "paired-t", "welch", ..., "aso"; "" when none ran
  bool paired = false;
  int64_t n = 0;             // pairs when paired, samples of both arms otherwise
  stats::TestResult result;  // statistic, p, df, exactness (aso: statistic = eps_min, no p)
  double p_adjusted = stats::kNaN;
  stats::MeanDifference difference;  // candidate - baseline with its interval
  stats::EffectSize hedges_g;        // paired g_z when paired
  stats::EffectSize cliffs_delta;
  stats::EffectSize prob_improvement;  // with the metric's direction
  stats::PowerResult seeds_for_power;  // at the observed effect (hedges_g), level power_alpha
  double power_alpha = stats::kNaN;    // the per-comparison level seeds_for_power plans for
  stats::AsoResult aso;                // aso only: candidate over baseline, with the direction
  stats::AsoResult aso_reverse;        // aso only: baseline over candidate
  // +1 when the arm is larger than the baseline, -1 smaller, 0 neither, as the test measures it
  // (difference of means; Cliff's delta for Mann-Whitney; the median difference for Wilcoxon).
  int direction = 0;
  bool significant = false;
  std::string verdict;  // "better", "worse", "no detectable difference", "too few seeds"
  std::string note;     // why no test ran, pairs dropped, what the correction changed, ...
  SequentialComparison sequential;  // filled when options.sequential
};

// Comparisons of one family that share a cell: the same values of every label key but the
// compared one.
struct FamilyGroup {
  std::string label;  // the cell's other keys, "variant=dgqa kv_heads=2"; "" in the baseline family
  size_t reference = 0;             // index into Report::arms
  std::vector<size_t> comparisons;  // indices into Report::comparisons, in arm order
};

struct Family {
  std::string name;              // "baseline", or the compared key ("attention.ema_window")
  std::string key;               // the compared key; "" for the baseline family
  std::string reference_value;   // the reference level of KEY ("" for the baseline family)
  std::string reference_reason;  // how the reference was chosen, in words
  std::vector<FamilyGroup> groups;
  size_t tested = 0;               // comparisons with a p-value: the size of the correction
  std::vector<std::string> notes;  // cells left out and why, and references borrowed across cells
  size_t sequential_tested = 0;    // comparisons with an available sequential result: K
};

// Two arms whose usable values are equal seed by seed, or equal to within kIdenticalTolerance
// (relative; floating-point rounding of the same computation by another path): most likely the
// same model trained twice.
inline constexpr double kIdenticalTolerance = 1e-6;
struct IdenticalArms {
  size_t arm = 0;
  size_t same_as = 0;              // an earlier arm
  int64_t seeds = 0;               // seeds compared
  double relative_difference = 0;  // the largest over the seeds; 0 when exactly equal
  std::string cause;               // the likely cause from the stored diagnostics, or a generic one
};

// An arm whose runs failed the causality check and trained anyway (attention.allow_noncausal):
// its model read later tokens, so its numbers are not those of a language model.
struct NoncausalArm {
  size_t arm = 0;
  int64_t jobs = 0;       // the arm's jobs whose summary says so
  std::string causality;  // one job's verdict, as its summary.json recorded it
};

// What --sequential used for the whole report, as given or inferred.
struct SequentialSetup {
  stats::SequentialMethod method = stats::SequentialMethod::kGaussianMixture;
  std::string method_reason;  // "given (--sequential-method)", "the metric's range is known", ...
  std::optional<std::pair<double, double>> bounds;  // the range in use; none: unbounded
  std::string bounds_reason;  // "given (--bounds)", "inferred from the name (acc)", "none: ..."
};

struct Report {
  ReportOptions options;
  SweepRow sweep;
  bool imported = false;         // the sweep came from `ablate import`
  std::string metric_kind;       // "final value of eval/test_acc", "imported column", ...
  bool lower_is_better = false;  // the metric's direction, as given or inferred
  std::string direction_reason;  // "inferred from the name: loss", "--lower-is-better"
  std::vector<ReportArm> arms;   // in registration order
  static constexpr size_t kNoArm = static_cast<size_t>(-1);
  size_t baseline = kNoArm;              // index into arms; kNoArm without a baseline family
  std::string baseline_reason;           // how the baseline was chosen, in words
  std::vector<Family> families;          // "baseline" first when it runs, then --compare's
  std::vector<Comparison> comparisons;   // every family's, family by family, in arm order
  std::vector<IdenticalArms> identical;  // arms equal to an earlier arm on every shared seed
  std::vector<NoncausalArm> noncausal;   // arms that trained although they leak the future
  std::vector<std::string> where;        // the --where restriction in words ("" none)
  std::vector<std::string> method;       // the statistical choices, one sentence each
  std::vector<std::string> warnings;     // too few seeds, a direction that looks wrong, ...
  std::vector<ExcludedJob> excluded;     // not samples: diverged, failed, missing values, ...
  int64_t diverged = 0;                  // excluded jobs that diverged (status or NaN value)
  int64_t failed = 0;                    // excluded jobs that did not finish
  int64_t stale = 0;                     // jobs left out: the sweep file no longer plans them
  bool too_few_seeds = false;            // no comparison could run a test
  std::string curve_metric;              // logged metric behind the curves ("" when none)
  SequentialSetup sequential;            // options.sequential: the method and bounds in use
  // The sweep ran with seeds until decided (its decision log, decision_log.h, has looks): how
  // many looks, and the most seeds per arm. 0 looks: a fixed number of seeds (or imported).
  int64_t until_decided_looks = 0;
  int64_t until_decided_max_seeds = 0;
  // Provenance: code version, dirty flag, created, the sweep's environment, the distinct devices,
  // hosts and LibTorch versions of its jobs, and what wrote the report.
  std::vector<std::pair<std::string, std::string>> provenance;

  bool has_baseline() const { return baseline != kNoArm; }
  const ReportArm& baseline_arm() const { return arms.at(baseline); }
  // The verdicts the tables and the summary show are the anytime-valid ones: the seeds were
  // chosen by looking at the results (until decided), which invalidates the fixed-n tests, and
  // the report has the sequential comparisons that hold under that stopping rule. The fixed-n
  // verdicts stay in Comparison::verdict (and the JSON) for a reader who wants them.
  bool verdicts_anytime_valid() const { return until_decided_looks > 0 && options.sequential; }
};

// Whether `given` (a --baseline, --where, --compare or --reference key) names the config key
// `key`: the key itself, its view column ("attention_kv_heads"), or its dotted ending
// ("kv_heads"). The report also requires the ending to be unique among the sweep's keys.
bool names_key(const std::string& key, const std::string& given);

// Reads the sweep from the store and computes the report. Throws ReportError for an unknown
// sweep (listing the sweeps), an unknown metric (listing the sweep's metrics, with a did-you-mean),
// a metric whose direction is not given and cannot be inferred, a baseline that matches no arm or
// several (listing the arms), no arm with min_seeds usable runs for an automatic baseline, a
// --where or --compare key that is not a param, a --where that keeps no arm, a --reference that
// is not a level, or an invalid option (alpha not in (0, 1), min_seeds < 2, bounds with lo >= hi,
// a negative equivalence margin), or with options.sequential a sample outside the bounds in use.
Report build_report(Store& store, const ReportOptions& options);

// One arm of a sweep as planned, before any of its jobs has run.
struct PlannedArm {
  std::string arm_key;                        // as the store will record it
  std::string stage;                          // "" for a sweep without stages
  std::map<std::string, std::string> config;  // every param but the seed, as the store records it
};

// A family of comparisons as a question makes it of planned arms (check_arm_selection).
struct PlannedFamily {
  std::string name;         // "baseline", or the compared key
  int64_t comparisons = 0;  // K: comparisons when every planned run has a value
  // With options.sequential: the level of each anytime-valid comparison (alpha / K under a
  // Bonferroni-type correction, alpha with none), the method's name, and the fewest seeds at which
  // such a comparison can decide anything at that level whatever the data
  // (stats::SequentialResult::min_looks_to_decide; -1 when not known or not sequential).
  double level = stats::kNaN;
  std::string method;
  int64_t first_possible = -1;
};

// Checks the arms a report would take against a sweep's planned arms: options.where,
// options.baseline (when given) and options.compare with its references resolve to keys and
// match arms exactly as build_report does, so a question that names no arm (a baseline the grid
// does not have, a --where that keeps nothing, a compare key with one level) is found before
// anything trains. Throws ReportError with build_report's message. Neither the metric's values
// nor the statistics are checked: no run has written one. Returns the question's families (the
// baseline family without a given baseline: every arm but one against the one the report will
// choose). `key_order`: the config keys in schema order (labels in messages name keys in it).
std::vector<PlannedFamily> check_arm_selection(const ReportOptions& options,
                                               const std::vector<PlannedArm>& arms,
                                               const std::vector<std::string>& key_order);

// Figures rendered beside a report (see figures.h); renderers only reference or inline them.
struct Figure {
  std::string name;      // file stem: "learning_curves", "metric_vs_groups", "quality_vs_cost"
  std::string title;     // one line
  std::string caption;   // what is plotted, the band or bars, n
  std::string png_path;  // absolute or relative to the report; "" when not rendered
  std::string svg_path;
};

// "the first 1000 held-out examples" (or "the first 500 to 1000 ...") when curve points of the
// report are subsets (CurvePoint::subset, train.eval_subset); "" when none is.
std::string subset_phrase(const Report& report);

// The JSON of docs/design.md section 7 (sweep, metric, alpha, correction, arms, comparisons with
// the contract's fields; NaN as null) plus baseline, method, excluded jobs and provenance; with
// options.sequential also "sequential" per comparison and for the report ("Sequential" above:
// infinite CS ends as the strings "-inf" / "inf").
std::string render_json(const Report& report);
// Markdown: the arms table, verdicts, method, excluded jobs, provenance; figures as images by
// their paths relative to `base_dir` (where the .md file is).
// `figure_notes` say which figures are missing and why.
std::string render_markdown(const Report& report, const std::vector<Figure>& figures,
                            const std::string& base_dir = "",
                            const std::vector<std::string>& figure_notes = {});
// One self-contained HTML page: the PNG figures inlined as data: URIs, no external resource.
std::string render_html(const Report& report, const std::vector<Figure>& figures,
                        const std::vector<std::string>& figure_notes = {});
// Booktabs tables ready to \input (needs \usepackage{booktabs} and \usepackage{graphicx}: a
// table wider than the line is scaled down to it): the arms, then one per --compare family.
std::string render_latex(const Report& report);

// Escaping of names and values per format, so a sweep or param named "<script>" or "50%_{x}"
// shows as text.
std::string escape_html(const std::string& s);
std::string escape_latex(const std::string& s);
std::string escape_markdown(const std::string& s);  // for table cells and inline text

}  // namespace ablate::results
