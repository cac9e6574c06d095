// The three renderings of a report table (table.h).
#include "table.h"

#include <sstream>

#include "ablate/results/report.h"

namespace ablate::results::detail {

std::string table_markdown(const Table& table) {
  std::ostringstream out;
  out << "|";
  for (const auto& c : table.columns) out << " " << escape_markdown(c.name) << " |";
  out << "\n|";
  for (const auto& c : table.columns) out << (c.numeric ? " ---: |" : " --- |");
  out << "\n";
  for (const auto& row : table.rows) {
    if (!row.group.empty()) {
      out << "| **" << escape_markdown(row.group) << "** |";
      for (size_t i = 1; i < table.columns.size(); ++i) out << " |";
      out << "\n";
    }
    out << "|";
    for (const auto& cell : row.cells) {
      const std::string text = escape_markdown(cell.text);
      out << " " << (cell.strong && !text.empty() ? "**" + text + "**" : text) << " |";
    }
    out << "\n";
  }
  return out.str();
}

std::string table_html(const Table& table) {
  std::ostringstream out;
  out << "<table>\n<thead><tr>";
  for (const auto& c : table.columns) out << "<th>" << escape_html(c.name) << "</th>";
  out << "</tr></thead>\n<tbody>\n";
  for (const auto& row : table.rows) {
    if (!row.group.empty()) {
      out << "<tr class=\"group\"><th colspan=\"" << table.columns.size() << "\">"
          << escape_html(row.group) << "</th></tr>\n";
    }
    out << (row.reference ? "<tr class=\"baseline\">" : "<tr>");
    for (const auto& cell : row.cells) {
      out << "<td" << (cell.css_class.empty() ? "" : " class=\"" + cell.css_class + "\"") << ">"
          << escape_html(cell.text) << "</td>";
    }
    out << "</tr>\n";
  }
  out << "</tbody>\n</table>\n";
  return out.str();
}

std::string table_latex(const Table& table, const std::string& caption, const std::string& label) {
  std::ostringstream out;
  out << "\\begin{table}[t]\n\\centering\n\\resizebox{\\linewidth}{!}{%\n\\begin{tabular}{";
  for (const auto& c : table.columns) out << (c.numeric ? "r" : "l");
  out << "}\n\\toprule\n";
  for (size_t i = 0; i < table.columns.size(); ++i) {
    out << (i ? " & " : "") << escape_latex(table.columns[i].name);
  }
  out << " \\\\\n\\midrule\n";
  for (const auto& row : table.rows) {
    if (!row.group.empty()) {
      out << "\\multicolumn{" << table.columns.size() << "}{l}{\\textit{" << escape_latex(row.group)
          << "}} \\\\\n";
    }
    for (size_t i = 0; i < row.cells.size(); ++i) {
      out << (i ? " & " : "") << escape_latex(row.cells[i].text);
    }
    out << " \\\\\n";
  }
  out << "\\bottomrule\n\\end{tabular}}\n\\caption{" << caption << "}\n\\label{" << label
      << "}\n\\end{table}\n";
  return out.str();
}

}  // namespace ablate::results::detail
