// The Slurm executor against fake sbatch/squeue/scancel scripts (the real cluster is exercised
// by the integration test): scripts, parsing, state mapping, waves, adoption, cancellation.
#include "ablate/runner/slurm.h"

#include "ablate/runner/parse.h"
#include "ablate/runner/sweep.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cstdlib>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "ablate/testing/errors.h"
#include "ablate/testing/temp_dir.h"

namespace ablate::runner {
namespace {
namespace fs = std::filesystem;

std::string read(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_script(const fs::path& p, const std::string& body) {
  std::ofstream(p) << "#!/bin/sh\n" << body;
  chmod(p.c_str(), 0755);
}

Launch launch(const std::string& id, const std::string& run_dir, double timeout_s = 0) {
  Launch l;
  l.job_id = id;
  l.argv = {"/opt/ablate it's", "train", run_dir + "/config.yaml", "--run-dir", run_dir};
  l.output_file = run_dir + "/output.txt";
  l.run_dir = run_dir;
  l.timeout_s = timeout_s;
  return l;
}

TEST(Slurm, ScriptHasTheOptionsAndOneQuotedCasePerTask) {
  SlurmOptions o;
  o.partition = "gpu";
  o.gpus_per_task = 1;
  o.cpus_per_task = 8;
  o.memory = "16G";
  o.account = "lab";
  o.max_parallel = 4;
  o.extra = {"--qos=high"};
  o.script_dir = "/shared/runs/s/slurm";
  const std::string s = sbatch_script(o, "sweep", {launch("a", "/r/a", 61), launch("b", "/r/b")});
  for (const char* line :
       {"#SBATCH --job-name=ablate-sweep\n", "#SBATCH --array=0-1%4\n",
        "#SBATCH --output=/shared/runs/s/slurm/%x-%A_%a.out\n", "#SBATCH --no-requeue\n",
        "#SBATCH --partition=gpu\n", "#SBATCH --time=2\n", "#SBATCH --gpus-per-task=1\n",
        "#SBATCH --cpus-per-task=8\n", "#SBATCH --mem=16G\n", "#SBATCH --account=lab\n",
        "#SBATCH --qos=high\n", "  0)  # job a\n", "  1)  # job b\n", "run_dir='/r/b'",
        "set -- '/opt/ablate it'\\''s' 'train' '/r/a/config.yaml' '--run-dir' '/r/a' ;;",
        "for dir in \"$run_dir\" ${others[@]+\"${others[@]}\"}; do\n",
        "mv \"$dir/slurm_exit.tmp\" \"$dir/slurm_exit\""}) {
    EXPECT_NE(s.find(line), std::string::npos) << line << "\n" << s;
  }
  // A launch's environment: `env NAME=value ...` before the command.
  Launch threaded = launch("c", "/r/c");
  threaded.env = {{"OMP_NUM_THREADS", "2"}, {"OPENBLAS_NUM_THREADS", "2"}};
  const std::string with_env = sbatch_script(o, "sweep", {threaded});
  EXPECT_NE(with_env.find("set -- env 'OMP_NUM_THREADS=2' 'OPENBLAS_NUM_THREADS=2' "
                          "'/opt/ablate it'\\''s' 'train'"),
            std::string::npos)
      << with_env;
  // No limit, no time: neither line.
  const std::string plain = sbatch_script(SlurmOptions{}, "", {launch("a", "/r/a")});
  EXPECT_NE(plain.find("#SBATCH --array=0-0\n"), std::string::npos);
  EXPECT_EQ(plain.find("--time"), std::string::npos);
  EXPECT_EQ(plain.find("--partition"), std::string::npos);
  EXPECT_THROW(sbatch_script(o, "x", {}), std::invalid_argument);
}

// The seeds of an ensemble in one launch: run dirs a (the lead), b and c.
Launch ensemble(const std::vector<std::string>& ids, const std::string& root,
                const std::vector<std::string>& argv) {
  Launch l = launch(ids.front(), root + "/" + ids.front());
  l.argv = argv;
  for (const auto& id : ids) l.members.push_back({id, root + "/" + id});
  return l;
}

// An array task runs its command line once, its output in the lead's output.txt, and leaves the
// exit status in every member's run dir; a task of one job keeps the convention it had.
TEST(Slurm, AnEnsembleTaskLeavesItsExitStatusInEveryMembersRunDir) {
  testing::TempDir dir;
  const std::string root = dir.path().string();
  for (const char* job : {"a", "b", "c", "d"}) fs::create_directories(dir.path() / job);
  const std::vector<Launch> wave = {
      ensemble({"a", "b", "c"}, root, {"/bin/sh", "-c", "echo trained; exit 3"}),
      ensemble({"d"}, root, {"/bin/sh", "-c", "echo alone; exit 0"})};
  const std::string script = sbatch_script(SlurmOptions{}, "s", wave);
  EXPECT_NE(script.find("  0)  # job a with b c\n"), std::string::npos) << script;
  EXPECT_NE(script.find("    others=('" + root + "/b' '" + root + "/c')\n"), std::string::npos)
      << script;
  std::ofstream(dir.path() / "wave.sh") << script;
  for (const char* task : {"0", "1"}) {
    const std::string command = std::string("SLURM_ARRAY_TASK_ID=") + task + " bash " +
                                (dir.path() / "wave.sh").string() + " >/dev/null 2>&1";
    EXPECT_EQ(WEXITSTATUS(std::system(command.c_str())), task == std::string("0") ? 3 : 0);
  }
  for (const char* member : {"a", "b", "c"}) {
    EXPECT_EQ(read(dir.path() / member / "slurm_exit"), "3\n") << member;
  }
  EXPECT_EQ(read(dir.path() / "a/output.txt"), "trained\n");
  EXPECT_FALSE(fs::exists(dir.path() / "b/output.txt"));
  EXPECT_EQ(read(dir.path() / "d/slurm_exit"), "0\n");
  EXPECT_EQ(read(dir.path() / "d/output.txt"), "alone\n");
}

TEST(Slurm, ParsesSbatchAndSqueueOutput) {
  EXPECT_EQ(parse_sbatch_output("4242\n"), "4242");
  EXPECT_EQ(parse_sbatch_output("4242;cluster\n"), "4242");
  EXPECT_THROW(parse_sbatch_output("sbatch: error: invalid partition specified: nope\n"),
               SlurmError);
  const auto states =
      parse_squeue("4242_0 RUNNING\n4242_1 COMPLETED\n4242_[2-5%2] PENDING\nnoise\n77 RUNNING\n");
  EXPECT_EQ(states,
            (std::map<std::string, std::string>{{"4242_0", "RUNNING"}, {"4242_1", "COMPLETED"}}));
}

TEST(Slurm, StatesMapToOutcomes) {
  EXPECT_FALSE(slurm_outcome("PENDING").ended);
  EXPECT_FALSE(slurm_outcome("RUNNING").ended);
  EXPECT_FALSE(slurm_outcome("COMPLETING").ended);
  EXPECT_TRUE(slurm_outcome("COMPLETED").ended);
  EXPECT_FALSE(slurm_outcome("COMPLETED").lost);
  EXPECT_TRUE(slurm_outcome("TIMEOUT").timed_out);
  EXPECT_TRUE(slurm_outcome("OUT_OF_MEMORY").out_of_memory);
  for (const char* lost : {"CANCELLED", "PREEMPTED", "NODE_FAIL", "BOOT_FAIL"}) {
    EXPECT_TRUE(slurm_outcome(lost).ended && slurm_outcome(lost).lost) << lost;
  }
}

// Fake commands: sbatch keeps the script and prints a job id; squeue prints the file `states`;
// scancel records its arguments.
class SlurmFake : public ::testing::Test {
 protected:
  void SetUp() override {
    write_script(dir_.path() / "sbatch",
                 "for a; do last=$a; done\n"
                 "case \"$*\" in *--test-only*) case \"$*\" in *nope*) "
                 "echo 'sbatch: error: invalid partition specified: nope' >&2; exit 1;; esac;"
                 " exit 0;; esac\n"
                 "cp \"$last\" '" +
                     dir_.file("submitted.sh") + "'\necho '4242;local'\n");
    write_script(dir_.path() / "squeue", "cat '" + dir_.file("states") + "'\n");
    write_script(dir_.path() / "scancel", "echo \"$@\" >> '" + dir_.file("cancelled") + "'\n");
    options_.sbatch = dir_.file("sbatch");
    options_.squeue = dir_.file("squeue");
    options_.scancel = dir_.file("scancel");
    options_.script_dir = dir_.file("scripts");
    options_.poll_interval_s = 0;
    for (const char* job : {"a", "b"}) fs::create_directories(dir_.path() / job);
  }
  void states(const std::string& text) { std::ofstream(dir_.file("states")) << text; }

  testing::TempDir dir_;
  SlurmOptions options_;
};

TEST_F(SlurmFake, AWaveIsOneArrayAndTasksEndAsSlurmSays) {
  SlurmExecutor ex(options_);
  EXPECT_EQ(ex.start(launch("a", dir_.file("a"))), "");
  EXPECT_EQ(ex.start(launch("b", dir_.file("b"))), "");
  EXPECT_EQ(ex.running(), 2u);
  const auto handles = ex.flush();
  ASSERT_EQ(handles.size(), 2u);
  EXPECT_EQ(handles[0], (std::pair<std::string, std::string>{"a", "slurm:4242_0"}));
  EXPECT_EQ(handles[1], (std::pair<std::string, std::string>{"b", "slurm:4242_1"}));
  EXPECT_NE(read(dir_.file("submitted.sh")).find("#SBATCH --array=0-1\n"), std::string::npos);
  EXPECT_TRUE(ex.flush().empty());  // nothing queued: nothing submitted
  states("4242_0 RUNNING\n4242_1 PENDING\n");
  EXPECT_TRUE(ex.poll(0).empty());
  // a finished (its wrapper wrote the exit status); b was cancelled.
  std::ofstream(dir_.file("a/slurm_exit")) << "0\n";
  states("4242_0 COMPLETED\n4242_1 CANCELLED\n");
  auto exits = ex.poll(0);
  ASSERT_EQ(exits.size(), 2u);
  EXPECT_EQ(exits[0].job_id, "a");
  EXPECT_EQ(exits[0].exit_code, 0);
  EXPECT_FALSE(exits[0].lost);
  EXPECT_EQ(exits[1].job_id, "b");
  EXPECT_TRUE(exits[1].lost);
  EXPECT_EQ(exits[1].state, "CANCELLED");
  EXPECT_EQ(ex.running(), 0u);
}

TEST_F(SlurmFake, FailuresTimeoutsAndTasksSlurmForgot) {
  SlurmExecutor ex(options_);
  ex.start(launch("a", dir_.file("a")));
  ex.start(launch("b", dir_.file("b")));
  ex.flush();
  std::ofstream(dir_.file("a/slurm_exit")) << "3\n";
  states("4242_0 FAILED\n4242_1 TIMEOUT\n");
  auto exits = ex.poll(0);
  ASSERT_EQ(exits.size(), 2u);
  EXPECT_EQ(exits[0].exit_code, 3);
  EXPECT_TRUE(exits[1].timed_out);
  // Adopted tasks that Slurm no longer lists: with an exit status they ended; without one, three
  // answers in a row, they are lost.
  ASSERT_TRUE(ex.adopt("a", "slurm:4242_0", dir_.file("a")));
  ASSERT_TRUE(ex.adopt("b", "slurm:4242_1", dir_.file("b")));
  EXPECT_FALSE(ex.adopt("c", "12345", dir_.file("b")));  // a local pid is not Slurm's
  states("");
  exits = ex.poll(0);
  ASSERT_EQ(exits.size(), 1u);
  EXPECT_EQ(exits[0].job_id, "a");
  EXPECT_EQ(exits[0].exit_code, 3);
  EXPECT_TRUE(ex.poll(0).empty());
  exits = ex.poll(0);
  ASSERT_EQ(exits.size(), 1u);
  EXPECT_EQ(exits[0].state, "VANISHED");
  EXPECT_TRUE(exits[0].lost);
}

// An ensemble is one task: every member gets its handle, its end is every member's, and a later
// coordinator that adopts the members (the lead first) follows one task again.
TEST_F(SlurmFake, AnEnsembleIsOneTaskForEveryMember) {
  for (const char* job : {"c"}) fs::create_directories(dir_.path() / job);
  const std::string root = dir_.path().string();
  SlurmExecutor ex(options_);
  std::ofstream(dir_.file("b/slurm_exit")) << "1\n";  // an earlier attempt's
  ex.start(ensemble({"a", "b"}, root, {"ablate", "train", "--run-dir", root + "/a"}));
  ex.start(launch("c", dir_.file("c")));
  EXPECT_FALSE(fs::exists(dir_.file("b/slurm_exit")));
  EXPECT_EQ(ex.running(), 2u);
  const auto handles = ex.flush();
  EXPECT_EQ(handles, (std::vector<std::pair<std::string, std::string>>{
                         {"a", "slurm:4242_0"}, {"b", "slurm:4242_0"}, {"c", "slurm:4242_1"}}));
  EXPECT_NE(read(dir_.file("submitted.sh")).find("#SBATCH --array=0-1\n"), std::string::npos);
  std::ofstream(dir_.file("a/slurm_exit")) << "0\n";
  std::ofstream(dir_.file("b/slurm_exit")) << "0\n";
  states("4242_0 COMPLETED\n4242_1 RUNNING\n");
  auto exits = ex.poll(0);
  ASSERT_EQ(exits.size(), 1u);
  EXPECT_EQ(exits[0].job_id, "a");
  EXPECT_EQ(exits[0].exit_code, 0);
  ASSERT_EQ(exits[0].members.size(), 2u);
  EXPECT_EQ(exits[0].members[1].job_id, "b");
  EXPECT_EQ(exits[0].members[1].run_dir, dir_.file("b"));

  SlurmExecutor later(options_);
  ASSERT_TRUE(later.adopt("a", "slurm:4242_0", dir_.file("a")));
  ASSERT_TRUE(later.adopt("b", "slurm:4242_0", dir_.file("b")));
  EXPECT_EQ(later.running(), 1u);
  states("4242_0 CANCELLED\n");
  exits = later.poll(0);
  ASSERT_EQ(exits.size(), 1u);
  EXPECT_TRUE(exits[0].lost);
  EXPECT_EQ(exits[0].job_id, "a");
  ASSERT_EQ(exits[0].members.size(), 2u);
  EXPECT_EQ(exits[0].members[1].job_id, "b");
}

TEST_F(SlurmFake, StopAllCancelsTheTasks) {
  SlurmExecutor ex(options_);
  ex.start(launch("a", dir_.file("a")));
  ex.start(launch("b", dir_.file("b")));
  ex.flush();
  states("4242_0 CANCELLED\n4242_1 CANCELLED\n");
  const auto exits = ex.stop_all(1);
  EXPECT_EQ(read(dir_.file("cancelled")), "4242_0 4242_1\n");
  ASSERT_EQ(exits.size(), 2u);
  EXPECT_EQ(exits[0].signal, SIGTERM);  // the coordinator records them as interrupted
}

TEST_F(SlurmFake, CheckShowsSlurmsRefusal) {
  SlurmOptions o = options_;
  o.partition = "nope";
  auto refusal = [](const SlurmOptions& options) {
    return testing::thrown_message<SlurmError>([&] { SlurmExecutor(options).check(); });
  };
  EXPECT_NE(refusal(o).find("invalid partition specified: nope"), std::string::npos) << refusal(o);
  EXPECT_NO_THROW(SlurmExecutor(options_).check());
  o.sbatch = dir_.file("no-such-sbatch");
  EXPECT_NE(refusal(o).find("sbatch not found"), std::string::npos) << refusal(o);
  // sbatch on a machine that is no cluster's submit host (its real words): not a refusal.
  write_script(dir_.path() / "lost-sbatch",
               "echo 'sbatch: error: fetch_config: DNS SRV lookup failed' >&2\n"
               "echo 'sbatch: fatal: Could not establish a configuration source' >&2\nexit 1\n");
  o.sbatch = dir_.file("lost-sbatch");
  EXPECT_EQ(refusal(o).rfind("sbatch cannot reach a Slurm cluster from here", 0), 0u) << refusal(o);
  EXPECT_NE(refusal(o).find("DNS SRV lookup failed"), std::string::npos) << refusal(o);
}

TEST(Slurm, SweepFileSettingsAreTypedAndCheckedWithTheirLine) {
  const std::string head = "name: s\ntask: lm\nbase: {data: {dataset: fortunes}}\n";
  const SweepSpec spec = parse_sweep(head +
                                         "slurm:\n  partition: gpu\n  time: '01:00:00'\n"
                                         "  gpus_per_task: 1\n  max_parallel: 8\n"
                                         "  sbatch: ['--qos=high', '--exclusive']\n",
                                     "s.yaml", {});
  EXPECT_EQ(spec.slurm.partition, "gpu");
  EXPECT_EQ(spec.slurm.time_limit, "01:00:00");
  EXPECT_EQ(spec.slurm.gpus_per_task, 1);
  EXPECT_EQ(spec.slurm.max_parallel, 8);
  EXPECT_EQ(spec.slurm.extra, (std::vector<std::string>{"--qos=high", "--exclusive"}));
  auto error = [&](const std::string& slurm) {
    return testing::thrown_message<ConfigError>([&] { parse_sweep(head + slurm, "s.yaml", {}); });
  };
  EXPECT_NE(error("slurm:\n  partiton: gpu\n")
                .find("s.yaml:5:3: slurm.partiton: unknown key; did "
                      "you mean partition?"),
            std::string::npos)
      << error("slurm:\n  partiton: gpu\n");
  EXPECT_NE(error("slurm:\n  gpus_per_task: two\n")
                .find("s.yaml:5:18: slurm.gpus_per_task: "
                      "expected a whole number"),
            std::string::npos)
      << error("slurm:\n  gpus_per_task: two\n");
  EXPECT_NE(error("slurm:\n  sbatch: {a: 1}\n").find("slurm.sbatch: expected #SBATCH lines"),
            std::string::npos);
  // A newline in a value would be a line of the batch script, which bash runs: refused at its
  // line, for every text value and every #SBATCH line.
  EXPECT_NE(error("slurm:\n  partition: \"gpu\\ntouch /tmp/pwned\"\n")
                .find("s.yaml:5:14: slurm.partition: contains a control character (a newline)"),
            std::string::npos)
      << error("slurm:\n  partition: \"gpu\\ntouch /tmp/pwned\"\n");
  for (const char* key : {"time", "mem", "account"}) {
    EXPECT_NE(error(std::string("slurm:\n  ") + key + ": \"x\\rid\"\n").find("a carriage return"),
              std::string::npos)
        << key;
  }
  EXPECT_NE(error("slurm:\n  sbatch: [\"--qos=high\\nrm -rf ~\"]\n").find("slurm.sbatch: contains"),
            std::string::npos);
  EXPECT_NE(error("slurm:\n  sbatch: [\"echo hi\"]\n").find("starting with '-'"),
            std::string::npos);
  EXPECT_NE(error("slurm:\n  partition: \"gpu debug\"\n").find("contains a space or a quote"),
            std::string::npos);
}

// The last line of defence: whatever the caller checked, no script is written with a value
// that breaks its lines (and the message shows the value escaped, not raw).
TEST(Slurm, NoScriptWithAControlCharacterInAnyValue) {
  SlurmOptions o;
  o.partition = "gpu";
  const std::vector<Launch> wave{launch("0123456789abcdef", "/runs/s/0123456789abcdef")};
  EXPECT_NO_THROW(sbatch_script(o, "", wave));
  for (auto field : {&SlurmOptions::partition, &SlurmOptions::time_limit, &SlurmOptions::memory,
                     &SlurmOptions::account, &SlurmOptions::script_dir, &SlurmOptions::job_name}) {
    SlurmOptions bad = o;
    bad.*field = "a\nb";
    EXPECT_THROW(sbatch_script(bad, "", wave), SlurmError);
    EXPECT_THROW(check_slurm_texts(bad), SlurmError);
  }
  SlurmOptions bad = o;
  bad.extra = {"--qos=high", "--comment=\x1b[2Jx"};
  const std::string message = testing::thrown_message<SlurmError>([&] { check_slurm_texts(bad); });
  EXPECT_NE(message.find("\\x1b[2Jx"), std::string::npos) << message;
  EXPECT_EQ(message.find('\x1b'), std::string::npos) << message;
  bad.extra = {"--comment=\xff\xfe"};
  EXPECT_NE(testing::thrown_message<SlurmError>([&] { check_slurm_texts(bad); }).find("not UTF-8"),
            std::string::npos);
  EXPECT_EQ(slurm_text_problem("--comment=caf\xc3\xa9 au lait", false), "");  // UTF-8, spaces
  EXPECT_EQ(slurm_text_problem("/shared/runs/s/slurm", true), "");
}

}  // namespace
}  // namespace ablate::runner
