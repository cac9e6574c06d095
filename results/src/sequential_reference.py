#!/usr/bin/env python3
"""Reference values for results/src/sequential_test.cpp (kept for provenance; the tests never run it).

Run once with Debian 12's scientific stack (a few seconds; the output is deterministic):
    apt-get install -y python3-scipy python3-numpy
    /usr/bin/python3 results/src/sequential_reference.py > /tmp/sequential_ref.inc
and paste the output over the generated block in sequential_test.cpp. Versions used for the
committed values: scipy 1.10.1, numpy 1.24.2 (printed in the block).

What is computed, and how independently of the C++ code:
  Gaussian mixture  E_n(0) three ways: (a) the closed form of docs/design.md (section 6, "Sequential (anytime-valid) comparisons"),
                    (b) numerical integration of the defining mixture, the likelihood ratio of
                    N(theta sigma, sigma^2) against N(0, sigma^2), theta ~ N(0, s^2), both mixed
                    over sigma with d sigma / sigma (scipy.integrate.dblquad / quad), and (c) the
                    same closed form written through the t statistic; (a) is printed after it
                    agreed with (b) to 1e-6 (quadrature error) and with (c) to 1e-12 at every n. The look-n CS
                    {mu : E_n(mu) < 1/alpha} by brentq on (a) at each end (not the C++ radius
                    formula), refined to 1e-14.
  hedged betting    a transcription of the hedged capital process with confseq's hedged_cs
                    defaults (predictable plug-in lambda, truncation 1/2 of 1/m and 1/(1-m),
                    theta = 1/2, max of the two capitals), written from the paper and the package
                    here with numpy; the CS ends by brentq on the two monotone capitals, and
                    checked against confseq's grid method (breaks = 1000: the grid CS must
                    contain the exact one and be at most 2 grid steps wider).
  e-BH / e-Bonf.    by hand in the test (no script needed).
"""

import math

import numpy as np
import scipy
from scipy import integrate, optimize

ALPHA = 0.05


# ----------------------------------------------------------------------------- Gaussian mixture

def e_closed(d, mu, s):
    d = np.asarray(d, dtype=float) - mu
    n = len(d)
    m = d.mean()
    q = float(((d - m) ** 2).sum())
    nd = n * m * m
    if q == 0 and nd == 0:
        return 1.0
    g = 1 + n * s * s
    return g ** -0.5 * ((q + nd) / (q + nd / g)) ** (n / 2)


def e_t_form(d, s):
    d = np.asarray(d, dtype=float)
    n = len(d)
    t = d.mean() / (d.std(ddof=1) / math.sqrt(n))
    g = 1 + n * s * s
    return g ** -0.5 * ((1 + t * t / (n - 1)) / (1 + t * t / ((n - 1) * g))) ** (n / 2)


def e_integral(d, s):
    """The defining ratio, integrated numerically (sigma = 1/u substituted)."""
    d = np.asarray(d, dtype=float)
    n = len(d)
    # Scale-free: divide the data by their root mean square (the ratio is scale invariant),
    # which keeps the integrands O(1).
    d = d / math.sqrt((d * d).mean())
    S = d.sum()
    V = (d * d).sum()

    def num(theta, u):
        # p_{theta sigma, sigma}(d) / p-constant * sigma^-1 d sigma = u^(n-1) exp(...) du
        return (u ** (n - 1) * math.exp(-0.5 * (V * u * u - 2 * theta * S * u + n * theta * theta))
                * math.exp(-0.5 * theta * theta / (s * s)) / (s * math.sqrt(2 * math.pi)))

    def den(u):
        return u ** (n - 1) * math.exp(-0.5 * V * u * u)

    top, _ = integrate.dblquad(num, 0, 8, -10 * s - 8, 10 * s + 8, epsabs=1e-13, epsrel=1e-11)
    bottom, _ = integrate.quad(den, 0, 8, epsabs=1e-14, epsrel=1e-12)
    return top / bottom


def gaussian_cs(d, s, alpha=ALPHA):
    d = np.asarray(d, dtype=float)
    m = d.mean()
    n = len(d)
    f = lambda mu: math.log(e_closed(d, mu, s)) - math.log(1 / alpha)
    g = 1 + n * s * s
    if (n - 1) / 2 * math.log(g) < math.log(1 / alpha):
        return -math.inf, math.inf
    sd = d.std(ddof=1) if n > 1 else 0.0
    if sd == 0:
        return m, m
    step = sd
    hi = m + step
    while f(hi) < 0:
        step *= 2
        hi = m + step
    upper = optimize.brentq(f, m, hi, xtol=1e-15, rtol=1e-15, maxiter=500)
    lo = m - step
    while f(lo) < 0:
        step *= 2
        lo = m - step
    lower = optimize.brentq(f, lo, m, xtol=1e-15, rtol=1e-15, maxiter=500)
    return lower, upper


# ------------------------------------------------------------------------------ hedged betting

def plug_in_lambdas(z, alpha=ALPHA):
    z = np.asarray(z, dtype=float)
    t = np.arange(1, len(z) + 1)
    mu = np.minimum((0.5 + np.cumsum(z)) / (t + 1), 1)
    sigma2 = (0.25 + np.cumsum((z - mu) ** 2)) / (t + 1)
    sigma2_prev = np.append(0.25, sigma2[:-1])
    return np.sqrt(2 * math.log(1 / alpha) / (t * np.log(1 + t) * sigma2_prev))


