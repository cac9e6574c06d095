// The learning curves figure: a metric over training steps, per arm (figures.h).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "figure_parts.h"

namespace ablate::results::figure_detail {

std::optional<Plot> learning_curves(const Report& report, const FigureOptions& options,
                                    std::string* why, std::vector<std::string>* notes) {
  std::vector<size_t> drawn;
  for (size_t i = 0; i < report.arms.size(); ++i) {
    for (const CurvePoint& p : report.arms[i].curve) {
      if (std::isfinite(p.mean)) {
        drawn.push_back(i);
        break;
      }
    }
  }
  if (report.curve_metric.empty() || drawn.empty()) {
    if (report.imported) {
      *why = "learning curves: the metric was not logged as a curve (imported sweep)";
    } else if (!report.options.curves) {
      *why = "learning curves: curves were not loaded for this report";
    } else {
      *why = "learning curves: no arm logged a curve of the metric";
    }
    return std::nullopt;
  }
  Plot p;
  p.name = "learning_curves";
  p.title = "Learning curves: " + report.curve_metric;
  const std::vector<PanelGroup> groups = panel_groups(report, drawn, options, notes);
  const bool panels = groups.size() > 1;
  std::vector<int64_t> ns;
  bool single_seed_steps = false;
  std::string data;
  std::map<size_t, std::string> band_of, line_of;  // arm -> its plot elements, without title
  std::map<size_t, std::string> subset_of;         // arm -> its subset points' circles
  double y_lo = kInf, y_hi = -kInf;
  int64_t x_lo = 0, x_hi = 0;
  bool any_x = false;
  for (const size_t i : drawn) {
    std::string mean_block = "$mean" + std::to_string(i);
    std::string band_block = "$band" + std::to_string(i);
    std::string subset_block = "$subset" + std::to_string(i);
    std::string m = mean_block + " << EOD\n", b = band_block + " << EOD\n";
    std::string sub = subset_block + " << EOD\n";
    int64_t n = 0, points = 0, band_points = 0, subset_points = 0;
    bool gap = false;
    for (const CurvePoint& c : report.arms[i].curve) {
      if (!std::isfinite(c.mean)) continue;
      n = std::max(n, c.n);
      ++points;
      m += std::to_string(c.step) + " " + num(c.mean) + "\n";
      if (c.subset > 0) {
        ++subset_points;
        sub += std::to_string(c.step) + " " + num(c.mean) + "\n";
      }
      y_lo = std::min(y_lo, c.mean);
      y_hi = std::max(y_hi, c.mean);
      x_lo = any_x ? std::min(x_lo, c.step) : c.step;
      x_hi = any_x ? std::max(x_hi, c.step) : c.step;
      any_x = true;
      if (std::isfinite(c.low) && std::isfinite(c.high)) {
        // A blank line splits the band, so a one-seed step leaves a gap instead of a wedge.
        if (gap && band_points > 0) b += "\n";
        gap = false;
        ++band_points;
        b += std::to_string(c.step) + " " + num(c.low) + " " + num(c.high) + "\n";
        y_lo = std::min(y_lo, c.low);
        y_hi = std::max(y_hi, c.high);
      } else {
        gap = true;
        single_seed_steps = true;
      }
    }
    ns.push_back(n);
    data += m + "EOD\n";
    const SeriesStyle style = series_style(i);
    if (band_points > 0) {
      data += b + "EOD\n";
      band_of[i] = band_block + " using 1:2:3 with filledcurves lc rgb '" + colour(i) + "' notitle";
    }
    if (subset_points > 0) {
      // A circle around each point evaluated on a subset (train.eval_subset), in the arm's colour.
      data += sub + "EOD\n";
      subset_of[i] =
          subset_block + " using 1:2 with points pt 6 ps 1.6 lc rgb '" + colour(i) + "' notitle";
    }
    // About seven markers a line: they tell apart lines of one colour and show through dashes.
    const int64_t every = std::max<int64_t>(1, points / 7);
    line_of[i] = mean_block + " using 1:2 with " +
                 (points == 1 ? "points pt " + std::to_string(style.point_type) + " ps 1"
                              : "linespoints lw 2 dt " + std::to_string(style.dash_type) + " pt " +
                                    std::to_string(style.point_type) + " ps 0.8 pi " +
                                    std::to_string(every)) +
                 " lc rgb '" + colour(i) + "'";
  }
  const std::string ylabel = report.curve_metric + direction(report);
  // The legend's entry for the circles: what a subset point is.
  const std::string subset = subset_phrase(report);
  const std::string subset_key = "circled: " + subset + " only (train.eval_subset)";
  const std::string subset_entry =
      "keyentry with points pt 6 ps 1.6 lc rgb '#000000' title " + quote(subset_key);
  if (!panels) {
    const double width = options.width;
    std::vector<std::string> labels;
    for (const size_t i : drawn) labels.push_back(arm_label(report, i));
    labels = shorten(labels, label_chars(width));
    std::vector<std::string> bands, lines, titles;
    for (size_t k = 0; k < drawn.size(); ++k) {
      const size_t i = drawn[k];
      if (band_of.count(i) > 0) bands.push_back(band_of[i]);
      titles.push_back(arm_title(report, i, labels[k]));
      lines.push_back(line_of[i] + " title " + quote(titles.back()));
      if (subset_of.count(i) > 0) lines.push_back(subset_of[i]);
    }
    if (!subset.empty()) {
      titles.push_back(subset_key);
      lines.push_back(subset_entry);
    }
    std::tie(p.width, p.height) = one_plot_canvas(options, titles);
    p.setup = data + header(p.title, "step", ylabel);
    p.setup += kKeyBelow;
    p.setup += "set style fill transparent solid 0.2 noborder\n";
    // Bands first, so every mean line is drawn opaque above all bands.
    bands.insert(bands.end(), lines.begin(), lines.end());
    p.plot = join_plot(bands);
  } else {
    std::vector<Panel> cells;
    for (const PanelGroup& g : groups) {
      Panel cell;
      std::vector<std::string> labels;
      for (const size_t i : g.arms)
        labels.push_back(without_token(arm_label(report, i), g.key, g.value));
      PanelText text = move_shared_tokens(panel_title(g), labels);
      cell.title = text.title;
      labels = shorten(text.labels, 40);
      std::vector<std::string> lines;
      for (size_t k = 0; k < g.arms.size(); ++k) {
        const size_t i = g.arms[k];
        if (band_of.count(i) > 0) cell.elements.push_back(band_of[i]);
        cell.keys.push_back(arm_title(report, i, labels[k]));
        lines.push_back(line_of[i] + " title " + quote(cell.keys.back()));
        if (subset_of.count(i) > 0) lines.push_back(subset_of[i]);
      }
      if (!subset.empty()) {
        cell.keys.push_back(subset_key);
        lines.push_back(subset_entry);
      }
      cell.elements.insert(cell.elements.end(), lines.begin(), lines.end());
      cells.push_back(std::move(cell));
    }
    // The same axes in every panel, so panels compare.
    const auto [lo, hi] = padded(y_lo, y_hi);
    const auto [xl, xh] =
        x_lo < x_hi
            ? std::pair<double, double>(static_cast<double>(x_lo), static_cast<double>(x_hi))
            : padded(static_cast<double>(x_lo), static_cast<double>(x_hi));
    p.setup = data + header(p.title, "step", report.curve_metric);
    p.setup += "set style fill transparent solid 0.2 noborder\n";
    p.setup += "set xrange [" + num(xl) + ":" + num(xh) + "]\n";
    p.setup += "set yrange [" + num(lo) + ":" + num(hi) + "]\n";
    grid(p, cells, p.title + direction(report), options);
  }
  p.caption = "Mean of " + report.curve_metric +
              " across seeds per arm over training steps, with a " +
              percent(1 - report.options.alpha) + " t-interval band";
  if (single_seed_steps) p.caption += " (none where only one seed logged the step)";
  if (panels) {
    p.caption += "; one panel per value of " + groups.front().key + ", all on the same axes";
  }
  p.caption += "; " + seeds_phrase(ns) + ".";
  if (!subset.empty()) {
    p.caption += " Circled points are intermediate evaluations of only " + subset +
                 " (train.eval_subset); the others, and each run's last point, are of the whole "
                 "held-out set.";
  }
  return p;
}

}  // namespace ablate::results::figure_detail
