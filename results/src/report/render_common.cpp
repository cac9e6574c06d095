// Cells and sentences shared by the renderers.
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

#include "report_parts.h"
#include "table.h"

namespace ablate::results::detail {

std::string p_text(double p) {
  if (std::isnan(p)) return "";
  if (p < 0.001) return "<0.001";
  return format_number(p, 2);
}

std::string shown_verdict(const Report& r, const Comparison& c) {
  return r.verdicts_anytime_valid() ? c.sequential.verdict : c.verdict;
}

std::string verdict_header(const Report& r) {
  return r.verdicts_anytime_valid() ? "verdict (anytime-valid)" : "verdict";
}

namespace {

void fill_comparison(RowText& t, const Report& r, const Comparison& c) {
  if (c.difference.available) {
    t.diff = (c.difference.diff > 0 ? "+" : "") + format_number(c.difference.diff, 3);
    if (c.difference.ci.available) {
      t.diff_ci = "[" + format_number(c.difference.ci.low, 3) + ", " +
                  format_number(c.difference.ci.high, 3) + "]";
    }
  }
  if (c.test == "aso") {
    t.p =
        "eps " + format_number(c.aso.eps_min, 2) + " / " + format_number(c.aso_reverse.eps_min, 2);
  } else {
    t.p = p_text(c.result.p_value);
    t.p_adj = p_text(c.p_adjusted);
  }
  t.g = c.hedges_g.available ? format_number(c.hedges_g.value, 2) : "";
  t.delta = c.cliffs_delta.available ? format_number(c.cliffs_delta.value, 2) : "";
  t.prob = c.prob_improvement.available ? format_number(c.prob_improvement.value, 2) : "";
  t.power = c.seeds_for_power.available ? std::to_string(c.seeds_for_power.n) : "";
  t.verdict = shown_verdict(r, c);
  t.test = c.test;
}

}  // namespace

RowText arm_text(const Report& r, size_t a) {
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
  return t;
}

const Family* baseline_family(const Report& r) {
  for (const auto& f : r.families) {
    if (f.key.empty()) return &f;
  }
  return nullptr;
}

RowText row_text(const Report& r, size_t a) {
  RowText t = arm_text(r, a);
  if (a == r.baseline) {
    t.verdict = "baseline";
    return t;
  }
  const Family* base = baseline_family(r);
  for (const auto& c : r.comparisons) {
    if (base != nullptr && c.arm == a && &r.families[c.family] == base) fill_comparison(t, r, c);
  }
  return t;
}

RowText comparison_text(const Report& r, const Comparison& c) {
  RowText t = arm_text(r, c.arm);
  fill_comparison(t, r, c);
  return t;
}

std::string latex_numbers(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '-' && (i == 0 || s[i - 1] == ' ' || s[i - 1] == '[')) {
      out += "$-$";
    } else if (s[i] == '<') {
      out += "$<$";
    } else if (s.compare(i, 2, "±") == 0) {
      out += "$\\pm$";
      ++i;
    } else {
      out += s[i];
    }
  }
  return out;
}

namespace {

TableColumn column(const std::string& name, bool numeric = true, bool label = false) {
  TableColumn c;
  c.name = name;
  c.numeric = numeric;
  c.label = label;
  return c;
}

TableCell plain(const std::string& text) {
  TableCell c;
  c.text = text;
  return c;
}

// A cell of our own numbers: the same text in every format, LaTeX with its math signs.
TableCell number(const std::string& text) {
  TableCell c;
  c.text = text;
  c.latex = latex_numbers(text);
  return c;
}

}  // namespace

