#!/usr/bin/env python3
"""Reference values for results/src/stats_test.cpp (kept for provenance; the tests never run it).

Run once with Debian 12's scientific stack (about 35 s; the output is deterministic):
    apt-get install -y python3-scipy python3-statsmodels python3-mpmath
    /usr/bin/python3 results/src/stats_reference.py > /tmp/stats_ref.inc
and paste the output over the lines between "// clang-format off" and "// clang-format on" under
"BEGIN GENERATED" in stats_test.cpp. Versions used for the committed values: scipy 1.10.1,
numpy 1.24.2, statsmodels 0.13.5 (printed in the generated block), mpmath 1.2.1.

Sources of each reference (all computed here independently of the C++ code):
  describe        numpy mean / std(ddof=1) / median, scipy.stats.trim_mean(x, 0.25) (IQM),
                  scipy.stats.t.interval (t interval of the mean) with the quantile refined
                  by mpmath (t_ppf below: scipy 1.10's t.ppf is only good to ~1e-10)
  bootstrap       scipy.stats.bootstrap(method='percentile' | 'BCa'); the reference is the mean of
                  kBootReps runs of kBootResamples resamples each, and the tolerance 5 standard
                  deviations of the difference between one C++ run (kBootResamples resamples, our
                  own generator) and that mean, estimated from the spread of the scipy runs
  paired t        scipy.stats.ttest_rel (statistic, p, df; confidence_interval checked, then
                  recomputed with the mpmath quantile)
  Welch t         scipy.stats.ttest_ind(equal_var=False); df and the interval by the
                  Welch-Satterthwaite formula with the mpmath t quantile
  Wilcoxon        scipy.stats.wilcoxon defaults (zero_method='wilcox', correction=False,
                  method='auto'); for ties without zeros method='approx' (scipy 1.10's 'auto' would
                  use its exact table with a truncated, tie-averaged rank sum there: see stats.h)
  Mann-Whitney U  scipy.stats.mannwhitneyu defaults (use_continuity=True, method='auto')
  permutation     scipy.stats.permutation_test, statistic mean(x) - mean(y), permutation_type
                  'samples' (paired: swaps within a pair = sign flips of x - y) or 'independent',
                  n_resamples=inf (exact) when the count is <= 100000, else Monte Carlo with
                  kPermMcResamples (the tolerance then reflects both Monte Carlo errors)
  Hedges' g       from scipy's t statistics: d = t * sqrt(1/nx + 1/ny) (ttest_ind equal_var) and
                  d_z = t_rel / sqrt(n), times the exact correction J(df) = G(df/2) /
                  (sqrt(df/2) G((df-1)/2)) (scipy.special.gammaln)
  Cliff's delta,  from scipy.stats.mannwhitneyu's U1 (ties count 1/2): delta = 2 U1/(nx ny) - 1,
  P(improvement)  P = U1/(nx ny)
  corrections     statsmodels.stats.multitest.multipletests ('holm', 'fdr_bh', 'bonferroni');
                  a NaN p-value is left out of the family (R's p.adjust convention)
  power           statsmodels TTestPower / TTestIndPower .power at integer n (smallest n >= 2
                  reaching the target) and .solve_power (the real root, printed as a comment);
                  the power values themselves by mpmath integration of the noncentral t
                  (nct_cdf below), since scipy 1.10's nct is Boost.Math's own code
  ASO             deepsig is not packaged by Debian and could not be installed here, so deepsig
                  1.2.x's aso() (deepsig/aso.py: compute_violation_ratio, get_quantile_function,
                  the seeded bootstrap) is transcribed below; the transcription reproduces the
                  README's documented example (min_eps = 0.225 for its np.random.seed(1234)
                  scores, asserted below). The README's other examples (e.g. scenario 2) predate
                  deepsig 1.2.4's confidence-level change (some are below their own violation
                  ratio, impossible with the current formula) and are not used. The violation
                  ratio is deterministic and compared tightly; eps_min is compared with a
                  Monte-Carlo tolerance (5 standard deviations of the difference, from kAsoReps
                  runs of a vectorised, checked equivalent of the transcription) for C++ runs at
                  1000 (deepsig's default) and 20000 bootstrap iterations.
"""

