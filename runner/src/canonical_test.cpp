#include "ablate/runner/canonical.h"

#include <gtest/gtest.h>

#include <charconv>
#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <type_traits>
#include <variant>

#include "ablate/runner/parse.h"
#include "ablate/runner/schema.h"

namespace ablate::runner {
namespace {

// An lm config with every field of the lm task changed from its default (task aside), and valid.
Config all_changed_lm() {
  Config c;
  c.seed = 7;
  c.data.dataset = "text";
  c.data.path = "/data/my corpus";  // needs quoting
  c.data.val_fraction = 0.2;
  c.data.val_path = "/data/val.bin";
  c.data.seq_len = 256;
  c.model.dim = 96;
  c.model.depth = 2;
  c.model.heads = 6;
  c.model.mlp_hidden = 192;
  c.model.vocab = 512;
  c.model.norm_eps = 1e-5;
  c.attention.variant = "gqkva";
  c.attention.kv_heads = 3;
  c.attention.q_heads = 2;
  c.attention.q_groups = 2;
  c.attention.kv_groups = 3;
  c.attention.qk_norm = true;
  c.attention.rope = false;
  c.attention.rope_theta = 500000.0;
  c.attention.bias = true;
  c.attention.faithful = true;
  c.attention.allow_noncausal = true;
  c.attention.min_per_group = 2;
  c.attention.eps = 1e-4;
  c.attention.ema_window = 50;
  c.attention.ema_beta = 0.25;
  c.attention.dgqa_mode = "diff";
  c.attention.noise = "uniform";
  c.attention.noise_scale = 0.05;
  c.attention.noise_target = "scores";
  c.attention.noise_at_eval = true;
  c.attention.weight_form = "row";
  c.attention.weight_init = "random";
  c.attention.path = "reference";
  c.attention.out_bias = true;
  c.attention.attn_dropout = 0.1;
  c.attention.out_dropout = 0.05;
  c.attention.scale = "none";
  c.model.mlp_dropout = 0.2;
  c.train.epochs = 2;
  c.train.eval_each_epoch = true;
  c.train.steps = 300;
  c.train.batch_size = 8;
  c.train.lr = 3e-4;
  c.train.min_lr = 3e-5;
  c.train.warmup = 30;
  c.train.weight_decay = 0.05;
  c.train.beta1 = 0.85;
  c.train.beta2 = 0.99;
  c.train.grad_clip = 0.5;
  c.train.eval_every = 50;
  c.train.eval_batches = 5;
  c.train.eval_subset = 100;
  c.train.checkpoint_every = 100;
  c.train.log_every = 5;
  c.train.device = "cuda:1";
  c.train.precision = "bf16";
  c.train.threads = 2;
  c.init.from = "runs/0123456789abcdef";
  c.init.convert = "mean_pool";
  return c;
}

Config all_changed_vit() {
  Config c = all_changed_lm();
  c.task = "vit";
  c.data.dataset = "cifar10";
  c.model.patch = 8;
  return c;
}

Config all_changed_s2s() {
  Config c = all_changed_lm();
  c.task = "s2s";
  c.data.dataset = "pairs";
  c.data.target_len = 48;
  c.model.mlp = "gated-gelu";
  c.model.tie_embeddings = false;
  c.model.rel_buckets = 16;
  c.model.rel_max_distance = 64;
  c.attention.sites = "encoder,cross";
  c.attention.path = "reference";
  c.train.decode_examples = 8;
  return c;
}

// The pairs fixture leaves the span-corruption keys at their defaults; this one changes them.
Config all_changed_s2s_span() {
  Config c = all_changed_s2s();
  c.data.dataset = "text";
  c.data.target_len = DataConfig().target_len;
  c.data.noise_density = 0.3;
  c.data.mean_span = 2.5;
  return c;
}

// Some valid-or-not value of `f` different from the current one, set through the table.
void change(const FieldInfo& f, Config& c) {
  std::visit(
      [&](auto ref) {
        auto& v = ref(c);
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, bool>) {
          v = !v;
        } else if constexpr (std::is_same_v<T, std::string>) {
          if (f.choices.empty()) {
            v += "x";
          } else {
            v = f.choices[0] == v ? f.choices[1] : f.choices[0];
          }
        } else {
          v = v + 1;
        }
      },
      f.ref);
}

TEST(Canonical, FormatFloat) {
  EXPECT_EQ(format_float(1e-3), "0.001");
  EXPECT_EQ(format_float(0.1), "0.1");
  EXPECT_EQ(format_float(1e-6), "1.0e-6");
  EXPECT_EQ(format_float(1.5e-12), "1.5e-12");
  EXPECT_EQ(format_float(3e-4), "3.0e-4");  // shorter than 0.0003
  EXPECT_EQ(format_float(10000.0), "10000.0");
  EXPECT_EQ(format_float(1e20), "1.0e+20");
  EXPECT_EQ(format_float(-1.0), "-1.0");
  EXPECT_EQ(format_float(0.0), "0.0");
  EXPECT_EQ(format_float(-0.0), "-0.0");
  EXPECT_EQ(format_float(2.0 / 3.0), "0.6666666666666666");
  EXPECT_EQ(format_float(INFINITY), ".inf");
  EXPECT_EQ(format_float(-INFINITY), "-.inf");
  EXPECT_EQ(format_float(NAN), ".nan");
}

TEST(Canonical, FormatFloatRoundTripsAndIsAFloatToYaml) {
  std::mt19937_64 rng(42);
  std::vector<double> values = {1e-3,        0.1,  0.3,  1.0 / 3, 5e-324, 1.7976931348623157e308,
                                123456789.0, 1e15, 1e16, 1e-5,    0.95};
  for (int i = 0; i < 2000; ++i) {
    const uint64_t bits = rng();
    double d;
    std::memcpy(&d, &bits, sizeof d);
    if (std::isfinite(d)) values.push_back(d);
  }
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (int i = 0; i < 2000; ++i) values.push_back(unit(rng));
  for (const double v : values) {
    const std::string s = format_float(v);
    ASSERT_TRUE(s.find('.') != std::string::npos) << s;  // what YAML 1.1 needs for a float
    const size_t e = s.find('e');
    if (e != std::string::npos) {
      ASSERT_TRUE(s[e + 1] == '+' || s[e + 1] == '-') << s;
      ASSERT_NE(s[e + 2], '0') << s;
    }
    double back = 0.0;
    const char* first = s.data() + (s[0] == '+');
    ASSERT_EQ(std::from_chars(first, s.data() + s.size(), back).ec, std::errc()) << s;
    ASSERT_EQ(back, v) << s;
  }
}

TEST(Canonical, QuoteOnlyWhereYamlNeedsIt) {
  for (const char* plain : {"mha", "fashion-mnist", "cuda:0", "/usr/share/games/fortunes",
                            "runs/abc_1", "./data", "a.b+c"}) {
    EXPECT_EQ(yaml_quote(plain), plain);
  }
  EXPECT_EQ(yaml_quote(""), "\"\"");
  EXPECT_EQ(yaml_quote("true"), "\"true\"");
  EXPECT_EQ(yaml_quote("yes"), "\"yes\"");
  EXPECT_EQ(yaml_quote("null"), "\"null\"");
  EXPECT_EQ(yaml_quote("~"), "\"~\"");
  EXPECT_EQ(yaml_quote("123"), "\"123\"");
  EXPECT_EQ(yaml_quote("1e5"), "\"1e5\"");
  EXPECT_EQ(yaml_quote("-x"), "\"-x\"");
  EXPECT_EQ(yaml_quote("a b"), "\"a b\"");
  EXPECT_EQ(yaml_quote("a\"b\\c\nd\x01"), "\"a\\\"b\\\\c\\nd\\x01\"");
}

TEST(Canonical, AnyStringSurvivesTheRoundTrip) {
  for (const std::string s : {"",
                              "plain",
                              "a: b",
                              "# c",
                              "x #y",
                              "x\ty",
                              "line\nbreak",
                              "\xc3\xbcnicode",
                              "null",
                              "~",
                              "true",
                              "No",
                              "off",
                              "[a]",
                              "{b}",
                              "'q'",
                              "\"dq\"",
                              "&anchor",
                              "*alias",
                              "!tag",
                              "%x",
                              "@x",
                              "`x",
                              "|",
                              ">",
                              "?",
                              "- x",
                              "-",
                              ":",
                              "a:",
                              " lead",
                              "trail ",
                              "1.5",
                              "0x1F",
                              ".inf",
                              "back\\slash",
                              "tab\tand\x7f",
                              "cuda:0"}) {
    Config c;
    c.data.path = s;
    const std::string yaml = to_yaml(c);
    Config back;
    ASSERT_NO_THROW(back = parse_config(yaml, "round-trip")) << yaml;
    EXPECT_EQ(back.data.path, s) << "quoted as " << yaml_quote(s);
  }
}

TEST(Canonical, ToYamlIsNestedAndSortedAtEveryLevel) {
  const std::string yaml = to_yaml(Config());
  std::istringstream in(yaml);
  std::string line, last_top, last_inner;
  std::set<std::string> tops;
  while (std::getline(in, line)) {
    if (line.rfind("  ", 0) == 0) {
      const std::string key = line.substr(2, line.find(':') - 2);
      EXPECT_LT(last_inner, key) << "under " << last_top;
      last_inner = key;
    } else {
      const std::string key = line.substr(0, line.find(':'));
      EXPECT_LT(last_top, key);
      last_top = key;
      last_inner.clear();
      tops.insert(key);
    }
  }
  EXPECT_EQ(tops,
            (std::set<std::string>{"attention", "data", "init", "model", "seed", "task", "train"}));
  EXPECT_EQ(
      yaml.rfind("attention:\n  allow_noncausal: false\n  attn_dropout: 0.0\n  bias: false\n", 0),
      0u)
      << yaml;
  EXPECT_NE(yaml.find("\nseed: 0\ntask: lm\ntrain:\n  batch_size: 32\n"), std::string::npos);
  EXPECT_NE(yaml.find("\n  lr: 0.001\n"), std::string::npos);
  EXPECT_NE(yaml.find("\n  rope_theta: 10000.0\n"), std::string::npos);
  EXPECT_NE(yaml.find("\n  norm_eps: 1.0e-6\n"), std::string::npos);
  EXPECT_NE(yaml.find("\n  path: \"\"\n"), std::string::npos);
}

TEST(Canonical, ToYamlHoldsExactlyTheFieldsOfTheTask) {
  for (const Config& c : {Config(), all_changed_vit(), all_changed_s2s()}) {
    const std::string yaml = to_yaml(c);
    size_t lines = 0;
    for (const char ch : yaml) lines += ch == '\n';
    size_t expected = schema_sections().size();  // one header line per section
    for (const auto& f : schema()) expected += f.applies_to(c.task);
    EXPECT_EQ(lines, expected) << yaml;
  }
  EXPECT_EQ(to_yaml(Config()).find("patch:"), std::string::npos);
  EXPECT_NE(to_yaml(all_changed_vit()).find("\n  patch: 8\n"), std::string::npos);
  EXPECT_EQ(to_yaml(all_changed_vit()).find("seq_len"), std::string::npos);
}

TEST(Canonical, NumbersAreNormalised) {
  const std::string a = to_yaml(parse_config("train.lr: 1e-3", "a"));
  EXPECT_EQ(a, to_yaml(parse_config("train.lr: 0.001", "b")));
  EXPECT_EQ(a, to_yaml(parse_config("train:\n  lr: 1.0e-3\n", "c")));
  EXPECT_EQ(a, to_yaml(parse_config("train: {lr: 0.0010}", "d")));
  Config defaults;
  defaults.train.warmup = 100;  // resolved by parse_config (resolve_defaults)
  EXPECT_EQ(a, to_yaml(defaults));
  EXPECT_EQ(to_yaml(parse_config("train.grad_clip: 2", "e")),
            to_yaml(parse_config("train.grad_clip: 2.0", "f")));
  EXPECT_EQ(to_yaml(parse_config("seed: +5", "g")), to_yaml(parse_config("seed: 5", "h")));
}

TEST(Canonical, RoundTripWithEveryFieldChanged) {
  const Config defaults;
  for (const Config& c :
       {all_changed_lm(), all_changed_vit(), all_changed_s2s(), all_changed_s2s_span()}) {
    validate(c);  // the fixture itself is a valid config
    const bool span = c.task == "s2s" && c.data.dataset != "pairs";
    for (const auto& f : schema()) {
      // Each s2s fixture leaves the other data source's keys at their defaults.
      const bool other_source =
          c.task == "s2s" && (span ? f.key == "data.target_len"
                                   : f.key == "data.noise_density" || f.key == "data.mean_span");
      if (f.key != "task" && f.applies_to(c.task) && !other_source) {
        EXPECT_NE(format_value(f, c), format_value(f, defaults)) << f.key << " is unchanged";
      }
    }
    const Config back = parse_config(to_yaml(c), "round-trip");
    EXPECT_TRUE(back == c) << to_yaml(c) << "\nread back as\n" << to_yaml(back);
    for (const auto& f : schema()) {
      if (f.applies_to(c.task)) {
        EXPECT_EQ(format_value(f, back), format_value(f, c)) << f.key;
      }
    }
    EXPECT_EQ(to_yaml(back), to_yaml(c));
  }
  Config resolved;
  resolved.train.warmup = 100;
  EXPECT_TRUE(parse_config(to_yaml(Config()), "defaults") == resolved);
  EXPECT_TRUE(parse_config(to_yaml(resolved), "defaults") == resolved);
}

TEST(Canonical, EqualityFollowsTheCanonicalForm) {
  Config a, b;
  EXPECT_TRUE(a == b);
  EXPECT_FALSE(a != b);
  b.train.lr = 0.002;
  EXPECT_FALSE(a == b);
  EXPECT_TRUE(a != b);
  b = a;
  b.data.path = "/elsewhere";  // not semantic, but part of the config
  EXPECT_TRUE(a != b);
  b = a;
  b.model.patch = 16;  // a vit field: no meaning in an lm config
  EXPECT_TRUE(a == b);
}

TEST(Canonical, SemanticTextLeavesOutPathsDevicesAndCadence) {
  const std::string text = canonical_semantic_text(all_changed_lm());
  for (const char* absent : {"\n  device:", "\n  threads:", "\n  log_every:",
                             "\n  checkpoint_every:", "\n  val_path:", "\n  from:", "my corpus"}) {
    EXPECT_EQ(text.find(absent), std::string::npos) << absent;
  }
  EXPECT_NE(text.find("\n  path: reference\n"), std::string::npos);  // attention.path is semantic
  EXPECT_NE(text.find("\n  convert: mean_pool\n"), std::string::npos);
}

TEST(Canonical, HashIsSixteenLowercaseHexDigitsAndStable) {
  const std::string h = config_hash(Config());
  ASSERT_EQ(h.size(), 16u);
  for (const char ch : h) EXPECT_TRUE((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')) << h;
  EXPECT_EQ(config_hash(Config()), h);
  EXPECT_EQ(config_hash(parse_config("seed: 0\ntrain: {lr: 1.0e-3}\n", "x")), h);
  // Pinned: job ids of existing databases depend on it; this is the id the default config had
  // when job ids were first issued. A field added since must be flagged kAddedLater (left out of
  // the hashed text at its default) and a renamed key must hash as its old line, or this fails.
  EXPECT_EQ(h, "0fa5769508cabdee");
  EXPECT_NE(config_hash(all_changed_lm()), config_hash(all_changed_vit()));
}

// train.precision replaced train.bf16: the two old values hash as the old lines, in the old place
// (so ids from before the rename hold), the new value as itself; all three are distinct jobs.
TEST(Canonical, PrecisionHashesAsTheBf16KeyItReplaced) {
  Config c;
  const std::string text = canonical_semantic_text(c);
  EXPECT_NE(text.find("\n  beta2: 0.95\n  bf16: true\n  eval_batches"), std::string::npos) << text;
  EXPECT_EQ(text.find("precision"), std::string::npos) << text;
  c.train.precision = "fp32";
  EXPECT_NE(canonical_semantic_text(c).find("  bf16: false\n"), std::string::npos);
  const std::string fp32 = config_hash(c);
  c.train.precision = "bf16";
  EXPECT_NE(canonical_semantic_text(c).find("  precision: bf16\n"), std::string::npos);
  const std::string bf16 = config_hash(c);
  EXPECT_NE(fp32, bf16);
  EXPECT_NE(fp32, config_hash(Config()));
  EXPECT_NE(bf16, config_hash(Config()));
  // config.yaml (to_yaml) shows the key as it is now.
  EXPECT_NE(to_yaml(c).find("  precision: bf16\n"), std::string::npos);
  EXPECT_EQ(to_yaml(c).find("bf16: "), std::string::npos);
}

// Fields added after job ids were first issued leave every earlier id as it was while at their
// defaults, and change it when set; train.epochs makes train.steps irrelevant.
TEST(Canonical, LaterFieldsAtTheirDefaultsKeepEarlierIds) {
  const std::string id = config_hash(Config());
  for (const auto& f : schema()) {
    if (f.hashed_at_default) continue;
    EXPECT_EQ(canonical_semantic_text(Config()).find("\n  " + f.name() + ":"), std::string::npos)
        << f.key;
    Config c;
    change(f, c);
    EXPECT_NE(config_hash(c), id) << f.key;
  }
  Config a, b;
  a.train.epochs = b.train.epochs = 3;
  b.train.steps = 77;
  EXPECT_EQ(config_hash(a), config_hash(b));
  EXPECT_NE(config_hash(a), id);
}

// The variant under which an attention field matters (without_ignored_fields resets it for the
// others); "" for fields every variant uses.
std::string variant_using(const std::string& key) {
  const std::map<std::string, std::string> users = {
      {"attention.kv_heads", "gqa"},      {"attention.q_heads", "gkva"},
      {"attention.q_groups", "gqkva"},    {"attention.kv_groups", "gqkva"},
      {"attention.faithful", "kdgqa"},    {"attention.min_per_group", "dgqa"},
      {"attention.eps", "kdgqa"},         {"attention.ema_window", "dgqa"},
      {"attention.ema_beta", "dgqa"},     {"attention.dgqa_mode", "dgqa"},
      {"attention.noise", "pgqa"},        {"attention.noise_scale", "pgqa"},
      {"attention.noise_target", "pgqa"}, {"attention.noise_at_eval", "pgqa"},
      {"attention.weight_form", "wgqa"},  {"attention.weight_init", "wgqa"}};
  auto it = users.find(key);
  return it == users.end() ? "" : it->second;
}

TEST(Canonical, FieldsTheVariantIgnoresAreNotPartOfTheId) {
  // An MHA pretrain shared by arms that differ in kv_heads, ema_window or noise_scale.
  Config mha;
  mha.attention.variant = "mha";
  for (const auto& f : schema()) {
    const std::string variant = variant_using(f.key);
    if (variant.empty() || variant == "mha") continue;
    Config c = mha;
    change(f, c);
    EXPECT_NE(to_yaml(c), to_yaml(mha)) << f.key;  // the config file keeps what was written
    EXPECT_EQ(config_hash(c), config_hash(mha)) << f.key;
  }
  // Robust-only knobs do not matter in faithful mode.
  Config faithful;
  faithful.attention.variant = "kdgqa";
  faithful.attention.faithful = true;
  Config other = faithful;
  other.attention.min_per_group = 2;
  other.attention.eps = 0.5;
  EXPECT_EQ(config_hash(other), config_hash(faithful));
  // s2s: an mha model is mha at every site, whichever sites are named (a shared pretrain stage).
  Config s2s;
  s2s.task = "s2s";
  s2s.attention.variant = "mha";
  Config sites = s2s;
  sites.attention.sites = "encoder,decoder,cross";
  EXPECT_EQ(config_hash(sites), config_hash(s2s));
  s2s.attention.variant = sites.attention.variant = "gqa";
  EXPECT_NE(config_hash(sites), config_hash(s2s));
}

TEST(Canonical, HashIgnoresEveryNonSemanticField) {
  for (const Config& base : {Config(), all_changed_lm(), all_changed_vit()}) {
    for (const auto& f : schema()) {
      if (f.semantic || !f.applies_to(base.task)) continue;
      Config c = base;
      change(f, c);
      EXPECT_NE(to_yaml(c), to_yaml(base)) << f.key;
      EXPECT_EQ(config_hash(c), config_hash(base)) << f.key;
    }
  }
}

TEST(Canonical, HashChangesWithEverySemanticField) {
  for (const Config& original : {Config(), all_changed_lm(), all_changed_vit()}) {
    std::set<std::string> hashes = {config_hash(original)};
    size_t changed = 0;
    for (const auto& f : schema()) {
      if (!f.semantic || !f.applies_to(original.task) || f.key == "task") continue;
      Config base = original;
      const std::string variant = variant_using(f.key);
      if (!variant.empty() && base.attention.variant != variant) {
        base.attention.variant = variant;
        base.attention.faithful = false;
      }
      // train.steps matters only when train.epochs does not set the length.
      const bool steps_without_epochs = f.key == "train.steps" && base.train.epochs > 0;
      if (steps_without_epochs) {
        base.train.epochs = 0;
        base.train.eval_each_epoch = false;
      }
      Config c = base;
      change(f, c);
      EXPECT_NE(config_hash(c), config_hash(base)) << f.key;
      if (variant.empty() && !steps_without_epochs) {
        hashes.insert(config_hash(c));
        ++changed;
      }
    }
    EXPECT_EQ(hashes.size(), changed + 1);  // and no two single changes collide
  }
  Config vit = Config();
  vit.task = "vit";
  EXPECT_NE(config_hash(vit), config_hash(Config()));
  // A semantic field of the other task does not matter.
  Config lm = Config();
  lm.model.patch = 16;
  EXPECT_EQ(config_hash(lm), config_hash(Config()));
}

}  // namespace
}  // namespace ablate::runner
