#include "ablate/results/decision_log.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "ablate/testing/temp_dir.h"

namespace ablate::results {
namespace {

using ablate::testing::TempDir;

SequentialLookRow row(int64_t look, const std::string& arm, int64_t seeds, double low,
                      double high) {
  SequentialLookRow r;
  r.look = look;
  r.family = "baseline";
  r.arm_key = arm;
  r.reference_arm_key = "ref";
  r.arm_label = "variant=" + arm;
  r.reference_label = "variant=mha";
  r.method = "gaussian-mixture";
  r.seeds = seeds;
  r.max_seeds = 20;
  r.level = 0.025;
  r.e_value = 1.5;
  r.cs_low = low;
  r.cs_high = high;
  r.action = "add 1 seed";
  return r;
}

TEST(DecisionLog, LooksRoundTripWithInfiniteAndMissingEnds) {
  TempDir dir;
  Store store(dir.file("log.db"));
  SweepRecord sweep;
  sweep.name = "s";
  sweep.yaml = "name: s\n";
  sweep.config_hash = "h";
  sweep.code_version = "c";
  store.register_sweep(sweep);
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_TRUE(sequential_looks(store, "s").empty());
  EXPECT_TRUE(last_sequential_look(store, "s").empty());
  add_sequential_looks(store, "s", {row(1, "gqa", 3, -inf, inf), row(1, "mqa", 3, -0.5, 0.25)});
  SequentialLookRow decided = row(2, "gqa", 4, 0.1, 0.9);
  decided.decided = true;
  decided.action = "stop: decided";
  decided.e_value = std::nan("");
  add_sequential_looks(store, "s", {decided, row(2, "mqa", 4, -0.4, 0.2)});

  const auto all = sequential_looks(store, "s");
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(all[0].look, 1);
  EXPECT_EQ(all[0].cs_low, -inf);
  EXPECT_EQ(all[0].cs_high, inf);
  EXPECT_EQ(all[1].arm_key, "mqa");
  EXPECT_DOUBLE_EQ(all[1].cs_high, 0.25);
  EXPECT_FALSE(all[0].recorded.empty());
  const auto last = last_sequential_look(store, "s");
  ASSERT_EQ(last.size(), 2u);
  EXPECT_EQ(last[0].look, 2);
  EXPECT_TRUE(last[0].decided);
  EXPECT_FALSE(last[0].equivalent);
  EXPECT_EQ(last[0].action, "stop: decided");
  EXPECT_TRUE(std::isnan(last[0].e_value));  // NaN is stored as NULL and read back as NaN
  EXPECT_EQ(last[0].max_seeds, 20);
  EXPECT_DOUBLE_EQ(last[0].level, 0.025);
  // One look's comparison once: the same look and arms again is refused, nothing half-written.
  EXPECT_THROW(add_sequential_looks(store, "s", {row(3, "gqa", 5, -1, 1), row(2, "mqa", 4, 0, 1)}),
               StoreError);
  EXPECT_EQ(sequential_looks(store, "s").size(), 4u);
  EXPECT_THROW(add_sequential_looks(store, "nope", {row(1, "gqa", 3, 0, 1)}), StoreError);
  // Readable by a read-only store (ablate status, ablate report).
  Store read_only(dir.file("log.db"), StoreOptions{/*read_only=*/true});
  EXPECT_EQ(sequential_looks(read_only, "s").size(), 4u);
}

}  // namespace
}  // namespace ablate::results
