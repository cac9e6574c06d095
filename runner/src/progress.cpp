#include "ablate/runner/progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>

#include "ablate/runner/canonical.h"
#include "ablate/runner/executor.h"
#include "ablate/runner/schema.h"

namespace ablate::runner {

namespace {

bool finished_well(const std::string& s) { return s == "done" || s == "diverged"; }
bool ended_badly(const std::string& s) {
  return s == "failed" || s == "timed_out" || s == "skipped";
}

size_t terminal_width(int fd) {
  winsize w{};
  if (ioctl(fd, TIOCGWINSZ, &w) == 0 && w.ws_col > 0) return w.ws_col;
  const char* columns = std::getenv("COLUMNS");
  const int n = columns != nullptr ? std::atoi(columns) : 0;
  return n > 0 ? static_cast<size_t>(n) : 100;
}

// The position of a key in the schema (unknown keys after every known one).
size_t schema_rank(const std::string& key) {
  const auto& fields = schema();
  for (size_t i = 0; i < fields.size(); ++i) {
    if (fields[i].key == key) return i;
  }
  return fields.size();
}

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

}  // namespace

// ----- arms -----

std::map<std::string, std::string> short_key_names(const std::set<std::string>& keys) {
  std::map<std::string, int> uses;
  auto last = [](const std::string& key) { return key.substr(key.rfind('.') + 1); };
  for (const auto& k : keys) ++uses[last(k)];
  std::map<std::string, std::string> names;
  for (const auto& k : keys) names[k] = uses[last(k)] == 1 ? last(k) : k;
  return names;
}

std::string arm_label(const std::string& stage, const Params& params,
                      const std::map<std::string, std::string>& names) {
  std::string out = stage;
  for (const auto& [key, value] : params) {
    const auto name = names.find(key);
    out += (out.empty() ? "" : " ") + (name != names.end() ? name->second : key) + "=" + value;
  }
  return out.empty() ? "(base)" : out;
}

std::map<std::string, std::string> arm_labels(const std::vector<JobSpec>& jobs) {
  // Of the plan's params, the keys whose value differs between jobs of the stage (the plan also
  // shows a key its grid cell sets, when every job has the same value); a key some jobs of the
  // stage lack differs too.
  struct Seen {
    std::set<std::string> values;
    size_t jobs = 0;
  };
  std::map<std::string, std::map<std::string, Seen>> seen;  // stage -> key -> values
  std::map<std::string, size_t> members;
  for (const auto& job : jobs) {
    ++members[job.stage];
    for (const auto& [key, value] : job.params) {
      Seen& s = seen[job.stage][key];
      s.values.insert(value);
      ++s.jobs;
    }
  }
  std::map<std::string, Params> shown;
  std::set<std::string> keys;
  for (const auto& job : jobs) {
    for (const auto& [key, value] : job.params) {
      const Seen& s = seen[job.stage][key];
      if (s.values.size() > 1 || s.jobs < members[job.stage]) {
        shown[job.id].emplace_back(key, value);
        keys.insert(key);
      }
    }
  }
  const auto names = short_key_names(keys);
  std::map<std::string, std::string> labels;
  for (const auto& job : jobs) labels[job.id] = arm_label(job.stage, shown[job.id], names);
  return labels;
}

std::vector<Params> varying_params(const std::vector<std::string>& stages,
                                   const std::vector<Params>& params) {
  // Per stage and key, the distinct values; a key a job lacks (another task's field) counts as
  // a value of its own.
  // A key the job's variant ignores (noise_scale of a gqa job) neither counts nor names it.
  std::vector<std::set<std::string>> ignored(params.size());
  for (size_t j = 0; j < params.size(); ++j) {
    std::string variant, faithful;
    for (const auto& [key, value] : params[j]) {
      if (key == "attention.variant") variant = value;
      if (key == "attention.faithful") faithful = value;
    }
    if (!variant.empty()) ignored[j] = ignored_attention_keys(variant, faithful == "true");
  }
  std::map<std::string, std::map<std::string, std::set<std::string>>> values;
  std::map<std::string, size_t> members;
  for (size_t j = 0; j < params.size(); ++j) {
    ++members[stages[j]];
    for (const auto& [key, value] : params[j]) {
      if (ignored[j].count(key) == 0) values[stages[j]][key].insert(value);
    }
  }
  std::vector<Params> out(params.size());
  for (size_t j = 0; j < params.size(); ++j) {
    for (const auto& [key, value] : params[j]) {
      if (key == "seed" || key == "init.from" || ignored[j].count(key) != 0) continue;
      const auto& seen = values[stages[j]][key];
      if (seen.size() > 1) out[j].emplace_back(key, value);
    }
    std::stable_sort(out[j].begin(), out[j].end(), [](const auto& a, const auto& b) {
      const size_t ra = schema_rank(a.first), rb = schema_rank(b.first);
      return ra != rb ? ra < rb : a.first < b.first;
    });
  }
  return out;
}

// ----- metrics and times -----

std::optional<MainMetric> main_metric(const std::map<std::string, double>& summaries) {
  for (const char* name : kMainMetrics) {
    const auto it = summaries.find(name);
    if (it != summaries.end()) return MainMetric{name, it->second};
  }
  return std::nullopt;
}

std::string reason_line(const std::string& status, const std::string& error) {
  const std::string line = first_line(error);
  return line.rfind(status + ": ", 0) == 0 ? line.substr(status.size() + 2) : line;
}

std::map<std::string, double> job_summaries(results::Store& store, const std::string& sweep,
                                            const std::string& id) {
  auto& st = store.statement("SELECT name, value FROM summaries WHERE job = ?");
  st.bind(1, static_cast<int64_t>(store.job_pk(sweep, id)));
  std::map<std::string, double> out;
  while (st.executeStep()) out[st.getColumn(0).getString()] = st.getColumn(1).getDouble();
  return out;
}

std::string format_duration(double seconds) {
  const long long s = std::llround(std::max(0.0, seconds));
  char buf[48];
  if (s < 60) {
    std::snprintf(buf, sizeof buf, "%lld s", s);
  } else if (s < 3600) {
    std::snprintf(buf, sizeof buf, "%lld min %lld s", s / 60, s % 60);
  } else if (s < 86400) {
    std::snprintf(buf, sizeof buf, "%lld h %02lld min", s / 3600, s / 60 % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%lld d %02lld h", s / 86400, s / 3600 % 24);
  }
  return buf;
}

std::string format_metric(double value) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", value);
  return buf;
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// ----- the estimate -----

std::optional<double> eta_seconds(const std::vector<JobSteps>& jobs, double elapsed_s) {
  int64_t trained = 0, known_total = 0, known = 0;
  for (const auto& j : jobs) {
    if (j.this_run) trained += std::max<int64_t>(0, j.now - j.at_start);
    if (j.total > 0) {
      known_total += j.total;
      ++known;
    }
  }
  if (trained <= 0 || elapsed_s <= 0) return std::nullopt;
  double left = 0.0;
  for (const auto& j : jobs) {
    if (j.state == JobSteps::State::kFinished) continue;
    if (j.total <= 0 && known == 0) return std::nullopt;
    const double total = j.total > 0
                             ? static_cast<double>(j.total)
                             : static_cast<double>(known_total) / static_cast<double>(known);
    left += std::max(0.0, total - static_cast<double>(j.now));
  }
  return left / (static_cast<double>(trained) / elapsed_s);
}

// ----- the lines -----

namespace {
// The summary without the ETA: how the terminal's line ends the run.
std::string counts_text(const ProgressCounts& c) {
  std::string out =
      std::to_string(c.done_here) + "/" + std::to_string(c.total - c.before) + " done";
  if (c.before > 0) out += " (" + std::to_string(c.before) + " before this run)";
  out += ", " + std::to_string(c.running) + " running";
  if (c.failed > 0) out += ", " + std::to_string(c.failed) + " failed";
  return out;
}
}  // namespace

std::string progress_summary(const ProgressCounts& c, std::optional<double> eta) {
  return counts_text(c) + ", ETA " + (eta ? format_duration(*eta) : std::string("--"));
}

std::string progress_line(const std::string& summary, const std::vector<std::string>& notes,
                          size_t width) {
  const size_t room = width > 1 ? width - 1 : 0;
  std::string out = summary;
  for (const auto& n : notes) {
    if (out.size() + 3 + n.size() > room) break;
    out += " | " + n;
  }
  return out.size() > room ? out.substr(0, room) : out;
}

std::string job_line(const std::string& time, const std::string& event, const std::string& arm,
                     int64_t seed, const std::vector<std::string>& details) {
  std::string padded = event;
  if (padded.size() < 9) padded.resize(9, ' ');
  std::string out = time + "  " + padded + "  " + arm + "  seed " + std::to_string(seed);
  for (const auto& d : details) {
    if (!d.empty()) out += "  " + d;
  }
  return out;
}

// ----- the reporter -----

ProgressMode progress_mode(bool wanted, int fd) {
  if (!wanted) return ProgressMode::kOff;
  return isatty(fd) ? ProgressMode::kTerminal : ProgressMode::kLog;
}

Progress::Progress(ProgressMode mode, std::ostream& out, results::Store& store,
                   const std::string& sweep, const std::vector<JobSpec>& jobs,
                   const std::map<std::string, std::string>& status, size_t width)
    : mode_(mode),
      out_(out),
      store_(store),
      sweep_(sweep),
      width_(width > 0 ? width : terminal_width(STDERR_FILENO)),
      seconds_(monotonic_seconds),
      utc_(utc_now) {
  const auto labels = arm_labels(jobs);
  for (const auto& spec : jobs) {
    Job& job = jobs_[spec.id];
    order_.push_back(spec.id);
    job.spec = &spec;
    job.label = labels.at(spec.id);
    const auto s = status.find(spec.id);
    job.status = s != status.end() ? s->second : "pending";
    job.steps.total = spec.config.train.epochs > 0 ? 0 : spec.config.train.steps;
    if (finished_well(job.status)) {
      ++before_;
      job.steps.state = JobSteps::State::kFinished;
    } else if (job.status == "running") {  // adopted from an earlier coordinator (Slurm)
      job.steps.state = JobSteps::State::kRunning;
      job.steps.this_run = true;
      refresh(job);
      job.steps.at_start = job.steps.now;
    } else if (ended_badly(job.status)) {
      job.steps.state = JobSteps::State::kFinished;  // until this run starts it again
    }
  }
  started_at_ = seconds_();
}

void Progress::set_clocks(std::function<double()> seconds, std::function<std::string()> utc) {
  seconds_ = std::move(seconds);
  utc_ = std::move(utc);
  started_at_ = seconds_();
}

void Progress::refresh(Job& job) {
  const int64_t pk = store_.job_pk(sweep_, job.spec->id);
  auto& step = store_.statement(
      "SELECT step, value FROM metrics WHERE job = ? AND name = 'train/loss' "
      "ORDER BY step DESC LIMIT 1");
  step.bind(1, pk);
  if (step.executeStep()) {
    job.steps.now = step.getColumn(0).getInt64();
    job.loss = step.getColumn(1).getDouble();
    job.has_loss = true;
  }
  if (job.steps.total <= 0) {  // train.epochs: the job's summary.json says how many steps
    auto& total = store_.statement("SELECT value FROM summaries WHERE job = ? AND name = 'steps'");
    total.bind(1, pk);
    if (total.executeStep()) job.steps.total = total.getColumn(0).getInt64();
  }
}

ProgressCounts Progress::counts() const {
  ProgressCounts c;
  c.total = static_cast<int>(jobs_.size());
  c.before = before_;
  for (const auto& [id, job] : jobs_) {
    c.running += job.status == "running";
    c.failed += ended_badly(job.status);
  }
  int well = 0;
  for (const auto& [id, job] : jobs_) well += finished_well(job.status);
  c.done_here = well - before_;
  return c;
}

std::optional<double> Progress::eta() {
  std::vector<JobSteps> steps;
  for (auto& [id, job] : jobs_) {
    if (job.status == "running") refresh(job);
    steps.push_back(job.steps);
  }
  return eta_seconds(steps, seconds_() - started_at_);
}

void Progress::print(const std::string& line) {
  if (mode_ == ProgressMode::kTerminal && drawn_) out_ << "\r\033[K";
  drawn_ = false;
  out_ << line << "\n" << std::flush;
  drawn_at_ = -1e9;  // redraw the line under it at the next tick
}

std::string Progress::suffix() {
  const ProgressCounts c = counts();
  std::string s =
      "[" + std::to_string(c.done_here) + "/" + std::to_string(c.total - c.before) + " done";
  if (c.failed > 0) s += ", " + std::to_string(c.failed) + " failed";
  const auto left = eta();
  return s + ", ETA " + (left ? format_duration(*left) : std::string("--")) + "]";
}

void Progress::begin() {
  if (mode_ != ProgressMode::kLog) return;
  const ProgressCounts c = counts();
  std::string line = utc_() + "  sweep " + sweep_ + ": " + std::to_string(c.total) +
                     (c.total == 1 ? " job" : " jobs");
  if (c.before > 0) line += ", " + std::to_string(c.before) + " done before this run";
  print(line + ", " + std::to_string(c.total - c.before) + " to run");
}

void Progress::started(const std::string& id, const std::string& device) {
  const auto it = jobs_.find(id);
  if (it == jobs_.end()) return;
  Job& job = it->second;
  job.status = "running";
  job.steps.state = JobSteps::State::kRunning;
  job.steps.this_run = true;
  job.has_loss = false;
  refresh(job);  // a resumed job starts from the steps it had
  job.steps.at_start = job.steps.now;
  if (mode_ == ProgressMode::kLog) {
    print(
        job_line(utc_(), "start", job.label, job.spec->seed, {"on " + device, "(job " + id + ")"}));
  }
}

void Progress::ended(const std::string& id, const std::string& status, const std::string& reason) {
  const auto it = jobs_.find(id);
  if (it == jobs_.end()) return;
  Job& job = it->second;
  if (job.status == "running") refresh(job);
  job.status = status;
  const bool again = status == "interrupted";  // the next run resumes it
  job.steps.state = again ? JobSteps::State::kWaiting : JobSteps::State::kFinished;
  if (mode_ == ProgressMode::kOff) return;

  std::vector<std::string> details;
  const auto summaries = job_summaries(store_, sweep_, id);
  if (status == "done") {
    const auto metric = main_metric(summaries);
    if (metric) details.push_back(metric->name + " " + format_metric(metric->value));
    if (job.steps.total > 0) job.steps.now = job.steps.total;
  } else if (status == "diverged") {
    const auto step = summaries.find("diverged_step");
    details.push_back(step != summaries.end()
                          ? "at step " + std::to_string(static_cast<int64_t>(step->second))
                          : "");
  } else {
    details.push_back(reason_line(status, reason));
  }
  auto& time = store_.statement(
      "SELECT (julianday(ended) - julianday(started)) * 86400 FROM jobs WHERE pk = ? "
      "AND started IS NOT NULL AND ended IS NOT NULL");
  time.bind(1, static_cast<int64_t>(store_.job_pk(sweep_, id)));
  if (time.executeStep()) details.push_back(format_duration(time.getColumn(0).getDouble()));
  if (status != "done") details.push_back("(job " + id + ")");
  if (mode_ == ProgressMode::kLog) details.push_back(suffix());
  print(job_line(utc_(), status, job.label, job.spec->seed, details));
}

void Progress::tick() {
  if (mode_ != ProgressMode::kTerminal) return;
  const double now = seconds_();
  if (now - drawn_at_ < 1.0) return;
  drawn_at_ = now;
  const auto left = eta();  // refreshes the running jobs' steps
  std::vector<std::string> notes;
  for (const auto& id : order_) {
    const Job& job = jobs_.at(id);
    if (job.status != "running") continue;
    std::string note = job.label + " s" + std::to_string(job.spec->seed);
    if (job.has_loss) {
      note += " " + std::to_string(job.steps.now);
      if (job.steps.total > 0) note += "/" + std::to_string(job.steps.total);
      note += " loss " + format_metric(job.loss);
    }
    notes.push_back(note);
  }
  out_ << "\r" << progress_line(progress_summary(counts(), left), notes, width_) << "\033[K"
       << std::flush;
  drawn_ = true;
}

void Progress::finish() {
  if (mode_ == ProgressMode::kTerminal) {  // the counts as the run leaves them
    out_ << "\r" << counts_text(counts()) << "\033[K\n" << std::flush;
  }
  drawn_ = false;
}

}  // namespace ablate::runner
