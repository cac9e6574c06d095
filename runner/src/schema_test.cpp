#include "ablate/runner/schema.h"

#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <sstream>
#include <type_traits>
#include <variant>

#include "ablate/runner/canonical.h"

namespace ablate::runner {
namespace {

std::set<std::string> keys_where(bool (*pred)(const FieldInfo&)) {
  std::set<std::string> out;
  for (const auto& f : schema()) {
    if (pred(f)) out.insert(f.key);
  }
  return out;
}

// Sets `field` to some valid value different from its current one, through the table.
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
          const T up = v + 1;
          if (static_cast<double>(up) <= f.max) {
            v = up;
          } else {
            // A narrow range such as [0, 0.99]. Only here: the middle of an unbounded integer
            // range (max inf) does not fit T, and converting it would be undefined.
            const T mid = static_cast<T>((f.min + f.max) / 2);
            v = mid != v ? mid : static_cast<T>(f.min);
          }
        }
      },
      f.ref);
}

TEST(Schema, ListsEveryFieldOfConfigOnceWithADistinctAccessor) {
  // 72 = the fields of config.h: task, seed, 8 data, 12 model, 28 attention, 20 train, 2 init.
  ASSERT_EQ(schema().size(), 72u);
  std::set<std::string> keys;
  for (const auto& f : schema()) EXPECT_TRUE(keys.insert(f.key).second) << f.key;

  // Changing one field through its accessor changes that field's text and no other, so no two
  // rows share a member and each key reaches the member it names (checked by round trips in
  // canonical_test).
  const Config defaults;
  for (const auto& f : schema()) {
    Config c;
    change(f, c);
    for (const auto& g : schema()) {
      const bool changed = format_value(g, c) != format_value(g, defaults);
      EXPECT_EQ(changed, &g == &f)
          << "changing " << f.key << " via the table; looking at " << g.key;
    }
  }
}

TEST(Schema, KeysNameTheirSectionAndDocsAreOneLine) {
  const std::vector<std::string> sections = {"data", "model", "attention", "train", "init"};
  EXPECT_EQ(schema_sections(), sections);
  for (const auto& f : schema()) {
    const std::string s = f.section();
    EXPECT_TRUE(s.empty() ? (f.key == "task" || f.key == "seed") : is_section(s)) << f.key;
    EXPECT_EQ(s.empty() ? f.key : s + "." + f.name(), f.key);
    EXPECT_FALSE(f.doc.empty()) << f.key;
    EXPECT_EQ(f.doc.find('\n'), std::string::npos) << f.key;
  }
  EXPECT_FALSE(is_section("task"));
  EXPECT_FALSE(is_section("attention.variant"));
}

TEST(Schema, TypesFollowTheStructFields) {
  EXPECT_EQ(find_field("seed")->type(), FieldType::kInt);
  EXPECT_EQ(find_field("train.lr")->type(), FieldType::kFloat);
  EXPECT_EQ(find_field("attention.rope")->type(), FieldType::kBool);
  EXPECT_EQ(find_field("data.dataset")->type(), FieldType::kString);
  EXPECT_STREQ(type_name(FieldType::kInt), "int");
  EXPECT_STREQ(type_name(FieldType::kFloat), "float");
  EXPECT_STREQ(type_name(FieldType::kBool), "bool");
  EXPECT_STREQ(type_name(FieldType::kString), "string");
  EXPECT_EQ(find_field("attention.kv_head"), nullptr);
  EXPECT_EQ(find_field("attention"), nullptr);
}

TEST(Schema, NonSemanticFieldsAreExactlyPathsDevicesAndCadence) {
  const std::set<std::string> expected = {
      "data.path",       "data.val_path",         "init.from", "train.device", "train.threads",
      "train.log_every", "train.checkpoint_every"};
  EXPECT_EQ(keys_where([](const FieldInfo& f) { return !f.semantic; }), expected);
}

