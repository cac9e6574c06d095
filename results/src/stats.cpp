#include "ablate/results/stats.h"

#include <algorithm>
#include <boost/math/distributions/non_central_t.hpp>
#include <boost/math/distributions/normal.hpp>
#include <boost/math/distributions/students_t.hpp>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>

namespace ablate::results::stats {
namespace {

// Permuted statistics within this fraction of the data's scale count as equal to the observed
// one: the same arrangement summed in another order must not be told apart by rounding.
constexpr double kTieRelTol = 1e-12;
// Above this many pairs the exact Wilcoxon distribution is not used by kAuto (scipy's rule).
constexpr int64_t kWilcoxonExactMaxN = 50;
// kAuto uses the exact Mann-Whitney distribution when the smaller arm has at most this many.
constexpr int64_t kMannWhitneyExactMaxMin = 8;

// Exact Mann-Whitney counts exceed 64 bits quickly; the random index mapping needs a 128-bit
// product. __extension__ keeps -Wpedantic quiet about the GCC/Clang type.
__extension__ typedef __int128 Int128;
__extension__ typedef unsigned __int128 UInt128;

// ------------------------------------------------------------------------------------ checks

void require_finite(const std::vector<double>& x, const char* what) {
  for (size_t i = 0; i < x.size(); ++i) {
    if (!std::isfinite(x[i])) {
      throw std::invalid_argument(std::string(what) + ": value " + std::to_string(i) +
                                  " is not finite; drop diverged runs with remove_non_finite() "
                                  "(which counts them) before computing statistics");
    }
  }
}

void require_confidence(double confidence) {
  if (!(confidence > 0.0 && confidence < 1.0)) {
    throw std::invalid_argument("confidence must be in (0, 1), got " + std::to_string(confidence));
  }
}

void require_same_length(const std::vector<double>& x, const std::vector<double>& y) {
  if (x.size() != y.size()) {
    throw std::invalid_argument(
        "paired samples need one y per x (matched by seed): " + std::to_string(x.size()) +
        " x values, " + std::to_string(y.size()) + " y values");
  }
}

void require_positive(int64_t value, const char* what) {
  if (value <= 0) throw std::invalid_argument(std::string(what) + " must be positive");
}

std::string too_few(const char* what) {
  return std::string(what) + " needs at least " + std::to_string(kMinSamples) + " values per arm";
}

// -------------------------------------------------------------------------------- random

// Deterministic on every platform: mt19937_64's output is fixed by the standard, and the
// mappings below are ours (the std distributions are implementation-defined).
class Rng {
 public:
  explicit Rng(uint64_t seed) : engine_(seed) {}
  // Uniform in [0, n): Lemire's multiply-shift with rejection of the few biased products
  // (no division on the common path).
  uint64_t index(uint64_t n) {
    UInt128 product = static_cast<UInt128>(engine_()) * n;
    auto low = static_cast<uint64_t>(product);
    if (low < n) {
      const uint64_t threshold = (0 - n) % n;  // 2^64 mod n
      while (low < threshold) {
        product = static_cast<UInt128>(engine_()) * n;
        low = static_cast<uint64_t>(product);
      }
    }
    return static_cast<uint64_t>(product >> 64);
  }
  // A fair coin, from the bits of one draw at a time.
  bool coin() {
    if (bits_left_ == 0) {
      bits_ = engine_();
      bits_left_ = 64;
    }
    const bool heads = (bits_ & 1U) != 0;
    bits_ >>= 1;
    --bits_left_;
    return heads;
  }

 private:
  std::mt19937_64 engine_;
  uint64_t bits_ = 0;
  int bits_left_ = 0;
};

// ------------------------------------------------------------------------------ helpers

double sum(const std::vector<double>& x) {
  double s = 0.0;
  for (double v : x) s += v;
  return s;
}

double mean_of(const std::vector<double>& x) { return sum(x) / static_cast<double>(x.size()); }

// Sample variance (ddof 1) by two passes, for accuracy with values far from 0.
double variance_of(const std::vector<double>& x) {
  const double m = mean_of(x);
  double ss = 0.0;
  for (double v : x) ss += (v - m) * (v - m);
  return ss / static_cast<double>(x.size() - 1);
}

std::vector<double> differences(const std::vector<double>& x, const std::vector<double>& y) {
  std::vector<double> d(x.size());
  for (size_t i = 0; i < x.size(); ++i) d[i] = x[i] - y[i];
  return d;
}

// Whether a variance is only floating-point rounding. x - y and a mean round at about
// eps * |value|, so values equal in decimal (0.55 - 0.5 and 0.65 - 0.6) differ in their last
// bits; a standard deviation below a few such units is no spread, and is treated as zero. Without
// this such data would get a t statistic of 1e15 and "p < 0.001" where exactly representable
// data get "zero variance: not testable". `scale`: the largest magnitude the values came from.
bool spread_is_rounding(double variance, double scale) {
  return std::sqrt(variance) <= 16.0 * std::numeric_limits<double>::epsilon() * scale;
}

double max_abs(const std::vector<double>& x) {
  double m = 0.0;
  for (double v : x) m = std::max(m, std::abs(v));
  return m;
}

bool all_equal(const std::vector<double>& x) {
  return std::all_of(x.begin(), x.end(), [&](double v) { return v == x.front(); });
}

double normal_cdf(double z) { return boost::math::cdf(boost::math::normal(), z); }
double normal_sf(double z) {
  return boost::math::cdf(boost::math::complement(boost::math::normal(), z));
}
double normal_quantile(double p) { return boost::math::quantile(boost::math::normal(), p); }

double t_quantile(double p, double df) {
  return boost::math::quantile(boost::math::students_t(df), p);
}
// Two-sided p of a t statistic.
double t_two_sided_p(double t, double df) {
  return std::min(1.0, 2.0 * boost::math::cdf(boost::math::complement(boost::math::students_t(df),
                                                                      std::fabs(t))));
}

// numpy.percentile's default ('linear'): index q (n - 1) in the sorted values.
double percentile_linear(const std::vector<double>& sorted, double q) {
  const double h = static_cast<double>(sorted.size() - 1) * q;
  const double lo = std::floor(h);
  const size_t i = static_cast<size_t>(lo);
  if (i + 1 >= sorted.size()) return sorted.back();
  return sorted[i] + (h - lo) * (sorted[i + 1] - sorted[i]);
}

// Average ranks (1-based) of `values`, as scipy.stats.rankdata; `tie_sizes` gets the size of
// every group of equal values larger than one.
std::vector<double> average_ranks(const std::vector<double>& values,
                                  std::vector<int64_t>* tie_sizes) {
  const size_t n = values.size();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return values[a] < values[b]; });
  std::vector<double> ranks(n);
  for (size_t i = 0; i < n;) {
    size_t j = i + 1;
    while (j < n && values[order[j]] == values[order[i]]) ++j;
    const double rank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2.0;
    for (size_t k = i; k < j; ++k) ranks[order[k]] = rank;
    if (j - i > 1 && tie_sizes) tie_sizes->push_back(static_cast<int64_t>(j - i));
    i = j;
  }
  return ranks;
}

