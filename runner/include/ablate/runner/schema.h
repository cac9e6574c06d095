#pragma once
// The schema: one table row per field of Config (config.h) with its dotted key, type, doc,
// allowed values, whether it is part of the job id and which task it applies to. Parsing,
// validation, `ablate schema`, canonical form and hashing all iterate over this table, so a new
// field is added in config.h and here, nowhere else. Torch-free and YAML-free.
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "ablate/results/nearest.h"
#include "ablate/runner/config.h"

namespace ablate::runner {

// Order matches the alternatives of FieldRef, so FieldRef::index() is the type.
enum class FieldType { kInt, kFloat, kBool, kString };

// Which tasks a field applies to, as bits; setting a field of another task is an error.
enum TaskBit : unsigned { kTaskLm = 1, kTaskVit = 2, kTaskS2s = 4 };
constexpr unsigned kAllTasks = kTaskLm | kTaskVit | kTaskS2s;
// The bit of a task name (0 for an unknown one).
unsigned task_bit(const std::string& task_name);

// Accessors of one field (captureless lambdas), so nothing needs a per-field switch.
using IntRef = int64_t& (*)(Config&);
using FloatRef = double& (*)(Config&);
using BoolRef = bool& (*)(Config&);
using StringRef = std::string& (*)(Config&);
using FieldRef = std::variant<IntRef, FloatRef, BoolRef, StringRef>;

struct FieldInfo {
  std::string key;  // dotted: "seed", "attention.kv_heads"
  FieldRef ref;     // reads and writes the field of a Config
  std::string doc;  // one line
  // Strings: the allowed values (empty = any). A choice ending in ":N" ("cuda:N") stands for
  // its prefix followed by one or more digits.
  std::vector<std::string> choices;
  double min = 0.0;  // numbers: inclusive range; max may be infinity
  double max = 0.0;
  bool semantic = true;  // part of the job id (paths, devices and logging cadence are not)
  // False for a field added after job ids were first issued: while it has its default value it
  // is left out of the text the job id hashes, so adding it kept every existing id.
  bool hashed_at_default = true;
  unsigned tasks = kAllTasks;  // TaskBit set
  // Strings: a comma-separated list of distinct choices, stored in the choices' order (a YAML
  // sequence is accepted and joined).
  bool list = false;

  FieldType type() const { return static_cast<FieldType>(ref.index()); }
  // "data" for "data.path"; "" for the top-level keys task and seed.
  std::string section() const;
  // "path" for "data.path"; the key itself at top level.
  std::string name() const;
  bool applies_to(const std::string& task_name) const;
  // The range ("[1, 4096]", ">= 0") or the choices ("mha|mqa|..."); "" when anything goes.
  std::string allowed_text() const;
};

// Every field of Config, once, in the order of config.h.
const std::vector<FieldInfo>& schema();

// The row of a dotted key, or nullptr.
const FieldInfo* find_field(const std::string& key);

// Section names in schema order: data, model, attention, train, init.
const std::vector<std::string>& schema_sections();
bool is_section(const std::string& name);

// "int", "float", "bool", "string".
const char* type_name(FieldType type);
// "lm", "vit", "s2s", "lm and s2s", ...; "all tasks" for every one.
std::string scope_name(unsigned tasks);

// A list field's value in canonical form (items trimmed, in the choices' order), or the first
// problem ("unknown value ...", "... given twice", "empty list") as the `problem` string.
std::string canonical_list(const FieldInfo& field, const std::string& value, std::string& problem);

// Checks the current value of `field` in `config` against its range or choices. Returns "" when
// it is allowed, else the message for a ConfigError ("-1 is out of range; expected >= 0").
std::string value_error(const FieldInfo& field, const Config& config);

// edit_distance and nearest_word (did-you-mean) are results/nearest.h's, shared with the reports.
using results::edit_distance;
using results::nearest_word;
// nearest_word over every dotted key and section name.
std::string nearest_key(const std::string& key);
// A key an earlier version of ablate had and replaced. Parsing the old key gives `hint`; the job
// id hashes the new key as the old key's line (in the old key's sorted place), so ids issued
// before the rename still name the same jobs.
struct RenamedKey {
  const char* old_key;  // "train.bf16"
  const char* key;      // "train.precision"
  const char* hint;     // the error for a config that still uses old_key
  std::string (*hashed_line)(const Config& config);  // "name: value" in the job id's text
};
const std::vector<RenamedKey>& renamed_keys();

// For a key an earlier version of ablate had and replaced, what replaces it ("" otherwise), so
// an old config gets an answer rather than a guess.
std::string replaced_key_hint(const std::string& key);

// What `ablate schema [--task lm|vit]` prints: every key (of that task; "" = all) with type,
// default, range or choices and doc, aligned, grouped by section.
std::string schema_text(const std::string& task = "");

}  // namespace ablate::runner
