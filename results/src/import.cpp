#include "ablate/results/import.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <system_error>
#include <utility>

#include "ablate/results/printable.h"

namespace ablate::results {

// ----- CSV -----

CsvDocument read_csv(std::string_view text) {
  CsvDocument doc;
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  const size_t n = text.size();
  size_t i = 0;
  int64_t line = 1;
  // A line break at i (CRLF, LF or lone CR): its length, or 0.
  auto line_break = [&](size_t at) -> size_t {
    if (at >= n) return 0;
    if (text[at] == '\n') return 1;
    if (text[at] == '\r') return at + 1 < n && text[at + 1] == '\n' ? 2 : 1;
    return 0;
  };
  while (i < n) {
    if (const size_t b = line_break(i)) {  // an empty line is not a record
      i += b;
      ++line;
      continue;
    }
    const size_t index = doc.records.size();
    CsvRecord& record = doc.records.emplace_back();
    record.line = line;
    auto problem = [&](int64_t at, std::string message) {
      doc.problems.push_back({at, index, std::move(message)});
    };
    for (;;) {
      std::string field;
      if (i < n && text[i] == '"') {
        const int64_t opened = line;
        ++i;
        bool closed = false;
        while (i < n) {
          if (text[i] == '"') {
            if (i + 1 < n && text[i + 1] == '"') {
              field += '"';
              i += 2;
              continue;
            }
            ++i;
            closed = true;
            break;
          }
          // Line breaks inside the field are kept as written but still count as lines.
          if (const size_t b = line_break(i)) {
            field.append(text.substr(i, b));
            i += b;
            ++line;
            continue;
          }
          field += text[i++];
        }
        if (!closed) {
          problem(opened, "a quoted field opened on this line is never closed");
        } else if (i < n && text[i] != ',' && !line_break(i)) {
          problem(line, "text after the closing quote of a quoted field (quote the whole field)");
          while (i < n && text[i] != ',' && !line_break(i)) field += text[i++];
        }
      } else {
        bool bare_quote = false;
        while (i < n && text[i] != ',' && !line_break(i)) {
          bare_quote = bare_quote || text[i] == '"';
          field += text[i++];
        }
        if (bare_quote) {
          problem(line, "a '\"' inside an unquoted field (quote the field and double its quotes)");
        }
      }
      record.fields.push_back(std::move(field));
      if (i < n && text[i] == ',') {
        ++i;
        continue;
      }
      if (const size_t b = line_break(i)) {
        i += b;
        ++line;
      }
      break;
    }
  }
  return doc;
}

std::string fnv1a64_hex(std::string_view bytes) {
  uint64_t h = 14695981039346656037ull;
  for (char c : bytes) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  static const char* digits = "0123456789abcdef";
  std::string out(16, '0');
  for (int k = 15; k >= 0; --k, h >>= 4) out[k] = digits[h & 0xf];
  return out;
}

// ----- ImportError -----

namespace {
std::string import_message(const std::string& source, const std::vector<std::string>& problems) {
  std::string m = source.empty() ? "" : source + ": ";
  if (problems.size() == 1) return m + problems[0] + "; nothing imported";
  m += std::to_string(problems.size()) + " problems; nothing imported:";
  const size_t shown = std::min(problems.size(), ImportError::kMaxProblems);
  for (size_t k = 0; k < shown; ++k) m += "\n  " + problems[k];
  if (problems.size() > shown) {
    m += "\n  and " + std::to_string(problems.size() - shown) + " more";
  }
  return m;
}
}  // namespace

ImportError::ImportError(const std::string& source, std::vector<std::string> problems)
    : std::runtime_error(import_message(source, problems)), problems_(std::move(problems)) {}

// ----- import -----

namespace {

std::string trim(const std::string& s) {
  const char* space = " \t\r\n\v\f";
  const size_t b = s.find_first_not_of(space);
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(space) - b + 1);
}

bool has_control(const std::string& s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Cell text in a message: quoted, shortened, line breaks shown as \n.
std::string shown(const std::string& s) {
  std::string t;
  for (char c : s.size() > 40 ? s.substr(0, 40) : s) {
    if (c == '\n') {
      t += "\\n";
    } else if (c == '\r') {
      t += "\\r";
    } else {
      t += c;
    }
  }
  return "'" + t + (s.size() > 40 ? "...'" : "'");
}

std::string join(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (size_t k = 0; k < items.size(); ++k) out += (k ? sep : "") + items[k];
  return out;
}

std::optional<int64_t> parse_integer(const std::string& s) {
  int64_t v = 0;
  const char* end = s.data() + s.size();
  const auto r = std::from_chars(s.data(), end, v);
  if (s.empty() || r.ec != std::errc() || r.ptr != end) return std::nullopt;
  return v;
}

// A metric cell: a finite number, a non-finite one (nan/inf: the run diverged), or an error.
struct Cell {
  enum class Kind { kNumber, kNonFinite, kInvalid } kind = Kind::kInvalid;
  double value = 0.0;
  std::string error;
};

Cell parse_metric(const std::string& text) {
  Cell cell;
  if (text.empty()) {
    cell.error = "empty value";
    return cell;
  }
  std::string body = text;
  bool negative = false;
  if (body[0] == '+' || body[0] == '-') {
    negative = body[0] == '-';
    body.erase(0, 1);
  }
  const std::string word = lower(body);
  if (word == "nan" || word == "inf" || word == "infinity") {
    cell.kind = Cell::Kind::kNonFinite;
    cell.value = word == "nan" ? std::nan("") : negative ? -HUGE_VAL : HUGE_VAL;
    return cell;
  }
  // After the sign, a digit or '.' must start the number: from_chars would accept a second '-',
  // and nan/inf are handled above. It reads no hex under chars_format::general.
  const bool starts_well =
      !body.empty() && (std::isdigit(static_cast<unsigned char>(body[0])) || body[0] == '.');
  double v = 0.0;
  const char* end = body.data() + body.size();
  const auto r = std::from_chars(body.data(), end, v);
  if (!starts_well || r.ptr != end ||
      (r.ec != std::errc() && r.ec != std::errc::result_out_of_range)) {
    cell.error = shown(text) + " is not a number";
    return cell;
  }
  if (r.ec == std::errc::result_out_of_range) {
    cell.error = shown(text) + " is out of the range of a double";
    return cell;
  }
  cell.kind = Cell::Kind::kNumber;
  cell.value = negative ? -v : v;
  return cell;
}

// The canonical params text hashed into arm keys and ids: "key=value\n" sorted by key, with
// backslash, line feed (and '=' in keys) escaped so that no two param sets share a text.
std::string canonical_params(std::vector<std::pair<std::string, std::string>> params) {
  std::sort(params.begin(), params.end());
  auto escape = [](const std::string& s, bool key) {
    std::string e;
    for (char c : s) {
      if (c == '\\') {
        e += "\\\\";
      } else if (c == '\n') {
        e += "\\n";
      } else if (key && c == '=') {
        e += "\\=";
      } else {
        e += c;
      }
    }
    return e;
  };
  std::string text;
  for (const auto& [k, v] : params) text += escape(k, true) + "=" + escape(v, false) + "\n";
  return text;
}

std::string read_file(const std::string& path, std::vector<std::string>& problems) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    problems.push_back("is a directory, not a CSV file");
    return "";
  }
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int error = errno;
    problems.push_back("cannot read the file: " +
                       (std::filesystem::exists(path, ec) && error != 0
                            ? std::error_code(error, std::generic_category()).message()
                            : std::string("no such file")));
    return "";
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// "x-2", "x-3", ...: the first name not taken.
std::string free_name(const Store& store, const std::string& name) {
  const auto taken = store.sweeps();
  for (int k = 2;; ++k) {
    const std::string candidate = name + "-" + std::to_string(k);
    if (std::find(taken.begin(), taken.end(), candidate) == taken.end()) return candidate;
  }
}

}  // namespace

