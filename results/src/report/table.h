#pragma once
// A table of a report as every format draws it: the arms table, and one table per comparison
// family. The renderers build a Table once and each format writes it, so what a table says does
// not depend on the format, and the rules that make a wide table fit live in one place:
//   Markdown  a valid pipe table (escaped cells; a group row as a bold first cell)
//   HTML      fits a 1200-pixel window: long cells abbreviated with the full text on hover
//             (title attribute), headers and labels wrap; never a horizontal scroll bar
//   LaTeX     fits the page width (\resizebox to \linewidth when wider than it)
// Internal to the results library.
#include <string>
#include <vector>

namespace ablate::results::detail {

struct TableCell {
  std::string text;       // as shown (plain text; each format escapes it)
  bool strong = false;    // drawn bold (a verdict of better or worse)
  std::string css_class;  // HTML only: "better", "worse", ... ("" = none)
};

struct TableColumn {
  std::string name;     // header text (plain)
  bool numeric = true;  // right-aligned, never wrapped
  bool label = false;   // an arm label: may wrap or be abbreviated with the full text on hover
};

struct TableRow {
  std::vector<TableCell> cells;  // one per column
  bool reference = false;        // the baseline or the family's reference row: highlighted
  // When not empty, a heading row spanning the table is drawn before this row (the cell a
  // comparison family's rows belong to: "variant=dgqa kv_heads=2").
  std::string group;
};

struct Table {
  std::vector<TableColumn> columns;
  std::vector<TableRow> rows;
};

std::string table_markdown(const Table& table);
std::string table_html(const Table& table);
// A tabular inside a table float; `caption` and `label` are already LaTeX (escaped by the caller).
std::string table_latex(const Table& table, const std::string& caption, const std::string& label);

}  // namespace ablate::results::detail
