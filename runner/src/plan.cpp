#include "ablate/runner/plan.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "ablate/runner/canonical.h"
#include "ablate/runner/ensembles.h"
#include "ablate/runner/question.h"
#include "ablate/runner/schema.h"
#include "ablate/runner/until_decided.h"

namespace ablate::runner {
namespace {

// Keys in the order the caller inserts them: id, stage, arm, ... as documented.
using Json = nlohmann::ordered_json;

Json json_value(const FieldInfo& field, const Config& config) {
  Config& c = const_cast<Config&>(config);  // the accessors only read here
  return std::visit([&](auto ref) { return Json(ref(c)); }, field.ref);
}

// The schema's fields by top-level name, then key: the key order of to_yaml. Sorted once.
const std::vector<const FieldInfo*>& sorted_fields() {
  static const std::vector<const FieldInfo*> fields = [] {
    std::vector<const FieldInfo*> out;
    for (const auto& f : schema()) out.push_back(&f);
    auto top = [](const FieldInfo* f) { return f->section().empty() ? f->key : f->section(); };
    std::sort(out.begin(), out.end(), [&](const FieldInfo* a, const FieldInfo* b) {
      return std::make_pair(top(a), a->key) < std::make_pair(top(b), b->key);
    });
    return out;
  }();
  return fields;
}

// Every field of the config's task, nested by section, keys sorted: the shape of to_yaml.
Json config_json(const Config& config) {
  Json out = Json::object();
  for (const FieldInfo* f : sorted_fields()) {
    if (!f->applies_to(config.task)) continue;
    if (f->section().empty()) {
      out[f->key] = json_value(*f, config);
    } else {
      out[f->section()][f->name()] = json_value(*f, config);
    }
  }
  return out;
}

std::string pad(const std::string& s, size_t width) {
  return s.size() >= width ? s : s + std::string(width - s.size(), ' ');
}

std::string plural(int64_t n, const char* word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

std::string params_text(const JobSpec& job) {
  std::string out;
  for (const auto& [key, value] : job.params) out += (out.empty() ? "" : " ") + key + "=" + value;
  return out;
}

// A job's status in the database read, "new" when it is not there.
std::string stored_status(const StoredJobs& stored, const std::string& id) {
  const auto it = stored.status.find(id);
  return it == stored.status.end() ? "new" : it->second;
}

// "in ablate.db: 9 done, 6 new" and what run does with them (`until_decided`: the seeds its looks
// ask for, at most the rest).
std::string stored_text(const std::vector<JobSpec>& jobs, const StoredJobs& stored,
                        bool until_decided) {
  if (!stored.exists) return stored.db + ": no such database yet, so every job is new\n";
  std::map<std::string, int64_t> counts;
  for (const auto& job : jobs) ++counts[stored_status(stored, job.id)];
  std::string out = "in " + stored.db + ":";
  const char* order[] = {"done",        "diverged", "failed",  "timed_out", "skipped",
                         "interrupted", "running",  "pending", "new"};
  bool first = true;
  for (const char* s : order) {
    if (counts[s] == 0) continue;
    out += std::string(first ? " " : ", ") + std::to_string(counts[s]) + " " + s;
    first = false;
  }
  const int64_t finished = counts["done"] + counts["diverged"];
  const int64_t failed = counts["failed"] + counts["timed_out"];
  const int64_t to_train = static_cast<int64_t>(jobs.size()) - finished - failed;
  if (to_train == 0 && failed == 0) {
    out += ": nothing left for ablate run to train";
  } else {
    out += ": ablate run trains " +
           (until_decided ? "up to " + std::to_string(to_train) +
                                " (as many as the looks of seeds until decided ask for)"
                          : std::to_string(to_train));
    if (failed > 0) {
      out += " (and the " + std::to_string(failed) +
             " failed or timed out as its --retries and --retry-failed allow)";
    }
  }
  if (stored.not_planned > 0) {
    out += "; " + plural(stored.not_planned, "job") + " of the sweep there " +
           (stored.not_planned == 1 ? "is" : "are") +
           " no longer planned (stale after ablate run, kept; ablate prune deletes them)";
  }
  return out + "\n";
}

std::string settings_text(const std::vector<Setting>& settings) {
  std::string out = "{";
  for (size_t i = 0; i < settings.size(); ++i) {
    out += (i ? ", " : "") + settings[i].key + ": " + settings[i].text;
  }
  return out + "}";
}

}  // namespace

std::string plan_text(const SweepSpec& sweep, const std::vector<JobSpec>& jobs,
                      const StoredJobs* stored) {
  const SweepCounts counts = count_jobs(sweep, jobs);
  const int64_t stages = std::max<int64_t>(1, static_cast<int64_t>(sweep.stages.size()));
  const int64_t seeds = static_cast<int64_t>(sweep.seeds.size());

  std::string out = "sweep " + sweep.name + " (" + sweep.file + "): " + plural(counts.jobs, "job") +
                    ", " + plural(seeds, "seed") + " (";
  for (size_t i = 0; i < sweep.seeds.size(); ++i) {
    out += (i ? " " : "") + std::to_string(sweep.seeds[i]);
  }
  out += ")";
  if (!sweep.stages.empty()) {
    out += ", stages";
    for (const auto& s : sweep.stages) {
      out += " " + s.name + (s.from.empty() ? "" : " (from " + s.from + ")");
    }
  }
  out += "\n";

  size_t stage_width = 1, params_width = 0, status_width = 0;
  std::vector<std::string> params(jobs.size());
  for (size_t j = 0; j < jobs.size(); ++j) {
    params[j] = params_text(jobs[j]);
    stage_width = std::max(stage_width, jobs[j].stage.size());
    params_width = std::max(params_width, params[j].size());
    if (stored) status_width = std::max(status_width, stored_status(*stored, jobs[j].id).size());
  }
  for (size_t j = 0; j < jobs.size(); ++j) {
    const JobSpec& job = jobs[j];
    std::string line = job.id + "  " +
                       (stored ? pad(stored_status(*stored, job.id), status_width) + "  " : "") +
                       pad(job.stage.empty() ? "-" : job.stage, stage_width) + "  " +
                       (params_width ? pad(params[j], params_width) + "  " : "") +
                       "seed=" + std::to_string(job.seed);
    if (!job.parent_id.empty()) line += "  after=" + job.parent_id;
    out += line + "\n";
  }

  for (const BlockCount& b : counts.blocks) {
    out += "block " + std::to_string(b.block) + ": " + plural(b.cells, "cell");
    if (b.excluded > 0) out += " (" + std::to_string(b.excluded) + " excluded)";
    out += " x " + plural(seeds, "seed");
    if (!sweep.stages.empty()) out += " x " + plural(stages, "stage");
    out += " = " + plural(b.produced, "job") + "; " + std::to_string(b.jobs) + " distinct, " +
           std::to_string(b.new_jobs) + " not in an earlier block\n";
  }
  for (size_t r = 0; r < sweep.excludes.size(); ++r) {
    out += "exclude " + std::to_string(r + 1) + " " + settings_text(sweep.excludes[r].match) +
           ": matched " + plural(counts.exclude_matches[r], "cell") + "\n";
  }
  out += "total: " + plural(counts.jobs, "job") + " (" + std::to_string(counts.produced) +
         " before deduplication; " + std::to_string(counts.produced - counts.jobs) + " shared)\n";
  if (sweep.sequential.enabled) {
    const SequentialSeeds& r = sweep.sequential;
    const size_t first = planned_jobs(sweep, jobs, {}).size();
    out += "seeds until decided: every arm runs its first " + plural(r.min, "seed") + " (" +
           plural(static_cast<int64_t>(first), "job") + "), then " + std::to_string(r.step) +
           " more per round while its comparison of " + sweep.report.metric +
           " (report:) is undecided, at most " + plural(r.max, "seed") + " (all " +
           plural(counts.jobs, "job") + " above)\n";
  }
  if (stored) out += stored_text(jobs, *stored, sweep.sequential.enabled);
  return out;
}

std::string plan_processes_text(const std::vector<JobSpec>& jobs, int seeds_per_process,
                                const StoredJobs* stored) {
  // With a database, only the jobs that ablate run would still train.
  std::vector<JobSpec> left;
  for (const auto& job : jobs) {
    const std::string s = stored ? stored_status(*stored, job.id) : "new";
    if (s != "done" && s != "diverged") left.push_back(job);
  }
  if (left.empty()) return "processes: none (every job is done)\n";
  const std::string which =
      left.size() == jobs.size()
          ? ""
          : " for the " + plural(static_cast<int64_t>(left.size()), "job") + " not done";
  const int n = seeds_per_process > 0 ? seeds_per_process : kCpuSeedsPerProcess;
  const std::string processes = std::to_string(processes_of(left, n).size()) + which;
  if (seeds_per_process == 1) return "processes: " + processes + " (one per job)\n";
  const std::string together =
      "seeds of one arm train together, up to " + std::to_string(n) + " per process";
  if (seeds_per_process > 0) return "processes: " + processes + " (" + together + ")\n";
  return "processes: " + processes + " on the CPU (auto: " + together +
         "; on a GPU, as many as fit its memory once a first seed alone has measured it)\n";
}

// Every job carries what its line needs; the sweep is a parameter for symmetry with plan_text.
std::string plan_json(const SweepSpec& sweep, const std::vector<JobSpec>& jobs,
                      const StoredJobs* stored) {
  std::string out;
  // Seeds until decided: which jobs the first round runs (the others wait for the looks).
  std::set<std::string> first_round;
  if (sweep.sequential.enabled) {
    for (const auto& job : planned_jobs(sweep, jobs, {})) first_round.insert(job.id);
  }
  for (const JobSpec& job : jobs) {
    Json params = Json::object();
    for (const auto& [key, text] : job.params) {
      const FieldInfo* f = find_field(key);
      params[key] = f != nullptr ? json_value(*f, job.config) : Json(text);
    }
    Json o;
    o["id"] = job.id;
    o["stage"] = job.stage.empty() ? Json(nullptr) : Json(job.stage);
    o["arm"] = job.arm_key;
    o["seed"] = job.seed;
    o["params"] = std::move(params);
    o["depends_on"] = job.parent_id.empty() ? Json::array() : Json::array({job.parent_id});
    o["blocks"] = job.blocks;
    o["config"] = config_json(job.config);
    if (sweep.sequential.enabled) o["first_round"] = first_round.count(job.id) > 0;
    if (stored) o["status"] = stored_status(*stored, job.id);
    out += o.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
  }
  return out;
}

std::vector<std::string> plan_warnings(const SweepSpec& sweep, const std::vector<JobSpec>& jobs) {
  std::vector<std::string> out;
  std::set<std::pair<std::string, std::string>> seen;  // (stage, arm key)
  for (const auto& job : jobs) {
    const Config& c = job.config;
    const bool uniform_forever = c.attention.variant == "dgqa" && !c.attention.faithful &&
                                 c.train.epochs == 0 && c.attention.ema_window >= c.train.steps;
    if (!uniform_forever || !seen.emplace(job.stage, job.arm_key).second) continue;
    const std::string arm = params_text(job);
    out.push_back(sweep.file + ": " + (job.stage.empty() ? "" : "stage " + job.stage + ", ") +
                  "arm " + (arm.empty() ? "(base)" : arm) + ": attention.ema_window " +
                  std::to_string(c.attention.ema_window) + " >= train.steps " +
                  std::to_string(c.train.steps) +
                  ": robust dgqa reallocates only at a window boundary after step 0, so these "
                  "jobs keep the uniform allocation and train exactly as gqa; lower "
                  "attention.ema_window to see dgqa");
  }
  for (auto& w : question_warnings(sweep, jobs)) out.push_back(std::move(w));
  return out;
}

}  // namespace ablate::runner
