// Small text helpers of the report: numbers, counts, keys.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "report_parts.h"

namespace ablate::results::detail {

bool parse_number(const std::string& text, double* out) {
  if (text.empty()) return false;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size()) return false;
  *out = v;
  return true;
}

// Stored values are equal, or both numbers and equal ("2" and "2.0", "1e-3" and "0.001").
bool same_value(const std::string& a, const std::string& b) {
  if (a == b) return true;
  double x = 0, y = 0;
  return parse_number(a, &x) && parse_number(b, &y) && x == y;
}

// "1 seed", "2 seeds": a count and a noun, plural unless the count is 1.
std::string count_of(size_t n, const std::string& noun) {
  return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
}

std::string join(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? sep : "") + items[i];
  return out;
}

std::string format_number(double v, int digits) {
  if (std::isnan(v)) return "";
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*g", digits, v);
  return buf;
}

std::string percent(double confidence) {
  // 3 significant digits, more where they would round a level below 100% up to "100%".
  for (int digits = 3; digits < 15; ++digits) {
    const std::string text = format_number(confidence * 100, digits);
    if (confidence >= 1 || std::strtod(text.c_str(), nullptr) < 100) return text + "%";
  }
  return format_number(confidence * 100, 15) + "%";
}

std::string get_or(const std::map<std::string, std::string>& m, const std::string& key,
                   const std::string& fallback) {
  const auto it = m.find(key);
  return it == m.end() ? fallback : it->second;
}

// Shortest dotted suffix of `key` that no other key in `keys` ends with.
std::string short_key(const std::string& key, const std::vector<std::string>& keys) {
  std::vector<size_t> dots;
  for (size_t i = key.size(); i-- > 0;) {
    if (key[i] == '.') dots.push_back(i);
  }
  for (const size_t dot : dots) {
    const std::string suffix = key.substr(dot + 1);
    bool unique = true;
    for (const auto& other : keys) {
      if (other == key) continue;
      if (other == suffix ||
          (other.size() > suffix.size() &&
           other.compare(other.size() - suffix.size(), suffix.size(), suffix) == 0 &&
           other[other.size() - suffix.size() - 1] == '.')) {
        unique = false;
      }
    }
    if (unique) return suffix;
  }
  return key;
}

std::string view_column(std::string key) {
  std::replace(key.begin(), key.end(), '.', '_');
  return key;
}

}  // namespace ablate::results::detail
