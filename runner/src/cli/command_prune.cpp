// `ablate prune`: deletes a sweep's stale jobs, the ones its sweep file no longer plans (docs/
// design.md section 6). Without --yes it only lists them.
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <memory>

#include "ablate/runner/lifecycle.h"
#include "cli.h"

namespace ablate::cli {
namespace fs = std::filesystem;

int command_prune(const std::vector<std::string>& args) {
  const CommandInfo info{
      "prune", "[--db FILE] SWEEP [--yes]",
      "Deletes the sweep's stale jobs (no longer in its sweep file) and their run dirs.",
      "Without --yes it lists them and changes nothing. With --yes their rows (params, metrics,\n"
      "summaries, environment) and their run dirs are deleted. Refused while ablate run runs the\n"
      "sweep. A stale job stays until pruned: planned again by the sweep file, it is active again\n"
      "with its results."};
  std::string db = "ablate.db", sweep;
  po::options_description options("options");
  options.add_options()("db", po::value(&db)->default_value(db), "database file")(
      "yes", "delete them (without it: list only)");
  po::options_description hidden;
  hidden.add_options()("sweep", po::value(&sweep), "");
  po::positional_options_description pos;
  pos.add("sweep", 1);
  po::variables_map vm;
  if (!parse_args(info, options, hidden, pos, args, vm)) return kOk;
  if (sweep.empty()) {
    std::cerr << "ablate prune: give SWEEP (ablate status lists the sweeps)\n";
    return kBadInput;
  }
  const bool yes = vm.count("yes") > 0;
  // Listing writes nothing, not even a migration.
  std::unique_ptr<results::Store> store;
  if (yes) {
    if (!fs::exists(db)) {
      std::cerr << "ablate prune: no database " << db << "\n";
      return kBadInput;
    }
    store = std::make_unique<results::Store>(db);
  } else {
    store = open_read_only(db, "prune");
    if (!store) return kBadInput;
  }
  const auto sweeps = store->sweeps();
  if (std::find(sweeps.begin(), sweeps.end(), sweep) == sweeps.end()) {
    std::cerr << "ablate prune: no sweep '" << sweep << "' in " << db << " (sweeps:";
    for (const auto& s : sweeps) std::cerr << " " << s;
    std::cerr << ")\n";
    return kBadInput;
  }
  // With --yes the sweep's locks come first: no coordinator runs it or changes it meanwhile.
  std::unique_ptr<runner::SweepLocks> locks;
  if (yes) {
    try {
      locks = std::make_unique<runner::SweepLocks>(db, sweep, store->jobs(sweep));
    } catch (const std::runtime_error& e) {
      std::cerr << "ablate prune: " << e.what() << "; nothing was deleted\n";
      return kFailure;
    }
  }
  const auto jobs = store->jobs(sweep);
  std::vector<results::JobRow> stale;
  for (const auto& job : jobs) {
    if (job.stale) stale.push_back(job);
  }
  if (stale.empty()) {
    std::cout << "sweep " << sweep << " has no stale jobs: nothing to prune\n";
    return kOk;
  }
  const auto env = store->environment(sweep);
  const std::string file =
      env.count("sweep_file") ? shown_path(env.at("sweep_file")) : "the sweep file";
  std::cout << "sweep " << sweep << ": "
            << count_of(static_cast<long long>(stale.size()), "stale job") << " (no longer in "
            << file << "):\n";
  for (const auto& job : stale) {
    std::cout << "  " << job.id << " " << job.status
              << (job.run_dir.empty() ? "" : "  " + job.run_dir) << "\n";
  }
  if (!yes) {
    std::cout << "nothing deleted; `ablate prune " << shell_word(sweep) << db_flag(db)
              << " --yes` deletes " << (stale.size() == 1 ? "it: its rows" : "them: their rows")
              << " (params, metrics, summaries, environment) and "
              << (stale.size() == 1 ? "its run dir" : "their run dirs") << "\n";
    return kOk;
  }
  const auto removed = runner::prune_jobs(*store, sweep, stale);
  std::cout << "deleted " << count_of(static_cast<long long>(stale.size()), "stale job")
            << " of sweep " << sweep << " from " << db << " and "
            << count_of(static_cast<long long>(removed.size()), "run dir") << "\n";
  return kOk;
}

}  // namespace ablate::cli
