// The `ablate` command line (docs/design.md section 7). A thin layer: it parses arguments, calls
// the libraries and maps errors to exit statuses (0 success, 2 bad input, 1 failure while running).
// Torch-free: training is reached through experiments/train.h.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/program_options.hpp>
#include <cctype>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "ablate/experiments/data_error.h"
#include "ablate/experiments/train.h"
#include "ablate/results/import.h"
#include "ablate/results/query.h"
#include "ablate/results/report.h"
#include "ablate/results/report_writer.h"
#include "ablate/results/store.h"
#include "ablate/runner/canonical.h"
#include "ablate/runner/command.h"
#include "ablate/runner/coordinator.h"
#include "ablate/runner/executor.h"
#include "ablate/runner/parse.h"
#include "ablate/runner/plan.h"
#include "ablate/runner/schema.h"
#include "ablate/runner/slurm.h"
#include "ablate/runner/sweep.h"

namespace po = boost::program_options;
namespace fs = std::filesystem;
using namespace ablate;

namespace {

constexpr int kOk = 0, kFailure = 1, kBadInput = 2;

const char* kUsage =
    "usage: ablate COMMAND ...\n"
    "  ablate schema [--task lm|vit]                   every config key: type, default, doc\n"
    "  ablate train [CONFIG.yaml] [KEY=VALUE...] [--run-dir DIR]\n"
    "                                                  one training run (resumes DIR)\n"
    "  ablate plan SWEEP.yaml [KEY=VALUE...] [--json]    the jobs a sweep expands to\n"
    "  ablate run SWEEP.yaml [KEY=VALUE...] [--db FILE] [--workdir DIR] [--devices cpu|cuda:0,..]\n"
    "             [--per-device N] [--retries N] [--timeout SECONDS] [--backend local|slurm]\n"
    "             [--partition P] [--time T] [--gpus-per-task N] [--cpus-per-task N] [--mem M]\n"
    "             [--account A] [--sbatch LINE]... [--detach] [--dry-run]   (slurm options)\n"
    "  ablate status [--db FILE] [SWEEP] [--json]        jobs by status, failures with reasons\n"
    "  ablate query [--db FILE] \"SELECT ...\" [--format table|csv|json]   read-only SQL\n"
    "  ablate import [--db FILE] --sweep NAME --csv FILE --params a,b [--seed-col seed]\n"
    "                                                  results from elsewhere as a sweep\n"
    "  ablate report [--db FILE] SWEEP --metric NAME [--baseline KEY=VALUE ...] "
    "[--lower-is-better]\n"
    "                [--test auto|paired-t|welch|wilcoxon|mann-whitney|permutation|aso]\n"
    "                [--correction holm|bh|bonferroni|none] [--alpha 0.05] [--min-seeds 3]\n"
    "                [--format md|html|tex|json] [--out DIR]   which arms differ from the "
    "baseline\n";

std::atomic<bool> g_interrupted{false};

// Splits positional arguments into one file and KEY=VALUE overrides.
struct FileAndOverrides {
  std::string file;
  std::vector<std::string> overrides;
  std::string error;
};
FileAndOverrides split_positional(const std::vector<std::string>& positional) {
  FileAndOverrides r;
  for (const auto& a : positional) {
    if (a.find('=') != std::string::npos) {
      r.overrides.push_back(a);
    } else if (r.file.empty()) {
      r.file = a;
    } else {
      r.error = "more than one file (" + r.file + ", " + a + ")";
    }
  }
  return r;
}

// The path of this executable, which the jobs run as `ablate train`.
std::string self_path(const char* argv0) {
  std::error_code ec;
  const auto p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::absolute(argv0).string() : p.string();
}

// The store for a command that only reads it; nullptr (and a message) when the file is missing,
// so a typo in --db never creates an empty database.
std::unique_ptr<results::Store> open_read_only(const std::string& db, const std::string& command) {
  if (!fs::exists(db)) {
    std::cerr << "ablate " << command << ": no database " << db
              << " (ablate run or ablate import creates it)\n";
    return nullptr;
  }
  results::StoreOptions read_only;
  read_only.read_only = true;
  return std::make_unique<results::Store>(db, read_only);
}

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

