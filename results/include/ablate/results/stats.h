#pragma once
// Statistics for ablation reports: free functions over vectors of per-seed values (one value per
// finished run), torch-free; Boost.Math supplies the distributions. Every function is checked in
// stats_test.cpp against reference values computed independently (stats_reference.py: scipy 1.10,
// statsmodels 0.13, and a transcription of deepsig 1.2 for ASO) at several sample sizes.
//
// Conventions that hold for every function below
// - x is the candidate arm, y the baseline; differences and effect sizes are x - y, so a positive
//   value means x is larger. Whether larger is better is the caller's business, except where a
//   function takes `lower_is_better`. Every test is two-sided.
// - Inputs must be finite. A diverged run (NaN or inf metric) is excluded by the caller with
//   remove_non_finite() / remove_non_finite_pairs(), which count what they removed so that the
//   report can list the run; every other function throws std::invalid_argument on a non-finite
//   value rather than silently averaging it.
// - Too few values: a result struct with `available = false` (numbers NaN, `note` says why) is
//   returned when an arm has fewer than kMinSamples (2) values, and for the other undefined cases
//   named below (zero variance in a t-test, all differences zero in Wilcoxon). Such results never
//   count as significant: use significant()/is_significant(), which are false for NaN. This is
//   data, not misuse, so it does not throw. Plain double helpers (mean, median, ...) do throw on
//   an empty sample, where they have no value at all.
// - std::invalid_argument for misuse: non-finite input, paired vectors of different lengths,
//   confidence not in (0, 1), a p-value outside [0, 1], a non-positive resample count.
// - Significant means p <= alpha (the rule of statsmodels' multipletests).
// - Randomised functions (bootstrap, Monte-Carlo permutation test, ASO) take a seed, default
//   kDefaultSeed. The generator is std::mt19937_64 with our own mapping to indices (Lemire's
//   multiply-shift with rejection) and coin flips (one bit each), not std::uniform_*_distribution,
//   whose output differs between standard libraries: the same inputs and seed give the same
//   numbers everywhere. Each call starts its own generator from the seed, so results do not
//   depend on what was computed before.
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace ablate::results::stats {

inline constexpr uint64_t kDefaultSeed = 0xab1a7e;  // "ablate"; any fixed value would do
inline constexpr int64_t kMinSamples = 2;           // per arm (per pair list when paired)
inline constexpr double kAsoThreshold = 0.2;        // eps_min below this: almost dominant
inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// ---------------------------------------------------------------------------------------------
// Diverged runs

// The finite values of x, in order, and how many NaN/inf values were dropped.
struct FiniteValues {
  std::vector<double> values;
  int64_t removed = 0;
};
FiniteValues remove_non_finite(const std::vector<double>& x);

// Pairs (x[i], y[i]) with both finite; a pair is dropped when either side is not (a paired test
// needs both runs of the seed). Throws std::invalid_argument when the lengths differ.
struct FinitePairs {
  std::vector<double> x;
  std::vector<double> y;
  int64_t removed = 0;  // pairs dropped
};
FinitePairs remove_non_finite_pairs(const std::vector<double>& x, const std::vector<double>& y);

// p <= alpha, false for NaN (an unavailable test is never significant).
bool is_significant(double p_value, double alpha);

// ---------------------------------------------------------------------------------------------
// Per arm

// Plain summaries; throw std::invalid_argument on an empty sample (std_dev: fewer than 2 values)
// or a non-finite value.
double mean(const std::vector<double>& x);
double std_dev(const std::vector<double>& x);  // sample standard deviation (ddof 1)
double median(const std::vector<double>& x);   // mean of the two middle values for even n
// Interquartile mean, defined as scipy.stats.trim_mean(x, 0.25) (and rliable's IQM): sort, drop
// floor(n / 4) values at each end, average the rest. No fractional weights, so for n not a
// multiple of 4 slightly more than the middle 50% is kept; for n < 4 it is the mean.
double iqm(const std::vector<double>& x);

struct Interval {
  double low = kNaN;
  double high = kNaN;
  bool available = false;
};

// t interval of the mean: mean -+ t_{(1+c)/2, n-1} * s / sqrt(n) (scipy.stats.t.interval).
// n < 2: not available. Zero variance: the zero-width interval [mean, mean].
Interval t_interval(const std::vector<double>& x, double confidence = 0.95);

struct BootstrapOptions {
  int64_t resamples = 9999;  // scipy.stats.bootstrap's default
  uint64_t seed = kDefaultSeed;
};

// Bootstrap intervals of the mean with scipy.stats.bootstrap's semantics: `resamples` resamples
// with replacement; percentile = numpy's linear-interpolation percentiles at (1-c)/2 and (1+c)/2;
// BCa (Efron & Tibshirani 1993, 14.3) with z0 = Phi^-1((#{t* < t} + #{t* <= t}) / 2B) and the
// jackknife acceleration, read from the same bootstrap distribution. Both intervals share one
// set of resamples. Values differ from scipy's by Monte-Carlo error only (different draws).
// Each bootstrap mean is computed from the resample's multiplicities, so a resample that is a
// permutation of x ties exactly with the sample mean in z0 (in scipy that depends on rounding).
// n < 2: not available. Zero variance: both are [mean, mean] (scipy returns NaN for BCa there).
struct BootstrapIntervals {
  Interval percentile;
  Interval bca;
  std::string note;
};
BootstrapIntervals bootstrap_mean_ci(const std::vector<double>& x, double confidence = 0.95,
                                     const BootstrapOptions& options = {});

struct ArmStats {
  int64_t n = 0;
  double mean = kNaN;     // n >= 1
  double std_dev = kNaN;  // ddof 1; n >= 2
  double median = kNaN;   // n >= 1
  double iqm = kNaN;      // n >= 1, see iqm()
  double confidence = 0.95;
  Interval t_ci;                  // t_interval()
  Interval bootstrap_percentile;  // bootstrap_mean_ci()
  Interval bootstrap_bca;
  std::string note;  // why something is not available, or "zero variance"
};
// Everything above for one arm. Never throws for small n (n = 0 gives n = 0 and nothing
// available); throws on non-finite values and a confidence outside (0, 1).
ArmStats describe(const std::vector<double>& x, double confidence = 0.95,
                  const BootstrapOptions& bootstrap = {});

// ---------------------------------------------------------------------------------------------
// Tests of x against y (two-sided)

struct TestResult {
  std::string test;         // "paired-t", "welch", "wilcoxon", "mann-whitney", "permutation"
  double statistic = kNaN;  // see each test
  double p_value = kNaN;
  double df = kNaN;        // degrees of freedom of the t tests, NaN otherwise
  int64_t n = 0;           // pairs for paired tests, nx + ny for unpaired ones
  bool exact = false;      // exact null distribution (not asymptotic, not Monte Carlo)
  bool available = false;  // false: p_value is NaN and `note` says why
  std::string note;
  bool significant(double alpha) const { return available && is_significant(p_value, alpha); }
};

// Paired t-test (scipy.stats.ttest_rel): d = x - y, t = mean(d) / (sd(d) / sqrt(n)), df = n - 1.
// x[i] and y[i] are the same seed; the caller aligns them. Not available for n < 2 or when all
// differences are equal (sd(d) = 0: t is undefined; scipy returns nan, or +-inf with p = 0 for a
// constant non-zero shift; we return NaN and say so).
TestResult paired_t_test(const std::vector<double>& x, const std::vector<double>& y);

// Welch's t-test (scipy.stats.ttest_ind(equal_var=False)), Welch-Satterthwaite df. Not available
// when either arm has n < 2 or both arms have zero variance (one may).
TestResult welch_t_test(const std::vector<double>& x, const std::vector<double>& y);

enum class RankMethod {
  kAuto,        // the rules below
  kExact,       // throws std::invalid_argument where the exact distribution does not apply
  kAsymptotic,  // normal approximation with the tie correction
};

// Wilcoxon signed-rank test on d = x - y, scipy.stats.wilcoxon's defaults: zero_method='wilcox'
// (zero differences are dropped before ranking, `n` still counts all pairs and `note` says how
// many were dropped), correction=False (no continuity correction), statistic = min(R+, R-)
// with average ranks for tied |d|.
// kAuto: exact null distribution when there are at most 50 pairs, no zero difference and no tied
// |d|; otherwise the normal approximation z = (T - n(n+1)/4) / sqrt((n(n+1)(2n+1) - sum over tie
// groups of t(t^2-1)/2) / 24) over the n non-zero differences. That is scipy 1.10's
// method='auto' except for ties without zeros, where scipy 1.10 still uses its exact table with a
// truncated tie-averaged rank sum (later scipy versions no longer do); we use the approximation,
// which equals scipy's method='approx'. Exact two-sided p as scipy: 1 at the centre, else
// 2 min(P(R+ <= r), P(R+ >= r)), capped at 1.
// Not available for n < 2 or when all differences are zero (scipy raises an error there).
TestResult wilcoxon_signed_rank(const std::vector<double>& x, const std::vector<double>& y,
                                RankMethod method = RankMethod::kAuto);

// Mann-Whitney U test, scipy.stats.mannwhitneyu's defaults: statistic U1 = R1 - nx(nx+1)/2 (the U
// of x; ties count 1/2), p from U = max(U1, U2), two-sided.
// kAuto (scipy's rule): exact when min(nx, ny) <= 8 and no value is tied across the pooled
// sample; otherwise the normal approximation with tie correction and continuity correction,
// z = (U - nx ny / 2 - 0.5) / sqrt(nx ny / 12 ((N + 1) - sum(t^3 - t) / (N (N - 1)))).
// p is capped at 1; when every value is tied the p-value is 1 (scipy gives the same).
// The exact distribution is computed exactly with 128-bit integers; when C(N, min(nx, ny)) does
// not fit (N in the hundreds of thousands) kAuto falls back to the approximation with a note.
TestResult mann_whitney_u(const std::vector<double>& x, const std::vector<double>& y,
                          RankMethod method = RankMethod::kAuto);

struct PermutationOptions {
  int64_t max_exact = 100000;  // enumerate every permutation when there are at most this many
  int64_t resamples = 9999;    // otherwise this many random ones (scipy's default)
  uint64_t seed = kDefaultSeed;
};

// Permutation tests of the difference in means, statistic mean(x) - mean(y), with
// scipy.stats.permutation_test's two-sided p = min(1, 2 min(P(T* <= t), P(T* >= t))). Exact
// enumeration includes the observed arrangement; Monte Carlo uses (count + 1) / (B + 1) as scipy.
// Permuted statistics equal to the observed one up to rounding count as ties (tolerance 1e-12 of
// the sum of the absolute values permuted; scipy uses 1e-14 of the statistic).
// Paired: x[i], y[i] are swapped within pairs, i.e. the signs of d = x - y flip (2^n
// arrangements: exact up to n = 16 with the default max_exact). Not available for n < 2.
TestResult permutation_test_paired(const std::vector<double>& x, const std::vector<double>& y,
                                   const PermutationOptions& options = {});
// Unpaired: labels are permuted over the pooled values (C(nx + ny, nx) arrangements: exact for
// 8 + 8 seeds, Monte Carlo for 10 + 10). Not available when either arm has n < 2.
TestResult permutation_test_unpaired(const std::vector<double>& x, const std::vector<double>& y,
                                     const PermutationOptions& options = {});

// ---------------------------------------------------------------------------------------------
// Almost Stochastic Order (del Barrio, Cuesta-Albertos & Matran 2018; Dror, Shlomov & Reichart
// 2019), computed as the deepsig package (1.2.x, aso()) does, so that eps_min matches what users
// get from deepsig up to Monte-Carlo error:
//   quantile function Q(p) = sorted[clamp(ceil(n p) - 1, 0, n - 1)];
//   grid t = dt, 2 dt, ... < 1 (numpy.arange(dt, 1, dt));
//   violation ratio e = sum_{t: Qy(t) > Qx(t)} (Qy - Qx)^2 / sum_t (Qy - Qx)^2, where, as in
//   deepsig, the first grid point is left out of the numerator; 0.5 when x and y have the same
//   quantiles (the denominator is 0);
//   the bootstrap resamples x and y with replacement (each at its own size) `iterations` times;
//   eps_min = clamp(e + Phi^-1(c) * sd(e*), 0, 1), sd with ddof 0 (deepsig's
//   e - (1/k) sigma_hat Phi^-1(1 - c) with sigma_hat = sd(k (e* - e)), k = sqrt(nx ny/(nx + ny)));
//   num_comparisons > 1 raises the confidence to c + (1 - c) / num_comparisons (Bonferroni, as
//   deepsig's num_comparisons).
// eps_min is an upper bound on how much x violates stochastic dominance over y: near 0 means x
// is (almost) stochastically larger, 1 that it is not at all; eps_min < 0.2 (kAsoThreshold, the
// threshold deepsig recommends) reads "x almost stochastically dominates y". Identical samples
// give violation ratio 0.5 and eps_min 1 (the bound is clamped). ASO has no p-value and is not
// part of a p-value family. With lower_is_better both samples are negated first (as deepsig's
// README advises).
struct AsoOptions {
  double confidence = 0.95;      // deepsig's confidence_level
  int64_t iterations = 1000;     // deepsig's num_bootstrap_iterations
  double dt = 0.005;             // deepsig's integration step
  int64_t num_comparisons = 1;   // deepsig's Bonferroni adjustment of the confidence
  bool lower_is_better = false;  // negate both samples
  uint64_t seed = kDefaultSeed;
};
struct AsoResult {
  double eps_min = kNaN;
  double violation_ratio = kNaN;  // the point estimate e (no bootstrap)
  bool available = false;         // false when either arm has n < 2
  std::string note;
  bool dominant(double threshold = kAsoThreshold) const { return available && eps_min < threshold; }
};
AsoResult almost_stochastic_order(const std::vector<double>& x, const std::vector<double>& y,
                                  const AsoOptions& options = {});

// ---------------------------------------------------------------------------------------------
// Effect sizes and the difference of means

struct EffectSize {
  std::string name;  // "hedges_g", "hedges_g_paired", "cliffs_delta", "prob_improvement"
  double value = kNaN;
  bool available = false;
  std::string note;
};

// Hedges' g, unpaired: (mean(x) - mean(y)) / s_pooled, s_pooled^2 = ((nx-1) sx^2 + (ny-1) sy^2)
// / (nx + ny - 2), times the exact small-sample correction J(df) = Gamma(df/2) / (sqrt(df/2)
// Gamma((df-1)/2)), df = nx + ny - 2 (Hedges 1981; the common 1 - 3/(4 df - 1) approximates it).
// Not available for n < 2 in either arm or s_pooled = 0.
EffectSize hedges_g(const std::vector<double>& x, const std::vector<double>& y);
// Paired variant g_z = J(n - 1) mean(d) / sd(d), d = x - y (Lakens 2013's d_z with Hedges'
// correction). It is standardised by the spread of the differences, which is what the paired
// test and the paired power computation use; it is larger than the unpaired g when the seeds'
// results are correlated, so do not compare the two. Not available for n < 2 or sd(d) = 0.
EffectSize hedges_g_paired(const std::vector<double>& x, const std::vector<double>& y);

// Cliff's delta = (#{x_i > y_j} - #{x_i < y_j}) / (nx ny), over all pairs (unpaired), in [-1, 1].
EffectSize cliffs_delta(const std::vector<double>& x, const std::vector<double>& y);

// Probability of improvement P(X > Y) + P(X = Y) / 2 over all (x_i, y_j) (rliable's; equals
// U1 / (nx ny)). With lower_is_better it is P(X < Y) + P(X = Y) / 2. Not available for n < 2.
EffectSize prob_improvement(const std::vector<double>& x, const std::vector<double>& y,
                            bool lower_is_better = false);

// Difference of means with its t interval. Paired: mean(d) -+ t_{n-1} sd(d)/sqrt(n) (the
// interval of scipy's ttest_rel(...).confidence_interval). Unpaired (Welch): mean(x) - mean(y) -+
// t_df sqrt(sx^2/nx + sy^2/ny) with the Welch-Satterthwaite df. Zero variance gives a zero-width
// interval (the tests say "not available" there: the interval is defined, the t ratio is not).
struct MeanDifference {
  double diff = kNaN;
  Interval ci;
  double df = kNaN;
  bool paired = false;
  bool available = false;
  std::string note;
};
MeanDifference mean_difference(const std::vector<double>& x, const std::vector<double>& y,
                               bool paired, double confidence = 0.95);

// ---------------------------------------------------------------------------------------------
// Multiple comparisons

enum class Correction { kHolm, kBenjaminiHochberg, kBonferroni, kNone };
// "holm", "bh", "bonferroni", "none" (the CLI's --correction values); std::invalid_argument else.
Correction parse_correction(const std::string& name);
std::string to_string(Correction correction);

// Adjusted p-values in input order, as statsmodels.stats.multitest.multipletests gives them
// ('holm', 'fdr_bh', 'bonferroni'): Holm p_(i) (m - i + 1) with a running maximum, BH p_(i) m / i
// with a running minimum from the largest, Bonferroni p m; all capped at 1, so adjusted >= raw
// and the order of the raw p-values is kept. A NaN entry (a test that was not available) stays
// NaN and is not part of the family: m counts the non-NaN entries (R's p.adjust does the same).
// Throws std::invalid_argument for a value outside [0, 1].
std::vector<double> adjust_p_values(const std::vector<double>& p_values,
                                    Correction correction = Correction::kHolm);

// ---------------------------------------------------------------------------------------------
// Seeds needed

// Power of the two-sided t-test at standardised effect |effect_size| with the noncentral t
// distribution (Boost.Math), as statsmodels: P(T > t_crit) + P(T < -t_crit).
// Paired: one-sample t on the differences, n pairs, df = n - 1, noncentrality d sqrt(n).
// Unpaired: two-sample t with n per arm, df = 2n - 2, noncentrality d sqrt(n / 2).
double t_test_power(double effect_size, int64_t n, bool paired, double alpha = 0.05);

struct PowerResult {
  int64_t n = 0;           // seeds: pairs when paired, per arm otherwise
  double achieved = kNaN;  // power at n
  bool available = false;  // false for effect 0 or NaN, or when n would exceed max_n
  std::string note;
};
// The smallest n >= 2 whose t_test_power reaches `power` (statsmodels' solve_power rounded up to
// the first integer that reaches it). Pass the effect the test used: hedges_g_paired for paired
// arms, hedges_g otherwise (observed effects are noisy; the answer is a planning guide).
PowerResult seeds_for_power(double effect_size, bool paired, double alpha = 0.05,
                            double power = 0.8, int64_t max_n = 1000000);

}  // namespace ablate::results::stats
