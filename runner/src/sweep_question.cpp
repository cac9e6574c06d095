// The sweep file's `seeds: {..., until: decided}` and `report:` (grammar in sweep.h).
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>

#include "ablate/results/report.h"
#include "ablate/runner/schema.h"
#include "sweep_parts.h"

namespace ablate::runner {
namespace {

const std::vector<std::string> kSeedKeys = {"min", "max", "step", "until"};
const std::vector<std::string> kReportKeys = {
    "metric",     "baseline",           "compare", "reference", "where", "direction", "alpha",
    "correction", "equivalence_margin", "bounds",  "method"};
// The most seeds one arm may run until decided: a guard against a typo (max: 2000).
constexpr int64_t kMaxSequentialSeeds = 1000;

[[noreturn]] void unknown_key(const Entry& e, const std::string& section,
                              const std::vector<std::string>& keys) {
  const std::string near = nearest_word(e.key, keys);
  std::string expected;
  for (const auto& k : keys) expected += (expected.empty() ? "" : ", ") + k;
  fail(e.key_at, section + "." + e.key,
       "unknown key; " + (near.empty() ? "expected " + expected : "did you mean " + near + "?"));
}

std::string scalar(const Entry& e, const std::string& key) {
  if (!e.value.IsScalar()) {
    fail(where(e.value, e.key_at), key, "expected a single value, got " + describe(e.value));
  }
  return e.value.Scalar();
}

int64_t whole_number(const Entry& e, const std::string& key, int64_t least) {
  const std::string text = scalar(e, key);
  int64_t n = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end != text.data() + text.size() || n < least) {
    fail(where(e.value, e.key_at), key,
         "expected a whole number >= " + std::to_string(least) + ", got " + describe(e.value));
  }
  return n;
}

double real_number(const YAML::Node& node, const Location& at, const std::string& key) {
  if (node.IsScalar()) {
    const std::string text = node.Scalar();
    double x = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), x);
    if (ec == std::errc() && end == text.data() + text.size() && std::isfinite(x)) return x;
  }
  fail(where(node, at), key, "expected a number, got " + describe(node));
}

// A key of `baseline:`, `where:` or `compare:`: a config key, its ending ("kv_heads") or `stage`,
// as `ablate report` takes them; a typo gets a did-you-mean here rather than after a round.
void check_report_key(const std::string& key, const Location& at, const std::string& section) {
  if (key == "stage" || key == "seed") {
    if (key == "seed") fail(at, section, "the seed is not an arm's key");
    return;
  }
  for (const auto& field : schema()) {
    const std::string& k = field.key;
    if (k == key) return;
    if (k.size() > key.size() && k.compare(k.size() - key.size(), key.size(), key) == 0 &&
        k[k.size() - key.size() - 1] == '.') {
      return;
    }
    // The view's column name (dots as `_`).
    std::string column = k;
    std::replace(column.begin(), column.end(), '.', '_');
    if (column == key) return;
  }
  const std::string near = nearest_key(key);
  fail(at, section + "." + key,
       "not a config key" + (near.empty() ? std::string() : "; did you mean " + near + "?"));
}

std::vector<std::pair<std::string, std::string>> key_values(const Entry& e,
                                                            const std::string& section,
                                                            const std::string& file) {
  if (!e.value.IsMap() || e.value.size() == 0) {
    fail(where(e.value, e.key_at), section,
         "expected a mapping KEY: VALUE (e.g. {attention.variant: mha}), got " + describe(e.value));
  }
  std::vector<std::pair<std::string, std::string>> out;
  for (const Entry& kv : entries_of(e.value, file, section)) {
    check_report_key(kv.key, kv.key_at, section);
    out.emplace_back(kv.key, scalar(kv, section + "." + kv.key));
  }
  return out;
}

}  // namespace

void read_sequential_seeds(const Entry& seeds, SweepSpec& spec) {
  const std::string file = spec.file;
  SequentialSeeds rule;
  rule.at = seeds.key_at;
  bool until = false;
  for (const Entry& e : entries_of(seeds.value, file, "seeds")) {
    const std::string key = "seeds." + e.key;
    if (e.key == "min") {
      rule.min = whole_number(e, key, 2);
    } else if (e.key == "max") {
      rule.max = whole_number(e, key, 2);
      if (rule.max > kMaxSequentialSeeds) {
        fail(where(e.value, e.key_at), key,
             std::to_string(rule.max) + " seeds; at most " + std::to_string(kMaxSequentialSeeds));
      }
    } else if (e.key == "step") {
      rule.step = whole_number(e, key, 1);
    } else if (e.key == "until") {
      if (scalar(e, key) != "decided") {
        fail(where(e.value, e.key_at), key,
             "expected decided (the only stopping rule), got " + describe(e.value));
      }
      until = true;
    } else {
      unknown_key(e, "seeds", kSeedKeys);
    }
  }
  if (!until) {
    fail(seeds.key_at, "seeds",
         "a mapping of seeds needs until: decided (seeds: {min: 3, max: 20, until: decided}); "
         "for a fixed number write seeds: N");
  }
  if (rule.min > rule.max) {
    fail(seeds.key_at, "seeds",
         "min (" + std::to_string(rule.min) + ") is larger than max (" + std::to_string(rule.max) +
             ")");
  }
  rule.enabled = true;
  spec.sequential = rule;
  spec.seeds.clear();
  for (int64_t s = 0; s < rule.max; ++s) spec.seeds.push_back(s);
}

