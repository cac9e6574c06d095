#include "ablate/results/sequential.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <utility>

namespace ablate::results::stats {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
// Hedged capital (Waudby-Smith & Ramdas; confseq's hedged_cs defaults): weight of the positive
// capital process, truncation scale of the bets (lambda <= c / m, c / (1 - m)), and the prior
// pseudo-observation of the plug-in mean (1/2) and variance (1/4).
constexpr double kTheta = 0.5;
constexpr double kTruncation = 0.5;
constexpr double kPriorMean = 0.5;
constexpr double kPriorVariance = 0.25;
// min_looks_to_decide is searched up to this many looks (-1 beyond).
constexpr int64_t kMaxLooksSearched = 1000000;
// CS bounds of the betting method are found to this absolute precision on the [0, 1] scale
// (times 2 (upper - lower) on the scale of the differences).
constexpr double kBisectionTol = 1e-12;

std::string fmt(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

void require_finite_values(const std::vector<double>& v, const char* what) {
  for (size_t i = 0; i < v.size(); ++i) {
    if (!std::isfinite(v[i])) {
      throw std::invalid_argument(std::string(what) + ": value " + std::to_string(i) +
                                  " is not finite; drop diverged runs with "
                                  "remove_non_finite_pairs() / remove_non_finite() first");
    }
  }
}

void require_alpha(double alpha) {
  if (!(alpha > 0.0 && alpha < 1.0)) {
    throw std::invalid_argument("alpha must be in (0, 1), got " + fmt(alpha));
  }
}

void check_options(const SequentialOptions& o) {
  require_alpha(o.alpha);
  if (!(std::isfinite(o.equivalence_margin) && o.equivalence_margin >= 0.0)) {
    throw std::invalid_argument("equivalence_margin must be finite and >= 0, got " +
                                fmt(o.equivalence_margin));
  }
  if (o.method == SequentialMethod::kGaussianMixture) {
    if (!(std::isfinite(o.mixture_sd) && o.mixture_sd > 0.0)) {
      throw std::invalid_argument("mixture_sd must be finite and > 0, got " + fmt(o.mixture_sd));
    }
  } else {
    if (!(std::isfinite(o.lower) && std::isfinite(o.upper) && o.lower < o.upper)) {
      throw std::invalid_argument("bounded betting needs finite lower < upper, got lower = " +
                                  fmt(o.lower) + ", upper = " + fmt(o.upper));
    }
  }
}

void check_range(const std::vector<double>& v, const char* what, const SequentialOptions& o) {
  if (o.method != SequentialMethod::kBoundedBetting) return;
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] < o.lower) {
      throw std::invalid_argument(std::string(what) + ": value " + std::to_string(i) + " (" +
                                  fmt(v[i]) + ") is below lower = " + fmt(o.lower) +
                                  ", the declared range of the metric");
    }
    if (v[i] > o.upper) {
      throw std::invalid_argument(std::string(what) + ": value " + std::to_string(i) + " (" +
                                  fmt(v[i]) + ") is above upper = " + fmt(o.upper) +
                                  ", the declared range of the metric");
    }
  }
}

// ------------------------------------------------------------------- Gaussian mixture

// Half-width of {mu : E_n(mu) < 1/alpha} around the mean; +inf when every mu is inside.
// With g = 1 + n s^2 (s = mixture_sd) and D = (mean - mu)^2, E_n(mu) < 1/alpha <=>
// (q + nD) < B (q + nD/g) with B = (g / alpha^2)^(1/n) <=> nD (1 - B/g) < (B - 1) q.
double gaussian_radius(int64_t n, double q, double alpha, double mixture_sd) {
  const double nd = static_cast<double>(n);
  const double log_g = std::log1p(nd * mixture_sd * mixture_sd);
  const double log_b = (log_g - 2.0 * std::log(alpha)) / nd;
  if (log_b >= log_g) return kInf;  // E_n(mu) is bounded by (1 + n s^2)^((n-1)/2) < 1/alpha
  const double b_minus_1 = std::expm1(log_b);
  const double one_minus_b_over_g = -std::expm1(log_b - log_g);
  return std::sqrt(b_minus_1 * q / (nd * one_minus_b_over_g));
}

int64_t gaussian_min_looks(double alpha, double mixture_sd) {
  const double target = -std::log(alpha);
  for (int64_t n = 2; n <= kMaxLooksSearched; ++n) {
    const double nd = static_cast<double>(n);
    if (0.5 * (nd - 1.0) * std::log1p(nd * mixture_sd * mixture_sd) >= target) return n;
  }
  return -1;
}

// ------------------------------------------------------------------ hedged betting

