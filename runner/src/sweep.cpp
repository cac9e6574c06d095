#include "ablate/runner/sweep.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <map>
#include <set>
#include <type_traits>
#include <unordered_map>
#include <variant>

#include "ablate/results/printable.h"
#include "ablate/runner/canonical.h"
#include "ablate/runner/ensembles.h"
#include "ablate/runner/schema.h"
#include "ablate/runner/yaml_config.h"
#include "sweep_parts.h"

namespace ablate::runner {
namespace {

const char* const kCommandLine = "command line";
const std::vector<std::string> kTopKeys = {
    "name",  "task", "base", "seeds", "grid", "exclude", "stages", "slurm", "seeds_per_process",
    "report"};
const std::vector<std::string> kStageKeys = {"name", "set", "from", "convert"};
const char* const kSeedMessage =
    "the seed is set by `seeds:` (a count or a list), not as a config key";
constexpr size_t kMaxNameLength = 100;

FieldValue read_value(const FieldInfo& field, const Config& config) {
  Config& c = const_cast<Config&>(config);  // the accessors only read here
  return std::visit([&](auto ref) -> FieldValue { return ref(c); }, field.ref);
}

void write_value(const FieldInfo& field, Config& config, const FieldValue& value) {
  std::visit(
      [&](auto ref) {
        using T = std::decay_t<decltype(ref(config))>;
        ref(config) = std::get<T>(value);
      },
      field.ref);
}

const FieldInfo& field_of(const std::string& key) {
  const FieldInfo* f = find_field(key);
  if (f == nullptr) fail({}, key, "internal error: not a config key");
  return *f;
}

// Grid, exclude and stage keys name single fields, and never the seed.
void check_field_key(const std::string& key, const Location& key_at, const char* where) {
  if (key == "seed") fail(key_at, key, kSeedMessage);
  if (is_section(key)) {
    fail(key_at, key,
         std::string("is a section; ") + where + " keys are dotted field keys (" + key + "." +
             "KEY: ...)");
  }
}

// One value of `key`, checked exactly as in a config file by apply_yaml_entry (type, range,
// choices, unknown key with did-you-mean).
Setting read_setting(const std::string& key, const YAML::Node& value, const Location& key_at) {
  Config scratch;
  Locations locations;
  apply_yaml_entry(scratch, locations, key, value, key_at);
  const FieldInfo& f = field_of(key);
  return Setting{key, read_value(f, scratch), format_value(f, scratch), where(value, key_at)};
}

// ConfigError `e` again with another key: sweep keys such as `seeds` are checked as config keys.
[[noreturn]] void rethrow_as(const ConfigError& e, const std::string& key) {
  throw ConfigError(e.file(), e.line(), e.column(), key, e.message());
}

int64_t read_seed(const YAML::Node& value, const Location& key_at) {
  try {
    return std::get<int64_t>(read_setting("seed", value, key_at).value);
  } catch (const ConfigError& e) {
    rethrow_as(e, "seeds");
  }
}

// The values of a grid axis or a zip list: one scalar or a non-empty list of them.
std::vector<Setting> read_values(const std::string& key, const YAML::Node& value,
                                 const Location& key_at, bool must_be_list) {
  const Location value_at = where(value, key_at);
  if (value.IsSequence()) {
    if (value.size() == 0) fail(value_at, key, "empty list of values");
    std::vector<Setting> out;
    for (const auto& v : value) out.push_back(read_setting(key, v, key_at));
    return out;
  }
  if (must_be_list) {
    fail(value_at, key, "zip values are lists that move together, got " + describe(value));
  }
  if (!value.IsScalar()) {
    fail(value_at, key, "expected a value or a list of values, got " + describe(value));
  }
  return {read_setting(key, value, key_at)};
}

// An axis whose keys are all outside the job id gives one job for all its values.
void check_semantic_axis(const GridAxis& axis) {
  if (axis.points.size() < 2) return;
  for (const auto& key : axis.keys) {
    if (field_of(key).semantic) return;
  }
  fail(axis.at, axis.keys.front(),
       "is not part of the job id (paths, devices and logging cadence are not), so its " +
           std::to_string(axis.points.size()) +
           " values would be one job; set it in base or on the command line");
}

GridAxis read_zip(const YAML::Node& value, const Location& zip_at, const std::string& file,
                  std::map<std::string, Location>& seen) {
  GridAxis axis;
  axis.zip = true;
  axis.at = zip_at;
  if (!value.IsMap() || value.size() == 0) {
    fail(where(value, zip_at), "zip",
         "expected a mapping of keys to lists of equal length, got " + describe(value));
  }
  std::string first_key;
  for (const Entry& e : entries_of(value, file)) {
    check_field_key(e.key, e.key_at, "zip");
    const auto [it, inserted] = seen.emplace(e.key, e.key_at);
    if (!inserted) fail(e.key_at, e.key, "duplicate key in the block" + first_given(it->second));
    const std::vector<Setting> values = read_values(e.key, e.value, e.key_at, true);
    if (axis.keys.empty()) {
      first_key = e.key;
      axis.points.resize(values.size());
    } else if (values.size() != axis.points.size()) {
      fail(e.key_at, e.key,
           "zip lists have unequal lengths: " + first_key + " has " +
               std::to_string(axis.points.size()) +
               (axis.points.size() == 1 ? " value, " : " values, ") + e.key + " has " +
               std::to_string(values.size()) + (values.size() == 1 ? " value" : " values"));
    }
    axis.keys.push_back(e.key);
    for (size_t i = 0; i < values.size(); ++i) axis.points[i].push_back(values[i]);
  }
  return axis;
}

GridBlock read_block(const YAML::Node& node, int number, const Location& fallback,
                     const std::string& file) {
  GridBlock block;
  block.at = where(node, fallback);
  if (node.IsNull()) return block;  // `- ` alone: one cell, the base
  if (!node.IsMap()) {
    fail(block.at, "grid",
         "grid block " + std::to_string(number) +
             ": expected a mapping of config keys to values, got " + describe(node));
  }
  std::map<std::string, Location> seen;  // keys of the block, zip's included
  for (const Entry& e : entries_of(node, file)) {
    if (block.axes.empty()) block.at = e.key_at;
    if (e.key == "zip") {
      block.axes.push_back(read_zip(e.value, e.key_at, file, seen));
    } else {
      check_field_key(e.key, e.key_at, "grid");
      const auto [it, inserted] = seen.emplace(e.key, e.key_at);
      if (!inserted) fail(e.key_at, e.key, "duplicate key in the block" + first_given(it->second));
      GridAxis axis;
      axis.keys = {e.key};
      axis.at = e.key_at;
      std::map<std::string, Location> values;
      for (Setting& s : read_values(e.key, e.value, e.key_at, false)) {
        const auto [v, fresh] = values.emplace(s.text, s.at);
        if (!fresh) fail(s.at, e.key, "duplicate value " + s.text + first_given(v->second));
        axis.points.push_back({std::move(s)});
      }
      block.axes.push_back(std::move(axis));
    }
    check_semantic_axis(block.axes.back());
  }
  return block;
}

ExcludeRule read_exclude(const YAML::Node& node, int number, const Location& fallback,
                         const std::string& file) {
  ExcludeRule rule;
  rule.at = where(node, fallback);
  if (!node.IsMap() || node.size() == 0) {
    fail(rule.at, "exclude",
         "exclude entry " + std::to_string(number) +
             ": expected a mapping of config keys to values, got " + describe(node));
  }
  for (const Entry& e : entries_of(node, file)) {
    check_field_key(e.key, e.key_at, "exclude");
    rule.match.push_back(read_setting(e.key, e.value, e.key_at));
  }
  return rule;
}

// A stage's `from:` as written, resolved once every stage name is known.
struct StageFrom {
  std::string name;
  Location at;
};

StageSpec read_stage(const YAML::Node& node, int number, const Location& fallback,
                     const std::string& file, StageFrom& from) {
  StageSpec stage;
  stage.at = where(node, fallback);
  if (!node.IsMap()) {
    fail(stage.at, "stages",
         "stage " + std::to_string(number) +
             ": expected a mapping with name, set, from, convert; got " + describe(node));
  }
  bool has_name = false;
  bool has_set = false;
  YAML::Node set;
  Location set_at;
  for (const Entry& e : entries_of(node, file)) {
    const Location value_at = where(e.value, e.key_at);
    if (e.key == "name" || e.key == "from") {
      if (!e.value.IsScalar()) {
        fail(value_at, e.key, "expected a stage name, got " + describe(e.value));
      }
      if (e.key == "name") {
        has_name = true;
        stage.name = e.value.Scalar();
        stage.at = value_at;
        const std::string why = sweep_name_error(stage.name);
        if (!why.empty()) {
          fail(value_at, "name", "stage name " + yaml_quote(stage.name) + " " + why);
        }
      } else {
        from = {e.value.Scalar(), value_at};
      }
    } else if (e.key == "convert") {
      try {
        const Setting s = read_setting("init.convert", e.value, e.key_at);
        stage.convert = std::get<std::string>(s.value);
      } catch (const ConfigError& error) {
        rethrow_as(error, "convert");
      }
      stage.has_convert = true;
      stage.convert_at = value_at;
    } else if (e.key == "set") {
      has_set = true;
      set = e.value;
      set_at = e.key_at;
    } else {
      const std::string near = nearest_word(e.key, kStageKeys);
      fail(e.key_at, e.key,
           "unknown stage key; " + (near.empty() ? "expected name, set, from or convert"
                                                 : "did you mean " + near + "?"));
    }
  }
  if (!has_name) fail(stage.at, "name", "stage " + std::to_string(number) + " has no name");
  if (stage.has_convert && stage.convert != "none" && from.name.empty()) {
    fail(stage.convert_at, "convert",
         "stage " + stage.name + " converts, so it needs from: (the stage it starts from)");
  }
  if (has_set) {
    if (!set.IsMap() && !set.IsNull()) {
      fail(where(set, set_at), "set", "expected a mapping of config keys, got " + describe(set));
    }
    Config scratch;
    Locations locations(file);
    apply_yaml_mapping(scratch, locations, set, file);
    for (const auto& key : locations.keys()) {
      const Location at = locations.at(key);
      if (key == "seed") fail(at, key, kSeedMessage);
      if (key == "init.from" && !from.name.empty()) {
        fail(at, key, "a stage with from: starts from its parent's run dir, filled in at launch");
      }
      if (key == "init.convert" && stage.has_convert) {
        fail(at, key, "given twice: by convert: and by set:");
      }
      const FieldInfo& f = field_of(key);
      stage.set.push_back({key, read_value(f, scratch), format_value(f, scratch), at});
    }
  }
  return stage;
}

void resolve_from(std::vector<StageSpec>& stages, const std::vector<StageFrom>& froms) {
  for (size_t i = 0; i < stages.size(); ++i) {
    const StageFrom& from = froms[i];
    if (from.name.empty()) continue;
    std::vector<std::string> earlier;
    for (size_t j = 0; j < i; ++j) earlier.push_back(stages[j].name);
    const auto it = std::find(earlier.begin(), earlier.end(), from.name);
    if (it != earlier.end()) {
      stages[i].from = from.name;
      stages[i].from_index = static_cast<int>(it - earlier.begin());
      continue;
    }
    std::string message;
    if (from.name == stages[i].name) {
      message = "stage " + from.name + " cannot start from itself";
    } else if (std::any_of(stages.begin() + i + 1, stages.end(),
                           [&](const StageSpec& s) { return s.name == from.name; })) {
      message = "stage " + from.name + " comes later; a stage starts from an earlier one";
    } else {
      const std::string near = nearest_word(from.name, earlier);
      message = "no earlier stage named " + from.name +
                (near.empty() ? "" : "; did you mean " + near + "?");
    }
    fail(from.at, "from", message);
  }
}

// A seed on the command line is refused before the shared override path (seeds come from
// `seeds:`).
void apply_sweep_override(Config& config, Locations& locations, const std::string& text) {
  if (text.substr(0, text.find('=')) == "seed") fail({kCommandLine, 0, 0}, "seed", kSeedMessage);
  apply_override_entry(config, locations, text);
}

// ---------------------------------------------------------------- cells

// One cell of a block: its grid values in axis order (a zip's keys in the order written).
struct Cell {
  int block = 0;  // 1-based
  std::vector<const Setting*> values;
  Config config;                // base <- overrides <- values
  Locations locations;          // where each key of `config` was set (grid values at the value)
  std::vector<size_t> matched;  // indices of the exclude rules that match it
};

bool matches(const ExcludeRule& rule, const Config& config) {
  return std::all_of(rule.match.begin(), rule.match.end(), [&](const Setting& s) {
    return format_value(field_of(s.key), config) == s.text;
  });
}

// Calls f(cell) for every cell of every block, in order, the last axis fastest.
template <typename F>
void for_each_cell(const SweepSpec& spec, F f) {
  for (size_t b = 0; b < spec.blocks.size(); ++b) {
    const GridBlock& block = spec.blocks[b];
    std::vector<size_t> index(block.axes.size(), 0);
    while (true) {
      Cell cell;
      cell.block = static_cast<int>(b) + 1;
      cell.config = spec.base;
      cell.locations = spec.base_locations;
      for (size_t a = 0; a < block.axes.size(); ++a) {
        for (const Setting& s : block.axes[a].points[index[a]]) {
          write_value(field_of(s.key), cell.config, s.value);
          cell.locations.set(s.key, s.at);
          cell.values.push_back(&s);
        }
      }
      // `exclude` compares the values the cell trains with: its defaults resolved.
      Config resolved = cell.config;
      resolve_defaults(resolved, cell.locations);
      for (size_t r = 0; r < spec.excludes.size(); ++r) {
        if (matches(spec.excludes[r], resolved)) cell.matched.push_back(r);
      }
      f(cell);
      // Odometer step: the last axis fastest.
      size_t a = block.axes.size();
      while (a > 0 && ++index[a - 1] == block.axes[a - 1].points.size()) index[--a] = 0;
      if (a == 0) break;
    }
  }
}

std::string cell_text(const Cell& cell) {
  std::string out = "{";
  for (size_t i = 0; i < cell.values.size(); ++i) {
    out += (i ? ", " : "") + cell.values[i]->key + ": " + cell.values[i]->text;
  }
  return out + "}";
}

// The problems of a sweep's cells, each once: one that many cells share (a base key they all
// inherit, a grid value of several cells) is reported once, with the first cell and stage that
// has it and how many more cells do.
class CellProblems {
 public:
  // The problems of one cell (`cell`: "grid block 1, cell {...}", "" without a grid) and stage
  // (`stage`: its name, "" without stages).
  void add(const ConfigError& error, const std::string& cell, const std::string& stage) {
    for (const ConfigProblem& p : error.problems()) {
      const auto [at, fresh] = index_.emplace(p.text(), found_.size());
      if (fresh) found_.push_back(Found{p, cell, {}, {}});
      Found& f = found_[at->second];
      f.cells.insert(cell);
      if (std::find(f.stages.begin(), f.stages.end(), stage) == f.stages.end()) {
        f.stages.push_back(stage);
      }
    }
  }