import math
import warnings

import mpmath
import numpy as np
import scipy
import scipy.special
import scipy.stats as st
import statsmodels
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestIndPower, TTestPower

kSeed = 20240605
kBootResamples = 20000
kBootReps = 40
kPermMcResamples = 200000
kPermExactMax = 100000
kAsoReps = 40
kAsoIters = 1000      # deepsig's default number of bootstrap iterations
kAsoRefIters = 20000  # for the reference eps_min
kCppPermResamples = 100000  # resamples of the C++ Monte Carlo permutation tests

# scipy's small-sample notes on purpose-built cases, and statsmodels' solve_power probing n < 2
# (the powers used are checked against mpmath below).
warnings.simplefilter("ignore", UserWarning)
warnings.simplefilter("ignore", RuntimeWarning)
rs = np.random.RandomState(kSeed)
out = []


def emit(line=""):
    out.append(line)


def f(v):
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    v = float(v)
    if math.isnan(v):
        return "kNaN"
    if math.isinf(v):
        return "kInf" if v > 0 else "-kInf"
    return "%.17g" % v


def vec(name, arr):
    emit("const std::vector<double> %s = {%s};" % (name, ", ".join(f(v) for v in arr)))


def t_ppf(q, df):
    # scipy 1.10's t.ppf (cdflib) is off by up to ~1e-10 relative: at df = 2 it gives
    # 4.302652729911275 for q = 0.975 where the closed form (2q - 1) sqrt(2 / (4q(1 - q))) gives
    # 4.302652729749461. Refine scipy's value with mpmath at 40 digits (the t cdf through the
    # regularised incomplete beta function).
    mpmath.mp.dps = 40
    df = mpmath.mpf(df)

    def cdf_minus_q(t):
        tail = mpmath.betainc(df / 2, mpmath.mpf(1) / 2, 0, df / (df + t * t), regularized=True) / 2
        return (1 - tail if t > 0 else tail) - mpmath.mpf(q)

    root = mpmath.findroot(cdf_minus_q, mpmath.mpf(st.t.ppf(q, float(df))))
    return float(root)


assert abs(t_ppf(0.975, 2) - 0.95 * math.sqrt(2 / (4 * 0.975 * 0.025))) < 1e-14


def r6(a):
    return np.round(np.asarray(a, dtype=float), 6)


# ----------------------------------------------------------------------------- data
sizes = [3, 5, 10, 30]
one = {n: r6(rs.normal(0.70, 0.02, n)) for n in sizes}
paired = {}
for n in sizes:
    x = r6(rs.normal(0.70, 0.02, n))
    y = r6(x - 0.006 + rs.normal(0.0, 0.01, n))
    paired[n] = (x, y)
unpaired_sizes = [(3, 3), (5, 5), (10, 8), (30, 25)]
unpaired = {}
for nx, ny in unpaired_sizes:
    unpaired[(nx, ny)] = (r6(rs.normal(0.70, 0.02, nx)), r6(rs.normal(0.69, 0.025, ny)))
skewed = r6(np.exp(rs.normal(0.0, 0.9, 12)))  # right-skewed: BCa differs from percentile

emit("// Generated by results/src/stats_reference.py (seed %d): scipy %s, numpy %s, statsmodels %s."
     % (kSeed, scipy.__version__, np.__version__, statsmodels.__version__))
for n in sizes:
    vec("kOne%d" % n, one[n])
vec("kSkewed12", skewed)
for n in sizes:
    vec("kPairX%d" % n, paired[n][0])
    vec("kPairY%d" % n, paired[n][1])
for nx, ny in unpaired_sizes:
    vec("kUnpX%d_%d" % (nx, ny), unpaired[(nx, ny)][0])
    vec("kUnpY%d_%d" % (nx, ny), unpaired[(nx, ny)][1])
