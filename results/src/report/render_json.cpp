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

// A stored value with its type: integers as integers (kv_heads 2, not 2.0), other numbers as
// numbers, true/false as booleans, anything else (and the stage) as text.
nlohmann::json typed(const std::string& key, const std::string& v) {
  if (key == "stage") return v;
  if (v == "true" || v == "false") return v == "true";
  double x = 0;
  if (!parse_number(v, &x) || !std::isfinite(x)) return v;
  const bool integer = v.find_first_of(".eEnN") == std::string::npos;
  if (integer && std::abs(x) < 9.0e15) return static_cast<int64_t>(x);
  return x;
}

template <typename Pairs>
nlohmann::json typed_object(const Pairs& pairs) {
  nlohmann::json o = nlohmann::json::object();
  for (const auto& [k, v] : pairs) o[k] = typed(k, v);
  return o;
}

// The keys that tell the arm apart (its label's).
nlohmann::json param_object(const ReportArm& arm) { return typed_object(arm.params); }

// Every key the store has for the arm, and its stage.
nlohmann::json all_params(const ReportArm& arm) {
  nlohmann::json o = typed_object(arm.config);
  o["stage"] = arm.stage;
  return o;
}

nlohmann::json arm_ref(const ReportArm& arm) {
  return {{"label", arm.label}, {"arm", param_object(arm)}, {"params", all_params(arm)}};
}

nlohmann::json interval_json(const stats::Interval& i) {
  return {{"low", number_or_null(i.low)}, {"high", number_or_null(i.high)}};
}

// A CS end: JSON has no infinity, so an unbounded end is the string "-inf" or "inf"; NaN (an
// empty intersection) is null.
nlohmann::json cs_end(double v) {
  if (std::isinf(v)) return v < 0 ? "-inf" : "inf";
  return number_or_null(v);
}

nlohmann::json look_or_null(int64_t look) {
  return look >= 0 ? nlohmann::json(look) : nlohmann::json(nullptr);
}

nlohmann::json sequential_json(const SequentialComparison& q) {
  return {{"method", q.method},
          {"paired", q.paired},
          {"seeds", q.seeds},
          {"level", number_or_null(q.level)},
          {"e_value", number_or_null(q.e_value)},
          {"e_value_max", number_or_null(q.e_value_max)},
          {"cs_low", cs_end(q.cs_low)},
          {"cs_high", cs_end(q.cs_high)},
          {"decided", q.decided},
          {"equivalent", q.equivalent},
          {"first_decided_at", look_or_null(q.first_decided_at)},
          {"first_equivalent_at", look_or_null(q.first_equivalent_at)},
          {"verdict", q.verdict},
          {"note", q.note}};
}

}  // namespace

std::string render_json(const Report& r) {
  nlohmann::json j;
  j["sweep"] = r.sweep.name;
  j["metric"] = r.options.metric;
  j["lower_is_better"] = r.lower_is_better;
  j["direction"] = r.direction_reason;
  j["where"] = r.where;
  j["alpha"] = r.options.alpha;
  j["correction"] = stats::to_string(r.options.correction);
  j["test"] = to_string(r.options.test);
  j["min_seeds"] = r.options.min_seeds;
  if (r.options.sequential) {
    const auto& s = r.sequential;
    j["sequential"] = {
        {"method", stats::to_string(s.method)},
        {"method_reason", s.method_reason},
        {"bounds", s.bounds ? nlohmann::json::array({s.bounds->first, s.bounds->second})
                            : nlohmann::json(nullptr)},
        {"bounds_reason", s.bounds_reason},
        {"equivalence_margin", r.options.equivalence_margin}};
  }
  // Only for a sweep run until decided, so other reports' JSON is unchanged.
  if (r.until_decided_looks > 0) {
    // Which verdict the tables showed: "anytime-valid" (each comparison's sequential.verdict)
    // or "fixed-n" (its verdict, which does not hold under the stopping rule).
    j["until_decided"] = {
        {"looks", r.until_decided_looks},
        {"max_seeds", r.until_decided_max_seeds},
        {"verdicts_shown", r.verdicts_anytime_valid() ? "anytime-valid" : "fixed-n"}};
  }
  j["baseline"] = r.has_baseline() ? param_object(r.baseline_arm()) : nlohmann::json(nullptr);
  j["baseline_reason"] = r.baseline_reason;
  j["arms"] = nlohmann::json::array();
  for (const auto& arm : r.arms) {
    const auto& s = arm.stats;
    j["arms"].push_back({{"arm", param_object(arm)},
                         {"params", all_params(arm)},
                         {"label", arm.label},
                         {"parent", arm.parent_label.empty() ? nlohmann::json(nullptr)
                                                             : nlohmann::json(arm.parent_label)},
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
    const ReportArm& ref = r.arms[c.reference];
    nlohmann::json o{
        {"family", r.families[c.family].name},
        {"reference", arm_ref(ref)},
        {"baseline", param_object(ref)},
        {"arm", param_object(arm)},
        {"params", all_params(arm)},
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
        {"power_alpha", number_or_null(c.power_alpha)},
        {"verdict", c.verdict},
        {"note", c.note}};
    if (c.test == "aso") {
      o["eps_min"] = number_or_null(c.aso.eps_min);
      o["eps_min_reverse"] = number_or_null(c.aso_reverse.eps_min);
    }
    if (r.options.sequential) o["sequential"] = sequential_json(c.sequential);
    j["comparisons"].push_back(o);
  }
  j["families"] = nlohmann::json::array();
  for (const auto& f : r.families) {
    nlohmann::json groups = nlohmann::json::array();
    for (const auto& g : f.groups) {
      groups.push_back({{"cell", g.label},
                        {"reference", arm_ref(r.arms[g.reference])},
                        {"comparisons", g.comparisons}});
    }
    j["families"].push_back(
        {{"name", f.name},
         {"key", f.key.empty() ? nlohmann::json(nullptr) : nlohmann::json(f.key)},
         {"reference_value",
          f.key.empty() ? nlohmann::json(nullptr) : typed(f.key, f.reference_value)},
         {"reference_reason", f.reference_reason},
         {"comparisons", family_size(f)},
         {"tested", f.tested},
         {"groups", groups},
         {"notes", f.notes}});
    if (r.options.sequential) j["families"].back()["sequential_tested"] = f.sequential_tested;
  }
  j["identical"] = nlohmann::json::array();
  for (const auto& same : r.identical) {
    j["identical"].push_back({{"arm", arm_ref(r.arms[same.arm])},
                              {"same_as", arm_ref(r.arms[same.same_as])},
                              {"seeds", same.seeds},
                              {"relative_difference", same.relative_difference},
                              {"cause", same.cause}});
  }
  j["noncausal"] = nlohmann::json::array();
  for (const auto& leak : r.noncausal) {
    j["noncausal"].push_back(
        {{"arm", arm_ref(r.arms[leak.arm])}, {"jobs", leak.jobs}, {"causality", leak.causality}});
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
  // Invalid UTF-8 (an imported value, an old database) is replaced, never an abort.
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace ablate::results
