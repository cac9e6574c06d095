#pragma once
// YAML -> Config with validation (docs/design.md section 3). Torch-free; yaml-cpp stays inside
// runner (yaml_config.h is the internal layer the sweep parser shares).
//
// A config file is a mapping: `task`, `seed` and the sections data, model, attention, train and
// init as nested mappings. Dotted keys are accepted at any level (`attention.kv_heads: 2` at top
// level, or `attention: {kv_heads: 2}`). An empty file gives the defaults. Every error is a
// ConfigError that names the file, line, column and key; a file with several mistakes gets them
// all in one ConfigError (the keys of a mapping, then the constraints of validate()).
#include <cstdint>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "ablate/runner/config.h"

namespace ablate::runner {

// One problem of a configuration: where, which key, what.
struct ConfigProblem {
  std::string file;     // file name, or "command line"
  int line = 0;         // 1-based; 0 = not known (a default, the command line)
  int column = 0;       // 1-based; 0 = not known
  std::string key;      // dotted key; "" for a YAML syntax error
  std::string message;  // without the location and key

  // "FILE:LINE:COLUMN: KEY: message"; parts that are not known are left out ("FILE: KEY:
  // message" when there is no line, "FILE:LINE:COLUMN: message" when there is no key).
  std::string text() const;
};

// Invalid configuration: one problem, or every problem one pass found (a file with three mistakes
// reports all three). what() is the problems' text(), one per line. The accessors give the first.
class ConfigError : public std::runtime_error {
 public:
  ConfigError(std::string file, int line, int column, std::string key, std::string message);
  // At least one problem, in the order found.
  explicit ConfigError(std::vector<ConfigProblem> problems);

  const std::string& file() const { return problems_.front().file; }
  int line() const { return problems_.front().line; }
  int column() const { return problems_.front().column; }
  const std::string& key() const { return problems_.front().key; }
  const std::string& message() const { return problems_.front().message; }
  const std::vector<ConfigProblem>& problems() const { return problems_; }

 private:
  std::vector<ConfigProblem> problems_;
};

// The most problems one ConfigError lists; the rest are counted in a last line.
constexpr size_t kMaxConfigProblems = 20;

// Collects the problems of independent checks, so that they are reported together: each problem
// once (one found again is dropped), at most kMaxConfigProblems (the rest are counted).
class ConfigProblems {
 public:
  // Runs check(); when it throws ConfigError, keeps its problems and returns false.
  template <typename Check>
  bool check(Check&& check) {
    try {
      check();
      return true;
    } catch (const ConfigError& e) {
      add(e);
      return false;
    }
  }
  void add(const ConfigProblem& problem);
  void add(const ConfigError& error);
  bool empty() const { return problems_.empty(); }
  // Throws one ConfigError with every problem kept (and a last line "N more problems not
  // shown" beyond the limit); does nothing when there is none.
  void throw_if_any() const;

 private:
  std::vector<ConfigProblem> problems_;  // the first kMaxConfigProblems
  std::set<std::string> seen_;           // the text of every problem added
  size_t not_shown_ = 0;
};

// Where a key was set.
struct Location {
  std::string file;  // file name, or "command line"
  int line = 0;      // 1-based; 0 = not known
  int column = 0;    // 1-based; 0 = not known
};

// Where each key of a config was set, so that validation can point at the key that broke a
// constraint. Keys never set are reported at source() without a line.
class Locations {
 public:
  explicit Locations(std::string source = "") : source_(std::move(source)) {}

  // Records that `key` was set at `where` (a later call for the same key wins).
  void set(const std::string& key, const Location& where);
  bool has(const std::string& key) const { return keys_.count(key) != 0; }
  // Where `key` was set, or {source(), 0, 0}.
  Location at(const std::string& key) const;
  // Of `keys`, the one set last; the first of them when none was set.
  std::string latest(const std::vector<std::string>& keys) const;
  const std::string& source() const { return source_; }
  // The keys set, in key order.
  std::vector<std::string> keys() const;

 private:
  struct Entry {
    Location where;
    int64_t order;
  };
  std::string source_;
  std::map<std::string, Entry> keys_;
  int64_t next_order_ = 0;
};

// Reads a config file (a missing file is an error), applies `overrides` (KEY=VALUE, see
// apply_override), fills in the defaults that depend on other keys (resolve_defaults) and
// validates the result.
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});

// As load_config, from text; `source_name` is the file name used in errors.
Config parse_config(const std::string& yaml_text, const std::string& source_name,
                    const std::vector<std::string>& overrides = {});

// Sets one key from "KEY=VALUE", VALUE read as a YAML scalar (train.lr=1e-3,
// attention.qk_norm=true; an empty VALUE is the empty string), with the same checks as a file
// (source "command line"), then validates the whole config. Resolves no default: `config` is
// taken as resolved.
void apply_override(Config& config, const std::string& key_equals_value);

// The defaults that depend on other keys, filled in once every layer of a config is applied (a
// config file and its overrides; a sweep job's base, overrides, grid cell and stage):
//  - data.dataset, when `locations` has no data.dataset: fashion-mnist for task vit (fortunes,
//    the Config default, is the lm's);
//  - train.warmup, when automatic (kAutoWarmup) and train.epochs is 0: warmup_steps(train,
//    train.steps). With train.epochs the run's length is known only once its data is loaded, so
//    training resolves it then.
void resolve_defaults(Config& config, const Locations& locations);

// Why the attention of an lm `config` sees later positions by construction, or "" when it does
// not: the faithful kdgqa and dgqa allocate queries from key norms over the whole sequence, the
// faithful pgqa draws noise from statistics over it (docs/design.md section 4, Causal safety).
// validate() refuses such an lm unless attention.allow_noncausal; training checks causality
// again, empirically, before it starts.
std::string noncausal_reason(const Config& config);

// s2s: whether attention.sites names `site` (encoder, decoder or cross).
bool has_site(const Config& config, const std::string& site);

// The cross-field constraints, the task of every key that was set, and every field's range and
// choices. Throws one ConfigError with every constraint that fails, each at the location of its
// offending key (the one set last when a constraint involves several). A value out of range or
// of the other task ends the check there: the constraints that build on it are not tried.
void validate(const Config& config, const Locations& locations = Locations());

}  // namespace ablate::runner
