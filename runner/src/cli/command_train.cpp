#include <filesystem>
#include <iostream>

#include "ablate/experiments/train.h"
#include "ablate/runner/canonical.h"
#include "ablate/runner/parse.h"
#include "cli.h"

namespace ablate::cli {
namespace fs = std::filesystem;

namespace {

// What `ablate train` prints for one run: its run dir, status and final metrics.
void print_result(const std::string& run_dir, const experiments::TrainResult& result) {
  std::cout << "run dir: " << run_dir << "\nstatus: " << result.status << " at step " << result.step
            << "\n";
  for (const auto& [k, v] : result.final) std::cout << k << ": " << v << "\n";
}

// The runs of `run_dirs` trained together in one process, each from its own config.yaml with
// `overrides` on top. kOk when every one ended done or diverged.
int train_together(const std::vector<std::string>& run_dirs,
                   const std::vector<std::string>& overrides) {
  std::vector<experiments::Member> members;
  for (const auto& dir : run_dirs) {
    const fs::path config = fs::path(dir) / "config.yaml";
    if (!fs::exists(config)) {
      std::cerr << "ablate train: --run-dir " << dir
                << " has no config.yaml: several --run-dir train existing runs together\n";
      return kBadInput;
    }
    experiments::Member m;
    m.config = runner::load_config(config.string(), overrides);
    m.options.run_dir = dir;
    members.push_back(std::move(m));
  }
  const auto results = experiments::train_ensemble(members);
  bool finished = true;
  for (size_t i = 0; i < results.size(); ++i) {
    if (i > 0) std::cout << "\n";
    print_result(run_dirs[i], results[i]);
    finished = finished && (results[i].status == "done" || results[i].status == "diverged");
  }
  return finished ? kOk : kFailure;
}

}  // namespace

int command_train(const std::vector<std::string>& args) {
  const CommandInfo info{
      "train", "[CONFIG.yaml] [KEY=VALUE...] [--run-dir DIR]...",
      "One training run, or runs of several seeds together; resumes from checkpoints.",
      "CONFIG.yaml is a single config (no grid); KEY=VALUE overrides any key (ablate schema lists\n"
      "them). With --run-dir of an existing run and no CONFIG.yaml, the run's own config.yaml is\n"
      "used: this is how `ablate run` launches its jobs.\n"
      "--run-dir given more than once trains those runs together in one process, each from its\n"
      "own DIR/config.yaml with the KEY=VALUE overrides applied to every one (no CONFIG.yaml):\n"
      "how `ablate run` launches the seeds of an arm (--seeds-per-process). Their configs may\n"
      "differ only in seed and init.from. Each run dir ends as a run of its own would; exit\n"
      "status 0 when every run ended done or diverged."};
  std::vector<std::string> run_dirs;
  std::vector<std::string> positional;
  po::options_description options("options");
  options.add_options()("run-dir", po::value(&run_dirs),
                        "run directory (default runs/<job id>); repeated: runs trained together");
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
  if (run_dirs.size() > 1) {
    if (!in.file.empty()) {
      std::cerr << "ablate train: " << in.file << ": no CONFIG.yaml with several --run-dir (each "
                << "run trains from its own DIR/config.yaml)\n";
      return kBadInput;
    }
    return train_together(run_dirs, in.overrides);
  }
  const std::string run_dir = run_dirs.empty() ? "" : run_dirs.front();
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
  print_result(train_options.run_dir, result);
  return kOk;
}

}  // namespace ablate::cli
