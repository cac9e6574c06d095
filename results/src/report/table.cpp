// The three drawings of a Table (table.h): Markdown, HTML and LaTeX.
#include "table.h"

#include <sstream>
#include <stdexcept>

#include "report_parts.h"

namespace ablate::results::detail {
namespace {

// Cells of a row, one per column: missing ones empty, extra ones a bug of the caller.
std::vector<TableCell> cells_of(const Table& table, const TableRow& row) {
  if (row.cells.size() > table.columns.size()) {
    throw std::invalid_argument("table row has " + std::to_string(row.cells.size()) +
                                " cells for " + std::to_string(table.columns.size()) + " columns");
  }
  std::vector<TableCell> cells = row.cells;
  cells.resize(table.columns.size());
  return cells;
}

bool continuation_byte(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

size_t code_points(const std::string& s) {
  size_t n = 0;
  for (const char c : s) n += continuation_byte(c) ? 0 : 1;
  return n;
}

// A label as HTML: escaped, and tokens (between spaces) too long to sit on one line of a narrow
// column get break opportunities after '=', '_', '/' and ','; the style breaks anywhere only
// when even those are not enough. The pieces between break characters (ASCII, so never inside
// a character) are escaped whole: escaping byte by byte would turn every character of several
// bytes ("…", "é") into replacement characters.
std::string html_label(const std::string& text) {
  constexpr size_t kLongToken = 20;
  std::string out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(' ', start);
    if (end == std::string::npos) end = text.size();
    const std::string token = text.substr(start, end - start);
    const bool long_token = code_points(token) > kLongToken;
    size_t piece = 0;
    for (size_t i = 0; long_token && i + 1 < token.size(); ++i) {
      const char c = token[i];
      if (c == '=' || c == '_' || c == '/' || c == ',') {
        out += escape_html(token.substr(piece, i + 1 - piece)) + "<wbr>";
        piece = i + 1;
      }
    }
    out += escape_html(token.substr(piece));
    if (end == text.size()) break;
    out += ' ';
    start = end + 1;
  }
  return out;
}

// After \\ (or \toprule, \midrule) a '[' would be read as the optional length of the command.
std::string no_bracket_first(const std::string& latex) {
  return !latex.empty() && latex[0] == '[' ? "{}" + latex : latex;
}

std::string latex_cell(const TableCell& cell) {
  std::string text = cell.latex.empty() ? escape_latex(cell.text) : cell.latex;
  if (cell.strong && !text.empty()) text = "\\textbf{" + text + "}";
  return no_bracket_first(text);
}

}  // namespace

std::string abbreviate(const std::string& text, size_t limit) {
  if (limit < 2 || code_points(text) <= limit) return text;
  // The first limit - 1 code points, then the ellipsis.
  size_t end = 0;
  for (size_t kept = 0; end < text.size(); ++end) {
    if (!continuation_byte(text[end]) && kept++ == limit - 1) break;
  }
  // Cut at a boundary between words or key=value parts when one is in the last third.
  size_t cut = end;
  for (size_t i = end; i > end * 2 / 3; --i) {
    const char c = text[i - 1];
    if (c == ' ') {
      cut = i - 1;
      break;
    }
    if (c == '=' || c == '_') {
      cut = i;
      break;
    }
  }
  return text.substr(0, cut) + "…";
}

std::string table_markdown(const Table& table) {
  if (table.columns.empty()) return "";
  std::ostringstream out;
  out << "|";
  for (const TableColumn& c : table.columns) out << " " << escape_markdown(c.name) << " |";
  out << "\n|";
  for (const TableColumn& c : table.columns) out << (c.numeric ? " ---: |" : " --- |");
  out << "\n";
  for (const TableRow& row : table.rows) {
    if (!row.group.empty()) {
      out << "| **" << escape_markdown(row.group) << "** |";
      for (size_t i = 1; i < table.columns.size(); ++i) out << "  |";
      out << "\n";
    }
    if (row.cells.empty() && !row.group.empty()) continue;
    out << "|";
    for (const TableCell& cell : cells_of(table, row)) {
      const std::string text = escape_markdown(cell.text);
      const bool bold = cell.strong && !text.empty();
      out << " " << (bold ? "**" : "") << text << (bold ? "**" : "") << " |";
    }
    out << "\n";
  }
  return out.str();
}

std::string table_css() {
  return "table.report{border-collapse:collapse;margin:1em 0;font-size:13px;line-height:1.35}\n"
         "table.report th,table.report td{padding:3px 6px;border-bottom:1px solid #ddd;"
         "text-align:left;vertical-align:top}\n"
         "table.report thead th{border-bottom:2px solid #333;background:#f4f4f4;"
         "vertical-align:bottom;font-weight:600}\n"
         "table.report .num{text-align:right;white-space:nowrap;"
         "font-variant-numeric:tabular-nums}\n"
         "table.report th.num{white-space:normal}\n"
         "table.report .label{min-width:9em;overflow-wrap:anywhere}\n"
         "table.report tr.reference td{background:#e8efff}\n"
         "table.report tr.group th{background:#fafafa;border-bottom:1px solid #999;"
         "padding-top:8px;font-weight:600;overflow-wrap:anywhere}\n"
         ".better{color:#0a7a2f;font-weight:bold}.worse{color:#b00020;font-weight:bold}\n";
}

std::string table_html(const Table& table) {
  std::ostringstream out;
  out << "<table class=\"report\">\n<thead><tr>";
  for (const TableColumn& c : table.columns) {
    out << "<th scope=\"col\"" << (c.numeric ? " class=\"num\"" : "") << ">" << escape_html(c.name)
        << "</th>";
  }
  out << "</tr></thead>\n<tbody>\n";
  for (const TableRow& row : table.rows) {
    if (!row.group.empty()) {
      out << "<tr class=\"group\"><th colspan=\"" << table.columns.size()
          << "\" scope=\"colgroup\">" << escape_html(row.group) << "</th></tr>\n";
    }
    if (row.cells.empty() && !row.group.empty()) continue;
    out << (row.reference ? "<tr class=\"reference\">" : "<tr>");
    const std::vector<TableCell> cells = cells_of(table, row);
    for (size_t i = 0; i < cells.size(); ++i) {
      const TableColumn& column = table.columns[i];
      const TableCell& cell = cells[i];
      std::string cls = cell.css_class;
      if (column.numeric) cls += cls.empty() ? "num" : " num";
      if (column.label) cls += cls.empty() ? "label" : " label";
      out << "<td" << (cls.empty() ? "" : " class=\"" + escape_html(cls) + "\"");
      std::string shown = cell.text;
      if (column.label) {
        shown = abbreviate(cell.text, column.abbreviate_after);
        if (shown != cell.text) out << " title=\"" << escape_html(cell.text) << "\"";
      }
      out << ">";
      const std::string html = column.label ? html_label(shown) : escape_html(shown);
      const bool bold = cell.strong && !html.empty();
      out << (bold ? "<strong>" : "") << html << (bold ? "</strong>" : "") << "</td>";
    }
    out << "</tr>\n";
  }
  out << "</tbody>\n</table>\n";
  return out.str();
}

std::string table_latex(const Table& table, const std::string& caption, const std::string& label) {
  std::ostringstream out;
  std::string spec;
  for (const TableColumn& c : table.columns) spec += c.numeric ? 'r' : 'l';
  // Scaled down to the line when wider than it, never up (graphicx's \width is the natural width).
  out << "\\begin{table}[t]\n\\centering\n"
      << "\\resizebox{\\ifdim\\width>\\linewidth\\linewidth\\else\\width\\fi}{!}{%\n"
      << "\\begin{tabular}{" << spec << "}\n\\toprule\n";
  for (size_t i = 0; i < table.columns.size(); ++i) {
    const TableColumn& c = table.columns[i];
    out << (i ? " & " : "") << no_bracket_first(c.latex.empty() ? escape_latex(c.name) : c.latex);
  }
  out << " \\\\\n\\midrule\n";
  bool first = true;
  for (const TableRow& row : table.rows) {
    if (!row.group.empty()) {
      if (!first) out << "\\addlinespace\n";
      out << "\\multicolumn{" << table.columns.size() << "}{l}{\\textit{" << escape_latex(row.group)
          << "}} \\\\\n";
    }
    first = false;
    if (row.cells.empty() && !row.group.empty()) continue;
    const std::vector<TableCell> cells = cells_of(table, row);
    for (size_t i = 0; i < cells.size(); ++i) out << (i ? " & " : "") << latex_cell(cells[i]);
    out << " \\\\\n";
  }
  out << "\\bottomrule\n\\end{tabular}%\n}\n\\caption{" << caption << "}\n\\label{" << label
      << "}\n\\end{table}\n";
  return out.str();
}

}  // namespace ablate::results::detail
