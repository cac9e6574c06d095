#include "ablate/runner/parse.h"

#include <yaml-cpp/depthguard.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "ablate/results/printable.h"
#include "ablate/runner/canonical.h"
#include "ablate/runner/schema.h"
#include "ablate/runner/yaml_config.h"

namespace ablate::runner {
namespace {

const char* const kCommandLine = "command line";

std::string format_what(const std::string& file, int line, int column, const std::string& key,
                        const std::string& message) {
  std::string out = file;
  if (line > 0) {
    out += (out.empty() ? "" : ":") + std::to_string(line);
    if (column > 0) out += ":" + std::to_string(column);
  }
  if (!out.empty()) out += ": ";
  if (!key.empty()) out += key + ": ";
  return out + message;
}

// what() of a ConfigError: one problem per line.
std::string lines_of(const std::vector<ConfigProblem>& problems) {
  if (problems.empty()) throw std::logic_error("ConfigError without a problem");
  std::string out;
  for (const auto& p : problems) out += (out.empty() ? "" : "\n") + p.text();
  return out;
}

const char* expected(FieldType type) {
  switch (type) {
    case FieldType::kInt:
      return "an integer";
    case FieldType::kFloat:
      return "a number";
    case FieldType::kBool:
      return "true or false";
    case FieldType::kString:
      break;
  }
  return "a string";
}

bool all_digits(const std::string& s, size_t from, size_t to) {
  return from < to &&
         std::all_of(s.begin() + from, s.begin() + to, [](char c) { return c >= '0' && c <= '9'; });
}

// YAML 1.2 core schema decimal integer: [-+]?[0-9]+.
bool is_int_text(const std::string& s) {
  const size_t sign = !s.empty() && (s[0] == '-' || s[0] == '+') ? 1 : 0;
  return all_digits(s, sign, s.size());
}

// YAML 1.2 core schema float without .inf/.nan: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
bool is_float_text(const std::string& s) {
  size_t i = !s.empty() && (s[0] == '-' || s[0] == '+') ? 1 : 0;
  size_t e = s.find_first_of("eE");
  if (e == std::string::npos) e = s.size();
  const size_t dot = s.find('.', i);
  bool mantissa_ok;
  if (dot == std::string::npos || dot > e) {
    mantissa_ok = all_digits(s, i, e);
  } else {
    const bool int_part = all_digits(s, i, dot);
    const bool frac_part = all_digits(s, dot + 1, e);
    mantissa_ok = (int_part || frac_part) && (dot == i || int_part) && (dot + 1 == e || frac_part);
  }
  if (!mantissa_ok) return false;
  if (e == s.size()) return true;
  size_t j = e + 1;
  if (j < s.size() && (s[j] == '-' || s[j] == '+')) ++j;
  return all_digits(s, j, s.size());
}

// from_chars accepts no leading '+'.
const char* skip_plus(const std::string& s) { return s.data() + (!s.empty() && s[0] == '+'); }

// Sets `field` from a scalar node with the type, range and choice checks.
void set_value(Config& config, const FieldInfo& field, const YAML::Node& node,
               const Location& value_at) {
  const std::string type_message = std::string("expected ") + expected(field.type()) + ", got ";
  if (field.list && node.IsSequence()) {  // [decoder, cross] -> "decoder,cross"
    std::string joined;
    for (const auto& item : node) {
      if (!item.IsScalar())
        fail(value_at, field.key, "expected a list of names, got " + describe(item));
      joined += (joined.empty() ? "" : ",") + item.Scalar();
    }
    std::get<StringRef>(field.ref)(config) = joined;
  } else if (!node.IsScalar()) {
    std::string msg = type_message + describe(node);
    if (node.IsNull() && field.type() == FieldType::kString) msg += " (write \"\" for empty)";
    fail(value_at, field.key, msg);
  }
  const std::string s = node.IsScalar() ? node.Scalar() : std::get<StringRef>(field.ref)(config);
  const bool quoted = node.Tag() == "!";  // a quoted scalar is a string, whatever it reads
  const char* const end = s.data() + s.size();
  switch (field.type()) {
    case FieldType::kInt: {
      if (quoted || !is_int_text(s)) fail(value_at, field.key, type_message + describe(node));
      int64_t v = 0;
      if (std::from_chars(skip_plus(s), end, v).ec != std::errc()) {
        fail(value_at, field.key, s + " does not fit a 64-bit integer");
      }
      std::get<IntRef>(field.ref)(config) = v;
      break;
    }
    case FieldType::kFloat: {
      if (quoted || !is_float_text(s)) fail(value_at, field.key, type_message + describe(node));
      double v = 0.0;
      if (std::from_chars(skip_plus(s), end, v).ec != std::errc()) {
        fail(value_at, field.key, s + " does not fit a double");
      }
      std::get<FloatRef>(field.ref)(config) = v;
      break;
    }
    case FieldType::kBool: {
      // Only the YAML 1.2 spellings: yes/no/on/off are YAML 1.1 and often a mistake.
      const bool is_true = s == "true" || s == "True" || s == "TRUE";
      const bool is_false = s == "false" || s == "False" || s == "FALSE";
      if (quoted || !(is_true || is_false)) {
        fail(value_at, field.key, type_message + describe(node));
      }
      std::get<BoolRef>(field.ref)(config) = is_true;
      break;
    }
    case FieldType::kString:
      std::get<StringRef>(field.ref)(config) = s;
      break;
  }
  const std::string range_message = value_error(field, config);
  if (!range_message.empty()) fail(value_at, field.key, range_message);
  if (field.list) {  // one spelling per set, so equal sets hash equal
    std::string problem;
    auto& value = std::get<StringRef>(field.ref)(config);
    value = canonical_list(field, value, problem);
  }
}

// Applies the entries of a mapping whose keys are relative to `prefix`. `use_marks`: the nodes'
// marks are positions in `file` (not so for a value given on the command line).
// Every entry is tried: the problems of all of them are thrown together at the end.
void walk(Config& config, Locations& locations, const YAML::Node& node, const std::string& file,
          const std::string& prefix, bool use_marks, std::set<std::string>* seen) {
  std::map<std::string, Location> names;  // raw keys of this mapping, for duplicates
  ConfigProblems problems;
  for (const auto& entry : node) {
    problems.check([&] {
      const YAML::Node& k = entry.first;
      const Location key_at = use_marks ? location_of(k.Mark(), file) : Location{file, 0, 0};
      if (!k.IsScalar()) fail(key_at, prefix, "expected a key name, got " + describe(k));
      const std::string key = prefix.empty() ? k.Scalar() : prefix + "." + k.Scalar();
      const auto [it, inserted] = names.emplace(k.Scalar(), key_at);
      if (!inserted) {
        fail(key_at, key, "duplicate key" + first_given(it->second));
      }
      apply_yaml_entry(config, locations, key, entry.second, key_at, seen);
    });
  }
  problems.throw_if_any();
}

std::vector<int64_t> divisors(int64_t n) {
  std::vector<int64_t> out;
  for (int64_t d = 1; d <= n; ++d) {
    if (n % d == 0) out.push_back(d);
  }
  return out;
}

std::string join_ints(const std::vector<int64_t>& values) {
  std::string out;
  for (size_t i = 0; i < values.size(); ++i) out += (i ? ", " : "") + std::to_string(values[i]);
  return out;
}

}  // namespace

[[noreturn]] void fail(const Location& at, const std::string& key, const std::string& message) {
  // A key from the file is shown, never echoed raw: printable (no control characters, no invalid
  // UTF-8) and at most 80 bytes (a 5 MB unknown key is named by its start).
  std::string shown = results::printable(key);
  if (shown.size() > 80)
    shown = shown.substr(0, 60) + "... (" + std::to_string(key.size()) + " bytes)";
  throw ConfigError(at.file, at.line, at.column, shown, message);
}

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a sequence";
    case YAML::NodeType::Scalar:
      return node.Tag() == "!" ? "the string \"" + node.Scalar() + "\"" : node.Scalar();
    default:
      return "nothing";
  }
}

