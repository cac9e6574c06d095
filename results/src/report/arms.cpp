// Arms of a report: curves, keys and the baseline.
#include <cmath>
#include <set>

#include "report_parts.h"

namespace ablate::results::detail {

void describe_curve(ReportArm& arm, const std::vector<const JobRow*>& sample_jobs,
                    const std::map<std::string, std::map<int64_t, double>>& curves,
                    double confidence) {
  std::map<int64_t, std::vector<double>> by_step;
  for (const JobRow* job : sample_jobs) {
    const auto it = curves.find(job->id);
    if (it == curves.end()) continue;
    for (const auto& [step, value] : it->second) {
      if (std::isfinite(value)) by_step[step].push_back(value);
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
  return "";
}

std::string arm_value(const ReportArm& arm, const std::string& key) {
  return key == "stage" ? arm.stage : get_or(arm.config, key);
}

std::vector<std::string> arm_labels(const std::vector<ReportArm>& arms) {
  std::vector<std::string> out;
  for (const auto& arm : arms) out.push_back("[" + arm.label + "]");
  return out;
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
        std::vector<std::string> keys;
        for (const auto& [pk, pv] : arms.front().params) keys.push_back(pk);
        throw ReportError(
            "--baseline " + key + "=" + value + ": '" + key + "' is not a param of sweep '" +
            report.sweep.name +
            "'; params that differ between arms: " + (keys.empty() ? "(none)" : join(keys, ", ")));
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
    if (matches.empty()) {
      throw ReportError("--baseline " + join(text, " ") + " matches no arm of sweep '" +
                        report.sweep.name + "'; arms: " + join(arm_labels(arms), ", "));
    }
    if (matches.size() > 1) {
      std::vector<std::string> labels;
      for (size_t i : matches) labels.push_back("[" + arms[i].label + "]");
      throw ReportError("--baseline " + join(text, " ") + " matches " +
                        std::to_string(matches.size()) + " arms (" + join(labels, ", ") +
                        "); add KEY=VALUE pairs until one arm is left");
    }
    report.baseline = matches.front();
    report.baseline_reason = "given on the command line (--baseline " + join(text, " ") + ")";
    return;
  }
  std::vector<size_t> mha, full_gqa;
  for (size_t i = 0; i < arms.size(); ++i) {
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
  } else {
    report.baseline = 0;
    report.baseline_reason =
        std::string("chosen: the first arm of the sweep, as no single arm is multi-head ") +
        "attention (attention.variant=mha, or gqa with kv_heads = heads); pass --baseline " +
        "KEY=VALUE to choose another";
  }
}

}  // namespace ablate::results::detail