  const auto in = split_positional(positional);
  if (!in.error.empty()) {
    std::cerr << "ablate train: " << in.error << "\n";
    return kBadInput;
  }
  std::string config_file = in.file;
  const std::vector<std::string>& overrides = in.overrides;
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

int cmd_plan(const std::vector<std::string>& args) {
  po::options_description options("ablate plan");
  std::vector<std::string> positional;
  options.add_options()("json", "one JSON object per job")("args", po::value(&positional), "");
  po::positional_options_description pos;
  pos.add("args", -1);
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(options).positional(pos).run(), vm);
  po::notify(vm);
  const auto in = split_positional(positional);
  if (!in.error.empty() || in.file.empty()) {
    std::cerr << "ablate plan: " << (in.file.empty() ? "give SWEEP.yaml" : in.error) << "\n";
    return kBadInput;
  }
  const auto sweep = runner::load_sweep(in.file, in.overrides);
  const auto jobs = runner::expand(sweep);
  std::cout << (vm.count("json") ? runner::plan_json(sweep, jobs) : runner::plan_text(sweep, jobs));
  return kOk;
}

int cmd_run(const std::vector<std::string>& args, const char* argv0) {
  po::options_description options("ablate run");
  std::vector<std::string> positional;
  std::string db = "ablate.db", devices = "cpu";
  runner::RunOptions run;
  options.add_options()("db", po::value(&db), "database file")(
      "workdir", po::value(&run.workdir), "run dirs under DIR/<sweep>/<job id>")(
      "devices", po::value(&devices), "cpu, or a list cuda:0,cuda:1")(
      "per-device", po::value(&run.per_device), "jobs at once per device")(
      "retries", po::value(&run.retries), "extra attempts for failed jobs")(
      "timeout", po::value(&run.timeout_s), "seconds per attempt")(
      "backend", po::value<std::string>()->default_value("local"), "local or slurm")(
      "args", po::value(&positional), "");
  runner::SlurmOptions slurm;
  options.add_options()("partition", po::value(&slurm.partition), "slurm: --partition")(
      "time", po::value(&slurm.time_limit), "slurm: --time per task (default from --timeout)")(
      "gpus-per-task", po::value(&slurm.gpus_per_task), "slurm: GPUs per task")(
      "cpus-per-task", po::value(&slurm.cpus_per_task), "slurm: CPUs (and threads) per task")(
      "mem", po::value(&slurm.memory), "slurm: --mem per task")(
      "account", po::value(&slurm.account), "slurm: --account")(
      "sbatch", po::value(&slurm.extra), "slurm: an extra #SBATCH line (repeatable)")(
      "poll-interval", po::value(&slurm.poll_interval_s), "slurm: seconds between squeue calls")(
      "detach", "slurm: submit the ready jobs and return")(
      "dry-run", "slurm: print the sbatch script of the first wave and exit");
  po::positional_options_description pos;
  pos.add("args", -1);
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(options).positional(pos).run(), vm);
  po::notify(vm);
  const auto in = split_positional(positional);
  if (!in.error.empty() || in.file.empty()) {
    std::cerr << "ablate run: " << (in.file.empty() ? "give SWEEP.yaml" : in.error) << "\n";
    return kBadInput;
  }
  const std::string backend = vm["backend"].as<std::string>();
  if (backend != "local" && backend != "slurm") {
    std::cerr << "ablate run: --backend " << backend << ": expected local or slurm\n";
    return kBadInput;
  }
  for (const char* only : {"partition", "time", "gpus-per-task", "cpus-per-task", "mem", "account",
                           "sbatch", "poll-interval", "detach", "dry-run"}) {
    if (backend != "slurm" && vm.count(only)) {
      std::cerr << "ablate run: --" << only << " needs --backend slurm\n";
      return kBadInput;
    }
  }
  if (run.per_device < 1 || run.retries < 0 || run.timeout_s < 0) {
    std::cerr << "ablate run: --per-device must be >= 1, --retries and --timeout >= 0\n";
    return kBadInput;
  }
  run.devices.clear();
  std::stringstream list(devices);
  for (std::string d; std::getline(list, d, ',');) {
    if (d != "cpu" && d.rfind("cuda", 0) != 0) {
      std::cerr << "ablate run: --devices: '" << d << "' is neither cpu nor cuda:N\n";
      return kBadInput;
    }
    run.devices.push_back(d);
  }
  // Everything is checked before the database is touched: an invalid file writes nothing.
  const auto sweep = runner::load_sweep(in.file, in.overrides);
  const auto jobs = runner::expand(sweep);
  run.ablate_binary = self_path(argv0);
  std::unique_ptr<runner::Executor> executor;
  if (backend == "slurm") {
    // Slurm runs the parallelism: every ready job is submitted, `--per-device` is the array's
    // %N limit when given, and each task's device is the GPU Slurm gives it, or the CPU.
    // The sweep file's slurm: settings, with the command line's flags on top.
    runner::SlurmOptions from_file = sweep.slurm;
    if (vm.count("partition")) from_file.partition = slurm.partition;
    if (vm.count("time")) from_file.time_limit = slurm.time_limit;
    if (vm.count("gpus-per-task")) from_file.gpus_per_task = slurm.gpus_per_task;
    if (vm.count("cpus-per-task")) from_file.cpus_per_task = slurm.cpus_per_task;
    if (vm.count("mem")) from_file.memory = slurm.memory;
    if (vm.count("account")) from_file.account = slurm.account;
    if (vm.count("poll-interval")) from_file.poll_interval_s = slurm.poll_interval_s;
    from_file.extra.insert(from_file.extra.end(), slurm.extra.begin(), slurm.extra.end());
    slurm = from_file;
    if (vm.count("per-device")) slurm.max_parallel = run.per_device;
    slurm.job_name = "ablate-" + sweep.name;
    // Absolute: Slurm resolves --output on the compute node, from the job's working directory.
    slurm.script_dir = fs::absolute(fs::path(run.workdir) / sweep.name / "slurm").string();
    run.devices = {slurm.gpus_per_task > 0 ? "cuda" : "cpu"};
    run.per_device = std::max<int>(1, static_cast<int>(jobs.size()));
    run.threads_per_job = std::max(1, slurm.cpus_per_task);
    run.detach = vm.count("detach") > 0;
    if (vm.count("dry-run")) {
      std::vector<runner::Launch> wave;
      for (const auto& job : jobs) {
        if (!job.parent_id.empty()) continue;
        wave.push_back(runner::job_launch(job.id,
                                          runner::run_dir_of(run.workdir, sweep.name, job.id),
                                          run.devices.front(), run.threads_per_job, run));
      }
      std::cout << "# first wave: the " << wave.size() << " jobs without a parent; each later "
                << "stage is submitted as its own array when its parents are done\n"
                << runner::sbatch_script(slurm, "", wave);
      return kOk;
    }
    auto slurm_executor = std::make_unique<runner::SlurmExecutor>(slurm);
    slurm_executor->check();  // sbatch present, partition and options accepted: before the DB
    executor = std::move(slurm_executor);
  } else {
    executor = std::make_unique<runner::LocalExecutor>();
  }
  results::Store store(db);
  struct sigaction action {};
  action.sa_handler = [](int) {
    g_interrupted = true;
    signal(SIGINT, SIG_DFL);  // a second Ctrl-C ends the coordinator at once
  };
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  const auto summary = runner::run_sweep(sweep, jobs, store, *executor, run, &g_interrupted);
  std::cout << "sweep " << sweep.name << ": " << jobs.size() << " jobs, " << summary.launched
            << " launched";
  for (const auto& [status, n] : summary.counts) std::cout << ", " << n << " " << status;
  std::cout << "\n";
  if (run.detach) {
    std::cout << "detached: Slurm runs the submitted jobs; run the same command again to ingest "
                 "them and submit the next stages\n";
    return kOk;
  }
  if (summary.interrupted) {
    std::cout << "interrupted: run the same command again to resume\n";
    return kFailure;
  }
  const bool all_good =
      summary.counts.size() ==
      static_cast<size_t>(summary.counts.count("done") + summary.counts.count("diverged"));
  return all_good ? kOk : kFailure;
}