emit()

# ----------------------------------------------------------------------------- describe
emit("// describe: n, mean, std (ddof 1), median, IQM (trim_mean 0.25), 95% t interval.")
emit("const DescribeRef kDescribeRefs[] = {")
for name, x in [("kOne3", one[3]), ("kOne5", one[5]), ("kOne10", one[10]), ("kOne30", one[30]),
                ("kSkewed12", skewed)]:
    n = len(x)
    m = np.mean(x)
    s = np.std(x, ddof=1)
    half = t_ppf(0.975, n - 1) * s / math.sqrt(n)
    lo, hi = m - half, m + half
    slo, shi = st.t.interval(0.95, n - 1, loc=m, scale=s / math.sqrt(n))
    assert abs(slo - lo) < 1e-8 * half and abs(shi - hi) < 1e-8 * half
    emit("    {&%s, %d, %s, %s, %s, %s, %s, %s}," % (name, n, f(m), f(s), f(np.median(x)),
                                                   f(st.trim_mean(x, 0.25)), f(lo), f(hi)))
emit("};")
emit()

# ----------------------------------------------------------------------------- bootstrap
emit("// Bootstrap CI of the mean (95%%): scipy.stats.bootstrap, mean of %d runs x %d resamples;"
     % (kBootReps, kBootResamples))
emit("// tol = 5 sd of (one run - that mean). Fields: pct low, high, tol; BCa low, high, tol.")
emit("// tol 0: every scipy run gave the same value, an atom of the discrete bootstrap")
emit("// distribution (n = 3: 10 distinct means; its 2.5% quantile is the minimum).")
emit("const BootstrapRef kBootstrapRefs[] = {")
for name, x in [("kOne3", one[3]), ("kOne5", one[5]), ("kOne10", one[10]), ("kOne30", one[30]),
                ("kSkewed12", skewed)]:
    row = []
    for method in ["percentile", "BCa"]:
        gen = np.random.default_rng(kSeed + len(x))
        lows, highs = [], []
        for _ in range(kBootReps):
            r = st.bootstrap((x,), np.mean, confidence_level=0.95, n_resamples=kBootResamples,
                             method=method, random_state=gen)
            lows.append(r.confidence_interval.low)
            highs.append(r.confidence_interval.high)
        lows, highs = np.array(lows), np.array(highs)
        sd = max(np.std(lows, ddof=1), np.std(highs, ddof=1))
        tol = 5 * sd * math.sqrt(1 + 1 / kBootReps)
        row += [np.mean(lows), np.mean(highs), tol]
    emit("    {&%s, %s}," % (name, ", ".join(f(v) for v in row)))
emit("};")
emit()

# ----------------------------------------------------------------------------- t-tests, CIs
emit("// Paired t (scipy.stats.ttest_rel): t, p, df, 95% CI of mean(x - y).")
emit("const TTestRef kPairedTRefs[] = {")
for n in sizes:
    x, y = paired[n]
    r = st.ttest_rel(x, y)
    ci = r.confidence_interval(0.95)
    d = x - y
    half = t_ppf(0.975, n - 1) * np.std(d, ddof=1) / math.sqrt(n)
    assert abs(ci.low - (np.mean(d) - half)) < 1e-8 * half
    emit("    {&kPairX%d, &kPairY%d, %s, %s, %s, %s, %s, %s}," % (
        n, n, f(r.statistic), f(r.pvalue), f(r.df), f(np.mean(d)), f(np.mean(d) - half),
        f(np.mean(d) + half)))