// Hedges' exact small-sample correction J(df).
double hedges_j(double df) {
  return std::exp(std::lgamma(df / 2.0) - 0.5 * std::log(df / 2.0) - std::lgamma((df - 1.0) / 2.0));
}

TestResult unavailable(const char* test, int64_t n, std::string note) {
  TestResult r;
  r.test = test;
  r.n = n;
  r.note = std::move(note);
  return r;
}

// ----------------------------------------------------------------- exact null distributions

// P(R+ = k), k = 0 .. n(n+1)/2, under the null: each rank's sign is a fair coin. Built one rank
// at a time as probabilities (dyadic, so exact in doubles up to n = 52; no overflow beyond).
std::vector<double> wilcoxon_pmf(int64_t n) {
  std::vector<double> pmf(static_cast<size_t>(n * (n + 1) / 2 + 1), 0.0);
  pmf[0] = 1.0;
  int64_t top = 0;
  for (int64_t j = 1; j <= n; ++j) {
    top += j;
    for (int64_t k = top; k >= 0; --k) {
      const double without = pmf[static_cast<size_t>(k)];
      const double with = k >= j ? pmf[static_cast<size_t>(k - j)] : 0.0;
      pmf[static_cast<size_t>(k)] = 0.5 * (without + with);
    }
  }
  return pmf;
}

// Counts of arrangements with U = k (k = 0 .. m n) for arms of sizes m and n: the coefficients
// of the Gaussian binomial [m + n choose m]_q = prod_{i=1..m} (1 - q^(n+i)) / (1 - q^i), exact in
// 128-bit integers. Returns false when C(m + n, m) might not fit.
bool mann_whitney_counts(int64_t m, int64_t n, std::vector<Int128>* counts, Int128* total) {
  if (m > n) std::swap(m, n);
  const double log2_total =
      (std::lgamma(static_cast<double>(m + n + 1)) - std::lgamma(static_cast<double>(m + 1)) -
       std::lgamma(static_cast<double>(n + 1))) /
      std::log(2.0);
  if (log2_total > 120.0) return false;
  std::vector<Int128>& c = *counts;
  c.assign(static_cast<size_t>(m * n + m + 1), 0);
  c[0] = 1;
  int64_t degree = 0;
  for (int64_t i = 1; i <= m; ++i) {
    const int64_t shift = n + i;  // multiply by (1 - q^shift)
    for (int64_t k = degree + shift; k >= shift; --k) {
      c[static_cast<size_t>(k)] -= c[static_cast<size_t>(k - shift)];
    }
    degree += shift;
    for (int64_t k = i; k <= degree; ++k) {  // divide by (1 - q^i): exact, a running sum
      c[static_cast<size_t>(k)] += c[static_cast<size_t>(k - i)];
    }
    degree -= i;
  }
  c.resize(static_cast<size_t>(m * n + 1));
  *total = 0;
  for (const Int128& v : c) *total += v;
  return true;
}

// ------------------------------------------------------------------ bootstrap internals

struct BootstrapCore {
  std::vector<double> means;  // sorted bootstrap means
  double theta = 0.0;         // the sample mean, summed the same way as the resamples
};

// Means of `resamples` resamples with replacement. Each mean is sum_i count_i x_i / n over the
// resample's multiplicities, so a resample that is a permutation of x has exactly x's mean (BCa's
// z0 compares them; summing in draw order would make that comparison depend on rounding).
BootstrapCore bootstrap_means(const std::vector<double>& x, int64_t resamples, uint64_t seed) {
  const size_t n = x.size();
  Rng rng(seed);
  BootstrapCore core;
  core.means.resize(static_cast<size_t>(resamples));
  std::vector<int64_t> counts(n);
  auto weighted_mean = [&]() {
    double s = 0.0;
    for (size_t i = 0; i < n; ++i) s += static_cast<double>(counts[i]) * x[i];
    return s / static_cast<double>(n);
  };
  for (int64_t b = 0; b < resamples; ++b) {
    std::fill(counts.begin(), counts.end(), 0);
    for (size_t i = 0; i < n; ++i) ++counts[rng.index(n)];
    core.means[static_cast<size_t>(b)] = weighted_mean();
  }
  std::fill(counts.begin(), counts.end(), 1);
  core.theta = weighted_mean();
  std::sort(core.means.begin(), core.means.end());
  return core;
}

// ------------------------------------------------------------------------- ASO internals

// numpy.arange(dt, 1, dt) exactly as numpy fills it: length ceil((1 - dt) / dt), then
// start + i * (a[1] - a[0]).
std::vector<double> aso_grid(double dt) {
  const auto length = static_cast<size_t>(std::ceil((1.0 - dt) / dt));
  std::vector<double> t(length);
  if (length == 0) return t;
  t[0] = dt;
  if (length > 1) t[1] = dt + dt;
  const double delta = length > 1 ? t[1] - t[0] : dt;
  for (size_t i = 2; i < length; ++i) t[i] = dt + static_cast<double>(i) * delta;
  return t;
}

