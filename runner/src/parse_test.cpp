#include "ablate/runner/parse.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>

#include "ablate/runner/canonical.h"
#include "ablate/testing/errors.h"
#include "ablate/testing/temp_dir.h"

namespace ablate::runner {
namespace {

namespace fs = std::filesystem;

ConfigError error_of(const std::function<void()>& f) {
  return testing::thrown<ConfigError>(f, ConfigError("", 0, 0, "", ""));
}

ConfigError parse_error(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  return error_of([&] { parse_config(yaml, "cfg.yaml", overrides); });
}

Config parse(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  return parse_config(yaml, "cfg.yaml", overrides);
}

// Checks every part of an error; `message` must occur in message().
void expect_error(const ConfigError& e, const std::string& file, int line, int column,
                  const std::string& key, const std::string& message) {
  EXPECT_EQ(e.file(), file) << e.what();
  EXPECT_EQ(e.line(), line) << e.what();
  EXPECT_EQ(e.column(), column) << e.what();
  EXPECT_EQ(e.key(), key) << e.what();
  EXPECT_NE(e.message().find(message), std::string::npos)
      << "message: " << e.message() << "\nwanted: " << message;
}

using testing::TempFile;

// ---------------------------------------------------------------- what parses

TEST(Parse, EmptyTextGivesDefaults) {
  // The defaults, resolved (resolve_defaults): the automatic warm-up of 1000 steps is 100.
  Config defaults;
  defaults.train.warmup = 100;
  EXPECT_EQ(to_yaml(parse("")), to_yaml(defaults));
  EXPECT_TRUE(parse("") == defaults);
  EXPECT_TRUE(parse("# only a comment\n\n") == defaults);
  EXPECT_TRUE(parse("attention:\nmodel:\n") == defaults);  // empty sections
  EXPECT_EQ(config_hash(parse("")), config_hash(Config()));
}

TEST(Parse, NestedSectionsSetFieldsOfEveryType) {
  const Config c = parse(
      "task: lm\n"
      "seed: 7\n"
      "data:\n"
      "  dataset: text\n"
      "  path: /srv/corpus\n"
      "model:\n"
      "  dim: 96\n"
      "  heads: 6\n"
      "attention:\n"
      "  variant: gqa\n"
      "  kv_heads: 3\n"
      "  qk_norm: true\n"
      "  rope: False\n"
      "train:\n"
      "  lr: 3.0e-4\n"
      "  grad_clip: 2\n"  // an integer is fine for a float field
      "  device: cuda:1\n");
  EXPECT_EQ(c.seed, 7);
  EXPECT_EQ(c.data.dataset, "text");
  EXPECT_EQ(c.data.path, "/srv/corpus");
  EXPECT_EQ(c.model.dim, 96);
  EXPECT_EQ(c.model.heads, 6);
  EXPECT_EQ(c.attention.variant, "gqa");
  EXPECT_EQ(c.attention.kv_heads, 3);
  EXPECT_TRUE(c.attention.qk_norm);
  EXPECT_FALSE(c.attention.rope);
  EXPECT_DOUBLE_EQ(c.train.lr, 3e-4);
  EXPECT_DOUBLE_EQ(c.train.grad_clip, 2.0);
  EXPECT_EQ(c.train.device, "cuda:1");
  // Untouched fields keep their defaults.
  EXPECT_EQ(c.model.depth, Config().model.depth);
  EXPECT_EQ(c.train.steps, Config().train.steps);
}

TEST(Parse, DottedKeysEqualNestedOnes) {
  const Config nested =
      parse("model:\n  heads: 8\nattention:\n  variant: gqa\n  kv_heads: 2\ntrain: {lr: 0.002}\n");
  const Config dotted =
      parse("model.heads: 8\nattention.variant: gqa\nattention.kv_heads: 2\ntrain.lr: 2e-3\n");
  const Config flow = parse(
      "{model: {heads: 8}, attention: {variant: gqa, kv_heads: 2}, "
      "train.lr: 0.2e-2}");
  const Config mixed = parse(
      "model.heads: 8\nattention:\n  variant: gqa\ntrain.lr: 0.002\n"
      "attention.kv_heads: 2\n");
  EXPECT_EQ(nested.attention.kv_heads, 2);
  EXPECT_EQ(to_yaml(nested), to_yaml(dotted));
  EXPECT_EQ(to_yaml(nested), to_yaml(flow));
  EXPECT_EQ(to_yaml(nested), to_yaml(mixed));
  EXPECT_NE(to_yaml(nested), to_yaml(Config()));
}

TEST(Parse, NumbersAndStrings) {
  EXPECT_DOUBLE_EQ(parse("train.lr: .5").train.lr, 0.5);
  EXPECT_DOUBLE_EQ(parse("train.lr: +1.").train.lr, 1.0);
  EXPECT_DOUBLE_EQ(parse("train.lr: 1E-3").train.lr, 1e-3);
  EXPECT_DOUBLE_EQ(parse("attention.ema_beta: -0.5").attention.ema_beta, -0.5);
  EXPECT_EQ(parse("seed: +12").seed, 12);
  EXPECT_EQ(parse("seed: 9223372036854775807").seed, INT64_MAX);
  EXPECT_EQ(parse("data.path: \"/a b/#c: d\"").data.path, "/a b/#c: d");
  EXPECT_EQ(parse("data.path: '123'").data.path, "123");
  EXPECT_EQ(parse("data.path: 123").data.path, "123");  // a plain scalar is a string here
  EXPECT_EQ(parse("data.path: \"\"").data.path, "");
}

TEST(Parse, SweepStyleTopLevelTaskWithDatasetOfThatTask) {
  const Config c = parse("task: vit\ndata: {dataset: fashion-mnist}\nmodel: {patch: 7}\n");
  EXPECT_EQ(c.task, "vit");
  EXPECT_EQ(c.model.patch, 7);
}

TEST(Parse, TheShippedConfigsLoad) {
  const fs::path configs = fs::path(__FILE__).parent_path() / ".." / ".." / "configs";
  for (const char* name : {"lm-fortunes.yaml", "vit-fashion-mnist.yaml"}) {
    const fs::path p = configs / name;
    if (!fs::exists(p)) GTEST_SKIP() << p << " not found";
    const Config c = load_config(p.string());
    EXPECT_EQ(c.task, std::string(name).substr(0, std::string(name).find('-')));
  }
}

// ---------------------------------------------------------------- overrides

TEST(Parse, OverridesParseScalarsAndWinOverTheFile) {
  const Config c = parse("train:\n  lr: 0.01\nattention: {variant: gqa, kv_heads: 2}\n",
                         {"train.lr=1e-3", "attention.qk_norm=true", "attention.kv_heads=4",
                          "data.path=/x", "data.path=", "train.device=cuda:0", "seed=3"});
  EXPECT_DOUBLE_EQ(c.train.lr, 1e-3);
  EXPECT_TRUE(c.attention.qk_norm);
  EXPECT_EQ(c.attention.kv_heads, 4);
  EXPECT_EQ(c.data.path, "");  // KEY= is the empty string; the later override wins
  EXPECT_EQ(c.train.device, "cuda:0");
  EXPECT_EQ(c.seed, 3);
}

TEST(Parse, OverrideOfASectionWithAFlowMapping) {
  const Config c = parse("", {"attention={variant: gqa, kv_heads: 2}"});
  EXPECT_EQ(c.attention.variant, "gqa");
  EXPECT_EQ(c.attention.kv_heads, 2);
}

TEST(Parse, OverrideErrorsNameTheCommandLine) {
  expect_error(parse_error("", {"train.steps=abc"}), "command line", 0, 0, "train.steps",
               "expected an integer, got abc");
  expect_error(parse_error("", {"attention.kv_head=2"}), "command line", 0, 0, "attention.kv_head",
               "unknown key; did you mean attention.kv_heads?");
  expect_error(parse_error("", {"train.lr=-1"}), "command line", 0, 0, "train.lr",
               "-1.0 is out of range; expected a value in [1.0e-12, 10.0]");
  expect_error(parse_error("", {"train.steps"}), "command line", 0, 0, "",
               "expected KEY=VALUE, got 'train.steps'");
  expect_error(parse_error("", {"=3"}), "command line", 0, 0, "", "expected KEY=VALUE");
  expect_error(parse_error("", {"train.lr=[1"}), "command line", 0, 0, "train.lr",
               "cannot read the value");
  expect_error(parse_error("", {"seed=[1, 2]"}), "command line", 0, 0, "seed",
               "expected an integer, got a sequence");
  expect_error(parse_error("", {"seed="}), "command line", 0, 0, "seed",
               "expected an integer, got the string \"\"");
  EXPECT_STREQ(parse_error("", {"train.steps=abc"}).what(),
               "command line: train.steps: expected an integer, got abc");
}

TEST(Parse, ApplyOverrideValidatesTheWholeConfig) {
  Config c;
  apply_override(c, "train.lr=0.02");
  EXPECT_DOUBLE_EQ(c.train.lr, 0.02);
  apply_override(c, "attention.qk_norm=true");
  EXPECT_TRUE(c.attention.qk_norm);
  Config d;
  expect_error(error_of([&] { apply_override(d, "model.heads=3"); }), "command line", 0, 0,
               "model.heads", "model.dim 128 is not divisible by model.heads 3");
  Config e;
  expect_error(error_of([&] { apply_override(e, "train.rl=1"); }), "command line", 0, 0, "train.rl",
               "did you mean train.lr?");
}

TEST(Parse, AReplacedKeyNamesItsReplacement) {
  expect_error(parse_error("train:\n  bf16: false\n", {}), "cfg.yaml", 2, 3, "train.bf16",
               "replaced by train.precision: auto | fp32 | bf16");
  EXPECT_EQ(parse("train:\n  precision: bf16\n", {}).train.precision, "bf16");
  expect_error(parse_error("", {"train.precision=fp16"}), "command line", 0, 0, "train.precision",
               "fp16");
}

TEST(Parse, OverrideThatChangesTheTaskBlamesTheFileKeyOfTheOtherTask) {
  expect_error(
      parse_error("data:\n  seq_len: 64\n", {"task=vit", "data.dataset=mnist", "data.path=/m"}),
      "cfg.yaml", 2, 3, "data.seq_len", "applies to lm and s2s only; the task is vit");
}

// ---------------------------------------------------------------- files

TEST(Parse, LoadConfigReadsAFile) {
  const TempFile file("seed: 5\nmodel:\n  depth: 2\n");
  const Config c = load_config(file.path(), {"model.dim=64"});
  EXPECT_EQ(c.seed, 5);
  EXPECT_EQ(c.model.depth, 2);
  EXPECT_EQ(c.model.dim, 64);
}

TEST(Parse, LoadConfigNamesTheFileInErrors) {
  const TempFile file("seed: 5\nmodel:\n  depht: 2\n");
  expect_error(error_of([&] { load_config(file.path()); }), file.path(), 3, 3, "model.depht",
               "unknown key; did you mean model.depth?");
}

TEST(Parse, MissingFileIsAnError) {
  const std::string path = "/nonexistent/ablate/cfg.yaml";
  const ConfigError e = error_of([&] { load_config(path); });
  expect_error(e, path, 0, 0, "", "no such config file");
  EXPECT_EQ(std::string(e.what()), path + ": no such config file");
  expect_error(error_of([&] { load_config(fs::temp_directory_path().string()); }),
               fs::temp_directory_path().string(), 0, 0, "", "is a directory");
}

// ---------------------------------------------------------------- error classes

TEST(ParseError, WhatHasFileLineColumnKeyAndMessage) {
  const ConfigError e = parse_error("attention:\n  variant: gqa\n  kv_head: 2\n");
  EXPECT_STREQ(e.what(),
               "cfg.yaml:3:3: attention.kv_head: unknown key; did you mean attention.kv_heads?");
  EXPECT_STREQ(ConfigError("f.yaml", 2, 0, "k", "m").what(), "f.yaml:2: k: m");
  EXPECT_STREQ(ConfigError("f.yaml", 0, 0, "k", "m").what(), "f.yaml: k: m");
  EXPECT_STREQ(ConfigError("", 0, 0, "k", "m").what(), "k: m");
  EXPECT_STREQ(ConfigError("f.yaml", 1, 2, "", "m").what(), "f.yaml:1:2: m");
}

TEST(ParseError, YamlSyntaxErrorAtYamlCppsPosition) {
  expect_error(parse_error("model:\n  dim: 3\n bad: 1\n"), "cfg.yaml", 3, 2, "",
               "YAML syntax error: end of map not found");
  expect_error(parse_error("seed: 1\n  x: 2\n"), "cfg.yaml", 2, 4, "",
               "YAML syntax error: illegal map value");
  expect_error(parse_error("seed: 1\nmodel: {dim: 3\n"), "cfg.yaml", 3, 1, "",
               "YAML syntax error: end of map flow not found");
  expect_error(parse_error("seed: 1\n\tmodel: 2\n"), "cfg.yaml", 2, 1, "",
               "YAML syntax error: illegal tab when looking for indentation");
  EXPECT_STREQ(parse_error("seed: @x\n").what(), "cfg.yaml:1:7: YAML syntax error: unknown token");
}

TEST(ParseError, TopLevelMustBeAMapping) {
  expect_error(parse_error("- 1\n- 2\n"), "cfg.yaml", 1, 1, "",
               "expected a mapping of config keys, got a sequence");
  expect_error(parse_error("just text"), "cfg.yaml", 1, 1, "",
               "expected a mapping of config keys, got just text");
}

TEST(ParseError, UnknownKeySuggestsTheNearestFullKey) {
  expect_error(parse_error("seed: 1\natention.variant: gqa\n"), "cfg.yaml", 2, 1,
               "atention.variant", "unknown key; did you mean attention.variant?");
  expect_error(parse_error("atention:\n  variant: gqa\n"), "cfg.yaml", 1, 1, "atention",
               "unknown key; did you mean attention?");
  expect_error(parse_error("model: {dim: 64, hedas: 4}\n"), "cfg.yaml", 1, 18, "model.hedas",
               "unknown key; did you mean model.heads?");
  expect_error(parse_error("train:\n  learning_rate: 0.1\n"), "cfg.yaml", 2, 3,
               "train.learning_rate", "unknown key; `ablate schema` lists the keys");
  const ConfigError far = parse_error("zzzzqqq: 1\n");
  EXPECT_EQ(far.message().find("did you mean"), std::string::npos) << far.what();
  // A dotted key inside a section is relative to it.
  expect_error(parse_error("attention:\n  variant.x: 1\n"), "cfg.yaml", 2, 3, "attention.variant.x",
               "did you mean attention.variant?");
}

TEST(ParseError, SectionGivenAScalarOrFieldGivenAMapping) {
  expect_error(parse_error("attention: gqa\n"), "cfg.yaml", 1, 12, "attention",
               "is a section; expected a mapping of its keys, got gqa");
  expect_error(parse_error("train: [1, 2]\n"), "cfg.yaml", 1, 8, "train",
               "is a section; expected a mapping of its keys, got a sequence");
  expect_error(parse_error("model:\n  dim: {a: 1}\n"), "cfg.yaml", 2, 8, "model.dim",
               "expected an integer, got a mapping");
  expect_error(parse_error("seed: [1, 2]\n"), "cfg.yaml", 1, 7, "seed",
               "expected an integer, got a sequence");
  expect_error(parse_error("attention:\n  variant: [gqa]\n"), "cfg.yaml", 2, 12,
               "attention.variant", "expected a string, got a sequence");
}

TEST(ParseError, WrongTypeSaysTheExpectedType) {
  expect_error(parse_error("seed: 2.5\n"), "cfg.yaml", 1, 7, "seed",
               "expected an integer, got 2.5");
  expect_error(parse_error("model:\n  dim: 1e3\n"), "cfg.yaml", 2, 8, "model.dim",
               "expected an integer, got 1e3");
  expect_error(parse_error("seed: \"3\"\n"), "cfg.yaml", 1, 7, "seed",
               "expected an integer, got the string \"3\"");
  expect_error(parse_error("train:\n  lr: fast\n"), "cfg.yaml", 2, 7, "train.lr",
               "expected a number, got fast");
  expect_error(parse_error("train.lr: .inf\n"), "cfg.yaml", 1, 11, "train.lr",
               "expected a number, got .inf");
  expect_error(parse_error("attention.rope: yes\n"), "cfg.yaml", 1, 17, "attention.rope",
               "expected true or false, got yes");
  expect_error(parse_error("attention.rope: 1\n"), "cfg.yaml", 1, 17, "attention.rope",
               "expected true or false, got 1");
  // A null value has no position of its own: the key's is used.
  expect_error(parse_error("seed: 1\ndata:\n  path:\n"), "cfg.yaml", 3, 3, "data.path",
               "expected a string, got nothing");
  expect_error(parse_error("train.steps: ~\n"), "cfg.yaml", 1, 1, "train.steps",
               "expected an integer, got nothing");
  // A float field takes an integer.
  EXPECT_DOUBLE_EQ(parse("train.lr: 3\n").train.lr, 3.0);
}

TEST(ParseError, OutOfRangeSaysTheRange) {
  expect_error(parse_error("attention:\n  kv_heads: -1\n"), "cfg.yaml", 2, 13, "attention.kv_heads",
               "-1 is out of range; expected a value in [0, 4096]");
  expect_error(parse_error("train:\n  steps: 0\n"), "cfg.yaml", 2, 10, "train.steps",
               "0 is out of range; expected >= 1");
  expect_error(parse_error("data.val_fraction: 0.95\n"), "cfg.yaml", 1, 20, "data.val_fraction",
               "0.95 is out of range; expected a value in [1.0e-4, 0.9]");
  expect_error(parse_error("train.lr: 0\n"), "cfg.yaml", 1, 11, "train.lr",
               "0.0 is out of range; expected a value in [1.0e-12, 10.0]");
  expect_error(parse_error("seed: -1\n"), "cfg.yaml", 1, 7, "seed",
               "-1 is out of range; expected >= 0");
  expect_error(parse_error("seed: 99999999999999999999\n"), "cfg.yaml", 1, 7, "seed",
               "does not fit a 64-bit integer");
  expect_error(parse_error("train.lr: 1e999\n"), "cfg.yaml", 1, 11, "train.lr",
               "does not fit a double");
}

TEST(ParseError, UnknownChoiceListsTheChoices) {
  expect_error(parse_error("attention:\n  variant: gqq\n"), "cfg.yaml", 2, 12, "attention.variant",
               "unknown value gqq; expected one of mha, mqa, gqa, mkva, gkva, gqkva, kdgqa, "
               "dgqa, pgqa, wgqa; did you mean gqa?");
  expect_error(parse_error("task: llm\n"), "cfg.yaml", 1, 7, "task",
               "expected one of lm, vit, s2s; did you mean lm?");
  expect_error(parse_error("train.device: gpu\n"), "cfg.yaml", 1, 15, "train.device",
               "expected one of auto, cpu, cuda, cuda:N");
  expect_error(parse_error("train.device: cuda:x\n"), "cfg.yaml", 1, 15, "train.device",
               "unknown value cuda:x");
  expect_error(parse_error("init.convert: mean-pool\n"), "cfg.yaml", 1, 15, "init.convert",
               "did you mean mean_pool?");
  EXPECT_EQ(parse("train.device: cuda:3\n").train.device, "cuda:3");
}

TEST(ParseError, DuplicateKeys) {
  expect_error(parse_error("seed: 1\nseed: 2\n"), "cfg.yaml", 2, 1, "seed",
               "duplicate key; first given at line 1, column 1");
  expect_error(parse_error("attention:\n  kv_heads: 2\n  kv_heads: 2\n"), "cfg.yaml", 3, 3,
               "attention.kv_heads", "duplicate key; first given at line 2, column 3");
  // The same field nested and dotted.
  expect_error(parse_error("attention:\n  kv_heads: 2\nattention.kv_heads: 1\n"), "cfg.yaml", 3, 1,
               "attention.kv_heads", "duplicate key; first given at line 2, column 3");
  // The same section twice, even with different fields.
  expect_error(parse_error("model: {dim: 64}\nmodel: {depth: 2}\n"), "cfg.yaml", 2, 1, "model",
               "duplicate key; first given at line 1, column 1");
}

// ---------------------------------------------------------------- cross-field constraints

TEST(ParseError, DimDivisibleByHeadsAtTheKeySetLast) {
  expect_error(parse_error("model:\n  dim: 100\n  heads: 3\n"), "cfg.yaml", 3, 3, "model.heads",
               "model.dim 100 is not divisible by model.heads 3");
  expect_error(parse_error("model:\n  heads: 3\n  dim: 100\n"), "cfg.yaml", 3, 3, "model.dim",
               "model.dim 100 is not divisible by model.heads 3");
  // Set on the command line after the file: the command line is blamed.
  expect_error(parse_error("model: {heads: 4}\n", {"model.dim=98"}), "command line", 0, 0,
               "model.dim", "model.dim 98 is not divisible by model.heads 4");
}

TEST(ParseError, ConstraintOnDefaultsHasNoLine) {
  Config c;
  c.model.heads = 3;  // set in code: no location known
  const ConfigError e = error_of([&] { validate(c, Locations("x.yaml")); });
  expect_error(e, "x.yaml", 0, 0, "model.dim", "model.dim 128 is not divisible by model.heads 3");
  EXPECT_STREQ(e.what(), "x.yaml: model.dim: model.dim 128 is not divisible by model.heads 3");
  EXPECT_STREQ(error_of([&] { validate(c); }).what(),
               "model.dim: model.dim 128 is not divisible by model.heads 3");
  // A bad value set in code is caught too, at its key.
  Config d;
  d.train.beta2 = 1.0;
  expect_error(error_of([&] { validate(d); }), "", 0, 0, "train.beta2", "out of range");
  // The defaults are valid.
  validate(Config());
}

TEST(ParseError, RopeNeedsAnEvenHeadSize) {
  expect_error(parse_error("model: {dim: 96, heads: 32}\n"), "cfg.yaml", 1, 18, "model.heads",
               "attention.rope needs an even head size; model.dim / model.heads = 96 / 32 = 3");
  EXPECT_EQ(parse("model: {dim: 96, heads: 32}\nattention: {rope: false}\n").model.heads, 32);
}

TEST(ParseError, KvHeadsMustDivideHeadsForStaticAndDynamicGrouping) {
  for (const std::string v : {"gqa", "kdgqa", "dgqa", "pgqa", "wgqa"}) {
    expect_error(parse_error("model: {heads: 4}\nattention: {variant: " + v + ", kv_heads: 3}\n"),
                 "cfg.yaml", 2, 24 + static_cast<int>(v.size()), "attention.kv_heads",
                 "attention.kv_heads 3 must divide model.heads 4 for " + v +
                     "; valid values: 1, 2, 4 (0 = heads)");
    expect_error(parse_error("attention: {variant: " + v + ", kv_heads: 8}\n"), "cfg.yaml", 1,
                 24 + static_cast<int>(v.size()), "attention.kv_heads", "must divide");
    EXPECT_EQ(parse("attention: {variant: " + v + ", kv_heads: 2}\n").attention.kv_heads, 2);
    EXPECT_EQ(parse("attention: {variant: " + v + "}\n").attention.kv_heads, 0);  // 0 = heads
  }
  // Other variants ignore kv_heads.
  EXPECT_EQ(parse("attention: {variant: mha, kv_heads: 3}\n").attention.kv_heads, 3);
}

TEST(ParseError, GkvaNeedsQHeadsDividingHeads) {
  expect_error(parse_error("attention:\n  variant: gkva\n"), "cfg.yaml", 2, 3, "attention.variant",
               "gkva needs attention.q_heads > 0 dividing model.heads 4, got 0; valid values: "
               "1, 2, 4");
  expect_error(parse_error("attention:\n  variant: gkva\n  q_heads: 3\n"), "cfg.yaml", 3, 3,
               "attention.q_heads", "got 3");
  EXPECT_EQ(parse("attention: {variant: gkva, q_heads: 2}\n").attention.q_heads, 2);
}

TEST(ParseError, GqkvaNeedsGroupsMultiplyingToHeads) {
  expect_error(parse_error("attention:\n  variant: gqkva\n  q_groups: 2\n  kv_groups: 3\n"),
               "cfg.yaml", 4, 3, "attention.kv_groups",
               "gqkva needs attention.q_groups * attention.kv_groups = model.heads 4, got 2 * 3; "
               "valid q_groups x kv_groups: 1x4, 2x2, 4x1");
  expect_error(parse_error("attention.variant: gqkva\n"), "cfg.yaml", 1, 1, "attention.variant",
               "got 0 * 0");
  EXPECT_EQ(parse("attention: {variant: gqkva, q_groups: 2, kv_groups: 2}\n").attention.q_groups,
            2);
}

TEST(ParseError, DatasetMustBelongToTheTask) {
  expect_error(parse_error("seed: 1\ntask: vit\ndata.dataset: fortunes\n"), "cfg.yaml", 3, 1,
               "data.dataset",
               "data.dataset fortunes is not a dataset of task vit; vit datasets: "
               "fashion-mnist, mnist, idx, cifar10, cifar100");
  expect_error(parse_error("data:\n  dataset: cifar10\n  path: /c\n"), "cfg.yaml", 2, 3,
               "data.dataset",
               "data.dataset cifar10 is not a dataset of task lm; lm datasets: "
               "fortunes, text, bin");
  EXPECT_EQ(parse("task: vit\ndata: {dataset: cifar100, path: /c}\n").data.dataset, "cifar100");
}

TEST(ParseError, DatasetsWithoutADebianPackageNeedAPath) {
  for (const std::string task_dataset :
       {"lm text", "lm bin", "vit idx", "vit mnist", "vit cifar10", "vit cifar100"}) {
    const std::string task = task_dataset.substr(0, task_dataset.find(' '));
    const std::string dataset = task_dataset.substr(task_dataset.find(' ') + 1);
    const std::string yaml = "task: " + task + "\ndata:\n  dataset: " + dataset + "\n";
    expect_error(parse_error(yaml), "cfg.yaml", 3, 3, "data.dataset",
                 "data.dataset " + dataset + " needs data.path");
    EXPECT_EQ(parse(yaml + "  path: /d\n").data.path, "/d");
  }
  EXPECT_EQ(parse("task: vit\ndata: {dataset: fashion-mnist}\n").data.path, "");
  EXPECT_EQ(parse("data: {dataset: fortunes}\n").data.path, "");
}

TEST(ParseError, ConvertNeedsFrom) {
  expect_error(parse_error("init:\n  convert: mean_pool\n"), "cfg.yaml", 2, 3, "init.convert",
               "init.convert mean_pool needs init.from");
  EXPECT_EQ(parse("init: {convert: wgqa, from: runs/abc}\n").init.convert, "wgqa");
}

TEST(ParseError, WarmupAtMostSteps) {
  // A warm-up that was set must fit the run; the automatic one always does.
  expect_error(parse_error("train:\n  warmup: 100\n  steps: 50\n"), "cfg.yaml", 3, 3, "train.steps",
               "train.warmup 100 exceeds train.steps 50; without train.warmup the warm-up is "
               "automatic (5 steps here)");
  expect_error(parse_error("train: {steps: 60}\n", {"train.warmup=100"}), "command line", 0, 0,
               "train.warmup", "train.warmup 100 exceeds train.steps 60");
  EXPECT_EQ(parse("train: {steps: 50, warmup: 50}\n").train.warmup, 50);
  EXPECT_EQ(parse("train: {steps: 50}\n").train.warmup, 5);
}

TEST(ParseError, EvalSubsetIsACountAndNotForFaithfulDgqa) {
  const Config c = parse("train:\n  eval_subset: 1000\n");
  EXPECT_EQ(c.train.eval_subset, 1000);
  EXPECT_EQ(parse("train: {}\n").train.eval_subset, 0);  // the default: every evaluation is full
  expect_error(parse_error("train:\n  eval_subset: -5\n"), "cfg.yaml", 2, 16, "train.eval_subset",
               "-5 is out of range; expected >= 0");
  expect_error(parse_error("train:\n  eval_subset: 2.5\n"), "cfg.yaml", 2, 16, "train.eval_subset",
               "integer");
  expect_error(parse_error("train:\n  eval_subset: many\n"), "cfg.yaml", 2, 16, "train.eval_subset",
               "integer");
  // Faithful dgqa's evaluation changes the state training goes on from: a subset would change
  // the final metrics. The error is at the key set last.
  const std::string faithful =
      "task: vit\nattention: {variant: dgqa, kv_heads: 2, faithful: true}\n";
  expect_error(parse_error(faithful + "train:\n  eval_subset: 100\n"), "cfg.yaml", 4, 3,
               "train.eval_subset", "train.eval_subset cannot be used with faithful dgqa");
  EXPECT_EQ(parse(faithful).train.eval_subset, 0);
  EXPECT_EQ(parse("task: vit\nattention: {variant: kdgqa, kv_heads: 2, faithful: true}\n"
                  "train: {eval_subset: 100}\n")
                .train.eval_subset,
            100);
  EXPECT_EQ(parse("attention: {variant: dgqa, kv_heads: 2}\ntrain: {eval_subset: 100}\n")
                .train.eval_subset,
            100);
}

TEST(ParseError, MinLrAtMostLr) {
  expect_error(parse_error("train:\n  min_lr: 0.01\n"), "cfg.yaml", 2, 3, "train.min_lr",
               "train.min_lr 0.01 exceeds train.lr 0.001");
  EXPECT_DOUBLE_EQ(parse("train: {min_lr: 0.001}\n").train.min_lr, 0.001);
}

// ---------------------------------------------------------------- several problems at once

TEST(ConfigErrors, WhatIsOneLinePerProblemAndTheAccessorsTheFirst) {
  const ConfigError e({{"a.yaml", 3, 5, "train.lr", "too big"},
                       {"a.yaml", 0, 0, "train.steps", "too small"},
                       {"command line", 0, 0, "", "no key"}});
  EXPECT_STREQ(
      e.what(),
      "a.yaml:3:5: train.lr: too big\na.yaml: train.steps: too small\ncommand line: no key");
  EXPECT_EQ(e.problems().size(), 3u);
  EXPECT_EQ(e.file(), "a.yaml");
  EXPECT_EQ(e.line(), 3);
  EXPECT_EQ(e.column(), 5);
  EXPECT_EQ(e.key(), "train.lr");
  EXPECT_EQ(e.message(), "too big");
  const ConfigError one("b.yaml", 1, 2, "seed", "bad");
  EXPECT_STREQ(one.what(), "b.yaml:1:2: seed: bad");
  EXPECT_EQ(one.problems().size(), 1u);
}

TEST(ConfigErrors, EachProblemOnceAndAtMostTheLimit) {
  ConfigProblems problems;
  problems.throw_if_any();  // none: nothing thrown
  EXPECT_TRUE(problems.empty());
  EXPECT_TRUE(problems.check([] {}));
  EXPECT_FALSE(problems.check([] { throw ConfigError("f", 1, 1, "k", "the same"); }));
  EXPECT_FALSE(problems.check([] { throw ConfigError("f", 1, 1, "k", "the same"); }));
  for (int i = 0; i < 30; ++i) problems.add(ConfigProblem{"f", i + 2, 1, "k", "m"});
  problems.add(ConfigProblem{"f", 31, 1, "k", "m"});  // again, beyond the limit: not counted twice
  const ConfigError e = error_of([&] { problems.throw_if_any(); });
  ASSERT_EQ(e.problems().size(), kMaxConfigProblems + 1);
  EXPECT_EQ(e.problems()[0].line, 1);  // the duplicate was kept once
  EXPECT_EQ(e.problems()[1].line, 2);
  EXPECT_EQ(e.problems().back().text(), "f: 11 more problems not shown (the first 20 are above)");
}

TEST(ParseError, EveryMistakeOfAFileAtOnce) {
  const ConfigError e = parse_error(
      "model:\n"
      "  dimm: 64\n"
      "  heads: four\n"
      "attention: {variant: gqq}\n"
      "train.steps: 10\n"
      "train.steps: 20\n",
      {"train.lr=x", "trian.lr=1"});
  ASSERT_EQ(e.problems().size(), 6u) << e.what();
  const std::vector<std::string> expected = {
      "cfg.yaml:2:3: model.dimm: unknown key; did you mean model.dim?",
      "cfg.yaml:3:10: model.heads: expected an integer, got four",
      "cfg.yaml:4:22: attention.variant: unknown value gqq",
      "cfg.yaml:6:1: train.steps: duplicate key; first given at line 5, column 1",
      "command line: train.lr: expected a number, got x",
      "command line: trian.lr: unknown key; did you mean train.lr?"};
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(e.problems()[i].text().rfind(expected[i], 0), 0u) << e.problems()[i].text();
  }
}

TEST(ParseError, EveryBrokenConstraintAtOnce) {
  const ConfigError e = parse_error(
      "model: {dim: 30}\n"
      "init: {convert: wgqa}\n"
      "train: {lr: 0.001, min_lr: 0.01}\n");
  ASSERT_EQ(e.problems().size(), 3u) << e.what();
  expect_error(e, "cfg.yaml", 1, 9, "model.dim", "model.dim 30 is not divisible by model.heads 4");
  EXPECT_EQ(e.problems()[1].key, "init.convert");
  EXPECT_EQ(e.problems()[2].key, "train.min_lr");
  // No rope complaint about the odd head size: dim / heads is not a head size here.
  EXPECT_EQ(std::string(e.what()).find("rope"), std::string::npos) << e.what();
}

// The faithful kdgqa, dgqa and pgqa see later positions by construction: a causal lm refuses
// them unless attention.allow_noncausal, at the key that made the config faithful.
TEST(ParseError, FaithfulDynamicVariantsInALanguageModelNeedAllowNoncausal) {
  for (const std::string v : {"kdgqa", "dgqa", "pgqa"}) {
    const std::string yaml = "attention:\n  variant: " + v + "\n  faithful: true\n";
    expect_error(parse_error(yaml), "cfg.yaml", 3, 3, "attention.faithful",
                 "attention.variant " + v + " with attention.faithful = true is not causal: ");
    const ConfigError e = parse_error(yaml);
    EXPECT_NE(e.message().find("Set attention.allow_noncausal: true to train it anyway"),
              std::string::npos)
        << e.what();
    EXPECT_NE(noncausal_reason(parse(yaml + "  allow_noncausal: true\n")), "");
    EXPECT_EQ(parse(yaml + "  allow_noncausal: true\n").attention.faithful, true);
    // The robust mode is causal, and a vit attends both ways.
    EXPECT_EQ(parse("attention: {variant: " + v + "}\n").attention.variant, v);
    EXPECT_EQ(parse("task: vit\n" + yaml).attention.faithful, true);
    EXPECT_EQ(noncausal_reason(parse("task: vit\n" + yaml)), "");
  }
  // faithful means nothing to the static variants.
  EXPECT_EQ(parse("attention: {variant: gqa, kv_heads: 2, faithful: true}\n").attention.variant,
            "gqa");
  // Set on the command line: the error points there.
  expect_error(parse_error("attention: {variant: dgqa}\n", {"attention.faithful=true"}),
               "command line", 0, 0, "attention.faithful", "is not causal");
}

// ---------------------------------------------------------------- defaults that depend on others

TEST(Defaults, AVitWithoutADatasetReadsFashionMnist) {
  EXPECT_EQ(parse("task: vit\n").data.dataset, "fashion-mnist");
  EXPECT_EQ(parse("task: vit\n").data.path, "");  // the Debian package's location
  EXPECT_EQ(parse("").data.dataset, "fortunes");
  EXPECT_EQ(parse("task: vit\ndata: {dataset: mnist, path: /m}\n").data.dataset, "mnist");
  EXPECT_EQ(parse("data: {dataset: mnist, path: /m}\n", {"task=vit"}).data.dataset, "mnist");
  EXPECT_EQ(parse("", {"task=vit"}).data.dataset, "fashion-mnist");
}

TEST(Defaults, TheAutomaticWarmUpIs100OrATenthOfAShorterRun) {
  for (const auto& [steps, warmup] : std::vector<std::pair<int64_t, int64_t>>{
           {1, 0}, {9, 0}, {10, 1}, {60, 6}, {99, 9}, {100, 100}, {250, 100}, {1000, 100}}) {
    const Config c = parse("train: {steps: " + std::to_string(steps) + "}\n");
    EXPECT_EQ(c.train.warmup, warmup) << steps;
    TrainConfig t;
    EXPECT_EQ(warmup_steps(t, steps), warmup) << steps;
  }
  // One that is set stays as it is.
  EXPECT_EQ(parse("train: {steps: 60, warmup: 0}\n").train.warmup, 0);
  EXPECT_EQ(parse("train: {steps: 60, warmup: 60}\n").train.warmup, 60);
  EXPECT_EQ(parse("train: {steps: 300, warmup: 30}\n").train.warmup, 30);
  TrainConfig t;
  t.warmup = 7;
  EXPECT_EQ(warmup_steps(t, 5000), 7);
  // -1, written out, is the automatic one.
  EXPECT_EQ(parse("train: {steps: 60, warmup: -1}\n").train.warmup, 6);
  // With epochs the run's length is known at train time: it stays automatic until then.
  EXPECT_EQ(parse("train: {epochs: 3}\n").train.warmup, kAutoWarmup);
  EXPECT_EQ(parse("train: {epochs: 3, warmup: 5}\n").train.warmup, 5);
  // Resolving changes no job id: a short run's id is that of its warm-up written out.
  EXPECT_EQ(config_hash(parse("train: {steps: 60}\n")),
            config_hash(parse("train: {steps: 60, warmup: 6}\n")));
  Config unresolved;
  unresolved.train.steps = 60;
  EXPECT_EQ(config_hash(unresolved), config_hash(parse("train: {steps: 60}\n")));
  EXPECT_NE(config_hash(parse("train: {steps: 60}\n")),
            config_hash(parse("train: {steps: 60, warmup: 0}\n")));
}

TEST(ParseError, KeyOfTheOtherTask) {
  expect_error(parse_error("seed: 1\nmodel:\n  patch: 8\n"), "cfg.yaml", 3, 3, "model.patch",
               "applies to vit only; the task is lm");
  // The task may come after the key.
  expect_error(parse_error("data: {seq_len: 64, dataset: mnist, path: /m}\ntask: vit\n"),
               "cfg.yaml", 1, 8, "data.seq_len", "applies to lm and s2s only; the task is vit");
  expect_error(parse_error("task: vit\ndata: {dataset: mnist, path: /m}\nmodel.vocab: 0\n"),
               "cfg.yaml", 3, 1, "model.vocab", "applies to lm and s2s only");
  // Even at its default value: the key has no meaning there.
  expect_error(parse_error("attention.allow_noncausal: false\ntask: vit\n"
                           "data.dataset: mnist\ndata.path: /m\n"),
               "cfg.yaml", 1, 1, "attention.allow_noncausal", "applies to lm and s2s only");
}

TEST(ParseS2s, T5DefaultsAndSitesAsASetOfNames) {
  const Config c = parse("task: s2s\n");
  EXPECT_EQ(c.attention.scale, "none");  // T5 does not scale scores
  EXPECT_FALSE(c.attention.rope);        // T5 has its relative position bias instead
  EXPECT_EQ(c.attention.sites, "decoder,cross");
  EXPECT_EQ(c.data.dataset, "fortunes");
  // Set explicitly, they stay; other tasks keep 1/sqrt(d_h) and RoPE.
  EXPECT_EQ(parse("task: s2s\nattention: {scale: inv_sqrt_dh, rope: true}\n").attention.scale,
            "inv_sqrt_dh");
  EXPECT_EQ(parse("task: lm\n").attention.scale, "inv_sqrt_dh");
  EXPECT_TRUE(parse("task: lm\n").attention.rope);
  // A YAML list or a comma-separated string, in any order: one canonical spelling, one job id.
  const std::string gqa = "task: s2s\nattention.variant: gqa\n";
  const Config listed = parse(gqa + "attention.sites: [cross, encoder]\n");
  const Config spelled = parse(gqa + "attention.sites: 'encoder, cross'\n");
  EXPECT_EQ(listed.attention.sites, "encoder,cross");
  EXPECT_EQ(config_hash(listed), config_hash(spelled));
  EXPECT_NE(config_hash(listed), config_hash(parse(gqa)));
  expect_error(parse_error("task: s2s\nattention.sites: [decoder, decodr]\n"), "cfg.yaml", 2, 18,
               "attention.sites", "did you mean decoder?");
  expect_error(parse_error("task: s2s\nattention.sites: [cross, cross]\n"), "cfg.yaml", 2, 18,
               "attention.sites", "cross is given twice");
}

TEST(ParseS2s, DataKeysOfTheOtherSourceAndFusedAreRefused) {
  expect_error(parse_error("task: s2s\ndata: {dataset: fortunes, target_len: 32}\n"), "cfg.yaml", 2,
               27, "data.target_len", "applies to data.dataset pairs");
  expect_error(parse_error("task: s2s\ndata: {dataset: pairs, path: p.tsv, mean_span: 2}\n"),
               "cfg.yaml", 2, 37, "data.mean_span", "not to pairs");
  expect_error(parse_error("task: s2s\ndata.dataset: mnist\ndata.path: /m\n"), "cfg.yaml", 2, 1,
               "data.dataset", "s2s datasets: fortunes, text, bin (span corruption), pairs");
  expect_error(parse_error("task: lm\ndata: {dataset: pairs, path: p.tsv}\n"), "cfg.yaml", 2, 8,
               "data.dataset", "lm datasets");
  expect_error(parse_error("task: s2s\nattention.path: fused\n"), "cfg.yaml", 2, 1,
               "attention.path", "relative position bias");
}

TEST(ParseS2s, FaithfulDynamicVariantsAreRefusedWhereTheyLeakTheDecodersFuture) {
  const std::string faithful = "task: s2s\nattention: {faithful: true, variant: ";
  // The decoder's self-attention: its allocation uses later target positions.
  EXPECT_NE(
      parse_error(faithful + "kdgqa, sites: decoder}\n").message().find("sees later target tokens"),
      std::string::npos);
  // Cross-attention allocates from the encoder's keys: the source, which is not the future.
  EXPECT_EQ(parse(faithful + "kdgqa, sites: cross}\n").attention.sites, "cross");
  EXPECT_EQ(parse(faithful + "dgqa, sites: 'encoder,cross'}\n").attention.variant, "dgqa");
  // pgqa's noise statistics span every target position at both decoder sites.
  EXPECT_NE(parse_error(faithful + "pgqa, sites: cross}\n").message().find("not causal"),
            std::string::npos);
  EXPECT_EQ(parse(faithful + "pgqa, sites: encoder}\n").attention.variant, "pgqa");
  EXPECT_TRUE(
      parse(faithful + "pgqa, sites: cross, allow_noncausal: true}\n").attention.allow_noncausal);
}

}  // namespace
}  // namespace ablate::runner
