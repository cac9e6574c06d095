// Escaping of names and values per output format.
#include "ablate/results/printable.h"
#include "report_parts.h"

namespace ablate::results {

std::string escape_html(const std::string& raw) {
  // Invalid UTF-8 and control characters first (printable.h): no value moves a terminal's
  // cursor or breaks the markup.
  const std::string s = printable(raw);
  std::string out;
  for (const char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string escape_latex(const std::string& raw) {
  // Invalid UTF-8 and control characters first (printable.h): no value moves a terminal's
  // cursor or breaks the markup.
  const std::string s = printable(raw);
  std::string out;
  for (const char c : s) {
    switch (c) {
      case '\\':
        out += "\\textbackslash{}";
        break;
      case '{':
        out += "\\{";
        break;
      case '}':
        out += "\\}";
        break;
      case '$':
        out += "\\$";
        break;
      case '&':
        out += "\\&";
        break;
      case '#':
        out += "\\#";
        break;
      case '%':
        out += "\\%";
        break;
      case '_':
        out += "\\_";
        break;
      case '^':
        out += "\\textasciicircum{}";
        break;
      case '~':
        out += "\\textasciitilde{}";
        break;
      case '-':
        // "--" and "---" are ligatures (en and em dashes): "--reference" must stay two hyphens.
        out += "-{}";
        break;
      case '<':
        out += "\\textless{}";
        break;
      case '>':
        out += "\\textgreater{}";
        break;
      case '\n':
      case '\r':
        out += ' ';
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string escape_markdown(const std::string& raw) {
  // Invalid UTF-8 and control characters first (printable.h): no value moves a terminal's
  // cursor or breaks the markup.
  const std::string s = printable(raw);
  std::string out;
  for (const char c : s) {
    switch (c) {
      // HTML-significant characters as entities: code hosts render Markdown to HTML.
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '\n':
      case '\r':
        out += ' ';
        break;
      // Inline Markdown syntax; '-', '+' and '(' only matter where a table cell cannot start.
      case '\\':
      case '`':
      case '*':
      case '_':
      case '[':
      case ']':
      case '|':
      case '#':
      case '~':
        out += '\\';
        out += c;
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace ablate::results
