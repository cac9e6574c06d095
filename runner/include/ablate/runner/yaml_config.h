#pragma once
// Runner-internal: applying YAML nodes to a Config with locations. Shared by parse.cpp and the
// sweep parser (`base:` is a config mapping; a `grid:` block's dotted keys are set one value at a
// time). Not for core or experiments: no YAML::Node leaves runner.
#include <yaml-cpp/yaml.h>

#include <set>
#include <string>
#include <vector>

#include "ablate/runner/config.h"
#include "ablate/runner/parse.h"

namespace ablate::runner {

// The 1-based location of a yaml-cpp mark in `file` (line 0 for a null mark).
Location location_of(const YAML::Mark& mark, const std::string& file);

// YAML::Load that turns a syntax error into a ConfigError at yaml-cpp's position.
YAML::Node load_yaml(const std::string& text, const std::string& file);

// Applies every entry of the mapping `node` to `config`; its keys are relative to `prefix` (""
// at top level, "attention" inside `attention:`) and may be dotted. A null node is an empty
// mapping. Each key is recorded in `locations`; a key given twice within `node` is an error.
// Validates single values (type, range, choices), not cross-field constraints: call validate()
// when everything is applied.
void apply_yaml_mapping(Config& config, Locations& locations, const YAML::Node& node,
                        const std::string& file, const std::string& prefix = "");

// Applies one entry: `key` is a full dotted key (a field, whose value must be a scalar, or a
// section, whose value must be a mapping) written at `key_at`. `seen` collects the fields set so
// far by this mapping to catch duplicates (nullptr: no check).
void apply_yaml_entry(Config& config, Locations& locations, const std::string& key,
                      const YAML::Node& value, const Location& key_at,
                      std::set<std::string>* seen = nullptr);

// Throws the ConfigError `at: key: message`.
[[noreturn]] void fail(const Location& at, const std::string& key, const std::string& message);

// How a node reads in a message: "a mapping", "a sequence", a scalar's text (a quoted one as
// `the string "..."`), "nothing".
std::string describe(const YAML::Node& node);

// "; first given at line L, column C" for a duplicate's message ("" without a line).
std::string first_given(const Location& first);

// Where `node` was written; `fallback` for a node without a position of its own (a null value).
Location where(const YAML::Node& node, const Location& fallback);

// One entry of a mapping node with its key's location.
struct Entry {
  std::string key;
  Location key_at;
  YAML::Node value;
};
// The entries of a mapping node, refusing non-scalar and duplicate keys (yaml-cpp keeps both
// entries of a duplicate key); `prefix` names the mapping in the error of a non-scalar key.
std::vector<Entry> entries_of(const YAML::Node& map, const std::string& file,
                              const std::string& prefix = "");

// The text of a config or sweep file (`what`: "config", "sweep"); a missing file, a folder or an
// unreadable file is a ConfigError naming the path.
std::string read_text_file(const std::string& path, const std::string& what);

// Applies one command-line KEY=VALUE (the value read as a YAML scalar; KEY= is the empty string)
// at the location "command line", without validating the whole config (a sweep's base alone
// need not be valid; its cells must).
void apply_override_entry(Config& config, Locations& locations, const std::string& text);

}  // namespace ablate::runner