// The bets' untruncated part lambda~_t, t = 1..n (predictable: lambda~_t uses z_1..z_{t-1}):
// lambda~_t = sqrt(2 log(1/alpha) / (t log(1 + t) sigma2_{t-1})),
// mu_t = (1/2 + sum_{i<=t} z_i) / (t + 1), sigma2_t = (1/4 + sum_{i<=t} (z_i - mu_i)^2) / (t + 1),
// sigma2_0 = 1/4.
std::vector<double> plug_in_bets(const std::vector<double>& z, double alpha) {
  std::vector<double> lambda(z.size());
  double sum = 0.0;
  double ss = 0.0;
  double sigma2_prev = kPriorVariance;
  const double two_log = 2.0 * std::log(1.0 / alpha);
  for (size_t i = 0; i < z.size(); ++i) {
    const double t = static_cast<double>(i + 1);
    lambda[i] = std::sqrt(two_log / (t * std::log1p(t) * sigma2_prev));
    sum += z[i];
    const double mu_t = std::min((kPriorMean + sum) / (t + 1.0), 1.0);
    ss += (z[i] - mu_t) * (z[i] - mu_t);
    sigma2_prev = (kPriorVariance + ss) / (t + 1.0);
  }
  return lambda;
}

// log K+_t(m) = sum_i log(1 + min(lambda~_i, c/m) (z_i - m)) over the first t values; log K-_t(m)
// = sum_i log(1 - min(lambda~_i, c/(1-m)) (z_i - m)). Each factor is >= 1 - c > 0.
double log_capital(const std::vector<double>& z, const std::vector<double>& lambda, size_t t,
                   double m, bool positive) {
  double log_k = 0.0;
  for (size_t i = 0; i < t; ++i) {
    double cap;
    if (positive) {
      cap = m > 0.0 ? kTruncation / m : kInf;
    } else {
      cap = m < 1.0 ? kTruncation / (1.0 - m) : kInf;
    }
    const double l = std::min(lambda[i], cap);
    const double step = positive ? l * (z[i] - m) : -l * (z[i] - m);
    log_k += std::log1p(step);
  }
  return log_k;
}

// Bisection on [0, 1] to kBisectionTol for the boundary of a monotone set; `inside(m)` is true on
// the CS side. Lower bound: K+ is non-increasing in m, so {m : theta K+(m) < 1/alpha} = (m_lo, 1];
// upper bound: K- non-decreasing, {m : (1 - theta) K-(m) < 1/alpha} = [0, m_hi). Returns the last
// point found inside, so "0 excluded" agrees with the e-value at m = 1/2.
template <typename Inside>
double boundary(Inside inside, bool lower) {
  double in = lower ? 1.0 : 0.0;
  double out = lower ? 0.0 : 1.0;
  if (inside(out)) return out;
  while (std::fabs(in - out) > kBisectionTol) {
    const double mid = 0.5 * (in + out);
    if (inside(mid)) {
      in = mid;
    } else {
      out = mid;
    }
  }
  return in;
}

int64_t betting_min_looks(double alpha) {
  // Every z = 1 (difference upper - lower): K+ at m = 1/2 grows by 1 + min(lambda~_t, 1) / 2.
  const double threshold = std::log(1.0 / (kTheta * alpha));
  double sum = 0.0;
  double ss = 0.0;
  double sigma2_prev = kPriorVariance;
  double log_k = 0.0;
  const double two_log = 2.0 * std::log(1.0 / alpha);
  for (int64_t n = 1; n <= kMaxLooksSearched; ++n) {
    const double t = static_cast<double>(n);
    const double lambda =
        std::min(std::sqrt(two_log / (t * std::log1p(t) * sigma2_prev)), kTruncation / 0.5);
    log_k += std::log1p(lambda * 0.5);
    if (n >= kMinSamples && log_k >= threshold) return n;
    sum += 1.0;
    const double mu_t = std::min((kPriorMean + sum) / (t + 1.0), 1.0);
    ss += (1.0 - mu_t) * (1.0 - mu_t);
    sigma2_prev = (kPriorVariance + ss) / (t + 1.0);
  }
  return -1;
}

// ------------------------------------------------------------------------ driver

struct LookCs {
  double e_value;
  double low;
  double high;
};