TEST(Schema, TaskSpecificFields) {
  const std::set<std::string> lm_and_s2s = {"data.seq_len", "data.val_path", "model.vocab",
                                            "attention.allow_noncausal"};
  const std::set<std::string> vit = {"model.patch"};
  const std::set<std::string> s2s = {
      "data.target_len",      "data.noise_density", "data.mean_span",         "model.mlp",
      "model.tie_embeddings", "model.rel_buckets",  "model.rel_max_distance", "attention.sites",
      "train.decode_examples"};
  EXPECT_EQ(keys_where([](const FieldInfo& f) { return f.tasks == (kTaskLm | kTaskS2s); }),
            lm_and_s2s);
  EXPECT_EQ(keys_where([](const FieldInfo& f) { return f.tasks == kTaskVit; }), vit);
  EXPECT_EQ(keys_where([](const FieldInfo& f) { return f.tasks == kTaskS2s; }), s2s);
  EXPECT_TRUE(find_field("model.patch")->applies_to("vit"));
  EXPECT_FALSE(find_field("model.patch")->applies_to("lm"));
  EXPECT_FALSE(find_field("model.patch")->applies_to("s2s"));
  EXPECT_TRUE(find_field("model.dim")->applies_to("lm"));
  EXPECT_TRUE(find_field("model.dim")->applies_to("vit"));
  EXPECT_TRUE(find_field("model.dim")->applies_to("s2s"));
  EXPECT_EQ(scope_name(kTaskLm | kTaskS2s), "lm and s2s");
  EXPECT_EQ(scope_name(kAllTasks), "all tasks");
}

TEST(Schema, ListFieldsAreCanonicalSetsOfChoices) {
  const FieldInfo& sites = *find_field("attention.sites");
  ASSERT_TRUE(sites.list);
  std::string problem;
  EXPECT_EQ(canonical_list(sites, "cross, encoder", problem), "encoder,cross");
  EXPECT_EQ(problem, "");
  EXPECT_EQ(canonical_list(sites, "decoder", problem), "decoder");
  canonical_list(sites, "decoder,decoder", problem);
  EXPECT_NE(problem.find("decoder is given twice"), std::string::npos) << problem;
  problem.clear();
  canonical_list(sites, "decodr", problem);
  EXPECT_NE(problem.find("did you mean decoder?"), std::string::npos) << problem;
  problem.clear();
  canonical_list(sites, "", problem);
  EXPECT_NE(problem.find("unknown value"), std::string::npos) << problem;
}

TEST(Schema, DefaultsAreWithinTheirRangesAndChoices) {
  const Config defaults;
  for (const auto& f : schema()) EXPECT_EQ(value_error(f, defaults), "") << f.key;
}

TEST(Schema, EnumChoices) {
  const std::vector<std::string> variants = {"mha",   "mqa",   "gqa",  "mkva", "gkva",
                                             "gqkva", "kdgqa", "dgqa", "pgqa", "wgqa"};
  EXPECT_EQ(find_field("attention.variant")->choices, variants);
  const std::vector<std::string> datasets = {
      "fortunes", "text", "bin", "fashion-mnist", "mnist", "idx", "cifar10", "cifar100", "pairs"};
  EXPECT_EQ(find_field("data.dataset")->choices, datasets);
  for (const auto& f : schema()) {
    if (f.type() != FieldType::kString) {
      EXPECT_TRUE(f.choices.empty()) << f.key;
    }
  }
  EXPECT_TRUE(find_field("data.path")->choices.empty());
  EXPECT_TRUE(find_field("init.from")->choices.empty());
}

