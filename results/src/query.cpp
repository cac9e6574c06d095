#include "ablate/results/query.h"

#include <sqlite3.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace ablate::results {
namespace {

// The shortest text that reads back as the same double ("0.1", "1e-300", "0.30000000000000004").
std::string real_text(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

std::string cell_text(const QueryValue& v) {
  switch (v.kind) {
    case QueryValue::Kind::kNull:
      return "";
    case QueryValue::Kind::kInteger:
      return std::to_string(v.integer);
    case QueryValue::Kind::kReal:
      return real_text(v.real);
    case QueryValue::Kind::kText:
      return v.text;
  }
  return "";
}

// Nothing but blanks, semicolons and comments (-- to the end of the line, /* ... */): what may
// follow the one statement.
bool only_blank(const char* s) {
  while (*s != '\0') {
    if (std::isspace(static_cast<unsigned char>(*s)) || *s == ';') {
      ++s;
    } else if (s[0] == '-' && s[1] == '-') {
      while (*s != '\0' && *s != '\n') ++s;
    } else if (s[0] == '/' && s[1] == '*') {
      const char* end = std::strstr(s + 2, "*/");
      if (end == nullptr) return true;  // an unterminated comment runs to the end
      s = end + 2;
    } else {
      return false;
    }
  }
  return true;
}

// Functions a read-only SELECT must not call: fts3_tokenizer's two-argument form registers a
// tokenizer from a pointer (code execution); load_extension loads code.
int authorize(void*, int action, const char*, const char* name, const char*, const char*) {
  if (action == SQLITE_FUNCTION && name != nullptr &&
      (sqlite3_stricmp(name, "fts3_tokenizer") == 0 ||
       sqlite3_stricmp(name, "load_extension") == 0)) {
    return SQLITE_DENY;
  }
  return SQLITE_OK;
}

// Receives a result as SQLite produces it.
class RowWriter {
 public:
  virtual ~RowWriter() = default;
  virtual void begin(const std::vector<std::string>& columns) = 0;
  virtual void row(const std::vector<QueryValue>& values) = 0;
  virtual void end(int64_t rows) = 0;
};

// Collects a QueryResult.
class Collector : public RowWriter {
 public:
  QueryResult result;
  void begin(const std::vector<std::string>& columns) override { result.columns = columns; }
  void row(const std::vector<QueryValue>& values) override { result.rows.push_back(values); }
  void end(int64_t) override {}
};

// The aligned table: widths from the first kQueryTableWidthRows rows, which are held back until
// then; later rows are written at once (a wider cell widens its column from there on).
class TableWriter : public RowWriter {
 public:
  explicit TableWriter(std::ostream& out) : out_(out) {}
  void begin(const std::vector<std::string>& columns) override {
    columns_ = columns;
    for (const auto& c : columns) width_.push_back(c.size());
  }
  void row(const std::vector<QueryValue>& values) override {
    if (!flushed_) {
      held_.push_back(values);
      measure(values);
      if (held_.size() >= kQueryTableWidthRows) flush();
      return;
    }
    measure(values);
    write(values);
  }
  void end(int64_t rows) override {
    if (!flushed_) flush();
    out_ << "(" << rows << (rows == 1 ? " row)\n" : " rows)\n");
  }

 private:
  static std::string shown(const QueryValue& v) {
    return v.kind == QueryValue::Kind::kNull ? "NULL" : cell_text(v);
  }
  void measure(const std::vector<QueryValue>& values) {
    for (size_t i = 0; i < values.size(); ++i)
      width_[i] = std::max(width_[i], shown(values[i]).size());
  }
  static std::string pad(const std::string& s, size_t w, bool right) {
    const std::string fill(w > s.size() ? w - s.size() : 0, ' ');
    return right ? fill + s : s + fill;
  }
  void write(const std::vector<QueryValue>& values) {
    std::string line;
    for (size_t i = 0; i < values.size(); ++i) {
      const bool number =
          values[i].kind == QueryValue::Kind::kInteger || values[i].kind == QueryValue::Kind::kReal;
      line += (i ? "  " : "") + pad(shown(values[i]), width_[i], number);
    }
    out_ << line << "\n";
  }
  void flush() {
    std::string head, rule;
    for (size_t i = 0; i < columns_.size(); ++i) {
      head += (i ? "  " : "") + pad(columns_[i], width_[i], false);
      rule += (i ? "  " : "") + std::string(width_[i], '-');
    }
    out_ << head << "\n" << rule << "\n";
    for (const auto& values : held_) write(values);
    held_.clear();
    flushed_ = true;
  }
  std::ostream& out_;
  std::vector<std::string> columns_;
  std::vector<size_t> width_;
  std::vector<std::vector<QueryValue>> held_;
  bool flushed_ = false;
};

class CsvWriter : public RowWriter {
 public:
  explicit CsvWriter(std::ostream& out) : out_(out) {}
  void begin(const std::vector<std::string>& columns) override {
    for (size_t i = 0; i < columns.size(); ++i) out_ << (i ? "," : "") << field(columns[i]);
    out_ << "\n";
  }
  void row(const std::vector<QueryValue>& values) override {
    for (size_t i = 0; i < values.size(); ++i)
      out_ << (i ? "," : "") << field(cell_text(values[i]));
    out_ << "\n";
  }
  void end(int64_t) override {}

 private:
  static std::string field(const std::string& s) {
    if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
    std::string q = "\"";
    for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    return q + "\"";
  }
  std::ostream& out_;
};

class JsonWriter : public RowWriter {
 public:
  explicit JsonWriter(std::ostream& out) : out_(out) {}
  void begin(const std::vector<std::string>& columns) override {
    keys_ = unique_column_names(columns);
    out_ << "[";
  }
  void row(const std::vector<QueryValue>& values) override {
    nlohmann::json object = nlohmann::json::object();
    for (size_t i = 0; i < values.size(); ++i) {
      const QueryValue& v = values[i];
      switch (v.kind) {
        case QueryValue::Kind::kNull:
          object[keys_[i]] = nullptr;
          break;
        case QueryValue::Kind::kInteger:
          object[keys_[i]] = v.integer;
          break;
        case QueryValue::Kind::kReal:
          object[keys_[i]] = std::isfinite(v.real) ? nlohmann::json(v.real) : nullptr;
          break;
        case QueryValue::Kind::kText:
          object[keys_[i]] = v.text;
          break;
      }
    }
    // Invalid UTF-8 (a blob, a Latin-1 value) is replaced rather than aborting the output.
    out_ << (first_ ? "" : ",")
         << object.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    first_ = false;
  }
  void end(int64_t) override { out_ << "]\n"; }

 private:
  std::ostream& out_;
  std::vector<std::string> keys_;
  bool first_ = true;
};

// Runs `sql` and hands its columns and rows to `writer`; the number of rows.
int64_t run(Store& store, const std::string& sql, RowWriter& writer) {
  sqlite3* db = store.database().getHandle();
  sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);
  sqlite3_set_authorizer(db, authorize, nullptr);
  sqlite3_stmt* raw = nullptr;
  const char* tail = nullptr;
  const int prepared =
      sqlite3_prepare_v2(db, sql.c_str(), static_cast<int>(sql.size()), &raw, &tail);
  sqlite3_set_authorizer(db, nullptr, nullptr);
  if (prepared != SQLITE_OK) throw QueryError(std::string("SQL error: ") + sqlite3_errmsg(db));
  std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> statement(raw, sqlite3_finalize);
  if (raw == nullptr) throw QueryError("no SQL statement given");
  if (tail != nullptr && !only_blank(tail)) {
    throw QueryError("one statement at a time: remove what follows the first ';'");
  }
  if (sqlite3_stmt_readonly(raw) == 0) {
    throw QueryError(
        "this statement would change the database; ablate query is read-only (use SELECT)");
  }
  const int n = sqlite3_column_count(raw);
  std::vector<std::string> columns;
  for (int i = 0; i < n; ++i) columns.emplace_back(sqlite3_column_name(raw, i));
  writer.begin(columns);
  int64_t rows = 0;
  std::vector<QueryValue> row(static_cast<size_t>(n));
  for (;;) {
    const int rc = sqlite3_step(raw);
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) throw QueryError(std::string("SQL error: ") + sqlite3_errmsg(db));
    for (int i = 0; i < n; ++i) {
      QueryValue& v = row[static_cast<size_t>(i)];
      v = QueryValue{};
      switch (sqlite3_column_type(raw, i)) {
        case SQLITE_INTEGER:
          v.kind = QueryValue::Kind::kInteger;
          v.integer = sqlite3_column_int64(raw, i);
          break;
        case SQLITE_FLOAT:
          v.kind = QueryValue::Kind::kReal;
          v.real = sqlite3_column_double(raw, i);
          break;
        case SQLITE_NULL:
          break;
        default: {
          v.kind = QueryValue::Kind::kText;
          const auto* bytes = static_cast<const char*>(sqlite3_column_blob(raw, i));
          v.text.assign(bytes == nullptr ? "" : bytes,
                        static_cast<size_t>(sqlite3_column_bytes(raw, i)));
        }
      }
    }
    writer.row(row);
    ++rows;
  }
  writer.end(rows);
  return rows;
}

