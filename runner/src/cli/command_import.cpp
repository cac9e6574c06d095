#include <iostream>
#include <sstream>

#include "ablate/results/import.h"
#include "cli.h"

namespace ablate::cli {

int command_import(const std::vector<std::string>& args) {
  const CommandInfo info{
      "import", "[--db FILE] --sweep NAME --csv FILE --params a,b [--seed-col seed]",
      "Results from elsewhere (one CSV row per run) as a sweep that reports can compare.",
      "Every column that is not a param or the seed column is a metric. The CSV is checked\n"
      "whole before anything is written."};
  std::string db = "ablate.db", params;
  results::ImportOptions import;
  po::options_description options("options");
  auto add = options.add_options();
  add("db", po::value(&db)->default_value(db), "database file");
  add("sweep", po::value(&import.sweep), "name of the new sweep (required)");
  add("csv", po::value(&import.csv_path), "the CSV file (required)");
  add("params", po::value(&params), "param columns, comma-separated (required)");
  add("seed-col", po::value(&import.seed_column)->default_value(import.seed_column),
      "the seed column");
  po::variables_map vm;
  if (!parse_args(info, options, {}, {}, args, vm)) return kOk;
  for (const char* required : {"sweep", "csv", "params"}) {
    if (!vm.count(required)) {
      std::cerr << "ablate import: give --" << required << "\n" << help_text(info, options);
      return kBadInput;
    }
  }
  std::stringstream list(params);
  for (std::string p; std::getline(list, p, ',');) import.params.push_back(p);
  // The CSV is checked before the database is opened: a bad file creates no database either.
  const auto plan = results::plan_import(import);
  results::Store store(db);
  const auto result = results::write_import(store, plan);
  std::cout << "imported sweep " << result.sweep << " into " << db << ": "
            << count_of(result.jobs, "job") << " in " << count_of(result.arms, "arm");
  if (result.diverged > 0) std::cout << " (" << result.diverged << " diverged)";
  std::cout << "\nmetrics:";
  for (const auto& m : result.metrics) std::cout << " " << m;
  if (const auto& out = store.left_out_of_views(); !out.empty()) {
    std::cout << "\nwarning: the views runs and results hold at most " << results::kMaxViewColumns
              << " columns, the oldest sweeps' first: "
              << count_of(static_cast<long long>(out.size()), "key") << " (" << out.front()
              << (out.size() > 1 ? ", ..." : "")
              << ") are left out of them; their values are in the tables params and summaries "
                 "(SELECT j.id, m.name, m.value FROM summaries m JOIN jobs j ON j.pk = m.job "
                 "WHERE j.sweep = '"
              << result.sweep << "')";
  }
  std::cout << "\nnext: ablate report " << shell_word(result.sweep) << " --metric "
            << shell_word(result.metrics.front()) << "\n";
  return kOk;
}

}  // namespace ablate::cli
