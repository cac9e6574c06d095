#include "ablate/runner/schema.h"

#include <algorithm>
#include <limits>
#include <sstream>

#include "ablate/runner/canonical.h"

namespace ablate::runner {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Row flags.
constexpr int kNotSemantic = 1;
constexpr int kAddedLater = 8;  // see FieldInfo::hashed_at_default
constexpr int kList = 16;       // see FieldInfo::list
// The tasks a field applies to; none of these flags: every task.
constexpr int kLm = 32;
constexpr int kVit = 64;
constexpr int kS2s = 128;

// The key and the accessor of a Config member, from one spelling, so they cannot disagree:
// ABLATE_FIELD(model.dim) -> "model.dim", a function returning c.model.dim by reference.
// clang-format off
#define ABLATE_FIELD(member) #member, +[](Config& c) -> decltype((c.member)) { return c.member; }
// clang-format on

FieldInfo row(const char* key, FieldRef ref, const char* doc, int flags) {
  FieldInfo f;
  f.key = key;
  f.ref = ref;
  f.doc = doc;
  f.semantic = (flags & kNotSemantic) == 0;
  f.hashed_at_default = (flags & kAddedLater) == 0;
  f.list = (flags & kList) != 0;
  const unsigned tasks = ((flags & kLm) ? kTaskLm : 0u) | ((flags & kVit) ? kTaskVit : 0u) |
                         ((flags & kS2s) ? kTaskS2s : 0u);
  f.tasks = tasks == 0 ? kAllTasks : tasks;
  return f;
}

FieldInfo number(const char* key, FieldRef ref, double min, double max, const char* doc,
                 int flags = 0) {
  FieldInfo f = row(key, ref, doc, flags);
  f.min = min;
  f.max = max;
  return f;
}

FieldInfo boolean(const char* key, BoolRef ref, const char* doc, int flags = 0) {
  return row(key, ref, doc, flags);
}

FieldInfo text(const char* key, StringRef ref, std::vector<std::string> choices, const char* doc,
               int flags = 0) {
  FieldInfo f = row(key, ref, doc, flags);
  f.choices = std::move(choices);
  return f;
}

std::vector<FieldInfo> make_schema() {
  return {
      text(ABLATE_FIELD(task), {"lm", "vit", "s2s"},
           "language model, vision transformer or T5-style encoder-decoder"),
      number(ABLATE_FIELD(seed), 0, kInf, "fixes data order and initialisation"),

      text(ABLATE_FIELD(data.dataset),
           {"fortunes", "text", "bin", "fashion-mnist", "mnist", "idx", "cifar10", "cifar100",
            "pairs"},
           "lm: fortunes text bin; vit: fashion-mnist mnist idx cifar10 cifar100; s2s: fortunes "
           "text bin (span corruption) pairs (default: fortunes for lm and s2s, fashion-mnist "
           "for vit)"),
      text(ABLATE_FIELD(data.path), {},
           "file or folder; empty: the dataset's Debian package location", kNotSemantic),
      number(ABLATE_FIELD(data.val_fraction), 1e-4, 0.9,
             "held-out share: whole documents (text) or one block at the end (bin)"),
      text(ABLATE_FIELD(data.val_path), {},
           "bin: a separate validation shard (empty: split the training shards)",
           kNotSemantic | kLm | kS2s),
      number(ABLATE_FIELD(data.seq_len), 1, 1 << 20,
             "lm: tokens per training sequence; s2s: raw tokens per span-corruption example, or "
             "source tokens kept of a pair",
             kLm | kS2s),
      number(ABLATE_FIELD(data.target_len), 2, 1 << 20,
             "pairs: target tokens kept, eos included (longer targets are cut)", kS2s),
      number(ABLATE_FIELD(data.noise_density), 0.01, 0.9,
             "span corruption: share of tokens masked (T5: 0.15)", kS2s),
      number(ABLATE_FIELD(data.mean_span), 1.0, 1000.0,
             "span corruption: mean masked span length (T5: 3)", kS2s),

      number(ABLATE_FIELD(model.dim), 1, 1 << 16, "model width d"),
      number(ABLATE_FIELD(model.depth), 1, 1024, "transformer blocks"),
      number(ABLATE_FIELD(model.heads), 1, 4096, "H, query-head outputs per attention layer"),
      number(ABLATE_FIELD(model.mlp_hidden), 0, 1 << 20,
             "MLP hidden width; 0 = lm: 8/3 d rounded up to 64, vit: 4 d"),
      number(ABLATE_FIELD(model.vocab), 0, 1 << 24,
             "vocabulary size; 0 = 256 for bytes (s2s: 384, with pad, eos and sentinels), 50304 "
             "for bin shards",
             kLm | kS2s),
      number(ABLATE_FIELD(model.patch), 1, 1024,
             "patch side in pixels (must divide the image side)", kVit),
      number(ABLATE_FIELD(model.norm_eps), 1e-12, 1.0, "epsilon of RMSNorm / LayerNorm"),
      number(ABLATE_FIELD(model.mlp_dropout), 0.0, 0.99,
             "dropout in the MLP, after the activation and after its output (training)",
             kAddedLater),
      text(ABLATE_FIELD(model.mlp), {"relu", "gated-gelu"},
           "MLP: relu (T5) or gated-gelu (T5 v1.1)", kS2s),
      boolean(ABLATE_FIELD(model.tie_embeddings),
              "logits by the shared embedding, scaled by dim^-1/2 as T5 does", kS2s),
      number(ABLATE_FIELD(model.rel_buckets), 2, 1024,
             "relative position buckets per stack (T5: 32)", kS2s),
      number(ABLATE_FIELD(model.rel_max_distance), 2, 1 << 20,
             "distance at which the last relative position bucket starts (T5: 128)", kS2s),

      text(ABLATE_FIELD(attention.variant),
           {"mha", "mqa", "gqa", "mkva", "gkva", "gqkva", "kdgqa", "dgqa", "pgqa", "wgqa"},
           "the attention variant (docs/design.md section 4)"),
      number(ABLATE_FIELD(attention.kv_heads), 0, 4096,
             "G for gqa kdgqa dgqa pgqa wgqa; 0 = heads"),
      number(ABLATE_FIELD(attention.q_heads), 0, 4096, "g for gkva (required there)"),
      number(ABLATE_FIELD(attention.q_groups), 0, 4096, "gq for gqkva (required there)"),
      number(ABLATE_FIELD(attention.kv_groups), 0, 4096, "gkv for gqkva (required there)"),
      boolean(ABLATE_FIELD(attention.qk_norm), "RMSNorm on queries and keys per head"),
      boolean(ABLATE_FIELD(attention.rope), "rotary position embedding over the token index"),
      number(ABLATE_FIELD(attention.rope_theta), 1.0, 1e12, "RoPE base"),
      boolean(ABLATE_FIELD(attention.bias), "biases on the q, k, v, o projections"),
      boolean(ABLATE_FIELD(attention.faithful),
              "authors' exact behaviour instead of the robust default"),
      boolean(ABLATE_FIELD(attention.allow_noncausal),
              "train even if the causality check fails (faithful dynamic)", kLm | kS2s),
      number(ABLATE_FIELD(attention.min_per_group), 0, 4096,
             "robust kdgqa/dgqa: least queries per kv head"),
      number(ABLATE_FIELD(attention.eps), 0.0, 1.0, "robust kdgqa: min-max scaling epsilon"),
      number(ABLATE_FIELD(attention.ema_window), 1, kInf,
             "dgqa: training steps between reallocations"),
      number(ABLATE_FIELD(attention.ema_beta), -1.0, 1.0,
             "dgqa: weight of the newest norms; < 0 = 2 / (window + 1)"),
      text(ABLATE_FIELD(attention.dgqa_mode), {"ema", "diff"},
           "dgqa: allocate by the EMA of key norms or by its change"),
      text(ABLATE_FIELD(attention.noise), {"gaussian", "uniform"},
           "robust pgqa: noise distribution"),
      number(ABLATE_FIELD(attention.noise_scale), 0.0, 1e6, "pgqa: multiplier on the noise"),
      text(ABLATE_FIELD(attention.noise_target), {"output", "scores"},
           "robust pgqa: perturb the attention output or the scores"),
      boolean(ABLATE_FIELD(attention.noise_at_eval), "robust pgqa: perturb in eval mode too"),
      text(ABLATE_FIELD(attention.weight_form), {"scalar", "row", "col"},
           "wgqa: one weight per member, or a vector over input (row) or output (col) features"),
      text(ABLATE_FIELD(attention.weight_init), {"mean", "random"},
           "wgqa: G/H (equals mean-pooled gqa at step 0) or standard normal"),
      text(ABLATE_FIELD(attention.path), {"auto", "reference", "fused"},
           "attention implementation"),
      boolean(ABLATE_FIELD(attention.out_bias),
              "a bias on the output projection even when attention.bias is false", kAddedLater),
      number(ABLATE_FIELD(attention.attn_dropout), 0.0, 0.99,
             "dropout on the attention probabilities (training; takes the reference path)",
             kAddedLater),
      number(ABLATE_FIELD(attention.out_dropout), 0.0, 0.99,
             "dropout after the output projection (training)", kAddedLater),
      text(ABLATE_FIELD(attention.scale), {"inv_sqrt_dh", "none"},
           "score scaling: q k^T / sqrt(d_h), or none as T5 (s2s default: none)", kAddedLater),
      text(ABLATE_FIELD(attention.sites), {"encoder", "decoder", "cross"},
           "where the variant applies (comma-separated); the other sites are mha", kS2s | kList),

      number(ABLATE_FIELD(train.steps), 1, kInf, "optimiser steps"),
      number(ABLATE_FIELD(train.batch_size), 1, 1 << 24, "sequences (lm) or images (vit) per step"),
      number(ABLATE_FIELD(train.lr), 1e-12, 10.0, "peak learning rate"),
      number(ABLATE_FIELD(train.min_lr), 0.0, 10.0, "learning rate at the end of the cosine decay"),
      number(ABLATE_FIELD(train.warmup), -1, kInf,
             "linear warm-up steps; -1 = automatic: 100, or train.steps / 10 (rounded down) for "
             "a run of fewer than 100 steps; with train.epochs, of the run's steps at train time"),
      number(ABLATE_FIELD(train.weight_decay), 0.0, 10.0,
             "AdamW decoupled weight decay (matrices only)"),
      number(ABLATE_FIELD(train.beta1), 0.0, 0.999999, "AdamW beta1"),
      number(ABLATE_FIELD(train.beta2), 0.0, 0.999999, "AdamW beta2"),
      number(ABLATE_FIELD(train.grad_clip), 0.0, 1e6, "global gradient norm clip; 0 = off"),
      number(ABLATE_FIELD(train.eval_every), 1, kInf, "steps between evaluations (and at the end)"),
      number(ABLATE_FIELD(train.eval_batches), 0, kInf,
             "batches per evaluation; 0 = the whole held-out split"),
      number(
          ABLATE_FIELD(train.eval_subset), 0, kInf,
          "intermediate evaluations use only the first N held-out examples (lm: seq_len "
          "windows, vit: test images, s2s: examples, also for decoding), the same ones every "
          "time; the last evaluation always uses the whole held-out split (as train.eval_batches "
          "limits it); 0 = every evaluation uses the whole split",
          kAddedLater),
      number(ABLATE_FIELD(train.checkpoint_every), 0, kInf,
             "steps between checkpoints (and at the end); 0 = only at end", kNotSemantic),
      number(ABLATE_FIELD(train.log_every), 1, kInf, "steps between train events in events.jsonl",
             kNotSemantic),
      text(ABLATE_FIELD(train.device), {"auto", "cpu", "cuda", "cuda:N"},
           "where to train; auto = cuda when there is one", kNotSemantic),
      text(ABLATE_FIELD(train.precision), {"auto", "fp32", "bf16"},
           "bf16 = bf16 autocast (fp32 weights); auto = bf16 on CUDA, fp32 on the CPU"),
      number(ABLATE_FIELD(train.threads), 0, 1024, "CPU threads for LibTorch; 0 = its default",
             kNotSemantic),
      number(ABLATE_FIELD(train.epochs), 0, kInf,
             "passes over the training data, each in a new order; > 0 replaces train.steps",
             kAddedLater),
      boolean(ABLATE_FIELD(train.eval_each_epoch),
              "also evaluate at the end of every epoch (needs train.epochs)", kAddedLater),
      number(ABLATE_FIELD(train.decode_examples), 0, 1 << 20,
             "held-out examples decoded greedily per evaluation (exact match, ROUGE)", kS2s),

      text(ABLATE_FIELD(init.from), {}, "parent run dir (its checkpoint/); empty = fresh init",
           kNotSemantic),
      text(ABLATE_FIELD(init.convert), {"none", "mean_pool", "wgqa"},
           "how to convert the parent's attention"),
  };
}

#undef ABLATE_FIELD

// `value` is one of `choices`, where "cuda:N" accepts "cuda:" followed by digits.
bool matches_choice(const std::string& value, const std::vector<std::string>& choices) {
  for (const auto& c : choices) {
    const size_t n = c.size();
    const bool pattern = n >= 2 && c.compare(n - 2, 2, ":N") == 0;
    if (!pattern && value == c) return true;
    if (pattern && value.size() > n - 1 && value.compare(0, n - 1, c, 0, n - 1) == 0 &&
        std::all_of(value.begin() + (n - 1), value.end(),
                    [](char ch) { return ch >= '0' && ch <= '9'; })) {
      return true;
    }
  }
  return false;
}

std::string join(const std::vector<std::string>& words, const char* sep) {
  std::string out;
  for (size_t i = 0; i < words.size(); ++i) out += (i ? sep : "") + words[i];
  return out;
}

std::string format_bound(const FieldInfo& f, double v) {
  return f.type() == FieldType::kInt ? std::to_string(static_cast<int64_t>(v)) : format_float(v);
}

}  // namespace

