#pragma once
// The sweep file and its expansion into jobs (docs/design.md sections 2 and 3). Torch-free;
// yaml-cpp stays inside runner. Pure: nothing here writes anything, an invalid sweep only throws.
//
// Grammar. A sweep file is a mapping with these top-level keys:
//
//   name: kdgqa-vit      required. Letters, digits, '-', '_' and '.', starting with a letter or
//                        a digit, no "..", at most 100 characters: it names a folder of runs.
//   task: vit            lm | vit: the base's task (same as base.task; give one of the two).
//   base:                a config mapping, nested or dotted keys, exactly as a config file
//     attention: {variant: gqa, kv_heads: 3}        (parse.h).
//   seeds: 5             a count n (seeds 0..n-1) or a list of distinct integers >= 0 ([0, 7]),
//                        in the order written. Default 1: seed 0.
//   grid:                a list of blocks; the grid is their union, in order. Each block maps
//     - attention.variant: [gqa, kdgqa]    dotted config keys to one value or a list of values,
//       attention.kv_heads: [1, 2, 3]      and is the product of its axes, the last axis
//     - attention.variant: pgqa            varying fastest. `zip:` maps keys to lists of equal
//       zip: {train.lr: [1.0e-3, 5.0e-4], train.warmup: [100, 200]}    length that move together;
//                        it is one axis at its position in the block. An empty block ({}) is one
//                        cell, the base. No grid (or an empty list) is one cell, the base. A
//                        single mapping instead of a list is one block.
//   exclude:             a list of mappings key -> value: a cell whose config (base, overrides
//     - {attention.variant: kdgqa, attention.kv_heads: 1}   and its grid values) matches every
//                        entry of one mapping is dropped. Values compare canonically (1e-3 is
//                        0.001).
//   stages:              a pipeline run for every cell and seed, each stage one job:
//     - {name: pretrain, set: {attention.variant: mha, attention.kv_heads: 0}}
//     - {name: uptrain, from: pretrain, convert: mean_pool, set: {train.steps: 300}}
//                        `set` is a config mapping applied over the cell (the stage wins), `from`
//                        names an earlier stage whose job of the same cell and seed is the
//                        parent (its checkpoint is the start), `convert` (none | mean_pool |
//                        wgqa, needs `from`) sets init.convert; without `convert` a `from` stage
//                        keeps the init.convert of the cell. init.from of a `from` stage is left
//                        empty here: the executor fills in the parent's run dir at launch.
//   slurm: {...}         a mapping kept as YAML text for the Slurm backend; not checked here.
//   seeds_per_process: 8 the most seeds of one arm trained together in one process (a whole
//                        number >= 1), or auto (the default; ensembles.h). `ablate run
//                        --seeds-per-process` overrides it.
//   seeds:               seeds until decided (until_decided.h, docs/design.md section 3): every
//     {min: 3, max: 20, step: 1, until: decided}   arm runs seeds 0..min-1; after each round the
//                        arms whose comparison of `report:` is undecided get `step` more (their
//                        reference with them), until decided or `max` seeds. Needs `report:`.
//   report:              the sweep's report question: what `until: decided` decides.
//     metric: final_val_loss       a summary metric (required)
//     baseline: {attention.variant: mha}   KEY: VALUE the baseline arm matches (optional: chosen
//                        as `ablate report` chooses it)
//     compare: attention.kv_heads  a key (or a list) whose levels are compared within each cell
//     reference: "4"               the reference level of `compare` (optional)
//     where: {stage: uptrain}      KEY: VALUE every compared arm has (optional)
//     direction: lower             lower | higher (optional: inferred from the metric's name)
//     alpha: 0.05                  the error level, at every look
//     correction: holm             holm | bonferroni | bh | none (holm and bonferroni: Bonferroni
//                        over e-values; bh: e-BH)
//     equivalence_margin: 0.01     also decided when the CS lies inside (-m, m) (optional)
//     bounds: [0, 1]               the metric's range, for the bounded (betting) method (optional:
//                        [0, 1] for accuracies, else unbounded)
//     method: gaussian-mixture     or bounded-betting (optional: betting when bounds are known)
//
// The seed is set only by `seeds:`: `seed` as a key of base, grid, exclude, a stage's set or an
// override is an error. Command-line KEY=VALUE overrides apply to the base, after the file's.
//
// Expansion. For each block in order, each cell, each seed and each stage in order, the job's
// config is defaults <- base <- overrides <- cell values <- stage.set <- seed, then the defaults
// that depend on other keys (resolve_defaults: a vit's dataset, an automatic warm-up). Each is
// validated (runner::validate); a failure names the block and cell and points at the grid value
// that broke it, and every failing cell is reported, not only the first. A job's id is
// job_id(config, parent id) (canonical.h): jobs with the same id (an MHA pretrain shared by every
// conversion arm, a cell listed in two blocks) are one job, kept where it first appears. A stage
// job is shared only when its whole config is equal: a pretrain stage that should not depend on the
// arm must also `set` the keys the grid varies (attention.kv_heads: 0 for MHA), since every key is
// part of the id.
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "ablate/runner/config.h"
#include "ablate/runner/parse.h"
#include "ablate/runner/slurm.h"