// deepsig's quantile indices: clamp(ceil(n t) - 1, 0, n - 1).
std::vector<size_t> aso_indices(size_t n, const std::vector<double>& grid) {
  std::vector<size_t> idx(grid.size());
  for (size_t i = 0; i < grid.size(); ++i) {
    const double k = std::ceil(static_cast<double>(n) * grid[i]) - 1.0;
    idx[i] = static_cast<size_t>(std::clamp(k, 0.0, static_cast<double>(n - 1)));
  }
  return idx;
}

// deepsig's compute_violation_ratio on sorted samples.
double violation_ratio(const std::vector<double>& x_sorted, const std::vector<double>& y_sorted,
                       const std::vector<size_t>& ix, const std::vector<size_t>& iy, double dt) {
  double w2 = 0.0;
  double violation = 0.0;
  for (size_t i = 0; i < ix.size(); ++i) {
    const double fx = x_sorted[ix[i]];
    const double gy = y_sorted[iy[i]];
    const double diff = gy - fx;
    w2 += diff * diff * dt;
    // deepsig leaves the first grid point out of the violation integral (diff[1:]).
    if (i > 0 && fx < gy) violation += diff * diff * dt;
  }
  return w2 == 0.0 ? 0.5 : violation / w2;
}

}  // namespace

// ============================================================================ diverged runs

FiniteValues remove_non_finite(const std::vector<double>& x) {
  FiniteValues out;
  out.values.reserve(x.size());
  for (double v : x) {
    if (std::isfinite(v)) {
      out.values.push_back(v);
    } else {
      ++out.removed;
    }
  }
  return out;
}

FinitePairs remove_non_finite_pairs(const std::vector<double>& x, const std::vector<double>& y) {
  require_same_length(x, y);
  FinitePairs out;
  for (size_t i = 0; i < x.size(); ++i) {
    if (std::isfinite(x[i]) && std::isfinite(y[i])) {
      out.x.push_back(x[i]);
      out.y.push_back(y[i]);
    } else {
      ++out.removed;
    }
  }
  return out;
}

bool is_significant(double p_value, double alpha) {
  return !std::isnan(p_value) && p_value <= alpha;
}

// ================================================================================ per arm

double mean(const std::vector<double>& x) {
  require_finite(x, "mean");
  if (x.empty()) throw std::invalid_argument("mean of an empty sample");
  return mean_of(x);
}

double std_dev(const std::vector<double>& x) {
  require_finite(x, "std_dev");
  if (x.size() < 2) throw std::invalid_argument("std_dev needs at least 2 values");
  return std::sqrt(variance_of(x));
}

double median(const std::vector<double>& x) {
  require_finite(x, "median");
  if (x.empty()) throw std::invalid_argument("median of an empty sample");
  std::vector<double> s(x);
  std::sort(s.begin(), s.end());
  const size_t n = s.size();
  return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2.0;
}

double iqm(const std::vector<double>& x) {
  require_finite(x, "iqm");
  if (x.empty()) throw std::invalid_argument("iqm of an empty sample");
  std::vector<double> s(x);
  std::sort(s.begin(), s.end());
  const size_t cut = s.size() / 4;  // int(0.25 * n), as scipy.stats.trim_mean
  const std::vector<double> middle(s.begin() + static_cast<std::ptrdiff_t>(cut),
                                   s.end() - static_cast<std::ptrdiff_t>(cut));
  return mean_of(middle);
}

Interval t_interval(const std::vector<double>& x, double confidence) {
  require_finite(x, "t_interval");
  require_confidence(confidence);
  Interval out;
  if (static_cast<int64_t>(x.size()) < kMinSamples) return out;
  const double n = static_cast<double>(x.size());
  const double m = mean_of(x);
  const double half = t_quantile((1.0 + confidence) / 2.0, n - 1.0) * std::sqrt(variance_of(x) / n);
  out.low = m - half;
  out.high = m + half;
  out.available = true;
  return out;
}

BootstrapIntervals bootstrap_mean_ci(const std::vector<double>& x, double confidence,
                                     const BootstrapOptions& options) {
  require_finite(x, "bootstrap_mean_ci");
  require_confidence(confidence);
  require_positive(options.resamples, "bootstrap resamples");
  BootstrapIntervals out;
  if (static_cast<int64_t>(x.size()) < kMinSamples) {
    out.note = too_few("the bootstrap");
    return out;
  }
  if (all_equal(x)) {
    // Every resample has the same mean: the interval has zero width (scipy: NaN for BCa).
    out.percentile = {x.front(), x.front(), true};
    out.bca = out.percentile;
    out.note = "zero variance: zero-width intervals";
    return out;
  }
  const BootstrapCore core = bootstrap_means(x, options.resamples, options.seed);
  const double alpha = (1.0 - confidence) / 2.0;
  out.percentile = {percentile_linear(core.means, alpha),
                    percentile_linear(core.means, 1.0 - alpha), true};

  // BCa: bias correction z0 from the share of bootstrap means below the estimate (ties count
  // half), acceleration from the jackknife (Efron & Tibshirani eq. 14.15).
  const auto below = std::lower_bound(core.means.begin(), core.means.end(), core.theta);
  const auto at_or_below = std::upper_bound(core.means.begin(), core.means.end(), core.theta);
  const double share =
      static_cast<double>((below - core.means.begin()) + (at_or_below - core.means.begin())) /
      (2.0 * static_cast<double>(core.means.size()));
  if (share <= 0.0 || share >= 1.0) {
    out.note = "BCa not available: every bootstrap mean lies on one side of the sample mean";
    return out;
  }
  const double z0 = normal_quantile(share);
  const size_t n = x.size();
  const double total = sum(x);
  std::vector<double> jack(n);
  for (size_t i = 0; i < n; ++i) jack[i] = (total - x[i]) / static_cast<double>(n - 1);
  const double jack_mean = mean_of(jack);
  double num = 0.0;
  double den = 0.0;
  for (double j : jack) {
    const double u = static_cast<double>(n - 1) * (jack_mean - j);
    num += u * u * u;
    den += u * u;
  }
  const double nd = static_cast<double>(n);
  const double a = den > 0.0 ? (num / (nd * nd * nd)) / std::pow(den / (nd * nd), 1.5) / 6.0 : 0.0;
  auto adjusted = [&](double z) {
    const double s = z0 + z;
    return normal_cdf(z0 + s / (1.0 - a * s));
  };
  const double z_alpha = normal_quantile(alpha);
  const double a1 = adjusted(z_alpha);
  const double a2 = adjusted(-z_alpha);
  if (!std::isfinite(a1) || !std::isfinite(a2)) {
    out.note = "BCa not available: degenerate acceleration";
    return out;
  }
  out.bca = {percentile_linear(core.means, a1), percentile_linear(core.means, a2), true};
  return out;
}

