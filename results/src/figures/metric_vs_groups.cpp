// The metric against the number of key/value head groups, a line per variant (figures.h).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "../report/report_parts.h"
#include "figure_parts.h"

namespace ablate::results::figure_detail {

namespace {

// The number of key/value head groups of an arm (key_value_heads); an imported mha arm may give
// its kv_heads without model.heads.
std::optional<int64_t> group_count(const ReportArm& arm) {
  const auto variant = arm.config.find("attention.variant");
  if (variant != arm.config.end() && variant->second == "mha" &&
      !config_int(arm.config, "model.heads")) {
    return config_int(arm.config, "attention.kv_heads");
  }
  return key_value_heads(arm.config);
}

}  // namespace

std::optional<Plot> metric_vs_groups(const Report& report, const FigureOptions& options,
                                     std::string* why, std::vector<std::string>* /*notes*/) {
  struct Point {
    int64_t groups;
    size_t arm;
  };
  // Series: the variant plus any other param that tells arms apart (stage, learning rate, ...),
  // so one line never zigzags between unrelated arms. In order of first appearance.
  std::vector<std::string> series_names, series_variant;
  std::vector<std::vector<Point>> series;
  std::set<int64_t> counts;
  bool any_variant = false;
  for (size_t i = 0; i < report.arms.size(); ++i) {
    const ReportArm& arm = report.arms[i];
    if (arm.config.count("attention.variant") > 0) any_variant = true;
    const std::optional<int64_t> g = group_count(arm);
    if (!g || !std::isfinite(arm.stats.mean)) continue;
    // Keys as the arm labels name them ("qk_norm=true"), so the legend fits the same text.
    std::vector<std::string> keys;
    for (const auto& [key, value] : arm.params) keys.push_back(key);
    std::string name = arm.config.at("attention.variant");
    for (const auto& [key, value] : arm.params) {
      if (key == "attention.variant" || key == "attention.kv_heads") continue;
      name += " " + detail::short_key(key, keys) + "=" + value;
    }
    auto it = std::find(series_names.begin(), series_names.end(), name);
    if (it == series_names.end()) {
      series_names.push_back(name);
      series_variant.push_back(arm.config.at("attention.variant"));
      series.emplace_back();
      it = series_names.end() - 1;
    }
    series[it - series_names.begin()].push_back({*g, i});
    counts.insert(*g);
  }
  if (!any_variant) {
    *why = "metric vs groups: the arms have no attention.variant in their config";
    return std::nullopt;
  }
  if (counts.size() < 2) {
    *why = counts.empty()
               ? "metric vs groups: no arm has a group count (attention.kv_heads and "
                 "model.heads) and a value of the metric"
               : "metric vs groups: every arm has the same group count (" +
                     std::to_string(*counts.begin()) + "), so there is nothing to compare";
    return std::nullopt;
  }
  // More series than colours: one panel per variant (when that splits them).
  std::vector<std::string> variants;
  for (const std::string& v : series_variant) {
    if (std::find(variants.begin(), variants.end(), v) == variants.end()) variants.push_back(v);
  }
  const bool panels = series.size() > kFigurePalette.size() && variants.size() > 1;
  Plot p;
  p.name = "metric_vs_groups";
  p.title = report.options.metric + " vs key/value head groups";
  const double lo = static_cast<double>(*counts.begin());
  const double hi = static_cast<double>(*counts.rbegin());
  const bool log2 = lo >= 1 && hi / lo >= 4;
  std::string data;
  std::vector<std::string> elements(series.size()), names = series_names;
  std::vector<int64_t> ns;
  double y_lo = kInf, y_hi = -kInf;
  const double k_mid = (static_cast<double>(series.size()) - 1) / 2;
  for (size_t k = 0; k < series.size(); ++k) {
    std::vector<Point>& points = series[k];
    std::sort(points.begin(), points.end(),
              [](const Point& a, const Point& b) { return a.groups < b.groups; });
    // Series sit slightly apart sideways so bars at the same group count do not hide each other.
    const double shift = (static_cast<double>(k) - k_mid) *
                         std::min(0.03, 0.36 / static_cast<double>(series.size()));
    std::string block = "$groups" + std::to_string(k);
    data += block + " << EOD\n";
    for (const Point& pt : points) {
      const ReportArm& arm = report.arms[pt.arm];
      const double g = static_cast<double>(pt.groups);
      const double x = log2 ? g * std::exp2(shift) : g + shift * (hi - lo) * 0.5;
      const auto [low, high] = bar(arm);
      data += num(x) + " " + num(arm.stats.mean) + " " + num(low) + " " + num(high) + "\n";
      y_lo = std::min({y_lo, low, arm.stats.mean});
      y_hi = std::max({y_hi, high, arm.stats.mean});
      ns.push_back(arm.stats.n);
    }
    data += "EOD\n";
    const SeriesStyle style = series_style(k);
    elements[k] = block + " using 1:2:3:4 with yerrorlines lw 2 dt " +
                  std::to_string(style.dash_type) + " pt " + std::to_string(style.point_type) +
                  " ps 1.2 lc rgb '" + colour(k) + "' title ";
    if (panels) names[k] = without_token("variant=" + names[k], "variant", series_variant[k]);
  }
  p.setup =
      data + header(p.title, "key/value head groups", report.options.metric + direction(report));
  std::string tics;
  for (const int64_t c : counts) tics += (tics.empty() ? "" : ", ") + std::to_string(c);
  p.setup += "set xtics (" + tics + ")\n";
  if (log2) {
    p.setup += "set logscale x 2\n";
    p.setup += "set xrange [" + num(lo / 1.5) + ":" + num(hi * 1.5) + "]\n";
  } else {
    const double pad = std::max(0.5, (hi - lo) * 0.1);
    p.setup += "set xrange [" + num(lo - pad) + ":" + num(hi + pad) + "]\n";
  }
  if (!panels) {
    const double width = options.width;
    names = shorten(names, label_chars(width));
    for (size_t k = 0; k < series.size(); ++k) elements[k] += quote(names[k]);
    std::tie(p.width, p.height) = one_plot_canvas(options, names);
    p.setup += kKeyBelow;
    p.setup += "set offsets 0, 0, graph 0.05, graph 0.05\n";
    p.plot = join_plot(elements);
  } else {
    std::vector<Panel> cells;
    for (const std::string& v : variants) {
      Panel cell;
      std::vector<size_t> members;
      std::vector<std::string> labels;
      for (size_t k = 0; k < series.size(); ++k) {
        if (series_variant[k] != v) continue;
        members.push_back(k);
        labels.push_back(names[k]);
      }
      PanelText text = move_shared_tokens("variant=" + v, labels);
      cell.title = text.title;
      labels = shorten(text.labels, 40);
      for (size_t m = 0; m < members.size(); ++m) {
        cell.keys.push_back(labels[m]);
        cell.elements.push_back(elements[members[m]] + quote(labels[m]));
      }
      cells.push_back(std::move(cell));
    }
    const auto [ylo, yhi] = padded(y_lo, y_hi);
    p.setup += "set yrange [" + num(ylo) + ":" + num(yhi) + "]\n";
    grid(p, cells, p.title, options);
  }
  p.caption = "Mean " + report.options.metric +
              " per arm against the number of key/value head groups (attention.kv_heads; mha, mkva "
              "and gkva = model.heads, mqa = 1, gqkva = attention.kv_groups), one line per "
              "variant" +
              (panels ? std::string(" and one panel per variant, all on the same axes") : "") +
              "; bars are " + percent(1 - report.options.alpha) +
              " t-intervals (none for an arm with one seed); points are shifted slightly sideways "
              "so bars do not overlap; " +
              seeds_phrase(ns) + ".";
  return p;
}

}  // namespace ablate::results::figure_detail
