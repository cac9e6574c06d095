// `ablate reset`: chosen jobs of a sweep back to pending, so the next `ablate run` trains them
// from scratch (docs/design.md section 6).
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <sstream>

#include "ablate/runner/lifecycle.h"
#include "cli.h"

namespace ablate::cli {
namespace fs = std::filesystem;

namespace {

// The statuses --status takes: the outcomes and interrupted (pending has nothing to reset, a
// running job is refused).
const std::vector<std::string>& resettable() {
  static const std::vector<std::string> statuses = {"done",      "diverged",    "failed",
                                                    "timed_out", "interrupted", "skipped"};
  return statuses;
}

std::string joined(const std::vector<std::string>& items, const std::string& sep = ", ") {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : sep) + i;
  return out;
}

// "a,b" and repeated options as one list.
std::vector<std::string> split_lists(const std::vector<std::string>& values) {
  std::vector<std::string> out;
  for (const auto& v : values) {
    std::stringstream list(v);
    for (std::string item; std::getline(list, item, ',');) {
      if (!item.empty()) out.push_back(item);
    }
  }
  return out;
}

}  // namespace

int command_reset(const std::vector<std::string>& args) {
  const CommandInfo info{
      "reset", "[--db FILE] SWEEP (--job ID... | --status STATUS... | --all)",
      "Returns jobs to pending so the next ablate run trains them from scratch.",
      "Each chosen job's run dir is moved aside to <run dir>.reset-<UTC time> (kept, not\n"
      "deleted), its metrics and summaries are removed from the database (reports no longer use\n"
      "them) and its attempts, exit status and error are cleared. Jobs that started from a reset\n"
      "job's checkpoint (later stages) are reset with it. --job and --status each narrow the\n"
      "choice (--job A --status failed resets A only if it failed); --all takes every job the\n"
      "sweep file plans. Refused while ablate run runs the sweep."};
  std::string db = "ablate.db", sweep;
  std::vector<std::string> job_args, status_args;
  po::options_description options("options");
  auto add = options.add_options();
  add("db", po::value(&db)->default_value(db), "database file");
  add("job", po::value(&job_args)->multitoken(), "job ids (ablate status lists them)");
  add("status", po::value(&status_args)->multitoken(),
      "jobs with these statuses: done, diverged, failed, timed_out, interrupted, skipped");
  add("all", "every job of the sweep (needed to reset them all)");
  po::options_description hidden;
  hidden.add_options()("sweep", po::value(&sweep), "");
  po::positional_options_description pos;
  pos.add("sweep", 1);
  po::variables_map vm;
  if (!parse_args(info, options, hidden, pos, args, vm)) return kOk;
  if (sweep.empty()) {
    std::cerr << "ablate reset: give SWEEP (ablate status lists the sweeps)\n";
    return kBadInput;
  }
  const auto ids = split_lists(job_args);
  const auto statuses = split_lists(status_args);
  const bool all = vm.count("all") > 0;
  if (!all && ids.empty() && statuses.empty()) {
    std::cerr << "ablate reset: say which jobs of " << sweep
              << ": --job ID, --status STATUS, or --all for every job of the sweep\n";
    return kBadInput;
  }
  if (all && (!ids.empty() || !statuses.empty())) {
    std::cerr << "ablate reset: --all takes every job; give it without --job and --status\n";
    return kBadInput;
  }
  for (const auto& s : statuses) {
    if (std::find(resettable().begin(), resettable().end(), s) == resettable().end()) {
      std::cerr << "ablate reset: --status " << s << ": "
                << (s == "running"   ? "a running job cannot be reset"
                    : s == "pending" ? "a pending job has nothing to reset"
                                     : "not a job status")
                << " (valid: " << joined(resettable()) << ")\n";
      return kBadInput;
    }
  }
  if (!fs::exists(db)) {
    std::cerr << "ablate reset: no database " << db << "\n";
    return kBadInput;
  }
  results::Store store(db);
  const auto sweeps = store.sweeps();
  if (std::find(sweeps.begin(), sweeps.end(), sweep) == sweeps.end()) {
    std::cerr << "ablate reset: no sweep '" << sweep << "' in " << db
              << " (sweeps: " << joined(sweeps) << ")\n";
    return kBadInput;
  }
  // The sweep's locks first: no coordinator runs it (or changes its jobs) until the reset is done.
  std::unique_ptr<runner::SweepLocks> locks;
  try {
    locks = std::make_unique<runner::SweepLocks>(db, sweep, store.jobs(sweep));
  } catch (const std::runtime_error& e) {
    std::cerr << "ablate reset: " << e.what() << "; nothing was reset\n";
    return kFailure;
  }
  const auto jobs = store.jobs(sweep);
  std::map<std::string, const results::JobRow*> by_id;
  std::vector<std::string> active;
  for (const auto& job : jobs) {
    by_id[job.id] = &job;
    if (!job.stale) active.push_back(job.id);
  }
  for (const auto& id : ids) {
    const auto it = by_id.find(id);
    if (it == by_id.end()) {
      std::cerr << "ablate reset: sweep " << sweep << " has no job " << id << " (its jobs: ";
      const size_t shown = std::min<size_t>(active.size(), 20);
      std::cerr << joined(std::vector<std::string>(active.begin(), active.begin() + shown));
      if (shown < active.size()) std::cerr << ", ... " << active.size() - shown << " more";
      std::cerr << "; ablate status " << sweep << " lists them)\n";
      return kBadInput;
    }
    if (it->second->stale) {
      std::cerr << "ablate reset: job " << id << " is stale (no longer in the sweep file); "
                << "ablate prune " << sweep << " deletes it\n";
      return kBadInput;
    }
  }
  // Each flag narrows: a job is chosen when it is one of --job (if given) and has one of the
  // --status values (if given). A reset discards results from the database, so a second flag
  // never widens it.
  std::set<std::string> chosen;
  for (const auto& job : jobs) {
    if (job.stale || job.status == "pending") continue;
    const bool by_id_ok = ids.empty() || std::find(ids.begin(), ids.end(), job.id) != ids.end();
    const bool by_status_ok = statuses.empty() || std::find(statuses.begin(), statuses.end(),
                                                            job.status) != statuses.end();
    if (all || (by_id_ok && by_status_ok)) chosen.insert(job.id);
  }
  for (const auto& id : ids) {
    if (by_id.at(id)->status == "running") {
      std::cerr << "ablate reset: job " << id << " is running; stop its ablate run first\n";
      return kBadInput;
    }
  }
  for (const auto& id : chosen) {
    if (by_id.at(id)->status == "running") {
      std::cerr << "ablate reset: job " << id << " is running; stop its ablate run first\n";
      return kBadInput;
    }
  }
  if (chosen.empty()) {
    std::cout << "nothing to reset: no " << (ids.empty() ? "job" : "chosen job") << " of sweep "
              << sweep << " is "
              << (statuses.empty() ? "other than pending" : joined(statuses, " or ")) << "\n";
    return kOk;
  }
  std::vector<results::JobRow> rows;
  for (const auto& row : runner::with_dependants(jobs, chosen)) {
    if (chosen.count(row.id) || row.status != "pending") rows.push_back(row);
  }
  const auto reset = runner::reset_jobs(store, sweep, rows);

  std::map<std::string, int> before;
  for (const auto& r : reset) ++before[r.status];
  std::cout << "reset " << count_of(static_cast<long long>(reset.size()), "job") << " of sweep "
            << sweep << " to pending (";
  bool first = true;
  for (const auto& [status, n] : before) {
    std::cout << (first ? "" : ", ") << n << " " << status;
    first = false;
  }
  std::cout << "):\n";
  for (const auto& r : reset) {
    const auto* row = by_id.at(r.id);
    std::cout << "  " << r.id << " (" << r.status;
    if (!chosen.count(r.id)) std::cout << ", started from " << row->parent_id;
    std::cout << "): "
              << (r.moved_to.empty() ? "no run dir" : "run dir moved aside to " + r.moved_to)
              << "\n";
  }
  const std::string run = run_command_of(store, db, sweep, jobs.front().run_dir);
  std::cout << (reset.size() == 1 ? "Its" : "Their") << " metrics and summaries were removed from "
            << db << ", so reports no longer use them; `" << (run.empty() ? "ablate run" : run)
            << "` trains " << (reset.size() == 1 ? "it" : "them") << " from scratch.\n";
  return kOk;
}

}  // namespace ablate::cli
