// The rules of seeds trained together (ensembles.h): parsing N | auto, how many fit a GPU, how
// many start now, and which jobs may share a process.
#include "ablate/runner/ensembles.h"

#include <gtest/gtest.h>

#include <stdexcept>

#include "ablate/runner/coordinator.h"
#include "ablate/runner/sweep.h"

namespace ablate::runner {
namespace {

constexpr int64_t kGiB = int64_t{1} << 30;

TEST(Ensembles, SeedsPerProcessIsAWholeNumberOrAuto) {
  EXPECT_EQ(parse_seeds_per_process("auto"), 0);
  EXPECT_EQ(parse_seeds_per_process("1"), 1);
  EXPECT_EQ(parse_seeds_per_process("64"), 64);
  for (const char* bad : {"0", "-1", "many", "", "2.5", "+3", "Auto", "1e3", "99999999"}) {
    try {
      parse_seeds_per_process(bad);
      ADD_FAILURE() << "accepted " << bad;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("expected a whole number >= 1 or auto, got"),
                std::string::npos)
          << e.what();
    }
  }
  EXPECT_EQ(seeds_per_process_text(0), "auto");
  EXPECT_EQ(seeds_per_process_text(3), "3");
}

// floor(0.8 * memory / peak), between 1 and the cap; 1 when either is unknown.
TEST(Ensembles, SeedsFittingAGpuFillFourFifthsOfItsMemory) {
  EXPECT_EQ(seeds_fitting_gpu(10 * kGiB, 80 * kGiB), 6);  // 64 / 10
  EXPECT_EQ(seeds_fitting_gpu(8 * kGiB, 80 * kGiB), 8);   // exactly 64 / 8
  EXPECT_EQ(seeds_fitting_gpu(2 * kGiB, 80 * kGiB, 16), 16);
  EXPECT_EQ(seeds_fitting_gpu(kGiB / 4, 80 * kGiB), kMaxGpuSeedsPerProcess);
  EXPECT_EQ(seeds_fitting_gpu(70 * kGiB, 80 * kGiB), 1);   // not even one in 0.8: one
  EXPECT_EQ(seeds_fitting_gpu(100 * kGiB, 80 * kGiB), 1);  // nor in all of it: one
  EXPECT_EQ(seeds_fitting_gpu(0, 80 * kGiB), 1);
  EXPECT_EQ(seeds_fitting_gpu(kGiB, 0), 1);
  EXPECT_EQ(seeds_fitting_gpu(-1, -1), 1);
}

TEST(Ensembles, HowManySeedsStartNow) {
  SeedsPerProcessInputs in;
  in.setting = 3;  // a number given is that number, on any device
  EXPECT_EQ(seeds_to_launch(in), 3);
  in.gpu = true;
  EXPECT_EQ(seeds_to_launch(in), 3);
  in = {};  // auto on the CPU
  EXPECT_EQ(seeds_to_launch(in), kCpuSeedsPerProcess);
  in.gpu = true;  // on a GPU whose memory is unknown: one
  in.peak_memory = kGiB;
  EXPECT_EQ(seeds_to_launch(in), 1);
  in.device_memory = 80 * kGiB;  // known memory and peak
  EXPECT_EQ(seeds_to_launch(in), 64);
  in.peak_memory = 20 * kGiB;
  EXPECT_EQ(seeds_to_launch(in), 3);
  in.peak_memory.reset();  // no peak yet: a probe alone, the others wait while it runs
  EXPECT_EQ(seeds_to_launch(in), 1);
  in.arm_running = true;
  EXPECT_EQ(seeds_to_launch(in), 0);
}

TEST(Ensembles, NvidiaSmiSaysMebibytes) {
  EXPECT_EQ(parse_nvidia_smi_memory("81559\n"), int64_t{81559} * 1024 * 1024);
  EXPECT_EQ(parse_nvidia_smi_memory("143771"), int64_t{143771} * 1024 * 1024);
  EXPECT_EQ(parse_nvidia_smi_memory(""), 0);
  EXPECT_EQ(parse_nvidia_smi_memory("No devices were found\n"), 0);
  EXPECT_EQ(parse_nvidia_smi_memory("81559\n81559\n"), 0);  // one device asked, one answer
  EXPECT_EQ(nvidia_smi_memory("cpu"), 0);
  EXPECT_EQ(nvidia_smi_memory("cuda:x"), 0);
}

const char* kGrid =
    "name: g\n"
    "task: lm\n"
    "base: {model: {dim: 32, depth: 1, heads: 4}, train: {steps: 10, warmup: 1}}\n"
    "seeds: 3\n"
    "grid:\n  - attention.variant: gqa\n    attention.kv_heads: [1, 2]\n"
    "stages:\n"
    "  - {name: pretrain, set: {attention.variant: mha}}\n"
    "  - {name: uptrain, from: pretrain, convert: mean_pool}\n";

// Seeds of one stage and arm share processes; arms and stages never do.
TEST(Ensembles, GroupsAreOneStageAndArmInTheOrderOfTheirFirstJob) {
  const auto jobs = expand(parse_sweep(kGrid, "g.yaml"));
  ASSERT_EQ(jobs.size(), 9u);  // 3 shared mha pretrains, 2 arms x 3 seeds of uptrain
  std::vector<const JobSpec*> all;
  for (const auto& j : jobs) all.push_back(&j);
  const auto groups = seed_groups(all);
  ASSERT_EQ(groups.size(), 3u);
  EXPECT_EQ(groups[0].front()->stage, "pretrain");
  for (const auto& group : groups) {
    EXPECT_EQ(group.size(), 3u);
    for (size_t i = 0; i < group.size(); ++i) {
      EXPECT_EQ(group[i]->stage, group[0]->stage);
      EXPECT_EQ(group[i]->arm_key, group[0]->arm_key);
      EXPECT_EQ(group[i]->seed, static_cast<int64_t>(i));  // in the order given
    }
  }
  EXPECT_NE(groups[1][0]->arm_key, groups[2][0]->arm_key);

  auto sizes = [&](int n) {
    std::vector<size_t> out;
    for (const auto& p : processes_of(jobs, n)) out.push_back(p.size());
    return out;
  };
  EXPECT_EQ(sizes(3), (std::vector<size_t>{3, 3, 3}));
  EXPECT_EQ(sizes(2), (std::vector<size_t>{2, 1, 2, 1, 2, 1}));
  EXPECT_EQ(sizes(1).size(), 9u);
  EXPECT_EQ(sizes(64), (std::vector<size_t>{3, 3, 3}));
}

// One member: exactly the process of a single job. Several: one `ablate train` with a --run-dir
// per member, its output in the lead's run dir.
TEST(Ensembles, AnEnsemblesCommandLineHasEveryRunDir) {
  RunOptions options;
  options.ablate_binary = "/bin/ablate";
  options.timeout_s = 30;
  const Launch one = ensemble_launch({{"a", "/w/s/a"}}, "cpu", 2, options);
  const Launch single = job_launch("a", "/w/s/a", "cpu", 2, options);
  EXPECT_EQ(one.argv, single.argv);
  EXPECT_EQ(one.output_file, single.output_file);
  ASSERT_EQ(one.members.size(), 1u);

  const Launch three =
      ensemble_launch({{"a", "/w/s/a"}, {"b", "/w/s/b"}, {"c", "/w/s/c"}}, "cpu", 2, options);
  EXPECT_EQ(three.argv, (std::vector<std::string>{"/bin/ablate", "train", "train.device=cpu",
                                                  "--run-dir", "/w/s/a", "--run-dir", "/w/s/b",
                                                  "--run-dir", "/w/s/c", "train.threads=2"}));
  EXPECT_EQ(three.job_id, "a");
  EXPECT_EQ(three.run_dir, "/w/s/a");
  EXPECT_EQ(three.output_file, "/w/s/a/output.txt");
  EXPECT_EQ(three.timeout_s, 30);
  EXPECT_EQ(members_of(three).size(), 3u);
  const Launch gpu = ensemble_launch({{"a", "/w/s/a"}, {"b", "/w/s/b"}}, "cuda:1", 2, options);
  EXPECT_EQ(gpu.argv.back(), "/w/s/b");  // no train.threads on a GPU
  EXPECT_EQ(gpu.argv[2], "train.device=cuda:1");
  EXPECT_THROW(ensemble_launch({}, "cpu", 1, options), std::invalid_argument);
}

}  // namespace
}  // namespace ablate::runner
