#include "ablate/runner/slurm.h"

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "ablate/results/files.h"
#include "ablate/results/printable.h"
#include "ablate/runner/command.h"

namespace ablate::runner {
namespace fs = std::filesystem;
namespace {

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\n')) ++i;
  return s.substr(i);
}

// The #SBATCH options shared by submissions and the --test-only check.
std::vector<std::string> sbatch_options(const SlurmOptions& o, double timeout_s) {
  std::vector<std::string> out;
  if (!o.partition.empty()) out.push_back("--partition=" + o.partition);
  if (!o.time_limit.empty()) {
    out.push_back("--time=" + o.time_limit);
  } else if (timeout_s > 0) {
    out.push_back("--time=" + std::to_string(std::max<int64_t>(
                                  1, static_cast<int64_t>(std::ceil(timeout_s / 60.0)))));
  }
  if (o.gpus_per_task > 0) out.push_back("--gpus-per-task=" + std::to_string(o.gpus_per_task));
  if (o.cpus_per_task > 0) out.push_back("--cpus-per-task=" + std::to_string(o.cpus_per_task));
  if (!o.memory.empty()) out.push_back("--mem=" + o.memory);
  if (!o.account.empty()) out.push_back("--account=" + o.account);
  for (const auto& e : o.extra) out.push_back(e);
  return out;
}

// A value in a message: quoted, control characters (newlines too, unlike results::printable,
// since the value is one line of a message), non-ASCII bytes, quotes and backslashes as \xNN, at
// most 80 characters (a hostile value is neither echoed whole nor sent raw to the terminal).
std::string quote_for_message(const std::string& value) {
  std::string out = "\"";
  for (size_t i = 0; i < value.size() && i < 80; ++i) {
    const auto c = static_cast<unsigned char>(value[i]);
    if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
      char code[8];
      std::snprintf(code, sizeof code, "\\x%02x", c);
      out += code;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + (value.size() > 80 ? "...\"" : "\"");
}

// " env 'NAME=VALUE' ... 'ARG' ...": a command line for the batch script, every word quoted.
std::string command_words(const std::vector<std::pair<std::string, std::string>>& env,
                          const std::vector<std::string>& argv) {
  std::string out;
  if (!env.empty()) {
    out += " env";
    for (const auto& [name, value] : env) out += " " + shell_quote(name + "=" + value);
  }
  for (const auto& a : argv) out += " " + shell_quote(a);
  return out;
}

SlurmError sbatch_missing(const std::string& sbatch) {
  return SlurmError("sbatch not found (" + sbatch +
                    "): --backend slurm runs on a Slurm submit host (Debian: slurm-client)");
}

}  // namespace

std::string slurm_text_problem(const std::string& value, bool one_word) {
  for (const char byte : value) {
    const auto c = static_cast<unsigned char>(byte);
    if (c < 0x20 || c == 0x7f) {
      char code[8];
      std::snprintf(code, sizeof code, "0x%02x", c);
      return std::string("contains a control character (") +
             (c == '\n'   ? "a newline"
              : c == '\r' ? "a carriage return"
              : c == '\t' ? "a tab"
                          : code) +
             "): it would break the batch script's line";
    }
  }
  if (results::first_invalid_utf8(value) != std::string::npos) {
    return "contains bytes that are not UTF-8 text";
  }
  if (one_word && value.find_first_of(" \"'\\") != std::string::npos) {
    return "contains a space or a quote: sbatch reads an #SBATCH option as one word";
  }
  if (!one_word && (value.empty() || value[0] != '-')) {
    return "an #SBATCH line is an sbatch option (--qos=high), starting with '-'";
  }
  return "";
}

void check_slurm_texts(const SlurmOptions& o) {
  const std::pair<const char*, const std::string*> words[] = {
      {"partition", &o.partition}, {"time", &o.time_limit},
      {"mem", &o.memory},          {"account", &o.account},
      {"job name", &o.job_name},   {"script folder (--workdir)", &o.script_dir}};
  for (const auto& [what, value] : words) {
    const std::string why = slurm_text_problem(*value, true);
    if (!why.empty())
      throw SlurmError(std::string(what) + " " + quote_for_message(*value) + ": " + why);
  }
  for (const auto& line : o.extra) {
    const std::string why = slurm_text_problem(line, false);
    if (!why.empty()) throw SlurmError("sbatch line " + quote_for_message(line) + ": " + why);
  }
}

std::string sbatch_script(const SlurmOptions& o, const std::string& name,
                          const std::vector<Launch>& launches) {
  if (launches.empty()) throw std::invalid_argument("sbatch_script: no jobs");
  check_slurm_texts(o);  // never write a line a value could break
  double timeout_s = 0;
  for (const auto& l : launches) timeout_s = std::max(timeout_s, l.timeout_s);
  std::ostringstream s;
  s << "#!/bin/bash\n";
  s << "#SBATCH --job-name=" << o.job_name << (name.empty() ? "" : "-" + name) << "\n";
  s << "#SBATCH --array=0-" << launches.size() - 1
    << (o.max_parallel > 0 ? "%" + std::to_string(o.max_parallel) : "") << "\n";
  if (!o.script_dir.empty()) s << "#SBATCH --output=" << o.script_dir << "/%x-%A_%a.out\n";
  // Retries belong to the coordinator (it counts them and resumes from the checkpoint); a task
  // Slurm requeued by itself after a node failure would run outside that count.
  s << "#SBATCH --no-requeue\n";
  for (const auto& line : sbatch_options(o, timeout_s)) s << "#SBATCH " << line << "\n";
  s << "# Written by ablate run --backend slurm: array task i trains job i, or the seeds of one\n"
       "# arm together (--seeds-per-process), in their run dirs on the shared filesystem; it\n"
       "# appends to the first job's RUN_DIR/output.txt and leaves its exit status in each job's\n"
       "# RUN_DIR/slurm_exit for the coordinator, which is the only database writer.\n"
       "set -u\n"
       "others=()\n"
       "case \"$SLURM_ARRAY_TASK_ID\" in\n";
  for (size_t i = 0; i < launches.size(); ++i) {
    const Launch& l = launches[i];
    const auto members = members_of(l);
    s << "  " << i << ")  # job " << l.job_id;
    if (members.size() > 1) {
      s << " with";
      for (size_t m = 1; m < members.size(); ++m) s << " " << members[m].job_id;
    }
    s << "\n    run_dir=" << shell_quote(l.run_dir) << "\n";
    if (members.size() > 1) {
      s << "    others=(";
      for (size_t m = 1; m < members.size(); ++m) {
        s << (m > 1 ? " " : "") << shell_quote(members[m].run_dir);
      }
      s << ")\n";
    }
    s << "    set --" << command_words(l.env, l.argv) << " ;;\n";
  }
  s << "  *) echo \"ablate: no job for array task $SLURM_ARRAY_TASK_ID\" >&2; exit 2 ;;\n"
       "esac\n"
       "\"$@\" >>\"$run_dir/output.txt\" 2>&1\n"
       "status=$?\n"
       "for dir in \"$run_dir\" ${others[@]+\"${others[@]}\"}; do\n"
       "  echo \"$status\" >\"$dir/slurm_exit.tmp\" && mv \"$dir/slurm_exit.tmp\" "
       "\"$dir/slurm_exit\"\n"
       "done\n"
       "exit \"$status\"\n";
  return s.str();
}

std::string parse_sbatch_output(const std::string& out) {
  const std::string text = trim(out);
  const std::string id = text.substr(0, text.find(';'));
  if (id.empty() || id.find_first_not_of("0123456789") != std::string::npos) {
    throw SlurmError("sbatch did not print a job id: " + text);
  }
  return id;
}

std::map<std::string, std::string> parse_squeue(const std::string& out) {
  std::map<std::string, std::string> states;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    std::string id, state;
    if (!(words >> id >> state)) continue;
    const auto underscore = id.find('_');
    // Pending tasks may still be listed as a range ("123_[4-7%2]"): not one task, skip.
    if (underscore == std::string::npos || id.find('[') != std::string::npos) continue;
    states[id] = state;
  }
  return states;
}

