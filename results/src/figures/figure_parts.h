#pragma once
// The pieces of the figures (figures.h) that their files share, one block per file of this
// folder; figures.cpp draws what they make (gnuplot, one child process a figure). Torch-free.
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ablate/results/figures.h"
#include "ablate/results/report.h"

namespace ablate::results::figure_detail {

// The start of a running minimum (and, negated, of a maximum).
inline constexpr double kInf = std::numeric_limits<double>::infinity();

// ----- gnuplot_text.cpp: quoting, numbers, tics, colours, and the words for arms -----

// A gnuplot single-quoted string: nothing inside is interpreted except '' for one quote, so
// backslashes, double quotes, % and braces stay literal. Control characters (a newline would end
// the command) become spaces.
std::string quote(const std::string& s);

// Shortest round-trip text of v; to_chars ignores the C locale, whose decimal comma would make
// gnuplot misread the data.
std::string num(double v);

// gnuplot's tic list `("175k" 175000, "180k" 180000)`: each value named by axis_number, with as
// many digits as keep neighbouring tics apart.
std::string tic_list(const std::vector<double>& tics);

// Round tic values inside [lo, hi]: a step of 1, 2 or 5 times a power of ten, about 6 tics.
std::vector<double> round_tics(double lo, double hi);

// gnuplot's "#RRGGBB" of series_style(series).
std::string colour(size_t series);

// "95%" for alpha 0.05, "99.9%" for 0.001.
std::string percent(double confidence);

// "n = 3 seeds per arm", "n = 2 to 5 seeds per arm".
std::string seeds_phrase(const std::vector<int64_t>& ns);

// The arm's label as written ("arm 3" when it has none), without the baseline mark.
std::string arm_label(const Report& report, size_t i);

// A legend entry or point label: `label` (the arm's, maybe shortened) and the baseline mark.
std::string arm_title(const Report& report, size_t i, const std::string& label);

// " (higher is better)" or " (lower is better)", for an axis label.
std::string direction(const Report& report);

// The interval bars of an arm: its t interval, or none (low = high = mean) with one seed.
std::pair<double, double> bar(const ReportArm& arm);

// An integer config value; nullopt when the key is missing or its value is not an integer.
std::optional<int64_t> config_int(const std::map<std::string, std::string>& config,
                                  const char* key);

// ----- layout.cpp: text and legend sizes, and panels laid out on one canvas -----

// The words of a label (its key=value tokens), split at white space.
std::vector<std::string> words_of(const std::string& label);

// Code points of UTF-8 text: what a character count of a label means.
size_t utf8_length(const std::string& s);

// The most characters (utf8_length) of any of `texts`.
size_t longest(const std::vector<std::string>& texts);

// The labels shortened to `max_chars` where that keeps them apart, else to as few more
// characters as do (labels that were the same stay the same): whole key=value words left out,
// those most labels share first, each run of them an ellipsis ("… weight_form=row …"); a word
// is cut only when no whole word fits.
std::vector<std::string> shorten(const std::vector<std::string>& labels, size_t max_chars);

// The characters a legend entry may have in a plot `width` pixels wide.
size_t label_chars(double width);

// The canvas of a one-plot figure with a legend of `titles` below it: as asked, wider (up to 1.5
// times) while the legend would be a tall single column, and taller by every legend row beyond
// the 4 that the asked size leaves room for (and one of slack), so the plot keeps its size. Wider
// still, up to kMaxCanvasWidth, when the legend would make it taller than kMaxCanvasHeight;
// taller than that only when hundreds of entries need it (a legend is never cut).
std::pair<int, int> one_plot_canvas(const FigureOptions& options,
                                    const std::vector<std::string>& titles);

// One figure: its data blocks and settings, then the commands that draw it once per format.
struct Plot {
  std::string name;
  std::string title;
  std::string caption;
  std::string setup;  // data blocks and `set` commands
  std::string plot;   // the `plot ...` command, or a whole multiplot
  int width = 0;      // the canvas in pixels (0: FigureOptions')
  int height = 0;
};

// The settings every figure starts with: UTF-8, its title and axis labels, a light grid.
std::string header(const std::string& title, const std::string& xlabel, const std::string& ylabel);

// The legend below one plot. `height 1` adds a line of room above its entries: without it gnuplot
// puts the x axis label on the legend's first row.
constexpr char kKeyBelow[] = "set key below center horizontal Left reverse samplen 2 height 1\n";

// One panel of a grid: its title and plot elements (bands first, so lines draw above them).
struct Panel {
  std::string title;
  std::vector<std::string> elements;
  std::vector<std::string> keys;  // the titles of its elements, for the legend's size
};

// "plot A, B, C": one gnuplot plot command of `elements`.
std::string join_plot(const std::vector<std::string>& elements);

// Draws `panels` as a grid (gnuplot multiplot) under `title`, each panel with its legend below
// it, every position computed here so panels line up and nothing is cut: fills p.plot, p.width
// and p.height. The settings every panel shares (axes, ranges) are already in p.setup.
void grid(Plot& p, const std::vector<Panel>& panels, const std::string& title,
          const FigureOptions& options);

// ----- panels.cpp: arms grouped into panels, and the words their legends share -----

// The short name of a config key: "attention.kv_heads" -> "kv_heads".
std::string short_key(const std::string& key);

// `label` without the token "KEY=VALUE" (KEY any dotted suffix of `key`, as labels shorten
// keys), unless nothing else is left.
std::string without_token(const std::string& label, const std::string& key,
                          const std::string& value);

// A panel's legend labels without the "KEY=VALUE" tokens that all of them share, and its title
// with those tokens added (said once instead of on every line): shorter entries that the
// ellipsis need not cut, with what tells the panel's lines apart left in them. Labels of fewer
// than two arms, of staged arms named by their parents (" <- "), that would be left empty, or
// whose title would grow past kMaxPanelTitle characters stay as they are.
struct PanelText {
  std::string title;
  std::vector<std::string> labels;
};

PanelText move_shared_tokens(const std::string& title, const std::vector<std::string>& labels);

// The arms of one panel and what its title says.
struct PanelGroup {
  std::string key;    // the config key the panels split by ("" for the one panel)
  std::string value;  // the panel's value of it ("" when its arms do not have the key)
  std::vector<size_t> arms;
};

// Splits `arms` into panels by `options.panel_key` (or by variant, see figures.h). A key no arm
// has gives one panel and a note.
std::vector<PanelGroup> panel_groups(const Report& report, const std::vector<size_t>& arms,
                                     const FigureOptions& options, std::vector<std::string>* notes);

// "kv_heads=2" for the panel's split, "kv_heads not set" for its arms without the key.
std::string panel_title(const PanelGroup& g);

// Lower and upper ends of values that all panels share, a little wider than the data.
std::pair<double, double> padded(double lo, double hi);

// ----- the three figures (figures.h says what each shows) -----
// Each returns its Plot, or nullopt with the reason in `why` when the report has nothing for it
// (no curves, no group counts, no cost); `notes` collects what a figure left out.

// learning_curves.cpp: a metric over training steps, per arm.
std::optional<Plot> learning_curves(const Report& report, const FigureOptions& options,
                                    std::string* why, std::vector<std::string>* notes);

// metric_vs_groups.cpp: the metric against the number of key/value head groups.
std::optional<Plot> metric_vs_groups(const Report& report, const FigureOptions& options,
                                     std::string* why, std::vector<std::string>* notes);

// quality_vs_cost.cpp: the metric against parameters, throughput or KV-cache size.
std::optional<Plot> quality_vs_cost(const Report& report, const FigureOptions& options,
                                    std::string* why, std::vector<std::string>* notes);

}  // namespace ablate::results::figure_detail
