// The commands that `ablate status`, `ablate reset` and `ablate prune` suggest: how a sweep was
// run, and what runs a job that ended badly again.
#include <filesystem>

#include "cli.h"

namespace ablate::cli {
namespace fs = std::filesystem;

std::string run_command_of(const results::Store& store, const std::string& db,
                           const std::string& sweep, const std::string& run_dir) {
  const auto env = store.environment(sweep);
  const auto file = env.find("sweep_file");
  if (file == env.end() || file->second.empty()) return "";  // an import
  std::string command = "ablate run " + shell_word(shown_path(file->second));
  if (const auto o = env.find("overrides"); o != env.end() && !o->second.empty()) {
    command += " " + o->second;  // shell words already
  }
  command += db_flag(db);
  if (!run_dir.empty()) {
    // Run dirs are WORKDIR/<sweep>/<job id>, with WORKDIR made absolute by the coordinator.
    std::error_code ec;
    const fs::path workdir = fs::path(run_dir).parent_path().parent_path();
    const fs::path fallback = fs::weakly_canonical(fs::absolute("runs"), ec);
    if (ec || workdir != fallback) command += " --workdir " + shell_word(workdir.string());
  }
  return command;
}

std::string rerun_hint(const results::Store& store, const std::string& db,
                       const results::JobRow& job) {
  if (job.stale) return "";
  std::string flag, lead;
  if (job.status == "failed" || job.status == "timed_out") {
    flag = " --retry-failed";
    lead = job.exit_code && *job.exit_code == 2 ? "fix the input above, then re-run it: "
                                                : "re-run it (from its checkpoint): ";
  } else if (job.status == "diverged") {
    flag = " --retry-diverged";
    lead = "train it again from scratch (its run dir is kept aside): ";
  } else {
    return "";
  }
  const std::string command = run_command_of(store, db, job.sweep, job.run_dir);
  return command.empty() ? "" : lead + command + flag;
}

}  // namespace ablate::cli