emit("};")
emit("// Welch t (scipy.stats.ttest_ind equal_var=False): t, p, df, 95% CI of mean(x) - mean(y).")
emit("const TTestRef kWelchRefs[] = {")
for nx, ny in unpaired_sizes:
    x, y = unpaired[(nx, ny)]
    r = st.ttest_ind(x, y, equal_var=False)
    vx, vy = np.var(x, ddof=1) / nx, np.var(y, ddof=1) / ny
    df = (vx + vy) ** 2 / (vx ** 2 / (nx - 1) + vy ** 2 / (ny - 1))
    diff = np.mean(x) - np.mean(y)
    se = math.sqrt(vx + vy)
    assert abs(diff / se - r.statistic) < 1e-12 * abs(r.statistic)
    assert abs(2 * st.t.sf(abs(diff / se), df) - r.pvalue) < 1e-14
    tq = t_ppf(0.975, df)
    assert abs(tq - st.t.ppf(0.975, df)) < 1e-8 * tq, (tq, st.t.ppf(0.975, df))
    emit("    {&kUnpX%d_%d, &kUnpY%d_%d, %s, %s, %s, %s, %s, %s}," % (
        nx, ny, nx, ny, f(r.statistic), f(r.pvalue), f(df), f(diff), f(diff - tq * se),
        f(diff + tq * se)))
emit("};")
emit()

# ----------------------------------------------------------------------------- Wilcoxon
wil_cases = []
for n in sizes:
    wil_cases.append(("kPairX%d" % n, "kPairY%d" % n, paired[n][0], paired[n][1], "auto"))
wx60 = r6(rs.normal(0.70, 0.02, 60))
wy60 = r6(wx60 - 0.004 + rs.normal(0.0, 0.01, 60))
vec("kWilX60", wx60)
vec("kWilY60", wy60)
wil_cases.append(("kWilX60", "kWilY60", wx60, wy60, "auto"))
base = np.arange(10.0, 20.0)
tie_d = np.array([0.5, -0.5, 1.0, 1.5, 1.5, -2.0, 2.5, 3.0, 3.0, 3.5])
zero_d = np.array([0.0, 0.0, 1.25, -0.5, 2.0, 2.75, 3.5, -1.0, 4.25, 5.0])
vec("kWilBase", base)
vec("kWilTiesX", base + tie_d)
vec("kWilZerosX", base + zero_d)
wil_cases.append(("kWilTiesX", "kWilBase", base + tie_d, base, "approx"))
wil_cases.append(("kWilZerosX", "kWilBase", base + zero_d, base, "auto"))
emit("// Wilcoxon signed-rank: statistic min(R+, R-), p, exact? (stats.h's kAuto rule), pairs used")
emit("// (non-zero d). kWilTiesX row: scipy's method='approx'; scipy 1.10's default there gives")
emit("// p = %.9g from its exact table with R+ truncated (see stats.h)."
     % st.wilcoxon(base + tie_d, base).pvalue)
emit("const RankRef kWilcoxonRefs[] = {")
for xn, yn, x, y, method in wil_cases:
    d = x - y
    r = st.wilcoxon(x, y, method=method)
    nz = int(np.sum(d != 0))
    ties = len(np.unique(np.abs(d[d != 0]))) != nz
    exact = len(d) <= 50 and nz == len(d) and not ties
    emit("    {&%s, &%s, %s, %s, %s, %d}," % (xn, yn, f(r.statistic), f(r.pvalue), f(exact), nz))
emit("};")
emit()

# ----------------------------------------------------------------------------- Mann-Whitney
emit("// Mann-Whitney U (scipy defaults): U1 (of x), p, exact?.")
mwu_cases = []
for nx, ny in unpaired_sizes:
    mwu_cases.append(("kUnpX%d_%d" % (nx, ny), "kUnpY%d_%d" % (nx, ny)) + unpaired[(nx, ny)])
