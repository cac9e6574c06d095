#pragma once
// `ablate query`: read-only SQL over the store, printed as an aligned table, CSV or JSON.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "ablate/results/store.h"

namespace ablate::results {

// A statement that is not one read-only query (a write, two statements, a syntax error): bad
// input, with SQLite's message where it has one.
class QueryError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct QueryValue {
  enum class Kind { kNull, kInteger, kReal, kText };
  Kind kind = Kind::kNull;
  int64_t integer = 0;
  double real = 0.0;
  std::string text;  // kText (and blobs, as their bytes)
};

struct QueryResult {
  std::vector<std::string> columns;
  std::vector<std::vector<QueryValue>> rows;
};

// Runs one SELECT (or another statement SQLite reports as read-only) on `store`. The store should
// be opened read-only as well; this check makes the refusal clear rather than an SQLite error.
QueryResult run_query(Store& store, const std::string& sql);

// Columns padded to their widest cell, numbers right-aligned, NULL as "NULL", a rule under the
// header; then "(N rows)".
std::string format_table(const QueryResult& result);
// RFC 4180: a header line; a field is quoted when it holds a comma, a quote, CR or LF, and its
// quotes are doubled; NULL is an empty field; CRLF line ends are not used (LF).
std::string format_csv(const QueryResult& result);
// A JSON array of objects keyed by column name; integers and reals as numbers (non-finite reals
// as null), NULL as null, text as strings.
std::string format_json(const QueryResult& result);

}  // namespace ablate::results
