// Arms whose values are equal seed by seed, and the likely cause from the stored diagnostics;
// arms that trained although their causality check failed.
#include <algorithm>
#include <cmath>
#include <set>

#include "report_parts.h"

namespace ablate::results::detail {

namespace {

// Every value of the attention diagnostic `name` (attn<L>/<name>[.<i>]) the jobs logged.
std::vector<double> diagnostic_values(Store& store, int64_t sweep_pk,
                                      const std::vector<const JobRow*>& jobs,
                                      const std::string& name) {
  auto& s = store.statement(
      "SELECT m.value FROM metrics m JOIN jobs j ON j.pk = m.job WHERE j.sweep_pk = ? AND j.id = ? "
      "AND m.name LIKE 'attn%/' || ? || '%'");
  std::vector<double> out;
  for (const JobRow* job : jobs) {
    s.bind(1, sweep_pk);
    s.bind(2, job->id);
    s.bind(3, name);
    while (s.executeStep()) out.push_back(s.getColumn(0).getDouble());
    s.reset();
  }
  return out;
}

// The allocation of a dynamic arm when it never changed: "[2, 2]"; "" when it moved, differs
// between layers, or is not logged. attn<L>/alloc[<i>] is the number of query heads of layer L's
// group i at an evaluation.
std::string constant_allocation(Store& store, int64_t sweep_pk,
                                const std::vector<const JobRow*>& jobs) {
  auto& s = store.statement(
      "SELECT m.name, m.value FROM metrics m JOIN jobs j ON j.pk = m.job WHERE j.sweep_pk = ? "
      "AND j.id = ? AND m.name LIKE 'attn%/alloc[%'");
  std::map<std::string, std::set<double>> values;  // name -> its values over steps and jobs
  for (const JobRow* job : jobs) {
    s.bind(1, sweep_pk);
    s.bind(2, job->id);
    while (s.executeStep()) values[s.getColumn(0).getString()].insert(s.getColumn(1).getDouble());
    s.reset();
  }
  std::map<std::string, std::map<std::string, double>> layers;  // attn<L> -> group -> heads
  for (const auto& [name, v] : values) {
    if (v.size() != 1) return "";
    const size_t slash = name.find('/');
    const size_t open = name.find('[', slash);
    layers[name.substr(0, slash)][name.substr(open + 1, name.size() - open - 2)] = *v.begin();
  }
  if (layers.empty()) return "";
  for (const auto& [layer, groups] : layers) {
    if (groups != layers.begin()->second) return "";
  }
  std::vector<std::pair<int, double>> groups;  // numeric group order: 10 after 9
  for (const auto& [g, heads] : layers.begin()->second) groups.emplace_back(std::stoi(g), heads);
  std::sort(groups.begin(), groups.end());
  std::vector<std::string> parts;
  for (const auto& [g, heads] : groups) parts.push_back(format_number(heads));
  return "[" + join(parts, ", ") + "]";
}

std::string likely_cause(Store& store, int64_t sweep_pk, const ReportArm& arm,
                         const std::vector<const JobRow*>& jobs) {
  const std::string variant = get_or(arm.config, "attention.variant");
  if (variant == "dgqa" || variant == "kdgqa") {
    const std::string alloc = constant_allocation(store, sweep_pk, jobs);
    if (!alloc.empty()) {
      return "its allocation never left " + alloc +
             " (attention diagnostics alloc), so it trained as gqa with those groups";
    }
  }
  if (variant == "pgqa") {
    const auto norms = diagnostic_values(store, sweep_pk, jobs, "noise_norm");
    if (!norms.empty() &&
        std::all_of(norms.begin(), norms.end(), [](double v) { return v == 0; })) {
      return "its noise norm was 0 at every evaluation (attention diagnostics noise_norm)";
    }
  }
  return "the keys that tell them apart may not take effect in training; check the arms' "
         "configs and attention diagnostics";
}

}  // namespace

void find_noncausal_arms(Report& r, const std::vector<std::vector<const JobRow*>>& arm_jobs) {
  for (size_t a = 0; a < r.arms.size(); ++a) {
    NoncausalArm leak;
    leak.arm = a;
    for (const JobRow* job : arm_jobs[a]) {
      // ablate train writes "leaks the future (...); allowed by attention.allow_noncausal".
      if (job->causality.rfind("leaks", 0) != 0) continue;
      ++leak.jobs;
      if (leak.causality.empty()) leak.causality = job->causality;
    }
    if (leak.jobs > 0) r.noncausal.push_back(leak);
  }
}

void find_identical_arms(Store& store, int64_t sweep_pk, Report& r,
                         const std::vector<std::vector<const JobRow*>>& arm_jobs) {
  for (size_t a = 0; a < r.arms.size(); ++a) {
    const ReportArm& arm = r.arms[a];
    if (arm.values.size() < 2) continue;
    for (size_t b = 0; b < a; ++b) {
      const ReportArm& other = r.arms[b];
      // On the seeds both have, when one arm's seeds are all among the other's (seeds until
      // decided stops a candidate while its reference goes on).
      if (!nested(arm.seeds, other.seeds)) continue;
      const SeedPairs pairs = pair_by_seed(arm, other);
      if (pairs.x.size() < 2) continue;
      // Equal, or equal but for floating-point rounding: a dynamic variant that never regroups
      // computes gqa's model through another path, and its losses differ in the 8th digit.
      double worst = 0;
      for (size_t i = 0; i < pairs.x.size(); ++i) {
        const double x = pairs.x[i], y = pairs.y[i];
        if (x == y) continue;
        worst = std::max(worst, std::fabs(x - y) / std::max(std::fabs(x), std::fabs(y)));
      }
      if (!(worst <= kIdenticalTolerance)) continue;
      IdenticalArms same;
      same.relative_difference = worst;
      same.arm = a;
      same.same_as = b;
      same.seeds = static_cast<int64_t>(pairs.x.size());
      same.cause = likely_cause(store, sweep_pk, arm, arm_jobs[a]);
      r.identical.push_back(same);
      break;  // one earlier twin is enough to name
    }
  }
}

}  // namespace ablate::results::detail