ArmStats describe(const std::vector<double>& x, double confidence,
                  const BootstrapOptions& bootstrap) {
  require_finite(x, "describe");
  require_confidence(confidence);
  ArmStats out;
  out.n = static_cast<int64_t>(x.size());
  out.confidence = confidence;
  if (x.empty()) {
    out.note = "no values";
    return out;
  }
  out.mean = mean_of(x);
  out.median = median(x);
  out.iqm = iqm(x);
  if (out.n < kMinSamples) {
    out.note = "n = 1: std and intervals not available";
    return out;
  }
  out.std_dev = std::sqrt(variance_of(x));
  out.t_ci = t_interval(x, confidence);
  const BootstrapIntervals boot = bootstrap_mean_ci(x, confidence, bootstrap);
  out.bootstrap_percentile = boot.percentile;
  out.bootstrap_bca = boot.bca;
  out.note = boot.note;
  return out;
}

// ================================================================================== tests

TestResult paired_t_test(const std::vector<double>& x, const std::vector<double>& y) {
  require_same_length(x, y);
  require_finite(x, "paired_t_test x");
  require_finite(y, "paired_t_test y");
  const auto n = static_cast<int64_t>(x.size());
  if (n < kMinSamples) return unavailable("paired-t", n, too_few("the paired t-test"));
  const std::vector<double> d = differences(x, y);
  const double var = variance_of(d);
  if (spread_is_rounding(var, std::max(max_abs(x), max_abs(y)))) {
    return unavailable("paired-t", n,
                       "all differences are equal (zero variance): the t statistic is undefined");
  }
  TestResult r;
  r.test = "paired-t";
  r.n = n;
  r.df = static_cast<double>(n - 1);
  r.statistic = mean_of(d) / std::sqrt(var / static_cast<double>(n));
  r.p_value = t_two_sided_p(r.statistic, r.df);
  r.available = true;
  return r;
}

TestResult welch_t_test(const std::vector<double>& x, const std::vector<double>& y) {
  require_finite(x, "welch_t_test x");
  require_finite(y, "welch_t_test y");
  const auto nx = static_cast<int64_t>(x.size());
  const auto ny = static_cast<int64_t>(y.size());
  if (nx < kMinSamples || ny < kMinSamples) {
    return unavailable("welch", nx + ny, too_few("Welch's t-test"));
  }
  const double vx = variance_of(x) / static_cast<double>(nx);
  const double vy = variance_of(y) / static_cast<double>(ny);
  if (spread_is_rounding(variance_of(x), max_abs(x)) &&
      spread_is_rounding(variance_of(y), max_abs(y))) {
    return unavailable("welch", nx + ny,
                       "both arms have zero variance: the t statistic is undefined");
  }
  TestResult r;
  r.test = "welch";
  r.n = nx + ny;
  r.df = (vx + vy) * (vx + vy) /
         (vx * vx / static_cast<double>(nx - 1) + vy * vy / static_cast<double>(ny - 1));
  r.statistic = (mean_of(x) - mean_of(y)) / std::sqrt(vx + vy);
  r.p_value = t_two_sided_p(r.statistic, r.df);
  r.available = true;
  return r;
}

TestResult wilcoxon_signed_rank(const std::vector<double>& x, const std::vector<double>& y,
                                RankMethod method) {
  require_same_length(x, y);
  require_finite(x, "wilcoxon_signed_rank x");
  require_finite(y, "wilcoxon_signed_rank y");
  const auto n_pairs = static_cast<int64_t>(x.size());
  if (n_pairs < kMinSamples) return unavailable("wilcoxon", n_pairs, too_few("Wilcoxon's test"));
  const std::vector<double> d = differences(x, y);
  std::vector<double> nonzero;
  for (double v : d) {
    if (v != 0.0) nonzero.push_back(v);
  }
  const auto n = static_cast<int64_t>(nonzero.size());
  const int64_t zeros = n_pairs - n;
  if (n == 0) {
    return unavailable("wilcoxon", n_pairs,
                       "all differences are zero: no signed ranks to test (scipy raises here)");
  }
  std::vector<double> abs_d(nonzero.size());
  for (size_t i = 0; i < nonzero.size(); ++i) abs_d[i] = std::fabs(nonzero[i]);
  std::vector<int64_t> ties;
  const std::vector<double> ranks = average_ranks(abs_d, &ties);
  double r_plus = 0.0;
  double r_minus = 0.0;
  for (size_t i = 0; i < nonzero.size(); ++i) (nonzero[i] > 0 ? r_plus : r_minus) += ranks[i];

  const bool exact_allowed = zeros == 0 && ties.empty();
  if (method == RankMethod::kExact && !exact_allowed) {
    throw std::invalid_argument(
        "wilcoxon_signed_rank: the exact distribution assumes no zero and no tied differences");
  }
  TestResult r;
  r.test = "wilcoxon";
  r.n = n_pairs;
  r.statistic = std::min(r_plus, r_minus);
  r.available = true;
  r.exact = method == RankMethod::kExact ||
            (method == RankMethod::kAuto && exact_allowed && n_pairs <= kWilcoxonExactMaxN);
  if (r.exact) {
    const std::vector<double> pmf = wilcoxon_pmf(n);
    const auto k = static_cast<int64_t>(r_plus);
    if (k == static_cast<int64_t>(pmf.size() - 1) / 2) {
      r.p_value = 1.0;
    } else {
      double less = 0.0;
      double greater = 0.0;
      for (int64_t i = 0; i <= k; ++i) less += pmf[static_cast<size_t>(i)];
      for (size_t i = static_cast<size_t>(k); i < pmf.size(); ++i) greater += pmf[i];
      r.p_value = std::min(1.0, 2.0 * std::min(less, greater));
    }
  } else {
    const double nd = static_cast<double>(n);
    double var = nd * (nd + 1.0) * (2.0 * nd + 1.0);
    for (int64_t t : ties) var -= 0.5 * static_cast<double>(t * (t * t - 1));
    const double z = (r.statistic - nd * (nd + 1.0) / 4.0) / std::sqrt(var / 24.0);
    r.p_value = std::min(1.0, 2.0 * normal_sf(std::fabs(z)));
    r.note = "normal approximation";
    if (!ties.empty()) r.note += " with tie correction";
  }
  if (zeros > 0) {
    r.note += "; " + std::to_string(zeros) + " zero difference" + (zeros > 1 ? "s" : "") +
              " dropped (zero_method 'wilcox')";
  }
  return r;
}