int cmd_status(const std::vector<std::string>& args) {
  po::options_description options("ablate status");
  std::string db = "ablate.db", sweep;
  options.add_options()("db", po::value(&db), "database file")("json", "JSON output")(
      "sweep", po::value(&sweep), "");
  po::positional_options_description pos;
  pos.add("sweep", 1);
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(options).positional(pos).run(), vm);
  po::notify(vm);
  const auto opened = open_read_only(db, "status");
  if (!opened) return kBadInput;
  results::Store& store = *opened;
  std::vector<std::string> names = sweep.empty() ? store.sweeps() : std::vector<std::string>{sweep};
  const auto known = store.sweeps();
  if (!sweep.empty() && std::find(known.begin(), known.end(), sweep) == known.end()) {
    std::cerr << "ablate status: no sweep '" << sweep << "' in " << db << " (sweeps:";
    for (const auto& k : known) std::cerr << " " << k;
    std::cerr << ")\n";
    return kBadInput;
  }
  nlohmann::json out = nlohmann::json::array();
  for (const auto& name : names) {
    const auto counts = store.status_counts(name);
    nlohmann::json s{{"sweep", name}, {"counts", counts}, {"failures", nlohmann::json::array()}};
    int total = 0;
    for (const auto& [k, n] : counts) total += n;
    s["total"] = total;
    for (const auto& job : store.jobs(name)) {
      if (job.status == "failed" || job.status == "timed_out" || job.status == "skipped" ||
          job.status == "diverged") {
        s["failures"].push_back({{"id", job.id}, {"status", job.status}, {"error", job.error}});
      }
    }
    out.push_back(s);
  }
  if (vm.count("json")) {
    std::cout << out.dump() << "\n";
    return kOk;
  }
  for (const auto& s : out) {
    std::cout << "sweep " << s["sweep"].get<std::string>() << ": " << s["total"].get<int>()
              << " jobs";
    for (const auto& [k, n] : s["counts"].items()) {
      if (n.get<int>() > 0) std::cout << ", " << n.get<int>() << " " << k;
    }
    std::cout << "\n";
    for (const auto& f : s["failures"]) {
      std::string error = f["error"];
      if (error.size() > 400) {
        // The first line is the reason ("timed out after 60 s"); the rest is the job's log tail,
        // of which the end matters most.
        const auto newline = std::min(error.find('\n'), error.size());
        error = newline >= 300 ? error.substr(0, 400) + "..."
                               : error.substr(0, newline) + "\n..." +
                                     error.substr(error.size() - (400 - newline));
      }
      std::cout << "  " << f["id"].get<std::string>() << " " << f["status"].get<std::string>()
                << ": " << error << "\n";
    }
  }
  return kOk;
}