TEST(Schema, ValueErrorChecksRanges) {
  Config c;
  const FieldInfo& kv = *find_field("attention.kv_heads");
  c.attention.kv_heads = -1;
  EXPECT_EQ(value_error(kv, c), "-1 is out of range; expected a value in [0, 4096]");
  c.attention.kv_heads = 4096;
  EXPECT_EQ(value_error(kv, c), "");
  c.attention.kv_heads = 4097;
  EXPECT_NE(value_error(kv, c), "");

  const FieldInfo& steps = *find_field("train.steps");
  c.train.steps = 0;
  EXPECT_EQ(value_error(steps, c), "0 is out of range; expected >= 1");
  c.train.steps = int64_t{1} << 40;
  EXPECT_EQ(value_error(steps, c), "");

  const FieldInfo& lr = *find_field("train.lr");
  c.train.lr = 0.0;
  EXPECT_EQ(value_error(lr, c), "0.0 is out of range; expected a value in [1.0e-12, 10.0]");
  c.train.lr = std::nan("");
  EXPECT_NE(value_error(lr, c), "");
  c.train.lr = 1e-12;
  EXPECT_EQ(value_error(lr, c), "");

  const FieldInfo& vf = *find_field("data.val_fraction");
  c.data.val_fraction = 0.0;
  EXPECT_NE(value_error(vf, c), "");
  c.data.val_fraction = 0.9;
  EXPECT_EQ(value_error(vf, c), "");
  c.data.val_fraction = 0.91;
  EXPECT_NE(value_error(vf, c), "");
}

TEST(Schema, ValueErrorChecksChoicesAndSuggests) {
  Config c;
  const FieldInfo& variant = *find_field("attention.variant");
  c.attention.variant = "gqq";
  EXPECT_EQ(value_error(variant, c),
            "unknown value gqq; expected one of mha, mqa, gqa, mkva, gkva, gqkva, kdgqa, dgqa, "
            "pgqa, wgqa; did you mean gqa?");
  c.attention.variant = "transformer";
  EXPECT_EQ(value_error(variant, c).find("did you mean"), std::string::npos);
}

TEST(Schema, DeviceAcceptsCudaWithAnIndex) {
  const FieldInfo& device = *find_field("train.device");
  for (const char* ok : {"auto", "cpu", "cuda", "cuda:0", "cuda:12"}) {
    Config c;
    c.train.device = ok;
    EXPECT_EQ(value_error(device, c), "") << ok;
  }
  for (const char* bad : {"cuda:", "cuda:x", "cuda:1a", "cuda0", "gpu", "cuda:N", "CPU", ""}) {
    Config c;
    c.train.device = bad;
    EXPECT_NE(value_error(device, c), "") << bad;
  }
}

TEST(Schema, EditDistance) {
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
  EXPECT_EQ(edit_distance("", "abc"), 3u);
  EXPECT_EQ(edit_distance("abc", ""), 3u);
  EXPECT_EQ(edit_distance("same", "same"), 0u);
  EXPECT_EQ(edit_distance("kv_haeds", "kv_heads"), 1u);  // a transposition counts once
  EXPECT_EQ(edit_distance("ab", "ba"), 1u);
}

TEST(Schema, NearestKey) {
  EXPECT_EQ(nearest_key("attention.kv_head"), "attention.kv_heads");
  EXPECT_EQ(nearest_key("atention.variant"), "attention.variant");
  EXPECT_EQ(nearest_key("atention"), "attention");
  EXPECT_EQ(nearest_key("train.learning_rat"), "");  // too far from train.lr to be a typo
  EXPECT_EQ(nearest_key("model.head"), "model.heads");
  EXPECT_EQ(nearest_key("sed"), "seed");
  EXPECT_EQ(nearest_key("zzzzqqq"), "");
  EXPECT_EQ(nearest_word("gqq", {"mha", "gqa"}), "gqa");
  EXPECT_EQ(nearest_word("x", {}), "");
}

TEST(Schema, AllowedText) {
  EXPECT_EQ(find_field("seed")->allowed_text(), ">= 0");
  EXPECT_EQ(find_field("model.heads")->allowed_text(), "[1, 4096]");
  EXPECT_EQ(find_field("data.val_fraction")->allowed_text(), "[1.0e-4, 0.9]");
  EXPECT_EQ(find_field("attention.rope")->allowed_text(), "true|false");
  EXPECT_EQ(find_field("attention.dgqa_mode")->allowed_text(), "ema|diff");
  EXPECT_EQ(find_field("data.path")->allowed_text(), "");
}