std::unique_ptr<RowWriter> writer_for(QueryFormat format, std::ostream& out) {
  switch (format) {
    case QueryFormat::kCsv:
      return std::make_unique<CsvWriter>(out);
    case QueryFormat::kJson:
      return std::make_unique<JsonWriter>(out);
    case QueryFormat::kTable:
      break;
  }
  return std::make_unique<TableWriter>(out);
}

std::string format_with(QueryFormat format, const QueryResult& r) {
  std::ostringstream out;
  auto writer = writer_for(format, out);
  writer->begin(r.columns);
  for (const auto& row : r.rows) writer->row(row);
  writer->end(static_cast<int64_t>(r.rows.size()));
  return out.str();
}

}  // namespace

std::vector<std::string> unique_column_names(const std::vector<std::string>& columns) {
  // A name keeps its first occurrence; a repeat takes the first suffix no column has.
  std::set<std::string> used(columns.begin(), columns.end());
  std::set<std::string> seen;
  std::vector<std::string> out;
  for (const auto& c : columns) {
    if (seen.insert(c).second) {
      out.push_back(c);
      continue;
    }
    std::string name;
    for (int k = 2;; ++k) {
      name = c + "_" + std::to_string(k);
      if (used.count(name) == 0) break;
    }
    used.insert(name);
    out.push_back(name);
  }
  return out;
}

QueryResult run_query(Store& store, const std::string& sql) {
  Collector collector;
  run(store, sql, collector);
  return std::move(collector.result);
}

int64_t stream_query(Store& store, const std::string& sql, QueryFormat format, std::ostream& out) {
  auto writer = writer_for(format, out);
  return run(store, sql, *writer);
}

std::string format_table(const QueryResult& r) { return format_with(QueryFormat::kTable, r); }
std::string format_csv(const QueryResult& r) { return format_with(QueryFormat::kCsv, r); }
std::string format_json(const QueryResult& r) { return format_with(QueryFormat::kJson, r); }

}  // namespace ablate::results
