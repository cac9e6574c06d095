#pragma once
// `ablate import`: results produced elsewhere (a tracker's CSV export, a paper's per-seed
// numbers) brought into the store as a sweep, so that `ablate report` and `ablate query` work on
// them as on a sweep ablate ran.
//
// The CSV (RFC 4180, see read_csv below)
// - The first record is the header: it names the columns. Names are trimmed; each must be
//   non-empty, without control characters, and distinct.
// - The --params columns (at least one) are the config: each row's values, trimmed, as written
//   ("0.001" stays "0.001"; numbers are also stored as numbers, as for a sweep). An empty value
//   is allowed and stored as "".
// - The --seed-col column (default `seed`) holds the seed: an integer (optional '-', no '+', no
//   fraction), trimmed; empty or anything else is an error.
// - Every other column is a metric (at least one): stored as a summary (job, name, value) under
//   the column's name verbatim, so `ablate report SWEEP --metric <column>` and the `results` view
//   (column name with dots as '_') show it. A cell is a decimal number, trimmed (an optional
//   leading '+' is accepted; "1e-3" is fine); an empty cell or other text is an error.
// - A metric cell nan, inf or infinity (any case, optional sign) means the run diverged: the job
//   gets status `diverged` (its error: "CSV line 7: acc = nan") and that metric is not
//   stored for it (its finite metrics are). The report lists diverged jobs as excluded.
//
// Each data row becomes one job, in row order (registration order: the report's first arm is
// the first params combination in the CSV):
//   status   done (diverged as above); host "import"; attempts 0; started/ended NULL (when it ran
//            is not known); stage "", run_dir "", no parent
//   params   the param columns, in --params order (`ablate import` splits --params at commas,
//            so a column whose name has a comma can be a param only through this API)
//   seed     the seed column
//   arm_key  FNV-1a 64 (16 hex digits) of the canonical params text: "key=value\n" per param,
//            sorted by key, with '\\', '\n' (and '=' in keys) escaped by a backslash. Rows with
//            the same params are one arm whatever their column order.
//   id       FNV-1a 64 of the same text plus "seed=<seed>\n": the same params and seed give the
//            same id in any import.
// Two rows with the same params and seed are an error naming both lines (also when one of them
// has a bad metric cell). A row with the wrong number of fields, or a CSV syntax problem, is
// reported for that alone.
//
// The sweep: name = --sweep (any printable text, e.g. "<script>" or "50%_{x}"; it is never
// used as a path; empty or with control characters is an error); refused when a sweep of that
// name exists (the message suggests a free name). yaml = a short description of the import
// (source, file, params, seed column, metrics, rows), config_hash = FNV-1a 64 of the CSV's bytes,
// code_version "import", dirty false; environment (provenance) source = "csv", csv_file (the
// absolute path), csv_hash, params, seed_column.
//
// Nothing is written unless everything is valid: the whole file is checked first and every
// problem is collected with its line number (the first kMaxProblems are listed, then "and N
// more"); then the sweep, its jobs, statuses and summaries are written in one transaction.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ablate/results/store.h"

namespace ablate::results {

// The code_version of a sweep made by `ablate import` (how a report tells it has no curves).
inline constexpr const char* kImportCodeVersion = "import";

// ----- CSV (RFC 4180), reusable -----

struct CsvRecord {
  int64_t line = 0;  // 1-based physical line on which the record starts
  std::vector<std::string> fields;
};

// A syntax problem: where, in which record, and what.
struct CsvProblem {
  int64_t line = 0;   // 1-based physical line of the problem
  size_t record = 0;  // index into CsvDocument::records of the record it spoils
  std::string message;
};

struct CsvDocument {
  std::vector<CsvRecord> records;  // the header too, when there is one
  std::vector<CsvProblem> problems;
};

// Parses CSV text: fields separated by ',', records by CRLF, LF or a lone CR. A field that starts
// with '"' is quoted: it ends at the next single '"', "" inside it is one quote, and commas and
// line breaks inside it are kept verbatim. A leading UTF-8 byte-order mark is dropped; empty
// lines are skipped (they are not records); a final line break is optional. Problems (the
// record is still returned, as far as it could be read): an unterminated quoted field (at the
// line of its opening quote), text after a closing quote, a '"' inside an unquoted field.
// Fields are not trimmed.
CsvDocument read_csv(std::string_view text);

// FNV-1a 64 of the bytes, as 16 lowercase hex digits.
std::string fnv1a64_hex(std::string_view bytes);

// ----- import -----

// Bad input (a missing file or column, an invalid cell, a taken sweep name): every problem found,
// each with its line. The CLI maps it to exit status 2.
class ImportError : public std::runtime_error {
 public:
  // `source` prefixes the message (the CSV path); problems are listed up to kMaxProblems.
  ImportError(const std::string& source, std::vector<std::string> problems);
  const std::vector<std::string>& problems() const { return problems_; }

  static constexpr size_t kMaxProblems = 20;

 private:
  std::vector<std::string> problems_;
};

struct ImportOptions {
  std::string sweep;                 // name of the new sweep (required, not yet in the store)
  std::string csv_path;              // the CSV file (required)
  std::vector<std::string> params;   // header names of the param columns (at least one)
  std::string seed_column = "seed";  // header name of the seed column
};

// One row, validated, ready to write.
struct ImportedJob {
  JobRecord job;
  int64_t line = 0;             // where its row starts in the CSV
  std::string status = "done";  // done or diverged
  std::string error;            // diverged: which columns were not finite, and the line
  std::vector<std::pair<std::string, double>> summaries;  // finite metric values, column order
};

// The import, validated, before anything is written.
struct ImportPlan {
  ImportOptions options;
  SweepRecord sweep;
  std::vector<std::string> metrics;  // metric column names, in header order
  std::vector<ImportedJob> jobs;     // in row order
};

struct ImportResult {
  std::string sweep;                 // the sweep's name
  int64_t jobs = 0;                  // rows imported (one job each)
  int64_t arms = 0;                  // distinct params combinations
  std::vector<std::string> metrics;  // metric column names, in header order
  int64_t diverged = 0;              // jobs with a nan/inf metric (status diverged)
};

// Reads and checks the CSV (see the rules above); touches no store. Throws ImportError with every
// problem found.
ImportPlan plan_import(const ImportOptions& options);
// Writes a plan as a new sweep in one transaction and refreshes the views. Throws ImportError
// (nothing written) when a sweep of that name exists; StoreError on a database failure.
ImportResult write_import(Store& store, const ImportPlan& plan);
// plan_import, then write_import.
ImportResult import_csv(Store& store, const ImportOptions& options);

}  // namespace ablate::results
