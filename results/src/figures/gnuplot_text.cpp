// gnuplot's text: quoting, numbers, tics, colours, and the words for arms.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "figure_parts.h"

namespace ablate::results::figure_detail {

namespace {

// An axis number as a reader writes it: a whole number below 100,000 in full (512, 1536 bytes),
// others to `digits` significant digits with k, M or G and no trailing zeros (175k, 3.2M).
std::string axis_number(double v, int digits) {
  char buf[64];
  if (std::abs(v) < 1e5 && v == std::round(v)) {
    const auto r = std::to_chars(buf, buf + sizeof buf, static_cast<long long>(v));
    return std::string(buf, r.ptr);
  }
  const double a = std::abs(v);
  const char* suffix = "";
  double scale = 1;
  if (a >= 1e9 && a < 1e12) {
    suffix = "G", scale = 1e9;
  } else if (a >= 1e6 && a < 1e9) {
    suffix = "M", scale = 1e6;
  } else if (a >= 1e3 && a < 1e6) {
    suffix = "k", scale = 1e3;
  }
  const auto r =
      std::to_chars(buf, buf + sizeof buf, v / scale, std::chars_format::general, digits);
  return std::string(buf, r.ptr) + suffix;
}

std::string rgb_text(uint32_t rgb) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "#%06X", static_cast<unsigned>(rgb));
  return buf;
}

}  // namespace

std::string quote(const std::string& s) {
  std::string out = "'";
  for (const char c : s) {
    if (c == '\'') {
      out += "''";
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      out += ' ';
    } else {
      out += c;
    }
  }
  out += "'";
  return out;
}

std::string num(double v) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

std::string tic_list(const std::vector<double>& tics) {
  std::vector<std::string> names;
  for (int digits = 3; digits <= 12; ++digits) {
    names.clear();
    for (const double t : tics) names.push_back(axis_number(t, digits));
    if (std::set<std::string>(names.begin(), names.end()).size() == names.size()) break;
  }
  std::string out;
  for (size_t i = 0; i < tics.size(); ++i) {
    out += (out.empty() ? "(" : ", ") + quote(names[i]) + " " + num(tics[i]);
  }
  return out + ")";
}

std::vector<double> round_tics(double lo, double hi) {
  if (!(hi > lo)) return {lo};
  const double raw = (hi - lo) / 6;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double n = raw / magnitude;
  const double step = (n < 1.5 ? 1 : n < 3.5 ? 2 : n < 7.5 ? 5 : 10) * magnitude;
  std::vector<double> tics;
  for (double k = std::ceil(lo / step); k * step <= hi + step * 1e-9; ++k) tics.push_back(k * step);
  return tics;
}

std::string colour(size_t series) { return rgb_text(series_style(series).rgb); }

std::string percent(double confidence) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g%%", confidence * 100);
  return buf;
}

std::string seeds_phrase(const std::vector<int64_t>& ns) {
  if (ns.empty()) return "";
  const auto [lo, hi] = std::minmax_element(ns.begin(), ns.end());
  std::string n =
      *lo == *hi ? std::to_string(*lo) : std::to_string(*lo) + " to " + std::to_string(*hi);
  return "n = " + n + (*hi == 1 ? " seed" : " seeds") + " per arm";
}

std::string arm_label(const Report& report, size_t i) {
  const ReportArm& arm = report.arms[i];
  return !arm.label.empty()     ? arm.label
         : !arm.arm_key.empty() ? arm.arm_key
                                : "arm " + std::to_string(i + 1);
}

std::string arm_title(const Report& report, size_t i, const std::string& label) {
  return i == report.baseline ? label + " (baseline)" : label;
}

std::string direction(const Report& report) {
  return report.lower_is_better ? " (lower is better)" : " (higher is better)";
}

std::pair<double, double> bar(const ReportArm& arm) {
  const stats::Interval& ci = arm.stats.t_ci;
  if (ci.available && std::isfinite(ci.low) && std::isfinite(ci.high)) return {ci.low, ci.high};
  return {arm.stats.mean, arm.stats.mean};
}

std::optional<int64_t> config_int(const std::map<std::string, std::string>& config,
                                  const char* key) {
  auto it = config.find(key);
  if (it == config.end()) return std::nullopt;
  int64_t v = 0;
  const char* end = it->second.data() + it->second.size();
  const auto r = std::from_chars(it->second.data(), end, v);
  if (r.ec != std::errc() || r.ptr != end) return std::nullopt;
  return v;
}

}  // namespace ablate::results::figure_detail
