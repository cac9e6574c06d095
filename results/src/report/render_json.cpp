// The report as JSON (docs/design.md section 7).
#include <cmath>
#include <nlohmann/json.hpp>

#include "report_parts.h"

namespace ablate::results {

using namespace detail;

namespace {

nlohmann::json number_or_null(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

nlohmann::json param_object(const ReportArm& arm) {
  nlohmann::json o = nlohmann::json::object();
  for (const auto& [k, v] : arm.params) {
    double x = 0;
    if (k != "stage" && parse_number(v, &x) && std::isfinite(x)) {
      o[k] = x;
    } else {
      o[k] = v;
    }
  }
  return o;
}

nlohmann::json interval_json(const stats::Interval& i) {
  return {{"low", number_or_null(i.low)}, {"high", number_or_null(i.high)}};
}

}  // namespace

std::string render_json(const Report& r) {
  nlohmann::json j;
  j["sweep"] = r.sweep.name;
  j["metric"] = r.options.metric;
  j["lower_is_better"] = r.options.lower_is_better;
  j["alpha"] = r.options.alpha;
  j["correction"] = stats::to_string(r.options.correction);
  j["test"] = to_string(r.options.test);
  j["min_seeds"] = r.options.min_seeds;
  j["baseline"] = param_object(r.baseline_arm());
  j["baseline_reason"] = r.baseline_reason;
  j["arms"] = nlohmann::json::array();
  for (const auto& arm : r.arms) {
    const auto& s = arm.stats;
    j["arms"].push_back({{"arm", param_object(arm)},
                         {"label", arm.label},
                         {"n", s.n},
                         {"mean", number_or_null(s.mean)},
                         {"std", number_or_null(s.std_dev)},
                         {"ci_low", number_or_null(s.t_ci.low)},
                         {"ci_high", number_or_null(s.t_ci.high)},
                         {"iqm", number_or_null(s.iqm)},
                         {"median", number_or_null(s.median)},
                         {"bootstrap_percentile", interval_json(s.bootstrap_percentile)},
                         {"bootstrap_bca", interval_json(s.bootstrap_bca)},
                         {"seeds", arm.seeds},
                         {"values", arm.values},
                         {"parameters", number_or_null(arm.parameters)},
                         {"throughput", number_or_null(arm.throughput)}});
  }
  j["comparisons"] = nlohmann::json::array();
  for (const auto& c : r.comparisons) {
    const ReportArm& arm = r.arms[c.arm];
    nlohmann::json o{
        {"baseline", param_object(r.baseline_arm())},
        {"arm", param_object(arm)},
        {"label", arm.label},
        {"test", c.test.empty() ? nlohmann::json(nullptr) : nlohmann::json(c.test)},
        {"paired", c.paired},
        {"n", c.n},
        {"statistic", number_or_null(c.result.statistic)},
        {"df", number_or_null(c.result.df)},
        {"exact", c.result.exact},
        {"p_value", number_or_null(c.result.p_value)},
        {"p_adjusted", number_or_null(c.p_adjusted)},
        {"diff_mean", number_or_null(c.difference.diff)},
        {"diff_ci_low", number_or_null(c.difference.ci.low)},
        {"diff_ci_high", number_or_null(c.difference.ci.high)},
        {"hedges_g", number_or_null(c.hedges_g.value)},
        {"cliffs_delta", number_or_null(c.cliffs_delta.value)},
        {"prob_improvement", number_or_null(c.prob_improvement.value)},
        {"significant", c.significant},
        {"seeds_for_80_power", c.seeds_for_power.available ? nlohmann::json(c.seeds_for_power.n)
                                                           : nlohmann::json(nullptr)},
        {"verdict", c.verdict},
        {"note", c.note}};
    if (c.test == "aso") {
      o["eps_min"] = number_or_null(c.aso.eps_min);
      o["eps_min_reverse"] = number_or_null(c.aso_reverse.eps_min);
    }
    j["comparisons"].push_back(o);
  }
  j["method"] = r.method;
  j["warnings"] = r.warnings;
  j["excluded"] = nlohmann::json::array();
  for (const auto& e : r.excluded) {
    j["excluded"].push_back({{"job", e.id},
                             {"seed", e.seed},
                             {"arm", e.arm_label},
                             {"status", e.status},
                             {"reason", e.reason}});
  }
  j["diverged"] = r.diverged;
  j["failed"] = r.failed;
  j["stale"] = r.stale;
  j["too_few_seeds"] = r.too_few_seeds;
  nlohmann::json provenance = nlohmann::json::object();
  for (const auto& [k, v] : r.provenance) provenance[k] = v;
  j["provenance"] = provenance;
  return j.dump(2) + "\n";
}

}  // namespace ablate::results