ReportQuestion read_report_question(const Entry& report, const std::string& file) {
  ReportQuestion q;
  q.given = true;
  q.at = report.key_at;
  if (!report.value.IsMap()) {
    fail(where(report.value, report.key_at), "report",
         "expected a mapping (metric: ..., baseline: {...}), got " + describe(report.value));
  }
  bool has_metric = false;
  for (const Entry& e : entries_of(report.value, file, "report")) {
    const std::string key = "report." + e.key;
    const Location at = where(e.value, e.key_at);
    if (e.key == "metric") {
      q.metric = scalar(e, key);
      has_metric = !q.metric.empty();
    } else if (e.key == "baseline") {
      q.baseline = key_values(e, key, file);
    } else if (e.key == "where") {
      q.where = key_values(e, key, file);
    } else if (e.key == "compare") {
      if (e.value.IsSequence()) {
        for (const auto& item : e.value) {
          if (!item.IsScalar()) fail(where(item, at), key, "expected a key, got " + describe(item));
          q.compare.push_back(item.Scalar());
        }
      } else {
        q.compare.push_back(scalar(e, key));
      }
      for (const auto& c : q.compare) check_report_key(c, at, "report.compare");
    } else if (e.key == "reference") {
      q.reference = scalar(e, key);
    } else if (e.key == "direction") {
      q.direction = scalar(e, key);
      if (q.direction != "lower" && q.direction != "higher") {
        fail(at, key, "expected lower or higher (which is better), got " + describe(e.value));
      }
    } else if (e.key == "alpha") {
      q.alpha = real_number(e.value, e.key_at, key);
      if (!(q.alpha >= results::kMinAlpha && q.alpha < 1)) fail(at, key, "must be in [1e-9, 1)");
    } else if (e.key == "correction") {
      q.correction = scalar(e, key);
      const std::vector<std::string> kinds = {"holm", "bonferroni", "bh", "none"};
      if (std::find(kinds.begin(), kinds.end(), q.correction) == kinds.end()) {
        fail(at, key, "expected holm, bonferroni, bh or none, got " + describe(e.value));
      }
    } else if (e.key == "equivalence_margin") {
      q.equivalence_margin = real_number(e.value, e.key_at, key);
      if (q.equivalence_margin < 0) fail(at, key, "must be >= 0");
    } else if (e.key == "method") {
      q.method = scalar(e, key);
      if (q.method != "gaussian-mixture" && q.method != "bounded-betting") {
        fail(at, key, "expected gaussian-mixture or bounded-betting, got " + describe(e.value));
      }
    } else if (e.key == "bounds") {
      if (!e.value.IsSequence() || e.value.size() != 2) {
        fail(at, key, "expected [low, high], got " + describe(e.value));
      }
      q.lower = real_number(e.value[0], e.key_at, key);
      q.upper = real_number(e.value[1], e.key_at, key);
      if (!(q.lower < q.upper)) fail(at, key, "low must be below high");
      q.has_bounds = true;
    } else {
      unknown_key(e, "report", kReportKeys);
    }
  }
  if (!has_metric) fail(report.key_at, "report.metric", "missing; e.g. metric: final_val_loss");
  if (!q.reference.empty() && q.compare.empty()) {
    fail(report.key_at, "report.reference", "needs compare: (the key whose level it names)");
  }
  return q;
}

void until_decided_from_command_line(SweepSpec& sweep, int64_t max_seeds) {
  const Location at{"command line", 0, 0};
  if (sweep.sequential.enabled) {
    fail(at, "--until",
         "the sweep file already says seeds: {until: decided} (give --max-seeds there as max:)");
  }
  if (!sweep.report.given) {
    fail(at, "--until",
         "needs the sweep file's report: block (report: {metric: ..., baseline: {...}}): it "
         "says which comparison decides");
  }
  const auto first = static_cast<int64_t>(sweep.seeds.size());
  if (max_seeds < first || max_seeds > kMaxSequentialSeeds) {
    fail(at, "--max-seeds",
         "expected " + std::to_string(first) + " (the file's seeds) to " +
             std::to_string(kMaxSequentialSeeds) + ", got " + std::to_string(max_seeds));
  }
  SequentialSeeds rule;
  rule.enabled = true;
  rule.min = std::max<int64_t>(first, 2);
  rule.max = std::max(max_seeds, rule.min);
  rule.step = 1;
  rule.at = at;
  for (int64_t s = 0; static_cast<int64_t>(sweep.seeds.size()) < rule.max; ++s) {
    if (std::find(sweep.seeds.begin(), sweep.seeds.end(), s) == sweep.seeds.end()) {
      sweep.seeds.push_back(s);
    }
  }
  sweep.sequential = rule;
}

}  // namespace ablate::runner