std::string FieldInfo::section() const {
  const size_t dot = key.find('.');
  return dot == std::string::npos ? "" : key.substr(0, dot);
}

std::string FieldInfo::name() const {
  const size_t dot = key.find('.');
  return dot == std::string::npos ? key : key.substr(dot + 1);
}

unsigned task_bit(const std::string& task_name) {
  if (task_name == "lm") return kTaskLm;
  if (task_name == "vit") return kTaskVit;
  if (task_name == "s2s") return kTaskS2s;
  return 0;
}

bool FieldInfo::applies_to(const std::string& task_name) const {
  return (tasks & task_bit(task_name)) != 0;
}

std::string FieldInfo::allowed_text() const {
  switch (type()) {
    case FieldType::kInt:
    case FieldType::kFloat:
      if (max == kInf) return ">= " + format_bound(*this, min);
      return "[" + format_bound(*this, min) + ", " + format_bound(*this, max) + "]";
    case FieldType::kBool:
      return "true|false";
    case FieldType::kString:
      break;
  }
  return (list ? "list of " : "") + join(choices, "|");
}

const std::vector<FieldInfo>& schema() {
  static const std::vector<FieldInfo> table = make_schema();
  return table;
}

const FieldInfo* find_field(const std::string& key) {
  for (const auto& f : schema()) {
    if (f.key == key) return &f;
  }
  return nullptr;
}