  // Throws them all, each message prefixed with where it was found; `cells`: the cells checked.
  void throw_if_any(int64_t cells) const {
    ConfigProblems out;
    for (const Found& f : found_) {
      const int64_t n = static_cast<int64_t>(f.cells.size());
      std::string context;
      if (!f.first_cell.empty()) {
        context = n > 1 && n == cells ? "every cell of the grid"
                  : n > 1 ? f.first_cell + " and " + std::to_string(n - 1) + " more cell" +
                                (n == 2 ? "" : "s")
                          : f.first_cell;
      }
      if (!f.stages.front().empty()) {
        std::string names;
        for (const auto& s : f.stages) names += (names.empty() ? "" : ", ") + s;
        context += (context.empty() ? "" : ", ") +
                   std::string(f.stages.size() > 1 ? "stages " : "stage ") + names;
      }
      ConfigProblem p = f.problem;
      if (!context.empty()) p.message = context + ": " + p.message;
      out.add(p);
    }
    out.throw_if_any();
  }

 private:
  struct Found {
    ConfigProblem problem;
    std::string first_cell;
    std::set<std::string> cells;
    std::vector<std::string> stages;  // in the order found
  };
  std::vector<Found> found_;             // in the order found
  std::map<std::string, size_t> index_;  // a problem's text -> its index in found_
};

}  // namespace

int64_t job_count_bound(const SweepSpec& spec, int64_t limit) {
  const int64_t over = limit + 1;
  auto times = [&](int64_t a, int64_t b) {
    return a > over / std::max<int64_t>(b, 1) ? over : a * b;
  };
  int64_t cells = 0;
  for (const auto& block : spec.blocks) {
    int64_t n = 1;
    for (const auto& axis : block.axes) n = times(n, static_cast<int64_t>(axis.points.size()));
    cells = std::min(over, cells + n);
  }
  const int64_t stages = std::max<int64_t>(1, static_cast<int64_t>(spec.stages.size()));
  return times(times(cells, static_cast<int64_t>(spec.seeds.size())), stages);
}

std::string sweep_name_error(const std::string& name) {
  if (name.empty()) return "is empty";
  if (name.size() > kMaxNameLength) {
    return "has " + std::to_string(name.size()) + " characters; at most " +
           std::to_string(kMaxNameLength);
  }
  for (const char c : name) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return "contains a control character";
  }
  for (const char c : name) {
    if (c == '/' || c == '\\') return std::string("contains '") + c + "', a path separator";
  }
  if (name.find("..") != std::string::npos) return "contains \"..\"";
  auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  auto character = [&](size_t i) { return results::character_at(name, i); };
  if (!alnum(name[0])) {
    return "starts with '" + character(0) + "'; a name starts with a letter or a digit";
  }
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    if (!alnum(c) && c != '-' && c != '_' && c != '.') {
      return "contains '" + character(i) +
             "'; a name has only letters A-Z and a-z, digits, '-', '_' and '.'";
    }
  }
  return "";
}

