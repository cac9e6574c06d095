#pragma once
// Runner-internal: the parsers of the sweep file's `seeds:` mapping and `report:` block
// (sweep_question.cpp), used by parse_sweep (sweep.cpp). Grammar in sweep.h.
#include "ablate/runner/sweep.h"
#include "ablate/runner/yaml_config.h"

namespace ablate::runner {

// `seeds: {min, max, step, until: decided}`: sets spec.sequential and spec.seeds (0..max-1).
void read_sequential_seeds(const Entry& seeds, SweepSpec& spec);

// `report:`: the sweep's report question.
ReportQuestion read_report_question(const Entry& report, const std::string& file);

}  // namespace ablate::runner
