#include "ablate/runner/sweep.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>

#include "ablate/runner/canonical.h"
#include "ablate/testing/errors.h"
#include "ablate/testing/temp_dir.h"

namespace ablate::runner {
namespace {

namespace fs = std::filesystem;

const char* const kFile = "sweep.yaml";

ConfigError error_of(const std::function<void()>& f) {
  return testing::thrown<ConfigError>(f, ConfigError("", 0, 0, "", ""));
}

SweepSpec parse(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  return parse_sweep(yaml, kFile, overrides);
}

std::vector<JobSpec> jobs_of(const std::string& yaml,
                             const std::vector<std::string>& overrides = {}) {
  return expand(parse(yaml, overrides));
}

// Parsing and expanding: errors of both kinds.
ConfigError sweep_error(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  return error_of([&] { expand(parse(yaml, overrides)); });
}

// 1-based line and column of the `occurrence`-th `needle` in `text`, computed independently of
// yaml-cpp so the tests check the reported positions.
struct Pos {
  int line = 0;
  int column = 0;
};
Pos pos_of(const std::string& text, const std::string& needle, int occurrence = 1) {
  size_t at = std::string::npos;
  for (int i = 0; i < occurrence; ++i) at = text.find(needle, at == std::string::npos ? 0 : at + 1);
  if (at == std::string::npos) {
    ADD_FAILURE() << needle << " not in the text";
    return {};
  }
  const size_t line_start = text.rfind('\n', at == 0 ? 0 : at - 1);
  const int line = static_cast<int>(std::count(text.begin(), text.begin() + at, '\n')) + 1;
  const int column =
      static_cast<int>(line_start == std::string::npos || at == 0 ? at : at - line_start - 1) + 1;
  return {line, column};
}

void expect_error(const ConfigError& e, const std::string& file, Pos at, const std::string& key,
                  const std::string& message) {
  EXPECT_EQ(e.file(), file) << e.what();
  EXPECT_EQ(e.line(), at.line) << e.what();
  EXPECT_EQ(e.column(), at.column) << e.what();
  EXPECT_EQ(e.key(), key) << e.what();
  EXPECT_NE(e.message().find(message), std::string::npos)
      << "message: " << e.message() << "\nwanted: " << message;
}

// A job as one comparable line: "STAGE KEY=VALUE ... seed=N" ("-" without a stage).
std::string row(const JobSpec& job) {
  std::string out = job.stage.empty() ? "-" : job.stage;
  for (const auto& [key, value] : job.params) out += " " + key + "=" + value;
  return out + " seed=" + std::to_string(job.seed);
}

std::vector<std::string> rows(const std::vector<JobSpec>& jobs) {
  std::vector<std::string> out;
  for (const auto& j : jobs) out.push_back(row(j));
  return out;
}

std::vector<std::string> ids(const std::vector<JobSpec>& jobs) {
  std::vector<std::string> out;
  for (const auto& j : jobs) out.push_back(j.id);
  return out;
}

const JobSpec& find_row(const std::vector<JobSpec>& jobs, const std::string& r) {
  for (const auto& j : jobs) {
    if (row(j) == r) return j;
  }
  ADD_FAILURE() << "no job " << r;
  return jobs.front();
}

// Every parent appears before its children, and exists.
void expect_topological(const std::vector<JobSpec>& jobs) {
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < jobs.size(); ++i) {
    EXPECT_TRUE(index.emplace(jobs[i].id, i).second) << "duplicate id " << jobs[i].id;
    if (!jobs[i].parent_id.empty()) {
      EXPECT_EQ(index.count(jobs[i].parent_id), 1u) << row(jobs[i]) << " before its parent";
    }
  }
}

using testing::TempFile;

// The example of docs/design.md section 3, verbatim.
const char* const kDesignExample =
    R"(name: kdgqa-vit                  # sweep name (unique in a database)
task: vit                        # lm | vit
base:                            # the base configuration (dotted keys of the schema)
  data: {dataset: fashion-mnist}
  model: {dim: 192, depth: 6, heads: 6, patch: 4}
  attention: {variant: gqa, kv_heads: 3}
  train: {steps: 2000, batch_size: 128, lr: 1.0e-3, warmup: 100, eval_every: 200}
seeds: 5                         # or a list [0, 1, 2]
grid:                            # a list of blocks; each block is a product; the grid is their union
  - attention.variant: [gqa, kdgqa]
    attention.kv_heads: [1, 2, 3]
  - attention.variant: dgqa
    attention.kv_heads: [2, 3]
    attention.ema_window: [100, 300, 500]
  - attention.variant: pgqa
    attention.noise_scale: [0.01, 0.1, 1.0]
    zip: {train.lr: [1.0e-3, 5.0e-4, 5.0e-4], train.warmup: [100, 200, 200]}  # axes that move together
exclude:
  - {attention.variant: kdgqa, attention.kv_heads: 1}
stages:                          # optional pipeline; each stage is a job, identical ones are shared
  - {name: pretrain, set: {attention.variant: mha, train.steps: 1000}}
  - {name: uptrain, from: pretrain, convert: mean_pool, set: {train.steps: 300}}
)";

// ---------------------------------------------------------------- grammar: what parses

TEST(SweepParse, MinimalSweepIsOneJobOfTheBase) {
  const SweepSpec spec = parse("name: base-only\n");
  EXPECT_EQ(spec.name, "base-only");
  EXPECT_EQ(spec.file, kFile);
  EXPECT_EQ(spec.seeds, std::vector<int64_t>{0});
  EXPECT_FALSE(spec.has_grid);
  ASSERT_EQ(spec.blocks.size(), 1u);
  EXPECT_TRUE(spec.blocks[0].axes.empty());
  const std::vector<JobSpec> jobs = expand(spec);
  ASSERT_EQ(jobs.size(), 1u);
  // The defaults, resolved: the automatic warm-up of a 1000-step run is 100.
  Config defaults;
  defaults.train.warmup = 100;
  EXPECT_TRUE(jobs[0].config == defaults);
  EXPECT_EQ(jobs[0].id, config_hash(Config()));
  EXPECT_EQ(jobs[0].stage, "");
  EXPECT_EQ(jobs[0].parent_id, "");
  EXPECT_TRUE(jobs[0].params.empty());
  EXPECT_EQ(jobs[0].blocks, std::vector<int>{1});
  // An empty grid list and an empty block are the base too.
  EXPECT_EQ(ids(jobs_of("name: a\ngrid: []\n")), ids(jobs));
  EXPECT_EQ(ids(jobs_of("name: a\ngrid:\n  - {}\n")), ids(jobs));
}

TEST(SweepParse, BaseTaskAndYamlTextAreKept) {
  const std::string text =
      "name: v\ntask: vit\nbase:\n  data: {dataset: fashion-mnist}\n  model.patch: 7\n"
      "  attention: {variant: gqa, kv_heads: 2}\n";
  const SweepSpec spec = parse(text);
  EXPECT_EQ(spec.yaml_text, text);
  EXPECT_EQ(spec.base.task, "vit");
  EXPECT_EQ(spec.base.model.patch, 7);
  EXPECT_EQ(spec.base.attention.kv_heads, 2);
  const std::vector<JobSpec> jobs = expand(spec);
  ASSERT_EQ(jobs.size(), 1u);
  // The job equals the same config given as a single config file.
  EXPECT_TRUE(jobs[0].config ==
              parse_config("task: vit\ndata: {dataset: fashion-mnist}\nmodel.patch: 7\n"
                           "attention: {variant: gqa, kv_heads: 2}\n",
                           "c.yaml"));
  // `task` may equally be given in base.
  EXPECT_EQ(expand(parse("name: v\nbase: {task: vit, data.dataset: fashion-mnist, model.patch: 7,"
                         " attention: {variant: gqa, kv_heads: 2}}\n"))[0]
                .id,
            jobs[0].id);
}

