#pragma once
// The pieces every `ablate` command shares (docs/design.md section 7): exit statuses, argument
// parsing with `--help`, the file-and-overrides split and the read-only store. One file per
// command (command_*.cpp) holds that command's options and its work; main.cpp dispatches.
#include <boost/program_options.hpp>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "ablate/results/store.h"
#include "ablate/runner/calibration.h"
#include "ablate/runner/sweep.h"

namespace ablate::cli {

namespace po = boost::program_options;

// Exit statuses: success, a failure while running, bad input (nothing written).
constexpr int kOk = 0, kFailure = 1, kBadInput = 2;

// What `ablate help` says about a command.
struct CommandInfo {
  const char* name;      // "run"
  const char* synopsis;  // "SWEEP.yaml [KEY=VALUE...] [options]"
  const char* summary;   // one line for `ablate --help`
  const char* details;   // a paragraph for `ablate help NAME` ("" = none)
};

// Parses `args` for a command. `options` are the documented options (printed by --help with their
// defaults), `hidden` the positional slots. Returns false after printing the help when the
// arguments ask for it (-h, --help): the command then returns kOk.
bool parse_args(const CommandInfo& info, const po::options_description& options,
                const po::options_description& hidden,
                const po::positional_options_description& pos, const std::vector<std::string>& args,
                po::variables_map& vm);

// Whether the user gave `option` (not just its default).
inline bool given(const po::variables_map& vm, const char* option) {
  return vm.count(option) > 0 && !vm[option].defaulted();
}

// The full help of a command: usage line, details, options.
std::string help_text(const CommandInfo& info, const po::options_description& options);

// "1 job", "2 jobs": a count and a noun, plural unless the count is 1.
std::string count_of(long long n, const std::string& singular, const std::string& plural = "");
// A number for the terminal: 4 significant digits, "inf" / "-inf", "n/a" for NaN.
std::string number_text(double x);
// A confidence interval or sequence: "[-0.0213, 0.0410]", ends by number_text.
std::string interval_text(double low, double high);

// Positional arguments split into one file and KEY=VALUE overrides.
struct FileAndOverrides {
  std::string file;
  std::vector<std::string> overrides;
  std::string error;  // "" unless there was more than one file
};
FileAndOverrides split_positional(const std::vector<std::string>& positional);

// The store for a command that only reads it; nullptr (and a message) when the file is missing,
// so a typo in --db never creates an empty database.
std::unique_ptr<results::Store> open_read_only(const std::string& db, const std::string& command);

// A stored absolute path as the user would type it here: relative to the current directory when it
// lies below it, else as stored.
std::string shown_path(const std::string& path);

// A string as one shell word (quoted only when it needs to be), for commands printed as hints.
std::string shell_word(const std::string& s);

// " --db FILE" for a hint's command, "" for the default database (ablate.db).
std::string db_flag(const std::string& db);

// `--seeds-per-process N|auto` of run and plan: what its help says, and its value: -1 when it
// was not given (the sweep file's seeds_per_process: then), 0 for auto, else N; nullopt (after a
// message on stderr) for a bad value.
const char* seeds_per_process_help();
std::optional<int> seeds_per_process_flag(const po::variables_map& vm, const std::string& value,
                                          const std::string& command);

// The commands. `argv0` is how the binary was called (run launches jobs with it).
int command_schema(const std::vector<std::string>& args);
int command_train(const std::vector<std::string>& args);
int command_plan(const std::vector<std::string>& args);
int command_run(const std::vector<std::string>& args, const char* argv0);
int command_status(const std::vector<std::string>& args);
int command_query(const std::vector<std::string>& args);
int command_import(const std::vector<std::string>& args);
int command_report(const std::vector<std::string>& args);
int command_reset(const std::vector<std::string>& args);
int command_prune(const std::vector<std::string>& args);
int command_calibrate(const std::vector<std::string>& args);

// For a calibration measured while other programs were busy (runner::busy_note): the note and
// the command that measures again; "" otherwise.
std::string busy_advice(const runner::Calibration& c);

// The CPU calibration of the config `job` (command_calibrate.cpp): every layout of
// runner::candidate_layouts timed with `steps` training steps, each layout's line said on `say`,
// and the share of the CPU other programs used meanwhile (busy_advice says it where it is used).
// `label` names what was trained in the result.
runner::Calibration calibrate_cpu(const runner::Config& job, const std::string& label, int steps,
                                  std::ostream& say);

// The same calibration on a whole node of `slurm`'s partition: one Slurm job runs `ablate
// calibrate FILE OVERRIDES --json` there and waits for it (runner::run_node_job). The result's
// machine is the partition's runner::slurm_calibration_key, its node the node's machine_key.
// Throws runner::SlurmError when the job cannot run or fails.
runner::Calibration calibrate_on_slurm(const runner::SlurmOptions& slurm, const std::string& file,
                                       const std::vector<std::string>& overrides, int steps,
                                       std::ostream& say);

// runner::machine_key of this machine for the jobs it would start: after
// prepare_train_environment (train_process.h), so with their OpenBLAS kernels.
std::string cpu_machine_key();

// The job a CPU calibration times: the sweep's first job without a parent (an uptrain stage
// would need its parent's checkpoint).
const runner::JobSpec& first_root_job(const std::vector<runner::JobSpec>& jobs);

// The `ablate run` of a sweep as it was last run, for hints: its sweep file (and KEY=VALUE
// overrides) from the sweep's provenance, with --db and --workdir where they are not the defaults
// (the workdir from a run dir of the sweep, `run_dir`). "" for a sweep without a sweep file (an
// import). (rerun_hint.cpp)
std::string run_command_of(const results::Store& store, const std::string& db,
                           const std::string& sweep, const std::string& run_dir);
// What runs a job that ended badly again, for `ablate status` ("" when nothing but a run of its
// parent does, or for an import): "ablate run FILE --retry-failed" for a failed or timed-out job
// (from its checkpoint; after an exit status 2, once the input is fixed), "ablate run FILE
// --retry-diverged" for a diverged one (from scratch; its run dir is kept aside).
std::string rerun_hint(const results::Store& store, const std::string& db,
                       const results::JobRow& job);

}  // namespace ablate::cli
