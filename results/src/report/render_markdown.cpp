// The report as Markdown.
#include <sstream>

#include "report_parts.h"
#include "table.h"

namespace ablate::results {

using namespace detail;

std::string render_markdown(const Report& r, const std::vector<Figure>& figures,
                            const std::string& base_dir,
                            const std::vector<std::string>& figure_notes) {
  std::ostringstream out;
  out << "# " << escape_markdown(title_of(r)) << "\n\n";
  out << escape_markdown(summary_sentence(r));
  if (r.has_baseline()) {
    out << " Baseline: **" << escape_markdown(r.baseline_arm().label) << "** ("
        << escape_markdown(r.baseline_reason) << ")";
  }
  out << "\n\n";
  for (const auto& w : r.warnings) out << "> **Warning:** " << escape_markdown(w) << "\n>\n";
  if (!r.warnings.empty()) out << "\n";
  out << table_markdown(arms_table(r));
  out << "\n" << escape_markdown(columns_sentence(r)) << "\n";
  for (const auto& c : r.comparisons) {
    if (!c.note.empty() && r.families[c.family].key.empty()) {
      out << "\n- " << escape_markdown(r.arms[c.arm].label) << ": " << escape_markdown(c.note);
    }
  }
  for (const auto& f : r.families) {
    if (f.key.empty()) continue;
    out << "\n\n## Family: " << escape_markdown(f.name) << "\n\n"
        << escape_markdown(family_sentence(r, f)) << "\n\n"
        << table_markdown(family_table(r, f));
    for (const auto& note : family_notes(r, f)) out << "\n- " << escape_markdown(note);
  }
  if (r.options.sequential) {
    out << "\n\n## Anytime-valid comparisons";
    for (const auto& f : r.families) {
      out << "\n\n### Family: " << escape_markdown(f.name) << "\n\n"
          << escape_markdown(sequential_sentence(r, f)) << "\n\n"
          << table_markdown(sequential_table(r, f));
      for (const auto& note : sequential_notes(r, f)) out << "\n- " << escape_markdown(note);
    }
  }
  out << "\n\n## Figures\n\n";
  if (figures.empty() && figure_notes.empty()) {
    out << "No figures (run with --out DIR to draw them).\n\n";
  }
  for (const auto& note : figure_notes) out << "- " << escape_markdown(note) << "\n";
  if (!figure_notes.empty()) out << "\n";
  for (const auto& f : figures) {
    out << "### " << escape_markdown(f.title) << "\n\n";
    if (!f.png_path.empty()) {
      out << "![" << escape_markdown(f.title) << "](" << relative_to(f.png_path, base_dir)
          << ")\n\n";
    }
    out << escape_markdown(f.caption);
    if (!f.svg_path.empty()) out << " [SVG](" << relative_to(f.svg_path, base_dir) << ")";
    out << "\n\n";
  }
  out << "## Method\n\n";
  for (const auto& m : r.method) out << "- " << escape_markdown(m) << "\n";
  out << "\n## Excluded jobs\n\n";
  if (r.excluded.empty()) {
    out << "None: every job of the sweep is a sample.\n";
  } else {
    out << table_markdown(excluded_table(r));
  }
  out << "\n## Provenance\n\n";
  for (const auto& [k, v] : r.provenance) {
    out << "- " << escape_markdown(k) << ": " << escape_markdown(v) << "\n";
  }
  return out.str();
}

}  // namespace ablate::results
