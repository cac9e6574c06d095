// `ablate status`: a sweep's jobs by status and by arm (arms named by the keys that vary), its
// failures with their whole reasons, and the command to run next (docs/design.md section 7).
#include <signal.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <tuple>

#include "ablate/results/decision_log.h"
#include "ablate/results/printable.h"
#include "ablate/runner/command.h"
#include "ablate/runner/coordinator.h"
#include "ablate/runner/progress.h"
#include "ablate/runner/sweep.h"
#include "cli.h"

namespace ablate::cli {
namespace {

using Json = nlohmann::ordered_json;

// The columns of the per-arm table that count jobs, in order. "diverged" is shown only when a
// job diverged.
const std::vector<std::string> kColumns = {"done",   "running", "pending",
                                           "failed", "stale",   "diverged"};

// The column a job counts in. A new job state is one line here (and its column in kColumns).
std::string column_of(const results::JobRow& job) {
  if (job.stale) return "stale";  // no longer planned by the sweep file, whatever its status
  if (job.status == "done" || job.status == "running" || job.status == "diverged")
    return job.status;
  if (job.status == "pending" || job.status == "interrupted") return "pending";  // runs next time
  return "failed";  // failed, timed_out, skipped
}

bool ended_badly(const results::JobRow& job) {
  return !job.stale && (job.status == "failed" || job.status == "timed_out" ||
                        job.status == "skipped" || job.status == "diverged");
}

// The pid of a live `ablate run` that holds the sweep's database lock (its pid stays in the lock
// file after it ends), or 0.
long coordinator_pid(const std::string& database, const std::string& sweep) {
  const long pid =
      std::atol(runner::read_text(runner::database_lock_file(database, sweep)).c_str());
  if (pid <= 1) return 0;
  const std::string cmdline = runner::read_text("/proc/" + std::to_string(pid) + "/cmdline");
  const bool run = cmdline.find(std::string("\0run\0", 5)) != std::string::npos;
  return run && cmdline.find("ablate") != std::string::npos ? pid : 0;
}

// One arm: the jobs of the sweep that differ only in their seed (its stale jobs, which the sweep
// file no longer plans, are an arm of their own, listed apart).
struct Arm {
  std::string stage, arm_key, label;
  bool stale = false;
  runner::Params params;
  std::map<std::string, int> count;  // column -> jobs
  double sum = 0.0;                  // of the main metric over done jobs
  int n = 0;                         // done jobs with the metric
  double seconds = 0.0;              // time its jobs trained
};

// A number for JSON: NaN as null, an infinite end of a confidence sequence as "-inf" / "inf"
// (JSON has no infinity), as `ablate report --format json` writes them.
Json json_number(double x) {
  if (std::isnan(x)) return nullptr;
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  return x;
}

// Seeds until decided: the decision log's last look (null for a sweep never run until decided).
Json sequential_json(const results::Store& store, const std::string& name) {
  const auto rows = results::last_sequential_look(store, name);
  if (rows.empty()) return nullptr;
  Json comparisons = Json::array();
  for (const auto& r : rows) {
    comparisons.push_back({{"family", r.family},
                           {"arm", r.arm_label},
                           {"reference", r.reference_label},
                           {"method", r.method},
                           {"seeds", r.seeds},
                           {"level", json_number(r.level)},
                           {"e_value", json_number(r.e_value)},
                           {"cs_low", json_number(r.cs_low)},
                           {"cs_high", json_number(r.cs_high)},
                           {"decided", r.decided},
                           {"equivalent", r.equivalent},
                           {"action", r.action}});
  }
  return {{"look", rows.front().look},
          {"recorded", rows.front().recorded},
          {"max_seeds", rows.front().max_seeds},
          {"comparisons", comparisons}};
}

// What the store holds of each job beyond its row, a query each: params, the main metrics and
// wall time of its summary, and the seconds of its last attempt (since it started, up to its end
// or now; the summary's wall time counts earlier attempts).
struct JobFacts {
  std::map<std::string, runner::Params> params;
  std::map<std::string, std::map<std::string, double>> summaries;
  std::map<std::string, double> attempt_seconds;
};
JobFacts job_facts(results::Store& store, int64_t sweep_pk) {
  JobFacts f;
  auto& p = store.statement(
      "SELECT j.id, p.key, p.value FROM params p JOIN jobs j ON j.pk = p.job WHERE j.sweep_pk = ?");
  p.bind(1, sweep_pk);
  while (p.executeStep()) {
    f.params[p.getColumn(0).getString()].emplace_back(p.getColumn(1).getString(),
                                                      p.getColumn(2).getString());
  }
  auto& s = store.statement(
      "SELECT j.id, s.name, s.value FROM summaries s JOIN jobs j ON j.pk = s.job "
      "WHERE j.sweep_pk = ? AND s.name IN ('wall_time_s', ?, ?)");
  s.bind(1, sweep_pk);
  s.bind(2, runner::kMainMetrics[0]);
  s.bind(3, runner::kMainMetrics[1]);
  static_assert(std::size(runner::kMainMetrics) == 2, "bind every main metric");
  while (s.executeStep()) {
    f.summaries[s.getColumn(0).getString()][s.getColumn(1).getString()] =
        s.getColumn(2).getDouble();
  }
  auto& t = store.statement(
      "SELECT id, (julianday(COALESCE(ended, 'now')) - julianday(started)) * 86400 FROM jobs "
      "WHERE sweep_pk = ? AND started IS NOT NULL");
  t.bind(1, sweep_pk);
  while (t.executeStep()) {
    f.attempt_seconds[t.getColumn(0).getString()] = t.getColumn(1).getDouble();
  }
  return f;
}

// The params that name each job's arm: active arms by the keys that vary among the active jobs
// (a key the edited file changed for every job does not name them), stale ones by the keys that
// vary among all jobs.
std::vector<runner::Params> naming_params(const std::vector<results::JobRow>& rows,
                                          std::map<std::string, runner::Params>& params) {
  std::vector<std::string> stages, active_stages;
  std::vector<runner::Params> all, active;
  for (const auto& row : rows) {
    stages.push_back(row.stage);
    all.push_back(params[row.id]);
    if (!row.stale) {
      active_stages.push_back(row.stage);
      active.push_back(params[row.id]);
    }
  }
  const auto varying_all = runner::varying_params(stages, all);
  const auto varying_active = runner::varying_params(active_stages, active);
  std::vector<runner::Params> varying;
  for (size_t j = 0, a = 0; j < rows.size(); ++j) {
    varying.push_back(rows[j].stale ? varying_all[j] : varying_active[a++]);
  }
  return varying;
}

// The jobs grouped into arms (stage, arm key, stale), with their counts per column, main metric
// and time; `label_of` gets each job's arm label and `metric_names` the main metrics seen.
std::vector<Arm> arms_of(const std::vector<results::JobRow>& rows, JobFacts& facts,
                         std::map<std::string, std::string>& label_of,
                         std::set<std::string>& metric_names) {
  const auto varying = naming_params(rows, facts.params);
  std::set<std::string> keys;
  for (const auto& v : varying) {
    for (const auto& kv : v) keys.insert(kv.first);
  }
  const auto names = runner::short_key_names(keys);
  std::vector<Arm> arms;
  std::map<std::tuple<std::string, std::string, bool>, size_t> arm_of;  // (stage, key, stale)
  for (size_t j = 0; j < rows.size(); ++j) {
    const auto& row = rows[j];
    const auto [it, added] =
        arm_of.emplace(std::make_tuple(row.stage, row.arm_key, row.stale), arms.size());
    if (added) {
      Arm arm;
      arm.stage = row.stage;
      arm.arm_key = row.arm_key;
      arm.stale = row.stale;
      arm.params = varying[j];
      arm.label = runner::arm_label(row.stage, varying[j], names);
      arms.push_back(arm);
    }
    Arm& arm = arms[it->second];
    label_of[row.id] = arm.label;
    ++arm.count[column_of(row)];
    const auto& sums = facts.summaries[row.id];
    if (row.status == "done" && !row.stale) {
      if (const auto metric = runner::main_metric(sums)) {
        arm.sum += metric->value;
        ++arm.n;
        metric_names.insert(metric->name);
      }
    }
    const auto wall = sums.find("wall_time_s");
    const auto attempt = facts.attempt_seconds.find(row.id);
    arm.seconds += std::max(wall != sums.end() ? wall->second : 0.0,
                            attempt != facts.attempt_seconds.end() ? attempt->second : 0.0);
  }
  return arms;
}

Json arm_json(const Arm& arm, const std::vector<results::JobRow>& rows) {
  Json a;
  a["arm"] = arm.label;
  a["stage"] = arm.stage.empty() ? Json(nullptr) : Json(arm.stage);
  a["arm_key"] = arm.arm_key;
  Json ps = Json::object();
  for (const auto& [k, v] : arm.params) ps[k] = v;
  a["params"] = ps;
  a["stale_arm"] = arm.stale;
  // A stale arm's jobs by the status they had (its "stale" count is all of them).
  for (const auto& c : kColumns) a[c] = arm.count.count(c) ? arm.count.at(c) : 0;
  if (arm.stale) {
    Json by_status = Json::object();
    for (const auto& row : rows) {
      if (row.stale && row.stage == arm.stage && row.arm_key == arm.arm_key)
        by_status[row.status] = by_status.value(row.status, 0) + 1;
    }
    a["statuses"] = by_status;
  }
  a["metric_n"] = arm.n;
  a["metric_mean"] = arm.n > 0 ? Json(arm.sum / arm.n) : Json(nullptr);
  a["time_s"] = std::round(arm.seconds * 10.0) / 10.0;
  return a;
}

// What to run next, each a command with why: nothing while a coordinator runs the sweep (a
// second one is refused); else the jobs left, the failed ones again, pruning stale jobs, and the
// report when every job ran. `out` is the status so far (counts, stale, metric, sequential).
Json next_steps(results::Store& store, const std::string& db, const std::string& name,
                const std::vector<results::JobRow>& rows, const std::vector<Arm>& arms,
                const Json& out) {
  auto counts = out.at("counts").get<std::map<std::string, int>>();
  const int stale = out.at("stale").get<int>();
  const std::string metric = out.at("metric").is_null() ? "" : out.at("metric").get<std::string>();
  const std::string run = run_command_of(store, db, name, rows.empty() ? "" : rows[0].run_dir);
  const std::string on_db = db_flag(db);
  const int running = counts["running"], retry = counts["failed"] + counts["timed_out"];
  int left = counts["pending"] + counts["interrupted"];
  Json next = Json::array();
  if (const long pid = coordinator_pid(store.path(), name); pid > 0) {
    next.push_back("the coordinator with pid " + std::to_string(pid) + " runs the sweep (" +
                   std::to_string(running) + " running); see again: ablate status " +
                   shell_word(name) + on_db);
    return next;
  }
  left += running;  // their coordinator is gone: the next run recovers them
  // Seeds until decided: the last look gave arms more seeds that are not (all) run yet.
  bool adds = false;
  if (!out.at("sequential").is_null()) {
    for (const auto& c : out.at("sequential").at("comparisons")) {
      adds = adds || c["action"].get<std::string>().rfind("add", 0) == 0;
    }
  }
  if (!run.empty()) {
    if (left > 0) next.push_back(run + "   (runs the " + count_of(left, "job") + " left)");
    if (left == 0 && adds) {
      next.push_back(run + "   (adds the seeds the last look asked for, until decided)");
    }
    if (retry > 0) {
      next.push_back(run + " --retry-failed   (runs the " + count_of(retry, "failed job") +
                     " again, from " + (retry == 1 ? "its checkpoint)" : "their checkpoints)"));
    }
  }
  if (stale > 0) {
    next.push_back("ablate prune " + shell_word(name) + on_db + "   (lists the " +
                   count_of(stale, "stale job") + "; --yes deletes them)");
  }
  if (left == 0 && counts["done"] > 0 && !metric.empty()) {
    // The report reads the direction from the metric's name. Its automatic baseline needs an arm
    // with 3 usable runs (--min-seeds): with fewer seeds, say the flag that lets it run.
    int64_t most = 0;
    for (const auto& arm : arms) {
      if (!arm.stale) most = std::max<int64_t>(most, arm.n);
    }
    // A sweep file's report: question is the report's default (ablate report without --metric).
    bool question = false;
    try {
      question = runner::parse_sweep(store.sweep(name)->yaml, name).report.given;
    } catch (const std::exception&) {
      question = false;  // an older file the schema no longer reads: the metric's command
    }
    if (question) {
      next.push_back(
          "ablate report " + shell_word(name) + on_db + "   (the sweep file's report: question" +
          (out.at("sequential").is_null() ? "" : ", with the anytime-valid comparisons") + ")");
    } else if (most < 2) {
      next.push_back("a report needs 2 or more seeds per arm (the arms have " +
                     std::to_string(most) + "): raise the sweep file's seeds: and run it again");
    } else {
      next.push_back("ablate report " + shell_word(name) + on_db + " --metric " + metric +
                     (most == 2 ? " --min-seeds 2" : ""));
    }
  }
  return next;
}

// Everything `ablate status SWEEP` shows, as JSON (the text is printed from it).
Json describe(results::Store& store, const std::string& db, const std::string& name) {
  const auto rows = store.jobs(name);
  JobFacts facts = job_facts(store, store.sweep_pk(name));
  std::map<std::string, std::string> label_of;  // job id -> its arm's label
  std::set<std::string> metric_names;
  const std::vector<Arm> arms = arms_of(rows, facts, label_of, metric_names);
  int stale = 0;
  for (const auto& row : rows) stale += row.stale;

  Json out;
  out["sweep"] = name;
  const std::map<std::string, int> counts = store.status_counts(name);
  out["counts"] = counts;  // active jobs by status (stale ones left out)
  int total = 0;
  for (const auto& [k, n] : counts) total += n;
  out["total"] = total;
  out["stale"] = stale;
  const auto env = store.environment(name);
  const auto file = env.find("sweep_file");
  out["sweep_file"] = file != env.end() ? Json(shown_path(file->second)) : Json(nullptr);
  out["metric"] = metric_names.size() == 1 ? Json(*metric_names.begin()) : Json(nullptr);
  Json arms_json = Json::array();
  for (const auto& arm : arms) arms_json.push_back(arm_json(arm, rows));
  out["arms"] = arms_json;
  out["sequential"] = sequential_json(store, name);

  Json failures = Json::array();
  for (const auto& row : rows) {
    if (!ended_badly(row)) continue;
    failures.push_back({{"id", row.id},
                        {"status", row.status},
                        {"error", row.error},
                        {"arm", label_of[row.id]},
                        {"seed", row.seed},
                        {"exit_code", row.exit_code ? Json(*row.exit_code) : Json(nullptr)},
                        {"next", rerun_hint(store, db, row)}});
  }
  out["failures"] = failures;
  out["next"] = next_steps(store, db, name, rows, arms, out);
  return out;
}

std::string pad(const std::string& s, size_t width, bool right) {
  if (s.size() >= width) return s;
  const std::string fill(width - s.size(), ' ');
  return right ? fill + s : s + fill;
}

// The sweep's line: "sweep NAME: 12 jobs, 7 done, 1 failed" (statuses with jobs, stale apart).
std::string counts_line(const Json& s) {
  std::string line =
      "sweep " + s["sweep"].get<std::string>() + ": " + count_of(s["total"].get<int>(), "job");
  for (const auto& [k, n] : s["counts"].items()) {
    if (n.get<int>() > 0) line += ", " + std::to_string(n.get<int>()) + " " + k;
  }
  if (s["stale"].get<int>() > 0)
    line += " (and " + std::to_string(s["stale"].get<int>()) + " stale)";
  return line;
}

// A JSON number of sequential_json as text ("inf" strings stay).
std::string shown_number(const Json& x) {
  if (x.is_null()) return "n/a";
  if (x.is_string()) return x.get<std::string>();
  return number_text(x.get<double>());
}

// Seeds until decided: per comparison of the last look, its seeds, its confidence sequence and
// what the coordinator decided.
void print_sequential(const Json& q) {
  std::cout << "\nseeds until decided (look " << q["look"].get<int64_t>() << ", at most "
            << q["max_seeds"].get<int64_t>() << " seeds per arm; anytime-valid):\n";
  std::vector<std::vector<std::string>> table{
      {"arm", "vs", "seeds", "confidence sequence", "level", "e-value", "state"}};
  for (const auto& c : q["comparisons"]) {
    std::string arm = c["arm"].get<std::string>();
    if (c["family"].get<std::string>() != "baseline")
      arm += " [" + c["family"].get<std::string>() + "]";
    const std::string state = c["decided"].get<bool>()      ? "decided"
                              : c["equivalent"].get<bool>() ? "equivalent"
                                                            : "undecided";
    table.push_back({arm, c["reference"].get<std::string>(),
                     std::to_string(c["seeds"].get<int64_t>()),
                     "[" + shown_number(c["cs_low"]) + ", " + shown_number(c["cs_high"]) + "]",
                     shown_number(c["level"]), shown_number(c["e_value"]),
                     state + " (" + c["action"].get<std::string>() + ")"});
  }
  std::vector<size_t> width(table[0].size(), 0);
  for (const auto& row : table) {
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  }
  for (const auto& row : table) {
    std::string line = " ";
    for (size_t c = 0; c < row.size(); ++c) {
      const bool right = c == 2 || c == 4 || c == 5;
      line += "  " + pad(row[c], c + 1 < row.size() ? width[c] : 0, right);
    }
    std::cout << line << "\n";
  }
}

void print_sweep(const Json& s) {
  std::cout << counts_line(s) << "\n";
  // The table: the arm, the job columns (diverged only when any), the metric, the time.
  // Stale arms are listed apart, after it.
  std::vector<std::string> columns;
  for (const auto& c : kColumns) {
    if (c == "stale") continue;
    bool any = c != "diverged";
    for (const auto& a : s["arms"]) any = any || a[c].get<int>() > 0;
    if (any) columns.push_back(c);
  }
  const bool metric = !s["metric"].is_null();
  std::vector<std::string> header{"arm"};
  header.insert(header.end(), columns.begin(), columns.end());
  if (metric) header.push_back("mean " + s["metric"].get<std::string>());
  header.push_back("time");
  std::vector<std::vector<std::string>> table{header};
  for (const auto& a : s["arms"]) {
    if (a["stale_arm"].get<bool>()) continue;
    std::vector<std::string> row{a["arm"].get<std::string>()};
    for (const auto& c : columns) row.push_back(std::to_string(a[c].get<int>()));
    if (metric) {
      row.push_back(
          a["metric_mean"].is_null() ? "-" : runner::format_metric(a["metric_mean"].get<double>()));
    }
    row.push_back(runner::format_duration(a["time_s"].get<double>()));
    table.push_back(row);
  }
  std::vector<size_t> width(header.size(), 0);
  for (const auto& row : table) {
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  }
  for (const auto& row : table) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      // The arm and the time left-aligned, the numbers right-aligned.
      const bool right = c > 0 && c + 1 < row.size();
      line += (c ? "  " : "") + pad(row[c], c + 1 < row.size() ? width[c] : 0, right);
    }
    std::cout << line << "\n";
  }