TestResult mann_whitney_u(const std::vector<double>& x, const std::vector<double>& y,
                          RankMethod method) {
  require_finite(x, "mann_whitney_u x");
  require_finite(y, "mann_whitney_u y");
  const auto nx = static_cast<int64_t>(x.size());
  const auto ny = static_cast<int64_t>(y.size());
  if (nx < kMinSamples || ny < kMinSamples) {
    return unavailable("mann-whitney", nx + ny, too_few("the Mann-Whitney U test"));
  }
  std::vector<double> pooled(x);
  pooled.insert(pooled.end(), y.begin(), y.end());
  std::vector<int64_t> ties;
  const std::vector<double> ranks = average_ranks(pooled, &ties);
  double r1 = 0.0;
  for (int64_t i = 0; i < nx; ++i) r1 += ranks[static_cast<size_t>(i)];
  const double mn = static_cast<double>(nx) * static_cast<double>(ny);
  const double u1 = r1 - static_cast<double>(nx) * static_cast<double>(nx + 1) / 2.0;
  const double u = std::max(u1, mn - u1);

  if (method == RankMethod::kExact && !ties.empty()) {
    throw std::invalid_argument("mann_whitney_u: the exact distribution assumes no tied values");
  }
  TestResult r;
  r.test = "mann-whitney";
  r.n = nx + ny;
  r.statistic = u1;
  r.available = true;
  bool exact = method == RankMethod::kExact || (method == RankMethod::kAuto && ties.empty() &&
                                                std::min(nx, ny) <= kMannWhitneyExactMaxMin);
  if (exact) {
    std::vector<Int128> counts;
    Int128 total = 0;
    if (mann_whitney_counts(nx, ny, &counts, &total)) {
      Int128 at_least = 0;
      for (auto k = static_cast<size_t>(u); k < counts.size(); ++k) at_least += counts[k];
      const long double sf = static_cast<long double>(at_least) / static_cast<long double>(total);
      r.p_value = std::min(1.0, static_cast<double>(2.0L * sf));
      r.exact = true;
      return r;
    }
    if (method == RankMethod::kExact) {
      throw std::invalid_argument("mann_whitney_u: samples too large for the exact distribution");
    }
    r.note = "exact distribution too large to count; ";
  }
  const double n = static_cast<double>(nx + ny);
  double tie_term = 0.0;
  for (int64_t t : ties) tie_term += static_cast<double>(t * t * t - t);
  const double s = std::sqrt(mn / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0))));
  if (s == 0.0) {
    r.p_value = 1.0;  // every value tied: no evidence either way (scipy clips to 1 too)
    r.note += "all values tied";
    return r;
  }
  const double z = (u - mn / 2.0 - 0.5) / s;
  r.p_value = std::min(1.0, 2.0 * normal_sf(z));
  r.note += "normal approximation with continuity correction";
  if (!ties.empty()) r.note += " and tie correction";
  return r;
}

namespace {
// Permuted sums at or below / at or above the observed one, ties within kTieRelTol of the summed
// magnitudes, and the two-sided p of scipy.stats.permutation_test: min(1, 2 min(P<=, P>=)),
// with (count + 1) / (B + 1) for Monte Carlo (adjustment 1) and count / N when exact (0).
struct PermutationTally {
  PermutationTally(double observed_sum, const std::vector<double>& permuted)
      : observed(observed_sum) {
    double scale = 0.0;
    for (double v : permuted) scale += std::fabs(v);
    gamma = kTieRelTol * scale;
  }
  void add(double s) {
    if (s <= observed + gamma) ++less;
    if (s >= observed - gamma) ++greater;
  }
  double p_value(double trials, double adjustment) const {
    const double p_less = (static_cast<double>(less) + adjustment) / (trials + adjustment);
    const double p_greater = (static_cast<double>(greater) + adjustment) / (trials + adjustment);
    return std::min(1.0, 2.0 * std::min(p_less, p_greater));
  }
  double observed = 0.0;
  double gamma = 0.0;
  int64_t less = 0;
  int64_t greater = 0;
};
}  // namespace

