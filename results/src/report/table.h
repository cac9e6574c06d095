#pragma once
// A table of a report as every format draws it: the arms table, and one table per comparison
// family. The renderers build a Table once and each format writes it, so what a table says does
// not depend on the format, and the rules that make a wide table fit live in one place:
//   Markdown  a valid pipe table (escaped cells; a group row as a bold first cell)
//   HTML      fits a 1200-pixel window: long cells abbreviated with the full text on hover
//             (title attribute), headers and labels wrap; never a horizontal scroll bar
//   LaTeX     fits the page width (\resizebox to \linewidth when wider than it)
// Internal to the results library.
#include <cstddef>
#include <string>
#include <vector>

namespace ablate::results::detail {

struct TableCell {
  std::string text;       // as shown (plain text; each format escapes it)
  bool strong = false;    // drawn bold (a verdict of better or worse)
  std::string css_class;  // HTML only: "better", "worse", ... ("" = none)
  // LaTeX only: when not empty, written as is instead of escape_latex(text): the caller's own
  // LaTeX (numbers with $-$, $<$ and $\pm$), never text that came from the sweep.
  std::string latex;
};

struct TableColumn {
  std::string name;     // header text (plain)
  bool numeric = true;  // right-aligned, never wrapped
  bool label = false;   // an arm label: may wrap or be abbreviated with the full text on hover
  // LaTeX only: when not empty, the header as is instead of escape_latex(name) ("$p$").
  std::string latex;
  // HTML only, label columns: a cell longer than this many characters is cut (at a space, '='
  // or '_' when one is near) and ends with an ellipsis; its full text is the title attribute.
  size_t abbreviate_after = 96;
};

struct TableRow {
  std::vector<TableCell> cells;  // one per column (missing cells are drawn empty)
  bool reference = false;        // the baseline or the family's reference row: highlighted
  // When not empty, a heading row spanning the table is drawn before this row (the cell a
  // comparison family's rows belong to: "variant=dgqa kv_heads=2"). A row with a group and no
  // cells is that heading alone.
  std::string group;
};

struct Table {
  std::vector<TableColumn> columns;
  std::vector<TableRow> rows;
};

std::string table_markdown(const Table& table);
// A <table class="report">; its look (and what makes it fit) is table_css(), which the page's
// <style> must include.
std::string table_html(const Table& table);
std::string table_css();
// A tabular inside a table float; `caption` and `label` are already LaTeX (escaped by the caller).
std::string table_latex(const Table& table, const std::string& caption, const std::string& label);

// What table_html shows of a label cell: `text` itself, or at most `limit` characters (UTF-8
// code points) of it ending with an ellipsis. Exposed for tests.
std::string abbreviate(const std::string& text, size_t limit);

}  // namespace ablate::results::detail
