#include <iostream>

#include "ablate/results/report.h"
#include "ablate/results/report_writer.h"
#include "ablate/results/stats.h"
#include "cli.h"

namespace ablate::cli {

int command_report(const std::vector<std::string>& args) {
  const CommandInfo info{
      "report", "[--db FILE] SWEEP --metric NAME [options]",
      "Which arms differ from the baseline on one metric: tests, corrections, effect sizes.",
      "SWEEP is the sweep's name (ablate status lists them). NAME is a summary metric\n"
      "(ablate query \"SELECT DISTINCT name FROM summaries\" lists them)."};
  std::string db = "ablate.db", test = "auto", correction = "holm", format = "md";
  std::vector<std::string> baseline;
  results::ReportOptions report;
  results::ReportFiles files;
  po::options_description options("options");
  auto add = options.add_options();
  add("db", po::value(&db)->default_value(db), "database file");
  add("metric", po::value(&report.metric), "summary metric, e.g. final_test_acc (required)");
  add("baseline", po::value(&baseline)->multitoken(),
      "KEY=VALUE pairs the baseline arm has (default: chosen and said in the report)");
  add("lower-is-better", po::bool_switch(&report.lower_is_better), "lower values are better");
  add("test", po::value(&test)->default_value(test),
      "auto|paired-t|welch|wilcoxon|mann-whitney|permutation|aso");
  add("correction", po::value(&correction)->default_value(correction), "holm|bh|bonferroni|none");
  add("alpha", po::value(&report.alpha)->default_value(report.alpha), "significance level");
  add("min-seeds", po::value(&report.min_seeds)->default_value(report.min_seeds),
      "fewest seeds per arm for a test");
  add("format", po::value(&format)->default_value(format),
      "md|html|tex|json, or a list md,html,tex,json with --out");
  add("out", po::value(&files.out_dir),
      "folder for report.<format> and figures/ (default: "
      "the report to stdout)");
  po::options_description hidden;
  hidden.add_options()("sweep", po::value(&report.sweep), "");
  po::positional_options_description pos;
  pos.add("sweep", 1);
  po::variables_map vm;
  if (!parse_args(info, options, hidden, pos, args, vm)) return kOk;
  if (report.sweep.empty() || report.metric.empty()) {
    std::cerr << "ablate report: give SWEEP and --metric NAME (ablate query \"SELECT DISTINCT "
                 "name FROM summaries\" lists the metrics)\n";
    return kBadInput;
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
