#include "ablate/results/query.h"

#include <sqlite3.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

namespace ablate::results {
namespace {

std::string real_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
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

bool only_blank(const char* s) {
  for (; *s != '\0'; ++s) {
    if (!std::isspace(static_cast<unsigned char>(*s)) && *s != ';') return false;
  }
  return true;
}

}  // namespace

QueryResult run_query(Store& store, const std::string& sql) {
  sqlite3* db = store.database().getHandle();
  sqlite3_stmt* raw = nullptr;
  const char* tail = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), static_cast<int>(sql.size()), &raw, &tail) != SQLITE_OK) {
    throw QueryError(std::string("SQL error: ") + sqlite3_errmsg(db));
  }
  std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> statement(raw, sqlite3_finalize);
  if (raw == nullptr) throw QueryError("no SQL statement given");
  if (tail != nullptr && !only_blank(tail)) {
    throw QueryError("one statement at a time: remove what follows the first ';'");
  }
  if (sqlite3_stmt_readonly(raw) == 0) {
    throw QueryError(
        "this statement would change the database; ablate query is read-only (use SELECT)");
  }
  QueryResult result;
  const int n = sqlite3_column_count(raw);
  for (int i = 0; i < n; ++i) result.columns.emplace_back(sqlite3_column_name(raw, i));
  for (;;) {
    const int rc = sqlite3_step(raw);
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) throw QueryError(std::string("SQL error: ") + sqlite3_errmsg(db));
    std::vector<QueryValue> row(n);
    for (int i = 0; i < n; ++i) {
      QueryValue& v = row[i];
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
    result.rows.push_back(std::move(row));
  }
  return result;
}

std::string format_table(const QueryResult& r) {
  std::vector<size_t> width;
  for (const auto& c : r.columns) width.push_back(c.size());
  for (const auto& row : r.rows) {
    for (size_t i = 0; i < row.size(); ++i) {
      const size_t w = row[i].kind == QueryValue::Kind::kNull ? 4 : cell_text(row[i]).size();
      width[i] = std::max(width[i], w);
    }
  }
  auto pad = [](const std::string& s, size_t w, bool right) {
    const std::string fill(w > s.size() ? w - s.size() : 0, ' ');
    return right ? fill + s : s + fill;
  };
  std::string out;
  for (size_t i = 0; i < r.columns.size(); ++i) {
    out += (i ? "  " : "") + pad(r.columns[i], width[i], false);
  }
  out += "\n";
  for (size_t i = 0; i < r.columns.size(); ++i) out += (i ? "  " : "") + std::string(width[i], '-');
  out += "\n";
  for (const auto& row : r.rows) {
    for (size_t i = 0; i < row.size(); ++i) {
      const bool number =
          row[i].kind == QueryValue::Kind::kInteger || row[i].kind == QueryValue::Kind::kReal;
      const std::string text = row[i].kind == QueryValue::Kind::kNull ? "NULL" : cell_text(row[i]);
      out += (i ? "  " : "") + pad(text, width[i], number);
    }
    out += "\n";
  }
  out += "(" + std::to_string(r.rows.size()) + (r.rows.size() == 1 ? " row)\n" : " rows)\n");
  return out;
}

std::string format_csv(const QueryResult& r) {
  auto field = [](const std::string& s) {
    if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
    std::string q = "\"";
    for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    return q + "\"";
  };
  std::string out;
  for (size_t i = 0; i < r.columns.size(); ++i) out += (i ? "," : "") + field(r.columns[i]);
  out += "\n";
  for (const auto& row : r.rows) {
    for (size_t i = 0; i < row.size(); ++i) out += (i ? "," : "") + field(cell_text(row[i]));
    out += "\n";
  }
  return out;
}

std::string format_json(const QueryResult& r) {
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& row : r.rows) {
    nlohmann::json object = nlohmann::json::object();
    for (size_t i = 0; i < row.size(); ++i) {
      const QueryValue& v = row[i];
      switch (v.kind) {
        case QueryValue::Kind::kNull:
          object[r.columns[i]] = nullptr;
          break;
        case QueryValue::Kind::kInteger:
          object[r.columns[i]] = v.integer;
          break;
        case QueryValue::Kind::kReal:
          object[r.columns[i]] = std::isfinite(v.real) ? nlohmann::json(v.real) : nullptr;
          break;
        case QueryValue::Kind::kText:
          // Invalid UTF-8 (a blob) is replaced rather than aborting the whole output.
          object[r.columns[i]] = v.text;
          break;
      }
    }
    rows.push_back(std::move(object));
  }
  return rows.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace ablate::results
