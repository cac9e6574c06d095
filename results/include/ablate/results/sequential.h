#pragma once
// Anytime-valid (sequential) comparison of an arm with its reference: an e-process for
// H0: mean difference = 0 and a two-sided confidence sequence (CS) for the mean difference, both
// valid at every look, so a sweep may look after every finished seed and stop when it likes.
// docs/design.md section 6 states the formulas, their sources and the checks; sequential_test.cpp
// checks them against values computed independently (sequential_reference.py).
//
// Conventions (those of stats.h where they apply)
// - x is the candidate arm, y the reference; the difference is x - y (positive: x larger).
// - One look per element, in the order given: look n uses the first n values (pairs). The order
//   must not depend on the values (ascending seeds, or arrival order of finished runs).
// - Inputs must be finite (std::invalid_argument otherwise; drop diverged runs first with
//   remove_non_finite_pairs() / remove_non_finite(), which count them). Paired vectors of
//   different lengths, alpha outside (0, 1), a negative margin, a non-positive mixture_sd, a
//   range with lower >= upper or a value outside [lower, upper] (kBoundedBetting) throw too.
// - Fewer than kMinSamples (2) looks: available = false with a note (no look can decide then).
// - Guarantee at level alpha: P(the CS ever excludes the true mean difference, at any look) <=
//   alpha, and under H0 P(the e-value ever reaches 1/alpha) <= alpha (Ville's inequality). The
//   CS is two-sided; the test is two-sided (it rejects for differences of either sign).
// - The CS reported at look n is the running intersection of the CSs of looks 1..n, so it never
//   widens; it is still a (1 - alpha) CS because every look's CS covers simultaneously.
//   An empty intersection (possible only when the model is wrong or in the alpha event) is
//   reported as NaN bounds with a note; it counts as excluding 0 (the sequence of intervals
//   already did so at some look, see below).
// - decided: the CS excluded 0 at some look. For both methods 0 is outside the look-n CS exactly
//   when that look's e-value is >= 1/alpha, so decided <=> max over looks of e_value >= 1/alpha,
//   and first_decided_at is the first such look.
// - equivalent: the CS lay inside (-margin, margin) at some look (margin > 0), i.e. |mean
//   difference| < margin at level alpha (a CS-based equivalence test: valid, as the CS covers
//   the true difference at all looks with probability >= 1 - alpha). Both flags may be true.
#include <cstdint>
#include <string>
#include <vector>

#include "ablate/results/stats.h"