// The `slurm:` mapping: the Slurm backend's settings, typed, with the key's line in errors.
static SlurmOptions parse_slurm(const YAML::Node& node, const std::string& file) {
  // Each key and the field it sets; `sbatch` is a list of #SBATCH lines.
  static const std::map<std::string, std::string SlurmOptions::*> kTexts = {
      {"partition", &SlurmOptions::partition},
      {"time", &SlurmOptions::time_limit},
      {"mem", &SlurmOptions::memory},
      {"account", &SlurmOptions::account}};
  static const std::map<std::string, int SlurmOptions::*> kCounts = {
      {"gpus_per_task", &SlurmOptions::gpus_per_task},
      {"cpus_per_task", &SlurmOptions::cpus_per_task},
      {"max_parallel", &SlurmOptions::max_parallel}};
  static const std::vector<std::string> kKeys = {"partition",     "time",  "gpus_per_task",
                                                 "cpus_per_task", "mem",   "account",
                                                 "max_parallel",  "sbatch"};
  SlurmOptions o;
  for (const Entry& e : entries_of(node, file, "slurm")) {
    const std::string key = "slurm." + e.key;
    const Location at = where(e.value, e.key_at);
    if (std::find(kKeys.begin(), kKeys.end(), e.key) == kKeys.end()) {
      const std::string near = nearest_word(e.key, kKeys);
      fail(e.key_at, key,
           "unknown key; " + (near.empty() ? "expected partition, time, gpus_per_task, "
                                             "cpus_per_task, mem, account, max_parallel or sbatch"
                                           : "did you mean " + near + "?"));
    }
    if (e.key == "sbatch") {
      const bool list = e.value.IsSequence();
      if (!list && !e.value.IsScalar()) {
        fail(at, key, "expected #SBATCH lines (a list of text), got " + describe(e.value));
      }
      for (const auto& line : list ? e.value : YAML::Node(std::vector<YAML::Node>{e.value})) {
        if (!line.IsScalar()) fail(where(line, at), key, "expected text, got " + describe(line));
        const std::string why = slurm_text_problem(line.Scalar(), false);
        if (!why.empty()) fail(where(line, at), key, why);
        o.extra.push_back(line.Scalar());
      }
      continue;
    }
    if (!e.value.IsScalar()) fail(at, key, "expected a value, got " + describe(e.value));
    const std::string text = e.value.Scalar();
    if (const auto count = kCounts.find(e.key); count != kCounts.end()) {
      if (text.empty() || text.size() > 6 ||
          text.find_first_not_of("0123456789") != std::string::npos) {
        fail(at, key, "expected a whole number >= 0, got " + yaml_quote(text));
      }
      o.*(count->second) = std::stoi(text);
    } else {
      const std::string why = slurm_text_problem(text, true);
      if (!why.empty()) fail(at, key, why);
      o.*(kTexts.at(e.key)) = text;
    }
  }
  return o;
}

