#pragma once
// Runs an external program from a test (gnuplot, chromium) without a shell: argv goes to
// posix_spawnp as is, so paths with spaces or quotes need no escaping. Header-only.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace ablate::testing {

struct ProcessResult {
  bool started = false;    // false: argv[0] was not found or could not be run (see error)
  std::string error;       // strerror of the failed spawn
  bool timed_out = false;  // it ran past the timeout and was killed with its process group
  int exit_status = -1;    // exit status; 128 + signal when a signal ended it
  std::string output;      // stdout and stderr together
};

// Runs argv (argv[0] looked up on PATH) in its own process group with stdin from /dev/null,
// waits at most `timeout_s` seconds, then kills the whole group (browsers leave helpers behind).
inline ProcessResult run_process(const std::vector<std::string>& argv, double timeout_s) {
  ProcessResult result;
  if (argv.empty()) throw std::invalid_argument("run_process: empty argv");
  std::string log = (std::filesystem::temp_directory_path() / "ablate-process-XXXXXX").string();
  const int fd = mkstemp(log.data());
  if (fd < 0) throw std::runtime_error("run_process: mkstemp failed: " + log);
  close(fd);
  struct Unlink {
    std::string path;
    ~Unlink() { unlink(path.c_str()); }
  } unlink_log{log};

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_TRUNC, 0);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, args[0], &actions, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    result.error = std::strerror(rc);
    return result;
  }
  result.started = true;

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  auto pause = std::chrono::milliseconds(1);
  int status = 0;
  for (;;) {
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) throw std::runtime_error("run_process: waitpid failed");
    if (std::chrono::steady_clock::now() >= deadline) {
      kill(-pid, SIGKILL);  // the group: pid is not reaped yet, so its group id is still ours
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      result.timed_out = true;
      break;
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }
  if (WIFEXITED(status)) result.exit_status = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.exit_status = 128 + WTERMSIG(status);

  std::ifstream in(log, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  result.output = s.str();
  return result;
}

// True when `program` is found on PATH (or is an executable path).
inline bool on_path(const std::string& program) {
  namespace fs = std::filesystem;
  if (program.find('/') != std::string::npos) return access(program.c_str(), X_OK) == 0;
  const char* path = std::getenv("PATH");
  if (path == nullptr) return false;
  std::stringstream dirs(path);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) dir = ".";
    const fs::path candidate = fs::path(dir) / program;
    if (access(candidate.c_str(), X_OK) == 0 && !fs::is_directory(candidate)) return true;
  }
  return false;
}

}  // namespace ablate::testing
