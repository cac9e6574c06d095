// The three drawings of a Table: Markdown stays a valid pipe table whatever the cells hold, HTML
// escapes and abbreviates with the full text on hover, LaTeX is escaped and fits the page.
#include "table.h"

#include <gtest/gtest.h>

#include <sstream>
#include <stdexcept>

#include "report_parts.h"

namespace ablate::results::detail {
namespace {

TableColumn col(const std::string& name, bool numeric, bool label = false) {
  TableColumn c;
  c.name = name;
  c.numeric = numeric;
  c.label = label;
  return c;
}

TableCell cell(const std::string& text, bool strong = false, const std::string& css = "") {
  TableCell c;
  c.text = text;
  c.strong = strong;
  c.css_class = css;
  return c;
}

TableRow row(std::vector<TableCell> cells, const std::string& group = "", bool reference = false) {
  TableRow r;
  r.cells = std::move(cells);
  r.group = group;
  r.reference = reference;
  return r;
}

// Cells that try to break every format.
Table hostile_table() {
  Table t;
  t.columns = {col("Arm | name", false, true), col("verdict", false), col("mean ± std", true)};
  t.rows = {
      row({cell("a|b"), cell("better", true, "better"), cell("0.81 ± 0.02")}, "", true),
      row({cell("line one\nline two\r\nthree"), cell("worse", true, "worse"), cell("-0.5")},
          "variant=dgqa | kv_heads=2\n"),
      row({cell("ends with a backslash\\"), cell("x\\|y"), cell("<0.001")}),
      row({cell("<script>alert(1)</script>"), cell("**not bold** `code` [link](x)"), cell("")}),
      row({cell("50%_{x} & $y$ #1 ~^")}, "cell & 100%"),
  };
  return t;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Pipes that end a cell: those not escaped by an odd run of backslashes.
size_t unescaped_pipes(const std::string& line) {
  size_t n = 0;
  for (size_t i = 0; i < line.size(); ++i) {
    if (line[i] != '|') continue;
    size_t backslashes = 0;
    while (backslashes < i && line[i - 1 - backslashes] == '\\') ++backslashes;
    if (backslashes % 2 == 0) ++n;
  }
  return n;
}

TEST(TableMarkdown, StaysAValidPipeTableWhateverTheCellsHold) {
  const Table t = hostile_table();
  const std::string md = table_markdown(t);
  const auto lines = lines_of(md);
  // Header, delimiter, 5 rows and 2 group rows: no cell added a line.
  ASSERT_EQ(lines.size(), 9u) << md;
  for (const std::string& line : lines) {
    EXPECT_EQ(unescaped_pipes(line), t.columns.size() + 1) << line;
    EXPECT_EQ(line.front(), '|') << line;
    EXPECT_EQ(line.back(), '|') << line;
  }
  EXPECT_EQ(lines[1], "| --- | --- | ---: |");  // numeric columns right-aligned
  EXPECT_EQ(md.find("<script>"), std::string::npos);
  EXPECT_NE(md.find("&lt;script&gt;"), std::string::npos);
  EXPECT_NE(md.find("\\*\\*not bold\\*\\*"), std::string::npos);
  EXPECT_NE(md.find("ends with a backslash\\\\ |"), std::string::npos);
  EXPECT_NE(md.find("| a\\|b | **better** | 0.81 ± 0.02 |"), std::string::npos) << md;
}

TEST(TableMarkdown, GroupRowIsABoldFirstCellAndEmptyOthers) {
  Table t;
  t.columns = {col("Arm", false, true), col("n", true), col("p", true)};
  t.rows = {row({cell("weight_init=random"), cell("3"), cell("0.2")}, "variant=wgqa kv_heads=2"),
            row({}, "a heading alone")};
  const auto lines = lines_of(table_markdown(t));
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines[2], "| **variant=wgqa kv\\_heads=2** |  |  |");
  EXPECT_EQ(lines[3], "| weight\\_init=random | 3 | 0.2 |");
  EXPECT_EQ(lines[4], "| **a heading alone** |  |  |");
}

// `html` without the break opportunities (<wbr>) of long labels.
std::string without_wbr(std::string html) {
  for (size_t at; (at = html.find("<wbr>")) != std::string::npos;) html.erase(at, 5);
  return html;
}

TEST(TableHtml, EscapesEveryCellAndMarksRowsAndColumns) {
  const std::string html = without_wbr(table_html(hostile_table()));
  EXPECT_EQ(html.find("<script>"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  EXPECT_NE(html.find("<th scope=\"col\">Arm | name</th>"), std::string::npos);
  EXPECT_NE(html.find("<th scope=\"col\" class=\"num\">mean ± std</th>"), std::string::npos);
  // The verdict classes keep their colours; the reference row is marked; numbers are "num".
  EXPECT_NE(html.find("<tr class=\"reference\"><td class=\"label\">a|b</td>"
                      "<td class=\"better\"><strong>better</strong></td>"
                      "<td class=\"num\">0.81 ± 0.02</td></tr>"),
            std::string::npos)
      << html;
  EXPECT_NE(html.find("<td class=\"worse\"><strong>worse</strong></td>"), std::string::npos);
  // A group row spans every column.
  EXPECT_NE(html.find("<tr class=\"group\"><th colspan=\"3\" scope=\"colgroup\">cell &amp; "
                      "100%</th></tr>"),
            std::string::npos)
      << html;
  EXPECT_NE(table_css().find(".better{color:"), std::string::npos);
  EXPECT_NE(table_css().find("tr.reference"), std::string::npos);
}

TEST(TableHtml, LongLabelsAreAbbreviatedWithTheFullTextInTheTitle) {
  const std::string full =
      "stage=uptrain variant=wgqa kv_heads=2 weight_form=col weight_init=random "
      "parent=\"arm <a> of the mha sweep\" data.path=/datasets/very/long/path/to/tokens.bin";
  ASSERT_GT(full.size(), 96u);
  Table t;
  t.columns = {col("Arm", false, true), col("n", true)};
  t.rows = {row({cell(full), cell("3")}), row({cell("variant=mha"), cell("3")})};
  const std::string html = table_html(t);
  EXPECT_NE(html.find("title=\"" + escape_html(full) + "\""), std::string::npos) << html;
  const std::string shown = abbreviate(full, 96);
  EXPECT_NE(shown, full);
  EXPECT_EQ(shown.substr(shown.size() - 3), "…");
  EXPECT_EQ(full.rfind(shown.substr(0, shown.size() - 3), 0), 0u);  // a prefix of the label
  // The cell shows it whole, the ellipsis included (not as three U+FFFD, one per byte).
  EXPECT_NE(without_wbr(html).find(">" + escape_html(shown) + "</td>"), std::string::npos) << html;
  EXPECT_EQ(html.find("\xef\xbf\xbd"), std::string::npos) << html;
  // A short label has no title: it is all there.
  EXPECT_NE(html.find("<td class=\"label\">variant=mha</td>"), std::string::npos);
  EXPECT_EQ(html.find("title=\"variant=mha\""), std::string::npos);
}

TEST(TableHtml, LongTokensGetBreakOpportunitiesAtKeyBoundaries) {
  Table t;
  t.columns = {col("Arm", false, true)};
  t.rows = {row({cell("kv_heads=2 attention.weight_init=random_orthogonal")})};
  const std::string html = table_html(t);
  // "kv_heads=2" is short and stays whole; the long token may break after '=' and '_'.
  EXPECT_NE(html.find(">kv_heads=2 attention.weight_<wbr>init=<wbr>random_<wbr>orthogonal<"),
            std::string::npos)
      << html;
  // Characters of several bytes in a long token stay whole between the break opportunities.
  t.rows = {row({cell("corpus=café_crème_brûlée_κείμενο")})};
  EXPECT_NE(table_html(t).find(">corpus=<wbr>café_<wbr>crème_<wbr>brûlée_<wbr>κείμενο</td>"),
            std::string::npos)
      << table_html(t);
}

TEST(TableAbbreviate, CutsAtABoundaryAndNeverInsideACharacter) {
  EXPECT_EQ(abbreviate("short", 10), "short");
  EXPECT_EQ(abbreviate("alpha beta gamma delta", 12), "alpha beta…");
  EXPECT_EQ(abbreviate("weight_init=random", 10), "weight_…");
  // Five two-byte characters and more: the cut keeps whole code points.
  const std::string greek = "δδδδδδδδδδδδ";
  const std::string cut = abbreviate(greek, 5);
  EXPECT_EQ(cut, "δδδδ…");
}

TEST(TableLatex, EscapedCellsInAResizedBooktabsTable) {
  Table t = hostile_table();
  t.columns[2].latex = "Mean $\\pm$ std";
  t.rows[0].cells[2].latex = "0.81 $\\pm$ 0.02";
  const std::string tex = table_latex(t, "A caption", "tab:x");
  for (const char* part : {"\\begin{table}[t]", "\\resizebox{", "{!}{%", "\\begin{tabular}{llr}",
                           "\\toprule", "\\midrule", "\\bottomrule", "\\end{tabular}",
                           "\\caption{A caption}", "\\label{tab:x}", "\\end{table}"}) {
    EXPECT_NE(tex.find(part), std::string::npos) << part << "\n" << tex;
  }
  EXPECT_NE(tex.find("Arm | name & verdict & Mean $\\pm$ std \\\\"), std::string::npos) << tex;
  EXPECT_NE(tex.find("a|b & \\textbf{better} & 0.81 $\\pm$ 0.02 \\\\"), std::string::npos);
  EXPECT_NE(tex.find("\\textless{}script\\textgreater{}alert(1)\\textless{}/script\\textgreater{}"),
            std::string::npos);
  EXPECT_NE(tex.find("50\\%\\_\\{x\\} \\& \\$y\\$ \\#1 \\textasciitilde{}\\textasciicircum{}"),
            std::string::npos)
      << tex;
  EXPECT_NE(tex.find("\\multicolumn{3}{l}{\\textit{cell \\& 100\\%}} \\\\"), std::string::npos);
  EXPECT_EQ(tex.find("±"), std::string::npos);  // the one ± came as LaTeX
}

TEST(TableLatex, DoubleHyphensStayHyphensNotDashes) {
  // "--reference" typeset as is would be an en dash: the option a reader copies would be wrong.
  EXPECT_EQ(escape_latex("--reference VALUE"), "-{}-{}reference VALUE");
  EXPECT_EQ(escape_latex("kv-cache"), "kv-{}cache");
}

TEST(TableLatex, ACellStartingWithABracketIsNotAnOptionalArgument) {
  Table t;
  t.columns = {col("[CI]", true), col("n", true)};
  t.rows = {row({cell("[0.79, 0.83]"), cell("3")}), row({cell("[stage=pretrain]"), cell("3")})};
  const std::string tex = table_latex(t, "c", "l");
  EXPECT_NE(tex.find("\\toprule\n{}[CI] & n"), std::string::npos) << tex;
  EXPECT_NE(tex.find("\\midrule\n{}[0.79, 0.83] & 3"), std::string::npos) << tex;
  EXPECT_NE(tex.find("\\\\\n{}[stage=pretrain] & 3 \\\\"), std::string::npos) << tex;
  EXPECT_EQ(tex.find("\\\\\n["), std::string::npos) << tex;
}

TEST(TableLatex, EveryRowHasOneCellPerColumn) {
  Table t;
  t.columns = {col("a", false), col("b", true)};
  t.rows = {row({cell("only one")})};
  const std::string tex = table_latex(t, "c", "l");
  EXPECT_NE(tex.find("only one &  \\\\"), std::string::npos) << tex;
  t.rows = {row({cell("1"), cell("2"), cell("3")})};
  EXPECT_THROW(table_latex(t, "c", "l"), std::invalid_argument);
  EXPECT_THROW(table_markdown(t), std::invalid_argument);
  EXPECT_THROW(table_html(t), std::invalid_argument);
}

}  // namespace
}  // namespace ablate::results::detail
