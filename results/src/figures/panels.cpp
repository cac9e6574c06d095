// Arms grouped into panels, and the words their legends share.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <iterator>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "figure_parts.h"

namespace ablate::results::figure_detail {

namespace {

constexpr size_t kMaxPanelTitle = 64;  // 8 px a character: fits a quarter of kMaxCanvasWidth

}  // namespace

std::string short_key(const std::string& key) {
  const size_t dot = key.rfind('.');
  return dot == std::string::npos ? key : key.substr(dot + 1);
}

std::string without_token(const std::string& label, const std::string& key,
                          const std::string& value) {
  std::vector<std::string> names = {key};
  for (size_t dot = key.find('.'); dot != std::string::npos; dot = key.find('.', dot + 1)) {
    names.push_back(key.substr(dot + 1));
  }
  std::istringstream in(label);
  std::string token, out;
  bool dropped = false;
  while (in >> token) {
    bool match = false;
    for (const std::string& name : names) match = match || token == name + "=" + value;
    if (match && !dropped) {
      dropped = true;
      continue;
    }
    out += (out.empty() ? "" : " ") + token;
  }
  return dropped && !out.empty() ? out : label;
}

PanelText move_shared_tokens(const std::string& title, const std::vector<std::string>& labels) {
  const PanelText unchanged{title, labels};
  if (labels.size() < 2) return unchanged;
  std::vector<std::vector<std::string>> tokens;
  for (const std::string& l : labels) {
    if (l.find(" <- ") != std::string::npos) return unchanged;
    tokens.push_back(words_of(l));
  }
  std::vector<std::string> shared;
  for (const std::string& t : tokens.front()) {
    const bool everywhere = std::all_of(tokens.begin(), tokens.end(), [&](const auto& ts) {
      return std::find(ts.begin(), ts.end(), t) != ts.end();
    });
    if (everywhere && t.find('=') != std::string::npos) shared.push_back(t);
  }
  if (shared.empty()) return unchanged;
  PanelText out{title, {}};
  for (const std::string& t : shared) out.title += " " + t;
  if (utf8_length(out.title) > kMaxPanelTitle) return unchanged;
  for (const auto& ts : tokens) {
    std::string label;
    for (const std::string& t : ts) {
      if (std::find(shared.begin(), shared.end(), t) == shared.end()) {
        label += (label.empty() ? "" : " ") + t;
      }
    }
    if (label.empty()) return unchanged;
    out.labels.push_back(label);
  }
  return out;
}

std::vector<PanelGroup> panel_groups(const Report& report, const std::vector<size_t>& arms,
                                     const FigureOptions& options,
                                     std::vector<std::string>* notes) {
  std::string key = options.panel_key;
  if (key.empty()) {
    std::set<std::string> variants;
    for (const size_t i : arms) {
      auto it = report.arms[i].config.find("attention.variant");
      if (it != report.arms[i].config.end()) variants.insert(it->second);
    }
    if (arms.size() <= kMaxArmsPerPanel || variants.size() < 2) return {{"", "", arms}};
    key = "attention.variant";
  } else if (key != "stage") {
    // A config key, or the one config key that ends with ".KEY".
    bool exact = false;
    std::set<std::string> found;
    const std::string tail = "." + key;
    for (const ReportArm& arm : report.arms) {
      for (const auto& [k, v] : arm.config) {
        exact = exact || k == key;
        if (k.size() > tail.size() && k.compare(k.size() - tail.size(), tail.size(), tail) == 0) {
          found.insert(k);
        }
      }
    }
    if (!exact && found.size() != 1) {
      std::string known;
      for (const std::string& k : found) known += (known.empty() ? "" : ", ") + k;
      notes->push_back("learning curves: " +
                       (found.empty() ? "no arm has the config key " + key
                                      : "the panel key " + key + " is ambiguous (" + known + ")") +
                       "; drawn as one plot");
      return {{"", "", arms}};
    }
    if (!exact) key = *found.begin();
  }
  std::vector<PanelGroup> groups;
  for (const size_t i : arms) {
    const ReportArm& arm = report.arms[i];
    std::string value;
    if (key == "stage") {
      value = arm.stage;
    } else if (auto it = arm.config.find(key); it != arm.config.end()) {
      value = it->second;
    }
    auto g = std::find_if(groups.begin(), groups.end(),
                          [&](const PanelGroup& p) { return p.value == value; });
    if (g == groups.end()) {
      groups.push_back({key, value, {}});
      g = groups.end() - 1;
    }
    g->arms.push_back(i);
  }
  // Numbers in ascending order, arms without the key last; other values as they first appear.
  auto number = [](const std::string& v, double* out) {
    const auto r = std::from_chars(v.data(), v.data() + v.size(), *out);
    return !v.empty() && r.ec == std::errc() && r.ptr == v.data() + v.size();
  };
  bool numeric = true;
  for (const PanelGroup& g : groups) {
    double v = 0;
    numeric = numeric && (g.value.empty() || number(g.value, &v));
  }
  if (numeric) {
    std::stable_sort(groups.begin(), groups.end(), [&](const PanelGroup& a, const PanelGroup& b) {
      double va = 0, vb = 0;
      if (a.value.empty() || b.value.empty()) return !a.value.empty() && b.value.empty();
      number(a.value, &va);
      number(b.value, &vb);
      return va < vb;
    });
  }
  return groups;
}

std::string panel_title(const PanelGroup& g) {
  return g.value.empty() && g.key != "stage" ? short_key(g.key) + " not set"
                                             : short_key(g.key) + "=" + g.value;
}

std::pair<double, double> padded(double lo, double hi) {
  if (!(lo <= hi)) return {0, 1};
  const double pad = hi > lo ? (hi - lo) * 0.05 : std::max(std::abs(lo) * 0.05, 0.5);
  return {lo - pad, hi + pad};
}

}  // namespace ablate::results::figure_detail