const std::vector<std::string>& schema_sections() {
  static const std::vector<std::string> sections = [] {
    std::vector<std::string> out;
    for (const auto& f : schema()) {
      const std::string s = f.section();
      if (!s.empty() && std::find(out.begin(), out.end(), s) == out.end()) out.push_back(s);
    }
    return out;
  }();
  return sections;
}

bool is_section(const std::string& name) {
  const auto& s = schema_sections();
  return std::find(s.begin(), s.end(), name) != s.end();
}

const char* type_name(FieldType type) {
  switch (type) {
    case FieldType::kInt:
      return "int";
    case FieldType::kFloat:
      return "float";
    case FieldType::kBool:
      return "bool";
    case FieldType::kString:
      break;
  }
  return "string";
}

std::string scope_name(unsigned tasks) {
  if (tasks == kAllTasks) return "all tasks";
  std::vector<std::string> names;
  for (const auto& [bit, name] :
       {std::pair<unsigned, const char*>{kTaskLm, "lm"}, {kTaskVit, "vit"}, {kTaskS2s, "s2s"}}) {
    if (tasks & bit) names.push_back(name);
  }
  return join(names, " and ");
}

std::string canonical_list(const FieldInfo& field, const std::string& value, std::string& problem) {
  std::vector<bool> given(field.choices.size(), false);
  size_t start = 0;
  while (start <= value.size()) {
    size_t comma = value.find(',', start);
    if (comma == std::string::npos) comma = value.size();
    std::string item = value.substr(start, comma - start);
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    const auto at = std::find(field.choices.begin(), field.choices.end(), item);
    if (at == field.choices.end()) {
      problem = "unknown value " + yaml_quote(item) + " in the list " + yaml_quote(value) +
                "; expected a comma-separated list of " + join(field.choices, ", ");
      const std::string near = nearest_word(item, field.choices);
      if (!near.empty()) problem += "; did you mean " + near + "?";
      return value;
    }
    const size_t i = static_cast<size_t>(at - field.choices.begin());
    if (given[i]) {
      problem = item + " is given twice in " + yaml_quote(value);
      return value;
    }
    given[i] = true;
    start = comma + 1;
  }
  std::vector<std::string> items;
  for (size_t i = 0; i < given.size(); ++i) {
    if (given[i]) items.push_back(field.choices[i]);
  }
  return join(items, ",");
}

