#pragma once
// Figures of a report, drawn by gnuplot (Debian's gnuplot-nox: pngcairo and svg terminals):
//   learning_curves   the report's metric over training steps per arm: mean across seeds with a
//                     shaded t-interval band (needs the logged curve, Report::curve_metric).
//                     More than kMaxArmsPerPanel arms of several variants are drawn as small
//                     multiples: one panel per variant, titled "variant=dgqa", in a grid (or one
//                     per value of FigureOptions::panel_key, whatever the number of arms); every
//                     panel has the same x and y ranges, and a legend entry drops the key=value
//                     its panel's title already says.
//   metric_vs_groups  the metric against the group count (attention.kv_heads, 0 = model.heads;
//                     mha = heads, mqa = 1) per variant, mean with interval bars (needs at
//                     least two distinct group counts); one plot, or one panel per variant when
//                     it has more than kFigurePalette.size() series
//   quality_vs_cost   the metric against a cost (FigureOptions::cost: parameters, training
//                     throughput or KV-cache bytes per token), one point per arm with interval
//                     bars; the points are labelled beside them for up to kMaxPointLabels arms,
//                     beyond that a legend names each arm by its colour and marker
// A figure whose data is missing is not drawn; FigureSet::notes says why, and the report shows
// the note in its place. A note also says which arms a drawn figure leaves out (quality_vs_cost:
// arms whose chosen cost is unknown). Names and labels are passed to gnuplot as plain
// (noenhanced) quoted text, so any arm label draws as written; a label longer than the legend
// can hold is shortened with an ellipsis in the middle, as little as keeps the labels distinct.
//
// Legends are outside the plot area (below it; a grid's panels each have theirs below), in as
// many columns as fit, and the canvas grows from FigureOptions::width x height until every entry
// fits: a legend is never cut. Growth stops at kMaxCanvasWidth x kMaxCanvasHeight (a grid's plots
// get shorter instead), unless hundreds of entries or panels need more.
//
// Styles: series k of a figure is drawn in series_style(k): colour kFigurePalette[k % 12], a dash
// pattern that changes every 12 series (solid for the first 12) and a marker that cycles through
// 7, so series k and k + 12 still differ. In learning_curves and quality_vs_cost a series is an
// arm (k = its index in Report::arms, so an arm keeps its style across figures, panel or not); in
// metric_vs_groups it is a variant with the other params that tell arms apart (in order of first
// appearance). Series 0 is vermilion #D55E00,
// a colour nothing else in a figure uses (text and axes are black, the grid light grey, the
// background white; series 12, 24, ... are vermilion too, dashed), so tests can find a figure's
// pixels by it. Bands are that colour at 20% opacity over white; lines and points are drawn
// opaque above every band.
#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ablate/results/report.h"

namespace ablate::results {

// Okabe-Ito's colour-blind safe colours (vermilion first, without black and yellow) and four of
// Paul Tol's (muted green, olive, teal, purple), as 0xRRGGBB: no two closer than 48 in some
// channel, and none as pale as a band.
inline constexpr std::array<uint32_t, 12> kFigurePalette = {
    0xD55E00,  // vermilion
    0x0072B2,  // blue
    0x009E73,  // bluish green
    0xCC79A7,  // reddish purple
    0xE69F00,  // orange
    0x56B4E9,  // sky blue
    0x332288,  // indigo
    0x882255,  // wine
    0x117733,  // green
    0x999933,  // olive
    0x44AA99,  // teal
    0xAA4499,  // purple
};

// How series k is drawn: gnuplot's `lc rgb`, `dt` and `pt` values.
struct SeriesStyle {
  uint32_t rgb = 0;    // kFigurePalette[k % 12]
  int dash_type = 1;   // 1 solid (k < 12), then 2 dashed, 3 dotted, 4 dash-dot, 5 dash-dot-dot
  int point_type = 7;  // cycles through filled circle, square, triangles, diamond, pentagon and
                       // an open circle (7 kinds, so k and k + 12 never share one)
};
SeriesStyle series_style(size_t k);

inline constexpr size_t kMaxArmsPerPanel = 6;  // more arms (of several variants): small multiples
inline constexpr size_t kMaxPointLabels = 4;   // more arms: quality_vs_cost uses a legend
inline constexpr int kMaxCanvasWidth = 2400;   // pixels; a grown canvas stops there
inline constexpr int kMaxCanvasHeight = 4000;

// The x axis of quality_vs_cost.
enum class CostAxis {
  kAuto,        // parameters, or throughput when the arms' parameter counts do not differ
  kParameters,  // summary `parameters` (ReportArm::parameters)
  kThroughput,  // training tokens or images per second (ReportArm::throughput)
  kKvCache,     // KV-cache bytes per token at inference (kv_cache_bytes_per_token)
};
// "auto", "parameters", "throughput", "kv-cache" (also "kv_cache"); ReportError else, listing
// the choices.
CostAxis parse_cost_axis(const std::string& name);
std::string to_string(CostAxis cost);

// KV-cache bytes per token at inference from an arm's config (ReportArm::config, dotted keys), for
// arms whose runs did not record it (ReportArm::kv_cache; imported sweeps):
// 2 (K and V) x model.layers (or model.depth) x key/value heads x head dim (model.dim /
// model.heads) x bytes per element (2 when train.precision is bf16 or fp16, else 4). Key/value
// heads: mha, mkva and gkva H (model.heads), mqa 1, gqa, kdgqa, dgqa, pgqa and wgqa
// attention.kv_heads (0 = H; wgqa folds its H projections into these at every forward), gqkva
// attention.kv_groups. NaN when the config does not say (a missing or non-numeric key, an unknown
// variant).
double kv_cache_bytes_per_token(const std::map<std::string, std::string>& config);

// The key/value heads of an arm's config, as above (mha, mkva, gkva: model.heads; mqa: 1; gqa and
// its relatives: attention.kv_heads, 0 = model.heads; gqkva: attention.kv_groups): the x of the
// metric-vs-groups figure and a factor of the KV cache. nullopt when the config does not say.
std::optional<int64_t> key_value_heads(const std::map<std::string, std::string>& config);

struct FigureOptions {
  std::string gnuplot = "gnuplot";  // the executable, found on PATH
  bool png = true;                  // write NAME.png (pngcairo); the HTML inlines these
  bool svg = true;                  // write NAME.svg (svg terminal)
  int width = 800;                  // pixels, at least; the canvas grows to hold panels and legends
  int height = 480;                 // pixels, at least
  double timeout_s = 60;            // per figure; gnuplot is killed and an error thrown after it
  CostAxis cost = CostAxis::kAuto;  // quality_vs_cost's x axis (`ablate report --cost`)
  // learning_curves' panels: one per value of this config key ("attention.kv_heads", a unique
  // dotted suffix such as "kv_heads", or "stage"), whatever the number of arms; "" = one per
  // variant when there are more than kMaxArmsPerPanel arms of several variants, else one plot
  // (`ablate report --panels KEY`).
  std::string panel_key;
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