SweepSpec load_sweep(const std::string& path, const std::vector<std::string>& overrides) {
  return parse_sweep(read_text_file(path, "sweep"), path, overrides);
}

namespace {

// seeds: a count (0..n-1), a list of distinct seeds, or {min, max, step, until: decided}.
void read_seeds(const Entry& seeds, SweepSpec& spec) {
  spec.seeds_at = seeds.key_at;
  const YAML::Node& v = seeds.value;
  if (v.IsScalar()) {
    const int64_t n = read_seed(v, seeds.key_at);
    if (n < 1) fail(where(v, seeds.key_at), "seeds", "a count of seeds must be at least 1");
    if (n > kMaxSweepJobs) {
      fail(where(v, seeds.key_at), "seeds",
           std::to_string(n) + " seeds; at most " + std::to_string(kMaxSweepJobs));
    }
    spec.seeds.clear();
    for (int64_t s = 0; s < n; ++s) spec.seeds.push_back(s);
  } else if (v.IsSequence()) {
    if (v.size() == 0) fail(where(v, seeds.key_at), "seeds", "empty list of seeds");
    spec.seeds.clear();
    std::map<int64_t, Location> seen;
    for (const auto& item : v) {
      const int64_t s = read_seed(item, seeds.key_at);
      const Location at = where(item, seeds.key_at);
      const auto [it, inserted] = seen.emplace(s, at);
      if (!inserted) {
        fail(at, "seeds", "duplicate seed " + std::to_string(s) + first_given(it->second));
      }
      spec.seeds.push_back(s);
    }
  } else if (v.IsMap()) {
    read_sequential_seeds(seeds, spec);
  } else {
    fail(where(v, seeds.key_at), "seeds",
         "expected a count, a list of seeds or {min, max, until: decided}, got " + describe(v));
  }
}

// grid: a list of blocks (or one block as a mapping), each checked on its own into `problems`;
// no grid is one empty block (the base config alone).
void read_grid(const Entry* grid, const Location& grid_at, const std::string& file, SweepSpec& spec,
               ConfigProblems& problems) {
  if (grid != nullptr && grid->value.IsSequence()) {
    int number = 0;
    for (const auto& block : grid->value) {
      ++number;
      problems.check([&] { spec.blocks.push_back(read_block(block, number, grid_at, file)); });
    }
  } else if (grid != nullptr && grid->value.IsMap()) {
    problems.check([&] { spec.blocks.push_back(read_block(grid->value, 1, grid_at, file)); });
  } else if (grid != nullptr && !grid->value.IsNull()) {
    problems.check([&] {
      fail(where(grid->value, grid_at), "grid",
           "expected a list of blocks (- key: [values]), got " + describe(grid->value));
    });
  }
  spec.has_grid = !spec.blocks.empty();
  if (spec.blocks.empty()) spec.blocks.push_back(GridBlock{{}, grid_at});
}

// exclude: a list of rules, each checked on its own into `problems`.
void read_excludes(const Entry& exclude, const std::string& file, SweepSpec& spec,
                   ConfigProblems& problems) {
  spec.exclude_at = exclude.key_at;
  if (exclude.value.IsSequence()) {
    int number = 0;
    for (const auto& rule : exclude.value) {
      ++number;
      problems.check(
          [&] { spec.excludes.push_back(read_exclude(rule, number, exclude.key_at, file)); });
    }
  } else if (!exclude.value.IsNull()) {
    problems.check([&] {
      fail(where(exclude.value, exclude.key_at), "exclude",
           "expected a list of mappings (- {key: value, ...}), got " + describe(exclude.value));
    });
  }
}

// stages: checked up to their first problem (a later stage names earlier ones).
void read_stages(const Entry& stages, const std::string& file, SweepSpec& spec) {
  if (stages.value.IsSequence()) {
    std::vector<StageFrom> froms;
    std::map<std::string, Location> names;
    int number = 0;
    for (const auto& node : stages.value) {
      froms.emplace_back();
      StageSpec stage = read_stage(node, ++number, stages.key_at, file, froms.back());
      const auto [it, inserted] = names.emplace(stage.name, stage.at);
      if (!inserted) {
        fail(stage.at, "name", "duplicate stage name " + stage.name + first_given(it->second));
      }
      spec.stages.push_back(std::move(stage));
    }
    resolve_from(spec.stages, froms);
  } else if (!stages.value.IsNull()) {
    fail(where(stages.value, stages.key_at), "stages",
         "expected a list of stages (- {name: ..., set: {...}}), got " + describe(stages.value));
  }
}

// slurm: kept for the Slurm backend, which checks it.
void read_slurm_entry(const Entry& slurm, const std::string& file, SweepSpec& spec) {
  if (!slurm.value.IsMap() && !slurm.value.IsNull()) {
    fail(where(slurm.value, slurm.key_at), "slurm",
         "expected a mapping, got " + describe(slurm.value));
  }
  if (slurm.value.IsMap()) {
    spec.slurm_yaml = YAML::Dump(slurm.value) + "\n";
    spec.slurm = parse_slurm(slurm.value, file);
  }
}

// seeds_per_process: N or auto, as --seeds-per-process.
void read_seeds_per_process(const Entry& per_process, SweepSpec& spec) {
  const Location at = where(per_process.value, per_process.key_at);
  if (!per_process.value.IsScalar()) {
    fail(at, "seeds_per_process",
         "expected a whole number >= 1 or auto, got " + describe(per_process.value));
  }
  try {
    spec.seeds_per_process = parse_seeds_per_process(per_process.value.Scalar());
  } catch (const std::invalid_argument& e) {
    fail(at, "seeds_per_process", e.what());
  }
}

}  // namespace