TEST(SweepParse, SlurmIsKeptAsYamlAndTyped) {
  const SweepSpec spec = parse("name: s\nslurm:\n  partition: gpu\n  cpus_per_task: 4\n");
  EXPECT_NE(spec.slurm_yaml.find("partition: gpu"), std::string::npos) << spec.slurm_yaml;
  EXPECT_EQ(spec.slurm.partition, "gpu");
  EXPECT_EQ(spec.slurm.cpus_per_task, 4);
  EXPECT_EQ(parse("name: s\n").slurm_yaml, "");
  // Keys are checked now that the Slurm backend reads them (slurm_test.cpp has the messages).
  EXPECT_THROW(parse("name: s\nslurm:\n  anything_goes: {x: [1, 2]}\n"), ConfigError);
}

TEST(SweepParse, LoadSweepReadsAFileAndNamesItInErrors) {
  const TempFile file("name: f\ngrid:\n  - attention.variant: [gqa, mqa]\n");
  const SweepSpec spec = load_sweep(file.path(), {"train.steps=400"});
  EXPECT_EQ(spec.file, file.path());
  EXPECT_EQ(spec.base.train.steps, 400);
  EXPECT_EQ(expand(spec).size(), 2u);

  const TempFile bad("name: f\ngrid:\n  - attention.variannt: [gqa]\n");
  expect_error(error_of([&] { load_sweep(bad.path()); }), bad.path(), {3, 5}, "attention.variannt",
               "unknown key; did you mean attention.variant?");
  expect_error(error_of([&] { load_sweep("/nonexistent/sweep.yaml"); }), "/nonexistent/sweep.yaml",
               {0, 0}, "", "no such sweep file");
}

// ---------------------------------------------------------------- expansion: explicit job sets

TEST(SweepExpand, ABlockIsTheProductOfItsAxesLastAxisFastest) {
  const std::vector<JobSpec> jobs = jobs_of(
      "name: p\n"
      "grid:\n"
      "  - attention.variant: [gqa, pgqa]\n"
      "    attention.kv_heads: [1, 2, 4]\n");
  EXPECT_EQ(rows(jobs), (std::vector<std::string>{
                            "- attention.variant=gqa attention.kv_heads=1 seed=0",
                            "- attention.variant=gqa attention.kv_heads=2 seed=0",
                            "- attention.variant=gqa attention.kv_heads=4 seed=0",
                            "- attention.variant=pgqa attention.kv_heads=1 seed=0",
                            "- attention.variant=pgqa attention.kv_heads=2 seed=0",
                            "- attention.variant=pgqa attention.kv_heads=4 seed=0",
                        }));
  for (const auto& j : jobs) {
    EXPECT_EQ(j.id, config_hash(j.config));
    EXPECT_EQ(j.blocks, std::vector<int>{1});
  }
  EXPECT_EQ(jobs[4].config.attention.variant, "pgqa");
  EXPECT_EQ(jobs[4].config.attention.kv_heads, 2);
}

TEST(SweepExpand, TheGridIsTheUnionOfItsBlocks) {
  const std::vector<JobSpec> jobs = jobs_of(
      "name: u\n"
      "grid:\n"
      "  - attention.variant: gqa\n"
      "    attention.kv_heads: [1, 2]\n"
      "  - attention.variant: mqa\n");
  // kv_heads varies across the jobs (1, 2 and mqa's default 0), so every job shows it.
  EXPECT_EQ(rows(jobs), (std::vector<std::string>{
                            "- attention.variant=gqa attention.kv_heads=1 seed=0",
                            "- attention.variant=gqa attention.kv_heads=2 seed=0",
                            "- attention.variant=mqa seed=0",  // mqa has no kv_heads to show
                        }));
  EXPECT_EQ(jobs[0].blocks, std::vector<int>{1});
  EXPECT_EQ(jobs[2].blocks, std::vector<int>{2});
}

TEST(SweepExpand, ZipAxesMoveTogetherAtTheirPositionInTheBlock) {
  const std::vector<JobSpec> jobs = jobs_of(
      "name: z\n"
      "grid:\n"
      "  - attention.variant: pgqa\n"
      "    attention.noise_scale: [0.1, 1]\n"
      "    zip: {train.lr: [1.0e-3, 2.0e-3], train.warmup: [100, 50]}\n");
  EXPECT_EQ(rows(jobs), (std::vector<std::string>{
                            "- attention.variant=pgqa attention.noise_scale=0.1 train.lr=0.001 "
                            "train.warmup=100 seed=0",
                            "- attention.variant=pgqa attention.noise_scale=0.1 train.lr=0.002 "
                            "train.warmup=50 seed=0",
                            "- attention.variant=pgqa attention.noise_scale=1.0 train.lr=0.001 "
                            "train.warmup=100 seed=0",
                            "- attention.variant=pgqa attention.noise_scale=1.0 train.lr=0.002 "
                            "train.warmup=50 seed=0",
                        }));
  // The zip first: it is the slower axis now.
  const std::vector<JobSpec> zip_first = jobs_of(
      "name: z\n"
      "grid:\n"
      "  - zip: {train.lr: [1.0e-3, 2.0e-3], train.warmup: [100, 50]}\n"
      "    attention.noise_scale: [0.1, 1]\n"
      "    attention.variant: pgqa\n");
  EXPECT_EQ(rows(zip_first)[1],
            "- attention.variant=pgqa attention.noise_scale=1.0 train.lr=0.001 "
            "train.warmup=100 seed=0");
  const std::vector<std::string> a = ids(zip_first), b = ids(jobs);
  EXPECT_EQ(std::set<std::string>(a.begin(), a.end()), std::set<std::string>(b.begin(), b.end()));
}

TEST(SweepExpand, ExcludeDropsCellsMatchingEveryEntryOfAMapping) {
  const SweepSpec spec = parse(
      "name: x\n"
      "grid:\n"
      "  - attention.variant: [gqa, kdgqa]\n"
      "    attention.kv_heads: [1, 2]\n"
      "exclude:\n"
      "  - {attention.variant: kdgqa, attention.kv_heads: 1}\n"
      "  - {attention.variant: mqa}\n");
  const std::vector<JobSpec> jobs = expand(spec);
  EXPECT_EQ(rows(jobs), (std::vector<std::string>{
                            "- attention.variant=gqa attention.kv_heads=1 seed=0",
                            "- attention.variant=gqa attention.kv_heads=2 seed=0",
                            "- attention.variant=kdgqa attention.kv_heads=2 seed=0",
                        }));
  const SweepCounts counts = count_jobs(spec, jobs);
  ASSERT_EQ(counts.blocks.size(), 1u);
  EXPECT_EQ(counts.blocks[0].cells, 4);
  EXPECT_EQ(counts.blocks[0].excluded, 1);
  EXPECT_EQ(counts.blocks[0].produced, 3);
  EXPECT_EQ(counts.exclude_matches, (std::vector<int64_t>{1, 0}));
}

TEST(SweepExpand, ExcludeComparesCanonicalValuesOfTheCellsConfig) {
  // 1e-3 in the exclude is the grid's 0.001.
  EXPECT_EQ(rows(jobs_of("name: x\ngrid:\n  - train.lr: [0.001, 0.002]\n"
                         "exclude:\n  - {train.lr: 1e-3}\n")),
            std::vector<std::string>{"- train.lr=0.002 seed=0"});
  // A key no cell sets is matched against the base (here: every cell).
  const std::string all =
      "name: x\ngrid:\n  - train.lr: [0.001, 0.002]\nexclude:\n"
      "  - {model.heads: 4, train.lr: 0.002}\n";
  EXPECT_EQ(rows(jobs_of(all)), std::vector<std::string>{"- train.lr=0.001 seed=0"});
}