std::string first_given(const Location& first) {
  if (first.line == 0) return "";
  return "; first given at line " + std::to_string(first.line) + ", column " +
         std::to_string(first.column);
}

std::string read_text_file(const std::string& path, const std::string& what) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(path, ec)) fail({path, 0, 0}, "", "no such " + what + " file");
  if (fs::is_directory(path, ec)) fail({path, 0, 0}, "", "is a directory, not a " + what + " file");
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in) fail({path, 0, 0}, "", "cannot read the " + what + " file");
  return text.str();
}

void apply_override_entry(Config& config, Locations& locations, const std::string& text) {
  const Location at{kCommandLine, 0, 0};
  const size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0) fail(at, "", "expected KEY=VALUE, got '" + text + "'");
  const std::string key = text.substr(0, eq);
  const std::string value = text.substr(eq + 1);
  if (results::first_invalid_utf8(text) != std::string::npos) {
    fail(at, "", "the override " + results::printable(text) + " is not UTF-8 text");
  }
  YAML::Node node;
  try {
    node = YAML::Load(value.empty() ? "\"\"" : value);  // KEY= is the empty string
  } catch (const YAML::Exception& e) {
    fail(at, key, "cannot read the value '" + value + "': " + e.msg);
  }
  apply_yaml_entry(config, locations, key, node, at);
}

