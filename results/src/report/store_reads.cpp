// Reading a sweep's summaries and curves from the store for a report.
#include <map>
#include <string>
#include <vector>

#include "report_parts.h"

namespace ablate::results::detail {

// "4 stale jobs (no longer in the sweep file) left out": what reports say of stale jobs.
std::string stale_line(int64_t n) {
  return std::to_string(n) + (n == 1 ? " stale job" : " stale jobs") +
         " (no longer in the sweep file) left out";
}

// job id -> value of the summary `name` for every job of the sweep that has one.
std::map<std::string, double> summary_values(Store& store, int64_t sweep_pk,
                                             const std::string& name) {
  auto& s = store.statement(
      "SELECT j.id, s.value FROM summaries s JOIN jobs j ON j.pk = s.job "
      "WHERE j.sweep_pk = ? AND s.name = ?");
  s.bind(1, sweep_pk);
  s.bind(2, name);
  std::map<std::string, double> out;
  while (s.executeStep()) out[s.getColumn(0).getString()] = s.getColumn(1).getDouble();
  s.reset();
  return out;
}

std::vector<std::string> summary_names(Store& store, int64_t sweep_pk) {
  auto& s = store.statement(
      "SELECT DISTINCT s.name FROM summaries s JOIN jobs j ON j.pk = s.job WHERE j.sweep_pk = ? "
      "ORDER BY s.name");
  s.bind(1, sweep_pk);
  std::vector<std::string> out;
  while (s.executeStep()) out.push_back(s.getColumn(0).getString());
  s.reset();
  return out;
}

bool has_curve(Store& store, int64_t sweep_pk, const std::string& name) {
  auto& s = store.statement(
      "SELECT 1 FROM jobs j JOIN metrics m ON m.job = j.pk WHERE j.sweep_pk = ? AND m.name = ? "
      "LIMIT 1");
  s.bind(1, sweep_pk);
  s.bind(2, name);
  const bool found = s.executeStep();
  s.reset();
  return found;
}

// job id -> (step -> value) of the logged metric `name`.
std::map<std::string, std::map<int64_t, double>> curve_values(Store& store, int64_t sweep_pk,
                                                              const std::string& name) {
  auto& s = store.statement(
      "SELECT j.id, m.step, m.value FROM jobs j JOIN metrics m ON m.job = j.pk "
      "WHERE j.sweep_pk = ? AND m.name = ?");
  s.bind(1, sweep_pk);
  s.bind(2, name);
  std::map<std::string, std::map<int64_t, double>> out;
  while (s.executeStep()) {
    out[s.getColumn(0).getString()][s.getColumn(1).getInt64()] = s.getColumn(2).getDouble();
  }
  s.reset();
  return out;
}

// The logged curve behind a summary name: final_test_acc -> eval/test_acc (summary.json's final
// and best values are of the eval metrics, or of train metrics for an lm without eval).
std::string curve_of(Store& store, int64_t sweep_pk, const std::string& metric, std::string* kind) {
  for (const std::string prefix : {"final_", "best_"}) {
    if (metric.rfind(prefix, 0) != 0) continue;
    const std::string base = metric.substr(prefix.size());
    for (const std::string source : {"eval/", "train/"}) {
      if (has_curve(store, sweep_pk, source + base)) {
        *kind = (prefix == "final_" ? "final value of " : "best value of ") + source + base;
        return source + base;
      }
    }
  }
  return "";
}

}  // namespace ablate::results::detail