std::string value_error(const FieldInfo& field, const Config& config) {
  Config& c = const_cast<Config&>(config);  // the accessors only read here
  std::string value;
  switch (field.type()) {
    case FieldType::kInt: {
      const int64_t v = std::get<IntRef>(field.ref)(c);
      if (static_cast<double>(v) >= field.min && static_cast<double>(v) <= field.max) return "";
      value = std::to_string(v);
      break;
    }
    case FieldType::kFloat: {
      const double v = std::get<FloatRef>(field.ref)(c);
      if (v >= field.min && v <= field.max) return "";  // false for NaN
      value = format_float(v);
      break;
    }
    case FieldType::kBool:
      return "";
    case FieldType::kString: {
      const std::string& v = std::get<StringRef>(field.ref)(c);
      if (field.list) {
        std::string problem;
        canonical_list(field, v, problem);
        return problem;
      }
      if (field.choices.empty() || matches_choice(v, field.choices)) return "";
      std::string msg =
          "unknown value " + yaml_quote(v) + "; expected one of " + join(field.choices, ", ");
      const std::string near = nearest_word(v, field.choices);
      if (!near.empty()) msg += "; did you mean " + near + "?";
      return msg;
    }
  }
  const std::string range = field.allowed_text();
  return value + " is out of range; expected " + (range[0] == '[' ? "a value in " + range : range);
}