SweepSpec parse_sweep(const std::string& yaml_text, const std::string& file,
                      const std::vector<std::string>& overrides) {
  SweepSpec spec;
  spec.file = file;
  spec.yaml_text = yaml_text;
  spec.overrides = overrides;
  spec.base_locations = Locations(file);
  const YAML::Node root = load_yaml(yaml_text, file);
  const Location top{file, 1, 1};
  if (!root.IsMap() && !root.IsNull()) {
    fail(where(root, top), "",
         "expected a mapping (name:, base:, grid:, ...), got " + describe(root));
  }

  // Each part of the file is checked even when an earlier one failed; their problems are thrown
  // together before the job count is checked.
  ConfigProblems problems;
  std::map<std::string, Entry> top_entries;
  if (root.IsMap()) {
    for (Entry& e : entries_of(root, file)) {
      problems.check([&] {
        if (std::find(kTopKeys.begin(), kTopKeys.end(), e.key) == kTopKeys.end()) {
          if (find_field(e.key) != nullptr || is_section(e.key)) {
            fail(e.key_at, e.key, "is a config key; put it under base: (or in a grid block)");
          }
          const std::string near = nearest_word(e.key, kTopKeys);
          fail(e.key_at, e.key,
               "unknown key; " + (near.empty() ? "expected name, task, base, seeds, grid, "
                                                 "exclude, stages, slurm, seeds_per_process or "
                                                 "report"
                                               : "did you mean " + near + "?"));
        }
        top_entries.emplace(e.key, e);
      });
    }
  }
  auto get = [&](const char* key) -> const Entry* {
    const auto it = top_entries.find(key);
    return it == top_entries.end() ? nullptr : &it->second;
  };

  // name
  problems.check([&] {
    const Entry* name = get("name");
    if (name == nullptr) fail(top, "name", "missing; a sweep needs a name (name: my-sweep)");
    const Location name_at = where(name->value, name->key_at);
    if (!name->value.IsScalar())
      fail(name_at, "name", "expected a name, got " + describe(name->value));
    spec.name = name->value.Scalar();
    const std::string why = sweep_name_error(spec.name);
    if (!why.empty()) fail(name_at, "name", "sweep name " + yaml_quote(spec.name) + " " + why);
  });

  // task, base, overrides
  if (const Entry* base = get("base")) {
    problems.check([&] {
      if (!base->value.IsMap() && !base->value.IsNull()) {
        fail(where(base->value, base->key_at), "base",
             "expected a mapping of config keys, got " + describe(base->value));
      }
      apply_yaml_mapping(spec.base, spec.base_locations, base->value, file);
    });
    if (spec.base_locations.has("seed")) {
      problems.check([&] { fail(spec.base_locations.at("seed"), "seed", kSeedMessage); });
    }
  }
  if (const Entry* task = get("task")) {
    problems.check([&] {
      if (spec.base_locations.has("task")) {
        fail(task->key_at, "task",
             "given twice: here and in base" + first_given(spec.base_locations.at("task")));
      }
      apply_yaml_entry(spec.base, spec.base_locations, "task", task->value, task->key_at);
    });
  }
  for (const auto& o : overrides) {
    problems.check([&] { apply_sweep_override(spec.base, spec.base_locations, o); });
  }

  if (const Entry* seeds = get("seeds")) problems.check([&] { read_seeds(*seeds, spec); });
  if (const Entry* report = get("report"))
    problems.check([&] { spec.report = read_report_question(*report, file); });
  if (spec.sequential.enabled && !spec.report.given) {
    problems.check([&] {
      fail(spec.sequential.at, "seeds",
           "until: decided needs a report: block saying what decides (report: {metric: "
           "final_val_loss, baseline: {attention.variant: mha}})");
    });
  }

  // grid
  const Entry* grid = get("grid");
  const Location grid_at = grid != nullptr ? grid->key_at : top;
  read_grid(grid, grid_at, file, spec, problems);

  if (const Entry* exclude = get("exclude")) read_excludes(*exclude, file, spec, problems);

  if (const Entry* stages = get("stages")) {
    problems.check([&] { read_stages(*stages, file, spec); });
  }

  if (const Entry* slurm = get("slurm")) {
    problems.check([&] { read_slurm_entry(*slurm, file, spec); });
  }
  if (const Entry* per_process = get("seeds_per_process")) {
    problems.check([&] { read_seeds_per_process(*per_process, spec); });
  }
  problems.throw_if_any();

  const int64_t bound = job_count_bound(spec, kMaxSweepJobs);
  if (bound > kMaxSweepJobs) {
    fail(spec.has_grid ? grid_at : spec.seeds_at, spec.has_grid ? "grid" : "seeds",
         "the sweep expands to more than " + std::to_string(kMaxSweepJobs) +
             " jobs (cells x seeds x stages, before deduplication)");
  }
  return spec;
}