def log_caps(z, m, alpha=ALPHA):
    z = np.asarray(z, dtype=float)
    lam = plug_in_lambdas(z, alpha)
    lp = np.minimum(lam, 0.5 / m) if m > 0 else lam
    lm = np.minimum(lam, 0.5 / (1 - m)) if m < 1 else lam
    return (np.cumsum(np.log1p(lp * (z - m))), np.cumsum(np.log1p(-lm * (z - m))))


def betting_look(z, alpha=ALPHA):
    """e-value at m = 1/2 and the CS for E z after all of z."""
    thr = math.log(1 / alpha)
    lp, lm = log_caps(z, 0.5, alpha)
    e = math.exp(max(math.log(0.5) + lp[-1], math.log(0.5) + lm[-1]))
    fp = lambda m: math.log(0.5) + log_caps(z, m, alpha)[0][-1] - thr
    fm = lambda m: math.log(0.5) + log_caps(z, m, alpha)[1][-1] - thr
    m_lo = 0.0 if fp(0.0) < 0 else optimize.brentq(fp, 0.0, 1.0, xtol=1e-15, rtol=1e-15)
    m_hi = 1.0 if fm(1.0) < 0 else optimize.brentq(fm, 0.0, 1.0, xtol=1e-15, rtol=1e-15)
    return e, m_lo, m_hi


def grid_cs(z, alpha=ALPHA, breaks=1000):
    """confseq's cs_from_martingale at the last look (the grid method with its widening)."""
    ms = np.arange(0, 1 + 1 / breaks, 1 / breaks)
    inside = []
    for m in ms:
        lp, lm = log_caps(z, m, alpha)
        k = max(0.5 * math.exp(lp[-1]), 0.5 * math.exp(lm[-1]))
        inside.append(k <= 1 / alpha)
    idx = np.where(inside)[0]
    return max(0, ms[idx[0]] - 1 / breaks), min(1, ms[idx[-1]] + 1 / breaks)


def main():
    print(f"// scipy {scipy.__version__}, numpy {np.__version__}")
    # Paired differences of a loss (candidate - baseline), 12 seeds: a real effect.
    d_loss = [-0.31, -0.12, -0.45, 0.08, -0.27, -0.19, -0.38, 0.02, -0.22, -0.35, -0.09, -0.28]
    # A near-null sequence.
    d_null = [0.4, -1.1, 0.3, 0.9, -0.2, -0.6, 1.4, -0.5, 0.1, -0.3]
    print("// Gaussian mixture: n, s, e_n(0) by quadrature, CS of look n (brentq), per series")
    for name, d in (("kLossDiff", d_loss), ("kNullDiff", d_null)):
        for s in (1.0, 0.5, 2.0):
            print(f"const std::vector<GaussRef> {name}_s{str(s).replace('.', '_')} = {{")
            for n in range(1, len(d) + 1):
                dn = d[:n]
                ref = e_closed(dn, 0, s)
                if n >= 2:
                    quad = e_integral(dn, s)
                    assert abs(ref / quad - 1) < 1e-6, (n, s, ref, quad)
                    assert abs(e_t_form(dn, s) / ref - 1) < 1e-12, (n, s)
                lo, hi = gaussian_cs(dn, s)
                print(f"  {{{n}, {ref!r}, {lo!r}, {hi!r}}},".replace("inf", "kInf"))
            print("};")

    # Bounded: accuracies of two arms in [0, 1], paired by seed, 20 seeds; the candidate is
    # better by about 0.3, with seed noise (a range-sized effect, so that the CS narrows).
    rng = np.random.default_rng(20240601)
    y = np.clip(0.45 + 0.08 * rng.standard_normal(20), 0, 1).round(4)
    x = np.clip(y + 0.30 + 0.08 * rng.standard_normal(20), 0, 1).round(4)
    print("const std::vector<double> kAccX = {" + ", ".join(repr(float(v)) for v in x) + "};")
    print("const std::vector<double> kAccY = {" + ", ".join(repr(float(v)) for v in y) + "};")
    print("// bounded betting on [0, 1]: n, e_n(0), CS of look n for the mean difference")
    z = (x - y + 1) / 2
    print("const std::vector<BetRef> kAccBetting = {")
    for n in range(1, 21):
        e, m_lo, m_hi = betting_look(z[:n])
        g_lo, g_hi = grid_cs(z[:n])
        assert g_lo <= m_lo + 1e-12 and g_hi >= m_hi - 1e-12, (n, g_lo, m_lo, g_hi, m_hi)
        assert m_lo - g_lo <= 2.001e-3 and g_hi - m_hi <= 2.001e-3, (n, g_lo, m_lo, g_hi, m_hi)
        print(f"  {{{n}, {e!r}, {2 * m_lo - 1!r}, {2 * m_hi - 1!r}}},")
    print("};")
    # The same on a range [lower, upper] = [0, 100] (percent): the CS must scale by 100.
    # min looks: first n at which all-ones z decide.
    for a in (0.05, 0.01, 0.1):
        zz = np.ones(200)
        n_min = next(n for n in range(2, 200) if betting_look(zz[:n], a)[0] >= 1 / a)
        g_min = next(n for n in range(2, 10000)
                     if (n - 1) / 2 * math.log(1 + n) >= math.log(1 / a))
        print(f"// alpha {a}: betting min looks {n_min}, gaussian (s = 1) min looks {g_min}")


if __name__ == "__main__":
    main()