mx8 = r6(rs.normal(0.70, 0.02, 8))
my20 = r6(rs.normal(0.69, 0.02, 20))
vec("kMwuX8", mx8)
vec("kMwuY20", my20)
mwu_cases.append(("kMwuX8", "kMwuY20", mx8, my20))
tx = np.array([1.0, 2.0, 2.0, 3.0, 4.0])
ty = np.array([2.0, 3.0, 3.0, 5.0, 6.0])
vec("kMwuTiesX", tx)
vec("kMwuTiesY", ty)
mwu_cases.append(("kMwuTiesX", "kMwuTiesY", tx, ty))
emit("const RankRef kMannWhitneyRefs[] = {")
for xn, yn, x, y in mwu_cases:
    r = st.mannwhitneyu(x, y)
    xy = np.concatenate([x, y])
    exact = (len(x) <= 8 or len(y) <= 8) and len(np.unique(xy)) == len(xy)
    emit("    {&%s, &%s, %s, %s, %s, %d}," % (xn, yn, f(r.statistic), f(r.pvalue), f(exact),
                                             len(x) + len(y)))
emit("};")
emit()


# ----------------------------------------------------------------------------- permutation
def mean_diff(a, b, axis):
    return np.mean(a, axis=axis) - np.mean(b, axis=axis)


def paired_mean_diff(a, b, axis):
    return np.mean(a - b, axis=axis)


def perm_mc_tol(p):
    # Two-sided p = 2 min(p_less, p_greater): sd = 2 sqrt(p1 (1 - p1) / B) for each of the two
    # independent Monte Carlo estimates (scipy's and the C++ test's).
    p1 = max(p / 2, 1 / kCppPermResamples)
    return 5 * 2 * math.sqrt(p1 * (1 - p1) * (1 / kCppPermResamples + 1 / kPermMcResamples))


emit("// Permutation test of mean(x) - mean(y), two-sided as scipy: statistic, p, exact?, tol")
emit("// (Monte Carlo rows: scipy with %d resamples; tol for a C++ run with %d)."
     % (kPermMcResamples, kCppPermResamples))
emit("const PermRef kPermPairedRefs[] = {")
for n in sizes:
    x, y = paired[n]
    exact = 2 ** n <= kPermExactMax
    gen = np.random.default_rng(kSeed)
    r = st.permutation_test((x, y), paired_mean_diff, permutation_type="samples",
                            n_resamples=np.inf if exact else kPermMcResamples, random_state=gen)
    p = r.pvalue
    tol = 1e-12 if exact else perm_mc_tol(p)
    emit("    {&kPairX%d, &kPairY%d, %s, %s, %s, %s}," % (n, n, f(r.statistic), f(p), f(exact),
                                                         f(tol)))
emit("};")
emit("const PermRef kPermUnpairedRefs[] = {")
for nx, ny in unpaired_sizes:
    x, y = unpaired[(nx, ny)]
    exact = math.comb(nx + ny, nx) <= kPermExactMax
    gen = np.random.default_rng(kSeed)
    r = st.permutation_test((x, y), mean_diff, permutation_type="independent",
                            n_resamples=np.inf if exact else kPermMcResamples, random_state=gen)
    p = r.pvalue
    tol = 1e-12 if exact else perm_mc_tol(p)
    emit("    {&kUnpX%d_%d, &kUnpY%d_%d, %s, %s, %s, %s}," % (nx, ny, nx, ny, f(r.statistic),
                                                             f(p), f(exact), f(tol)))
emit("};")
emit()


# ----------------------------------------------------------------------------- effect sizes
def hedges_j(df):
    return math.exp(scipy.special.gammaln(df / 2) - 0.5 * math.log(df / 2) -
                    scipy.special.gammaln((df - 1) / 2))


emit("// Effect sizes, unpaired: Hedges' g (pooled sd, exact J), Cliff's delta, P(X > Y) + P(=)/2.")
emit("const EffectRef kEffectRefs[] = {")
for nx, ny in unpaired_sizes + [(0, 0)]:
    if nx == 0:  # the tied pair
        x, y, xn, yn = tx, ty, "kMwuTiesX", "kMwuTiesY"
    else:
        x, y = unpaired[(nx, ny)]
        xn, yn = "kUnpX%d_%d" % (nx, ny), "kUnpY%d_%d" % (nx, ny)
    t = st.ttest_ind(x, y, equal_var=True).statistic
    d = t * math.sqrt(1 / len(x) + 1 / len(y))
    g = d * hedges_j(len(x) + len(y) - 2)
    u1 = st.mannwhitneyu(x, y).statistic
    nn = len(x) * len(y)
    emit("    {&%s, &%s, %s, %s, %s}," % (xn, yn, f(g), f(2 * u1 / nn - 1), f(u1 / nn)))
