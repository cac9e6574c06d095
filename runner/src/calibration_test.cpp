// The CPU calibration's pure parts: the layouts timed, the choice, the cache file and where it is.
#include "ablate/runner/calibration.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "ablate/testing/temp_dir.h"

namespace ablate::runner {
namespace {

std::string read_text_for_test(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string layouts_text(const std::vector<CpuLayout>& ls) {
  std::string out;
  for (const auto& l : ls) out += std::to_string(l.jobs) + "x" + std::to_string(l.threads) + " ";
  return out;
}

TEST(Calibration, LayoutsFillTheCoresWithPowersOfTwoThreadsAndAllOfThem) {
  EXPECT_EQ(layouts_text(candidate_layouts(1)), "1x1 ");
  EXPECT_EQ(layouts_text(candidate_layouts(2)), "2x1 1x2 ");
  EXPECT_EQ(layouts_text(candidate_layouts(6)), "6x1 3x2 1x4 1x6 ");
  EXPECT_EQ(layouts_text(candidate_layouts(16)), "16x1 8x2 4x4 2x8 1x16 ");
  EXPECT_EQ(layouts_text(candidate_layouts(0)), "1x1 ");
}

TEST(Calibration, TheFastestWinsAndATieGoesToFewerThreads) {
  EXPECT_EQ(layouts_text({best_layout({{2, 1, 900}, {1, 2, 1000}})}), "1x2 ");
  // Within 3%: the layout with fewer threads (more jobs at once).
  EXPECT_EQ(layouts_text({best_layout({{1, 2, 1000}, {2, 1, 980}})}), "2x1 ");
  EXPECT_EQ(layouts_text({best_layout({{2, 1, 980}, {1, 2, 1000}})}), "2x1 ");
  // Beyond it, the faster.
  EXPECT_EQ(layouts_text({best_layout({{2, 1, 960}, {1, 2, 1000}})}), "1x2 ");
  // Unmeasured layouts never win.
  EXPECT_EQ(layouts_text({best_layout({{4, 1, 0}, {2, 2, 10}})}), "2x2 ");
}

// A calibration of a 2-core machine that chose 2 jobs x 1 thread.
Calibration two_core_calibration(const std::string& config, std::vector<CpuLayout> layouts) {
  Calibration c;
  c.machine = "Some CPU | 2 cores";
  c.measured_at = "2026-11-30T12:00:00Z";
  c.config = config;
  c.unit = "images/s";
  c.layouts = std::move(layouts);
  c.best = c.layouts[0];
  return c;
}

TEST(Calibration, TheCacheReadsBackAndOnlyOnTheSameMachine) {
  testing::TempDir dir;
  const Calibration c =
      two_core_calibration("configs/quickstart.yaml", {{2, 1, 2000.5}, {1, 2, 1500.25}});
  const std::string path = (dir.path() / "sub" / "cpu-calibration.json").string();
  save_calibration(path, c);
  const auto back = load_calibration(path, c.machine);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->measured_at, c.measured_at);
  EXPECT_EQ(back->config, c.config);
  EXPECT_EQ(back->unit, c.unit);
  EXPECT_EQ(layouts_text(back->layouts), "2x1 1x2 ");
  EXPECT_DOUBLE_EQ(back->layouts[1].items_per_s, 1500.25);
  EXPECT_EQ(back->best.jobs, 2);
  EXPECT_FALSE(load_calibration(path, "Another CPU | 2 cores").has_value());
  EXPECT_FALSE(load_calibration((dir.path() / "none.json").string(), c.machine).has_value());
  std::ofstream(path) << "{\"machine\": \"Some CPU | 2 cores\", \"best\": {\"jobs\": 0}}";
  EXPECT_FALSE(load_calibration(path, c.machine).has_value());
  EXPECT_FALSE(load_calibration("", c.machine).has_value());
}

// Other programs' share of the CPU while a calibration measured: the machine's busy time less
// this process's own, over the machine's time (/proc/stat counters, in ticks).
TEST(Calibration, OtherProgramsShareOfTheCpuIsTheBusyTimeThatWasNotOurs) {
  // user nice system idle iowait irq softirq steal guest guest_nice
  const auto before = parse_cpu_ticks("cpu  100 0 50 800 10 5 5 0 0 0\ncpu0 50 0 25 400 5 2 3 0");
  const auto after = parse_cpu_ticks("cpu  400 0 110 940 10 5 5 30 20 0\n");
  ASSERT_TRUE(before && after);
  EXPECT_DOUBLE_EQ(before->busy, 160);   // 100 + 50 + 5 + 5 (guest time is in user already)
  EXPECT_DOUBLE_EQ(before->total, 970);  // + idle 800 + iowait 10
  EXPECT_DOUBLE_EQ(after->busy, 550);
  EXPECT_DOUBLE_EQ(after->total, 1500);
  // 530 ticks passed, 390 of them busy; 250 were this process's: 140 / 530 others'.
  EXPECT_DOUBLE_EQ(others_cpu_share(*before, *after, 250), 140.0 / 530.0);
  EXPECT_DOUBLE_EQ(others_cpu_share(*before, *after, 390), 0.0);
  EXPECT_DOUBLE_EQ(others_cpu_share(*before, *after, 500), 0.0);  // rounding: never below 0
  EXPECT_LT(others_cpu_share(*before, *before, 0), 0);            // no time: not known
  EXPECT_FALSE(parse_cpu_ticks("intr 1 2 3").has_value());
  EXPECT_FALSE(parse_cpu_ticks("cpu 1 2").has_value());
  EXPECT_FALSE(parse_cpu_ticks("").has_value());
}

TEST(Calibration, ABusyMeasurementIsKeptAndSaidWheneverItIsUsed) {
  testing::TempDir dir;
  Calibration c = two_core_calibration("uptrain.yaml", {{2, 1, 3406}, {1, 2, 258.8}});
  EXPECT_EQ(busy_note(c), "") << "not known: nothing said";
  c.others_cpu_share = kBusyShare;
  EXPECT_EQ(busy_note(c), "") << "at the threshold: quiet enough";
  c.others_cpu_share = 0.454;
  EXPECT_EQ(busy_note(c),
            "measured while other programs used 45% of the CPU, so another layout may be "
            "faster on the idle machine");
  const std::string path = (dir.path() / "cal.json").string();
  save_calibration(path, c);
  const auto back = load_calibration(path, c.machine);
  ASSERT_TRUE(back.has_value());
  EXPECT_DOUBLE_EQ(back->others_cpu_share, 0.454);
  // An older cache without the field: not known.
  EXPECT_LT(parse_calibration(R"({"machine": "m", "measured_at": "t", "config": "c",
      "unit": "images/s", "layouts": [], "best": {"jobs": 1, "threads": 1, "items_per_s": 1}})")
                ->others_cpu_share,
            0);
}

TEST(Calibration, OneFileKeepsThisMachineAndEachSlurmPartitionApart) {
  testing::TempDir dir;
  const std::string path = (dir.path() / "cal.json").string();
  Calibration local;
  local.machine = "Some CPU | 2 cores";
  local.measured_at = "2026-11-30T12:00:00Z";
  local.config = "a.yaml";
  local.unit = "tokens/s";
  local.layouts = {{2, 1, 300}, {1, 2, 200}};
  local.best = local.layouts[0];
  Calibration slurm = local;
  slurm.machine = slurm_calibration_key("cpu");
  slurm.node = "Big CPU | 64 cores";
  slurm.layouts = {{64, 1, 100}, {16, 4, 900}};
  slurm.best = slurm.layouts[1];
  save_calibration(path, local);
  save_calibration(path, slurm);
  const auto here = load_calibration(path, local.machine);
  const auto there = load_calibration(path, "Slurm partition cpu");
  ASSERT_TRUE(here.has_value());
  ASSERT_TRUE(there.has_value());
  EXPECT_EQ(here->best.jobs, 2);
  EXPECT_EQ(here->node, "");
  EXPECT_EQ(there->best.threads, 4);
  EXPECT_EQ(there->node, "Big CPU | 64 cores");
  EXPECT_FALSE(load_calibration(path, slurm_calibration_key("")).has_value());
  EXPECT_EQ(slurm_calibration_key(""), "Slurm default partition");
  // Measuring a partition again replaces its entry only.
  slurm.best = slurm.layouts[0];
  save_calibration(path, slurm);
  EXPECT_EQ(parse_calibrations(read_text_for_test(path)).size(), 2u);
  EXPECT_EQ(load_calibration(path, "Slurm partition cpu")->best.threads, 1);
  EXPECT_EQ(load_calibration(path, local.machine)->best.jobs, 2);
}

TEST(Calibration, TheOlderOneEntryFileIsReadAndKeptWhenAnotherIsAdded) {
  testing::TempDir dir;
  const std::string path = (dir.path() / "cal.json").string();
  std::ofstream(path) << R"({"machine": "Old CPU | 2 cores", "measured_at": "2026-11-30T12:00:00Z",
    "config": "q.yaml", "unit": "images/s", "layouts": [{"jobs": 2, "threads": 1,
    "items_per_s": 5.5}], "best": {"jobs": 2, "threads": 1, "items_per_s": 5.5}})";
  ASSERT_TRUE(load_calibration(path, "Old CPU | 2 cores").has_value());
  Calibration c = *load_calibration(path, "Old CPU | 2 cores");
  c.machine = slurm_calibration_key("");
  save_calibration(path, c);
  EXPECT_TRUE(load_calibration(path, "Old CPU | 2 cores").has_value());
  EXPECT_TRUE(load_calibration(path, "Slurm default partition").has_value());
  // An unreadable file is replaced, not kept beside.
  std::ofstream(path) << "not json";
  EXPECT_TRUE(parse_calibrations("not json").empty());
  save_calibration(path, c);
  EXPECT_EQ(parse_calibrations(read_text_for_test(path)).size(), 1u);
}

