// The report as one self-contained HTML page.
#include <sstream>

#include "report_parts.h"
#include "table.h"

namespace ablate::results {

using namespace detail;

std::string render_html(const Report& r, const std::vector<Figure>& figures,
                        const std::vector<std::string>& figure_notes) {
  std::ostringstream out;
  out << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>"
      << escape_html(title_of(r)) << "</title>\n<style>\n"
      << "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;"
         "max-width:1400px;padding:0 1em;color:#1a1a1a;background:#fff;"
         "overflow-wrap:break-word}\n"
         ".warning{background:#fff4d6;border-left:4px solid #e0a000;padding:6px 10px;margin:6px "
         "0}\n"
         // Figures (and any image) are scaled down to the page, never wider than it.
         "img{max-width:100%;height:auto;box-sizing:border-box}\n"
         "figure{margin:1.5em 0}figure img{border:1px solid #eee}\n"
         "figcaption{color:#555;font-size:0.9em}\n"
      << table_css() << "</style>\n</head>\n<body>\n";
  out << "<h1>" << escape_html(title_of(r)) << "</h1>\n";
  out << "<p>" << escape_html(summary_sentence(r));
  if (r.has_baseline()) {
    out << " Baseline: <strong>" << escape_html(r.baseline_arm().label) << "</strong> ("
        << escape_html(r.baseline_reason) << ")";
  }
  out << "</p>\n";
  for (const auto& w : r.warnings) out << "<div class=\"warning\">" << escape_html(w) << "</div>\n";
  out << table_html(arms_table(r));
  out << "<p>" << escape_html(columns_sentence(r)) << "</p>\n";
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
  if (r.options.sequential) {
    out << "<h2>Anytime-valid comparisons</h2>\n";
    for (const auto& f : r.families) {
      out << "<h3>Family: " << escape_html(f.name) << "</h3>\n<p>"
          << escape_html(sequential_sentence(r, f)) << "</p>\n"
          << table_html(sequential_table(r, f));
      const auto notes_ = sequential_notes(r, f);
      if (!notes_.empty()) {
        out << "<ul>\n";
        for (const auto& note : notes_) out << "<li>" << escape_html(note) << "</li>\n";
        out << "</ul>\n";
      }
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
    out << table_html(excluded_table(r));
  }
  out << "<h2>Provenance</h2>\n<ul>\n";
  for (const auto& [k, v] : r.provenance) {
    out << "<li>" << escape_html(k) << ": " << escape_html(v) << "</li>\n";
  }
  out << "</ul>\n</body>\n</html>\n";
  return out.str();
}

}  // namespace ablate::results
