// `ablate-train`: the executable behind `ablate train`, the only one that links LibTorch
// (train_process.h). The `ablate` command hands its arguments over unchanged, so this main is
// command_train with the command line's error policy, plus the device question `ablate plan`
// and `ablate run` ask before anything is written.
#include <iostream>
#include <string>
#include <vector>

#include "ablate/experiments/allocator.h"
#include "ablate/experiments/train.h"
#include "cli.h"
#include "errors.h"
#include "train_process.h"

using namespace ablate;
using namespace ablate::cli;

int main(int argc, char** argv) {
  experiments::tune_allocator();  // before the first step's buffers (allocator.h says why)
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && args.front() == "--device-problems") {
    // Internal: one device_problem_line per name after the flag.
    for (size_t i = 1; i < args.size(); ++i) {
      std::cout << device_problem_line(args[i], experiments::device_problem(args[i]));
    }
    return kOk;
  }
  return guarded("train", [&] { return command_train(args); });
}