TEST(SweepExpand, SeedsAsACountOrAListRepeatEveryCell) {
  const std::string grid = "grid:\n  - attention.variant: gqa\n    attention.kv_heads: [1, 2]\n";
  const std::vector<JobSpec> counted = jobs_of("name: s\nseeds: 3\n" + grid);
  EXPECT_EQ(rows(counted), (std::vector<std::string>{
                               "- attention.variant=gqa attention.kv_heads=1 seed=0",
                               "- attention.variant=gqa attention.kv_heads=1 seed=1",
                               "- attention.variant=gqa attention.kv_heads=1 seed=2",
                               "- attention.variant=gqa attention.kv_heads=2 seed=0",
                               "- attention.variant=gqa attention.kv_heads=2 seed=1",
                               "- attention.variant=gqa attention.kv_heads=2 seed=2",
                           }));
  for (const auto& j : counted) EXPECT_EQ(j.config.seed, j.seed);
  // Seeds of one arm share its arm key and differ in id; arms differ.
  EXPECT_EQ(counted[0].arm_key, counted[2].arm_key);
  EXPECT_NE(counted[0].id, counted[2].id);
  EXPECT_NE(counted[0].arm_key, counted[3].arm_key);

  const SweepSpec listed = parse("name: s\nseeds: [5, 2]\n" + grid);
  EXPECT_EQ(listed.seeds, (std::vector<int64_t>{5, 2}));
  EXPECT_EQ(rows(expand(listed)), (std::vector<std::string>{
                                      "- attention.variant=gqa attention.kv_heads=1 seed=5",
                                      "- attention.variant=gqa attention.kv_heads=1 seed=2",
                                      "- attention.variant=gqa attention.kv_heads=2 seed=5",
                                      "- attention.variant=gqa attention.kv_heads=2 seed=2",
                                  }));
  // Seed 2 is the same job in both sweeps.
  EXPECT_EQ(expand(listed)[1].id, counted[2].id);
}

TEST(SweepExpand, DuplicatesAcrossBlocksAreOneJobListingEveryBlock) {
  const SweepSpec spec = parse(
      "name: d\n"
      "grid:\n"
      "  - attention.variant: gqa\n"
      "    attention.kv_heads: [1, 2]\n"
      "  - attention.variant: [gqa, mqa]\n"
      "    attention.kv_heads: 2\n"
      "  - {train.lr: 1.0e-3, attention.variant: gqa, attention.kv_heads: 1}\n");
  const std::vector<JobSpec> jobs = expand(spec);
  // Block 3 sets train.lr to its default: the same job as block 1's first; its cell's key
  // train.lr becomes one of that job's params.
  EXPECT_EQ(rows(jobs),
            (std::vector<std::string>{
                "- attention.variant=gqa attention.kv_heads=1 train.lr=0.001 seed=0",
                "- attention.variant=gqa attention.kv_heads=2 seed=0",
                "- attention.variant=mqa seed=0",  // set by the cell, but mqa ignores it
            }));
  EXPECT_EQ(jobs[0].blocks, (std::vector<int>{1, 3}));
  EXPECT_EQ(jobs[1].blocks, (std::vector<int>{1, 2}));
  EXPECT_EQ(jobs[2].blocks, (std::vector<int>{2}));
  const SweepCounts counts = count_jobs(spec, jobs);
  ASSERT_EQ(counts.blocks.size(), 3u);
  EXPECT_EQ(counts.blocks[0].produced, 2);
  EXPECT_EQ(counts.blocks[0].jobs, 2);
  EXPECT_EQ(counts.blocks[0].new_jobs, 2);
  EXPECT_EQ(counts.blocks[1].produced, 2);
  EXPECT_EQ(counts.blocks[1].jobs, 2);
  EXPECT_EQ(counts.blocks[1].new_jobs, 1);
  EXPECT_EQ(counts.blocks[2].produced, 1);
  EXPECT_EQ(counts.blocks[2].jobs, 1);
  EXPECT_EQ(counts.blocks[2].new_jobs, 0);
  EXPECT_EQ(counts.produced, 5);
  EXPECT_EQ(counts.jobs, 3);
}

TEST(SweepExpand, RepeatedZipPointsAreOneJob) {
  const std::vector<JobSpec> jobs = jobs_of(
      "name: r\ngrid:\n  - zip: {train.lr: [1.0e-3, 5.0e-4, 5.0e-4], "
      "train.warmup: [100, 200, 200]}\n");
  EXPECT_EQ(rows(jobs), (std::vector<std::string>{
                            "- train.lr=0.001 train.warmup=100 seed=0",
                            "- train.lr=5.0e-4 train.warmup=200 seed=0",
                        }));
}

TEST(SweepExpand, AnMhaPretrainIsSharedByEveryConversionArmPerSeed) {
  const SweepSpec spec = parse(
      "name: convert\n"
      "base:\n"
      "  attention: {variant: gqa}\n"
      "  train: {steps: 400}\n"
      "seeds: 2\n"
      "grid:\n"
      "  - attention.kv_heads: [1, 2, 4]\n"
      "stages:\n"
      "  - {name: pretrain, set: {attention.variant: mha, attention.kv_heads: 0, "
      "train.steps: 300}}\n"
      "  - {name: uptrain, from: pretrain, convert: mean_pool, set: {train.steps: 100}}\n");
  const std::vector<JobSpec> jobs = expand(spec);
  // 2 pretrain jobs (one per seed) + 3 arms x 2 seeds uptrain jobs, by cell, seed, stage.
  EXPECT_EQ(rows(jobs), (std::vector<std::string>{
                            "pretrain seed=0",
                            "uptrain attention.kv_heads=1 seed=0",
                            "pretrain seed=1",
                            "uptrain attention.kv_heads=1 seed=1",
                            "uptrain attention.kv_heads=2 seed=0",
                            "uptrain attention.kv_heads=2 seed=1",
                            "uptrain attention.kv_heads=4 seed=0",
                            "uptrain attention.kv_heads=4 seed=1",
                        }));
  expect_topological(jobs);
  const JobSpec& pre0 = jobs[0];
  const JobSpec& pre1 = jobs[2];
  EXPECT_EQ(pre0.config.attention.variant, "mha");
  EXPECT_EQ(pre0.config.attention.kv_heads, 0);
  EXPECT_EQ(pre0.config.train.steps, 300);
  EXPECT_EQ(pre0.config.init.convert, "none");
  EXPECT_EQ(pre0.parent_id, "");
  EXPECT_EQ(pre0.id, config_hash(pre0.config));
  EXPECT_EQ(pre0.arm_key, pre1.arm_key);
  for (const JobSpec& j : jobs) {
    if (j.stage != "uptrain") continue;
    EXPECT_EQ(j.parent_id, j.seed == 0 ? pre0.id : pre1.id) << row(j);
    EXPECT_EQ(j.config.attention.variant, "gqa");
    EXPECT_EQ(j.config.train.steps, 100);
    EXPECT_EQ(j.config.init.convert, "mean_pool");
    EXPECT_EQ(j.config.init.from, "");  // the executor fills in the parent's run dir
    EXPECT_EQ(j.id, job_id(j.config, j.parent_id));
    EXPECT_EQ(j.arm_key, arm_key(j.config, pre0.arm_key));
  }
  EXPECT_EQ(jobs[1].arm_key, jobs[3].arm_key);  // kv 1, seeds 0 and 1
  EXPECT_NE(jobs[1].arm_key, jobs[4].arm_key);  // kv 1 and kv 2
  const SweepCounts counts = count_jobs(spec, jobs);
  EXPECT_EQ(counts.produced, 12);  // 3 cells x 2 seeds x 2 stages
  EXPECT_EQ(counts.jobs, 8);
}

