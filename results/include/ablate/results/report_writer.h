#pragma once
// Writing a report's files: what `ablate report` does after build_report (docs/design.md section
// 7).
//   --out DIR given:  DIR/report.md, report.html, report.tex, report.json for the formats asked,
//                     and DIR/figures/*.png|svg (drawn when md or html is asked). Every file is
//                     written under a temporary name and renamed, so an interrupted report never
//                     leaves a half-written file; a re-run replaces the files.
//   no --out:         exactly one format, returned as text for stdout; md then has no figures
//                     (they need a folder) and html inlines figures drawn in a temporary folder.
#include <string>
#include <vector>

#include "ablate/results/figures.h"
#include "ablate/results/report.h"

namespace ablate::results {

struct ReportFiles {
  std::vector<std::string> formats = {"md"};  // any of md, html, tex, json
  std::string out_dir;                        // "" = the one format on stdout
  FigureOptions figures;                      // how figures are drawn
};

struct WrittenReport {
  std::string text;                // the report, when out_dir is ""
  std::vector<std::string> files;  // files written, when out_dir is set
  std::vector<std::string> notes;  // figures not drawn and why
};

// "md,html" -> {"md", "html"}; ReportError for an unknown or repeated format.
std::vector<std::string> parse_formats(const std::string& list);

// Renders `report` as asked. ReportError for bad options (no format, several formats without
// out_dir); std::runtime_error when a file cannot be written. A missing gnuplot is not an error:
// the report is written without figures and says why.
WrittenReport write_report(const Report& report, const ReportFiles& files);

}  // namespace ablate::results