  if (s["stale"].get<int>() > 0) {
    const std::string file =
        s["sweep_file"].is_null() ? "the sweep file" : s["sweep_file"].get<std::string>();
    std::cout << "\nstale: " << count_of(s["stale"].get<int>(), "job") << " no longer in " << file
              << " (kept with their results; left out of reports):\n";
    for (const auto& a : s["arms"]) {
      if (!a["stale_arm"].get<bool>()) continue;
      std::string statuses;
      for (const auto& [status, n] : a["statuses"].items())
        statuses += (statuses.empty() ? "" : ", ") + std::to_string(n.get<int>()) + " " + status;
      std::cout << "  " << a["arm"].get<std::string>() << "  "
                << count_of(a["stale"].get<int>(), "job") << " (" << statuses << ")\n";
    }
  }
  if (!s["sequential"].is_null()) print_sequential(s["sequential"]);
  if (!s["failures"].empty()) {
    std::cout << "\nfailures (" << s["failures"].size() << "):\n";
    std::string previous_log, previous_next;
    for (const auto& f : s["failures"]) {
      // The reason's first line, then the job's last log lines, each whole. Seeds of one
      // process share their output and their command: shown once, for the first of them.
      const std::string status = f["status"].get<std::string>();
      const std::string error = f["error"].get<std::string>();
      const size_t cut = error.find('\n');
      const std::string first = error.substr(0, cut);
      const std::string log = cut == std::string::npos ? "" : error.substr(cut + 1);
      // A job's output is shown, never replayed: control characters as \xNN (printable.h).
      std::cout << "  " << f["arm"].get<std::string>() << " seed " << f["seed"].get<int64_t>()
                << " (job " << f["id"].get<std::string>() << ") " << status << ": "
                << results::printable(runner::reason_line(status, first)) << "\n";
      if (!log.empty() && log == previous_log) {
        std::cout << "    | (the same output as above)\n";
      } else {
        std::istringstream lines(log);
        for (std::string line; std::getline(lines, line);) {
          std::cout << "    | " << results::printable(line) << "\n";
        }
      }
      const std::string next = f["next"].get<std::string>();
      if (!next.empty() && next != previous_next) std::cout << "    " << next << "\n";
      previous_log = log;
      previous_next = next;
    }
  }
  if (!s["next"].empty()) {
    std::cout << "\n";
    for (const auto& n : s["next"]) std::cout << "next: " << n.get<std::string>() << "\n";
  }
}

}  // namespace

