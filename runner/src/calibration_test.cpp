// The CPU calibration's pure parts: the layouts timed, the choice, the cache file and where it is.
#include "ablate/runner/calibration.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "ablate/testing/temp_dir.h"

namespace ablate::runner {
namespace {

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

TEST(Calibration, TheCacheReadsBackAndOnlyOnTheSameMachine) {
  testing::TempDir dir;
  Calibration c;
  c.machine = "Some CPU | 2 cores";
  c.measured_at = "2026-11-30T12:00:00Z";
  c.config = "configs/quickstart.yaml";
  c.unit = "images/s";
  c.layouts = {{2, 1, 2000.5}, {1, 2, 1500.25}};
  c.best = c.layouts[0];
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
