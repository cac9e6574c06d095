// Arms of a report: curves, keys, labels, the --where restriction and the baseline.
#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <set>

#include "ablate/results/nearest.h"
#include "ablate/results/variant_keys.h"

#include "report_parts.h"

namespace ablate::results {

bool names_key(const std::string& key, const std::string& given) {
  if (given.empty()) return false;
  if (key == given || detail::view_column(key) == given) return true;
  return key.size() > given.size() &&
         key.compare(key.size() - given.size(), given.size(), given) == 0 &&
         key[key.size() - given.size() - 1] == '.';
}

std::string subset_phrase(const Report& report) {
  int64_t lo = 0, hi = 0;
  for (const ReportArm& arm : report.arms) {
    for (const CurvePoint& p : arm.curve) {
      if (p.subset <= 0) continue;
      lo = lo == 0 ? p.subset : std::min(lo, p.subset);
      hi = std::max(hi, p.subset);
    }
  }
  if (hi == 0) return "";
  return "the first " + std::to_string(lo) + (lo == hi ? "" : " to " + std::to_string(hi)) +
         " held-out examples";
}

}  // namespace ablate::results

namespace ablate::results::detail {

void describe_curve(ReportArm& arm, const std::vector<const JobRow*>& sample_jobs,
                    const std::map<std::string, std::map<int64_t, double>>& curves,
                    const std::map<std::string, std::map<int64_t, double>>& subsets,
                    double confidence) {
  std::map<int64_t, std::vector<double>> by_step;
  std::map<int64_t, int64_t> subset_at;  // step -> the smallest subset a seed logged there
  for (const JobRow* job : sample_jobs) {
    const auto it = curves.find(job->id);
    if (it == curves.end()) continue;
    const auto sub = subsets.find(job->id);
    for (const auto& [step, value] : it->second) {
      if (!std::isfinite(value)) continue;
      by_step[step].push_back(value);
      if (sub == subsets.end()) continue;
      const auto n = sub->second.find(step);
      if (n == sub->second.end() || !(n->second >= 1)) continue;
      const auto examples = static_cast<int64_t>(n->second);
      auto& at = subset_at[step];
      at = at == 0 ? examples : std::min(at, examples);
    }
  }
  for (const auto& [step, values] : by_step) {
    CurvePoint p;
    p.step = step;
    p.n = static_cast<int64_t>(values.size());
    p.mean = stats::mean(values);
    const auto ci = stats::t_interval(values, confidence);
    if (ci.available) {
      p.low = ci.low;
      p.high = ci.high;
    }
    if (const auto at = subset_at.find(step); at != subset_at.end()) p.subset = at->second;
    arm.curve.push_back(p);
  }
}

// Finds the param key a --baseline KEY names: a config key, its view column, or "stage".
std::string resolve_key(const std::string& key, const std::vector<ReportArm>& arms) {
  if (key == "stage") return key;
  std::set<std::string> all;
  for (const auto& arm : arms) {
    for (const auto& [k, v] : arm.config) all.insert(k);
  }
  if (all.count(key)) return key;
  for (const auto& k : all) {
    if (view_column(k) == key) return k;
  }
  // The key's last part, as labels show it ("ema_window"), when one key ends with it.
  std::string found;
  for (const auto& k : all) {
    if (!names_key(k, key)) continue;
    if (!found.empty()) return "";  // ambiguous: the full key is needed
    found = k;
  }
  return found;
}

std::string arm_value(const ReportArm& arm, const std::string& key) {
  return key == "stage" ? arm.stage : get_or(arm.config, key);
}

std::vector<std::string> arm_labels(const std::vector<ReportArm>& arms) {
  std::vector<std::string> out;
  for (const auto& arm : arms) out.push_back("[" + arm.label + "]");
  return out;
}

namespace {

// The arm's value of the first of `keys` it has ("" when none).
std::string first_value(const ReportArm& arm, std::initializer_list<const char*> keys) {
  for (const char* k : keys) {
    const auto it = arm.config.find(k);
    if (it != arm.config.end()) return it->second;
  }
  return "";
}

// "attention_noise_scale" and (for an imported sweep with a bare "variant" column) "noise_scale"
// as the config key they stand for.
std::string as_config_key(const std::string& key, bool bare_keys) {
  if (key.rfind("attention.", 0) == 0) return key;
  if (key.rfind("attention_", 0) == 0) return "attention." + key.substr(10);
  return bare_keys ? "attention." + key : key;
}

}  // namespace

bool key_applies(const ReportArm& arm, const std::string& key) {
  if (key == "stage") return true;
  if (arm.config.count(key) == 0) return false;
  const std::string variant =
      first_value(arm, {"attention.variant", "attention_variant", "variant"});
  if (variant.empty()) return true;
  const std::string faithful =
      first_value(arm, {"attention.faithful", "attention_faithful", "faithful"});
  const bool bare = arm.config.count("variant") != 0;
  return ignored_attention_keys(variant, faithful == "true" || faithful == "1")
             .count(as_config_key(key, bare)) == 0;
}

std::string option_name(const std::string& flag, const std::string& given_in) {
  if (given_in.empty()) return flag;
  const size_t dashes = flag.find_first_not_of('-');
  return flag.substr(dashes == std::string::npos ? 0 : dashes) + " (given in " + given_in + ")";
}

std::string unknown_key(const std::string& given, const std::string& key, const Report& report) {
  const auto keys = param_keys(report.arms);
  // Did you mean: the nearest key, or the key whose last part is nearest ("ema_windw").
  std::vector<std::string> candidates = keys;
  std::map<std::string, std::string> full;
  for (const auto& k : keys) {
    const std::string last = k.substr(k.rfind('.') + 1);
    if (full.emplace(last, k).second) candidates.push_back(last);
  }
  std::string near = nearest_word(key, candidates);
  if (full.count(near)) near = full[near];
  // The keys worth naming: those whose value differs between the arms.
  std::vector<std::string> differing;
  for (const auto& k : keys) {
    if (k == "init.from") continue;
    for (const auto& arm : report.arms) {
      if (get_or(arm.config, k, "\x01") != get_or(report.arms.front().config, k, "\x01")) {
        differing.push_back(k);
        break;
      }
    }
  }
  return given + ": '" + key + "' is not a param of sweep '" + report.sweep.name + "'" +
         (near.empty() ? "" : "; did you mean " + near + "?") +
         "; params that differ between arms: " +
         (differing.empty() ? "(none)" : join(differing, ", ")) +
         " (any other config key works too; ablate schema lists them)";
}

void keep_where(Report& report, std::vector<std::vector<const JobRow*>>& arm_jobs) {
  const auto& where = report.options.where;
  if (where.empty()) return;
  std::vector<std::pair<std::string, std::string>> resolved;
  for (const auto& [key, value] : where) {
    const std::string k = resolve_key(key, report.arms);
    if (k.empty()) {
      throw ReportError(option_name("--where", report.options.where_given_in),
                        unknown_key(key + "=" + value, key, report));
    }
    resolved.emplace_back(k, value);
    report.where.push_back(k + "=" + value);
  }
  std::vector<ReportArm> arms;
  std::vector<std::vector<const JobRow*>> jobs;
  for (size_t i = 0; i < report.arms.size(); ++i) {
    bool all = true;
    for (const auto& [k, v] : resolved) {
      all = all && (k == "stage" || report.arms[i].config.count(k)) &&
            same_value(arm_value(report.arms[i], k), v);
    }
    if (!all) continue;
    arms.push_back(std::move(report.arms[i]));
    jobs.push_back(std::move(arm_jobs[i]));
  }
  if (arms.empty()) {
    std::vector<std::string> text;
    for (const auto& [k, v] : resolved) {
      std::set<std::string> values;
      for (const auto& arm : report.arms) {
        if (k == "stage" || arm.config.count(k)) values.insert(arm_value(arm, k));
      }
      text.push_back(k + " has " +
                     join(std::vector<std::string>(values.begin(), values.end()), ", "));
    }
    throw ReportError(option_name("--where", report.options.where_given_in),
                      join(report.where, " ") + " keeps no arm of sweep '" + report.sweep.name +
                          "' (" + join(text, "; ") + ")");
  }
  report.arms = std::move(arms);
  arm_jobs = std::move(jobs);
}

std::vector<std::string> param_keys(const std::vector<ReportArm>& arms) {
  std::set<std::string> keys;
  for (const auto& arm : arms) {
    for (const auto& [k, v] : arm.config) keys.insert(k);
  }
  return {keys.begin(), keys.end()};
}

void label_arms(Report& report, const std::vector<std::vector<const JobRow*>>& arm_jobs,
                const std::vector<JobRow>& all_jobs, const std::vector<std::string>& key_order) {
  auto& arms = report.arms;
  std::set<std::string> stages;
  for (const auto& arm : arms) stages.insert(arm.stage);
  // A key varies when the arms it applies to have more than one value of it. init.from is the
  // parent's run dir, filled in at launch: the parent's arm names it instead.
  std::vector<std::string> varying;
  if (stages.size() > 1) varying.push_back("stage");
  for (const auto& key : param_keys(arms)) {
    if (key == "init.from") continue;
    std::vector<std::string> values;
    for (const auto& arm : arms) {
      if (!key_applies(arm, key)) continue;
      const std::string& v = arm.config.at(key);
      if (std::none_of(values.begin(), values.end(),
                       [&](const std::string& x) { return same_value(x, v); })) {
        values.push_back(v);
      }
    }
    if (values.size() > 1) varying.push_back(key);
  }
  // The order labels name keys in: the runner's (so status and report agree), else
  // alphabetical; stage always first.
  const auto rank = [&](const std::string& key) -> size_t {
    if (key == "stage") return 0;
    const auto it = std::find(key_order.begin(), key_order.end(), key);
    return 1 + static_cast<size_t>(it - key_order.begin());  // not in it: after every key in it
  };
  std::stable_sort(varying.begin(), varying.end(),
                   [&](const std::string& a, const std::string& b) { return rank(a) < rank(b); });
  for (auto& arm : arms) {
    std::vector<std::string> parts;
    for (const auto& key : varying) {
      if (!key_applies(arm, key)) continue;
      const std::string value = arm_value(arm, key);
      arm.params.emplace_back(key, value);
      parts.push_back(short_key(key, varying) + "=" + value);
    }
    arm.label = parts.empty() ? "all runs" : join(parts, " ");
  }
  // Parents: the arm of each staged arm's first job's parent (looked up among every job of the
  // sweep, so a parent left out by --where still has a name).
  std::map<std::string, const JobRow*> by_id;
  for (const auto& job : all_jobs) by_id[job.id] = &job;
  std::map<std::string, std::string> label_of_arm_key;
  for (const auto& arm : arms) label_of_arm_key[arm.arm_key] = arm.label;
  for (size_t a = 0; a < arms.size(); ++a) {
    const JobRow* job = arm_jobs[a].empty() ? nullptr : arm_jobs[a].front();
    if (job == nullptr || job->parent_id.empty()) continue;
    const auto parent = by_id.find(job->parent_id);
    if (parent == by_id.end()) continue;
    const auto label = label_of_arm_key.find(parent->second->arm_key);
    arms[a].parent_label = label != label_of_arm_key.end()
                               ? label->second
                               : "stage=" + parent->second->stage + " (not in this report)";
  }
  // The parent is part of the label only where it tells arms apart: arms whose own keys are
  // equal (an uptrain stage over two pretrain arms that it sets back to the same config).
  std::map<std::string, int> uses;
  for (const auto& arm : arms) ++uses[arm.label];
  for (auto& arm : arms) {
    if (!arm.parent_label.empty() && uses[arm.label] > 1) arm.label += " <- " + arm.parent_label;
  }
}

// The baseline: --baseline pairs, or the rules in report.h.
void choose_baseline(Report& report) {
  auto& arms = report.arms;
  const auto& given = report.options.baseline;
  if (!given.empty()) {
    std::vector<std::pair<std::string, std::string>> resolved;
    for (const auto& [key, value] : given) {
      const std::string k = resolve_key(key, arms);
      if (k.empty()) {
        throw ReportError(option_name("--baseline", report.options.baseline_given_in),
                          unknown_key(key + "=" + value, key, report));
      }
      resolved.emplace_back(k, value);
    }
    std::vector<size_t> matches;
    for (size_t i = 0; i < arms.size(); ++i) {
      bool all = true;
      for (const auto& [k, v] : resolved) all = all && same_value(arm_value(arms[i], k), v);
      if (all) matches.push_back(i);
    }
    std::vector<std::string> text;
    for (const auto& [k, v] : given) text.push_back(k + "=" + v);
    const std::string part = option_name("--baseline", report.options.baseline_given_in);
    // A baseline from elsewhere (the sweep file) is overridden on the command line.
    const std::string instead =
        report.options.baseline_given_in.empty() ? "" : "; --baseline KEY=VALUE chooses another";
    if (matches.empty()) {
      throw ReportError(part, join(text, " ") + " matches no arm of sweep '" + report.sweep.name +
                                  "'" +
                                  (report.where.empty() ? "" : " with " + join(report.where, " ")) +
                                  "; arms: " + join(arm_labels(arms), ", ") + instead);
    }
    if (matches.size() > 1) {
      std::vector<std::string> labels;
      for (size_t i : matches) labels.push_back("[" + arms[i].label + "]");
      throw ReportError(part, join(text, " ") + " matches " + std::to_string(matches.size()) +
                                  " arms (" + join(labels, ", ") +
                                  "); add KEY=VALUE pairs until one arm is left" + instead);
    }
    report.baseline = matches.front();
    report.baseline_reason =
        report.options.baseline_given_in.empty()
            ? "given on the command line (--baseline " + join(text, " ") + ")"
            : "given in " + report.options.baseline_given_in + " (" + join(text, " ") + ")";
    return;
  }
  // Only an arm with enough usable runs can be a baseline: every comparison tests against it.
  const auto enough = [&](size_t i) {
    return arms[i].values.size() >= static_cast<size_t>(report.options.min_seeds);
  };
  std::vector<size_t> mha, full_gqa, qualifying;
  for (size_t i = 0; i < arms.size(); ++i) {
    if (!enough(i)) continue;
    qualifying.push_back(i);
    const std::string variant = get_or(arms[i].config, "attention.variant");
    if (variant == "mha") mha.push_back(i);
    double kv = -1, heads = -2;
    if (variant == "gqa" && parse_number(get_or(arms[i].config, "attention.kv_heads"), &kv) &&
        parse_number(get_or(arms[i].config, "model.heads"), &heads) && (kv == heads || kv == 0)) {
      full_gqa.push_back(i);
    }
  }
  if (mha.size() == 1) {
    report.baseline = mha.front();
    report.baseline_reason =
        "chosen: the multi-head attention arm (attention.variant=mha), which the grouped "
        "variants approximate; pass --baseline KEY=VALUE to choose another";
  } else if (mha.empty() && full_gqa.size() == 1) {
    report.baseline = full_gqa.front();
    report.baseline_reason =
        "chosen: the gqa arm with as many key-value heads as query heads (attention.kv_heads = "
        "model.heads), which is multi-head attention; pass --baseline KEY=VALUE to choose "
        "another";
  } else if (!qualifying.empty()) {
    report.baseline = qualifying.front();
    report.baseline_reason =
        std::string("chosen: the first arm of the sweep with at least ") +
        std::to_string(report.options.min_seeds) +
        " usable runs, as no single such arm is multi-head attention (attention.variant=mha, or "
        "gqa with kv_heads = heads); pass --baseline KEY=VALUE to choose another";
  } else {
    std::vector<std::string> counts;
    for (const auto& arm : arms) {
      counts.push_back("[" + arm.label + "] " + std::to_string(arm.values.size()));
    }
    throw ReportError("no arm of sweep '" + report.sweep.name + "' has the " +
                      std::to_string(report.options.min_seeds) +
                      " usable runs a baseline needs (usable runs per arm: " + join(counts, ", ") +
                      "); run more seeds, or lower --min-seeds (at least 2), or name a baseline "
                      "with --baseline KEY=VALUE");
  }
}

}  // namespace ablate::results::detail
