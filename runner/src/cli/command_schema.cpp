#include <iostream>

#include "ablate/runner/schema.h"
#include "cli.h"

namespace ablate::cli {

int command_schema(const std::vector<std::string>& args) {
  const CommandInfo info{"schema", "[--task lm|vit|s2s]",
                         "Every config key: its type, default, allowed values and meaning.", ""};
  std::string task;
  po::options_description options("options");
  options.add_options()("task", po::value(&task), "lm, vit or s2s: only the keys of that task");
  po::variables_map vm;
  if (!parse_args(info, options, {}, {}, args, vm)) return kOk;
  if (!task.empty() && runner::task_bit(task) == 0) {
    std::cerr << "ablate schema: --task " << task << ": expected lm, vit or s2s\n";
    return kBadInput;
  }
  std::cout << runner::schema_text(task);
  return kOk;
}

}  // namespace ablate::cli