std::string nearest_key(const std::string& key) {
  static const std::vector<std::string> candidates = [] {
    std::vector<std::string> out = schema_sections();
    for (const auto& f : schema()) out.push_back(f.key);
    return out;
  }();
  return nearest_word(key, candidates);
}

const std::vector<RenamedKey>& renamed_keys() {
  static const std::vector<RenamedKey> keys = {
      {"train.bf16", "train.precision",
       "replaced by train.precision: auto | fp32 | bf16 (train.bf16: true was auto, "
       "train.bf16: false is fp32)",
       [](const Config& c) -> std::string {
         if (c.train.precision == "auto") return "bf16: true";
         if (c.train.precision == "fp32") return "bf16: false";
         return "precision: " + yaml_quote(c.train.precision);
       }},
  };
  return keys;
}

std::string replaced_key_hint(const std::string& key) {
  for (const auto& r : renamed_keys()) {
    if (key == r.old_key) return r.hint;
  }
  return "";
}

std::string schema_text(const std::string& task) {
  Config defaults;
  if (task == "vit") defaults.data.dataset = "fashion-mnist";  // resolve_defaults, parse.h
  if (task == "s2s") {
    defaults.attention.scale = "none";
    defaults.attention.rope = false;
  }
  struct Line {
    std::string key, type, value, allowed, doc;
  };
  // Sections in schema order, top-level keys first.
  std::vector<std::string> sections = {""};
  for (const auto& s : schema_sections()) sections.push_back(s);

  std::vector<std::pair<std::string, std::vector<Line>>> groups;
  for (const auto& section : sections) {
    std::vector<Line> lines;
    for (const auto& f : schema()) {
      if (f.section() != section || (!task.empty() && !f.applies_to(task))) continue;
      std::string doc = f.doc;
      std::vector<std::string> notes;
      if (task.empty() && f.tasks != kAllTasks) notes.push_back(scope_name(f.tasks) + " only");
      if (!f.semantic) notes.push_back("not in the job id");
      if (!notes.empty()) doc += " (" + join(notes, "; ") + ")";
      lines.push_back({(section.empty() ? "" : "  ") + f.key, type_name(f.type()),
                       format_value(f, defaults), f.allowed_text(), doc});
    }
    if (!lines.empty()) groups.emplace_back(section, std::move(lines));
  }

  // Long choice lists would push every doc far right: they get the column to themselves and
  // their doc moves to the next line.
  constexpr size_t kMaxAllowedWidth = 24;
  size_t wk = 0, wt = 0, wv = 0, wa = 0;
  for (const auto& [section, lines] : groups) {
    for (const auto& l : lines) {
      wk = std::max(wk, l.key.size());
      wt = std::max(wt, l.type.size());
      wv = std::max(wv, l.value.size());
      if (l.allowed.size() <= kMaxAllowedWidth) wa = std::max(wa, l.allowed.size());
    }
  }
  auto pad = [](const std::string& s, size_t width) {
    return s + std::string(width > s.size() ? width - s.size() : 0, ' ') + "  ";
  };

  std::ostringstream out;
  out << "Config keys" << (task.empty() ? "" : " for task " + task)
      << ": nested in YAML (attention: {kv_heads: 2}) or dotted (attention.kv_heads: 2);\n"
      << "KEY=VALUE on the command line.\n\n"
      << pad("KEY", wk) << pad("TYPE", wt) << pad("DEFAULT", wv) << pad("ALLOWED", wa) << "DOC\n";
  for (const auto& [section, lines] : groups) {
    out << "\n" << (section.empty() ? "(top level)" : section + ":") << "\n";
    for (const auto& l : lines) {
      out << pad(l.key, wk) << pad(l.type, wt) << pad(l.value, wv);
      if (l.allowed.size() <= wa) {
        out << pad(l.allowed, wa) << l.doc << "\n";
      } else {
        out << l.allowed << "\n" << std::string(wk + wt + wv + wa + 8, ' ') << l.doc << "\n";
      }
    }
  }
  return out.str();
}

}  // namespace ablate::runner
