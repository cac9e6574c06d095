// Seeds trained together (train_ensemble): each member gives what its single run gives, a
// diverging member leaves the others unchanged, kill and resume are exact, and a call resumes only
// the members that are not finished.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "ablate/experiments/train.h"
#include "ablate/runner/config.h"
#include "ablate/testing/temp_dir.h"
#include "train_test_support.h"

namespace ablate::experiments {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;
using ablate::testing::TempDir;
using test_helpers::read_events;
using test_helpers::read_json;
using test_helpers::stable;

runner::Config lm_config(const fs::path& corpus) {
  runner::Config c;
  c.task = "lm";
  c.data.dataset = "text";
  c.data.path = corpus.string();
  c.data.seq_len = 16;
  c.model.dim = 32;
  c.model.depth = 2;
  c.model.heads = 4;
  c.attention.variant = "gqa";
  c.attention.kv_heads = 2;
  c.attention.ema_window = 4;
  c.train.steps = 50;
  c.train.batch_size = 4;
  c.train.lr = 3e-3;
  c.train.warmup = 5;
  c.train.eval_every = 25;
  c.train.eval_batches = 2;
  c.train.checkpoint_every = 10;
  c.train.log_every = 5;
  c.train.grad_clip = 1.0;
  c.train.device = "cpu";
  return c;
}

runner::Config vit_config(const fs::path& data) {
  runner::Config c = lm_config(data);
  c.task = "vit";
  c.data.dataset = "idx";
  c.data.path = data.string();
  c.model.patch = 4;
  c.train.batch_size = 8;
  return c;
}

runner::Config s2s_config(const fs::path& corpus) {
  runner::Config c = lm_config(corpus);
  c.task = "s2s";
  c.data.seq_len = 24;
  c.attention.scale = "none";
  c.attention.rope = false;
  c.train.decode_examples = 4;
  return c;
}

std::vector<Member> members_of(const runner::Config& c, const fs::path& dir,
                               const std::vector<int64_t>& seeds) {
  std::vector<Member> m;
  for (int64_t s : seeds) {
    runner::Config cs = c;
    cs.seed = s;
    TrainOptions o;
    o.run_dir = (dir / ("seed" + std::to_string(s))).string();
    o.progress = false;
    o.quiet = true;
    m.push_back({cs, o});
  }
  return m;
}

// Batched and single matrix products may add in another order, and 50 steps of AdamW carry such
// rounding forward: agreement to 1e-4 (relative) is far below any difference a report could call
// real, and far above fp32 rounding (1e-7) grown over 50 steps.
constexpr double kTolerance = 1e-4;

// `scale`: the size the value's rounding error is relative to (1 for most values).
void expect_near_json(const json& a, const json& b, const std::string& what, double scale = 1.0) {
  ASSERT_EQ(a.type(), b.type()) << what;
  if (a.is_number_float() || (a.is_number() && b.is_number_float())) {
    const double x = a.get<double>(), y = b.get<double>();
    EXPECT_LE(std::abs(x - y), kTolerance * std::max({1.0, std::abs(y), scale}))
        << what << ": " << x << " vs " << y;
  } else if (a.is_object()) {
    ASSERT_EQ(a.size(), b.size()) << what << ": " << a.dump() << " vs " << b.dump();
    // The spread of the key-head norms is a difference of near-equal norms: its rounding error
    // is relative to the norms (their mean), not to the spread itself.
    const double norms =
        b.contains("key_norm_mean") ? std::abs(b["key_norm_mean"].get<double>()) : 1.0;
    for (auto& [k, v] : b.items()) {
      ASSERT_TRUE(a.contains(k)) << what << ": no " << k;
      const bool spread = k == "key_norm_std" || k == "norm_cache_std";
      expect_near_json(a[k], v, what + "." + k, spread ? norms : 1.0);
    }
  } else if (a.is_array()) {
    ASSERT_EQ(a.size(), b.size()) << what;
    for (size_t i = 0; i < a.size(); ++i) expect_near_json(a[i], b[i], what);
  } else {
    EXPECT_EQ(a, b) << what;
  }
}

// Every event of two run dirs, in order, within the tolerance (timings left out).
void expect_same_events(const fs::path& a, const fs::path& b, const std::string& what) {
  const auto ea = read_events(a), eb = read_events(b);
  ASSERT_EQ(ea.size(), eb.size()) << what;
  for (size_t i = 0; i < ea.size(); ++i) {
    expect_near_json(stable(ea[i]), stable(eb[i]), what + " event " + std::to_string(i));
  }
}

struct Variant {
  std::string name;
  std::function<void(runner::Config&)> set;
};

void PrintTo(const Variant& v, std::ostream* os) { *os << v.name; }

class EnsembleTest : public ::testing::TestWithParam<Variant> {};

TEST_P(EnsembleTest, EachMemberGivesWhatItsSingleRunGives) {
  TempDir tmp;
  test_helpers::write_word_corpus(tmp.path() / "corpus.txt");
  test_helpers::write_idx(tmp.path(), "train", 200);
  test_helpers::write_idx(tmp.path(), "t10k", 40);
  const std::string& name = GetParam().name;
  runner::Config c = name.rfind("vit", 0) == 0   ? vit_config(tmp.path())
                     : name.rfind("s2s", 0) == 0 ? s2s_config(tmp.path() / "corpus.txt")
                                                 : lm_config(tmp.path() / "corpus.txt");
  GetParam().set(c);
  const auto together = members_of(c, tmp.path() / "together", {0, 1, 2});
  const auto results = train_ensemble(together);
  ASSERT_EQ(results.size(), 3u);
  for (size_t e = 0; e < together.size(); ++e) {
    const fs::path alone = tmp.path() / ("alone" + std::to_string(e));
    const TrainResult single = train(together[e].config, [&] {
      TrainOptions o = together[e].options;
      o.run_dir = alone.string();
      return o;
    }());
    const std::string what = GetParam().name + " seed " + std::to_string(e);
    EXPECT_EQ(results[e].status, "done") << what;
    EXPECT_EQ(results[e].step, 50) << what;
    EXPECT_EQ(results[e].parameters, single.parameters) << what;
    ASSERT_EQ(results[e].final.size(), single.final.size()) << what;
    for (const auto& [k, v] : single.final) {
      EXPECT_NEAR(results[e].final.at(k), v, kTolerance * std::max(1.0, std::abs(v)))
          << what << " " << k;
    }
    expect_same_events(together[e].options.run_dir, alone, what);
    // The run dir is a single run's: the same files, the same summary fields.
    const json s = read_json(fs::path(together[e].options.run_dir) / "summary.json");
    const json t = read_json(alone / "summary.json");
    EXPECT_EQ(s["config_hash"], t["config_hash"]) << what;
    EXPECT_EQ(s["status"], "done") << what;
    // What decides the last bits is recorded: trained with the others, or alone.
    EXPECT_EQ(s["seeds_in_process"], together.size()) << what;
    EXPECT_EQ(t["seeds_in_process"], 1) << what;
    for (const char* f : {"config.yaml", "log.txt", "checkpoint/model.pt",
                          "checkpoint/optimizer.pt", "checkpoint/state.json"}) {
      EXPECT_TRUE(fs::exists(fs::path(together[e].options.run_dir) / f)) << what << " " << f;
    }
  }
  // Members differ: each drew its own initialisation and data.
  EXPECT_NE(results[0].final, results[1].final);
}

std::vector<Variant> variants() {
  auto lm = [](std::string variant) {
    return [variant](runner::Config& c) { c.attention.variant = variant; };
  };
  return {
      {"lm_mha_dropout",
       [](runner::Config& c) {
         c.attention.variant = "mha";
         c.attention.kv_heads = 0;
         c.attention.attn_dropout = 0.1;
         c.model.mlp_dropout = 0.1;
       }},
      {"lm_gqa_qknorm_rope",
       [](runner::Config& c) {
         c.attention.qk_norm = true;
         c.attention.rope = true;
       }},
      {"lm_mqa",
       [](runner::Config& c) {
         c.attention.variant = "mqa";
         c.attention.kv_heads = 0;
       }},
      {"lm_kdgqa", lm("kdgqa")},
      {"lm_dgqa", lm("dgqa")},
      {"lm_pgqa", lm("pgqa")},
      {"lm_wgqa_row",
       [](runner::Config& c) {
         c.attention.variant = "wgqa";
         c.attention.weight_form = "row";
       }},
      {"lm_gqkva",
       [](runner::Config& c) {
         c.attention.variant = "gqkva";
         c.attention.kv_heads = 0;
         c.attention.q_groups = 2;
         c.attention.kv_groups = 2;
       }},
      {"vit_kdgqa_faithful",
       [](runner::Config& c) {
         c.attention.variant = "kdgqa";
         c.attention.faithful = true;
       }},
      {"vit_dgqa_faithful_epochs",
       [](runner::Config& c) {
         c.attention.variant = "dgqa";
         c.attention.faithful = true;
         c.train.epochs = 2;  // 25 batches of 8 per epoch: 50 steps
       }},
      {"vit_pgqa_faithful",
       [](runner::Config& c) {
         c.attention.variant = "pgqa";
         c.attention.faithful = true;
       }},
      {"s2s_gqa_dropout",
       [](runner::Config& c) {
         c.attention.attn_dropout = 0.1;
         c.attention.out_dropout = 0.1;
         c.model.mlp_dropout = 0.1;
       }},
      {"s2s_kdgqa_every_site_gated_untied",
       [](runner::Config& c) {
         c.attention.variant = "kdgqa";
         c.attention.sites = "encoder,decoder,cross";
         c.model.mlp = "gated-gelu";
         c.model.tie_embeddings = false;
       }},
      {"s2s_pgqa_faithful_encoder",
       [](runner::Config& c) {
         c.attention.variant = "pgqa";
         c.attention.faithful = true;
         c.attention.sites = "encoder";
       }},
      {"vit_gkva_bias",
       [](runner::Config& c) {
         c.attention.variant = "gkva";
         c.attention.q_heads = 2;
         c.attention.bias = true;
       }},
  };
}

INSTANTIATE_TEST_SUITE_P(Variants, EnsembleTest, ::testing::ValuesIn(variants()),
                         [](const auto& info) { return info.param.name; });

TEST(Ensemble, ADivergingMemberLeavesTheOthersUnchanged) {
  TempDir tmp;
  test_helpers::write_word_corpus(tmp.path() / "corpus.txt");
  runner::Config c = lm_config(tmp.path() / "corpus.txt");
  c.attention.variant = "dgqa";
  const auto clean = members_of(c, tmp.path() / "clean", {0, 1, 2});
  auto poisoned = members_of(c, tmp.path() / "poisoned", {0, 1, 2});
  poisoned[1].options.poison_at_step = 13;
  const auto a = train_ensemble(clean), b = train_ensemble(poisoned);
  EXPECT_EQ(b[1].status, "diverged");
  EXPECT_EQ(b[1].diverged_step, 13);
  const json s = read_json(fs::path(poisoned[1].options.run_dir) / "summary.json");
  EXPECT_EQ(s["status"], "diverged");
  EXPECT_EQ(s["diverged_step"], 13);
  EXPECT_EQ(read_json(fs::path(poisoned[1].options.run_dir) / "checkpoint/state.json")["status"],
            "diverged");
  for (size_t e : {0u, 2u}) {
    EXPECT_EQ(b[e].status, "done");
    EXPECT_EQ(a[e].final, b[e].final) << e;  // exactly: nothing crosses between members
    const auto ea = read_events(clean[e].options.run_dir),
               eb = read_events(poisoned[e].options.run_dir);
    ASSERT_EQ(ea.size(), eb.size());
    for (size_t i = 0; i < ea.size(); ++i) EXPECT_EQ(stable(ea[i]), stable(eb[i])) << e;
  }
  // Running the call again trains nothing: every member is finished.
  const auto again = train_ensemble(poisoned);
  EXPECT_EQ(again[1].status, "diverged");
  EXPECT_EQ(again[0].final, b[0].final);
}

TEST(Ensemble, KillAndResumeIsBitIdentical) {
  TempDir tmp;
  test_helpers::write_word_corpus(tmp.path() / "corpus.txt");
  runner::Config c = lm_config(tmp.path() / "corpus.txt");
  c.attention.variant = "pgqa";  // per-member noise streams across the resume
  const auto whole = members_of(c, tmp.path() / "whole", {3, 4});
  auto split = members_of(c, tmp.path() / "split", {3, 4});
  const auto a = train_ensemble(whole);
  split[0].options.stop_after = 17;  // checkpoint at 10, killed at 17
  const auto stopped = train_ensemble(split);
  EXPECT_EQ(stopped[0].status, "stopped");
  EXPECT_EQ(stopped[1].status, "stopped");
  split[0].options.stop_after = 0;
  const auto b = train_ensemble(split);
  for (size_t e = 0; e < 2; ++e) {
    EXPECT_EQ(b[e].resumed_from, 10);
    EXPECT_EQ(a[e].final, b[e].final) << e;
    // The summary says how each process grouped the seeds, the one before the kill included.
    const fs::path dir_a = whole[e].options.run_dir, dir_b = split[e].options.run_dir;
    EXPECT_EQ(read_json(dir_a / "summary.json")["seeds_in_process_history"], "2 from step 0");
    EXPECT_EQ(read_json(dir_b / "summary.json")["seeds_in_process_history"],
              "2 from step 0; 2 from step 10");
    const auto ea = read_events(whole[e].options.run_dir),
               eb = read_events(split[e].options.run_dir);
    ASSERT_EQ(ea.size(), eb.size());
    for (size_t i = 0; i < ea.size(); ++i) EXPECT_EQ(stable(ea[i]), stable(eb[i])) << e;
  }
}

TEST(Ensemble, OnlyUnfinishedMembersTrainAndEachResumesFromItsOwnStep) {
  TempDir tmp;
  test_helpers::write_word_corpus(tmp.path() / "corpus.txt");
  runner::Config c = lm_config(tmp.path() / "corpus.txt");
  auto members = members_of(c, tmp.path() / "mixed", {0, 1, 2});
  // Seed 0 finished alone, seed 1 stopped after its checkpoint at step 20, seed 2 never ran.
  const TrainResult done0 = train(members[0].config, members[0].options);
  TrainOptions stop = members[1].options;
  stop.stop_after = 25;
  ASSERT_EQ(train(members[1].config, stop).status, "stopped");
  // A checkpoint written before the grouping history was kept: its steps' grouping is unknown.
  const fs::path state = fs::path(members[1].options.run_dir) / "checkpoint" / "state.json";
  nlohmann::json old_state = read_json(state);
  ASSERT_TRUE(old_state.erase("seeds_in_process_history"));
  std::ofstream(state) << old_state.dump();
  const auto results = train_ensemble(members);
  EXPECT_EQ(results[0].final, done0.final);
  EXPECT_EQ(results[0].resumed_from, 0);
  EXPECT_EQ(results[1].resumed_from, 20);
  EXPECT_EQ(results[2].resumed_from, 0);
  // Seeds 1 and 2 start at different steps, so each trained in its own group: alone.
  const std::vector<std::string> history = {"1 from step 0", "unknown from step 0; 1 from step 20",
                                            "1 from step 0"};
  for (size_t e = 0; e < 3; ++e) {
    const auto summary = read_json(fs::path(members[e].options.run_dir) / "summary.json");
    EXPECT_EQ(summary["seeds_in_process"], 1) << e;
    EXPECT_EQ(summary["seeds_in_process_history"], history[e]) << e;
  }
  for (size_t e = 1; e < 3; ++e) {
    EXPECT_EQ(results[e].status, "done");
    const fs::path alone = tmp.path() / ("alone" + std::to_string(e));
    TrainOptions o = members[e].options;
    o.run_dir = alone.string();
    const TrainResult single = train(members[e].config, o);
    for (const auto& [k, v] : single.final) {
      EXPECT_NEAR(results[e].final.at(k), v, kTolerance * std::max(1.0, std::abs(v))) << e << k;
    }
  }
}

TEST(Ensemble, EachMemberOfAnUptrainStageStartsFromItsOwnParent) {
  TempDir tmp;
  test_helpers::write_word_corpus(tmp.path() / "corpus.txt");
  runner::Config parent = lm_config(tmp.path() / "corpus.txt");
  parent.attention.variant = "mha";
  parent.attention.kv_heads = 0;
  parent.train.steps = 20;
  const auto parents = members_of(parent, tmp.path() / "pretrain", {0, 1});
  for (const auto& p : parents) ASSERT_EQ(train(p.config, p.options).status, "done");
  runner::Config child = lm_config(tmp.path() / "corpus.txt");
  child.attention.variant = "wgqa";
  child.init.convert = "wgqa";
  child.train.steps = 20;
  auto members = members_of(child, tmp.path() / "uptrain", {0, 1});
  for (size_t e = 0; e < members.size(); ++e)
    members[e].config.init.from = parents[e].options.run_dir;
  const auto together = train_ensemble(members);
  for (size_t e = 0; e < members.size(); ++e) {
    TrainOptions o = members[e].options;
    o.run_dir = (tmp.path() / ("alone" + std::to_string(e))).string();
    const TrainResult single = train(members[e].config, o);
    // Step 0 evaluates the converted model: each member's own parent, converted.
    const auto ea = read_events(members[e].options.run_dir), eb = read_events(o.run_dir);
    ASSERT_FALSE(ea.empty());
    EXPECT_EQ(ea[0]["step"], 0);
    expect_same_events(members[e].options.run_dir, o.run_dir, "uptrain seed " + std::to_string(e));
    for (const auto& [k, v] : single.final) {
      EXPECT_NEAR(together[e].final.at(k), v, kTolerance * std::max(1.0, std::abs(v))) << e << k;
    }
  }
  EXPECT_NE(read_events(members[0].options.run_dir)[0], read_events(members[1].options.run_dir)[0]);
}

TEST(Ensemble, MembersOfDifferentCellsOrWithOneSeedTwiceAreRefused) {
  TempDir tmp;
  test_helpers::write_word_corpus(tmp.path() / "corpus.txt");
  runner::Config c = lm_config(tmp.path() / "corpus.txt");
  auto members = members_of(c, tmp.path() / "bad", {0, 1});
  members[1].config.attention.kv_heads = 1;
  EXPECT_THROW(train_ensemble(members), RunError);
  EXPECT_FALSE(fs::exists(tmp.path() / "bad"));  // nothing written
  members = members_of(c, tmp.path() / "twice", {0, 1});
  members[1].config.seed = 0;
  EXPECT_THROW(train_ensemble(members), RunError);
  EXPECT_FALSE(fs::exists(tmp.path() / "twice"));
}

}  // namespace
}  // namespace ablate::experiments