std::string ConfigProblem::text() const { return format_what(file, line, column, key, message); }

ConfigError::ConfigError(std::string file, int line, int column, std::string key,
                         std::string message)
    : ConfigError(std::vector<ConfigProblem>{
          {std::move(file), line, column, std::move(key), std::move(message)}}) {}

ConfigError::ConfigError(std::vector<ConfigProblem> problems)
    : std::runtime_error(lines_of(problems)), problems_(std::move(problems)) {}

void ConfigProblems::add(const ConfigProblem& problem) {
  if (!seen_.insert(problem.text()).second) return;
  if (problems_.size() < kMaxConfigProblems) {
    problems_.push_back(problem);
  } else {
    ++not_shown_;
  }
}

void ConfigProblems::add(const ConfigError& error) {
  for (const auto& p : error.problems()) add(p);
}

void ConfigProblems::throw_if_any() const {
  if (problems_.empty()) return;
  std::vector<ConfigProblem> all = problems_;
  if (not_shown_ > 0) {
    all.push_back({all.front().file, 0, 0, "",
                   std::to_string(not_shown_) + " more problem" + (not_shown_ == 1 ? "" : "s") +
                       " not shown (the first " + std::to_string(kMaxConfigProblems) +
                       " are above)"});
  }
  throw ConfigError(std::move(all));
}

void Locations::set(const std::string& key, const Location& where) {
  keys_[key] = Entry{where, next_order_++};
}

Location Locations::at(const std::string& key) const {
  const auto it = keys_.find(key);
  return it == keys_.end() ? Location{source_, 0, 0} : it->second.where;
}

std::string Locations::latest(const std::vector<std::string>& keys) const {
  std::string best = keys.empty() ? "" : keys.front();
  int64_t best_order = -1;
  for (const auto& k : keys) {
    const auto it = keys_.find(k);
    if (it != keys_.end() && it->second.order > best_order) {
      best_order = it->second.order;
      best = k;
    }
  }
  return best;
}

std::vector<std::string> Locations::keys() const {
  std::vector<std::string> out;
  for (const auto& [k, e] : keys_) out.push_back(k);
  return out;
}

Location location_of(const YAML::Mark& mark, const std::string& file) {
  if (mark.is_null()) return {file, 0, 0};
  return {file, mark.line + 1, mark.column + 1};
}

Location where(const YAML::Node& node, const Location& fallback) {
  if (node.IsNull() || node.Mark().is_null()) return fallback;
  return location_of(node.Mark(), fallback.file);
}

std::vector<Entry> entries_of(const YAML::Node& map, const std::string& file,
                              const std::string& prefix) {
  std::vector<Entry> out;
  std::map<std::string, Location> seen;
  for (const auto& kv : map) {
    const Location key_at = location_of(kv.first.Mark(), file);
    if (!kv.first.IsScalar()) {
      fail(key_at, prefix, "expected a key name, got " + describe(kv.first));
    }
    const std::string key = kv.first.Scalar();
    const auto [it, inserted] = seen.emplace(key, key_at);
    if (!inserted) fail(key_at, key, "duplicate key" + first_given(it->second));
    out.push_back({key, key_at, kv.second});
  }
  return out;
}

YAML::Node load_yaml(const std::string& text, const std::string& file) {
  // Text policy (results/printable.h): a config or sweep file is UTF-8, refused at its first bad
  // byte otherwise.
  if (const size_t bad = results::first_invalid_utf8(text); bad != std::string::npos) {
    const results::TextPosition at = results::position_of(text, bad);
    fail({file, at.line, at.column}, "",
         results::not_utf8_text(text, bad) + "; save the file as UTF-8");
  }
  try {
    return YAML::Load(text);
  } catch (const YAML::DeepRecursion& e) {
    // yaml-cpp's own message for this is "bad file".
    fail(location_of(e.mark, file), "",
         "nested too deeply: more than " + std::to_string(e.depth() - 1) +
             " levels of lists or mappings (a config needs a few)");
  } catch (const YAML::Exception& e) {
    fail(location_of(e.mark, file), "", "YAML syntax error: " + e.msg);
  }
}

