#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <sstream>
#include <utility>

#include "ablate/results/figures.h"
#include "ablate/results/report.h"
#include "ablate/results/report_writer.h"
#include "ablate/results/stats.h"
#include "ablate/results/store.h"
#include "ablate/runner/question.h"
#include "ablate/runner/sweep.h"
#include "cli.h"

namespace ablate::cli {

namespace {

// The whole of `text` as a finite number.
bool parse_double(const std::string& text, double* out) {
  if (text.empty()) return false;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || !std::isfinite(v)) return false;
  *out = v;
  return true;
}

// A number as the shortest text that reads back the same.
std::string format_number_text(double x) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, x);
  return std::string(buf, r.ptr);
}

// Without --metric: the sweep file's `report:` question (stored with the sweep) gives the
// defaults of every flag not given, and a sweep run until decided is reported --sequential. False
// when the sweep has no stored question (or its stored file no longer parses: then --metric is
// needed as before).
struct FlagTexts {
  std::vector<std::string>& baseline;
  std::vector<std::string>& where;
  std::vector<std::string>& compare;
  std::vector<std::string>& reference;
  bool& lower;
  bool& higher;
  std::string& correction;
  std::string& bounds;
  std::string& sequential_method;
  bool& reference_from_file;  // set when `reference` holds the file's reference: level
  bool& compare_from_file;    // set when `compare` holds the file's compare: keys
};
bool apply_stored_question(const std::string& db, const po::variables_map& vm,
                           results::ReportOptions& report, FlagTexts flags) {
  std::optional<runner::SweepSpec> spec;
  try {
    results::Store store(db, results::StoreOptions{/*read_only=*/true});
    const auto row = store.sweep(report.sweep);
    if (!row) return false;
    spec = runner::parse_sweep(row->yaml, "the stored sweep file of " + report.sweep);
  } catch (const std::exception&) {
    return false;
  }
  const runner::ReportQuestion& q = spec->report;
  if (!q.given) return false;
  auto absent = [&](const char* flag) { return vm.count(flag) == 0 || vm[flag].defaulted(); };
  report.metric = q.metric;
  if (absent("baseline")) {
    for (const auto& [k, v] : q.baseline) flags.baseline.push_back(k + "=" + v);
    if (!q.baseline.empty()) report.baseline_given_in = runner::kGivenInSweepFile;
  }
  if (absent("where")) {
    for (const auto& [k, v] : q.where) flags.where.push_back(k + "=" + v);
    if (!q.where.empty()) report.where_given_in = runner::kGivenInSweepFile;
  }
  if (absent("compare")) {
    flags.compare = q.compare;
    flags.compare_from_file = !q.compare.empty();
  }
  if (absent("reference") && !q.reference.empty() && !q.compare.empty()) {
    flags.reference.push_back(q.compare.front() + "=" + q.reference);
    flags.reference_from_file = true;
  }
  if (!flags.lower && !flags.higher && !q.direction.empty()) {
    (q.direction == "lower" ? flags.lower : flags.higher) = true;
  }
  if (absent("alpha")) report.alpha = q.alpha;
  if (absent("correction")) flags.correction = q.correction;
  if (absent("equivalence-margin")) report.equivalence_margin = q.equivalence_margin;
  if (absent("bounds") && q.has_bounds) {
    flags.bounds = format_number_text(q.lower) + "," + format_number_text(q.upper);
  }
  if (absent("sequential-method")) flags.sequential_method = q.method;
  if (spec->sequential.enabled) report.sequential = true;
  return true;
}

}  // namespace