SequentialResult run(const std::vector<double>& d, const SequentialOptions& o, bool paired) {
  SequentialResult r;
  r.paired = paired;
  const bool gaussian = o.method == SequentialMethod::kGaussianMixture;
  r.method = gaussian ? "Lai/Wang-Ramdas mixture t" : "hedged betting (Waudby-Smith & Ramdas)";
  r.min_looks_to_decide =
      gaussian ? gaussian_min_looks(o.alpha, o.mixture_sd) : betting_min_looks(o.alpha);
  const auto n = static_cast<int64_t>(d.size());
  if (n < kMinSamples) {
    r.note = "a sequential comparison needs at least " + std::to_string(kMinSamples) +
             (paired ? " pairs" : " runs per arm") + ", got " + std::to_string(n);
    return r;
  }
  r.available = true;

  std::vector<LookCs> per_look;
  per_look.reserve(d.size());
  if (gaussian) {
    double mean = 0.0;
    double q = 0.0;  // Welford: sum of squared deviations from the running mean
    for (int64_t i = 0; i < n; ++i) {
      const double delta = d[static_cast<size_t>(i)] - mean;
      mean += delta / static_cast<double>(i + 1);
      q += delta * (d[static_cast<size_t>(i)] - mean);
      if (q < 0.0) q = 0.0;
      const double e = gaussian_mixture_e_value(i + 1, mean, q, 0.0, o.mixture_sd);
      const double radius = gaussian_radius(i + 1, q, o.alpha, o.mixture_sd);
      per_look.push_back({e, mean - radius, mean + radius});
    }
  } else {
    // Differences in [-R, R], R = upper - lower, rescaled to z = (d + R) / (2R) in [0, 1];
    // H0 (difference 0) is m = 1/2, and a CS [m_lo, m_hi] for E z maps to R (2m - 1).
    const double range = o.upper - o.lower;
    std::vector<double> z(d.size());
    for (size_t i = 0; i < d.size(); ++i) {
      z[i] = std::clamp((d[i] + range) / (2.0 * range), 0.0, 1.0);
    }
    const std::vector<double> lambda = plug_in_bets(z, o.alpha);
    const double threshold = std::log(1.0 / o.alpha);
    const double log_theta = std::log(kTheta);
    const double log_one_minus_theta = std::log(1.0 - kTheta);
    for (size_t t = 1; t <= z.size(); ++t) {
      const double log_plus = log_theta + log_capital(z, lambda, t, 0.5, true);
      const double log_minus = log_one_minus_theta + log_capital(z, lambda, t, 0.5, false);
      const double e = std::exp(std::max(log_plus, log_minus));
      const double m_lo = boundary(
          [&](double m) { return log_theta + log_capital(z, lambda, t, m, true) < threshold; },
          true);
      const double m_hi = boundary(
          [&](double m) {
            return log_one_minus_theta + log_capital(z, lambda, t, m, false) < threshold;
          },
          false);
      per_look.push_back({e, range * (2.0 * m_lo - 1.0), range * (2.0 * m_hi - 1.0)});
    }
  }

  double low = -kInf;
  double high = kInf;
  bool empty = false;
  r.e_value_max = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const LookCs& look = per_look[static_cast<size_t>(i)];
    SequentialLook out;
    out.n = i + 1;
    out.e_value = look.e_value;
    r.e_value_max = std::max(r.e_value_max, look.e_value);
    if (!empty) {
      low = std::max(low, look.low);
      high = std::min(high, look.high);
      if (low > high) {
        empty = true;
        r.note = "the running intersection of the confidence sequence became empty at look " +
                 std::to_string(i + 1) +
                 ": the data contradict the model (not i.i.d., drifting, or for the Gaussian "
                 "method far from normal), or a level-alpha event happened";
      }
    }
    out.cs_low = empty ? kNaN : low;
    out.cs_high = empty ? kNaN : high;
    const bool excludes_zero = empty || low > 0.0 || high < 0.0;
    if (excludes_zero && !r.decided) {
      r.decided = true;
      r.first_decided_at = i + 1;
    }
    if (!empty && o.equivalence_margin > 0.0 && low > -o.equivalence_margin &&
        high < o.equivalence_margin && !r.equivalent) {
      r.equivalent = true;
      r.first_equivalent_at = i + 1;
    }
    r.looks.push_back(out);
  }
  const SequentialLook& last = r.looks.back();
  r.e_value = last.e_value;
  r.cs_low = last.cs_low;
  r.cs_high = last.cs_high;
  if (gaussian && r.note.empty()) {
    bool all_zero = std::all_of(d.begin(), d.end(), [](double v) { return v == 0.0; });
    if (all_zero) {
      r.note =
          "every difference is 0: the e-value is 1 by convention (the scale-invariant "
          "statistic is undefined) and the confidence sequence is the point 0";
    }
  }
  if (r.note.empty() && n < r.min_looks_to_decide) {
    r.note = "no decision is possible before look " + std::to_string(r.min_looks_to_decide) +
             " at alpha = " + fmt(o.alpha);
  }
  return r;
}

}  // namespace

std::string to_string(SequentialMethod method) {
  return method == SequentialMethod::kGaussianMixture ? "gaussian-mixture" : "bounded-betting";
}

