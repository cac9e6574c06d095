// The `ablate` command line (docs/design.md section 7). A thin layer: it parses arguments, calls
// the libraries and maps errors to exit statuses (0 success, 2 bad input, 1 failure while running).
// Torch-free: `ablate train` hands over to the ablate-train executable (train_process.h), so no
// other command loads LibTorch.
#include <cstdio>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include "cli.h"
#include "errors.h"
#include "train_process.h"

using namespace ablate;
using namespace ablate::cli;

namespace {

struct Entry {
  const char* name;
  const char* summary;
  std::function<int(const std::vector<std::string>&)> run;
};

const char* self_name = "ablate";

const std::vector<Entry>& commands() {
  static const std::vector<Entry> table = {
      {"schema", "every config key: type, default, meaning", command_schema},
      {"plan", "the jobs a sweep file expands to", command_plan},
      {"run", "run a sweep's jobs (resumes; --retry-failed re-runs failures)",
       [](const std::vector<std::string>& a) { return command_run(a, self_name); }},
      {"status", "jobs of a sweep by status and arm, failures with reasons", command_status},
      {"reset", "return jobs to pending: the next run trains them from scratch", command_reset},
      {"prune", "delete stale jobs (no longer in the sweep file) and their run dirs",
       command_prune},
      {"report", "which arms differ from the baseline, with tests and corrections", command_report},
      {"query", "read-only SQL over the results database", command_query},
      {"import", "results from a CSV file as a sweep", command_import},
      {"train", "one training run (what run launches per job)", exec_train},
      {"calibrate", "measure the CPU jobs x threads that train fastest here (run's default)",
       command_calibrate},
  };
  return table;
}

std::string usage() {
  std::string text =
      "usage: ablate COMMAND [ARGS...]\n"
      "A sweep's life: ablate plan SWEEP.yaml, ablate run SWEEP.yaml, ablate status,\n"
      "ablate report SWEEP --metric NAME.\n\ncommands:\n";
  for (const auto& c : commands()) {
    char line[160];
    std::snprintf(line, sizeof line, "  %-10s %s\n", c.name, c.summary);
    text += line;
  }
  text += "  help       ablate help COMMAND: that command's options and defaults\n";
  return text;
}

const Entry* find_command(const std::string& name) {
  for (const auto& c : commands()) {
    if (name == c.name) return &c;
  }
  return nullptr;
}

int dispatch(const std::string& command, const std::vector<std::string>& args) {
  if (command == "help") {
    if (args.empty()) {
      std::cout << usage();
      return kOk;
    }
    const Entry* c = find_command(args.front());
    if (c == nullptr) {
      std::cerr << "ablate help: unknown command '" << args.front() << "'\n" << usage();
      return kBadInput;
    }
    return c->run({"--help"});
  }
  const Entry* c = find_command(command);
  if (c == nullptr) {
    std::cerr << "ablate: unknown command '" << command << "'\n" << usage();
    return kBadInput;
  }
  return c->run(args);
}

}  // namespace

int main(int argc, char** argv) {
  self_name = argv[0];
  if (argc < 2) {
    std::cerr << usage();
    return kBadInput;
  }
  const std::string command = argv[1];
  if (command == "--help" || command == "-h") {
    std::cout << usage();
    return kOk;
  }
  const std::vector<std::string> args(argv + 2, argv + argc);
  return guarded(command, [&] { return dispatch(command, args); });
}