emit("};")
emit("// Paired Hedges' g_z = J(n - 1) * mean(d) / sd(d), from scipy.stats.ttest_rel.")
emit("const PairedEffectRef kPairedEffectRefs[] = {")
for n in sizes:
    x, y = paired[n]
    dz = st.ttest_rel(x, y).statistic / math.sqrt(n)
    emit("    {&kPairX%d, &kPairY%d, %s}," % (n, n, f(dz * hedges_j(n - 1))))
emit("};")
emit()

# ----------------------------------------------------------------------------- corrections
emit("// Multiple comparisons (statsmodels multipletests): p, holm, fdr_bh, bonferroni.")
families = [
    [0.01, 0.04, 0.03, 0.005, 0.2],
    [0.05],
    [0.02, 0.02, 0.5, 0.9, 0.001, 0.02],
    list(np.round(rs.uniform(0.0, 0.1, 10), 6)),
    [0.3, 0.8, 0.6],
    [0.01, float("nan"), 0.04, 0.03],
]
emit("const CorrectionRef kCorrectionRefs[] = {")
for fam in families:
    p = np.array(fam)
    ok = ~np.isnan(p)
    cols = []
    for method in ["holm", "fdr_bh", "bonferroni"]:
        adj = np.full(len(p), np.nan)
        adj[ok] = multipletests(p[ok], method=method)[1]
        cols.append(adj)
    emit("    {{%s}, {%s}, {%s}, {%s}}," % tuple(", ".join(f(v) for v in c)
                                           for c in [p] + cols))
emit("};")
emit()

# ----------------------------------------------------------------------------- power
def nct_cdf(t, df, delta):
    # P(T <= t) for the noncentral t, by integrating Phi(t sqrt(V/df) - delta) over V ~ chi2(df)
    # with mpmath (scipy 1.10's nct is Boost.Math's, the library the C++ code uses, so it is not
    # an independent reference on its own).
    mpmath.mp.dps = 30
    t, df, delta = mpmath.mpf(t), mpmath.mpf(df), mpmath.mpf(delta)

    def integrand(v):
        log_density = ((df / 2 - 1) * mpmath.log(v) - v / 2 - (df / 2) * mpmath.log(2) -
                       mpmath.loggamma(df / 2))
        return mpmath.ncdf(t * mpmath.sqrt(v / df) - delta) * mpmath.exp(log_density)

    sd = mpmath.sqrt(2 * df)
    cuts = [c for c in [df - 12 * sd, df - 4 * sd, df, df + 4 * sd, df + 12 * sd] if c > 0]
    return mpmath.quad(integrand, [0] + sorted(set(cuts)) + [mpmath.inf])


def exact_power(es, n, paired, alpha=0.05):
    df = n - 1 if paired else 2 * n - 2
    delta = es * math.sqrt(n if paired else n / 2)
    crit = t_ppf(1 - alpha / 2, df)
    return float(1 - nct_cdf(crit, df, delta) + nct_cdf(-crit, df, delta))