SlurmOutcome slurm_outcome(const std::string& state) {
  SlurmOutcome o;
  if (state == "COMPLETED" || state == "FAILED") {
    o.ended = true;
  } else if (state == "TIMEOUT") {
    o.ended = o.timed_out = true;
  } else if (state == "OUT_OF_MEMORY") {
    o.ended = o.out_of_memory = true;
  } else if (state == "CANCELLED" || state == "PREEMPTED" || state == "NODE_FAIL" ||
             state == "BOOT_FAIL" || state == "DEADLINE" || state == "REVOKED" ||
             state == "SPECIAL_EXIT") {
    o.ended = o.lost = true;
  }
  return o;
}

std::string run_node_job(const SlurmOptions& o, const NodeJob& job) {
  check_slurm_texts(o);
  if (const std::string why = slurm_text_problem(job.time_limit, true); !why.empty()) {
    throw SlurmError("time " + quote_for_message(job.time_limit) + ": " + why);
  }
  // The node's CPUs, GPUs and memory are the job's (--exclusive), not one task's.
  SlurmOptions whole_node = o;
  whole_node.gpus_per_task = 0;
  whole_node.cpus_per_task = 0;
  whole_node.memory.clear();
  whole_node.time_limit = job.time_limit;
  fs::create_directories(o.script_dir);
  const auto stamp = std::chrono::system_clock::now().time_since_epoch().count();
  const std::string base =
      (fs::path(o.script_dir) / (job.name + "-" + std::to_string(stamp))).string();
  std::ostringstream s;
  s << "#!/bin/bash\n"
    << "#SBATCH --job-name=" << o.job_name << "-" << job.name << "\n"
    << "#SBATCH --output=" << base << ".out\n"
    << "#SBATCH --error=" << base << ".err\n"
    << "#SBATCH --nodes=1\n#SBATCH --ntasks=1\n#SBATCH --exclusive\n#SBATCH --no-requeue\n";
  for (const auto& line : sbatch_options(whole_node, 0)) s << "#SBATCH " << line << "\n";
  s << "# Written by ablate: one job on a whole node, waited for.\n"
    << "exec" << command_words(job.env, job.argv) << "\n";
  const std::string script = base + ".sh";
  results::write_file(script, s.str());
  const CommandResult r = run_command({o.sbatch, "--parsable", "--wait", script});
  if (r.status == 127) throw sbatch_missing(o.sbatch);
  if (r.status != 0) {
    const std::string err = read_text(base + ".err");
    const std::string tail = err.substr(err.size() > 4000 ? err.size() - 4000 : 0);
    throw SlurmError("the Slurm job " + script + " failed (sbatch --wait: status " +
                     std::to_string(r.status) + "): " + trim(r.output) +
                     (tail.empty() ? "" : "\n" + trim(tail)));
  }
  return read_text(base + ".out");
}