TEST(SweepExpand, ConversionArmsFromTheGridShareThePretrain) {
  // The grid sets init.convert per arm; the uptrain stage has no convert: of its own.
  const std::vector<JobSpec> jobs = jobs_of(
      "name: arms\n"
      "seeds: [0, 1]\n"
      "grid:\n"
      "  - {attention.variant: gqa, attention.kv_heads: [1, 2], init.convert: mean_pool}\n"
      "  - {attention.variant: wgqa, attention.kv_heads: 2, init.convert: wgqa}\n"
      "stages:\n"
      "  - name: pretrain\n"
      "    set: {attention: {variant: mha, kv_heads: 0}, init.convert: none}\n"
      "  - {name: uptrain, from: pretrain}\n");
  EXPECT_EQ(rows(jobs),
            (std::vector<std::string>{
                "pretrain seed=0",
                "uptrain attention.variant=gqa attention.kv_heads=1 init.convert=mean_pool seed=0",
                "pretrain seed=1",
                "uptrain attention.variant=gqa attention.kv_heads=1 init.convert=mean_pool seed=1",
                "uptrain attention.variant=gqa attention.kv_heads=2 init.convert=mean_pool seed=0",
                "uptrain attention.variant=gqa attention.kv_heads=2 init.convert=mean_pool seed=1",
                "uptrain attention.variant=wgqa attention.kv_heads=2 init.convert=wgqa seed=0",
                "uptrain attention.variant=wgqa attention.kv_heads=2 init.convert=wgqa seed=1",
            }));
  expect_topological(jobs);
  EXPECT_EQ(jobs[0].blocks, (std::vector<int>{1, 2}));  // the pretrain of both blocks
  for (const JobSpec& j : jobs) {
    if (j.stage == "uptrain") {
      EXPECT_EQ(j.parent_id, jobs[j.seed == 0 ? 0 : 2].id) << row(j);
    }
  }
}

TEST(SweepExpand, SameConfigFromDifferentParentsIsTwoJobs) {
  // The uptrain stage sets everything the pretrain varies back, so its configs are equal; only
  // the parent tells them apart.
  const std::vector<JobSpec> jobs = jobs_of(
      "name: parents\n"
      "grid:\n"
      "  - train.lr: [0.001, 0.002]\n"
      "stages:\n"
      "  - {name: pretrain}\n"
      "  - {name: tune, from: pretrain, set: {train.lr: 0.0005}}\n");
  ASSERT_EQ(jobs.size(), 4u);
  EXPECT_TRUE(jobs[1].config == jobs[3].config);
  EXPECT_NE(jobs[1].id, jobs[3].id);
  EXPECT_NE(jobs[1].arm_key, jobs[3].arm_key);
  EXPECT_EQ(jobs[1].parent_id, jobs[0].id);
  EXPECT_EQ(jobs[3].parent_id, jobs[2].id);
}

TEST(SweepExpand, JobIdAndArmKey) {
  Config a;
  Config b = a;
  b.seed = 3;
  EXPECT_EQ(job_id(a), config_hash(a));
  EXPECT_EQ(job_id(a, ""), config_hash(a));
  EXPECT_EQ(job_id(a, "0123456789abcdef").size(), 16u);
  EXPECT_NE(job_id(a, "0123456789abcdef"), job_id(a));
  EXPECT_NE(job_id(a, "0123456789abcdef"), job_id(a, "fedcba9876543210"));
  EXPECT_EQ(job_id(a, "0123456789abcdef"), job_id(a, "0123456789abcdef"));
  // The arm ignores the seed, nothing else.
  EXPECT_EQ(arm_key(a), arm_key(b));
  EXPECT_NE(job_id(a), job_id(b));
  b.train.lr = 0.002;
  EXPECT_NE(arm_key(a), arm_key(b));
  EXPECT_NE(arm_key(a, "0123456789abcdef"), arm_key(a));
  EXPECT_EQ(arm_key(a).size(), 16u);
  // Non-semantic fields are in neither.
  Config c = a;
  c.train.device = "cpu";
  c.data.path = "/elsewhere";
  EXPECT_EQ(job_id(c), job_id(a));
  EXPECT_EQ(arm_key(c), arm_key(a));
}

TEST(SweepExpand, IsDeterministicAndKeyOrderChangesOnlyTheOrder) {
  const std::string text =
      "name: det\nseeds: 2\ngrid:\n  - attention.variant: [gqa, kdgqa]\n"
      "    attention.kv_heads: [1, 2]\n";
  const std::vector<JobSpec> first = jobs_of(text);
  const std::vector<JobSpec> second = jobs_of(text);
  EXPECT_EQ(ids(first), ids(second));
  EXPECT_EQ(rows(first), rows(second));
  for (size_t i = 0; i < first.size(); ++i) EXPECT_EQ(first[i].arm_key, second[i].arm_key);

  const std::vector<JobSpec> swapped = jobs_of(
      "name: det\nseeds: 2\ngrid:\n  - attention.kv_heads: [1, 2]\n"
      "    attention.variant: [gqa, kdgqa]\n");
  EXPECT_NE(ids(swapped), ids(first));
  const std::vector<std::string> a = ids(first), b = ids(swapped);
  EXPECT_EQ(std::set<std::string>(a.begin(), a.end()), std::set<std::string>(b.begin(), b.end()));
  EXPECT_EQ(row(swapped[2]), "- attention.variant=kdgqa attention.kv_heads=1 seed=0");
}

TEST(SweepExpand, OverridesApplyToTheBaseBeforeTheGrid) {
  const std::string text =
      "name: o\nbase: {train.steps: 200}\ngrid:\n  - attention.variant: gqa\n"
      "    attention.kv_heads: [1, 4]\n";
  const std::vector<JobSpec> plain = jobs_of(text);
  const std::vector<JobSpec> longer = jobs_of(text, {"train.steps=500", "attention.kv_heads=2"});
  ASSERT_EQ(plain.size(), 2u);
  ASSERT_EQ(longer.size(), 2u);
  for (size_t i = 0; i < plain.size(); ++i) {
    EXPECT_EQ(plain[i].config.train.steps, 200);
    EXPECT_EQ(longer[i].config.train.steps, 500);  // the override wins over the file's base
    EXPECT_NE(longer[i].id, plain[i].id);
    EXPECT_EQ(longer[i].config.attention.kv_heads,
              plain[i].config.attention.kv_heads);  // grid wins
  }
  EXPECT_EQ(longer[1].config.attention.kv_heads, 4);
  // Where each base key came from.
  const SweepSpec spec = parse(text, {"train.steps=500"});
  EXPECT_EQ(spec.base_locations.at("train.steps").file, "command line");
  EXPECT_EQ(spec.overrides, std::vector<std::string>{"train.steps=500"});
}