Table arms_table(const Report& r) {
  const std::string conf = percent(1 - r.options.alpha);
  Table table;
  table.columns = {column("Arm", false, true),
                   column(verdict_header(r), false),
                   column("n"),
                   column("mean ± std"),
                   column(conf + " CI"),
                   column("IQM"),
                   column("Δ vs baseline"),
                   column(conf + " Δ CI"),
                   column("p"),
                   column("p adj."),
                   column("g"),
                   column("Cliff's δ"),
                   column("P(better)"),
                   column("seeds for 80% power")};
  // Without a baseline family (only --compare families) the arms table describes the arms; the
  // comparisons are in each family's table.
  const bool compared = baseline_family(r) != nullptr;
  if (!compared) {
    table.columns.erase(table.columns.begin() + 1);  // verdict
    table.columns.resize(5);                         // arm, n, mean, CI, IQM
  }
  for (size_t a = 0; a < r.arms.size(); ++a) {
    const RowText t = row_text(r, a);
    TableRow row;
    row.reference = a == r.baseline;
    if (!compared) {
      row.cells = {plain(r.arms[a].label), number(t.n), number(t.mean_std), number(t.ci),
                   number(t.iqm)};
      table.rows.push_back(std::move(row));
      continue;
    }
    TableCell verdict;
    verdict.text = t.verdict;
    if (t.verdict == "better" || t.verdict == "worse") {
      verdict.strong = true;
      verdict.css_class = t.verdict;
    }
    row.cells = {plain(r.arms[a].label), verdict,           number(t.n),
                 number(t.mean_std),     number(t.ci),      number(t.iqm),
                 number(t.diff),         number(t.diff_ci), number(t.p),
                 number(t.p_adj),        number(t.g),       number(t.delta),
                 number(t.prob),         number(t.power)};
    table.rows.push_back(std::move(row));
  }
  return table;
}

Table excluded_table(const Report& r) {
  Table table;
  table.columns = {column("job", false, true), column("seed"), column("arm", false, true),
                   column("status", false), column("reason", false, true)};
  table.columns.back().abbreviate_after = 160;  // a reason reads as a sentence: it wraps
  for (const auto& e : r.excluded) {
    const std::string reason = e.reason.size() > 300 ? e.reason.substr(0, 300) + "..." : e.reason;
    TableRow row;
    row.cells = {plain(e.id), number(std::to_string(e.seed)), plain(e.arm_label), plain(e.status),
                 plain(reason)};
    table.rows.push_back(std::move(row));
  }
  return table;
}

std::string title_of(const Report& r) {
  return "Ablation report: " + r.sweep.name + ", " + r.options.metric;
}

// The anytime-valid verdicts of a family: "1 worse, 3 undecided" (kinds with none left out).
std::string sequential_counts(const Report& r, const Family& family) {
  std::map<std::string, int> n;
  for (const auto& c : r.comparisons) {
    if (&r.families[c.family] != &family) continue;
    const std::string& v = c.sequential.verdict;
    ++n[v.rfind("equivalent", 0) == 0 ? "equivalent" : v];
  }
  std::vector<std::string> parts;
  for (const char* kind : {"better", "worse", "equivalent", "undecided", "not available"}) {
    if (n[kind] > 0) parts.push_back(std::to_string(n[kind]) + " " + kind);
  }
  return parts.empty() ? "none" : join(parts, ", ");
}

std::string verdict_counts(const Report& r, const Family& family) {
  if (r.verdicts_anytime_valid()) {
    return sequential_counts(r, family) + " (anytime-valid: the sweep added seeds until decided)";
  }
  int better = 0, worse = 0, none = 0, untested = 0;
  for (const auto& c : r.comparisons) {
    if (&r.families[c.family] != &family) continue;
    if (c.verdict == "better") {
      ++better;
    } else if (c.verdict == "worse") {
      ++worse;
    } else if (c.verdict == "no detectable difference") {
      ++none;
    } else {
      ++untested;
    }
  }
  std::string s = std::to_string(better) + " better, " + std::to_string(worse) + " worse, " +
                  std::to_string(none) + " with no detectable difference";
  if (untested > 0) s += ", " + std::to_string(untested) + " not tested";
  if (r.options.sequential) s += " (anytime-valid: " + sequential_counts(r, family) + ")";
  return s;
}

size_t family_size(const Family& family) {
  size_t n = 0;
  for (const auto& g : family.groups) n += g.comparisons.size();
  return n;
}

