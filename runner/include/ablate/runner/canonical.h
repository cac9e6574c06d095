#pragma once
// Canonical form of a resolved Config and its hash, the job id (docs/design.md section 2).
//
// The canonical text is YAML that parse_config reads back into an equal Config: sections nested,
// keys sorted at every level, ints as integers, floats in the shortest text that round-trips
// (so 1e-3, 0.001 and 1.0e-3 give the same text), strings
// quoted only where YAML needs it. Fields of the other task (model.patch in an lm config) are
// left out: they cannot be set there and do not affect the run. Torch-free and YAML-free.
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "ablate/results/variant_keys.h"
#include "ablate/runner/config.h"

namespace ablate::runner {

struct FieldInfo;

// Shortest round-trip text of a double, always with a '.' and a signed exponent if any, as YAML
// 1.1 and 1.2 readers both take for a float ("0.001", "1.0e-6", "10000.0", "1.5e+20"); ".inf",
// "-.inf", ".nan" for the non-finite values.
std::string format_float(double value);

// A string as a YAML scalar: plain when YAML reads it back as the same string, else
// double-quoted with escapes.
std::string yaml_quote(const std::string& text);

// The canonical YAML scalar of one field's value in `config`.
std::string format_value(const FieldInfo& field, const Config& config);

// Every field of config's task, nested by section, keys sorted.
std::string to_yaml(const Config& config);

// `config` with the attention fields its variant ignores reset to their defaults (kv_heads for
// mha, ema_window for anything but dgqa, noise_* outside pgqa, ...), train.steps reset when
// train.epochs sets the length, and an automatic train.warmup replaced by its steps (config.h,
// warmup_steps; 100 with train.epochs), so configs that train the same model are one job: an
// MHA pretrain stage is shared by every arm of a grid over kv_heads.
Config without_ignored_fields(const Config& config);

// The params the store records for a job with this config (its `runs` view filters on any of
// them): every field of the config's task, key and canonical value, in schema order, of
// without_ignored_fields(config) (a pretrain shared by arms shows no arm's kv_heads).
std::vector<std::pair<std::string, std::string>> stored_params(const Config& config);

// The attention keys (dotted) that an attention with this variant and faithful flag ignores: the
// fields without_ignored_fields resets. Arm labels leave them out (a gqa arm is not
// "noise_scale=1.0" because a pgqa arm of the sweep has another noise scale). One rule, in
// results/variant_keys.h, which the reports use too.
using results::ignored_attention_keys;

// What the job id hashes: to_yaml of without_ignored_fields(config), restricted to the semantic
// fields, with two rules that keep the ids issued by earlier versions: a field added later is left
// out while it has its default (FieldInfo::hashed_at_default), and train.precision is written as
// the train.bf16 line it replaced (auto: "bf16: true", fp32: "bf16: false").
std::string canonical_semantic_text(const Config& config);

// 16 lowercase hex digits of XXH64 (seed 0) over canonical_semantic_text.
std::string config_hash(const Config& config);

// The id of a job (docs/design.md section 2). Without a parent: config_hash(config). A stage job
// with a parent: 16 hex of XXH64 over canonical_semantic_text(config) + "\nfrom: " + parent_id +
// "\n", so one config continued from two different parents is two jobs, and the same stage reached
// from the same parent is one.
std::string job_id(const Config& config, const std::string& parent_id = "");

// A job's arm: its identity without the seed. 16 hex of XXH64 over canonical_semantic_text
// without its top-level seed line, plus "\nfrom: " + parent_arm + "\n" for a stage job, so the
// seed repeats of one arm share the key.
std::string arm_key(const Config& config, const std::string& parent_arm = "");

}  // namespace ablate::runner