namespace {

// The header's columns: their names, and which are the params, the seed and the metrics.
struct Columns {
  std::vector<std::string> names;
  std::vector<size_t> params;  // in --params order
  size_t seed = 0;
  std::vector<size_t> metrics;  // every other column, in file order
};

// Reads the header record against --params and --seed-col; its problems go into `problems`.
Columns read_header(const CsvRecord& header_record, const std::vector<std::string>& params,
                    const std::string& seed_column, std::vector<std::string>& problems) {
  Columns columns;
  const std::string at_header = "line " + std::to_string(header_record.line) + " (header)";
  std::map<std::string, size_t> column_of;
  for (size_t c = 0; c < header_record.fields.size(); ++c) {
    const std::string name = trim(header_record.fields[c]);
    columns.names.push_back(name);
    if (name.empty()) {
      problems.push_back(at_header + ": column " + std::to_string(c + 1) + " has no name");
    } else if (has_control(name)) {
      problems.push_back(at_header + ": column name " + shown(name) + " has control characters");
    } else if (!column_of.emplace(name, c).second) {
      problems.push_back(at_header + ": column '" + name + "' appears twice");
    }
  }
  const std::string listed = " (the header's columns: " + join(columns.names, ", ") + ")";
  std::set<std::string> seen_params;
  for (const auto& p : params) {
    if (p.empty()) {
      problems.push_back("--params: an empty column name");
    } else if (!seen_params.insert(p).second) {
      problems.push_back("--params: '" + p + "' is named twice");
    } else if (p == seed_column) {
      problems.push_back("--params: '" + p + "' is the seed column (--seed-col)");
    } else if (!column_of.count(p)) {
      problems.push_back("--params: no column '" + p + "'" + listed);
    } else {
      columns.params.push_back(column_of[p]);
    }
  }
  if (const auto it = column_of.find(seed_column); it != column_of.end()) {
    columns.seed = it->second;
  } else if (!seed_column.empty()) {
    problems.push_back("--seed-col: no seed column '" + seed_column + "'" + listed +
                       "; name it with --seed-col");
  }
  for (size_t c = 0; c < columns.names.size(); ++c) {
    if (columns.names[c] == seed_column || seen_params.count(columns.names[c])) continue;
    columns.metrics.push_back(c);
  }
  if (problems.empty() && columns.metrics.empty()) {
    problems.push_back(at_header +
                       ": no metric columns (every column other than the params and the seed "
                       "is a metric)");
  }
  return columns;
}

// The data rows as jobs: params, seed and metrics, a row with a non-finite metric diverged.
// Problems (by line) go into `problems`; `syntax` holds each record's CSV syntax problems, and a
// malformed row is reported once, for its syntax.
std::vector<ImportedJob> read_rows(const CsvDocument& doc, const Columns& columns,
                                   const std::string& seed_column,
                                   const std::map<size_t, std::vector<const CsvProblem*>>& syntax,
                                   std::vector<std::string>& problems) {
  std::vector<ImportedJob> jobs;
  const auto& header = columns.names;
  std::map<std::string, int64_t> line_of;  // canonical params + seed -> line
  std::set<std::string> ids;
  for (size_t r = 1; r < doc.records.size(); ++r) {
    const CsvRecord& record = doc.records[r];
    const std::string at = "line " + std::to_string(record.line);
    if (const auto bad = syntax.find(r); bad != syntax.end()) {
      for (const CsvProblem* p : bad->second) {
        problems.push_back("line " + std::to_string(p->line) + ": " + p->message);
      }
      continue;
    }
    if (record.fields.size() != header.size()) {
      problems.push_back(at + ": " + std::to_string(record.fields.size()) +
                         " fields, the header has " + std::to_string(header.size()));
      continue;
    }
    ImportedJob imported;
    imported.line = record.line;
    JobRecord& job = imported.job;
    bool seed_ok = true, cells_ok = true;
    for (size_t c : columns.params) job.params.emplace_back(header[c], trim(record.fields[c]));
    const std::string seed_text = trim(record.fields[columns.seed]);
    const std::string at_seed = at + ", column " + seed_column + ": ";
    if (seed_text.empty()) {
      problems.push_back(at_seed + "empty seed");
      seed_ok = false;
    } else if (const auto seed = parse_integer(seed_text)) {
      job.seed = *seed;
    } else {
      problems.push_back(at_seed + shown(seed_text) + " is not an integer seed");
      seed_ok = false;
    }
    std::vector<std::string> non_finite;
    for (size_t c : columns.metrics) {
      const std::string cell_text = trim(record.fields[c]);
      const Cell cell = parse_metric(cell_text);
      if (cell.kind == Cell::Kind::kInvalid) {
        problems.push_back(at + ", column " + header[c] + ": " + cell.error);
        cells_ok = false;
      } else if (cell.kind == Cell::Kind::kNonFinite) {
        non_finite.push_back(header[c] + " = " + cell_text);
      } else {
        imported.summaries.emplace_back(header[c], cell.value);
      }
    }
    // A row with bad cells still claims its params and seed, so a later copy is a duplicate too.
    if (!seed_ok) continue;
    const std::string canonical = canonical_params(job.params);
    const std::string identity = canonical + "seed=" + std::to_string(job.seed) + "\n";
    const auto [it, fresh] = line_of.emplace(identity, record.line);
    if (!fresh) {
      std::vector<std::string> shown_params;
      for (const auto& [k, v] : job.params) shown_params.push_back(k + "=" + shown(v));
      problems.push_back(at + ": duplicate of line " + std::to_string(it->second) +
                         " (same params " + join(shown_params, ", ") + " and seed " +
                         std::to_string(job.seed) + ")");
      continue;
    }
    if (!cells_ok) continue;
    job.arm_key = fnv1a64_hex(canonical);
    job.id = fnv1a64_hex(identity);
    if (!ids.insert(job.id).second) {  // a 64-bit hash collision: say so rather than merge rows
      problems.push_back(at + ": its job id " + job.id + " collides with another row's");
      continue;
    }
    if (!non_finite.empty()) {
      imported.status = "diverged";
      imported.error = "CSV line " + std::to_string(record.line) + ": " + join(non_finite, ", ");
    }
    jobs.push_back(std::move(imported));
  }
  return jobs;
}

// The imported sweep's record: a YAML note of where the values came from (file, hash, columns),
// and the same as provenance.
SweepRecord import_record(const ImportOptions& options, const std::string& text,
                          const std::vector<std::string>& params, const std::string& seed_column,
                          const std::vector<std::string>& metrics, size_t rows) {
  std::error_code ec;
  const std::string absolute = std::filesystem::absolute(options.csv_path, ec).string();
  const std::string csv_file = ec ? options.csv_path : absolute;
  const std::string csv_hash = fnv1a64_hex(text);
  // JSON strings are YAML scalars: any name is written safely.
  auto quoted = [](const std::string& s) {
    return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  };
  auto quoted_list = [&](const std::vector<std::string>& items) {
    std::vector<std::string> q;
    for (const auto& s : items) q.push_back(quoted(s));
    return "[" + join(q, ", ") + "]";
  };
  SweepRecord sweep;
  sweep.name = options.sweep;
  sweep.yaml = "# imported by ablate import; the values are in the store\nsource: csv\ncsv_file: " +
               quoted(csv_file) + "\ncsv_hash: " + csv_hash + "\nparams: " + quoted_list(params) +
               "\nseed_column: " + quoted(seed_column) + "\nmetrics: " + quoted_list(metrics) +
               "\nrows: " + std::to_string(rows) + "\n";
  sweep.config_hash = csv_hash;
  sweep.code_version = kImportCodeVersion;
  sweep.dirty = false;
  sweep.provenance = {{"source", "csv"},
                      {"csv_file", csv_file},
                      {"csv_hash", csv_hash},
                      {"params", join(params, ",")},
                      {"seed_column", seed_column}};
  return sweep;
}

}  // namespace