TEST(SweepExpand, TheDesignExampleExpandsTo95Jobs) {
  const SweepSpec spec = parse(kDesignExample);
  EXPECT_EQ(spec.name, "kdgqa-vit");
  EXPECT_EQ(spec.base.task, "vit");
  EXPECT_EQ(spec.seeds, (std::vector<int64_t>{0, 1, 2, 3, 4}));
  ASSERT_EQ(spec.blocks.size(), 3u);
  ASSERT_EQ(spec.stages.size(), 2u);
  EXPECT_EQ(spec.stages[1].from_index, 0);
  const std::vector<JobSpec> jobs = expand(spec);
  // Cells: block 1 has 6, one excluded; block 2 has 6; block 3 has 9, of which 3 repeat a zip
  // point. Uptrain: (5 + 6 + 6) arms x 5 seeds = 85. Pretrain: mha ignores kv_heads, ema_window
  // and noise_scale (without_ignored_fields), so it differs only by lr/warmup: 2 arms x 5 = 10.
  EXPECT_EQ(jobs.size(), 95u);
  const auto stage_count = [&](const std::string& s) {
    return std::count_if(jobs.begin(), jobs.end(), [&](const JobSpec& j) { return j.stage == s; });
  };
  EXPECT_EQ(stage_count("pretrain"), 10);
  EXPECT_EQ(stage_count("uptrain"), 85);
  expect_topological(jobs);
  const SweepCounts counts = count_jobs(spec, jobs);
  EXPECT_EQ(counts.produced, 200);  // 20 kept cells x 5 seeds x 2 stages
  EXPECT_EQ(counts.jobs, 95);
  ASSERT_EQ(counts.blocks.size(), 3u);
  EXPECT_EQ(counts.blocks[0].cells, 6);
  EXPECT_EQ(counts.blocks[0].excluded, 1);
  EXPECT_EQ(counts.blocks[0].jobs, 30);      // 25 uptrain + 5 pretrain
  EXPECT_EQ(counts.blocks[1].new_jobs, 30);  // its pretrain jobs are block 1's
  EXPECT_EQ(counts.blocks[2].cells, 9);
  EXPECT_EQ(counts.blocks[2].jobs, 40);      // 6 distinct cells x 5 + 2 pretrain arms x 5
  EXPECT_EQ(counts.blocks[2].new_jobs, 35);  // the lr 5e-4 pretrain is new
  // One uptrain job, fully resolved.
  // Every uptrain job shows the keys that vary between uptrain jobs and that its variant uses
  // (a dgqa job has no noise_scale, a pgqa job no ema_window).
  const JobSpec& u = find_row(jobs,
                              "uptrain attention.variant=dgqa attention.kv_heads=3 "
                              "attention.ema_window=300 train.lr=0.001 train.warmup=100 seed=4");
  EXPECT_EQ(u.config.model.dim, 192);
  EXPECT_EQ(u.config.train.steps, 300);
  EXPECT_EQ(u.config.init.convert, "mean_pool");
  EXPECT_EQ(u.blocks, std::vector<int>{2});
  const auto parent =
      std::find_if(jobs.begin(), jobs.end(), [&](const JobSpec& j) { return j.id == u.parent_id; });
  ASSERT_NE(parent, jobs.end());
  EXPECT_EQ(parent->stage, "pretrain");
  EXPECT_EQ(parent->seed, 4);
  EXPECT_EQ(parent->config.attention.variant, "mha");
  EXPECT_EQ(parent->blocks, (std::vector<int>{1, 2, 3}));  // one pretrain for all three blocks
  EXPECT_EQ(parent->config.train.steps, 1000);
}

TEST(SweepExpand, NonSemanticZipKeysMayPairWithSemanticOnes) {
  const std::vector<JobSpec> jobs = jobs_of(
      "name: data\ngrid:\n  - zip: {data.dataset: [text, bin], data.path: [/t.txt, /b.bin]}\n");
  ASSERT_EQ(jobs.size(), 2u);
  EXPECT_EQ(jobs[1].config.data.path, "/b.bin");
  EXPECT_EQ(row(jobs[1]), "- data.dataset=bin data.path=/b.bin seed=0");
}

// ---------------------------------------------------------------- errors

TEST(SweepError, CellConstraintNamesTheBlockAndCellAtTheGridValue) {
  const std::string text =
      "name: t\n"
      "grid:\n"
      "  - attention.variant: gqa\n"
      "    attention.kv_heads: [1, 2]\n"
      "  - attention.variant: gqa\n"
      "    attention.kv_heads: [2, 3]\n";
  const ConfigError e = sweep_error(text);
  expect_error(e, kFile, {6, 29}, "attention.kv_heads",
               "grid block 2, cell {attention.variant: gqa, attention.kv_heads: 3}: "
               "attention.kv_heads 3 must divide model.heads 4");
  EXPECT_STREQ(e.what(),
               "sweep.yaml:6:29: attention.kv_heads: grid block 2, cell {attention.variant: gqa, "
               "attention.kv_heads: 3}: attention.kv_heads 3 must divide model.heads 4 for gqa; "
               "valid values: 1, 2, 4 (0 = heads)");
}

TEST(SweepError, ConstraintBrokenByAnOverrideOrAStage) {
  expect_error(
      sweep_error("name: t\ngrid:\n  - attention.variant: [gqa, mqa]\n", {"model.heads=3"}),
      "command line", {0, 0}, "model.heads",
      "every cell of the grid: model.dim 128 is not divisible by model.heads 3");
  const std::string staged =
      "name: t\nbase: {train.warmup: 100}\nstages:\n  - {name: pretrain, set: {train.steps: 50}}\n";
  expect_error(sweep_error(staged), kFile, pos_of(staged, "train.steps"), "train.steps",
               "stage pretrain: train.warmup 100 exceeds train.steps 50");
}

TEST(SweepError, ZipListsOfUnequalLengths) {
  const std::string text =
      "name: t\ngrid:\n  - attention.variant: pgqa\n"
      "    zip: {train.lr: [1.0e-3, 5.0e-4], train.warmup: [100]}\n";
  expect_error(sweep_error(text), kFile, pos_of(text, "train.warmup"), "train.warmup",
               "zip lists have unequal lengths: train.lr has 2 values, train.warmup has 1 value");
  const std::string scalar = "name: t\ngrid:\n  - zip: {train.lr: 0.1}\n";
  expect_error(sweep_error(scalar), kFile, pos_of(scalar, "0.1"), "train.lr",
               "zip values are lists that move together, got 0.1");
  const std::string empty = "name: t\ngrid:\n  - zip: {}\n";
  expect_error(sweep_error(empty), kFile, pos_of(empty, "{}"), "zip",
               "expected a mapping of keys to lists of equal length");
}

TEST(SweepError, EmptyValueList) {
  const std::string text = "name: t\ngrid:\n  - attention.kv_heads: []\n";
  expect_error(sweep_error(text), kFile, pos_of(text, "[]"), "attention.kv_heads",
               "empty list of values");
  const std::string in_zip = "name: t\ngrid:\n  - zip: {train.lr: [], train.warmup: []}\n";
  expect_error(sweep_error(in_zip), kFile, pos_of(in_zip, "[]"), "train.lr",
               "empty list of values");
}

TEST(SweepError, GridKeyThatIsNoConfigKey) {
  const std::string text = "name: t\ngrid:\n  - attention.kv_head: [1, 2]\n";
  expect_error(sweep_error(text), kFile, {3, 5}, "attention.kv_head",
               "unknown key; did you mean attention.kv_heads?");
  const std::string zip = "name: t\ngrid:\n  - zip: {train.lr: [1], trian.warmup: [1]}\n";
  expect_error(sweep_error(zip), kFile, pos_of(zip, "trian"), "trian.warmup",
               "did you mean train.warmup?");
  const std::string section = "name: t\ngrid:\n  - attention: {variant: [gqa]}\n";
  expect_error(sweep_error(section), kFile, {3, 5}, "attention",
               "is a section; grid keys are dotted field keys");
}

TEST(SweepError, GridValueOfTheWrongTypeOrRange) {
  const std::string type = "name: t\ngrid:\n  - attention.kv_heads: [1, x]\n";
  expect_error(sweep_error(type), kFile, pos_of(type, "x]"), "attention.kv_heads",
               "expected an integer, got x");
  const std::string range = "name: t\ngrid:\n  - train.lr: [0.1, 20]\n";
  expect_error(sweep_error(range), kFile, pos_of(range, "20"), "train.lr",
               "20.0 is out of range; expected a value in [1.0e-12, 10.0]");
  const std::string choice = "name: t\ngrid:\n  - attention.variant: [gqa, gqq]\n";
  expect_error(sweep_error(choice), kFile, pos_of(choice, "gqq"), "attention.variant",
               "unknown value gqq; expected one of");
  const std::string nested = "name: t\ngrid:\n  - attention.kv_heads: {a: 1}\n";
  expect_error(sweep_error(nested), kFile, pos_of(nested, "{a"), "attention.kv_heads",
               "expected a value or a list of values, got a mapping");
  const std::string zip = "name: t\ngrid:\n  - zip: {train.warmup: [10, -2]}\n";
  expect_error(sweep_error(zip), kFile, pos_of(zip, "-2"), "train.warmup",
               "-2 is out of range; expected >= -1");
}