std::vector<JobSpec> expand(const SweepSpec& spec, const JobCheck& job_check) {
  // A sweep without stages runs one unnamed stage that changes nothing.
  const std::vector<StageSpec> stages =
      spec.stages.empty() ? std::vector<StageSpec>{StageSpec{}} : spec.stages;
  const bool named_stages = !spec.stages.empty();

  std::vector<JobSpec> jobs;
  std::unordered_map<std::string, size_t> index_of;  // id -> index in jobs
  std::vector<std::set<std::string>> cell_keys;      // per job: keys its cells set, for params
  int64_t cells = 0;                                 // cells not excluded
  CellProblems problems;

  for_each_cell(spec, [&](const Cell& cell) {
    if (!cell.matched.empty()) return;
    ++cells;

    // Each stage's config for this cell, checked once (the seed changes nothing to check).
    std::vector<Config> configs;
    bool cell_ok = true;
    for (const StageSpec& stage : stages) {
      Config config = cell.config;
      Locations locations = cell.locations;
      for (const Setting& s : stage.set) {
        write_value(field_of(s.key), config, s.value);
        locations.set(s.key, s.at);
      }
      if (stage.from_index >= 0) config.init.from = "";
      if (stage.has_convert) {
        config.init.convert = stage.convert;
        locations.set("init.convert", stage.convert_at);
      }
      resolve_defaults(config, locations);
      Config check = config;
      check.seed = spec.seeds.front();
      if (stage.from_index >= 0) check.init.from = "(the parent's run dir)";
      const std::string where =
          spec.has_grid ? "grid block " + std::to_string(cell.block) + ", cell " + cell_text(cell)
                        : "";
      ConfigProblems found;
      found.check([&] { validate(check, locations); });
      if (job_check) found.check([&] { job_check(check, locations); });
      try {
        found.throw_if_any();
      } catch (const ConfigError& e) {
        problems.add(e, where, named_stages ? stage.name : "");
        cell_ok = false;
      }
      configs.push_back(std::move(config));
    }
    if (!cell_ok) return;

    for (const int64_t seed : spec.seeds) {
      std::vector<std::string> ids, arms;
      for (size_t s = 0; s < stages.size(); ++s) {
        const StageSpec& stage = stages[s];
        Config config = configs[s];
        config.seed = seed;
        const std::string parent = stage.from_index >= 0 ? ids[stage.from_index] : "";
        const std::string parent_arm = stage.from_index >= 0 ? arms[stage.from_index] : "";
        ids.push_back(job_id(config, parent));
        arms.push_back(arm_key(config, parent_arm));

        // Keys this cell sets that the stage leaves alone: part of the job's params.
        std::set<std::string> keys;
        for (const Setting* v : cell.values) keys.insert(v->key);
        for (const Setting& set : stage.set) keys.erase(set.key);
        if (stage.has_convert) keys.erase("init.convert");

        const auto [it, inserted] = index_of.emplace(ids.back(), jobs.size());
        if (!inserted) {
          JobSpec& job = jobs[it->second];
          if (job.blocks.back() != cell.block) job.blocks.push_back(cell.block);
          cell_keys[it->second].insert(keys.begin(), keys.end());
          continue;
        }
        JobSpec job;
        job.id = ids.back();
        job.stage = stage.name;
        job.arm_key = arms.back();
        job.seed = seed;
        job.config = std::move(config);
        job.parent_id = parent;
        job.blocks = {cell.block};
        jobs.push_back(std::move(job));
        cell_keys.push_back(std::move(keys));
      }
    }
  });
  if (cells == 0) {
    fail(spec.exclude_at, "exclude", "every cell of the grid is excluded; nothing would run");
  }
  problems.throw_if_any(cells);

  // params: per stage, the keys whose value differs between its jobs (seed and init.from aside:
  // the seed is not part of an arm, init.from is filled in at launch).
  std::map<std::string, std::vector<size_t>> by_stage;
  for (size_t j = 0; j < jobs.size(); ++j) by_stage[jobs[j].stage].push_back(j);
  // A key the job's variant ignores is never one of its params, nor counted as a value.
  std::vector<std::set<std::string>> ignored(jobs.size());
  for (size_t j = 0; j < jobs.size(); ++j) {
    ignored[j] =
        ignored_attention_keys(jobs[j].config.attention.variant, jobs[j].config.attention.faithful);
  }
  for (const auto& [stage, members] : by_stage) {
    std::set<std::string> varying;
    for (const FieldInfo& f : schema()) {
      if (f.key == "seed" || f.key == "init.from") continue;
      std::set<std::string> values;
      for (const size_t j : members) {
        if (f.applies_to(jobs[j].config.task) && ignored[j].count(f.key) == 0)
          values.insert(format_value(f, jobs[j].config));
      }
      if (values.size() > 1) varying.insert(f.key);
    }
    for (const size_t j : members) {
      JobSpec& job = jobs[j];
      for (const FieldInfo& f : schema()) {
        const bool wanted = varying.count(f.key) != 0 || cell_keys[j].count(f.key) != 0;
        if (wanted && f.applies_to(job.config.task) && ignored[j].count(f.key) == 0) {
          job.params.emplace_back(f.key, format_value(f, job.config));
        }
      }
    }
  }
  return jobs;
}