// The line of schema_text that describes `key`, or "".
std::string line_of(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string first;
    words >> first;
    if (first == key) return line;
  }
  return "";
}

TEST(Schema, TextListsEveryKeyWithTypeDefaultAllowedAndDoc) {
  const std::string text = schema_text();
  const Config defaults;
  for (const auto& f : schema()) {
    const std::string line = line_of(text, f.key);
    ASSERT_NE(line, "") << f.key;
    std::istringstream words(line);
    std::string key, type, value;
    words >> key >> type >> value;
    EXPECT_EQ(type, type_name(f.type())) << line;
    EXPECT_EQ(value, format_value(f, defaults)) << line;
    EXPECT_NE(line.find(f.allowed_text()), std::string::npos) << line;
    // The doc is on the key's line, or on the next one after a long list of choices.
    const size_t at = text.find(line);
    EXPECT_NE(text.find(f.doc, at), std::string::npos) << f.key;
    EXPECT_LT(text.find(f.doc, at), text.find('\n', text.find('\n', at) + 1)) << f.key;
  }
  for (const char* header :
       {"\ndata:\n", "\nmodel:\n", "\nattention:\n", "\ntrain:\n", "\ninit:\n"}) {
    EXPECT_NE(text.find(header), std::string::npos) << header;
  }
  EXPECT_NE(line_of(text, "model.patch").find("(vit only)"), std::string::npos);
  EXPECT_NE(line_of(text, "train.device").find("not in the job id"), std::string::npos);
  EXPECT_EQ(line_of(text, "model.dim").find("not in the job id"), std::string::npos);
}

TEST(Schema, TextColumnsAreAligned) {
  const std::string text = schema_text();
  const std::string seed = line_of(text, "seed");
  const std::string kv = line_of(text, "attention.kv_heads");
  const std::string lr = line_of(text, "train.lr");
  EXPECT_EQ(seed.find(" int "), kv.find(" int "));
  EXPECT_EQ(seed.find(">= 0"), kv.find("[0, 4096]"));
  EXPECT_EQ(seed.find("fixes data order"), lr.find("peak learning rate"));
  EXPECT_EQ(kv.find(" 0 "), lr.find(" 0.001 "));
}

TEST(Schema, TextFiltersByTask) {
  const std::string lm = schema_text("lm");
  const std::string vit = schema_text("vit");
  for (const auto& f : schema()) {
    EXPECT_EQ(line_of(lm, f.key) != "", f.applies_to("lm")) << f.key;
    EXPECT_EQ(line_of(vit, f.key) != "", f.applies_to("vit")) << f.key;
  }
  EXPECT_EQ(line_of(lm, "model.patch"), "");
  EXPECT_NE(line_of(lm, "data.seq_len"), "");
  EXPECT_NE(line_of(vit, "model.patch"), "");
  EXPECT_EQ(line_of(vit, "data.seq_len"), "");
  // Filtered by task, a task's own key needs no "(lm only)" note.
  EXPECT_EQ(line_of(lm, "data.seq_len").find("lm only"), std::string::npos);
  EXPECT_NE(line_of(schema_text(), "data.seq_len").find("(lm and s2s only"), std::string::npos);
  EXPECT_NE(line_of(schema_text(), "model.patch").find("(vit only"), std::string::npos);
  // s2s defaults follow T5: no score scaling, no RoPE.
  const std::string s2s = schema_text("s2s");
  EXPECT_NE(line_of(s2s, "attention.scale").find(" none "), std::string::npos) << s2s;
  EXPECT_NE(line_of(s2s, "attention.sites").find("decoder,cross"), std::string::npos) << s2s;
  EXPECT_EQ(line_of(s2s, "model.patch"), "");
}

}  // namespace
}  // namespace ablate::runner
