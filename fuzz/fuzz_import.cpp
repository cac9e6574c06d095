// libFuzzer target: the input as a CSV file, through read_csv, plan_import and write_import into
// an in-memory store (results/import.h), then a query of the views the import refreshed. Bad
// input must end as an ImportError (exit status 2 in `ablate import`); any other exception, a
// crash, a sanitizer report or a hang is a finding.
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "ablate/results/import.h"
#include "ablate/results/query.h"
#include "ablate/results/store.h"
#include "ablate/testing/temp_dir.h"

namespace {

using namespace ablate::results;

// plan_import reads a file: one path, rewritten for every input.
const std::string& csv_path() {
  static const ablate::testing::TempDir dir("ablate-fuzz-import");
  static const std::string path = dir.file("fuzz.csv");
  return path;
}

// The param columns, as a user would name them: the header's columns before `seed`, or its
// first column when `seed` comes first or is missing (plan_import then says so).
std::vector<std::string> params_of(const CsvDocument& doc) {
  std::vector<std::string> params;
  if (doc.records.empty()) return {"v"};
  for (const auto& field : doc.records.front().fields) {
    if (field == "seed") break;
    params.push_back(field);
  }
  if (params.empty() && !doc.records.front().fields.empty()) {
    params.push_back(doc.records.front().fields.front());
  }
  return params;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const CsvDocument doc = read_csv(text);
  std::ofstream(csv_path(), std::ios::binary | std::ios::trunc) << text;
  ImportOptions options;
  options.sweep = "fuzz";
  options.csv_path = csv_path();
  options.params = params_of(doc);
  ImportPlan plan;
  try {
    plan = plan_import(options);
  } catch (const ImportError&) {
    return 0;
  }
  // A fresh store per input, so a finding reproduces from its input alone.
  Store store(":memory:");
  const ImportResult result = write_import(store, plan);
  if (result.jobs != static_cast<int64_t>(plan.jobs.size())) __builtin_trap();
  // The views must still work whatever the column names were.
  const QueryResult rows = run_query(store, "SELECT * FROM results");
  if (rows.rows.size() != plan.jobs.size()) __builtin_trap();
  return 0;
}