emit("// Power (alpha 0.05 two-sided, target 0.8): effect, paired?, smallest n, power(n),")
emit("// power(n - 1). n from statsmodels TTestPower / TTestIndPower (ratio 1) at integer n; the")
emit("// powers by mpmath integration (statsmodels agrees to 1e-8: its t quantile is scipy's).")
emit("const PowerRef kPowerRefs[] = {")
for paired_flag in [True, False]:
    solver = TTestPower() if paired_flag else TTestIndPower()
    for es in [0.3, 0.5, 0.8, 1.0, 1.5, 2.5]:
        def pw(n):
            if paired_flag:
                return solver.power(effect_size=es, nobs=n, alpha=0.05)
            return solver.power(effect_size=es, nobs1=n, alpha=0.05, ratio=1.0)
        n = 2
        while pw(n) < 0.8:
            n += 1
        root = (solver.solve_power(effect_size=es, nobs=None, alpha=0.05, power=0.8) if paired_flag
                else solver.solve_power(effect_size=es, nobs1=None, alpha=0.05, power=0.8,
                                        ratio=1.0))
        at_n = exact_power(es, n, paired_flag)
        before = exact_power(es, n - 1, paired_flag) if n > 2 else float("nan")
        assert abs(at_n - pw(n)) < 1e-8 and at_n >= 0.8
        assert n == 2 or (abs(before - pw(n - 1)) < 1e-8 and before < 0.8)
        emit("    {%s, %s, %d, %s, %s},  // solve_power: %.6f" % (f(es), f(paired_flag), n, f(at_n),
                                                                f(before), root))
emit("};")
emit()


# ----------------------------------------------------------------------------- ASO (deepsig)
def deepsig_quantile_function(scores):
    # Transcribed from deepsig/aso.py get_quantile_function (1.2.x).
    def _quantile_function(p):
        cdf = np.sort(scores)
        num = len(scores)
        index = int(np.ceil(num * p))
        return cdf[np.clip(index - 1, 0, num - 1)]
    return np.vectorize(_quantile_function)


def deepsig_violation_ratio(scores_a, scores_b, dt=0.005):
    # Transcribed from deepsig/aso.py compute_violation_ratio (1.2.x), including its [1:].
    qa = deepsig_quantile_function(scores_a)
    qb = deepsig_quantile_function(scores_b)
    t = np.arange(dt, 1, dt)
    fa = qa(t)
    gb = qb(t)
    diff = gb - fa
    w2 = np.sum(diff ** 2 * dt)
    diff[fa >= gb] = 0
    iv = np.sum(diff[1:] ** 2 * dt)
    return 0.5 if w2 == 0 else iv / w2


def deepsig_aso(scores_a, scores_b, confidence_level=0.95, iters=1000, dt=0.005, seed=None):
    # Transcribed from deepsig/aso.py aso() with num_jobs=1 and num_comparisons=1.
    vr = deepsig_violation_ratio(scores_a, scores_b, dt)
    qa = deepsig_quantile_function(scores_a)
    qb = deepsig_quantile_function(scores_b)
    seeds = [None] * iters if seed is None else [seed + o for o in range(1, iters + 1)]
    samples = []
    for s in seeds:
        if s is not None:
            np.random.seed(s)
        sa = qa(np.random.uniform(0, 1, len(scores_a)))
        sb = qb(np.random.uniform(0, 1, len(scores_b)))
        samples.append(deepsig_violation_ratio(sa, sb, dt))
    samples = np.array(samples)
    const = np.sqrt(len(scores_a) * len(scores_b) / (len(scores_a) + len(scores_b)))
    sigma_hat = np.std(const * (samples - vr))
    return float(np.clip(vr - (1 / const) * sigma_hat * st.norm.ppf(1 - confidence_level), 0, 1))


def fast_vr_rows(ra, rb, dt=0.005):
    # Vectorised deepsig_violation_ratio over the rows of ra and rb (same quantile rule).
    t = np.arange(dt, 1, dt)
    ia = np.clip(np.ceil(ra.shape[1] * t).astype(int) - 1, 0, ra.shape[1] - 1)
    ib = np.clip(np.ceil(rb.shape[1] * t).astype(int) - 1, 0, rb.shape[1] - 1)
    fa = np.sort(ra, axis=1)[:, ia]
    gb = np.sort(rb, axis=1)[:, ib]
    diff = gb - fa
    w2 = np.sum(diff ** 2 * dt, axis=1)
    diff[fa >= gb] = 0
    iv = np.sum(diff[:, 1:] ** 2 * dt, axis=1)
    return np.where(w2 == 0, 0.5, iv / np.where(w2 == 0, 1, w2))