SlurmExecutor::SlurmExecutor(SlurmOptions options) : options_(std::move(options)) {}

void SlurmExecutor::check() const {
  std::vector<std::string> argv = {options_.sbatch, "--test-only", "--job-name=ablate-check"};
  for (const auto& o : sbatch_options(options_, 0)) argv.push_back(o);
  argv.push_back("--wrap=true");
  const CommandResult r = run_command(argv);
  if (r.status == 127) throw sbatch_missing(options_.sbatch);
  if (r.status != 0) {
    // sbatch without a cluster to ask is not a refusal of the options.
    const bool no_cluster =
        r.output.find("configuration source") != std::string::npos ||
        r.output.find("Unable to contact slurm controller") != std::string::npos;
    throw SlurmError((no_cluster ? "sbatch cannot reach a Slurm cluster from here (no "
                                   "configuration: SLURM_CONF, /etc/slurm/slurm.conf; or no "
                                   "controller): "
                                 : "Slurm refuses these options: ") +
                     trim(r.output));
  }
}

std::string SlurmExecutor::start(const Launch& launch) {
  // A stale exit status from an earlier attempt must not be read as this one's.
  for (const auto& member : members_of(launch)) {
    std::error_code ec;
    fs::remove(fs::path(member.run_dir) / "slurm_exit", ec);
  }
  queued_.push_back(launch);
  return "";
}

std::vector<std::pair<std::string, std::string>> SlurmExecutor::flush() {
  std::vector<std::pair<std::string, std::string>> handles;
  if (queued_.empty()) return handles;
  ++waves_;
  const std::string script = sbatch_script(options_, "", queued_);
  fs::create_directories(options_.script_dir);
  // Unique per submission, so a re-run never overwrites the script of a wave still queued.
  const auto stamp = std::chrono::system_clock::now().time_since_epoch().count();
  const fs::path file = fs::path(options_.script_dir) /
                        ("wave-" + std::to_string(stamp) + "-" + std::to_string(waves_) + ".sh");
  results::write_file(file, script);
  const CommandResult r = run_command({options_.sbatch, "--parsable", file.string()});
  if (r.status != 0) {
    queued_.clear();
    throw SlurmError("sbatch refused the submission (" + file.string() + "): " + trim(r.output));
  }
  const std::string id = parse_sbatch_output(r.output);
  for (size_t i = 0; i < queued_.size(); ++i) {
    const std::string task = id + "_" + std::to_string(i);
    tasks_[task] = {queued_[i].job_id, queued_[i].run_dir, members_of(queued_[i]), 0};
    for (const auto& member : members_of(queued_[i])) {
      handles.emplace_back(member.job_id, "slurm:" + task);
    }
  }
  scripts_.push_back(script);
  queued_.clear();
  next_query_ = 0;  // ask soon: a short task may already have ended
  return handles;
}