void apply_yaml_mapping(Config& config, Locations& locations, const YAML::Node& node,
                        const std::string& file, const std::string& prefix) {
  if (node.IsNull()) return;
  if (!node.IsMap()) {
    fail(location_of(node.Mark(), file), prefix,
         "expected a mapping of config keys, got " + describe(node));
  }
  std::set<std::string> seen;
  walk(config, locations, node, file, prefix, true, &seen);
}

void apply_yaml_entry(Config& config, Locations& locations, const std::string& key,
                      const YAML::Node& value, const Location& key_at,
                      std::set<std::string>* seen) {
  const bool use_marks = key_at.line > 0;
  if (const FieldInfo* field = find_field(key)) {
    if (seen != nullptr && !seen->insert(key).second) {
      fail(key_at, key, "duplicate key" + first_given(locations.at(key)));
    }
    // A null value has no useful mark of its own (yaml-cpp puts it at the next token).
    const Location value_at = use_marks && !value.IsNull() && !value.Mark().is_null()
                                  ? location_of(value.Mark(), key_at.file)
                                  : key_at;
    set_value(config, *field, value, value_at);
    locations.set(key, key_at);
    return;
  }
  if (is_section(key)) {
    if (value.IsNull()) return;  // `attention:` with every key commented out
    if (!value.IsMap()) {
      const Location value_at = use_marks ? location_of(value.Mark(), key_at.file) : key_at;
      fail(value_at, key, "is a section; expected a mapping of its keys, got " + describe(value));
    }
    walk(config, locations, value, key_at.file, key, use_marks, seen);
    return;
  }
  const std::string replaced = replaced_key_hint(key);
  if (!replaced.empty()) fail(key_at, key, replaced);
  const std::string near = nearest_key(key);
  fail(key_at, key,
       near.empty() ? "unknown key; `ablate schema` lists the keys"
                    : "unknown key; did you mean " + near + "?");
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  return parse_config(read_text_file(path, "config"), path, overrides);
}

Config parse_config(const std::string& yaml_text, const std::string& source_name,
                    const std::vector<std::string>& overrides) {
  Config config;
  Locations locations(source_name);
  ConfigProblems problems;
  problems.check([&] {
    apply_yaml_mapping(config, locations, load_yaml(yaml_text, source_name), source_name);
  });
  for (const auto& o : overrides) {
    problems.check([&] { apply_override_entry(config, locations, o); });
  }
  // The constraints are checked on values that were all read: a value that was not would leave
  // its default behind and make them point at the wrong thing.
  problems.throw_if_any();
  resolve_defaults(config, locations);
  validate(config, locations);
  return config;
}

void apply_override(Config& config, const std::string& key_equals_value) {
  Locations locations;
  apply_override_entry(config, locations, key_equals_value);
  validate(config, locations);
}

void resolve_defaults(Config& c, const Locations& locations) {
  if (c.task == "vit" && !locations.has("data.dataset")) c.data.dataset = "fashion-mnist";
  if (c.task == "s2s") {  // T5's conventions: relative position bias, no score scaling
    if (!locations.has("attention.scale")) c.attention.scale = "none";
    if (!locations.has("attention.rope")) c.attention.rope = false;
  }
  if (c.train.epochs == 0) c.train.warmup = warmup_steps(c.train, c.train.steps);
}

bool has_site(const Config& c, const std::string& site) {
  const std::string list = "," + c.attention.sites + ",";
  return list.find("," + site + ",") != std::string::npos;
}

std::string noncausal_reason(const Config& c) {
  const std::string& v = c.attention.variant;
  if (c.task == "vit" || !c.attention.faithful) return "";
  // s2s: only the decoder's positions must not see later ones. The decoder's self-attention
  // allocates from its own keys; cross-attention allocates from the encoder's keys (the
  // source, which the decoder may see whole), but pgqa's noise statistics there span every
  // target position.
  const bool s2s = c.task == "s2s";
  const std::string where = s2s ? " at the decoder's self-attention" : "";
  if ((v == "kdgqa" || v == "dgqa") && (!s2s || has_site(c, "decoder"))) {
    return "in its faithful mode its query allocation" + where +
           " uses later positions (docs/design.md section 4, Causal safety)";
  }
  if (v == "pgqa" && (!s2s || has_site(c, "decoder") || has_site(c, "cross"))) {
    return "in its faithful mode its noise statistics" + std::string(s2s ? " in the decoder" : "") +
           " use later positions (docs/design.md section 4, Causal safety)";
  }
  return "";
}