TEST(Calibration, ItsPathFollowsTheEnvironment) {
  const char* old_set = std::getenv("ABLATE_CALIBRATION");
  const std::string saved = old_set ? old_set : "";
  setenv("ABLATE_CALIBRATION", "off", 1);
  EXPECT_EQ(calibration_path(), "");
  setenv("ABLATE_CALIBRATION", "/somewhere/c.json", 1);
  EXPECT_EQ(calibration_path(), "/somewhere/c.json");
  unsetenv("ABLATE_CALIBRATION");
  setenv("XDG_CACHE_HOME", "/xdg", 1);
  EXPECT_EQ(calibration_path(), "/xdg/ablate/cpu-calibration.json");
  unsetenv("XDG_CACHE_HOME");
  const char* old_home = std::getenv("HOME");
  const std::string home = old_home ? old_home : "";
  setenv("HOME", "/home/someone", 1);
  EXPECT_EQ(calibration_path(), "/home/someone/.cache/ablate/cpu-calibration.json");
  if (old_home != nullptr) setenv("HOME", home.c_str(), 1);
  if (old_set != nullptr) setenv("ABLATE_CALIBRATION", saved.c_str(), 1);
}

TEST(Calibration, TheMachineKeyNamesTheCpuAndTheCores) {
  const std::string key = machine_key(2);
  EXPECT_NE(key.find(" | 2 cores"), std::string::npos) << key;
  EXPECT_NE(key.rfind(" | 2 cores"), 0u) << "no CPU model in " << key;
  EXPECT_EQ(machine_key(1).substr(machine_key(1).size() - 7), " 1 core");
  // Other BLAS kernels make another machine: a layout timed with the fallback kernels is not
  // reused with the fast ones.
  EXPECT_EQ(machine_key(2, "SkylakeX"), key + " | OpenBLAS SkylakeX");
}

}  // namespace
}  // namespace ablate::runner
