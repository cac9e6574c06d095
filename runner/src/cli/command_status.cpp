#include <algorithm>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli.h"

namespace ablate::cli {

int command_status(const std::vector<std::string>& args) {
  const CommandInfo info{"status", "[--db FILE] [SWEEP] [--json]",
                         "Jobs by status, per arm, with failures and their reasons.", ""};
  std::string db = "ablate.db", sweep;
  po::options_description options("options");
  options.add_options()("db", po::value(&db)->default_value(db), "database file")("json",
                                                                                  "JSON output");
  po::options_description hidden;
  hidden.add_options()("sweep", po::value(&sweep), "");
  po::positional_options_description pos;
  pos.add("sweep", 1);
  po::variables_map vm;
  if (!parse_args(info, options, hidden, pos, args, vm)) return kOk;
  const auto opened = open_read_only(db, "status");
  if (!opened) return kBadInput;
  results::Store& store = *opened;
  std::vector<std::string> names = sweep.empty() ? store.sweeps() : std::vector<std::string>{sweep};
  const auto known = store.sweeps();
  if (!sweep.empty() && std::find(known.begin(), known.end(), sweep) == known.end()) {
    std::cerr << "ablate status: no sweep '" << sweep << "' in " << db << " (sweeps:";
    for (const auto& k : known) std::cerr << " " << k;
    std::cerr << ")\n";
    return kBadInput;
  }
  nlohmann::json out = nlohmann::json::array();
  for (const auto& name : names) {
    const auto counts = store.status_counts(name);
    nlohmann::json s{{"sweep", name}, {"counts", counts}, {"failures", nlohmann::json::array()}};
    int total = 0;
    for (const auto& [k, n] : counts) total += n;
    s["total"] = total;
    for (const auto& job : store.jobs(name)) {
      if (job.status == "failed" || job.status == "timed_out" || job.status == "skipped" ||
          job.status == "diverged") {
        s["failures"].push_back({{"id", job.id}, {"status", job.status}, {"error", job.error}});
      }
    }
    out.push_back(s);
  }
  if (vm.count("json")) {
    std::cout << out.dump() << "\n";
    return kOk;
  }
  for (const auto& s : out) {
    std::cout << "sweep " << s["sweep"].get<std::string>() << ": " << s["total"].get<int>()
              << " jobs";
    for (const auto& [k, n] : s["counts"].items()) {
      if (n.get<int>() > 0) std::cout << ", " << n.get<int>() << " " << k;
    }
    std::cout << "\n";
    for (const auto& f : s["failures"]) {
      std::string error = f["error"];
      if (error.size() > 400) {
        // The first line is the reason ("timed out after 60 s"); the rest is the job's log tail,
        // of which the end matters most.
        const auto newline = std::min(error.find('\n'), error.size());
        error = newline >= 300 ? error.substr(0, 400) + "..."
                               : error.substr(0, newline) + "\n..." +
                                     error.substr(error.size() - (400 - newline));
      }
      std::cout << "  " << f["id"].get<std::string>() << " " << f["status"].get<std::string>()
                << ": " << error << "\n";
    }
  }
  return kOk;
}

}  // namespace ablate::cli