void validate(const Config& c, const Locations& locations) {
  ConfigProblems problems;
  // The problem goes to the key of `keys` that was set last, or the first when all are defaults.
  auto fail_at = [&](const std::vector<std::string>& keys, const std::string& message) {
    const std::string key = locations.latest(keys);
    const Location at = locations.at(key);
    problems.add(ConfigProblem{at.file, at.line, at.column, key, message});
  };

  for (const auto& f : schema()) {
    const std::string message = value_error(f, c);
    if (!message.empty()) fail_at({f.key}, message);
  }
  for (const auto& key : locations.keys()) {
    const FieldInfo* f = find_field(key);
    if (f != nullptr && !f->applies_to(c.task)) {
      fail_at({key}, "applies to " + scope_name(f->tasks) + " only; the task is " + c.task);
    }
  }
  // The constraints below divide by model.heads and compare values: they need values in range.
  problems.throw_if_any();

  const auto& m = c.model;
  const auto& a = c.attention;
  if (m.dim % m.heads != 0) {
    fail_at({"model.dim", "model.heads"}, "model.dim " + std::to_string(m.dim) +
                                              " is not divisible by model.heads " +
                                              std::to_string(m.heads));
  } else if (a.rope && (m.dim / m.heads) % 2 != 0) {
    const int64_t head_size = m.dim / m.heads;
    fail_at({"attention.rope", "model.dim", "model.heads"},
            "attention.rope needs an even head size; model.dim / model.heads = " +
                std::to_string(m.dim) + " / " + std::to_string(m.heads) + " = " +
                std::to_string(head_size));
  }
  const std::string& v = a.variant;
  if (v == "gqa" || v == "kdgqa" || v == "dgqa" || v == "pgqa" || v == "wgqa") {
    const int64_t groups = a.kv_heads == 0 ? m.heads : a.kv_heads;
    if (m.heads % groups != 0) {
      fail_at({"attention.kv_heads", "model.heads", "attention.variant"},
              "attention.kv_heads " + std::to_string(a.kv_heads) + " must divide model.heads " +
                  std::to_string(m.heads) + " for " + v +
                  "; valid values: " + join_ints(divisors(m.heads)) + " (0 = heads)");
    }
  }
  if (v == "gkva" && (a.q_heads == 0 || m.heads % a.q_heads != 0)) {
    fail_at({"attention.q_heads", "model.heads", "attention.variant"},
            "gkva needs attention.q_heads > 0 dividing model.heads " + std::to_string(m.heads) +
                ", got " + std::to_string(a.q_heads) +
                "; valid values: " + join_ints(divisors(m.heads)));
  }
  if (v == "gqkva" && a.q_groups * a.kv_groups != m.heads) {
    std::string pairs;
    for (const int64_t d : divisors(m.heads)) {
      pairs += (pairs.empty() ? "" : ", ") + std::to_string(d) + "x" + std::to_string(m.heads / d);
    }
    fail_at({"attention.q_groups", "attention.kv_groups", "model.heads", "attention.variant"},
            "gqkva needs attention.q_groups * attention.kv_groups = model.heads " +
                std::to_string(m.heads) + ", got " + std::to_string(a.q_groups) + " * " +
                std::to_string(a.kv_groups) + "; valid q_groups x kv_groups: " + pairs);
  }
  const std::string leak = noncausal_reason(c);
  if (!leak.empty() && !a.allow_noncausal) {
    fail_at({"attention.faithful", "attention.variant", "task"},
            "attention.variant " + v + " with attention.faithful = true is not causal: " + leak +
                (c.task == "s2s" ? ", so a decoder trained with it sees later target tokens. Set "
                                 : ", so a language model trained with it sees the future. Set ") +
                "attention.allow_noncausal: true to train it anyway (the summary records it)");
  }

  const std::string& dataset = c.data.dataset;
  // The image side of the datasets whose side is known before reading (idx files say theirs:
  // the model checks it when the data is read).
  if (c.task == "vit") {
    const int64_t side = dataset == "fashion-mnist" || dataset == "mnist" ? 28
                         : dataset == "cifar10" || dataset == "cifar100"  ? 32
                                                                          : 0;
    if (side > 0 && side % m.patch != 0) {
      fail_at({"model.patch", "data.dataset"},
              "model.patch " + std::to_string(m.patch) + " does not divide the image side " +
                  std::to_string(side) + " of " + dataset + " (patches tile the image)");
    }
  }
  const bool text_dataset = dataset == "fortunes" || dataset == "text" || dataset == "bin";
  const bool fits = c.task == "lm"    ? text_dataset
                    : c.task == "s2s" ? text_dataset || dataset == "pairs"
                                      : !text_dataset && dataset != "pairs";
  if (!fits) {
    fail_at({"data.dataset", "task"},
            "data.dataset " + dataset + " is not a dataset of task " + c.task + "; " + c.task +
                " datasets: " +
                (c.task == "lm"    ? "fortunes, text, bin"
                 : c.task == "s2s" ? "fortunes, text, bin (span corruption), pairs"
                                   : "fashion-mnist, mnist, idx, cifar10, cifar100"));
  } else if (dataset != "fortunes" && dataset != "fashion-mnist" && c.data.path.empty()) {
    fail_at({"data.dataset", "data.path"},
            "data.dataset " + dataset + " needs data.path (the file or folder to read)");
  }
  if (c.task == "s2s") {
    // A value other than the default where it has no effect is a mistake (the canonical form
    // writes every key of the task, so a key at its default is no sign of intent).
    const bool pairs = dataset == "pairs";
    const DataConfig unset;
    for (const auto& [key, changed] :
         {std::pair<const char*, bool>{"data.noise_density",
                                       c.data.noise_density != unset.noise_density},
          {"data.mean_span", c.data.mean_span != unset.mean_span}}) {
      if (pairs && changed) {
        fail_at({key, "data.dataset"},
                std::string(key) +
                    " applies to span corruption (data.dataset fortunes, text or "
                    "bin), not to pairs");
      }
    }
    if (!pairs && c.data.target_len != unset.target_len) {
      fail_at({"data.target_len", "data.dataset"},
              "data.target_len applies to data.dataset pairs; span corruption derives its target "
              "length from data.seq_len");
    }
    if (c.attention.path == "fused") {
      fail_at({"attention.path", "task"},
              "attention.path fused cannot train s2s: its relative position bias needs gradients "
              "through the scores; use attention.path auto or reference");
    }
  }
  if (c.init.convert != "none" && c.init.from.empty()) {
    fail_at({"init.convert", "init.from"},
            "init.convert " + c.init.convert + " needs init.from (the parent run dir)");
  }
  if (c.train.eval_each_epoch && c.train.epochs == 0) {
    fail_at({"train.eval_each_epoch", "train.epochs"},
            "train.eval_each_epoch needs train.epochs > 0 (a run of train.steps has no epochs)");
  }
  if (c.train.eval_subset > 0 && c.attention.variant == "dgqa" && c.attention.faithful) {
    // Faithful dgqa's evaluation leaves its allocation and cache at the last evaluation batch's,
    // and training continues from them (as the authors' code does): a subset would change the
    // final metrics.
    fail_at({"train.eval_subset", "attention.faithful"},
            "train.eval_subset cannot be used with faithful dgqa: its evaluation changes the "
            "allocation training continues from, so a subset evaluation would change the final "
            "metrics; leave train.eval_subset at 0 for this arm");
  }
  if (c.attention.attn_dropout > 0 && c.attention.path == "fused") {
    fail_at({"attention.attn_dropout", "attention.path"},
            "attention.attn_dropout needs the reference path (the fused kernels draw their masks "
            "from the global generator); use attention.path auto or reference");
  }
  // An automatic warm-up always fits (warmup_steps); one that was set must fit the run.
  if (c.train.epochs == 0 && c.train.warmup > c.train.steps) {
    TrainConfig automatic = c.train;
    automatic.warmup = kAutoWarmup;
    fail_at({"train.warmup", "train.steps"},
            "train.warmup " + std::to_string(c.train.warmup) + " exceeds train.steps " +
                std::to_string(c.train.steps) +
                "; without train.warmup the warm-up is automatic (" +
                std::to_string(warmup_steps(automatic, c.train.steps)) +
                (warmup_steps(automatic, c.train.steps) == 1 ? " step here)" : " steps here)"));
  }
  if (c.train.min_lr > c.train.lr) {
    fail_at({"train.min_lr", "train.lr"}, "train.min_lr " + format_float(c.train.min_lr) +
                                              " exceeds train.lr " + format_float(c.train.lr));
  }
  problems.throw_if_any();
}

}  // namespace ablate::runner