TestResult permutation_test_paired(const std::vector<double>& x, const std::vector<double>& y,
                                   const PermutationOptions& options) {
  require_same_length(x, y);
  require_finite(x, "permutation_test_paired x");
  require_finite(y, "permutation_test_paired y");
  require_positive(options.resamples, "permutation resamples");
  const auto n = static_cast<int64_t>(x.size());
  if (n < kMinSamples) return unavailable("permutation", n, too_few("the permutation test"));
  const std::vector<double> d = differences(x, y);
  // The statistic mean(d') is a multiple of sum(d'); counts compare sums.
  PermutationTally tally(sum(d), d);
  TestResult r;
  r.test = "permutation";
  r.n = n;
  r.statistic = tally.observed / static_cast<double>(n);
  r.available = true;
  double trials = 0.0;
  double adjustment = 0.0;
  if (n < 63 && (int64_t{1} << n) <= options.max_exact) {
    const uint64_t count = uint64_t{1} << n;
    for (uint64_t mask = 0; mask < count; ++mask) {
      double s = 0.0;
      for (int64_t i = 0; i < n; ++i)
        s += ((mask >> i) & 1U) ? -d[static_cast<size_t>(i)] : d[static_cast<size_t>(i)];
      tally.add(s);
    }
    trials = static_cast<double>(count);
    r.exact = true;
    r.note = "exact: all " + std::to_string(count) + " sign flips of the paired differences";
  } else {
    Rng rng(options.seed);
    for (int64_t b = 0; b < options.resamples; ++b) {
      double s = 0.0;
      for (double v : d) s += rng.coin() ? -v : v;
      tally.add(s);
    }
    trials = static_cast<double>(options.resamples);
    adjustment = 1.0;
    r.note = "Monte Carlo: " + std::to_string(options.resamples) + " random sign flips, seed " +
             std::to_string(options.seed);
  }
  r.p_value = tally.p_value(trials, adjustment);
  return r;
}

TestResult permutation_test_unpaired(const std::vector<double>& x, const std::vector<double>& y,
                                     const PermutationOptions& options) {
  require_finite(x, "permutation_test_unpaired x");
  require_finite(y, "permutation_test_unpaired y");
  require_positive(options.resamples, "permutation resamples");
  const auto nx = static_cast<int64_t>(x.size());
  const auto ny = static_cast<int64_t>(y.size());
  if (nx < kMinSamples || ny < kMinSamples) {
    return unavailable("permutation", nx + ny, too_few("the permutation test"));
  }
  std::vector<double> pooled(x);
  pooled.insert(pooled.end(), y.begin(), y.end());
  const auto n = static_cast<size_t>(nx + ny);
  // mean(x') - mean(y') = S (1/nx + 1/ny) - total/ny grows with S = sum(x'): counts compare S.
  PermutationTally tally(sum(x), pooled);
  TestResult r;
  r.test = "permutation";
  r.n = nx + ny;
  r.statistic = mean_of(x) - mean_of(y);
  r.available = true;

  // C(n, nx), stopping as soon as it exceeds max_exact.
  const auto k = static_cast<size_t>(nx);
  double arrangements = 1.0;
  for (size_t i = 1; i <= k && arrangements <= static_cast<double>(options.max_exact); ++i) {
    arrangements = arrangements * static_cast<double>(n - k + i) / static_cast<double>(i);
  }
  arrangements = std::round(arrangements);
  double trials = 0.0;
  double adjustment = 0.0;
  if (arrangements <= static_cast<double>(options.max_exact)) {
    std::vector<size_t> pick(k);
    std::iota(pick.begin(), pick.end(), 0);
    while (true) {
      double s = 0.0;
      for (size_t i : pick) s += pooled[i];
      tally.add(s);
      // Next combination in lexicographic order.
      size_t i = k;
      while (i > 0 && pick[i - 1] == n - k + (i - 1)) --i;
      if (i == 0) break;
      ++pick[i - 1];
      for (size_t j = i; j < k; ++j) pick[j] = pick[j - 1] + 1;
    }
    trials = arrangements;
    r.exact = true;
    r.note = "exact: all " + std::to_string(static_cast<int64_t>(arrangements)) +
             " splits of the pooled values";
  } else {
    Rng rng(options.seed);
    std::vector<double> work;
    for (int64_t b = 0; b < options.resamples; ++b) {
      work = pooled;
      double s = 0.0;
      for (size_t i = 0; i < k; ++i) {  // partial Fisher-Yates: the first k form x'
        const size_t j = i + static_cast<size_t>(rng.index(n - i));
        std::swap(work[i], work[j]);
        s += work[i];
      }
      tally.add(s);
    }
    trials = static_cast<double>(options.resamples);
    adjustment = 1.0;
    r.note = "Monte Carlo: " + std::to_string(options.resamples) +
             " random label permutations, seed " + std::to_string(options.seed);
  }
  r.p_value = tally.p_value(trials, adjustment);
  return r;
}

// ==================================================================================== ASO

AsoResult almost_stochastic_order(const std::vector<double>& x, const std::vector<double>& y,
                                  const AsoOptions& options) {
  require_finite(x, "almost_stochastic_order x");
  require_finite(y, "almost_stochastic_order y");
  require_confidence(options.confidence);
  require_positive(options.iterations, "ASO iterations");
  require_positive(options.num_comparisons, "ASO num_comparisons");
  if (!(options.dt > 0.0 && options.dt < 0.5)) {
    throw std::invalid_argument("ASO dt must be in (0, 0.5)");
  }
  AsoResult out;
  if (static_cast<int64_t>(x.size()) < kMinSamples ||
      static_cast<int64_t>(y.size()) < kMinSamples) {
    out.note = too_few("ASO");
    return out;
  }
  const double sign = options.lower_is_better ? -1.0 : 1.0;
  std::vector<double> xs(x.size());
  std::vector<double> ys(y.size());
  for (size_t i = 0; i < x.size(); ++i) xs[i] = sign * x[i];
  for (size_t i = 0; i < y.size(); ++i) ys[i] = sign * y[i];
  const std::vector<double> grid = aso_grid(options.dt);
  const std::vector<size_t> ix = aso_indices(xs.size(), grid);
  const std::vector<size_t> iy = aso_indices(ys.size(), grid);
  std::vector<double> xr(xs);
  std::vector<double> yr(ys);
  std::sort(xr.begin(), xr.end());
  std::sort(yr.begin(), yr.end());
  out.violation_ratio = violation_ratio(xr, yr, ix, iy, options.dt);

  Rng rng(options.seed);
  const auto iterations = static_cast<size_t>(options.iterations);
  std::vector<double> samples(iterations);
  for (size_t b = 0; b < iterations; ++b) {
    for (double& v : xr) v = xs[rng.index(xs.size())];
    for (double& v : yr) v = ys[rng.index(ys.size())];
    std::sort(xr.begin(), xr.end());
    std::sort(yr.begin(), yr.end());
    samples[b] = violation_ratio(xr, yr, ix, iy, options.dt);
  }
  const double m = mean_of(samples);
  double ss = 0.0;
  for (double s : samples) ss += (s - m) * (s - m);
  const double sd = std::sqrt(ss / static_cast<double>(iterations));  // ddof 0, as np.std
  double confidence = options.confidence;
  if (options.num_comparisons > 1) {
    confidence += (1.0 - confidence) / static_cast<double>(options.num_comparisons);
  }
  out.eps_min = std::clamp(out.violation_ratio - sd * normal_quantile(1.0 - confidence), 0.0, 1.0);
  out.available = true;
  return out;
}

