#pragma once
// YAML -> Config with validation (docs/design.md section 3). Torch-free; yaml-cpp stays inside
// runner (yaml_config.h is the internal layer the sweep parser shares).
//
// A config file is a mapping: `task`, `seed` and the sections data, model, attention, train and
// init as nested mappings. Dotted keys are accepted at any level (`attention.kv_heads: 2` at top
// level, or `attention: {kv_heads: 2}`). An empty file gives the defaults. Every error is a
// ConfigError that names the file, line, column and key.
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "ablate/runner/config.h"

namespace ablate::runner {

// Invalid configuration. what() is "FILE:LINE:COLUMN: KEY: message"; parts that are not known
// are left out ("FILE: KEY: message" when there is no line, "FILE:LINE:COLUMN: message" for a
// YAML syntax error, which has no key).
class ConfigError : public std::runtime_error {
 public:
  ConfigError(std::string file, int line, int column, std::string key, std::string message);

  const std::string& file() const { return file_; }
  int line() const { return line_; }      // 1-based; 0 = not known (a default, the command line)
  int column() const { return column_; }  // 1-based; 0 = not known
  const std::string& key() const { return key_; }
  const std::string& message() const { return message_; }  // without the location and key

 private:
  std::string file_;
  int line_;
  int column_;
  std::string key_;
  std::string message_;
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

// Reads and validates a config file (a missing file is an error), then applies `overrides`
// (KEY=VALUE, see apply_override) and validates the result.
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});

// As load_config, from text; `source_name` is the file name used in errors.
Config parse_config(const std::string& yaml_text, const std::string& source_name,
                    const std::vector<std::string>& overrides = {});

// Sets one key from "KEY=VALUE", VALUE read as a YAML scalar (train.lr=1e-3,
// attention.qk_norm=true; an empty VALUE is the empty string), with the same checks as a file
// (source "command line"), then validates the whole config.
void apply_override(Config& config, const std::string& key_equals_value);

// The cross-field constraints, the task of every key that was set, and every field's range and
// choices. Throws ConfigError at the location of the offending key (the one set last when a
// constraint involves several).
void validate(const Config& config, const Locations& locations = Locations());

}  // namespace ablate::runner