namespace ablate::results::stats {

enum class SequentialMethod {
  // Unbounded metrics (losses, perplexities): the differences are modelled as i.i.d. Gaussian
  // N(delta, sigma^2) with sigma unknown. E-process: the likelihood ratio of N(theta sigma,
  // sigma^2)
  // against N(0, sigma^2), mixed over sigma with the right Haar measure d sigma / sigma (in both)
  // and over the standardised effect theta = delta / sigma with N(0, mixture_sd^2) (Lai 1976's
  // construction with his flat prior on the mean replaced by a Gaussian one, as in Wang & Ramdas
  // 2023). It is a test martingale in the filtration of the scale-invariant data
  // (x_1/|x_1|, ..., x_n/|x_1|), which is enough for Ville's inequality and for stopping rules
  // that use the e-values and CSs themselves. Closed form in docs/design.md section 6.
  kGaussianMixture,
  // Bounded metrics (accuracies): the hedged capital process with predictable plug-in bets
  // (Waudby-Smith & Ramdas 2023, "Estimating means of bounded random variables by betting",
  // JRSSB; the defaults of the authors' confseq package, hedged_cs), on the differences rescaled
  // to [0, 1]: distribution-free for i.i.d. values in [lower, upper]. Needs large effects relative
  // to the range to decide within tens of seeds (docs/design.md section 6).
  kBoundedBetting,
};
std::string to_string(SequentialMethod method);  // "gaussian-mixture", "bounded-betting"
// "gaussian-mixture" / "t", "bounded-betting" / "betting"; std::invalid_argument otherwise.
SequentialMethod parse_sequential_method(const std::string& name);

struct SequentialOptions {
  SequentialMethod method = SequentialMethod::kGaussianMixture;
  double alpha = 0.05;  // P(the CS ever excludes the true mean) <= alpha, at every look
  double lower = 0.0;   // kBoundedBetting: the range [lower, upper] of each arm's values; the
  double upper = 1.0;   // differences then lie in [lower - upper, upper - lower]
  double equivalence_margin = 0.0;  // > 0: also "equivalent" when the CS lies in (-m, m)
  // kGaussianMixture: standard deviation of the Gaussian mixture over the standardised effect
  // delta / sigma (Cohen's d of the differences). 1 tunes the test to effects of about one
  // seed-to-seed standard deviation, the size an ablation with at most ~30 seeds can detect:
  // in simulation (docs/design.md section 6) it needs the fewest seeds among 0.5, 1, 2 for
  // d = 1 and is within a seed of the best for d = 2, and it can decide from look 5 on at
  // alpha = 0.05 (0.5 needs 7 looks). Validity holds for every value; only power depends on it.
  double mixture_sd = 1.0;
};

struct SequentialLook {
  int64_t n = 0;          // values (pairs) used by this look
  double e_value = kNaN;  // the e-process for H0: mean difference = 0 at this look
  double cs_low = kNaN;   // running intersection of the CSs up to this look; -inf / +inf while
  double cs_high = kNaN;  // the data cannot bound it (e.g. look 1 of the Gaussian method)
};

struct SequentialResult {
  bool available = false;  // false: fewer than kMinSamples looks; `note` says why
  std::string note;
  std::string method;  // "Lai/Wang-Ramdas mixture t" or "hedged betting (Waudby-Smith & Ramdas)"
  bool paired = true;  // false: sequential_unpaired (pairs formed in arrival order)
  std::vector<SequentialLook> looks;  // every look, in order
  double e_value = kNaN;              // at the last look (an e-value: the last look is a stopping
                                      // time); use it for e_bh()
  double e_value_max = kNaN;  // largest e-value over the looks (not an e-value itself; P(>= 1 /
                              // a) <= a under H0 by Ville: what e_bonferroni() may take)
  double cs_low = kNaN;       // at the last look
  double cs_high = kNaN;
  bool decided = false;           // the CS excluded 0 at some look (<=> e_value_max >= 1/alpha)
  bool equivalent = false;        // the CS lay inside (-margin, margin) at some look
  int64_t first_decided_at = -1;  // the first look (values used) that excluded 0; -1 if none
  int64_t first_equivalent_at = -1;
  // The first look at which a decision is possible at all for this method and alpha (the most
  // extreme data). Gaussian mixture: the least n with (1 + n mixture_sd^2)^((n-1)/2) >= 1/alpha
  // (5 at the defaults; the supremum of the e-value over all data). Betting: the least n at which
  // differences all equal to upper - lower would decide (10 at alpha = 0.05); realistic data
  // need far more (docs/design.md section 6).
  int64_t min_looks_to_decide = -1;
};

// Paired by seed: d_i = x_i - y_i, look n uses d_1..d_n.
SequentialResult sequential_paired(const std::vector<double>& x, const std::vector<double>& y,
                                   const SequentialOptions& options = {});

// Unpaired (no shared seeds): the i-th value of x is paired with the i-th value of y in the
// order given (arrival order), d_i = x_i - y_i for i < min(nx, ny), and the paired method runs on
// those. Valid when each arm's runs are i.i.d. and the arms independent (then the d_i are i.i.d.
// with mean mean(x) - mean(y)), and when the order does not depend on the values. Its cost: the
// unmatched runs of the larger arm are not used until their partner arrives, and the spread of
// d is that of x plus that of y (no seed correlation removed; a two-sample statistic with the
// same n per arm has the same variance, but our variance estimate has n - 1 instead of 2n - 2
// degrees of freedom). `note` says how many runs were left unmatched.
SequentialResult sequential_unpaired(const std::vector<double>& x, const std::vector<double>& y,
                                     const SequentialOptions& options = {});

// The e-process of the Gaussian mixture at one look (exposed for tests and reports), from the
// n differences' sum of squared deviations q = sum (d_i - mean)^2 and mean (docs/design.md section
// 6).
double gaussian_mixture_e_value(int64_t n, double mean, double q, double mu0, double mixture_sd);

// Several comparisons (K = e_values.size()), which are rejected at level alpha. NaN entries (an
// unavailable comparison) are never rejected but still count in K (conservative). Throws
// std::invalid_argument for a negative e-value or alpha outside (0, 1).
// Bonferroni over e-values: reject k when e_k >= K / alpha; controls the family-wise error. It
// may take e_value_max (Ville's inequality per comparison, then the union bound), which is valid
// whatever the stopping rule.
std::vector<bool> e_bonferroni(const std::vector<double>& e_values, double alpha);
// e-BH (Wang & Ramdas 2022, "False discovery rate control with e-values", JRSSB): with e_(1) >=
// ... >= e_(K), reject the k* largest, k* = max{k : e_(k) >= K / (alpha k)} (none if no k);
// controls the FDR at alpha under any dependence between the e-values. It needs e-values (take
// each comparison's e_value at the look where the sweep stopped, not e_value_max).
std::vector<bool> e_bh(const std::vector<double>& e_values, double alpha);

}  // namespace ablate::results::stats