// =========================================================================== effect sizes

EffectSize hedges_g(const std::vector<double>& x, const std::vector<double>& y) {
  require_finite(x, "hedges_g x");
  require_finite(y, "hedges_g y");
  EffectSize out;
  out.name = "hedges_g";
  const auto nx = static_cast<double>(x.size());
  const auto ny = static_cast<double>(y.size());
  if (static_cast<int64_t>(x.size()) < kMinSamples ||
      static_cast<int64_t>(y.size()) < kMinSamples) {
    out.note = too_few("Hedges' g");
    return out;
  }
  const double df = nx + ny - 2.0;
  const double pooled = ((nx - 1.0) * variance_of(x) + (ny - 1.0) * variance_of(y)) / df;
  if (spread_is_rounding(pooled, std::max(max_abs(x), max_abs(y)))) {
    out.note = "zero variance in both arms: the standardised difference is undefined";
    return out;
  }
  out.value = hedges_j(df) * (mean_of(x) - mean_of(y)) / std::sqrt(pooled);
  out.available = true;
  return out;
}

EffectSize hedges_g_paired(const std::vector<double>& x, const std::vector<double>& y) {
  require_same_length(x, y);
  require_finite(x, "hedges_g_paired x");
  require_finite(y, "hedges_g_paired y");
  EffectSize out;
  out.name = "hedges_g_paired";
  if (static_cast<int64_t>(x.size()) < kMinSamples) {
    out.note = too_few("Hedges' g");
    return out;
  }
  if (x.size() < 3) {
    // J(1) = 0: with one degree of freedom the standardised difference has no finite mean.
    out.note = "2 pairs: Hedges' correction is 0 at df = 1, g is not available";
    return out;
  }
  const std::vector<double> d = differences(x, y);
  const double var = variance_of(d);
  if (spread_is_rounding(var, std::max(max_abs(x), max_abs(y)))) {
    out.note = "all differences are equal (zero variance): g is undefined";
    return out;
  }
  out.value = hedges_j(static_cast<double>(d.size() - 1)) * mean_of(d) / std::sqrt(var);
  out.available = true;
  return out;
}

namespace {
// (#{x_i > y_j}, #{x_i < y_j}) over all pairs, by merging the sorted samples: O(n log n).
std::pair<double, double> dominance_counts(const std::vector<double>& x,
                                           const std::vector<double>& y) {
  std::vector<double> ys(y);
  std::sort(ys.begin(), ys.end());
  double greater = 0.0;
  double less = 0.0;
  for (double v : x) {
    greater += static_cast<double>(std::lower_bound(ys.begin(), ys.end(), v) - ys.begin());
    less += static_cast<double>(ys.end() - std::upper_bound(ys.begin(), ys.end(), v));
  }
  return {greater, less};
}
}  // namespace

EffectSize cliffs_delta(const std::vector<double>& x, const std::vector<double>& y) {
  require_finite(x, "cliffs_delta x");
  require_finite(y, "cliffs_delta y");
  EffectSize out;
  out.name = "cliffs_delta";
  if (static_cast<int64_t>(x.size()) < kMinSamples ||
      static_cast<int64_t>(y.size()) < kMinSamples) {
    out.note = too_few("Cliff's delta");
    return out;
  }
  const auto [greater, less] = dominance_counts(x, y);
  out.value = (greater - less) / (static_cast<double>(x.size()) * static_cast<double>(y.size()));
  out.available = true;
  return out;
}

EffectSize prob_improvement(const std::vector<double>& x, const std::vector<double>& y,
                            bool lower_is_better) {
  require_finite(x, "prob_improvement x");
  require_finite(y, "prob_improvement y");
  EffectSize out;
  out.name = "prob_improvement";
  if (static_cast<int64_t>(x.size()) < kMinSamples ||
      static_cast<int64_t>(y.size()) < kMinSamples) {
    out.note = too_few("the probability of improvement");
    return out;
  }
  const auto [greater, less] = dominance_counts(x, y);
  const double pairs = static_cast<double>(x.size()) * static_cast<double>(y.size());
  const double ties = pairs - greater - less;
  out.value = ((lower_is_better ? less : greater) + 0.5 * ties) / pairs;
  out.available = true;
  return out;
}

MeanDifference mean_difference(const std::vector<double>& x, const std::vector<double>& y,
                               bool paired, double confidence) {
  require_finite(x, "mean_difference x");
  require_finite(y, "mean_difference y");
  require_confidence(confidence);
  MeanDifference out;
  out.paired = paired;
  double se = 0.0;
  if (paired) {
    require_same_length(x, y);
    if (static_cast<int64_t>(x.size()) < kMinSamples) {
      out.note = too_few("the difference of means");
      return out;
    }
    const std::vector<double> d = differences(x, y);
    const double n = static_cast<double>(d.size());
    out.diff = mean_of(d);
    out.df = n - 1.0;
    se = std::sqrt(variance_of(d) / n);
  } else {
    if (static_cast<int64_t>(x.size()) < kMinSamples ||
        static_cast<int64_t>(y.size()) < kMinSamples) {
      out.note = too_few("the difference of means");
      return out;
    }
    const double nx = static_cast<double>(x.size());
    const double ny = static_cast<double>(y.size());
    const double vx = variance_of(x) / nx;
    const double vy = variance_of(y) / ny;
    out.diff = mean_of(x) - mean_of(y);
    se = std::sqrt(vx + vy);
    // With both variances zero the Welch df is 0/0; any df gives the zero-width interval.
    out.df = se > 0.0 ? (vx + vy) * (vx + vy) / (vx * vx / (nx - 1.0) + vy * vy / (ny - 1.0))
                      : nx + ny - 2.0;
  }
  const double half = se > 0.0 ? t_quantile((1.0 + confidence) / 2.0, out.df) * se : 0.0;
  out.ci = {out.diff - half, out.diff + half, true};
  out.available = true;
  if (se == 0.0) out.note = "zero variance: zero-width interval";
  return out;
}

