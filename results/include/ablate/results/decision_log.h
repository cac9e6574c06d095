#pragma once
// The decision log of seeds until decided (docs/design.md section 6): after every round of a
// sweep run with `seeds: {until: decided}`, the coordinator records what each comparison of the
// sweep's report question looked like and what it decided (add seeds, stop). Table
// `sequential_looks` (store schema version 4); `ablate status` and `ablate report` read it.
// Torch-free.
#include <cstdint>
#include <string>
#include <vector>

#include "ablate/results/store.h"

namespace ablate::results {

// One comparison at one look.
struct SequentialLookRow {
  int64_t look = 0;               // the coordinator's look (round), 1-based, per sweep
  std::string recorded;           // ISO-8601 UTC, set by the store
  std::string family;             // "baseline" or the compared key
  std::string arm_key;            // the candidate arm
  std::string reference_arm_key;  // the arm it is compared with
  std::string arm_label;          // as the report labels them
  std::string reference_label;
  std::string method;       // "gaussian-mixture" or "bounded-betting"
  int64_t seeds = 0;        // values (pairs) the look used
  int64_t max_seeds = 0;    // the sweep's cap per arm
  double level = 0;         // the per-comparison level of the CS (alpha / K under Bonferroni)
  double e_value = 0;       // the e-process at this look (NaN: not available)
  double cs_low = 0;        // the confidence sequence at this look (may be -inf / +inf; NaN:
  double cs_high = 0;       // not available)
  bool decided = false;     // the CS excluded 0 at some look so far
  bool equivalent = false;  // the CS lay inside the equivalence margin at some look so far
  std::string action;       // what the coordinator did: "add 1 seed", "stop: decided", ...
};

// Appends one look's rows (one transaction). StoreError for an unknown sweep.
void add_sequential_looks(Store& store, const std::string& sweep,
                          const std::vector<SequentialLookRow>& rows);

// Every row of the sweep, by look, then in the order recorded. Empty for a sweep never run until
// decided, and for a database older than version 4 opened read-only.
std::vector<SequentialLookRow> sequential_looks(const Store& store, const std::string& sweep);

// The rows of the last look only (empty when none).
std::vector<SequentialLookRow> last_sequential_look(const Store& store, const std::string& sweep);

}  // namespace ablate::results
