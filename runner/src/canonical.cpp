#include "ablate/runner/canonical.h"

#include <xxhash.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "ablate/runner/schema.h"

namespace ablate::runner {
namespace {

// Plain scalars that a YAML reader would not take as a string: null and the booleans of YAML
// 1.1 and 1.2 (quoted so that any reader agrees).
bool is_reserved_word(const std::string& s) {
  static const char* const kWords[] = {
      "~",  "null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE", "y",
      "Y",  "yes",  "Yes",  "YES",  "n",    "N",    "no",   "No",    "NO",    "on",    "On",
      "ON", "off",  "Off",  "OFF",  ".inf", ".Inf", ".INF", ".nan",  ".NaN",  ".NAN"};
  for (const char* w : kWords) {
    if (s == w) return true;
  }
  return false;
}

// Starts like a number (digit, or sign or '.' then digit): quoted so it stays a string.
bool looks_numeric(const std::string& s) {
  size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  if (i < s.size() && s[i] == '.') ++i;
  return i < s.size() && s[i] >= '0' && s[i] <= '9';
}

// The rename a field's job-id line follows, if any (schema.h, RenamedKey).
const RenamedKey* renamed_from(const FieldInfo& f) {
  for (const auto& r : renamed_keys()) {
    if (f.key == r.key) return &r;
  }
  return nullptr;
}

// `fields` sorted by top-level name, then by `sort_key`: the order of a nested, sorted mapping.
std::vector<const FieldInfo*> sorted(std::vector<const FieldInfo*> fields,
                                     std::string (*sort_key)(const FieldInfo&)) {
  auto top = [](const FieldInfo* f) { return f->section().empty() ? f->key : f->section(); };
  std::sort(fields.begin(), fields.end(), [&](const FieldInfo* a, const FieldInfo* b) {
    return std::make_pair(top(a), sort_key(*a)) < std::make_pair(top(b), sort_key(*b));
  });
  return fields;
}

// Every field, in to_yaml's order. Sorted once: job ids are computed for every job of a sweep.
const std::vector<const FieldInfo*>& canonical_order() {
  static const std::vector<const FieldInfo*> order = [] {
    std::vector<const FieldInfo*> fields;
    for (const auto& f : schema()) fields.push_back(&f);
    return sorted(fields, [](const FieldInfo& f) { return f.key; });
  }();
  return order;
}

// The semantic fields, in the order the job id's text has them (legacy lines in their old place).
const std::vector<const FieldInfo*>& hash_order() {
  static const std::vector<const FieldInfo*> order = [] {
    std::vector<const FieldInfo*> fields;
    for (const auto& f : schema()) {
      if (f.semantic) fields.push_back(&f);
    }
    return sorted(fields, [](const FieldInfo& f) {
      const RenamedKey* r = renamed_from(f);
      return r != nullptr ? std::string(r->old_key) : f.key;
    });
  }();
  return order;
}

// The fields of config's task in `order`, nested by section; `line` gives a field's
// "name: value", or "" to leave it out.
template <typename Line>
std::string emit(const Config& config, const std::vector<const FieldInfo*>& order, Line line) {
  std::string out, section;
  for (const FieldInfo* f : order) {
    if (!f->applies_to(config.task)) continue;
    const std::string text = line(*f);
    if (text.empty()) continue;
    if (f->section() != section) {
      section = f->section();
      if (!section.empty()) out += section + ":\n";
    }
    out += (section.empty() ? "" : "  ") + text + "\n";
  }
  return out;
}

// What the job id hashes: to_yaml's text of the semantic fields, without the later-added fields
// that have their defaults, with legacy lines for renamed keys.
std::string hash_text(const Config& config) {
  static const Config defaults;
  return emit(config, hash_order(), [&](const FieldInfo& f) -> std::string {
    const std::string value = format_value(f, config);
    if (!f.hashed_at_default && value == format_value(f, defaults)) return "";
    const RenamedKey* r = renamed_from(f);
    return r != nullptr ? r->hashed_line(config) : f.name() + ": " + value;
  });
}

// 16 lowercase hex digits of XXH64 (seed 0).
std::string hex_xxh64(const std::string& text) {
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx",
                static_cast<unsigned long long>(XXH64(text.data(), text.size(), 0)));
  return hex;
}

}  // namespace

