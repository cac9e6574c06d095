// The report as one self-contained HTML page.
#include <sstream>

#include "report_parts.h"
#include "table.h"

namespace ablate::results {

using namespace detail;

std::string render_html(const Report& r, const std::vector<Figure>& figures,
                        const std::vector<std::string>& figure_notes) {
  std::ostringstream out;
  const std::string conf = percent(1 - r.options.alpha);
  out << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>"
      << escape_html(title_of(r)) << "</title>\n<style>\n"
      << "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;"
         "max-width:1400px;padding:0 1em;color:#1a1a1a;background:#fff}\n"
         "table{border-collapse:collapse;margin:1em 0;font-size:0.9em}\n"
         "th,td{padding:4px 8px;border-bottom:1px solid #ddd;text-align:right;white-space:nowrap}\n"
         "th{border-bottom:2px solid #333;background:#f4f4f4;white-space:normal}\n"
         "td:first-child,th:first-child,td:nth-child(2),th:nth-child(2){text-align:left}\n"
         "tr.baseline td{background:#f0f4ff}\n"
         ".better{color:#0a7a2f;font-weight:bold}.worse{color:#b00020;font-weight:bold}\n"
         ".warning{background:#fff4d6;border-left:4px solid #e0a000;padding:6px 10px;margin:6px "
         "0}\n"
         "figure{margin:1.5em 0}figure img{max-width:100%;border:1px solid #eee}\n"
         "figcaption{color:#555;font-size:0.9em}\n"
         "</style>\n</head>\n<body>\n";
  out << "<h1>" << escape_html(title_of(r)) << "</h1>\n";
  out << "<p>" << escape_html(summary_sentence(r));
  if (r.has_baseline()) {
    out << " Baseline: <strong>" << escape_html(r.baseline_arm().label) << "</strong> ("
        << escape_html(r.baseline_reason) << ")";
  }
  out << "</p>\n";
  for (const auto& w : r.warnings) out << "<div class=\"warning\">" << escape_html(w) << "</div>\n";
  // Wide tables scroll inside their box instead of being cut off by the page.
  out << "<div style=\"overflow-x:auto\">\n<table>\n<thead><tr>";
  for (const std::string& c : kColumns) {
    std::string name = c;
    if (name == "CI" || name == "Δ CI") name = conf + " " + name;
    out << "<th>" << escape_html(name) << "</th>";
  }
  out << "</tr></thead>\n<tbody>\n";
  for (size_t a = 0; a < r.arms.size(); ++a) {
    const auto cells = row_cells(r, a);
    out << (a == r.baseline ? "<tr class=\"baseline\">" : "<tr>");
    for (size_t i = 0; i < cells.size(); ++i) {
      const bool verdict = i == kVerdictColumn;
      std::string cls;
      if (verdict && (cells[i] == "better" || cells[i] == "worse"))
        cls = " class=\"" + cells[i] + "\"";
      out << "<td" << cls << ">" << escape_html(cells[i]) << "</td>";
    }
    out << "</tr>\n";
  }
  out << "</tbody>\n</table>\n</div>\n<p>Δ, g and Cliff's δ are arm minus baseline; P(better) is "
         "the "
         "probability that a run of the arm beats a run of the baseline.</p>\n";
  bool notes = false;
  for (const auto& c : r.comparisons) {
    if (c.note.empty() || !r.families[c.family].key.empty()) continue;
    if (!notes) out << "<ul>\n";
    notes = true;
    out << "<li>" << escape_html(r.arms[c.arm].label) << ": " << escape_html(c.note) << "</li>\n";
  }
  if (notes) out << "</ul>\n";
  for (const auto& f : r.families) {
    if (f.key.empty()) continue;
    out << "<h2>Family: " << escape_html(f.name) << "</h2>\n<p>"
        << escape_html(family_sentence(r, f)) << "</p>\n"
        << table_html(family_table(r, f));
    const auto family_notes_ = family_notes(r, f);
    if (!family_notes_.empty()) {
      out << "<ul>\n";
      for (const auto& note : family_notes_) out << "<li>" << escape_html(note) << "</li>\n";
      out << "</ul>\n";
    }
  }
  out << "<h2>Figures</h2>\n";
  if (figures.empty() && figure_notes.empty()) out << "<p>No figures.</p>\n";
  for (const auto& note : figure_notes) out << "<p>" << escape_html(note) << "</p>\n";
  for (const auto& f : figures) {
    out << "<figure>\n";
    if (!f.png_path.empty()) {
      out << "<img alt=\"" << escape_html(f.title) << "\" src=\"data:image/png;base64,"
          << base64(read_binary(f.png_path)) << "\">\n";
    }
    out << "<figcaption><strong>" << escape_html(f.title) << ".</strong> " << escape_html(f.caption)
        << "</figcaption>\n</figure>\n";
  }
  out << "<h2>Method</h2>\n<ul>\n";
  for (const auto& m : r.method) out << "<li>" << escape_html(m) << "</li>\n";
  out << "</ul>\n<h2>Excluded jobs</h2>\n";
  if (r.excluded.empty()) {
    out << "<p>None: every job of the sweep is a sample.</p>\n";
  } else {
    out << "<table>\n<thead><tr><th>job</th><th>seed</th><th>arm</th><th>status</th>"
           "<th>reason</th></tr></thead>\n<tbody>\n";
    for (const auto& e : r.excluded) {
      std::string reason = e.reason.size() > 300 ? e.reason.substr(0, 300) + "..." : e.reason;
      out << "<tr><td>" << escape_html(e.id) << "</td><td>" << e.seed << "</td><td>"
          << escape_html(e.arm_label) << "</td><td>" << escape_html(e.status)
          << "</td><td style=\"text-align:left;white-space:normal\">" << escape_html(reason)
          << "</td></tr>\n";
    }
    out << "</tbody>\n</table>\n";
  }
  out << "<h2>Provenance</h2>\n<ul>\n";
  for (const auto& [k, v] : r.provenance) {
    out << "<li>" << escape_html(k) << ": " << escape_html(v) << "</li>\n";
  }
  out << "</ul>\n</body>\n</html>\n";
  return out.str();
}

}  // namespace ablate::results
