// The metric against a cost: parameters, throughput or KV-cache size (figures.h).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "figure_parts.h"

namespace ablate::results::figure_detail {

namespace {

// What quality_vs_cost puts on its x axis.
struct Cost {
  CostAxis axis;
  std::string xlabel;  // the axis label, also in the title
  std::string what;    // in the caption: "... against its <what>"
  std::function<double(const ReportArm&)> value;
};

Cost cost_of(CostAxis axis) {
  switch (axis) {
    case CostAxis::kParameters:
      return {axis, "parameters", "parameter count",
              [](const ReportArm& a) { return a.parameters; }};
    case CostAxis::kThroughput:
      return {axis, "training throughput (tokens or images per second)",
              "training throughput (tokens or images per second)",
              [](const ReportArm& a) { return a.throughput; }};
    case CostAxis::kKvCache:
      return {axis, "KV-cache bytes per token",
              "KV-cache bytes per token at inference (as training recorded it from the model's "
              "layers, else 2 x layers x key/value heads x head dim x 2 bytes for bf16 or fp16, "
              "else 4)",
              [](const ReportArm& a) {
                return std::isfinite(a.kv_cache) ? a.kv_cache : kv_cache_bytes_per_token(a.config);
              }};
    case CostAxis::kAuto:
      break;
  }
  throw std::logic_error("figures: no cost for auto");
}

}  // namespace

std::optional<Plot> quality_vs_cost(const Report& report, const FigureOptions& options,
                                    std::string* why, std::vector<std::string>* notes) {
  // The arms with a value of the metric and of the cost, those with a metric only, and how many
  // distinct costs they have.
  struct Usable {
    std::vector<size_t> arms, unknown;
    size_t distinct = 0;
  };
  auto usable = [&](const Cost& cost) {
    Usable u;
    std::set<double> values;
    for (size_t i = 0; i < report.arms.size(); ++i) {
      const ReportArm& arm = report.arms[i];
      if (!std::isfinite(arm.stats.mean)) continue;
      const double c = cost.value(arm);
      if (!std::isfinite(c)) {
        u.unknown.push_back(i);
        continue;
      }
      u.arms.push_back(i);
      values.insert(c);
    }
    u.distinct = values.size();
    return u;
  };
  Cost cost = cost_of(options.cost == CostAxis::kAuto ? CostAxis::kParameters : options.cost);
  Usable u = usable(cost);
  if (options.cost == CostAxis::kAuto && u.distinct < 2) {
    cost = cost_of(CostAxis::kThroughput);
    u = usable(cost);
    if (u.arms.size() < 2) {
      *why =
          "quality vs cost: the arms do not differ in parameters and throughput was not "
          "recorded for two or more of them";
      return std::nullopt;
    }
  } else if (u.arms.size() < 2) {
    *why = "quality vs cost: " + cost.xlabel + " is known for " +
           (u.arms.empty() ? std::string("no arm") : "only one arm") +
           (cost.axis == CostAxis::kKvCache
                ? " (it needs attention.variant, model.layers, model.dim, model.heads and the "
                  "variant's key/value head count in the config)"
                : "");
    return std::nullopt;
  }
  std::string left_out;
  if (!u.unknown.empty()) {
    std::string names;
    for (size_t k = 0; k < u.unknown.size() && k < 3; ++k) {
      names += (k == 0 ? "" : ", ") + arm_label(report, u.unknown[k]);
    }
    if (u.unknown.size() > 3) names += ", ...";
    left_out = std::to_string(u.unknown.size()) + (u.unknown.size() == 1 ? " arm" : " arms") +
               " without a known " + cost.xlabel + " left out (" + names + ")";
    notes->push_back("quality vs cost: " + left_out);
  }
  const std::vector<size_t>& arms = u.arms;
  Plot p;
  p.name = "quality_vs_cost";
  p.title = report.options.metric + " vs " + cost.xlabel;
  std::vector<double> x;
  for (const size_t i : arms) x.push_back(cost.value(report.arms[i]));
  const auto [lo_it, hi_it] = std::minmax_element(x.begin(), x.end());
  const double lo = *lo_it, hi = *hi_it;
  const bool log2 = cost.axis == CostAxis::kKvCache && lo > 0 && hi / lo >= 4;
  const double middle = log2 ? std::sqrt(lo * hi) : (lo + hi) / 2;
  // Arms of the same cost (a KV-cache size, equal parameter counts) sit slightly apart sideways,
  // in arm order, so their points and bars do not hide each other; the tics stay exact.
  std::vector<double> at = x;
  size_t shifted = 0;
  for (const double c : std::set<double>(x.begin(), x.end())) {
    std::vector<size_t> same;
    for (size_t k = 0; k < x.size(); ++k) {
      if (x[k] == c) same.push_back(k);
    }
    if (same.size() < 2) continue;
    shifted += same.size();
    const double m = static_cast<double>(same.size()) - 1;
    for (size_t r = 0; r < same.size(); ++r) {
      const double offset = static_cast<double>(r) - m / 2;
      if (log2) {
        at[same[r]] = c * std::exp2(offset * std::min(0.06, 0.3 / m));  // in octaves
      } else {
        const double span = hi > lo ? hi - lo : std::max(std::abs(lo), 1.0);
        at[same[r]] = c + offset * std::min(0.012, 0.08 / m) * span;
      }
    }
  }
  // A few arms: labels beside their points; more would overlap, so a legend names them.
  const bool point_labels = arms.size() <= kMaxPointLabels;
  std::vector<std::string> labels;
  for (const size_t i : arms) labels.push_back(arm_label(report, i));
  const double width = options.width;
  labels = shorten(labels, point_labels ? 48 : label_chars(width));
  std::string data, set_labels;
  std::vector<std::string> elements, titles;
  std::vector<int64_t> ns;
  for (size_t k = 0; k < arms.size(); ++k) {
    const size_t i = arms[k];
    const ReportArm& arm = report.arms[i];
    const auto [low, high] = bar(arm);
    const SeriesStyle style = series_style(i);
    std::string block = "$cost" + std::to_string(i);
    data += block + " << EOD\n" + num(at[k]) + " " + num(arm.stats.mean) + " " + num(low) + " " +
            num(high) + "\nEOD\n";
    std::string element = block + " using 1:2:3:4 with yerrorbars lw 2 pt " +
                          std::to_string(style.point_type) + " ps 1.4 lc rgb '" + colour(i) + "'";
    const std::string title = arm_title(report, i, labels[k]);
    if (point_labels) {
      set_labels += "set label " + std::to_string(k + 1) + " " + quote(title) + " at first " +
                    num(at[k]) + ", first " + num(arm.stats.mean) +
                    // Labels of the right half point left, so the longest label stays in the
                    // figure.
                    (x[k] > middle ? " right offset -1,0.6" : " left offset 1,0.6") +
                    " front noenhanced textcolor rgb '#000000'\n";
      element += " notitle";
    } else {
      titles.push_back(title);
      element += " title " + quote(title);
    }
    elements.push_back(element);
    ns.push_back(arm.stats.n);
  }
  p.setup =
      data + header(p.title, cost.xlabel, report.options.metric + direction(report)) + set_labels;
  if (point_labels) {
    p.setup += "set key off\n";
    // Room around the points for their labels.
    p.setup += "set offsets graph 0.1, graph 0.1, graph 0.12, graph 0.08\n";
  } else {
    p.setup += kKeyBelow;
    p.setup += "set offsets graph 0.05, graph 0.05, graph 0.05, graph 0.05\n";
    std::tie(p.width, p.height) = one_plot_canvas(options, titles);
  }
  // The x range and tics are set here, not by gnuplot, so tic labels read 175k and 1024, not
  // 175.00k or 512.00 beside 1.02k: a tic at each of a few distinct KV-cache sizes (they come in
  // powers of two), else at powers of two on a log axis, else at round values.
  double x_lo = lo / 1.4, x_hi = hi * 1.4;
  if (!log2) {
    const double pad = (point_labels ? 0.1 : 0.05) * (hi - lo);
    std::tie(x_lo, x_hi) = hi > lo ? std::make_pair(lo - pad, hi + pad) : padded(lo, hi);
  }
  const std::set<double> distinct(x.begin(), x.end());
  std::vector<double> tics;
  if (cost.axis == CostAxis::kKvCache && distinct.size() <= 8) {
    tics.assign(distinct.begin(), distinct.end());
  } else if (log2) {
    const int first = static_cast<int>(std::ceil(std::log2(x_lo)));
    const int last = static_cast<int>(std::floor(std::log2(x_hi)));
    const int every = (last - first) / 8 + 1;
    for (int e = first; e <= last; e += every) tics.push_back(std::exp2(e));
  } else {
    tics = round_tics(x_lo, x_hi);
  }
  if (log2) p.setup += "set logscale x 2\n";
  p.setup += "set xrange [" + num(x_lo) + ":" + num(x_hi) + "]\n";
  p.setup += "set xtics " + tic_list(tics) + "\n";
  p.plot = join_plot(elements);
  p.caption = "Mean " + report.options.metric + " per arm against its " + cost.what +
              ", bars are " + percent(1 - report.options.alpha) +
              " t-intervals (none for an arm with one seed)" +
              (shifted > 0 ? "; arms of the same cost are shifted slightly sideways" : "") +
              (point_labels ? "" : "; each arm has its colour and marker in the legend") +
              (left_out.empty() ? "" : "; " + left_out) + "; " + seeds_phrase(ns) + ".";
  return p;
}

}  // namespace ablate::results::figure_detail