TEST(SweepError, DuplicateKeysAndValuesInABlock) {
  const std::string key =
      "name: t\ngrid:\n  - attention.kv_heads: [1]\n    zip: {attention.kv_heads: [2]}\n";
  expect_error(sweep_error(key), kFile, pos_of(key, "attention.kv_heads", 2), "attention.kv_heads",
               "duplicate key in the block; first given at line 3, column 5");
  const std::string value = "name: t\ngrid:\n  - train.lr: [1.0e-3, 2.0e-3, 0.001]\n";
  expect_error(sweep_error(value), kFile, pos_of(value, "0.001"), "train.lr",
               "duplicate value 0.001; first given at line 3, column 16");
}

TEST(SweepError, AnAxisOutsideTheJobIdWouldBeOneJob) {
  const std::string text = "name: t\ngrid:\n  - train.threads: [1, 2]\n";
  expect_error(sweep_error(text), kFile, {3, 5}, "train.threads",
               "is not part of the job id (paths, devices and logging cadence are not), so its 2 "
               "values would be one job");
  // One value is fine: it is a setting, not an axis.
  EXPECT_EQ(jobs_of("name: t\ngrid:\n  - train.threads: 2\n")[0].config.train.threads, 2);
}

TEST(SweepError, EmptyGridAfterExcludes) {
  const std::string text =
      "name: t\ngrid:\n  - attention.variant: [gqa, mqa]\n"
      "exclude:\n  - {attention.variant: gqa}\n  - {attention.variant: mqa}\n";
  expect_error(sweep_error(text), kFile, {4, 1}, "exclude",
               "every cell of the grid is excluded; nothing would run");
  // Parsing alone succeeds: the cells are checked by expand.
  EXPECT_EQ(parse(text).excludes.size(), 2u);
}

TEST(SweepError, ExcludeKeyThatIsNoConfigKey) {
  const std::string text =
      "name: t\ngrid:\n  - attention.variant: [gqa, mqa]\nexclude:\n"
      "  - {attention.variannt: gqa}\n";
  expect_error(sweep_error(text), kFile, pos_of(text, "attention.variannt"), "attention.variannt",
               "unknown key; did you mean attention.variant?");
  const std::string value = "name: t\nexclude:\n  - {attention.variant: gqq}\n";
  expect_error(sweep_error(value), kFile, pos_of(value, "gqq"), "attention.variant",
               "did you mean gqa?");
  const std::string not_map = "name: t\nexclude:\n  - gqa\n";
  expect_error(sweep_error(not_map), kFile, pos_of(not_map, "gqa"), "exclude",
               "exclude entry 1: expected a mapping of config keys to values, got gqa");
}

TEST(SweepError, StageFromThatNamesNoEarlierStage) {
  const std::string typo =
      "name: t\nstages:\n  - {name: pretrain}\n  - {name: uptrain, from: pretrian}\n";
  expect_error(sweep_error(typo), kFile, pos_of(typo, "pretrian"), "from",
               "no earlier stage named pretrian; did you mean pretrain?");
  const std::string later =
      "name: t\nstages:\n  - {name: uptrain, from: pretrain}\n  - {name: pretrain}\n";
  expect_error(sweep_error(later), kFile, pos_of(later, "pretrain"), "from",
               "stage pretrain comes later; a stage starts from an earlier one");
  const std::string self = "name: t\nstages:\n  - {name: a, from: a}\n";
  expect_error(sweep_error(self), kFile, pos_of(self, "a}"), "from",
               "stage a cannot start from itself");
}

TEST(SweepError, DuplicateStageNamesAndBadStages) {
  const std::string dup = "name: t\nstages:\n  - {name: a}\n  - {name: a}\n";
  expect_error(sweep_error(dup), kFile, pos_of(dup, "a}", 2), "name",
               "duplicate stage name a; first given at line 3, column 12");
  const std::string unknown = "name: t\nstages:\n  - {name: a}\n  - {name: b, form: a}\n";
  expect_error(sweep_error(unknown), kFile, pos_of(unknown, "form"), "form",
               "unknown stage key; did you mean from?");
  const std::string nameless = "name: t\nstages:\n  - {set: {train.lr: 0.1}}\n";
  expect_error(sweep_error(nameless), kFile, pos_of(nameless, "{set"), "name",
               "stage 1 has no name");
  const std::string convert = "name: t\nstages:\n  - {name: a, convert: mean_pool}\n";
  expect_error(sweep_error(convert), kFile, pos_of(convert, "mean_pool"), "convert",
               "stage a converts, so it needs from:");
  const std::string bad_convert =
      "name: t\nstages:\n  - {name: a}\n  - {name: b, from: a, convert: mean-pool}\n";
  expect_error(sweep_error(bad_convert), kFile, pos_of(bad_convert, "mean-pool"), "convert",
               "did you mean mean_pool?");
  const std::string bad_set = "name: t\nstages:\n  - {name: a, set: {train.stesp: 3}}\n";
  expect_error(sweep_error(bad_set), kFile, pos_of(bad_set, "train.stesp"), "train.stesp",
               "did you mean train.steps?");
  const std::string bad_name = "name: t\nstages:\n  - {name: a/b}\n";
  expect_error(sweep_error(bad_name), kFile, pos_of(bad_name, "a/b"), "name",
               "stage name a/b contains '/', a path separator");
}

TEST(SweepError, SeedsDuplicatedOrInvalid) {
  const std::string dup = "name: t\nseeds: [0, 1, 0]\n";
  expect_error(sweep_error(dup), kFile, pos_of(dup, "0]"), "seeds",
               "duplicate seed 0; first given at line 2, column 9");
  expect_error(sweep_error("name: t\nseeds: 0\n"), kFile, {2, 8}, "seeds",
               "a count of seeds must be at least 1");
  expect_error(sweep_error("name: t\nseeds: -2\n"), kFile, {2, 8}, "seeds",
               "-2 is out of range; expected >= 0");
  expect_error(sweep_error("name: t\nseeds: [1, x]\n"), kFile, {2, 12}, "seeds",
               "expected an integer, got x");
  expect_error(sweep_error("name: t\nseeds: []\n"), kFile, {2, 8}, "seeds", "empty list of seeds");
  expect_error(sweep_error("name: t\nseeds: {a: 1}\n"), kFile, {2, 9}, "seeds.a", "unknown key");
  expect_error(sweep_error("name: t\nseeds: x\n"), kFile, {2, 8}, "seeds",
               "expected an integer, got x");
}

TEST(SweepError, TheSeedIsSetOnlyBySeeds) {
  const std::string message = "the seed is set by `seeds:`";
  expect_error(sweep_error("name: t\nbase: {seed: 3}\n"), kFile, {2, 8}, "seed", message);
  expect_error(sweep_error("name: t\ngrid:\n  - seed: [1, 2]\n"), kFile, {3, 5}, "seed", message);
  expect_error(sweep_error("name: t\nexclude:\n  - {seed: 1}\n"), kFile, {3, 6}, "seed", message);
  expect_error(sweep_error("name: t\nstages:\n  - {name: a, set: {seed: 1}}\n"), kFile, {3, 21},
               "seed", message);
  expect_error(sweep_error("name: t\n", {"seed=1"}), "command line", {0, 0}, "seed", message);
}

