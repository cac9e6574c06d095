#pragma once
// Figures of a report, drawn by gnuplot (Debian's gnuplot-nox: pngcairo and svg terminals):
//   learning_curves   the report's metric over training steps per arm: mean across seeds with a
//                     shaded t-interval band (needs the logged curve, Report::curve_metric)
//   metric_vs_groups  the metric against the group count (attention.kv_heads, 0 = model.heads;
//                     mha = heads, mqa = 1) per variant, mean with interval bars (needs at
//                     least two distinct group counts)
//   quality_vs_cost   the metric against parameters (or throughput when parameters do not
//                     differ), one labelled point per arm with interval bars
// A figure whose data is missing is not drawn; FigureSet::notes says why, and the report shows
// the note in its place. Names and labels are passed to gnuplot as plain (noenhanced) quoted text,
// so any arm label draws as written.
//
// Colours: series k of a figure is drawn in kFigurePalette[k % 8]. In learning_curves and
// quality_vs_cost a series is an arm (k = its index in Report::arms, so an arm keeps its colour
// across figures); in metric_vs_groups it is a variant (in order of first appearance). Series 0
// is vermilion #D55E00, a colour nothing else in a figure uses (text and axes are black, the
// grid light grey, the background white), so tests can find a figure's pixels by it. Bands are
// that colour at 20% opacity over white; lines and points are drawn opaque above every band.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "ablate/results/report.h"

namespace ablate::results {

// Okabe-Ito's colour-blind safe colours (vermilion first) and two of Paul Tol's, as 0xRRGGBB.
inline constexpr std::array<uint32_t, 8> kFigurePalette = {
    0xD55E00,  // vermilion
    0x0072B2,  // blue
    0x009E73,  // bluish green
    0xCC79A7,  // reddish purple
    0xE69F00,  // orange
    0x56B4E9,  // sky blue
    0x332288,  // indigo
    0x882255,  // wine
};

struct FigureOptions {
  std::string gnuplot = "gnuplot";  // the executable, found on PATH
  bool png = true;                  // write NAME.png (pngcairo); the HTML inlines these
  bool svg = true;                  // write NAME.svg (svg terminal)
  int width = 800;                  // pixels
  int height = 480;                 // pixels
  double timeout_s = 60;            // per figure; gnuplot is killed and an error thrown after it
};

struct FigureSet {
  std::vector<Figure> figures;     // drawn, in the order above; paths inside `dir`
  std::vector<std::string> notes;  // figures not drawn and why ("learning curves: ...")
};

// Draws the figures of `report` into `dir` (created when missing): NAME.png / NAME.svg, written
// through a temporary name and renamed so a crash leaves no half-written image. NAME.png and
// NAME.svg of a figure not drawn are removed from `dir` (left from an earlier report, they would
// contradict this one). Throws
// std::runtime_error when gnuplot is missing or fails (its stderr in the message).
FigureSet render_figures(const Report& report, const std::string& dir,
                         const FigureOptions& options = {});

// True when `gnuplot` runs (`gnuplot --version` exits 0).
bool gnuplot_available(const std::string& gnuplot = "gnuplot");

}  // namespace ablate::results
