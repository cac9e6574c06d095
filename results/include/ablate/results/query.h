#pragma once
// `ablate query`: read-only SQL over the store, printed as an aligned table, CSV or JSON.
#include <cstddef>
#include <cstdint>
#include <ostream>
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

// Runs one SELECT (or another statement SQLite reports as read-only) on `store`, buffered. The
// store should be opened read-only as well; this check makes the refusal clear rather than an
// SQLite error. Only blanks, semicolons and comments may follow the statement. The statement may
// not call fts3_tokenizer or load_extension (an authorizer refuses them; SQLite's defensive mode
// is on).
QueryResult run_query(Store& store, const std::string& sql);

// The formats. Reals are written in the shortest form that reads back as the same double
// (0.1, 1e-300, 0.30000000000000004; inf, -inf and nan in text), in every format.
// - table: columns padded to their widest cell, numbers right-aligned, NULL as "NULL", a rule
//   under the header; then "(N rows)". Widths come from the first kQueryTableWidthRows rows.
// - csv: RFC 4180: a header line; a field is quoted when it holds a comma, a quote, CR or LF,
//   and its quotes are doubled; NULL is an empty field; LF line ends.
// - json: an array of objects keyed by column name (a repeated name gets _2, _3, ...:
//   unique_column_names); integers and reals as numbers (non-finite reals as null), NULL as
//   null, text as strings with invalid UTF-8 replaced by U+FFFD.
enum class QueryFormat { kTable, kCsv, kJson };
inline constexpr size_t kQueryTableWidthRows = 1000;

// Runs one read-only statement and writes its rows to `out` as SQLite produces them (memory
// stays bounded whatever the result's size). The number of rows. QueryError as run_query.
int64_t stream_query(Store& store, const std::string& sql, QueryFormat format, std::ostream& out);

// The same, buffered (for small results and tests).
std::string format_table(const QueryResult& result);
std::string format_csv(const QueryResult& result);
std::string format_json(const QueryResult& result);

// Column names made unique for JSON keys: a name keeps its first occurrence, a repeat gets the
// first of _2, _3, ... that no column has ("a", "a" -> "a", "a_2"; "a", "a", "a_2" -> "a",
// "a_3", "a_2").
std::vector<std::string> unique_column_names(const std::vector<std::string>& columns);

}  // namespace ablate::results