// Text policy: a file that is not UTF-8 (a Latin-1 path, say) is refused at its first bad byte;
// a huge unknown key is named by its start, not echoed whole.
TEST(SweepError, NotUtf8AndHugeKeys) {
  expect_error(sweep_error("name: s\nbase:\n  data.path: /data/caf\xe9\n"), kFile, {3, 23}, "",
               "not UTF-8 text (byte 0xE9); save the file as UTF-8");
  // 5 MB: not a YAML key at all (an implicit key has at most 1024 characters), said briefly.
  const std::string huge(5 * 1000 * 1000, 'k');
  const ConfigError e = sweep_error("name: s\n" + huge + ": 1\n");
  EXPECT_LT(std::string(e.what()).size(), 1000u);
  // Nested 20,000 deep: said so, not "bad file".
  const ConfigError deep =
      sweep_error("name: s\nbase: " + std::string(20000, '[') + std::string(20000, ']') + "\n");
  EXPECT_NE(deep.message().find("nested too deeply"), std::string::npos) << deep.what();
  // 1,000 bytes: an unknown key, named by its start.
  const ConfigError e2 = sweep_error("name: s\n" + std::string(1000, 'k') + ": 1\n");
  EXPECT_LT(e2.key().size(), 100u);
  EXPECT_NE(e2.key().find("(1000 bytes)"), std::string::npos) << e2.key();
  EXPECT_LT(std::string(e2.what()).size(), 400u);
}

TEST(SweepError, BadSweepNames) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"\"../x\"", "contains '/', a path separator"},
      {"a\\\\b", "contains '\\', a path separator"},
      {"a..b", "contains \"..\""},
      {"\"a\\x01b\"", "contains a control character"},
      {"\"\"", "is empty"},
      {std::string(101, 'a'), "has 101 characters; at most 100"},
      {".hidden", "starts with '.'; a name starts with a letter or a digit"},
      {"\"my sweep\"",
       "contains ' '; a name has only letters A-Z and a-z, digits, '-', '_' and '.'"},
      {"caf\xc3\xa9", "contains '\xc3\xa9'"},
      {"sweep*", "contains '*'"},
  };
  for (const auto& [name, message] : cases) {
    const std::string text = "seeds: 1\nname: " + name + "\n";
    expect_error(sweep_error(text), kFile, {2, 7}, "name", message);
  }
  for (const std::string& ok :
       std::vector<std::string>{"a", "kdgqa-vit", "v1.2_final", std::string(100, 'z')}) {
    EXPECT_EQ(sweep_name_error(ok), "") << ok;
    EXPECT_EQ(parse("name: " + ok + "\n").name, ok);
  }
  expect_error(sweep_error("seeds: 1\n"), kFile, {1, 1}, "name", "missing");
  expect_error(sweep_error("name: [a]\n"), kFile, {1, 7}, "name", "expected a name");
}

TEST(SweepError, UnknownTopLevelKeys) {
  expect_error(sweep_error("name: t\ngrdi: []\n"), kFile, {2, 1}, "grdi",
               "unknown key; did you mean grid?");
  expect_error(sweep_error("name: t\nseed: 3\n"), kFile, {2, 1}, "seed",
               "is a config key; put it under base:");
  expect_error(sweep_error("name: t\nattention.variant: gqa\n"), kFile, {2, 1}, "attention.variant",
               "is a config key; put it under base:");
  expect_error(sweep_error("name: t\nwhatever_else: 1\n"), kFile, {2, 1}, "whatever_else",
               "unknown key; expected name, task, base, seeds, grid, exclude, stages, slurm, "
               "seeds_per_process or report");
  expect_error(sweep_error("name: t\nname: u\n"), kFile, {2, 1}, "name",
               "duplicate key; first given at line 1, column 1");
}

// seeds_per_process: a whole number >= 1 or auto; anything else is refused at its value.
TEST(Sweep, SeedsPerProcessIsANumberOrAuto) {
  EXPECT_EQ(parse("name: t\n").seeds_per_process, 0);  // auto
  EXPECT_EQ(parse("name: t\nseeds_per_process: auto\n").seeds_per_process, 0);
  EXPECT_EQ(parse("name: t\nseeds_per_process: 8\n").seeds_per_process, 8);
  EXPECT_EQ(parse("name: t\nseeds_per_process: 1\n").seeds_per_process, 1);
  for (const std::string bad : {"0", "-1", "many", "2.5", "''"}) {
    expect_error(sweep_error("name: t\nseeds_per_process: " + bad + "\n"), kFile, {2, 20},
                 "seeds_per_process", "expected a whole number >= 1 or auto, got");
  }
  expect_error(sweep_error("name: t\nseeds_per_process: many\n"), kFile, {2, 20},
               "seeds_per_process", "expected a whole number >= 1 or auto, got many");
  expect_error(sweep_error("name: t\nseeds_per_process: [2]\n"), kFile, {2, 20},
               "seeds_per_process", "expected a whole number >= 1 or auto, got a sequence");
  expect_error(sweep_error("name: t\nseed_per_process: 2\n"), kFile, {2, 1}, "seed_per_process",
               "unknown key; did you mean seeds_per_process?");
  // With the other parts' problems, at once.
  const std::string all = sweep_error("name: t\nseeds_per_process: 0\nseeds: 0\n").what();
  EXPECT_NE(all.find("sweep.yaml:2:20: seeds_per_process:"), std::string::npos) << all;
  EXPECT_NE(all.find("sweep.yaml:3:8: seeds:"), std::string::npos) << all;
}

TEST(SweepError, BaseTaskAndOverrideErrorsAreThoseOfConfigFiles) {
  expect_error(sweep_error("name: t\nbase:\n  model: {dimm: 64}\n"), kFile, {3, 11}, "model.dimm",
               "did you mean model.dim?");
  expect_error(sweep_error("name: t\ntask: vit\nbase: {task: vit}\n"), kFile, {2, 1}, "task",
               "given twice: here and in base; first given at line 3, column 8");
  expect_error(sweep_error("name: t\ntask: vti\n"), kFile, {2, 7}, "task", "did you mean vit?");
  expect_error(sweep_error("name: t\n", {"attention.kv_head=2"}), "command line", {0, 0},
               "attention.kv_head", "did you mean attention.kv_heads?");
  expect_error(sweep_error("name: t\nbase: [1]\n"), kFile, {2, 7}, "base",
               "expected a mapping of config keys, got a sequence");
  expect_error(sweep_error("name: t\ngrid: gqa\n"), kFile, {2, 7}, "grid",
               "expected a list of blocks");
  expect_error(sweep_error("name: t\nslurm: [1]\n"), kFile, {2, 8}, "slurm",
               "expected a mapping, got a sequence");
  expect_error(sweep_error("name: t\ngrid:\n  - [1]\n"), kFile, {3, 5}, "grid",
               "grid block 1: expected a mapping of config keys to values, got a sequence");
  // A YAML syntax error keeps yaml-cpp's position.
  const ConfigError syntax = sweep_error("name: t\ngrid: [\n");
  EXPECT_EQ(syntax.file(), kFile);
  EXPECT_NE(syntax.message().find("YAML syntax error"), std::string::npos) << syntax.what();
  expect_error(sweep_error("- 1\n"), kFile, {1, 1}, "", "expected a mapping (name:, base:");
}

// Every part of the file is checked, and every problem listed, before anything expands.
TEST(SweepError, EveryPartOfTheFileAtOnce) {
  const std::string text =
      "name: t\n"
      "grdi: []\n"
      "base:\n"
      "  model: {dimm: 64}\n"
      "  train: {lr: x}\n"
      "seeds: 0\n"
      "grid:\n"
      "  - attention.kv_head: [1, 2]\n"
      "  - attention.variant: [gqa, gqq]\n"
      "exclude:\n"
      "  - {train.rl: 1}\n";
  const ConfigError e = sweep_error(text, {"model.heads=x"});
  std::vector<std::string> keys;
  for (const auto& p : e.problems()) keys.push_back(p.key);
  EXPECT_EQ(keys,
            (std::vector<std::string>{"grdi", "model.dimm", "train.lr", "model.heads", "seeds",
                                      "attention.kv_head", "attention.variant", "train.rl"}))
      << e.what();
  EXPECT_EQ(e.problems()[5].line, pos_of(text, "attention.kv_head").line);
  EXPECT_EQ(e.problems()[6].column, pos_of(text, "gqq").column);
}

