// The `ablate` command line (DESIGN.md section 7). A thin layer: it parses arguments, calls the
// libraries and maps errors to exit statuses (0 success, 2 bad input, 1 failure while running).
// Torch-free: training is reached through experiments/train.h.
#include <boost/program_options.hpp>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "ablate/experiments/data_error.h"
#include "ablate/experiments/train.h"
#include "ablate/runner/canonical.h"
#include "ablate/runner/parse.h"
#include "ablate/runner/schema.h"

namespace po = boost::program_options;
namespace fs = std::filesystem;
using namespace ablate;

namespace {

constexpr int kOk = 0, kFailure = 1, kBadInput = 2;

const char* kUsage =
    "usage: ablate COMMAND ...\n"
    "  ablate schema [--task lm|vit]                   every config key: type, default, doc\n"
    "  ablate train [CONFIG.yaml] [KEY=VALUE...] [--run-dir DIR]\n"
    "                                                  one training run (resumes DIR)\n";

int cmd_schema(const std::vector<std::string>& args) {
  po::options_description options("ablate schema");
  std::string task;
  options.add_options()("task", po::value(&task), "lm or vit: only that task's keys");
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(options).run(), vm);
  po::notify(vm);
  if (!task.empty() && task != "lm" && task != "vit") {
    std::cerr << "ablate schema: --task " << task << ": expected lm or vit\n";
    return kBadInput;
  }
  std::cout << runner::schema_text(task);
  return kOk;
}

int cmd_train(const std::vector<std::string>& args) {
  po::options_description options("ablate train");
  std::string run_dir;
  std::vector<std::string> positional;
  options.add_options()("run-dir", po::value(&run_dir), "run directory (default runs/<job id>)")(
      "args", po::value(&positional), "CONFIG.yaml and KEY=VALUE overrides");
  po::positional_options_description pos;
  pos.add("args", -1);
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(options).positional(pos).run(), vm);
  po::notify(vm);

  std::string config_file;
  std::vector<std::string> overrides;
  for (const auto& a : positional) {
    if (a.find('=') != std::string::npos) {
      overrides.push_back(a);
    } else if (config_file.empty()) {
      config_file = a;
    } else {
      std::cerr << "ablate train: more than one config file (" << config_file << ", " << a << ")\n";
      return kBadInput;
    }
  }
  if (config_file.empty()) {
    // Resuming a run dir (how the sweep executor launches jobs) takes its stored config.
    if (run_dir.empty() || !fs::exists(fs::path(run_dir) / "config.yaml")) {
      std::cerr << "ablate train: give CONFIG.yaml, or --run-dir of an existing run\n" << kUsage;
      return kBadInput;
    }
    config_file = (fs::path(run_dir) / "config.yaml").string();
  }
  const runner::Config config = runner::load_config(config_file, overrides);
  experiments::TrainOptions train_options;
  train_options.run_dir =
      run_dir.empty() ? (fs::path("runs") / runner::config_hash(config)).string() : run_dir;
  const auto result = experiments::train(config, train_options);
  std::cout << "run dir: " << train_options.run_dir << "\nstatus: " << result.status << " at step "
            << result.step << "\n";
  for (const auto& [k, v] : result.final) std::cout << k << ": " << v << "\n";
  return kOk;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::cerr << kUsage;
    return argc < 2 ? kBadInput : kOk;
  }
  const std::string command = argv[1];
  const std::vector<std::string> args(argv + 2, argv + argc);
  try {
    if (command == "schema") return cmd_schema(args);
    if (command == "train") return cmd_train(args);
    std::cerr << "ablate: unknown command '" << command << "'\n" << kUsage;
    return kBadInput;
  } catch (const runner::ConfigError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return kBadInput;
  } catch (const experiments::DataError& e) {
    std::cerr << "data error: " << e.what() << "\n";
    return kBadInput;
  } catch (const experiments::RunError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return kBadInput;
  } catch (const po::error& e) {
    std::cerr << "ablate " << command << ": " << e.what() << "\n" << kUsage;
    return kBadInput;
  } catch (const std::exception& e) {
    std::cerr << "ablate " << command << " failed: " << e.what() << "\n";
    return kFailure;
  }
}