// ===================================================================== multiple comparisons

Correction parse_correction(const std::string& name) {
  if (name == "holm") return Correction::kHolm;
  if (name == "bh") return Correction::kBenjaminiHochberg;
  if (name == "bonferroni") return Correction::kBonferroni;
  if (name == "none") return Correction::kNone;
  throw std::invalid_argument("unknown correction '" + name +
                              "' (expected holm, bh, bonferroni or none)");
}

std::string to_string(Correction correction) {
  switch (correction) {
    case Correction::kHolm:
      return "holm";
    case Correction::kBenjaminiHochberg:
      return "bh";
    case Correction::kBonferroni:
      return "bonferroni";
    case Correction::kNone:
      return "none";
  }
  return "unknown";
}

std::vector<double> adjust_p_values(const std::vector<double>& p_values, Correction correction) {
  std::vector<size_t> family;  // indices of the available p-values, sorted by p below
  for (size_t i = 0; i < p_values.size(); ++i) {
    const double p = p_values[i];
    if (std::isnan(p)) continue;
    if (!(p >= 0.0 && p <= 1.0)) {
      throw std::invalid_argument("adjust_p_values: p-value " + std::to_string(i) +
                                  " is outside [0, 1]: " + std::to_string(p));
    }
    family.push_back(i);
  }
  std::vector<double> out(p_values.size(), kNaN);
  const size_t m = family.size();
  const double md = static_cast<double>(m);
  std::stable_sort(family.begin(), family.end(),
                   [&](size_t a, size_t b) { return p_values[a] < p_values[b]; });
  switch (correction) {
    case Correction::kNone:
      for (size_t i : family) out[i] = p_values[i];
      break;
    case Correction::kBonferroni:
      for (size_t i : family) out[i] = std::min(1.0, p_values[i] * md);
      break;
    case Correction::kHolm: {
      double running = 0.0;  // step-down: never below an earlier (smaller) p's adjustment
      for (size_t r = 0; r < m; ++r) {
        running = std::max(running, p_values[family[r]] * static_cast<double>(m - r));
        out[family[r]] = std::min(1.0, running);
      }
      break;
    }
    case Correction::kBenjaminiHochberg: {
      double running = 1.0;  // step-up: never above a later (larger) p's adjustment
      for (size_t r = m; r-- > 0;) {
        running = std::min(running, p_values[family[r]] / (static_cast<double>(r + 1) / md));
        out[family[r]] = std::min(1.0, running);
      }
      break;
    }
  }
  return out;
}

// ================================================================================== power

double t_test_power(double effect_size, int64_t n, bool paired, double alpha) {
  if (!std::isfinite(effect_size)) throw std::invalid_argument("effect size must be finite");
  if (!(alpha > 0.0 && alpha < 1.0)) throw std::invalid_argument("alpha must be in (0, 1)");
  if (n < 2) throw std::invalid_argument("power needs n >= 2");
  const double nd = static_cast<double>(n);
  const double df = paired ? nd - 1.0 : 2.0 * nd - 2.0;
  const double ncp = std::fabs(effect_size) * (paired ? std::sqrt(nd) : std::sqrt(nd / 2.0));
  const double crit = t_quantile(1.0 - alpha / 2.0, df);
  // An effect a thousand times the critical value (seed-wise differences that are all but
  // equal) has power 1 to double precision for any df: P(|Z| > 1000) underflows. Boost's
  // non-central t cannot evaluate such a non-centrality (it throws), so answer it here.
  if (ncp > 1000.0 * std::max(crit, 1.0)) return 1.0;
  const boost::math::non_central_t dist(df, ncp);
  return boost::math::cdf(boost::math::complement(dist, crit)) + boost::math::cdf(dist, -crit);
}

PowerResult seeds_for_power(double effect_size, bool paired, double alpha, double power,
                            int64_t max_n) {
  if (!(power > 0.0 && power < 1.0)) throw std::invalid_argument("power must be in (0, 1)");
  if (!(alpha > 0.0 && alpha < 1.0)) throw std::invalid_argument("alpha must be in (0, 1)");
  if (max_n < 2) throw std::invalid_argument("max_n must be at least 2");
  PowerResult out;
  if (std::isnan(effect_size) || effect_size == 0.0 || std::isinf(effect_size)) {
    out.note = std::isinf(effect_size) ? "infinite effect size: not a planning input"
                                       : "no effect observed: no number of seeds reaches the power";
    return out;
  }
  // Power grows with n: double until reached, then bisect for the first n that reaches it.
  int64_t lo = 1;  // largest n known to fall short (1: none tried)
  int64_t hi = 2;
  while (t_test_power(effect_size, hi, paired, alpha) < power) {
    lo = hi;
    if (hi >= max_n) {
      out.note = "more than " + std::to_string(max_n) + " seeds needed";
      return out;
    }
    hi = std::min(max_n, hi * 2);
  }
  while (hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (mid >= 2 && t_test_power(effect_size, mid, paired, alpha) >= power) {
      hi = mid;
    } else {
      lo = mid;
    }
  }
  out.n = hi;
  out.achieved = t_test_power(effect_size, hi, paired, alpha);
  out.available = true;
  return out;
}

}  // namespace ablate::results::stats
