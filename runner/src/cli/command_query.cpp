#include <iostream>

#include "ablate/results/query.h"
#include "cli.h"

namespace ablate::cli {

int command_query(const std::vector<std::string>& args) {
  const CommandInfo info{
      "query", "[--db FILE] \"SELECT ...\" [--format table|csv|json]",
      "Read-only SQL over the results database.",
      "Tables: sweeps, jobs, params, metrics, summaries, environment. Views: runs (one row per\n"
      "job, params as columns), results (runs plus summary metrics as columns), curves (metric\n"
      "curves). The README's schema section describes every column. Nothing can be written."};
  std::string db = "ablate.db", format = "table", sql;
  po::options_description options("options");
  options.add_options()("db", po::value(&db)->default_value(db), "database file")(
      "format", po::value(&format)->default_value(format), "table, csv or json");
  po::options_description hidden;
  hidden.add_options()("sql", po::value(&sql), "");
  po::positional_options_description pos;
  pos.add("sql", 1);
  po::variables_map vm;
  if (!parse_args(info, options, hidden, pos, args, vm)) return kOk;
  if (sql.empty()) {
    std::cerr << "ablate query: give the SQL, e.g. \"SELECT * FROM results\"\n";
    return kBadInput;
  }
  if (format != "table" && format != "csv" && format != "json") {
    std::cerr << "ablate query: --format " << format << ": expected table, csv or json\n";
    return kBadInput;
  }
  const auto store = open_read_only(db, "query");
  if (!store) return kBadInput;
  // Rows are written as they are read: an unbounded SELECT runs in bounded memory.
  results::stream_query(*store, sql,
                        format == "csv"    ? results::QueryFormat::kCsv
                        : format == "json" ? results::QueryFormat::kJson
                                           : results::QueryFormat::kTable,
                        std::cout);
  return kOk;
}

}  // namespace ablate::cli
