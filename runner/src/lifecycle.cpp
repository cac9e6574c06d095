#include "ablate/runner/lifecycle.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <filesystem>
#include <map>
#include <stdexcept>

namespace ablate::runner {
namespace fs = std::filesystem;

namespace {

// Now in UTC as 20240501T123456Z: a name part that sorts as time.
std::string utc_stamp() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

// The run dir that stays: refuses a running job and one that an `ablate train` still holds.
void check_idle(const results::JobRow& job, const std::string& doing) {
  if (job.status == "running") {
    throw std::runtime_error("cannot " + doing + " job " + job.id +
                             ": it is running (left so by a coordinator that stopped?); run the "
                             "sweep once (ablate run) to recover it first");
  }
  if (!job.run_dir.empty() && run_dir_in_use(job.run_dir)) {
    throw std::runtime_error("cannot " + doing + " job " + job.id + ": an ablate train process " +
                             "still holds its run dir " + job.run_dir + "; stop it first");
  }
}

}  // namespace

SweepLocks::SweepLocks(const std::string& database, const std::string& sweep,
                       const std::vector<results::JobRow>& jobs) {
  locks_.push_back(std::make_unique<SweepLock>(database_lock_file(database, sweep), sweep));
  std::set<fs::path> files;
  for (const auto& job : jobs) {
    if (job.run_dir.empty()) continue;                            // an imported job
    const fs::path folder = fs::path(job.run_dir).parent_path();  // WORKDIR/<sweep>
    if (fs::is_directory(folder)) files.insert(fs::weakly_canonical(folder) / ".lock");
  }
  for (const auto& file : files) locks_.push_back(std::make_unique<SweepLock>(file, sweep));
}

bool run_dir_in_use(const std::string& run_dir) {
  const fs::path file = fs::path(run_dir) / ".train.lock";
  const int fd = open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;  // never trained, or gone
  const bool held = flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  close(fd);  // releases the lock if this call took it
  return held;
}

std::vector<results::JobRow> with_dependants(const std::vector<results::JobRow>& all,
                                             const std::set<std::string>& ids) {
  std::set<std::string> chosen = ids;
  // Registration order has parents first, but a parent may be registered after its child by an
  // edited file; iterate until nothing is added.
  for (bool grew = true; grew;) {
    grew = false;
    for (const auto& job : all) {
      if (!job.parent_id.empty() && chosen.count(job.parent_id) && !chosen.count(job.id)) {
        chosen.insert(job.id);
        grew = true;
      }
    }
  }
  std::vector<results::JobRow> out;
  for (const auto& job : all) {
    if (ids.count(job.id)) out.push_back(job);
  }
  for (const auto& job : all) {
    if (chosen.count(job.id) && !ids.count(job.id)) out.push_back(job);
  }
  return out;
}

std::vector<ResetJob> reset_jobs(results::Store& store, const std::string& sweep,
                                 const std::vector<results::JobRow>& jobs) {
  for (const auto& job : jobs) check_idle(job, "reset");
  const std::string suffix = ".reset-" + utc_stamp();
  std::vector<ResetJob> out;
  std::vector<std::pair<fs::path, fs::path>> moved;  // (from, to), to undo on a store failure
  try {
    for (const auto& job : jobs) {
      ResetJob r{job.id, job.status, ""};
      const fs::path dir = job.run_dir;
      if (!job.run_dir.empty() && fs::exists(dir)) {
        fs::path aside = dir.string() + suffix;
        for (int n = 2; fs::exists(aside); ++n) {
          aside = dir.string() + suffix + "-" + std::to_string(n);
        }
        fs::rename(dir, aside);
        moved.emplace_back(dir, aside);
        r.moved_to = aside.string();
      }
      out.push_back(r);
    }
    std::vector<std::string> ids;
    for (const auto& job : jobs) ids.push_back(job.id);
    store.reset_jobs(sweep, ids);
  } catch (...) {
    // Nothing half done: the run dirs go back where they were (the rows were not changed).
    for (auto it = moved.rbegin(); it != moved.rend(); ++it) {
      std::error_code ec;
      fs::rename(it->second, it->first, ec);
    }
    throw;
  }
  return out;
}

std::vector<std::string> prune_jobs(results::Store& store, const std::string& sweep,
                                    const std::vector<results::JobRow>& stale) {
  std::set<std::string> ids;
  for (const auto& job : stale) {
    if (!job.stale) {
      throw std::runtime_error("cannot prune job " + job.id +
                               ": the sweep file still plans it (it is not stale)");
    }
    check_idle(job, "prune");
    ids.insert(job.id);
  }
  for (const auto& job : store.jobs(sweep)) {
    if (!ids.count(job.id) && ids.count(job.parent_id)) {
      throw std::runtime_error("cannot prune job " + job.parent_id + ": job " + job.id +
                               " started from it and stays");
    }
  }
  std::vector<std::string> removed;
  for (const auto& job : stale) {
    // Only a folder where the coordinator puts run dirs (WORKDIR/<sweep>/<job id>).
    const fs::path dir = job.run_dir;
    if (job.run_dir.empty() || dir.filename() != job.id || dir.parent_path().filename() != sweep ||
        !fs::is_directory(dir)) {
      continue;
    }
    fs::remove_all(dir);
    removed.push_back(dir.string());
  }
  store.prune_jobs(sweep, std::vector<std::string>(ids.begin(), ids.end()));
  return removed;
}

}  // namespace ablate::runner
