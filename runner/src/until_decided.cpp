#include "ablate/runner/until_decided.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <unordered_map>

#include "ablate/runner/progress.h"

namespace ablate::runner {
namespace {

// Position of each seed in sweep.seeds (the order seeds are added).
std::unordered_map<int64_t, int64_t> seed_positions(const SweepSpec& sweep) {
  std::unordered_map<int64_t, int64_t> at;
  for (size_t i = 0; i < sweep.seeds.size(); ++i) at[sweep.seeds[i]] = static_cast<int64_t>(i);
  return at;
}

int64_t count_of(const SeedCounts& counts, const std::string& arm, int64_t fallback) {
  const auto it = counts.find(arm);
  return it == counts.end() ? fallback : it->second;
}

std::string seeds_text(int64_t n) { return std::to_string(n) + (n == 1 ? " seed" : " seeds"); }

// The comparison's test cannot decide anything within the cap, whatever the data.
bool beyond_cap(const LookComparison& c, const SequentialSeeds& rule) {
  return c.first_possible > rule.max;
}

// Whether the rows of two looks say the same (a re-run that found nothing new).
bool same_look(const std::vector<results::SequentialLookRow>& a,
               const std::vector<results::SequentialLookRow>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].family != b[i].family || a[i].arm_key != b[i].arm_key ||
        a[i].reference_arm_key != b[i].reference_arm_key || a[i].seeds != b[i].seeds ||
        a[i].decided != b[i].decided || a[i].equivalent != b[i].equivalent ||
        a[i].action != b[i].action) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::vector<LookComparison> look_at(results::Store& store, const SweepSpec& sweep) {
  const results::Report report = results::build_report(store, question_options(sweep));
  std::vector<LookComparison> out;
  for (const auto& c : report.comparisons) {
    const auto& s = c.sequential;
    LookComparison l;
    l.decided = s.available && (s.decided || s.equivalent);
    auto& r = l.row;
    r.family = report.families.at(c.family).name;
    r.arm_key = report.arms.at(c.arm).arm_key;
    r.reference_arm_key = report.arms.at(c.reference).arm_key;
    r.arm_label = report.arms.at(c.arm).label;
    r.reference_label = report.arms.at(c.reference).label;
    r.method = s.method;
    r.seeds = s.seeds;
    r.max_seeds = sweep.sequential.max;
    r.level = s.level;
    r.e_value = s.available ? s.e_value : std::nan("");
    r.cs_low = s.available ? s.cs_low : std::nan("");
    r.cs_high = s.available ? s.cs_high : std::nan("");
    r.decided = s.available && s.decided;
    r.equivalent = s.available && s.equivalent;
    l.first_possible = s.min_looks_to_decide;
    out.push_back(std::move(l));
  }
  return out;
}

SeedCounts next_seed_counts(const SeedCounts& current, const std::vector<LookComparison>& looks,
                            const SequentialSeeds& rule) {
  SeedCounts next = current;
  for (const auto& c : looks) {
    const int64_t n = count_of(current, c.row.arm_key, rule.min);
    if (!c.decided && n < rule.max && !beyond_cap(c, rule)) {
      next[c.row.arm_key] =
          std::max(count_of(next, c.row.arm_key, rule.min), std::min(rule.max, n + rule.step));
    }
  }
  // A reference covers the seeds of every arm compared with it (pairs by seed); chains (a
  // reference that is itself compared in another family) settle in at most |looks| passes.
  for (size_t pass = 0; pass <= looks.size(); ++pass) {
    bool changed = false;
    for (const auto& c : looks) {
      const int64_t need = count_of(next, c.row.arm_key, rule.min);
      if (count_of(next, c.row.reference_arm_key, rule.min) < need) {
        next[c.row.reference_arm_key] = need;
        changed = true;
      }
    }
    if (!changed) break;
  }
  return next;
}

std::string look_action(const LookComparison& c, const SeedCounts& current, const SeedCounts& next,
                        const SequentialSeeds& rule) {
  const int64_t before = count_of(current, c.row.arm_key, rule.min);
  const int64_t after = count_of(next, c.row.arm_key, rule.min);
  if (c.row.decided) return "stop: decided";
  if (c.row.equivalent) return "stop: equivalent";
  if (beyond_cap(c, rule)) {
    return "stop: cannot decide within " + seeds_text(rule.max) + " (its test needs " +
           seeds_text(c.first_possible) + " at level " + format_metric(c.row.level) +
           "; raise seeds: max)";
  }
  if (after > before) return "add " + seeds_text(after - before);
  if (before >= rule.max) return "stop: " + seeds_text(rule.max) + ", the most";
  return "wait";  // never reached by the rule above; kept for a reader of the log
}

std::vector<JobSpec> planned_jobs(const SweepSpec& sweep, const std::vector<JobSpec>& all,
                                  const SeedCounts& counts) {
  const auto position = seed_positions(sweep);
  std::unordered_map<std::string, size_t> index;
  for (size_t i = 0; i < all.size(); ++i) index[all[i].id] = i;
  std::vector<bool> keep(all.size(), false);
  for (size_t i = 0; i < all.size(); ++i) {
    const JobSpec& job = all[i];
    if (position.at(job.seed) >= count_of(counts, job.arm_key, sweep.sequential.min)) continue;
    // The job and its ancestors.
    for (size_t j = i;;) {
      if (keep[j]) break;
      keep[j] = true;
      if (all[j].parent_id.empty()) break;
      j = index.at(all[j].parent_id);
    }
  }
  std::vector<JobSpec> out;
  for (size_t i = 0; i < all.size(); ++i) {
    if (keep[i]) out.push_back(all[i]);
  }
  return out;
}

SeedCounts registered_seed_counts(const results::Store& store, const SweepSpec& sweep,
                                  const std::vector<JobSpec>& all) {
  SeedCounts counts;
  for (const auto& job : all) counts.emplace(job.arm_key, sweep.sequential.min);
  if (!store.sweep(sweep.name)) return counts;
  const auto position = seed_positions(sweep);
  std::set<std::string> planned_ids;
  for (const auto& job : all) planned_ids.insert(job.id);
  for (const auto& row : store.jobs(sweep.name)) {
    // A stale job (an earlier file's) or one this file does not plan says nothing about now.
    if (row.stale || planned_ids.count(row.id) == 0) continue;
    const auto at = position.find(row.seed);
    if (at == position.end()) continue;
    int64_t& n = counts[row.arm_key];
    n = std::min(sweep.sequential.max, std::max(n, at->second + 1));
  }
  return counts;
}

RunSummary run_until_decided(const SweepSpec& sweep, const std::vector<JobSpec>& all,
                             results::Store& store, Executor& executor, RunOptions options,
                             const std::atomic<bool>* interrupt,
                             const std::function<void(const LookReport&)>& on_look) {
  SeedCounts counts = registered_seed_counts(store, sweep, all);
  RunSummary total;
  for (;;) {
    const std::vector<JobSpec> plan = planned_jobs(sweep, all, counts);
    RunSummary round = run_sweep(sweep, plan, store, executor, options, interrupt);
    total.launched += round.launched;
    total.counts = round.counts;
    total.interrupted = round.interrupted;
    // --retry-failed and --retry-diverged act once, on the first round.
    options.retry_failed = false;
    options.retry_diverged = false;
    const bool unfinished = round.counts["pending"] > 0 || round.counts["running"] > 0;
    if (round.interrupted || options.detach || unfinished) return total;

    const std::vector<LookComparison> looks = look_at(store, sweep);
    const SeedCounts next = next_seed_counts(counts, looks, sweep.sequential);
    LookReport report;
    const auto last = results::last_sequential_look(store, sweep.name);
    report.look = last.empty() ? 1 : last.front().look + 1;
    for (const auto& c : looks) {
      results::SequentialLookRow row = c.row;
      row.look = report.look;
      row.action = look_action(c, counts, next, sweep.sequential);
      report.rows.push_back(std::move(row));
    }
    // A re-run that finds the same look as the last one logs nothing new.
    if (!last.empty() && same_look(last, report.rows)) {
      report.look = last.front().look;
      for (auto& r : report.rows) r.look = report.look;
    } else {
      results::add_sequential_looks(store, sweep.name, report.rows);
      report.recorded = true;
    }
    for (const auto& [arm, n] : next) report.seeds_added += n - count_of(counts, arm, n);
    if (on_look) on_look(report);
    if (next == counts) return total;
    counts = next;
  }
}

}  // namespace ablate::runner