int command_report(const std::vector<std::string>& args) {
  const CommandInfo info{
      "report", "[--db FILE] SWEEP [--metric NAME] [options]",
      "Which arms differ from the baseline on one metric: tests, corrections, effect sizes.",
      "SWEEP is the sweep's name (ablate status lists them). NAME is a summary metric\n"
      "(a mistyped one is answered with the sweep's metrics). Without --metric, the sweep file's\n"
      "report: block gives the metric and the defaults of the other flags (and --sequential\n"
      "for a sweep run with seeds until decided). Without --compare every arm is\n"
      "compared with the baseline; --compare KEY compares each level of KEY with its reference\n"
      "inside every cell of arms that differ only in KEY (one corrected family per --compare).\n"
      "Examples:\n"
      "  ablate report quickstart --metric final_test_acc --out report\n"
      "  ablate report lm --metric final_val_loss --compare attention.kv_heads --reference 4\n"
      "  ablate report lm --metric final_val_loss --where attention.variant=dgqa \\\n"
      "      --compare attention.ema_window --compare attention.dgqa_mode\n"
      "--sequential adds anytime-valid comparisons: an e-value and a confidence sequence per\n"
      "comparison, valid at every look (one look per seed, ascending) whatever the stopping\n"
      "rule; hedged betting on the metric's range (--bounds, else 0,1 for acc/accuracy/match\n"
      "metrics), the Gaussian mixture t for unbounded metrics; --correction holm and bonferroni\n"
      "use e-Bonferroni, bh uses e-BH.\n"
      "  ablate report lm --metric final_val_loss --sequential --format json\n"
      "  ablate report quickstart --metric final_test_acc --sequential --bounds 0.5,1 \\\n"
      "      --equivalence-margin 0.01"};
  std::string db = "ablate.db", test = "auto", correction = "holm", format = "md", cost = "auto";
  std::string bounds, sequential_method;
  std::vector<std::string> baseline, where, compare, reference;
  bool lower = false, higher = false;
  bool reference_from_file = false, compare_from_file = false;
  results::ReportOptions report;
  results::ReportFiles files;
  po::options_description options("options");
  auto add = options.add_options();
  add("db", po::value(&db)->default_value(db), "database file");
  add("metric", po::value(&report.metric), "summary metric, e.g. final_test_acc (required)");
  add("baseline", po::value(&baseline)->multitoken(),
      "KEY=VALUE pairs the baseline arm has (default: chosen and said in the report)");
  add("compare", po::value(&compare)->composing(),
      "KEY: compare each level of KEY with a reference level inside every cell (repeatable)");
  add("reference", po::value(&reference)->composing(),
      "VALUE (one --compare) or KEY=VALUE: the reference level (default: the baseline arm's "
      "level, else the first)");
  add("where", po::value(&where)->composing(),
      "KEY=VALUE: only the arms with this value (repeatable)");
  add("lower-is-better", po::bool_switch(&lower),
      "lower values are better (default: read from the metric's name)");
  add("higher-is-better", po::bool_switch(&higher),
      "higher values are better (default: read from the metric's name)");
  add("test", po::value(&test)->default_value(test),
      "auto|paired-t|welch|wilcoxon|mann-whitney|permutation|aso");
  add("correction", po::value(&correction)->default_value(correction), "holm|bh|bonferroni|none");
  add("alpha", po::value(&report.alpha)->default_value(report.alpha), "significance level");
  add("min-seeds", po::value(&report.min_seeds)->default_value(report.min_seeds),
      "fewest seeds per arm for a test");
  add("sequential", po::bool_switch(&report.sequential),
      "also anytime-valid comparisons: e-values and confidence sequences, valid at every look");
  add("bounds", po::value(&bounds),
      "LO,HI: the metric's range for --sequential (default: 0,1 for acc/accuracy/match, else "
      "unbounded)");
  add("sequential-method", po::value(&sequential_method),
      "gaussian-mixture|bounded-betting (default: bounded-betting when the range is known)");
  add("equivalence-margin",
      po::value(&report.equivalence_margin)->default_value(report.equivalence_margin),
      "M >= 0: --sequential also says equivalent when the sequence lies in (-M, M)");
  add("format", po::value(&format)->default_value(format),
      "md|html|tex|json, or a list md,html,tex,json with --out");
  add("cost", po::value(&cost)->default_value(cost),
      "quality-vs-cost figure's x axis: auto|parameters|throughput|kv-cache");
  add("panels", po::value(&files.figures.panel_key),
      "KEY: learning curves in one panel per value of KEY (default: per variant past 6 arms)");
  add("out", po::value(&files.out_dir),
      "folder for report.<format> and figures/ (default: "
      "the report to stdout)");
  po::options_description hidden;
  hidden.add_options()("sweep", po::value(&report.sweep), "");
  po::positional_options_description pos;
  pos.add("sweep", 1);
  po::variables_map vm;
  if (!parse_args(info, options, hidden, pos, args, vm)) return kOk;
  if (!report.sweep.empty() && report.metric.empty()) {
    apply_stored_question(db, vm, report,
                          {baseline, where, compare, reference, lower, higher, correction, bounds,
                           sequential_method, reference_from_file, compare_from_file});
  }
  if (report.sweep.empty() || report.metric.empty()) {
    std::cerr << "ablate report: give SWEEP and --metric NAME (ablate query \"SELECT DISTINCT "
                 "name FROM summaries\" lists the metrics; a sweep file's report: block gives "
                 "the default)\n";
    return kBadInput;
  }
  if (lower && higher) {
    std::cerr << "ablate report: give one of --lower-is-better and --higher-is-better\n";
    return kBadInput;
  }
  if (lower || higher) report.lower_is_better = lower;
  for (const auto& pair : where) {
    const auto eq = pair.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::cerr << "ablate report: --where " << pair << ": expected KEY=VALUE\n";
      return kBadInput;
    }
    report.where.emplace_back(pair.substr(0, eq), pair.substr(eq + 1));
  }
  for (const auto& key : compare) {
    results::CompareSpec spec;
    spec.key = key;
    if (compare_from_file) spec.key_given_in = runner::kGivenInSweepFile;
    report.compare.push_back(spec);
  }
  for (const auto& ref : reference) {
    const auto eq = ref.find('=');
    // KEY=VALUE names its family; a bare VALUE needs exactly one --compare to belong to.
    std::string key = eq == std::string::npos ? "" : ref.substr(0, eq);
    std::string value = eq == std::string::npos ? ref : ref.substr(eq + 1);
    // The family whose --compare key the reference's key names (results::names_key).
    auto family =
        std::find_if(report.compare.begin(), report.compare.end(),
                     [&](const results::CompareSpec& c) { return results::names_key(c.key, key); });
    if (key.empty() || family == report.compare.end()) {
      if (report.compare.size() != 1) {
        std::cerr << "ablate report: --reference " << ref << ": "
                  << (report.compare.empty()
                          ? "needs a --compare KEY"
                          : "with several --compare flags, write --reference KEY=VALUE")
                  << "\n";
        return kBadInput;
      }
      family = report.compare.begin();
      value = ref;  // a value that contains '=' is still the value
    }
    if (family->reference) {
      std::cerr << "ablate report: --reference for " << family->key << " given twice\n";
      return kBadInput;
    }
    family->reference = value;
    if (reference_from_file) family->reference_given_in = runner::kGivenInSweepFile;
  }
  for (const auto& pair : baseline) {
    const auto eq = pair.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::cerr << "ablate report: --baseline " << pair
                << ": expected KEY=VALUE (put SWEEP before --baseline)\n";
      return kBadInput;
    }
    report.baseline.emplace_back(pair.substr(0, eq), pair.substr(eq + 1));
  }
  report.test = results::parse_test_choice(test);
  try {
    report.correction = results::stats::parse_correction(correction);
  } catch (const std::invalid_argument&) {
    std::cerr << "ablate report: --correction " << correction
              << ": expected holm, bh, bonferroni or none\n";
    return kBadInput;
  }
  const bool margin_given =
      vm.count("equivalence-margin") > 0 && !vm["equivalence-margin"].defaulted();
  if (!report.sequential && (!bounds.empty() || !sequential_method.empty() || margin_given)) {
    std::cerr << "ablate report: --bounds, --sequential-method and --equivalence-margin need "
                 "--sequential\n";
    return kBadInput;
  }
  if (!bounds.empty()) {
    const auto comma = bounds.find(',');
    double lo = 0, hi = 0;
    if (comma == std::string::npos || !parse_double(bounds.substr(0, comma), &lo) ||
        !parse_double(bounds.substr(comma + 1), &hi) || !(lo < hi)) {
      std::cerr << "ablate report: --bounds " << bounds
                << ": expected LO,HI, two finite numbers with LO < HI (e.g. 0,1)\n";
      return kBadInput;
    }
    report.bounds = std::make_pair(lo, hi);
  }
  if (!sequential_method.empty()) {
    try {
      report.sequential_method = results::stats::parse_sequential_method(sequential_method);
    } catch (const std::invalid_argument&) {
      std::cerr << "ablate report: --sequential-method " << sequential_method
                << ": expected gaussian-mixture or bounded-betting\n";
      return kBadInput;
    }
  }
  if (!(report.equivalence_margin >= 0 && std::isfinite(report.equivalence_margin))) {
    std::cerr << "ablate report: --equivalence-margin " << report.equivalence_margin
              << ": must be a finite number >= 0\n";
    return kBadInput;
  }
  files.figures.cost = results::parse_cost_axis(cost);
  files.formats = results::parse_formats(format);  // several without --out: write_report says so
  const auto store = open_read_only(db, "report");
  if (!store) return kBadInput;
  const auto built = results::build_report(*store, report);
  for (const auto& w : built.warnings) std::cerr << "ablate report: warning: " << w << "\n";
  const auto written = results::write_report(built, files);
  for (const auto& n : written.notes) std::cerr << "ablate report: " << n << "\n";
  if (files.out_dir.empty()) {
    std::cout << written.text;
  } else {
    std::cout << "report of sweep " << built.sweep.name << " on " << report.metric << ":\n";
    for (const auto& f : written.files) std::cout << "  " << f << "\n";
  }
  return kOk;
}

}  // namespace ablate::cli