std::string summary_sentence(const Report& r) {
  std::string s = count_of(r.arms.size(), "arm");
  if (!r.where.empty()) s += " with " + join(r.where, " and ");
  std::vector<std::string> parts;
  for (const auto& f : r.families) {
    const size_t n = family_size(f);
    if (f.key.empty()) {
      parts.push_back(std::to_string(n) + " compared with the baseline: " + verdict_counts(r, f));
    } else {
      parts.push_back(f.name + ": " + count_of(n, "comparison") + " with " + f.key + "=" +
                      f.reference_value + ": " + verdict_counts(r, f));
    }
  }
  return s + (parts.empty() ? "" : "; " + join(parts, "; ")) + ".";
}

std::string columns_sentence(const Report& r) {
  const std::string what = baseline_family(r) != nullptr ? "baseline" : "reference";
  return "Δ, g and Cliff's δ are arm minus " + what +
         "; P(better) is the probability that a run of the arm beats a run of the " + what + "." +
         (r.families.size() > (baseline_family(r) != nullptr ? 1u : 0u)
              ? " Each family below compares with its own reference."
              : "");
}

std::string family_sentence(const Report& r, const Family& f) {
  std::string s = "Each level of " + f.key + " against " + f.key + "=" + f.reference_value + " (" +
                  f.reference_reason + ") inside each cell of arms that differ only in " + f.key +
                  "; " + count_of(family_size(f), "comparison");
  if (r.options.test != TestChoice::kAso && r.options.correction != stats::Correction::kNone) {
    if (f.tested >= 2) {
      s += ", p adjusted over the family's " + std::to_string(f.tested) + " tests with " +
           stats::to_string(r.options.correction);
    } else {
      s += f.tested == 1 ? ", one test: nothing to adjust" : ", no test ran";
    }
  }
  return s + ".";
}

Table family_table(const Report& r, const Family& f) {
  Table t;
  const std::string conf = percent(1 - r.options.alpha);
  // Each header also as LaTeX: pdflatex has no glyph for a bare Δ or ±.
  const std::string conf_tex = escape_latex(conf);
  const std::string power = format_number(r.options.power * 100, 3) + "%";
  t.columns = {column(short_key(f.key, {f.key}), false, true),
               column(verdict_header(r), false),
               column("n"),
               column("mean ± std"),
               column("Δ vs reference"),
               column(conf + " Δ CI"),
               column("p"),
               column("p adj."),
               column("g"),
               column("P(better)"),
               column("seeds for " + power + " power")};
  t.columns[3].latex = "Mean $\\pm$ std";
  t.columns[4].latex = "$\\Delta$ vs reference";
  t.columns[5].latex = conf_tex + " $\\Delta$ CI";
  t.columns[7].latex = "$p_{\\mathrm{adj}}$";
  for (const auto& g : f.groups) {
    auto row = [&](size_t arm, const RowText& x, bool reference) {
      TableRow out;
      out.reference = reference;
      out.cells = {plain(arm_value(r.arms[arm], f.key)),
                   plain(x.verdict),
                   number(x.n),
                   number(x.mean_std),
                   number(x.diff),
                   number(x.diff_ci),
                   number(x.p),
                   number(x.p_adj),
                   number(x.g),
                   number(x.prob),
                   number(x.power)};
      const std::string& v = out.cells[1].text;
      if (v == "better" || v == "worse") {
        out.cells[1].strong = true;
        out.cells[1].css_class = v;
      }
      return out;
    };
    RowText ref = arm_text(r, g.reference);
    ref.verdict = "reference";
    TableRow first = row(g.reference, ref, true);
    first.group = g.label.empty() ? "all arms" : g.label;
    t.rows.push_back(first);
    for (const size_t i : g.comparisons) {
      const Comparison& c = r.comparisons[i];
      t.rows.push_back(row(c.arm, comparison_text(r, c), false));
    }
  }
  return t;
}

std::vector<std::string> family_notes(const Report& r, const Family& f) {
  std::vector<std::string> notes = f.notes;
  for (const auto& g : f.groups) {
    for (const size_t i : g.comparisons) {
      const Comparison& c = r.comparisons[i];
      if (c.note.empty()) continue;
      notes.push_back("[" + r.arms[c.arm].label + "] vs [" + r.arms[c.reference].label +
                      "]: " + c.note);
    }
  }
  return notes;
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