int cmd_query(const std::vector<std::string>& args) {
  po::options_description options("ablate query");
  std::string db = "ablate.db", format = "table", sql;
  options.add_options()("db", po::value(&db), "database file")(
      "format", po::value(&format), "table, csv or json")("sql", po::value(&sql), "");
  po::positional_options_description pos;
  pos.add("sql", 1);
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(options).positional(pos).run(), vm);
  po::notify(vm);
  if (sql.empty()) {
    std::cerr << "ablate query: give the SQL, e.g. \"SELECT * FROM results\"\n";
    return kBadInput;
  }
  if (format != "table" && format != "csv" && format != "json") {
    std::cerr << "ablate query: --format " << format << ": expected table, csv or json\n";
    return kBadInput;
  }
  const auto store = open_read_only(db, "query");
  if (!store) return kBadInput;
  const auto result = results::run_query(*store, sql);
  std::cout << (format == "csv"    ? results::format_csv(result)
                : format == "json" ? results::format_json(result)
                                   : results::format_table(result));
  return kOk;
}

// The sweep name as one shell word, for the hint printed after an import.
std::string shell_word(const std::string& s) {
  const bool plain = !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
  return plain ? s : runner::shell_quote(s);
}

int cmd_import(const std::vector<std::string>& args) {
  po::options_description options("ablate import");
  std::string db = "ablate.db", params;
  results::ImportOptions import;
  auto add = options.add_options();
  add("db", po::value(&db), "database file");
  add("sweep", po::value(&import.sweep), "name of the new sweep");
  add("csv", po::value(&import.csv_path), "the CSV file");
  add("params", po::value(&params), "param columns, comma-separated");
  add("seed-col", po::value(&import.seed_column), "the seed column (default seed)");
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(options).run(), vm);
  po::notify(vm);
  for (const char* required : {"sweep", "csv", "params"}) {
    if (!vm.count(required)) {
      std::cerr << "ablate import: give --" << required << "\n" << kUsage;
      return kBadInput;
    }
  }
  std::stringstream list(params);
  for (std::string p; std::getline(list, p, ',');) import.params.push_back(p);
  // The CSV is checked before the database is opened: a bad file creates no database either.
  const auto plan = results::plan_import(import);
  results::Store store(db);
  const auto result = results::write_import(store, plan);
  std::cout << "imported sweep " << result.sweep << " into " << db << ": " << result.jobs
            << " jobs in " << result.arms << " arms";
  if (result.diverged > 0) std::cout << " (" << result.diverged << " diverged)";
  std::cout << "\nmetrics:";
  for (const auto& m : result.metrics) std::cout << " " << m;
  std::cout << "\nnext: ablate report " << shell_word(result.sweep) << " --metric "
            << shell_word(result.metrics.front()) << "\n";
  return kOk;
}