namespace ablate::runner {

// A value of a config field, as the field's type (the alternatives follow FieldType).
using FieldValue = std::variant<int64_t, double, bool, std::string>;

// One `key: value` of the sweep file, checked against the schema (type, range, choices).
struct Setting {
  std::string key;   // dotted config key: "attention.kv_heads"
  FieldValue value;  // typed as the field
  std::string text;  // canonical YAML scalar (format_value): "0.001", "gqa", "true"
  Location at;       // where the value (for stage sets: the key) was written
};

// One axis of a block: a key and its values, or a zip of keys whose values move together.
struct GridAxis {
  std::vector<std::string> keys;             // one key; a zip's keys in the order written
  std::vector<std::vector<Setting>> points;  // each point sets every key of `keys`, in order
  bool zip = false;
  Location at;  // the key, or `zip:`
};

// One product block of the grid.
struct GridBlock {
  std::vector<GridAxis> axes;  // in the order written; the last varies fastest
  Location at;                 // the block's first key (or the `grid:` key for no grid)
};

// One `exclude:` entry: a cell matching all of it is dropped.
struct ExcludeRule {
  std::vector<Setting> match;
  Location at;
};

// One entry of `stages:`.
struct StageSpec {
  std::string name;
  std::string from;          // an earlier stage's name; "" = a fresh start
  int from_index = -1;       // index of `from` in SweepSpec::stages; -1 = none
  bool has_convert = false;  // `convert:` was given (it then sets init.convert)
  std::string convert;       // none | mean_pool | wgqa
  std::vector<Setting> set;  // applied over the cell, in key order
  Location at;               // the stage's `name:`
  Location convert_at;       // the stage's `convert:` value
};

// `seeds: {min, max, step, until: decided}`, or `ablate run --until decided --max-seeds N`.
// SweepSpec::seeds then lists every seed an arm may run, in the order they are added: the first
// `min` run first.
struct SequentialSeeds {
  bool enabled = false;  // seeds are added until decided; false: SweepSpec::seeds all run
  int64_t min = 3;       // seeds every arm runs before the first look
  int64_t max = 20;      // the most seeds of one arm (SweepSpec::seeds.size())
  int64_t step = 1;      // seeds added to an undecided arm per round
  Location at;           // the `seeds:` key, or the command line
};

// `report:`: the comparison `until: decided` decides, as `ablate report` flags would ask it.
struct ReportQuestion {
  bool given = false;                                         // the sweep file has `report:`
  std::string metric;                                         // a summary metric
  std::vector<std::pair<std::string, std::string>> baseline;  // KEY, VALUE; empty: chosen
  std::vector<std::string> compare;                           // --compare keys; empty: baseline
  std::string reference;                                      // --reference; "" chosen
  std::vector<std::pair<std::string, std::string>> where;     // KEY, VALUE every arm has
  std::string direction;                                      // "" (inferred) | lower | higher
  double alpha = 0.05;                                        // error level at every look
  std::string correction = "holm";                            // holm | bonferroni | bh | none
  double equivalence_margin = 0;                              // > 0: equivalence decides too
  bool has_bounds = false;                                    // `bounds:` given
  double lower = 0, upper = 1;                                // the metric's range when given
  // gaussian-mixture | bounded-betting; "": bounded betting when bounds are known (given, or
  // [0, 1] for an accuracy), else the Gaussian mixture
  std::string method;
  Location at;  // the `report:` key
};

// A parsed, checked sweep file. Cell constraints are checked by expand().
struct SweepSpec {
  std::string name;                    // the sweep's name (checked by sweep_name_error)
  std::string file;                    // the file name used in errors and provenance
  std::string yaml_text;               // the file as read (provenance)
  std::vector<std::string> overrides;  // the command line's KEY=VALUE, applied to `base`
  Config base;                         // defaults <- base <- overrides (not validated alone)
  Locations base_locations;            // where each key of `base` was set
  std::vector<int64_t> seeds{0};       // in the order written
  Location seeds_at;                   // the `seeds:` key
  std::vector<GridBlock> blocks;       // at least one (no grid: one block without axes)
  bool has_grid = false;               // a non-empty `grid:` was given
  std::vector<ExcludeRule> excludes;
  Location exclude_at;            // the `exclude:` key
  std::vector<StageSpec> stages;  // empty: each cell and seed is one job with stage ""
  std::string slurm_yaml;         // the `slurm:` mapping as YAML text; "" when absent
  // The `slurm:` mapping (partition, time, gpus_per_task, cpus_per_task, mem, account,
  // max_parallel, sbatch: [lines]); `ablate run --backend slurm` flags override it.
  SlurmOptions slurm;
  int seeds_per_process = 0;   // `seeds_per_process:`; 0 = auto (also when absent)
  SequentialSeeds sequential;  // `seeds: {..., until: decided}`
  ReportQuestion report;       // `report:`
};

// One job of an expanded sweep.
struct JobSpec {
  std::string id;           // job_id(config, parent_id): 16 hex digits
  std::string stage;        // the stage's name; "" for a sweep without stages
  std::string arm_key;      // arm_key(config, parent's arm key): the id without the seed
  int64_t seed = 0;         // == config.seed
  Config config;            // resolved and validated; init.from empty for a job with a parent
  std::string parent_id;    // the job this one starts from; "" = none
  std::vector<int> blocks;  // 1-based numbers of the grid blocks that produce it, ascending
  // What tells this job's arm apart within its stage: the keys whose value differs between jobs
  // of the stage, and the keys set by a grid cell that produced it (unless the stage's own `set`
  // or `convert` overrides them), in schema order, each with its canonical value (format_value).
  // Never the seed.
  std::vector<std::pair<std::string, std::string>> params;
};

// How one block of the grid expands.
struct BlockCount {
  int block = 0;         // 1-based, as in JobSpec::blocks
  int64_t cells = 0;     // cells of the block's product
  int64_t excluded = 0;  // of them, dropped by `exclude`
  int64_t produced = 0;  // (cells - excluded) x seeds x stages: its jobs before deduplication
  int64_t jobs = 0;      // distinct jobs it produces
  int64_t new_jobs = 0;  // of them, not produced by an earlier block
};

// How the whole sweep expands.
struct SweepCounts {
  std::vector<BlockCount> blocks;
  std::vector<int64_t> exclude_matches;  // per exclude entry: the cells it matched
  int64_t produced = 0;                  // sum of BlockCount::produced
  int64_t jobs = 0;                      // distinct jobs: what runs
};

// The most jobs (before deduplication) one sweep may expand to: a guard against a typo such as
// `seeds: 50000` or a product of many long lists.
constexpr int64_t kMaxSweepJobs = 100000;

// Cells x seeds x stages of a parsed sweep without expanding it, saturating at limit + 1 (so a
// sweep of 10^30 jobs neither overflows nor takes long to count).
int64_t job_count_bound(const SweepSpec& spec, int64_t limit = kMaxSweepJobs);

// Reads and checks a sweep file (a missing file is an error) with `overrides` (KEY=VALUE) applied
// to its base. Throws ConfigError naming the file, line, column and key: one with the problems of
// every part of the file (each top-level key, each grid block and exclude entry; the stages up to
// their first problem).
SweepSpec load_sweep(const std::string& path, const std::vector<std::string>& overrides = {});

// As load_sweep, from text; `file` is the name used in errors.
SweepSpec parse_sweep(const std::string& yaml_text, const std::string& file,
                      const std::vector<std::string>& overrides = {});

// `ablate run --until decided --max-seeds N`: the file's seeds (a count or a list) run first, then
// up to `max_seeds` per arm, adding the smallest unused seeds one at a time. ConfigError (at the
// command line) when max_seeds is below the file's seeds, the file already says `until:`, or it
// has no `report:`.
void until_decided_from_command_line(SweepSpec& sweep, int64_t max_seeds);

// A check of a job's resolved config beyond validate(), such as whether the data it reads is
// there: it throws ConfigError at `locations.at(key)` of the key at fault. expand() runs it as it
// runs validate().
using JobCheck = std::function<void(const Config& config, const Locations& locations)>;

// The jobs of a sweep, deduplicated, in a topological order (a parent before its children): by
// block, cell, seed, then stage, each job where it first appears. Deterministic. Each cell's
// config per stage (defaults resolved: resolve_defaults) is checked by validate() and by
// `job_check` when given. Throws one ConfigError with the problems of every cell, each problem
// once, named with the cell (its block and values; "every cell of the grid", or the first cell
// and how many more have it) and the stage; or for a grid left empty by `exclude`.
std::vector<JobSpec> expand(const SweepSpec& sweep, const JobCheck& job_check = nullptr);

// Per block and in total, how `jobs` (expand(sweep)) came about.
SweepCounts count_jobs(const SweepSpec& sweep, const std::vector<JobSpec>& jobs);

// "" when `name` is a valid sweep (or stage) name, else why not ("contains '/', a path
// separator"). Such a name can be a folder name: no run dir built from it leaves its parent.
std::string sweep_name_error(const std::string& name);

}  // namespace ablate::runner