SequentialMethod parse_sequential_method(const std::string& name) {
  if (name == "gaussian-mixture" || name == "t") return SequentialMethod::kGaussianMixture;
  if (name == "bounded-betting" || name == "betting") return SequentialMethod::kBoundedBetting;
  throw std::invalid_argument("unknown sequential method '" + name +
                              "' (gaussian-mixture, bounded-betting)");
}

// E_n(mu) = (1 + n s^2)^(-1/2) ((q + nD) / (q + nD / (1 + n s^2)))^(n/2), D = (mean - mu)^2:
// the Gaussian-mixture / right-Haar likelihood ratio (see the header and the notes).
double gaussian_mixture_e_value(int64_t n, double mean, double q, double mu0, double mixture_sd) {
  if (n < 1) throw std::invalid_argument("gaussian_mixture_e_value needs n >= 1");
  if (!(std::isfinite(mean) && std::isfinite(q) && q >= 0.0 && std::isfinite(mu0))) {
    throw std::invalid_argument("gaussian_mixture_e_value needs finite mean, mu0 and q >= 0");
  }
  if (!(std::isfinite(mixture_sd) && mixture_sd > 0.0)) {
    throw std::invalid_argument("mixture_sd must be finite and > 0");
  }
  const double nd = static_cast<double>(n);
  const double nd_dev = nd * (mean - mu0) * (mean - mu0);
  if (q == 0.0 && nd_dev == 0.0) return 1.0;  // every value equals mu0: no evidence either way
  const double log_g = std::log1p(nd * mixture_sd * mixture_sd);
  const double log_e =
      -0.5 * log_g + 0.5 * nd * (std::log(q + nd_dev) - std::log(q + nd_dev * std::exp(-log_g)));
  return std::exp(log_e);
}

SequentialResult sequential_paired(const std::vector<double>& x, const std::vector<double>& y,
                                   const SequentialOptions& options) {
  check_options(options);
  if (x.size() != y.size()) {
    throw std::invalid_argument(
        "paired samples need one y per x (matched by seed): " + std::to_string(x.size()) +
        " x values, " + std::to_string(y.size()) + " y values");
  }
  require_finite_values(x, "x");
  require_finite_values(y, "y");
  check_range(x, "x", options);
  check_range(y, "y", options);
  std::vector<double> d(x.size());
  for (size_t i = 0; i < x.size(); ++i) d[i] = x[i] - y[i];
  return run(d, options, true);
}

SequentialResult sequential_unpaired(const std::vector<double>& x, const std::vector<double>& y,
                                     const SequentialOptions& options) {
  check_options(options);
  require_finite_values(x, "x");
  require_finite_values(y, "y");
  check_range(x, "x", options);
  check_range(y, "y", options);
  const size_t n = std::min(x.size(), y.size());
  std::vector<double> d(n);
  for (size_t i = 0; i < n; ++i) d[i] = x[i] - y[i];
  SequentialResult r = run(d, options, false);
  const size_t unmatched = std::max(x.size(), y.size()) - n;
  if (unmatched > 0) {
    std::string what = std::to_string(unmatched) + " run(s) of " +
                       (x.size() > y.size() ? "x" : "y") +
                       " wait for a partner (runs are paired in arrival order)";
    r.note = r.note.empty() ? what : r.note + "; " + what;
  }
  return r;
}

namespace {

void check_e_values(const std::vector<double>& e_values, double alpha) {
  require_alpha(alpha);
  for (double e : e_values) {
    if (e < 0.0) throw std::invalid_argument("an e-value must be >= 0, got " + fmt(e));
  }
}

}  // namespace

std::vector<bool> e_bonferroni(const std::vector<double>& e_values, double alpha) {
  check_e_values(e_values, alpha);
  const double k = static_cast<double>(e_values.size());
  std::vector<bool> reject(e_values.size(), false);
  for (size_t i = 0; i < e_values.size(); ++i) reject[i] = e_values[i] >= k / alpha;  // NaN: no
  return reject;
}

std::vector<bool> e_bh(const std::vector<double>& e_values, double alpha) {
  check_e_values(e_values, alpha);
  const size_t k_total = e_values.size();
  std::vector<size_t> order;
  for (size_t i = 0; i < k_total; ++i) {
    if (!std::isnan(e_values[i])) order.push_back(i);
  }
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return e_values[a] > e_values[b]; });
  // k* = max{k : e_(k) >= K / (alpha k)}; e_(k) <-> order[k - 1].
  size_t k_star = 0;
  for (size_t k = 1; k <= order.size(); ++k) {
    if (e_values[order[k - 1]] >= static_cast<double>(k_total) / (alpha * static_cast<double>(k))) {
      k_star = k;
    }
  }
  std::vector<bool> reject(k_total, false);
  for (size_t k = 0; k < k_star; ++k) reject[order[k]] = true;
  return reject;
}

}  // namespace ablate::results::stats
