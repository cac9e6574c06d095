#include "ablate/runner/executor.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "ablate/results/files.h"

namespace ablate::runner {

double monotonic_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::vector<LaunchMember> members_of(const Launch& launch) {
  if (!launch.members.empty()) return launch.members;
  return {LaunchMember{launch.job_id, launch.run_dir}};
}

std::vector<LaunchMember> members_of(const Exit& exit) {
  if (!exit.members.empty()) return exit.members;
  return {LaunchMember{exit.job_id, ""}};
}

std::vector<std::string> child_environment(
    const std::vector<std::pair<std::string, std::string>>& set) {
  std::vector<std::string> out;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string entry = *e;
    const std::string name = entry.substr(0, entry.find('='));
    const bool replaced =
        std::any_of(set.begin(), set.end(), [&](const auto& kv) { return kv.first == name; });
    if (!replaced) out.push_back(entry);
  }
  for (const auto& [name, value] : set) out.push_back(name + "=" + value);
  return out;
}

LocalExecutor::~LocalExecutor() {
  if (!children_.empty()) stop_all(5.0);
}

std::string LocalExecutor::start(const Launch& launch) {
  if (launch.argv.empty()) throw std::invalid_argument("executor: empty command");
  // Everything the child needs is prepared before fork: only async-signal-safe calls after it.
  std::vector<char*> argv;
  for (const auto& a : launch.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const std::vector<std::string> env_text = child_environment(launch.env);
  std::vector<char*> envp;
  for (const auto& e : env_text) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  const int out = open(launch.output_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (out < 0) {
    throw std::runtime_error("executor: cannot open " + launch.output_file + ": " +
                             std::strerror(errno));
  }
  // The child waits at this gate until its pid is in RUN_DIR/launcher.pid: a coordinator killed
  // in between leaves a child that exits instead of an orphan no later coordinator can find.
  int gate[2];
  if (pipe2(gate, O_CLOEXEC) != 0) {
    close(out);
    throw std::runtime_error(std::string("executor: pipe failed: ") + std::strerror(errno));
  }
  // What the child says when the program cannot be started (missing, not executable, or being
  // rewritten by a build: "Text file busy"), written before fork for the child's sake.
  const std::string exec_failed = "executor: cannot run " + launch.argv[0] + ": ";
  const pid_t pid = fork();
  if (pid < 0) {
    close(out);
    close(gate[0]);
    close(gate[1]);
    throw std::runtime_error(std::string("executor: fork failed: ") + std::strerror(errno));
  }
  if (pid == 0) {
    close(gate[1]);
    char go = 0;
    if (read(gate[0], &go, 1) != 1) _exit(125);  // the coordinator died before recording it
    setpgid(0, 0);
    dup2(out, STDOUT_FILENO);
    dup2(out, STDERR_FILENO);
    const int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, STDIN_FILENO);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    execve(argv[0], argv.data(), envp.data());
    // strerrordesc_np returns a constant string (async-signal-safe, unlike strerror).
    const char* why = strerrordesc_np(errno);
    if (why == nullptr) why = "unknown error";
    (void)!write(STDERR_FILENO, exec_failed.data(), exec_failed.size());
    (void)!write(STDERR_FILENO, why, std::strlen(why));
    (void)!write(STDERR_FILENO, "\n", 1);
    _exit(127);
  }
  setpgid(pid, pid);  // both sides, so there is no race on who sets it first
  close(out);
  close(gate[0]);
  try {
    for (const auto& member : members_of(launch)) {
      if (member.run_dir.empty()) continue;
      results::write_file_atomic(member.run_dir + "/launcher.pid", std::to_string(pid) + "\n");
    }
  } catch (...) {
    // A process no later coordinator could find must not run: it never passes the gate.
    close(gate[1]);
    kill(-pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    throw;
  }
  const char go = 1;
  const bool released = write(gate[1], &go, 1) == 1;
  close(gate[1]);
  if (!released) {
    kill(-pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    throw std::runtime_error("executor: could not start " + launch.argv[0]);
  }
  Child child;
  child.job_id = launch.job_id;
  child.members = members_of(launch);
  child.deadline = launch.timeout_s > 0 ? monotonic_seconds() + launch.timeout_s : 0.0;
  children_[pid] = child;
  return std::to_string(pid);
}

std::vector<Exit> LocalExecutor::reap(bool block) {
  std::vector<Exit> exits;
  while (!children_.empty()) {
    int status = 0;
    const pid_t pid = waitpid(-1, &status, block && exits.empty() ? 0 : WNOHANG);
    if (pid <= 0) break;
    auto it = children_.find(pid);
    if (it == children_.end()) continue;  // not ours
    Exit e;
    e.job_id = it->second.job_id;
    e.members = it->second.members;
    e.timed_out = it->second.timed_out;
    if (WIFEXITED(status)) e.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) e.signal = WTERMSIG(status);
    exits.push_back(e);
    children_.erase(it);
  }
  return exits;
}

std::vector<Exit> LocalExecutor::poll(double wait_s) {
  const double until = monotonic_seconds() + wait_s;
  for (;;) {
    const double now = monotonic_seconds();
    for (auto& [pid, child] : children_) {
      if (child.deadline > 0 && now > child.deadline && !child.timed_out) {
        child.timed_out = true;
        kill(-pid, SIGKILL);
      }
    }
    auto exits = reap(/*block=*/false);
    if (!exits.empty() || now >= until || children_.empty()) return exits;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::vector<Exit> LocalExecutor::stop_all(double grace_s) {
  for (const auto& [pid, child] : children_) kill(-pid, SIGTERM);
  std::vector<Exit> exits;
  const double until = monotonic_seconds() + grace_s;
  while (!children_.empty() && monotonic_seconds() < until) {
    auto some = reap(/*block=*/false);
    exits.insert(exits.end(), some.begin(), some.end());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (const auto& [pid, child] : children_) kill(-pid, SIGKILL);
  while (!children_.empty()) {
    auto some = reap(/*block=*/true);
    exits.insert(exits.end(), some.begin(), some.end());
  }
  return exits;
}

}  // namespace ablate::runner
