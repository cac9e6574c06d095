// Cells and sentences shared by the renderers.
#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "report_parts.h"

namespace ablate::results::detail {

std::string p_text(double p) {
  if (std::isnan(p)) return "";
  if (p < 0.001) return "<0.001";
  return format_number(p, 2);
}

RowText row_text(const Report& r, size_t a) {
  const ReportArm& arm = r.arms[a];
  RowText t;
  t.n = std::to_string(arm.stats.n);
  t.mean_std = format_number(arm.stats.mean) +
               (std::isnan(arm.stats.std_dev) ? "" : " ± " + format_number(arm.stats.std_dev, 2));
  if (arm.stats.t_ci.available) {
    t.ci =
        "[" + format_number(arm.stats.t_ci.low) + ", " + format_number(arm.stats.t_ci.high) + "]";
  }
  t.iqm = format_number(arm.stats.iqm);
  if (a == r.baseline) {
    t.verdict = "baseline";
    return t;
  }
  for (const auto& c : r.comparisons) {
    if (c.arm != a) continue;
    if (c.difference.available) {
      t.diff = (c.difference.diff > 0 ? "+" : "") + format_number(c.difference.diff, 3);
      if (c.difference.ci.available) {
        t.diff_ci = "[" + format_number(c.difference.ci.low, 3) + ", " +
                    format_number(c.difference.ci.high, 3) + "]";
      }
    }
    if (c.test == "aso") {
      t.p = "eps " + format_number(c.aso.eps_min, 2) + " / " +
            format_number(c.aso_reverse.eps_min, 2);
    } else {
      t.p = p_text(c.result.p_value);
      t.p_adj = p_text(c.p_adjusted);
    }
    t.g = c.hedges_g.available ? format_number(c.hedges_g.value, 2) : "";
    t.delta = c.cliffs_delta.available ? format_number(c.cliffs_delta.value, 2) : "";
    t.prob = c.prob_improvement.available ? format_number(c.prob_improvement.value, 2) : "";
    t.power = c.seeds_for_power.available ? std::to_string(c.seeds_for_power.n) : "";
    t.verdict = c.verdict;
    t.test = c.test;
  }
  return t;
}

// The verdict comes right after the arm: it is what a reader looks for first.
const std::vector<std::string> kColumns = {
    "Arm",  "verdict", "n",      "mean ± std", "CI",        "IQM",       "Δ vs baseline",
    "Δ CI", "p",       "p adj.", "g",          "Cliff's δ", "P(better)", "seeds for 80% power"};

std::vector<std::string> row_cells(const Report& r, size_t a) {
  const RowText t = row_text(r, a);
  return {r.arms[a].label, t.verdict, t.n,     t.mean_std, t.ci,    t.iqm,  t.diff,
          t.diff_ci,       t.p,       t.p_adj, t.g,        t.delta, t.prob, t.power};
}

std::string title_of(const Report& r) {
  return "Ablation report: " + r.sweep.name + ", " + r.options.metric;
}

std::string summary_sentence(const Report& r) {
  int better = 0, worse = 0, none = 0, untested = 0;
  for (const auto& c : r.comparisons) {
    if (c.verdict == "better")
      ++better;
    else if (c.verdict == "worse")
      ++worse;
    else if (c.verdict == "no detectable difference")
      ++none;
    else
      ++untested;
  }
  std::string s = count_of(r.arms.size(), "arm") + ", " + std::to_string(r.comparisons.size()) +
                  " compared with the baseline: " + std::to_string(better) + " better, " +
                  std::to_string(worse) + " worse, " + std::to_string(none) +
                  " with no detectable difference";
  if (untested > 0) s += ", " + std::to_string(untested) + " not tested";
  return s + ".";
}

std::string relative_to(const std::string& path, const std::string& base) {
  if (base.empty()) return path;
  const std::string prefix = base.back() == '/' ? base : base + "/";
  return path.rfind(prefix, 0) == 0 ? path.substr(prefix.size()) : path;
}

std::string base64(const std::string& bytes) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t v = static_cast<uint8_t>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) v |= static_cast<uint8_t>(bytes[i + 1]) << 8;
    if (i + 2 < bytes.size()) v |= static_cast<uint8_t>(bytes[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? kAlphabet[v & 63] : '=';
  }
  return out;
}

std::string read_binary(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read figure " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace ablate::results::detail