std::string format_float(double value) {
  if (std::isnan(value)) return ".nan";
  if (std::isinf(value)) return value > 0 ? ".inf" : "-.inf";
  char buf[64];
  const auto result = std::to_chars(buf, buf + sizeof(buf), value);
  const std::string s(buf, result.ptr);
  // Written as YAML 1.1 readers (PyYAML) also take for a float: a '.' in the mantissa and a
  // signed exponent ("1.0e-6", "1.0e+12"); leading zeros of the exponent dropped.
  const size_t e = s.find('e');
  std::string mantissa = s.substr(0, e);
  if (mantissa.find('.') == std::string::npos) mantissa += ".0";
  if (e == std::string::npos) return mantissa;
  const char sign = s[e + 1] == '-' ? '-' : '+';
  size_t digits = s.find_first_not_of("+-0", e + 1);
  if (digits == std::string::npos) digits = s.size() - 1;  // an exponent of 0 (not emitted)
  return mantissa + "e" + sign + s.substr(digits);
}

std::string yaml_quote(const std::string& text) {
  // Plain only for a conservative alphabet that cannot start an indicator, a comment, a mapping
  // (": ") or a number, and that no reader resolves to null or a boolean.
  auto plain_char = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.' || c == '/' || c == '+' || c == ':';
  };
  const bool plain = !text.empty() && std::all_of(text.begin(), text.end(), plain_char) &&
                     text[0] != '-' && text[0] != ':' && text.back() != ':' &&
                     !is_reserved_word(text) && !looks_numeric(text);
  if (plain) return text;
  std::string out = "\"";
  for (const char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          char esc[8];
          std::snprintf(esc, sizeof(esc), "\\x%02x", static_cast<unsigned char>(c));
          out += esc;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string format_value(const FieldInfo& field, const Config& config) {
  Config& c = const_cast<Config&>(config);  // the accessors only read here
  switch (field.type()) {
    case FieldType::kInt:
      return std::to_string(std::get<IntRef>(field.ref)(c));
    case FieldType::kFloat:
      return format_float(std::get<FloatRef>(field.ref)(c));
    case FieldType::kBool:
      return std::get<BoolRef>(field.ref)(c) ? "true" : "false";
    case FieldType::kString:
      break;
  }
  return yaml_quote(std::get<StringRef>(field.ref)(c));
}

std::string to_yaml(const Config& config) {
  return emit(config, canonical_order(),
              [&](const FieldInfo& f) { return f.name() + ": " + format_value(f, config); });
}

Config without_ignored_fields(const Config& config) {
  Config c = config;
  // An automatic warm-up counts as the steps it warms up for, so that resolving it changes no id:
  // 100, or train.steps / 10 for a run shorter than that. With train.epochs the run's length is
  // known only at train time: it counts as 100, the warm-up such a run had before the automatic
  // rule (when one shorter than 100 steps was refused), so those ids hold.
  if (c.train.warmup == kAutoWarmup) {
    c.train.warmup = c.train.epochs > 0 ? kLongRunWarmup : warmup_steps(c.train, c.train.steps);
  }
  if (c.train.epochs > 0) c.train.steps = Config().train.steps;  // epochs set the length
  Config defaults;
  for (const std::string& key : ignored_attention_keys(c.attention.variant, c.attention.faithful)) {
    std::visit([&](auto ref) { ref(c) = ref(defaults); }, find_field(key)->ref);
  }
  return c;
}

std::vector<std::pair<std::string, std::string>> stored_params(const Config& config) {
  const Config shown = without_ignored_fields(config);
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& field : schema()) {
    if (field.applies_to(shown.task)) out.emplace_back(field.key, format_value(field, shown));
  }
  return out;
}

std::string canonical_semantic_text(const Config& config) {
  return hash_text(without_ignored_fields(config));
}

std::string config_hash(const Config& config) { return hex_xxh64(canonical_semantic_text(config)); }

std::string job_id(const Config& config, const std::string& parent_id) {
  if (parent_id.empty()) return config_hash(config);
  return hex_xxh64(canonical_semantic_text(config) + "\nfrom: " + parent_id + "\n");
}

std::string arm_key(const Config& config, const std::string& parent_arm) {
  // The seed is a top-level key: its line is the only unindented "seed: " line.
  std::string text = "\n" + canonical_semantic_text(config);
  const std::string seed_line = "\nseed: " + std::to_string(config.seed);
  const size_t at = text.find(seed_line + "\n");
  if (at != std::string::npos) text.erase(at, seed_line.size());
  text.erase(0, 1);
  if (!parent_arm.empty()) text += "\nfrom: " + parent_arm + "\n";
  return hex_xxh64(text);
}

bool operator==(const Config& a, const Config& b) { return to_yaml(a) == to_yaml(b); }
bool operator!=(const Config& a, const Config& b) { return !(a == b); }

}  // namespace ablate::runner