ImportPlan plan_import(const ImportOptions& options) {
  ImportPlan plan;
  plan.options = options;
  std::vector<std::string> problems;
  const std::string& source = options.csv_path;
  auto fail_if_any = [&] {
    if (!problems.empty()) throw ImportError(source, problems);
  };

  if (options.sweep.empty()) problems.push_back("--sweep: the sweep name is empty");
  if (has_control(options.sweep)) {
    problems.push_back("--sweep: the sweep name has control characters (" + shown(options.sweep) +
                       ")");
  }
  if (options.csv_path.empty()) problems.push_back("--csv: no CSV file given");
  std::vector<std::string> params;
  for (const auto& p : options.params) params.push_back(trim(p));
  if (params.empty()) problems.push_back("--params: name at least one param column");
  const std::string seed_column = trim(options.seed_column);
  if (seed_column.empty()) problems.push_back("--seed-col: the seed column name is empty");
  fail_if_any();

  const std::string text = read_file(options.csv_path, problems);
  fail_if_any();
  // Text policy (printable.h): the file must be UTF-8; a Latin-1 export is refused here, where
  // its line is known, rather than stored and broken in every later output.
  if (const size_t bad = first_invalid_utf8(text); bad != std::string::npos) {
    const TextPosition at = position_of(text, bad);
    problems.push_back("line " + std::to_string(at.line) + ", column " + std::to_string(at.column) +
                       ": " + not_utf8_text(text, bad) +
                       "; save the file as UTF-8 (iconv -f latin1 -t utf-8 FILE > FILE.utf8)");
    fail_if_any();
  }
  const CsvDocument doc = read_csv(text);
  if (doc.records.empty()) {
    problems.push_back("the file is empty: expected a header line naming the columns");
    fail_if_any();
  }
  std::map<size_t, std::vector<const CsvProblem*>> syntax;  // by record
  for (const CsvProblem& p : doc.problems) syntax[p.record].push_back(&p);

  if (const auto header_syntax = syntax.find(0); header_syntax != syntax.end()) {
    for (const CsvProblem* p : header_syntax->second) {
      problems.push_back("line " + std::to_string(p->line) + ": " + p->message);
    }
  }
  const Columns columns = read_header(doc.records[0], params, seed_column, problems);
  for (size_t c : columns.metrics) plan.metrics.push_back(columns.names[c]);
  // Without a usable header the rows cannot be read.
  fail_if_any();
  if (doc.records.size() == 1) {
    problems.push_back("no data rows after the header");
    fail_if_any();
  }
  plan.jobs = read_rows(doc, columns, seed_column, syntax, problems);
  fail_if_any();
  plan.sweep = import_record(options, text, params, seed_column, plan.metrics, plan.jobs.size());
  return plan;
}