int command_status(const std::vector<std::string>& args) {
  const CommandInfo info{
      "status", "[--db FILE] [SWEEP] [--json]",
      "A sweep's jobs by status and by arm, its failures with their reasons, what to run next.",
      "Arms are named by the keys whose values differ between the sweep's jobs. Without SWEEP:\n"
      "one line per sweep (all of it for a database with one sweep). --json prints every sweep\n"
      "(or SWEEP) in full: counts, arms, failures and the next commands."};
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
  const auto known = store.sweeps();
  if (!sweep.empty() && std::find(known.begin(), known.end(), sweep) == known.end()) {
    std::cerr << "ablate status: no sweep '" << sweep << "' in " << db << " (sweeps:";
    for (const auto& k : known) std::cerr << " " << k;
    std::cerr << ")\n";
    return kBadInput;
  }
  const std::vector<std::string> names = sweep.empty() ? known : std::vector<std::string>{sweep};
  Json out = Json::array();
  for (const auto& name : names) out.push_back(describe(store, db, name));
  if (vm.count("json")) {
    std::cout << out.dump(-1, ' ', false, Json::error_handler_t::replace) << "\n";
    return kOk;
  }
  if (out.size() == 1) {
    print_sweep(out[0]);
    return kOk;
  }
  for (const auto& s : out) std::cout << counts_line(s) << "\n";
  if (!out.empty())
    std::cout << "\nablate status SWEEP shows a sweep's arms, failures and what next\n";
  return kOk;
}

}  // namespace ablate::cli