def fast_eps(a, b, iters, gen):
    # deepsig_aso's bootstrap, vectorised: resampling with replacement is what deepsig's
    # quantile_func(uniform(0, 1, n)) does.
    a, b = np.asarray(a), np.asarray(b)
    vr = fast_vr_rows(a[None, :], b[None, :])[0]
    samples = fast_vr_rows(a[gen.integers(0, len(a), (iters, len(a)))],
                           b[gen.integers(0, len(b), (iters, len(b)))])
    return float(np.clip(vr + st.norm.ppf(0.95) * np.std(samples), 0, 1))


np.random.seed(1234)
readme_a = np.random.normal(loc=0.9, scale=0.8, size=5)
readme_b = np.random.normal(loc=0, scale=1, size=5)
readme_eps = deepsig_aso(readme_a, readme_b, seed=1234)
assert abs(readme_eps - 0.225) < 5e-4, readme_eps  # deepsig README: "min_eps = 0.225"
vec("kAsoReadmeA", readme_a)
vec("kAsoReadmeB", readme_b)
emit("// deepsig README example (np.random.seed(1234) scores): documented min_eps = 0.225; the")
emit("// transcription gives %.6f with deepsig's own seeding." % readme_eps)

# The vectorised violation ratio equals the transcribed one on the same resamples.
gen = np.random.default_rng(1)
ra = readme_a[gen.integers(0, 5, (50, 5))]
rb = readme_b[gen.integers(0, 5, (50, 5))]
fast = fast_vr_rows(ra, rb)
for i in range(50):
    assert abs(deepsig_violation_ratio(ra[i], rb[i]) - fast[i]) < 1e-12, i

shift = r6(one[10] + 0.5)
aso_cases = [
    ("kAsoReadmeA", "kAsoReadmeB", readme_a, readme_b),
    ("kUnpX5_5", "kUnpY5_5", unpaired[(5, 5)][0], unpaired[(5, 5)][1]),
    ("kUnpY5_5", "kUnpX5_5", unpaired[(5, 5)][1], unpaired[(5, 5)][0]),
    ("kUnpX10_8", "kUnpY10_8", unpaired[(10, 8)][0], unpaired[(10, 8)][1]),
    ("kUnpX30_25", "kUnpY30_25", unpaired[(30, 25)][0], unpaired[(30, 25)][1]),
    ("kOne10", "kOne10", one[10], one[10]),
    ("kAsoShifted10", "kOne10", shift, one[10]),
]
vec("kAsoShifted10", shift)
emit("// ASO (deepsig 1.2 semantics, confidence 0.95, dt 0.005): violation ratio (exact), eps_min")
emit("// at %d iterations, tol for one run at %d iterations, tol for one run at %d iterations"
     % (kAsoRefIters, kAsoIters, kAsoRefIters))
emit("// (5 sd of the difference, the sd from %d runs each)." % kAsoReps)
emit("const AsoRef kAsoRefs[] = {")
for an, bn, a, b in aso_cases:
    vr = deepsig_violation_ratio(a, b)
    gen = np.random.default_rng(kSeed)
    eps_ref = fast_eps(a, b, kAsoRefIters, gen)
    sd_big = np.std([fast_eps(a, b, kAsoRefIters, gen) for _ in range(kAsoReps)], ddof=1)
    sd_small = np.std([fast_eps(a, b, kAsoIters, gen) for _ in range(kAsoReps)], ddof=1)
    tol_small = max(5 * math.sqrt(sd_small ** 2 + sd_big ** 2), 1e-9)
    tol_big = max(5 * math.sqrt(2) * sd_big, 1e-9)
    if an == "kAsoReadmeA":  # the vectorised bootstrap agrees with deepsig's own seeded one
        assert abs(eps_ref - readme_eps) < tol_small
    emit("    {&%s, &%s, %s, %s, %s, %s}," % (an, bn, f(vr), f(eps_ref), f(tol_small), f(tol_big)))
emit("};")

print("\n".join(out))