ImportResult write_import(Store& store, const ImportPlan& plan) {
  const std::string& name = plan.sweep.name;
  Store::Transaction t(store);
  // Checked inside the write transaction (BEGIN IMMEDIATE): no other writer can take the name
  // between this check and the insert.
  if (store.sweep(name)) {
    throw ImportError(
        plan.options.csv_path,
        {"--sweep: a sweep named '" + name + "' exists in " + store.path() +
         "; import under another name, e.g. --sweep '" + free_name(store, name) + "'"});
  }
  store.register_sweep(plan.sweep);
  std::vector<JobRecord> jobs;
  jobs.reserve(plan.jobs.size());
  for (const auto& j : plan.jobs) jobs.push_back(j.job);
  store.register_jobs(name, jobs);
  ImportResult result;
  result.sweep = name;
  result.metrics = plan.metrics;
  std::set<std::string> arms;
  for (const auto& j : plan.jobs) {
    store.mark_imported(name, j.job.id, j.status, "import", j.error);
    if (!j.summaries.empty()) store.set_summaries(name, j.job.id, j.summaries);
    arms.insert(j.job.arm_key);
    ++result.jobs;
    if (j.status == "diverged") ++result.diverged;
  }
  result.arms = static_cast<int64_t>(arms.size());
  store.refresh_views();
  t.commit();
  return result;
}

ImportResult import_csv(Store& store, const ImportOptions& options) {
  return write_import(store, plan_import(options));
}

}  // namespace ablate::results
