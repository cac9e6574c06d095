#include "train_process.h"

#include <unistd.h>

#include <cstdlib>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "ablate/experiments/blas_kernels.h"
#include "ablate/experiments/device_name.h"
#include "ablate/runner/command.h"
#include "cli.h"

namespace ablate::cli {
namespace fs = std::filesystem;

namespace {
constexpr const char* kLinePrefix = "device-problem\t";
}  // namespace

std::string train_binary() {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  return ((ec ? fs::path(".") : self.parent_path()) / "ablate-train").string();
}

void prepare_train_environment() {
  // OpenMP's threads wait for work by sleeping, not spinning: a spinning thread that shares its
  // core with anything else (another job, the coordinator, a build) stalls the step. The quickstart
  // ViT at 2 threads beside a compiler on a 2-core machine: 200 images/s spinning, 3,000
  // sleeping. Set before LibTorch's OpenMP loads, which reads it then; the user's value wins.
  setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
  // OpenBLAS's kernels for a CPU newer than the library (blas_kernels.h): 2.4x on the byte LM.
  experiments::choose_openblas_core();
}

int exec_train(const std::vector<std::string>& args) {
  const std::string binary = train_binary();
  prepare_train_environment();
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(binary.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  execv(binary.c_str(), argv.data());
  std::cerr << "ablate train: cannot run " << binary << ": " << std::strerror(errno)
#if defined(ABLATE_TORCH_FREE_BUILD)
            << " (this build is torch-free, ABLATE_TORCH_FREE_ONLY: it has no ablate-train)\n";
#else
            << " (ablate-train is built with ablate, into the same folder: cmake --build BUILD "
               "--target ablate)\n";
#endif
  return kFailure;
}

std::string device_problem_line(const std::string& name, const std::string& problem) {
  return kLinePrefix + name + "\t" + problem + "\n";
}

std::map<std::string, std::string> device_problems(const std::vector<std::string>& names) {
  std::map<std::string, std::string> out;
  std::vector<std::string> ask = {train_binary(), "--device-problems"};
  for (const auto& name : names) {
    if (out.count(name) > 0) continue;
    out[name] = experiments::device_name_problem(name);
    if (experiments::is_cuda_device_name(name)) ask.push_back(name);
  }
  if (ask.size() == 2) return out;
  const runner::CommandResult r = runner::run_command(ask);
  std::map<std::string, std::string> answered;
  std::istringstream lines(r.output);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(kLinePrefix, 0) != 0) continue;
    const std::string rest = line.substr(std::strlen(kLinePrefix));
    const auto tab = rest.find('\t');
    if (tab != std::string::npos) answered[rest.substr(0, tab)] = rest.substr(tab + 1);
  }
  for (size_t i = 2; i < ask.size(); ++i) {
    const std::string& name = ask[i];
    auto it = answered.find(name);
    if (r.status == 0 && it != answered.end()) {
      out[name] = it->second;
    } else {
      std::string said = r.output.substr(0, 400);
      while (!said.empty() && said.back() == '\n') said.pop_back();
      out[name] = name + ", which could not be checked: " + runner::shell_quote(ask[0]) +
                  " --device-problems exited with status " + std::to_string(r.status) +
                  (said.empty() ? "" : " (" + said + ")");
    }
  }
  return out;
}

}  // namespace ablate::cli