bool SlurmExecutor::adopt(const std::string& job_id, const std::string& handle,
                          const std::string& run_dir) {
  const std::string prefix = "slurm:";
  if (handle.rfind(prefix, 0) != 0) return false;
  const std::string task = handle.substr(prefix.size());
  const auto it = tasks_.find(task);
  if (it != tasks_.end()) {  // another member of the task's ensemble
    it->second.members.push_back({job_id, run_dir});
  } else {
    tasks_[task] = {job_id, run_dir, {{job_id, run_dir}}, 0};
  }
  return true;
}

std::vector<Exit> SlurmExecutor::query() {
  std::string ids;
  std::set<std::string> jobs;
  for (const auto& [task, t] : tasks_) jobs.insert(task.substr(0, task.find('_')));
  for (const auto& j : jobs) ids += (ids.empty() ? "" : ",") + j;
  const CommandResult r = run_command({options_.squeue, "--noheader", "--array", "--states=all",
                                       "--jobs=" + ids, "--format=%i %T"});
  // An unknown job id (purged from the controller) is an error for squeue; such tasks are
  // judged by their slurm_exit below. Any other failure: try again at the next poll.
  const bool unknown = r.output.find("Invalid job id") != std::string::npos;
  if (r.status != 0 && !unknown) return {};
  const auto states = parse_squeue(r.output);
  std::vector<Exit> exits;
  for (auto it = tasks_.begin(); it != tasks_.end();) {
    Task& t = it->second;
    const auto s = states.find(it->first);
    const fs::path exit_file = fs::path(t.run_dir) / "slurm_exit";
    Exit e;
    e.job_id = t.job_id;
    e.members = t.members;
    bool ended = false;
    if (s != states.end()) {
      t.missing = 0;
      const SlurmOutcome o = slurm_outcome(s->second);
      e.state = s->second;
      if (o.ended) {
        ended = true;
        e.timed_out = o.timed_out;
        e.lost = o.lost;
        if (o.out_of_memory) e.signal = SIGKILL;
        const std::string code = trim(read_text(exit_file.string()));
        if (!code.empty() && !o.lost && !o.timed_out) e.exit_code = std::atoi(code.c_str());
        // FAILED without an exit status: the task was killed before the wrapper could write it.
        if (s->second == "FAILED" && code.empty()) e.signal = SIGKILL;
      }
    } else if (fs::exists(exit_file)) {
      ended = true;  // gone from the queue after it finished
      e.state = "ENDED";
      e.exit_code = std::atoi(trim(read_text(exit_file.string())).c_str());
    } else if (++t.missing >= 3) {
      ended = true;  // Slurm forgot it and it never finished: resume it
      e.state = "VANISHED";
      e.lost = true;
    }
    if (ended) {
      exits.push_back(e);
      it = tasks_.erase(it);
    } else {
      ++it;
    }
  }
  return exits;
}

std::vector<Exit> SlurmExecutor::poll(double wait_s) {
  flush();
  const double now = monotonic_seconds();
  if (tasks_.empty()) return {};
  if (now < next_query_) {
    const double nap = std::min(wait_s, next_query_ - now);
    if (nap > 0) std::this_thread::sleep_for(std::chrono::duration<double>(nap));
    if (monotonic_seconds() < next_query_) return {};
  }
  next_query_ = monotonic_seconds() + options_.poll_interval_s;
  return query();
}

std::vector<Exit> SlurmExecutor::stop_all(double grace_s) {
  queued_.clear();
  std::vector<std::string> argv = {options_.scancel};
  for (const auto& [task, t] : tasks_) argv.push_back(task);
  if (argv.size() > 1) run_command(argv);
  std::vector<Exit> exits;
  const double until = monotonic_seconds() + std::max(grace_s, options_.poll_interval_s * 3);
  while (!tasks_.empty() && monotonic_seconds() < until) {
    for (auto e : query()) {
      e.signal = SIGTERM;  // stopped by the coordinator: the job is interrupted, not failed
      exits.push_back(e);
    }
    if (!tasks_.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  for (const auto& [task, t] : tasks_) {
    Exit e;
    e.job_id = t.job_id;
    e.members = t.members;
    e.signal = SIGTERM;
    e.state = "CANCELLING";
    exits.push_back(e);
  }
  tasks_.clear();
  return exits;
}

}  // namespace ablate::runner
