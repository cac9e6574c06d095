#include <filesystem>
#include <iostream>

#include "ablate/experiments/train.h"
#include "ablate/runner/canonical.h"
#include "ablate/runner/parse.h"
#include "cli.h"

namespace ablate::cli {
namespace fs = std::filesystem;

int command_train(const std::vector<std::string>& args) {
  const CommandInfo info{
      "train", "[CONFIG.yaml] [KEY=VALUE...] [--run-dir DIR]",
      "One training run; resumes DIR from its checkpoint when it holds one.",
      "CONFIG.yaml is a single config (no grid); KEY=VALUE overrides any key (ablate schema lists\n"
      "them). With --run-dir of an existing run and no CONFIG.yaml, the run's own config.yaml is\n"
      "used: this is how `ablate run` launches its jobs."};
  std::string run_dir;
  std::vector<std::string> positional;
  po::options_description options("options");
  options.add_options()("run-dir", po::value(&run_dir), "run directory (default runs/<job id>)");
  po::options_description hidden;
  hidden.add_options()("args", po::value(&positional), "");
  po::positional_options_description pos;
  pos.add("args", -1);
  po::variables_map vm;
  if (!parse_args(info, options, hidden, pos, args, vm)) return kOk;

  const auto in = split_positional(positional);
  if (!in.error.empty()) {
    std::cerr << "ablate train: " << in.error << "\n";
    return kBadInput;
  }
  std::string config_file = in.file;
  if (config_file.empty()) {
    // Resuming a run dir (how the sweep executor launches jobs) takes its stored config.
    if (run_dir.empty() || !fs::exists(fs::path(run_dir) / "config.yaml")) {
      std::cerr << "ablate train: give CONFIG.yaml, or --run-dir of an existing run\n"
                << help_text(info, options);
      return kBadInput;
    }
    config_file = (fs::path(run_dir) / "config.yaml").string();
  }
  const runner::Config config = runner::load_config(config_file, in.overrides);
  experiments::TrainOptions train_options;
  train_options.run_dir =
      run_dir.empty() ? (fs::path("runs") / runner::config_hash(config)).string() : run_dir;
  const auto result = experiments::train(config, train_options);
  std::cout << "run dir: " << train_options.run_dir << "\nstatus: " << result.status << " at step "
            << result.step << "\n";
  for (const auto& [k, v] : result.final) std::cout << k << ": " << v << "\n";
  return kOk;
}

}  // namespace ablate::cli