int cmd_report(const std::vector<std::string>& args) {
  po::options_description options("ablate report");
  std::string db = "ablate.db", test = "auto", correction = "holm", format = "md";
  std::vector<std::string> baseline;
  results::ReportOptions report;
  results::ReportFiles files;
  auto add = options.add_options();
  add("db", po::value(&db), "database file");
  add("sweep", po::value(&report.sweep), "the sweep");
  add("metric", po::value(&report.metric), "summary metric, e.g. final_test_acc");
  add("baseline", po::value(&baseline)->multitoken(), "KEY=VALUE pairs the baseline arm has");
  add("lower-is-better", po::bool_switch(&report.lower_is_better), "lower values are better");
  add("test", po::value(&test), "auto|paired-t|welch|wilcoxon|mann-whitney|permutation|aso");
  add("correction", po::value(&correction), "holm|bh|bonferroni|none");
  add("alpha", po::value(&report.alpha), "significance level (default 0.05)");
  add("min-seeds", po::value(&report.min_seeds), "fewest seeds per arm for a test (default 3)");
  add("format", po::value(&format), "md|html|tex|json, or a list md,html,tex,json with --out");
  add("out", po::value(&files.out_dir), "folder for report.<format> and figures/");
  po::positional_options_description pos;
  pos.add("sweep", 1);
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(options).positional(pos).run(), vm);
  po::notify(vm);
  if (report.sweep.empty() || report.metric.empty()) {
    std::cerr << "ablate report: give SWEEP and --metric NAME (ablate query \"SELECT DISTINCT "
                 "name FROM summaries\" lists the metrics)\n";
    return kBadInput;
  }
  for (const auto& pair : baseline) {
    const auto eq = pair.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::cerr << "ablate report: --baseline " << pair
                << ": expected KEY=VALUE (put SWEEP before --baseline)\n";
      return kBadInput;
    }
    report.baseline.emplace_back(pair.substr(0, eq), pair.substr(eq + 1));
  }
  report.test = results::parse_test_choice(test);
  try {
    report.correction = results::stats::parse_correction(correction);
  } catch (const std::invalid_argument&) {
    std::cerr << "ablate report: --correction " << correction
              << ": expected holm, bh, bonferroni or none\n";
    return kBadInput;
  }
  files.formats = results::parse_formats(format);  // several without --out: write_report says so
  const auto store = open_read_only(db, "report");
  if (!store) return kBadInput;
  const auto built = results::build_report(*store, report);
  for (const auto& w : built.warnings) std::cerr << "ablate report: warning: " << w << "\n";
  const auto written = results::write_report(built, files);
  for (const auto& n : written.notes) std::cerr << "ablate report: " << n << "\n";
  if (files.out_dir.empty()) {
    std::cout << written.text;
  } else {
    std::cout << "report of sweep " << built.sweep.name << " on " << report.metric << ":\n";
    for (const auto& f : written.files) std::cout << "  " << f << "\n";
  }
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
    if (command == "plan") return cmd_plan(args);
    if (command == "run") return cmd_run(args, argv[0]);
    if (command == "status") return cmd_status(args);
    if (command == "query") return cmd_query(args);
    if (command == "import") return cmd_import(args);
    if (command == "report") return cmd_report(args);
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
  } catch (const results::QueryError& e) {
    std::cerr << "ablate query: " << e.what() << "\n";
    return kBadInput;
  } catch (const results::ImportError& e) {
    std::cerr << "ablate import: " << e.what() << "\n";
    return kBadInput;
  } catch (const runner::SlurmError& e) {
    std::cerr << "ablate " << command << ": slurm: " << e.what() << "\n";
    return kBadInput;
  } catch (const results::ReportError& e) {
    std::cerr << "ablate report: " << e.what() << "\n";
    return kBadInput;
  } catch (const results::StoreError& e) {
    std::cerr << "store error: " << e.what() << "\n";
    return kFailure;
  } catch (const po::error& e) {
    std::cerr << "ablate " << command << ": " << e.what() << "\n" << kUsage;
    return kBadInput;
  } catch (const std::exception& e) {
    std::cerr << "ablate " << command << " failed: " << e.what() << "\n";
    return kFailure;
  }
}