SweepCounts count_jobs(const SweepSpec& spec, const std::vector<JobSpec>& jobs) {
  SweepCounts counts;
  counts.exclude_matches.assign(spec.excludes.size(), 0);
  for (size_t b = 0; b < spec.blocks.size(); ++b) {
    BlockCount block;
    block.block = static_cast<int>(b) + 1;
    counts.blocks.push_back(block);
  }
  for_each_cell(spec, [&](const Cell& cell) {
    BlockCount& block = counts.blocks[cell.block - 1];
    ++block.cells;
    if (!cell.matched.empty()) ++block.excluded;
    for (const size_t r : cell.matched) ++counts.exclude_matches[r];
  });
  const int64_t per_cell = static_cast<int64_t>(spec.seeds.size()) *
                           std::max<int64_t>(1, static_cast<int64_t>(spec.stages.size()));
  for (BlockCount& block : counts.blocks) {
    block.produced = (block.cells - block.excluded) * per_cell;
    counts.produced += block.produced;
  }
  for (const JobSpec& job : jobs) {
    for (const int b : job.blocks) {
      if (b >= 1 && b <= static_cast<int>(counts.blocks.size())) ++counts.blocks[b - 1].jobs;
    }
    if (!job.blocks.empty() && job.blocks.front() >= 1 &&
        job.blocks.front() <= static_cast<int>(counts.blocks.size())) {
      ++counts.blocks[job.blocks.front() - 1].new_jobs;
    }
  }
  counts.jobs = static_cast<int64_t>(jobs.size());
  return counts;
}

}  // namespace ablate::runner