// A problem many cells share is reported once, with the first cell that has it and how many
// more do (or "every cell"); problems of a JobCheck (the command line's data and device checks)
// are reported as validate's are.
TEST(SweepError, EachProblemOnceWithTheCellsThatHaveIt) {
  const std::string text =
      "name: t\n"
      "task: lm\n"
      "base: {attention.faithful: true, data: {dataset: text, path: /corpus}}\n"
      "grid:\n"
      "  - attention.variant: [dgqa, kdgqa, gqa]\n"
      "    attention.kv_heads: [1, 2]\n";
  int checked = 0;
  const JobCheck no_corpus = [&](const Config& c, const Locations& at) {
    ++checked;
    const Location where = at.at("data.path");
    throw ConfigError(where.file, where.line, where.column, "data.path",
                      c.data.path + " does not exist");
  };
  const ConfigError e = error_of([&] { expand(parse(text), no_corpus); });
  EXPECT_EQ(checked, 6);  // every cell, the failing ones too
  ASSERT_EQ(e.problems().size(), 3u) << e.what();
  // At the grid value that makes each cell faithful dgqa or kdgqa (set after base's faithful).
  EXPECT_EQ(e.problems()[0].text(),
            "sweep.yaml:5:25: attention.variant: grid block 1, cell {attention.variant: dgqa, "
            "attention.kv_heads: 1} and 1 more cell: attention.variant dgqa with "
            "attention.faithful = true is not causal: in its faithful mode its query allocation "
            "uses later positions (docs/design.md section 4, Causal safety), so a language model "
            "trained with it sees the future. Set attention.allow_noncausal: true to train it "
            "anyway (the summary records it)");
  EXPECT_EQ(e.problems()[1].text(),
            "sweep.yaml:3:" + std::to_string(pos_of(text, "path").column) +
                ": data.path: every cell of the grid: /corpus does not exist");
  EXPECT_EQ(e.problems()[2].column, pos_of(text, "kdgqa").column);
  EXPECT_EQ(e.problems()[2].key, "attention.variant");
  EXPECT_NE(e.problems()[2].message.find("cell {attention.variant: kdgqa, attention.kv_heads: 1} "
                                         "and 1 more cell: attention.variant kdgqa"),
            std::string::npos)
      << e.what();
  // With allow_noncausal only the data remains; without a grid there is no cell to name.
  const ConfigError data_only =
      error_of([&] { expand(parse(text, {"attention.allow_noncausal=true"}), no_corpus); });
  ASSERT_EQ(data_only.problems().size(), 1u) << data_only.what();
  const std::string plain = "name: t\nbase: {data: {dataset: text, path: /corpus}}\n";
  const ConfigError no_grid = error_of([&] { expand(parse(plain), no_corpus); });
  EXPECT_EQ(no_grid.problems()[0].text(),
            "sweep.yaml:2:" + std::to_string(pos_of(plain, "path").column) +
                ": data.path: /corpus does not exist");
  // Stages: the stages that have it are named.
  const ConfigError staged = error_of([&] {
    expand(parse("name: t\nbase: {data: {dataset: text, path: /corpus}}\n"
                 "stages:\n  - {name: pre}\n  - {name: up, from: pre}\n"),
           no_corpus);
  });
  EXPECT_EQ(staged.problems()[0].message, "stages pre, up: /corpus does not exist");
}

TEST(SweepError, AtMostTwentyProblems) {
  std::string values;
  for (int i = 3; i < 33; ++i) values += (values.empty() ? "" : ", ") + std::to_string(i * 2 + 1);
  const ConfigError e = sweep_error(
      "name: t\ngrid:\n  - attention.variant: gqa\n    attention.kv_heads: [" + values + "]\n");
  ASSERT_EQ(e.problems().size(), kMaxConfigProblems + 1);
  EXPECT_EQ(e.problems().back().message, "10 more problems not shown (the first 20 are above)");
}

// The defaults that depend on other keys are resolved per job, after its cell and stage.
TEST(SweepExpand, DefaultsAreResolvedPerJob) {
  const std::vector<JobSpec> jobs = jobs_of(
      "name: w\n"
      "grid:\n"
      "  - train.steps: [60, 1000]\n"
      "  - {train.steps: 60, train.warmup: 0}\n"
      "  - train.epochs: 2\n"
      "stages:\n"
      "  - {name: a}\n"
      "  - {name: b, from: a, set: {train.steps: 50}}\n");
  std::vector<int64_t> warmups;
  for (const auto& j : jobs) warmups.push_back(j.config.train.warmup);
  // Cell by cell, stage a then b: b's own 50 steps give 5, unless warmup was set (0) or epochs
  // leave it to train time.
  EXPECT_EQ(warmups, (std::vector<int64_t>{6, 5, 100, 5, 0, 0, kAutoWarmup, kAutoWarmup}));
  // A vit without a dataset reads fashion-mnist; exclude sees the resolved values.
  const std::vector<JobSpec> vit = jobs_of(
      "name: v\ntask: vit\ngrid:\n  - train.steps: [60, 300]\n"
      "exclude:\n  - {train.warmup: 6}\n");
  ASSERT_EQ(vit.size(), 1u);
  EXPECT_EQ(vit[0].config.data.dataset, "fashion-mnist");
  EXPECT_EQ(vit[0].config.train.steps, 300);
}

// Every config that was valid before the automatic warm-up and left train.warmup unset keeps its
// job id: these are the ids the version before it gave this sweep (ablate plan --json).
TEST(SweepExpand, TheAutomaticWarmUpKeepsEveryEarlierId) {
  const std::vector<JobSpec> jobs = jobs_of(
      "name: pin\n"
      "task: lm\n"
      "base: {model: {dim: 32, depth: 1, heads: 4}}\n"
      "grid:\n"
      "  - train.steps: [100, 250, 999, 1000, 5000]\n"
      "  - train.epochs: [1, 3]\n"
      "  - {task: vit, data.dataset: fashion-mnist, model.patch: 7, train.steps: 300}\n");
  std::vector<std::string> ids;
  for (const auto& j : jobs) ids.push_back(j.id);
  EXPECT_EQ(ids,
            (std::vector<std::string>{"a26082a1ea602aee", "5d1fc12623567e5c", "f1e4fa073e492f2c",
                                      "81a0aec226650668", "878a181b5692de9d", "56d10d4401666e67",
                                      "a34fe83361443cb5", "387212b27dc7fb5d"}));
}

TEST(SweepError, TooManyJobs) {
  std::string steps = "[";
  for (int i = 1; i <= 101; ++i) steps += (i > 1 ? ", " : "") + std::to_string(100 + i);
  const std::string text = "name: t\nseeds: 1000\ngrid:\n  - train.steps: " + steps + "]\n";
  expect_error(sweep_error(text), kFile, {3, 1}, "grid",
               "the sweep expands to more than 100000 jobs");
  expect_error(sweep_error("name: t\nseeds: 100001\n"), kFile, {2, 8}, "seeds",
               "100001 seeds; at most 100000");
  // Just under the limit parses.
  EXPECT_EQ(parse("name: t\nseeds: 990\ngrid:\n  - train.steps: " + steps + "]\n").seeds.size(),
            990u);
}

}  // namespace
}  // namespace ablate::runner
