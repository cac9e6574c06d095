#include "ablate/results/report_writer.h"

#include <filesystem>
#include <memory>
#include <set>
#include <sstream>
#include <stdexcept>
#include <utility>
#include <vector>

#include "ablate/results/files.h"
#include "ablate/results/printable.h"
#include "ablate/results/scratch_dir.h"

namespace ablate::results {
namespace fs = std::filesystem;
namespace {

const std::set<std::string> kFormats = {"md", "html", "tex", "json"};

std::string render(const Report& report, const std::string& format, const FigureSet& figures,
                   const std::string& base_dir) {
  if (format == "md") return render_markdown(report, figures.figures, base_dir, figures.notes);
  if (format == "html") return render_html(report, figures.figures, figures.notes);
  if (format == "tex") return render_latex(report);
  return render_json(report);
}

// Draws the figures, or explains why there are none.
FigureSet draw(const Report& report, const fs::path& dir, const FigureOptions& options) {
  if (!gnuplot_available(options.gnuplot)) {
    FigureSet none;
    none.notes.push_back(
        "figures not drawn: gnuplot was not found (Debian package gnuplot-nox; "
        "scripts/setup installs it)");
    return none;
  }
  return render_figures(report, dir.string(), options);
}

}  // namespace

std::vector<std::string> parse_formats(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream in(list);
  for (std::string f; std::getline(in, f, ',');) {
    if (!kFormats.count(f)) {
      throw ReportError("--format " + list + ": '" + f + "' is not one of md, html, tex, json");
    }
    for (const auto& seen : out) {
      if (seen == f) throw ReportError("--format " + list + ": " + f + " given twice");
    }
    out.push_back(f);
  }
  if (out.empty()) throw ReportError("--format: give at least one of md, html, tex, json");
  return out;
}

WrittenReport write_report(const Report& report, const ReportFiles& files) {
  if (files.formats.empty()) throw ReportError("no report format given");
  for (const auto& f : files.formats) {
    if (!kFormats.count(f)) throw ReportError("unknown report format '" + f + "'");
  }
  bool wants_figures = false;
  for (const auto& f : files.formats) wants_figures = wants_figures || f == "md" || f == "html";
  WrittenReport written;
  if (files.out_dir.empty()) {
    if (files.formats.size() != 1) {
      throw ReportError(
          "several formats need --out DIR (one file each); without it the report "
          "goes to stdout in one format");
    }
    const std::string& format = files.formats.front();
    FigureSet figures;
    std::unique_ptr<ScratchDir> scratch;
    if (format == "html") {
      scratch = std::make_unique<ScratchDir>(fs::temp_directory_path(), "ablate-report");
      figures = draw(report, scratch->path(), files.figures);
    }
    written.text = render(report, format, figures, "");
    written.notes = figures.notes;
    return written;
  }
  const fs::path dir = files.out_dir;
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec)) {
    throw ReportError("--out " + files.out_dir + ": a file, not a folder (the report writes " +
                      "report.<format> and figures/ into it)");
  }
  fs::create_directories(dir, ec);
  if (ec)
    throw ReportError("--out " + files.out_dir + ": cannot create the folder: " + ec.message());
  FigureSet figures;
  if (wants_figures) figures = draw(report, dir / "figures", files.figures);
  for (const auto& f : figures.figures) {
    if (!f.png_path.empty()) written.files.push_back(f.png_path);
    if (!f.svg_path.empty()) written.files.push_back(f.svg_path);
  }
  // Every format to its temporary first, then the renames: a full disk leaves the previous
  // report's files as they were, not some old and some new.
  std::vector<std::pair<fs::path, fs::path>> staged;  // temporary, final
  try {
    for (const auto& format : files.formats) {
      const fs::path tmp = dir / (".report." + format + ".tmp");
      staged.emplace_back(tmp, dir / ("report." + format));
      write_file(tmp, render(report, format, figures, dir.string()));
    }
  } catch (...) {
    // Whatever stopped it (a full disk, a render error), no temporary stays behind.
    for (const auto& [tmp, path] : staged) fs::remove(tmp, ec);
    try {
      throw;
    } catch (const DiskError& e) {
      throw DiskError(std::string(e.what()) + "; the report files already in " +
                      printable(dir.string()) + " are kept as they were");
    }
  }
  for (const auto& [tmp, path] : staged) {
    fs::rename(tmp, path, ec);
    if (ec) throw DiskError(disk_error_message("rename a new version over", path, ec.value()));
    written.files.push_back(path.string());
  }
  written.notes = figures.notes;
  return written;
}

}  // namespace ablate::results
